// absl::Status <-> grpc::Status: the one conversion every gRPC adapter uses
// (ARCHITECTURE.md principle 6). The canonical codes have the same numbers in
// both.
#ifndef NTPFLEET_COMMON_GRPC_STATUS_H_
#define NTPFLEET_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace ntpfleet {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_GRPC_STATUS_H_
