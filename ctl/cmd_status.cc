// `ntpfleetctl status` (alias `skew`): the fleet in one table, and with
// --max-skew/--min-nodes the health check.
#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "ctl/commands.h"
#include "ctl/fleet_health.h"
#include "ctl/fleet_view.h"
#include "google/protobuf/arena.h"

namespace ntpfleet::ctl {

int RunStatus(const CommonOptions& o, const StatusOptions& s) {
  // Parsed onto an arena: a fleet of thousands of nodes is hundreds of
  // thousands of small messages, and one arena is a few large allocations.
  google::protobuf::ArenaOptions arena_options;
  arena_options.max_block_size = 4 << 20;
  google::protobuf::Arena arena(arena_options);
  // The table shows one peer row per node and filters on labels: a summary
  // has both. wide, csv and json show what only the full Hellos have.
  const v1::Fleet* fleet = FetchFleet(o, !NeedsFullFleet(s.view), &arena);
  if (fleet == nullptr) return 1;
  RenderOptions r;
  r.now = absl::Now();
  r.color = o.color;
  absl::StatusOr<std::string> text = RenderStatusView(*fleet, s.view, r);
  if (!text.ok()) return PrintError(text.status());
  std::fputs(text->c_str(), stdout);
  if (!s.check) return 0;
  const HealthReport report = CheckHealth(
      *fleet, SelectNodes(*fleet, s.view.filter, SortKey::kOffset), s.health);
  std::fflush(stdout);
  std::fputs(FormatHealthReport(report).c_str(), stderr);
  return report.healthy() ? 0 : 3;
}

}  // namespace ntpfleet::ctl
