// `ntpfleetctl audit [--since 24h]`: the resync audit log, newest first: who
// (the identity the controller verified), when, what, and each node's result.
#include <grpcpp/grpcpp.h>

#include <cstdio>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "ctl/commands.h"
#include "ctl/render_fleet.h"

namespace ntpfleet::ctl {

int RunAudit(const CommonOptions& o, absl::Duration since) {
  absl::StatusOr<std::unique_ptr<v1::FleetService::Stub>> stub =
      ConnectController(o);
  if (!stub.ok()) return PrintError(stub.status());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::AuditRequest request;
  const absl::Time now = absl::Now();
  SetTimestamp(now - since, request.mutable_since());
  request.set_limit(1000);
  v1::AuditResponse response;
  if (grpc::Status s = (*stub)->Audit(&context, request, &response); !s.ok()) {
    return ControllerError(o.controller, FromGrpcStatus(s));
  }
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
