// The controller-backed views of ntpfleetctl: `status` (alias `skew`),
// `watch`, `history` and `resync`, each as text for a terminal, and `--output
// json` for scripts. Pure functions of the messages FleetService returns: no
// IO, no clock (the caller passes "now" in RenderOptions).
//
// clang-format off
//   fleet skew 2.100ms (threshold 1.000ms), max error bound 2.345ms
//   8 nodes: 6 connected, 1 stale, 1 flagged, 2 duplicate names
//
//   NODE            STATE               OFFSET  ERROR BOUND  ST  REFID            REACH  LAST SEEN  FLAGS
//   db-1            synchronised      +1.500ms      1.712ms  11  192.168.242.51     376   1.0s ago  FLAGGED
//   web-1           synchronised        -312µs        403µs  11  192.168.242.51     377   2.3s ago
//   cache-1         STALE                -45µs        950µs  11  192.168.242.51     177     3m ago
//   batch-7         DISCONNECTED             -            -   -  -                    -     2d ago
// (tests/ctl/testdata/fleet_*.txt show every view in full.)
// clang-format on
//
// Units: offsets, skews and error bounds are printed by FormatOffset() and
// FormatDuration(): microseconds below 1 ms, milliseconds with 3 decimals
// below 1 s, seconds with 3 decimals above. The sign of an offset follows the
// API's convention (reference minus local: '+' means the node is behind).
// Times are UTC. Every line, the last included, ends with '\n'; no line ends
// in a space. Control characters in names, refids and errors are shown as '?'
// (a node name cannot break a row or send escape codes to the terminal).
// Widths are counted in code points, so "µ" and other non-ASCII text keep
// the columns aligned (East Asian wide characters would not).
//
// Example:
//   ntpfleet::ctl::RenderOptions opts;
//   opts.now = absl::Now();              // In the command, never in here.
//   opts.color = isatty(STDOUT_FILENO);  // The caller decides.
//   std::cout << ntpfleet::ctl::RenderFleetStatus(fleet, opts);
//
// Thread safety: pure functions of their arguments; safe to call concurrently.
#ifndef NTPFLEET_CTL_RENDER_FLEET_H_
#define NTPFLEET_CTL_RENDER_FLEET_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {

struct RenderOptions {
  // "Now" for the ages in LAST SEEN and the title of a watch frame. Node
  // last_seen is the controller's clock: Fleet.as_of (the controller's clock
  // when it answered) gives ages free of any offset between the two hosts.
  absl::Time now;
  // ANSI colours, and the watch frame's clear-screen; only for a terminal.
  // When false the output contains no escape sequence at all.
  bool color = false;
};

// The most points a sparkline shows.
inline constexpr int kSparklineWidth = 60;

// How many hex digits of a config digest a table shows (as git shortens a
// hash: enough to tell a fleet's few configurations apart).
inline constexpr size_t kShortDigest = 12;

// Which nodes a status table shows, in which order, and how: ctl/fleet_view.h
// chooses them (filters, --sort, --output wide).
struct StatusRows {
  // Pointers into the fleet being rendered, in the order shown.
  std::vector<const ntpfleet::v1::Node*> nodes;
  // What selected them ("label rack=a1, state stale"). Non-empty adds the line
  // "12 of 10000 nodes shown (label rack=a1, state stale)" under the header,
  // whose skew and counts stay the whole fleet's. Empty: no filter.
  std::string filter;
  // Adds ROLE, VERSION, ADDRESSES, LABELS, DIGEST (kShortDigest hex digits),
  // MEASURED and DISAGREE (Node.crosscheck) before FLAGS; "-" where the Hello
  // does not say (a summary fleet has no addresses nor digest).
  bool wide = false;
};

// A signed offset in human units, sign always shown: "+312µs", "-1.234ms",
// "+2.500s". Rounded half up on the magnitude; the sign is that of the value
// before rounding ("-0µs" for -0.2 µs, as ntpq keeps "-0.000"). Infinite
// durations are "+inf" / "-inf".
std::string FormatOffset(absl::Duration d);

// A magnitude (skew, error bound, threshold) in the same units, without '+':
// "312µs", "1.234ms", "2.500s" ('-' kept if negative). Call it qualified
// (ctl::FormatDuration): argument-dependent lookup also finds
// absl::FormatDuration, and an unqualified call does not compile.
std::string FormatDuration(absl::Duration d);

// A time as "2026-11-25 23:41:10" (UTC, whole seconds).
std::string FormatUtc(absl::Time t);

// "client", "server", or "" for ROLE_UNSPECIFIED (and anything newer).
std::string RoleName(ntpfleet::v1::Role role);

// A Hello's labels as "rack=a1,zone=b", sorted by key; "" without labels.
// Not made printable: the caller does that for a terminal.
std::string FormatLabels(const ntpfleet::v1::Hello& hello);

// How long ago, coarser as it grows: "0.4s ago" (tenths below 10 s), "12s
// ago", "3m ago", "5h ago", "2d ago"; each unit truncated, not rounded. A
// negative age (clocks of two hosts disagreeing) is shown as "0.0s ago".
std::string FormatAge(absl::Duration age);

// The skew of each point as one of ▁▂▃▄▅▆▇█, scaled so that 0 is ▁ and the
// largest skew among the points is █ (level = round(7 * skew / max)); all ▁
// when every skew is 0. More than kSparklineWidth points are grouped, in
// order, into kSparklineWidth columns, each showing the largest skew of its
// group (a short spike stays visible). Empty for no points.
std::string RenderSparkline(const std::vector<ntpfleet::v1::SkewPoint>& points);

// `ntpfleetctl status`: two header lines (fleet skew with the threshold, max
// error bound; the node counts as the controller gives them, plus the number
// of nodes with a duplicate name), then, from a controller with the crosscheck
// (Fleet.fleet_bound or mesh_skew_p99 set), a third: "fleet bound ±2.100ms
// (two largest bounds)  mesh p99 41µs (5 nodes measured)", with ", N
// crosscheck-flagged" when any is (docs/CROSSCHECK.md); a blank line, then
// one row per node:
// NODE, STATE (STALE/DISCONNECTED override the sync state), OFFSET, ERROR
// BOUND, ST (stratum), REFID (cut to 15), REACH (octal, of the system peer,
// else of the first peer), LAST SEEN (relative to opts.now), FLAGS ("FLAGGED",
// "CROSSCHECK": the mesh contradicts its report, "DUPLICATE NAME"). "-" marks a
// value the node has not reported. Rows are sorted by |offset|, largest first;
// nodes without a status last; ties by name. Every column is as wide as its
// widest cell (NODE grows with the longest name; the others have room for the
// usual values, so a watch frame does not jump). Then, after a blank line,
// "NODE: REASON" for every node whose status carries a reason
// (SyncStatus.reason: who refused it, a clock beyond the panic threshold), in
// the rows' order. STATE "REFUSED": every server refused the node (KoD DENY).
// Colours: red for flagged, duplicate, stale, disconnected, unsynchronised and
// refused; yellow for syncing, holdover and a client on its local clock; green
// for synchronised and the server on its local clock; the skew is red above the
// threshold.
std::string RenderFleetStatus(const ntpfleet::v1::Fleet& fleet,
                              const RenderOptions& opts);
// The same with the rows the caller chose (StatusRows): the two header lines
// are the whole fleet's, then the "N of M nodes shown" line when filtered,
// then the table of `shown.nodes` in their order ("no node matches" when there
// is none), then their reasons.
std::string RenderFleetStatus(const ntpfleet::v1::Fleet& fleet,
                              const StatusRows& shown,
                              const RenderOptions& opts);

// One frame of `ntpfleetctl watch`, for the caller to redraw in place: with
// opts.color, first "\x1b[H\x1b[2J" (cursor home, clear screen); then the
// title "ntpfleetctl watch  2026-11-25 23:41:10 UTC" (opts.now), a blank
// line, the sparkline of the last kSparklineWidth points of `history`
// labelled with their min and max skew, a blank line, and
// RenderFleetStatus(fleet, opts).
std::string RenderWatchFrame(
    const ntpfleet::v1::Fleet& fleet,
    const std::vector<ntpfleet::v1::SkewPoint>& history,
    const RenderOptions& opts);
// The same with the rows the caller chose (see RenderFleetStatus above).
std::string RenderWatchFrame(
    const ntpfleet::v1::Fleet& fleet,
    const std::vector<ntpfleet::v1::SkewPoint>& history,
    const StatusRows& shown, const RenderOptions& opts);

// `ntpfleetctl history`: the sparkline of all points (grouped to
// kSparklineWidth) with the min and max skew, a blank line, then a table
// TIME (UTC), SKEW, MAX ERROR BOUND, NODES, FLAGGED, one row per point in the
// order given. With opts.color a non-zero FLAGGED is red.
std::string RenderHistory(const ntpfleet::v1::HistoryResponse& history,
                          const RenderOptions& opts);

// `ntpfleetctl resync`: one row per node in the order given: NODE, OUTCOME
// (ok, failed, timed out, NOT CONNECTED, dry run), OFFSET BEFORE, OFFSET
// AFTER, ACTION (stepped/slewed, for "ok" only), [CONTROLLER,] ERROR; then a
// summary such as "3 nodes: 2 ok, 1 not connected". CONTROLLER (which one
// asked the node) only when some result names one (ntpfleetctl asked several
// controllers). Never coloured: the result is read once, often from a
// script's log.
std::string RenderResync(const ntpfleet::v1::ResyncResponse& response);

// `ntpfleetctl audit`: one row per resync request, newest first: WHEN (age),
// BY (the verified identity), RESYNC (the selector and flags), RESULTS
// (outcomes counted), REQUEST (its id). Never coloured.
std::string RenderAudit(const ntpfleet::v1::AuditResponse& audit,
                        absl::Time now);

// For the exit code of `ntpfleetctl resync`: true when every node's outcome
// is OK or DRY_RUN. False when no node was selected: a selector that matches
// nothing is more likely a typo than a success.
bool ResyncSucceeded(const ntpfleet::v1::ResyncResponse& response);

// `--output json` of any of the above: the message as pretty-printed JSON
// (protobuf's canonical mapping) ending in '\n'. Field names are the proto's
// own (snake_case: "error_bound", "last_seen"), as the .proto and the docs
// spell them, not the lowerCamelCase default; fields at their default value
// are printed too (a script reads "flagged": false, not a missing key); enums
// by name. JsonStringToMessage() reads the output back to an equal message.
// Fails (kInvalidArgument) on values JSON cannot carry, such as a Duration
// beyond ±10000 years. `one_line`: without the whitespace, a single line (JSON
// Lines, for `watch`: one document per update).
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message,
                                   bool one_line = false);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_RENDER_FLEET_H_
