// `ntpfleetctl history [NODE] [--since D]`: the fleet's skew over time, or
// with NODE that node's offset, error bound, stratum and sync state over
// time, from the controller's store.
#include <grpcpp/grpcpp.h>

#include <cstdio>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "ctl/commands.h"
#include "ctl/render_fleet.h"
#include "ctl/render_history.h"

namespace ntpfleet::ctl {

int RunHistory(const CommonOptions& o, const std::string& node,
               absl::Duration since) {
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
  request.set_node(node);
  v1::HistoryResponse response;
  if (grpc::Status s = stub->History(&context, request, &response); !s.ok()) {
    // NOT_FOUND names the node: "no node named 'x' has ever reported ...".
    return ControllerError(o.controller, FromGrpcStatus(s));
  }
  if (o.json) {
    absl::StatusOr<std::string> json = ToJson(response);
    if (!json.ok()) return PrintError(json.status());
    std::fputs(json->c_str(), stdout);
    return 0;
  }
  if (!node.empty()) {
    std::fputs(
        RenderNodeHistory(response, NodeHistorySpan{node, now - since, now})
            .c_str(),
        stdout);
    return 0;
  }
  RenderOptions r;
  r.now = now;
  r.color = o.color;
  std::fputs(RenderHistory(response, r).c_str(), stdout);
  return 0;
}

}  // namespace ntpfleet::ctl
