// `ntpfleetctl forget NODE`: removes a decommissioned node from the
// controller's inventory (admin). A node still connected is refused: stop its
// agent first.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <string>

#include "common/grpc_status.h"
#include "ctl/commands.h"
#include "ctl/fleet_client.h"

namespace ntpfleet::ctl {

int RunForget(const CommonOptions& o, const std::string& node) {
  absl::StatusOr<std::unique_ptr<FleetClient>> client = ConnectFleet(o);
  if (!client.ok()) return PrintError(client.status());
  // On every controller (ctl/fleet_client.h).
  if (absl::Status s = (*client)->Forget(node, absl::Seconds(10)); !s.ok()) {
    return ControllerError(o.controller, s);
  }
  std::printf(
      "forgot %s: it is no longer listed (its history and audit "
      "records are kept)\n",
      node.c_str());
  return 0;
}

}  // namespace ntpfleet::ctl
