// `ntpfleetctl forget NODE`: removes a decommissioned node from the
// controller's inventory (admin). A node still connected is refused: stop its
// agent first.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <string>

#include "common/grpc_status.h"
#include "ctl/commands.h"

namespace ntpfleet::ctl {

int RunForget(const CommonOptions& o, const std::string& node) {
  absl::StatusOr<std::unique_ptr<v1::FleetService::Stub>> stub =
      ConnectController(o);
  if (!stub.ok()) return PrintError(stub.status());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::ForgetRequest request;
  request.set_name(node);
  v1::ForgetResponse response;
  if (grpc::Status s = (*stub)->Forget(&context, request, &response); !s.ok()) {
    return ControllerError(o.controller, FromGrpcStatus(s));
  }
  std::printf(
      "forgot %s: it is no longer listed (its history and audit "
      "records are kept)\n",
      node.c_str());
  return 0;
}

}  // namespace ntpfleet::ctl
