// `ntpfleetctl peers [NODE]`: a node's upstreams in ntpq -p's layout — this
// node's from the local agent, or any node's through the controller.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/local_control.h"
#include "common/proto_time.h"
#include "ctl/commands.h"
#include "ctl/fleet_client.h"
#include "ctl/render_fleet.h"
#include "ctl/render_peers.h"

namespace ntpfleet::ctl {

int RunPeers(const CommonOptions& o, const std::string& node) {
  v1::SyncStatus status;
  // The local agent's streams to its controllers (table output only).
  std::string links;
  if (node.empty()) {
    v1::LocalRequest request;
    request.mutable_status();
    absl::StatusOr<v1::LocalResponse> r =
        local_control::CallAgent(o.control_socket, request, absl::Seconds(5));
    if (!r.ok()) return PrintError(r.status());
    status = r->status().status();
    const absl::Time now = absl::Now();
    for (const v1::ControllerLink& c : r->status().controllers()) {
      absl::StrAppend(
          &links, "controller ", c.address(), ": ",
          c.connected() ? "connected" : "NOT CONNECTED",
          c.has_since()
              ? absl::StrCat(" (since ", FormatAge(now - FromProto(c.since())),
                             ")")
              : "",
          !c.connected() && !c.last_error().empty()
              ? absl::StrCat(": ", c.last_error())
              : "",
          "\n");
    }
  } else {
    absl::StatusOr<std::unique_ptr<FleetClient>> client = ConnectFleet(o);
    if (!client.ok()) return PrintError(client.status());
    // The freshest report of the node among the controllers.
    absl::StatusOr<v1::Node> found =
        (*client)->GetNode(node, absl::Seconds(10));
    if (!found.ok()) return ControllerError(o.controller, found.status());
    const v1::Node& n = *found;
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
  if (!links.empty()) std::fputs(absl::StrCat("\n", links).c_str(), stdout);
  return 0;
}

}  // namespace ntpfleet::ctl
