// `ntpfleetctl drift`: nodes grouped by configuration digest, and the odd ones
// out; exit 3 when there are any, so that it can be a check.
#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "ctl/commands.h"
#include "ctl/fleet_drift.h"
#include "ctl/fleet_view.h"
#include "google/protobuf/arena.h"

namespace ntpfleet::ctl {

int RunDrift(const CommonOptions& o, const ViewOptions& view,
             const std::string& by_label) {
  google::protobuf::ArenaOptions arena_options;
  arena_options.max_block_size = 4 << 20;
  google::protobuf::Arena arena(arena_options);
  // Config digests are only in the full Hellos.
  const v1::Fleet* fleet = FetchFleet(o, /*summary=*/false, &arena);
  if (fleet == nullptr) return 1;
  const DriftReport report =
      FindDrift(SelectNodes(*fleet, view.filter, SortKey::kName), by_label);
  RenderOptions r;
  r.now = absl::Now();
  r.color = o.color;
  absl::StatusOr<std::string> text = RenderDrift(report, view.output, r);
  if (!text.ok()) return PrintError(text.status());
  std::fputs(text->c_str(), stdout);
  if (report.nodes == 0) {
    std::fprintf(stderr, "ntpfleetctl: drift: no node to compare%s\n",
                 view.filter.active() ? " (no node matches the filters)" : "");
    return 3;
  }
  if (report.drift()) {
    std::fflush(stdout);
    std::fprintf(stderr,
                 "ntpfleetctl: drift: %zu node%s with a configuration other "
                 "than the most common of %s\n",
                 report.odd.size(), report.odd.size() == 1 ? "" : "s",
                 by_label.empty() ? "its role" : "its cohort");
    return 3;
  }
  return 0;
}

}  // namespace ntpfleet::ctl
