// `ntpfleetctl peers [NODE]`: a node's upstreams in ntpq -p's layout — this
// node's from the local agent, or any node's through the controller.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <string>

#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/local_control.h"
#include "ctl/commands.h"
#include "ctl/render_fleet.h"
#include "ctl/render_peers.h"

namespace ntpfleet::ctl {

int RunPeers(const CommonOptions& o, const std::string& node) {
  v1::SyncStatus status;
  if (node.empty()) {
    v1::LocalRequest request;
    request.mutable_status();
    absl::StatusOr<v1::LocalResponse> r =
        local_control::CallAgent(o.control_socket, request, absl::Seconds(5));
    if (!r.ok()) return PrintError(r.status());
    status = r->status().status();
  } else {
    absl::StatusOr<std::unique_ptr<v1::FleetService::Stub>> connected =
        ConnectController(o);
    if (!connected.ok()) return PrintError(connected.status());
    auto& stub = *connected;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    v1::GetNodeRequest request;
    request.set_name(node);
    v1::Node n;
    if (grpc::Status s = stub->GetNode(&context, request, &n); !s.ok()) {
      return ControllerError(o.controller, FromGrpcStatus(s));
    }
    if (!n.has_status()) {
      std::fprintf(stderr, "ntpfleetctl: %s has not reported its status yet\n",
                   node.c_str());
      return 1;
    }
    status = n.status();
  }
  if (o.json) {
    absl::StatusOr<std::string> json = ToJson(status);
    if (!json.ok()) return PrintError(json.status());
    std::fputs(json->c_str(), stdout);
    return 0;
  }
  std::fputs(RenderPeersWithReasons(status).c_str(), stdout);
  return 0;
}

}  // namespace ntpfleet::ctl
