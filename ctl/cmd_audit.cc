// `ntpfleetctl audit [--since 24h]`: the resync audit log, newest first: who
// (the identity the controller verified), when, what, and each node's result.
#include <grpcpp/grpcpp.h>

#include <cstdio>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "ctl/commands.h"
#include "ctl/fleet_client.h"
#include "ctl/render_fleet.h"

namespace ntpfleet::ctl {

int RunAudit(const CommonOptions& o, absl::Duration since) {
  absl::StatusOr<std::unique_ptr<FleetClient>> client = ConnectFleet(o);
  if (!client.ok()) return PrintError(client.status());
  v1::AuditRequest request;
  const absl::Time now = absl::Now();
  SetTimestamp(now - since, request.mutable_since());
  request.set_limit(1000);
  // Every controller's log, merged (ctl/fleet_client.h).
  absl::StatusOr<v1::AuditResponse> fetched =
      (*client)->Audit(request, absl::Seconds(10));
  if (!fetched.ok()) return ControllerError(o.controller, fetched.status());
  const v1::AuditResponse& response = *fetched;
  if (o.json) {
    absl::StatusOr<std::string> json = ToJson(response);
    if (!json.ok()) return PrintError(json.status());
    std::fputs(json->c_str(), stdout);
    return 0;
  }
  std::fputs(RenderAudit(response, now).c_str(), stdout);
  return 0;
}

}  // namespace ntpfleet::ctl
