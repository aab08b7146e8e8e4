// `ntpfleetctl status` (alias `skew`): the fleet in one table.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <optional>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "ctl/commands.h"
#include "ctl/fleet_client.h"
#include "ctl/render_fleet.h"
#include "google/protobuf/arena.h"

namespace ntpfleet::ctl {

int RunStatus(const CommonOptions& o, std::optional<absl::Duration> max_skew) {
  absl::StatusOr<std::unique_ptr<FleetClient>> client = ConnectFleet(o);
  if (!client.ok()) return PrintError(client.status());
  // Parsed onto an arena: a fleet of thousands of nodes is hundreds of
  // thousands of small messages, and one arena is a few large allocations.
  google::protobuf::ArenaOptions arena_options;
  arena_options.max_block_size = 4 << 20;
  google::protobuf::Arena arena(arena_options);
  v1::Fleet& fleet = *google::protobuf::Arena::CreateMessage<v1::Fleet>(&arena);
  v1::GetFleetRequest request;
  // The table shows one peer row per node; JSON has them all.
  request.set_summary(!o.json);
  // One controller's, or several merged (ctl/fleet_client.h).
  if (absl::Status s = (*client)->GetFleet(request, absl::Seconds(10), &fleet);
      !s.ok()) {
    return ControllerError(o.controller, s);
  }
  if (o.json) {
    absl::StatusOr<std::string> json = ToJson(fleet);
    if (!json.ok()) return PrintError(json.status());
    std::fputs(json->c_str(), stdout);
  } else {
    RenderOptions r;
    r.now = absl::Now();
    r.color = o.color;
    std::fputs(RenderFleetStatus(fleet, r).c_str(), stdout);
  }
  if (max_skew && FromProto(fleet.skew()) > *max_skew) {
    std::fprintf(stderr, "ntpfleetctl: fleet skew %s exceeds --max-skew %s\n",
                 ctl::FormatDuration(FromProto(fleet.skew())).c_str(),
                 ctl::FormatDuration(*max_skew).c_str());
    return 3;
  }
  return 0;
}

}  // namespace ntpfleet::ctl
