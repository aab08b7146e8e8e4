// `ntpfleetctl history [--since D]`: the fleet's skew over time, from the
// controller's store.
#include <grpcpp/grpcpp.h>

#include <cstdio>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "ctl/commands.h"
#include "ctl/render_fleet.h"

namespace ntpfleet::ctl {

int RunHistory(const CommonOptions& o, absl::Duration since) {
  absl::StatusOr<std::unique_ptr<v1::FleetService::Stub>> connected =
      ConnectController(o);
  if (!connected.ok()) return PrintError(connected.status());
  auto& stub = *connected;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::HistoryRequest request;
  const absl::Time now = absl::Now();
  SetTimestamp(now - since, request.mutable_start());
  SetTimestamp(now, request.mutable_end());
  v1::HistoryResponse response;
  if (grpc::Status s = stub->History(&context, request, &response); !s.ok()) {
    return ControllerError(o.controller, FromGrpcStatus(s));
  }
  if (o.json) {
    absl::StatusOr<std::string> json = ToJson(response);
    if (!json.ok()) return PrintError(json.status());
    std::fputs(json->c_str(), stdout);
    return 0;
  }
  RenderOptions r;
  r.now = now;
  r.color = o.color;
  std::fputs(RenderHistory(response, r).c_str(), stdout);
  return 0;
}

}  // namespace ntpfleet::ctl
