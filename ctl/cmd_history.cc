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
#include "ctl/fleet_client.h"
#include "ctl/render_fleet.h"
#include "ctl/render_history.h"

namespace ntpfleet::ctl {

int RunHistory(const CommonOptions& o, const std::string& node,
               absl::Duration since) {
  absl::StatusOr<std::unique_ptr<FleetClient>> client = ConnectFleet(o);
  if (!client.ok()) return PrintError(client.status());
  v1::HistoryRequest request;
  const absl::Time now = absl::Now();
  SetTimestamp(now - since, request.mutable_start());
  SetTimestamp(now, request.mutable_end());
  request.set_node(node);
  // The first controller that answers (ctl/fleet_client.h); NOT_FOUND names
  // the node: "no node named 'x' has ever reported ...".
  absl::StatusOr<v1::HistoryResponse> fetched =
      (*client)->History(request, absl::Seconds(10));
  if (!fetched.ok()) return ControllerError(o.controller, fetched.status());
  const v1::HistoryResponse& response = *fetched;
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
