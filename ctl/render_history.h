// `ntpfleetctl history NODE`: one node's history (HistoryResponse.node_points)
// as text. A pure function of the message and the span asked: no IO, no
// clock.
//
// clang-format off
//   web-1: 2026-12-03 19:05:00 .. 2026-12-04 19:05:00 UTC at 1m resolution, 1 380 of 1 440 buckets with reports
//
//   offset  ▄▄▅▄▄▃▄▄  ▄▄▄▅▇█▄▄▄▄▄▄▄▄▄▄▄▄  min -48µs  max +1.200ms  last +12µs
//   bound   ▁▁▁▁▁▁▁▁  ▁▁▁▂▅█▁▁▁▁▁▁▁▁▁▁▁▁  max 1.712ms  last 403µs
//           one column = 24m; blank: no report
//   stratum 2..3, 86 400 reports
//
//   state changes:
//     2026-12-04 03:12:00  synchronised -> no reports
//     2026-12-04 03:20:00  no reports -> holdover
//     2026-12-04 03:21:00  holdover -> synchronised
//
//   TIME (UTC)           OFFSET MIN  OFFSET MAX  OFFSET LAST  ERROR BOUND  ST  WORST STATE     REPORTS
//   2026-12-03 19:05:00       -48µs       +15µs        +12µs        403µs   2  synchronised       3600
// clang-format on
//
// The sparklines have one column per equal slice of the span asked (at most
// kSparklineWidth, at most one per bucket); a column with no report is a
// space, so a silent node shows as a gap. Offset: each column shows the
// offset of its slice farthest from zero, scaled from the smallest (▁) to
// the largest (█) over the span. Bound: each column's largest error bound,
// from 0 (▁) to the largest (█); '?' when the node reported no bound (not
// synchronised). The table groups consecutive buckets into at most
// kHistoryRows rows (each row: its first bucket's time, the extremes of the
// group, its last offset, its worst state).
//
// State changes list each change of the buckets' worst state, and "no
// reports" for a stretch with no bucket longer than three times the usual
// spacing of the buckets (so a node reporting every 10 s is not "silent"
// between reports in the 1 s tier).
//
// Units as render_fleet.h (FormatOffset, FormatDuration); times UTC; never
// coloured; control characters in the node name shown as '?'.
#ifndef NTPFLEET_CTL_RENDER_HISTORY_H_
#define NTPFLEET_CTL_RENDER_HISTORY_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {

inline constexpr int kHistoryRows = 24;

// The span the history was asked for (HistoryRequest.start and end).
struct NodeHistorySpan {
  std::string node;
  absl::Time start;
  absl::Time end;
};

// The offset sparkline of `points` over `span` (see the top of this file),
// `columns` wide (one per bucket of `resolution` if fewer).
std::string RenderOffsetSparkline(
    const std::vector<ntpfleet::v1::NodePoint>& points,
    const NodeHistorySpan& span, absl::Duration resolution, int columns);

// The error-bound sparkline, alike.
std::string RenderBoundSparkline(
    const std::vector<ntpfleet::v1::NodePoint>& points,
    const NodeHistorySpan& span, absl::Duration resolution, int columns);

// The whole view.
std::string RenderNodeHistory(const ntpfleet::v1::HistoryResponse& history,
                              const NodeHistorySpan& span);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_RENDER_HISTORY_H_
