// `ntpfleetctl nodes`: the inventory, every node the controller knows.
#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "ctl/commands.h"
#include "ctl/fleet_view.h"
#include "google/protobuf/arena.h"

namespace ntpfleet::ctl {

int RunNodes(const CommonOptions& o, const ViewOptions& view) {
  google::protobuf::ArenaOptions arena_options;
  arena_options.max_block_size = 4 << 20;
  google::protobuf::Arena arena(arena_options);
  // Addresses and config digests are only in the full Hellos.
  const v1::Fleet* fleet = FetchFleet(o, /*summary=*/false, &arena);
  if (fleet == nullptr) return 1;
  RenderOptions r;
  r.now = absl::Now();
  r.color = o.color;
  absl::StatusOr<std::string> text = RenderNodesView(*fleet, view, r);
  if (!text.ok()) return PrintError(text.status());
  std::fputs(text->c_str(), stdout);
  return 0;
}

}  // namespace ntpfleet::ctl
