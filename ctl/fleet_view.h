// Views of the fleet for `ntpfleetctl status`, `watch` and `nodes`: which
// nodes (filters), in which order (--sort), and in which form (--output).
// Pure functions of a v1::Fleet: no IO, no clock (the caller passes "now" in
// RenderOptions), so the commands only fetch and print.
//
// Filters (all given must match; within --state and within the name globs any
// one value is enough):
//   --label K=V     the node's Hello has label K with value exactly V
//                   (repeatable: every one must match);
//   --state S[,S]   the node is in any of these states (repeatable), see
//                   StateName below;
//   NAME-GLOB...    positional: fnmatch(3) patterns on the node's name
//                   ("web-*", "db-[12]"), any one matching.
// A filter never changes the fleet-wide lines: the skew, the error bound and
// the counts are the controller's, of every node; a filtered table says "12 of
// 10000 nodes shown (...)" under them.
//
// Sort keys (--sort), each "worst first", ties by name:
//   offset     largest |offset| first, nodes without a status last (default
//              for status and watch);
//   bound      largest error bound first; a bound relative to the node's own
//              clock (the server on its local clock) and no bound last;
//   name       by name (default for nodes);
//   last-seen  longest silent first, never seen first of all.
//
// Output (--output):
//   table  the status table (render_fleet.h) / the inventory table;
//   wide   the table plus ROLE, VERSION, ADDRESSES, LABELS, DIGEST, and the
//          crosscheck's MEASURED (the mesh's measurement of the node's offset)
//          and DISAGREE (reported minus measured) (status), or plus PEER and
//          the full digest (nodes);
//   json   the v1::Fleet message as before (render_fleet.h ToJson), with only
//          the nodes shown, in the order shown; skew and counts unchanged;
//   csv    a header line, then one line per node (kCsvColumns), RFC 4180
//          quoting (a field with a comma, a double quote, CR or LF is quoted,
//          quotes doubled), lines ending in LF.
//
// Example:
//   absl::StatusOr<NodeFilter> filter = ParseNodeFilter({"rack=a1"}, {"stale"},
//                                                       {"web-*"});
//   ViewOptions view{*filter, SortKey::kOffset, OutputFormat::kTable};
//   absl::StatusOr<std::string> text = RenderStatusView(fleet, view, opts);
//
// Thread safety: pure functions of their arguments; safe to call concurrently.
#ifndef NTPFLEET_CTL_FLEET_VIEW_H_
#define NTPFLEET_CTL_FLEET_VIEW_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ctl/render_fleet.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {

enum class OutputFormat { kTable, kWide, kJson, kCsv };
// "table" (or "text"), "wide", "json", "csv"; InvalidArgument otherwise.
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view s);

enum class SortKey { kOffset, kBound, kName, kLastSeen };
// "offset", "bound", "name", "last-seen"; InvalidArgument otherwise.
absl::StatusOr<SortKey> ParseSortKey(absl::string_view s);

// The values of --state. Three dimensions, any mix of which may be asked for:
enum class StateName {
  // The connection (Node.connection).
  kConnected,     // "connected"
  kStale,         // "stale": a live stream silent for 3 report intervals
  kDisconnected,  // "disconnected": known, no stream
  // The sync state of the node's latest status, whatever its connection.
  kSynchronised,    // "synchronised"
  kSyncing,         // "syncing"
  kUnsynchronised,  // "unsynchronised"
  kHoldover,        // "holdover"
  kLocalClock,      // "local-clock"
  kRefused,         // "refused"
  kNoReport,        // "no-report": no status yet
  // Marks.
  kFlagged,    // "flagged": |offset| or |deviation| beyond the threshold
  kDuplicate,  // "duplicate": another live agent claims the name
  // "crosscheck": the mesh measured its clock elsewhere than it reports
  // (Node.crosscheck.flagged; docs/CROSSCHECK.md).
  kCrosscheck,
  // The health check's node rules (fleet_health.h): "unhealthy" is a node
  // that is stale, disconnected, flagged, crosscheck-flagged, or connected
  // and not synchronised (NotSynchronised); "healthy" is any other node.
  kHealthy,
  kUnhealthy,
};
// Each value may be a comma list ("stale,disconnected"); InvalidArgument
// naming the unknown word and listing the known ones.
absl::StatusOr<std::vector<StateName>> ParseStates(
    const std::vector<std::string>& values);
// The word for `state`, as ParseStates reads it.
absl::string_view StateWord(StateName state);
bool HasState(const v1::Node& node, StateName state);

// The health check's "unsynchronised" rule for one node: CONNECTED and its
// latest status is not one that keeps time — anything but SYNCHRONISED,
// SYNCING (a source is selected and the offset is being brought in: the node
// is counted in the skew, and a large offset gets it flagged), or
// LOCAL_CLOCK on the fleet's server (ROLE_SERVER: serving its own clock is
// its job without an upstream; on a client it is a problem). A connected node
// without a status yet is not synchronised either. Stale and disconnected
// nodes are left to their own rules: their status is old.
bool NotSynchronised(const v1::Node& node);

// The node's state in words, for the health check's messages and CSV:
// "synchronised", "syncing", "unsynchronised", "holdover", "local-clock",
// "refused", "no-report" (or "unknown").
absl::string_view SyncWord(const v1::Node& node);
// "connected", "stale", "disconnected" (or "unknown").
absl::string_view ConnectionWord(const v1::Node& node);

struct NodeFilter {
  std::vector<std::pair<std::string, std::string>> labels;  // all must match
  std::vector<StateName> states;                            // any one
  std::vector<std::string> name_globs;                      // any one
  // Whether any filter is given.
  bool active() const;
  // "label rack=a1, state stale|disconnected, name web-*" (empty when not
  // active): what a filtered header says.
  std::string Describe() const;
};
// From the flag values: labels "K=V" (non-empty K; InvalidArgument otherwise),
// states as ParseStates, globs as given (an empty one is InvalidArgument).
absl::StatusOr<NodeFilter> ParseNodeFilter(
    const std::vector<std::string>& labels,
    const std::vector<std::string>& states,
    const std::vector<std::string>& name_globs);
bool Matches(const NodeFilter& filter, const v1::Node& node);

// The nodes of `fleet` that match, sorted by `key` (stable: between equal keys
// and equal names, the controller's order). Pointers into `fleet`.
std::vector<const v1::Node*> SelectNodes(const v1::Fleet& fleet,
                                         const NodeFilter& filter, SortKey key);

struct ViewOptions {
  NodeFilter filter;
  // Unset: the command's default (offset for status and watch, name for
  // nodes; JSON keeps the controller's order unless --sort is given).
  std::optional<SortKey> sort;
  OutputFormat output = OutputFormat::kTable;
};

// Whether the view needs full Hellos (addresses, config digest) and every
// peer, i.e. GetFleet without `summary`: wide, csv and json (json prints the
// whole message, as it always has). A summary has everything else the filters
// and the table need (labels included).
bool NeedsFullFleet(const ViewOptions& view);

// The fleet with only the shown nodes, in their order; every other field as
// given (skew, counts, as_of: the whole fleet's).
v1::Fleet ShownFleet(const v1::Fleet& fleet,
                     const std::vector<const v1::Node*>& shown);

// The CSV columns, in order, as the header line names them. Durations are
// signed decimal seconds with nanosecond precision ("-0.000312000"), times
// RFC 3339 UTC ("2026-11-25T23:41:10.250Z"); a value the node has not
// reported is empty. error_bound is empty and error_bound_local "true" for a
// bound relative to the node's own clock. reach is octal, as ntpq prints it.
// labels "k=v,k=v" sorted by key, addresses comma-separated. The crosscheck_*
// columns are Node.crosscheck (docs/CROSSCHECK.md): empty when no node has
// measured this one; crosscheck_flagged "true"/"false".
inline constexpr absl::string_view kCsvColumns[] = {
    "name",
    "connection",
    "state",
    "offset",
    "error_bound",
    "error_bound_local",
    "stratum",
    "refid",
    "reach",
    "deviation",
    "flagged",
    "duplicate_name",
    "last_seen",
    "first_seen",
    "role",
    "agent_version",
    "addresses",
    "labels",
    "config_digest",
    "peer",
    // Added with the crosscheck (#14), at the end: scripts that read the
    // columns above by position keep working.
    "crosscheck_measured_offset",
    "crosscheck_uncertainty",
    "crosscheck_disagreement",
    "crosscheck_flagged",
    "crosscheck_probed_by",
};
// The header line and one line per node of `shown`.
std::string RenderCsv(const std::vector<const v1::Node*>& shown);
// One CSV field, quoted when RFC 4180 needs it.
std::string CsvField(absl::string_view value);

// `ntpfleetctl status` in view.output; json can fail (render_fleet.h ToJson).
absl::StatusOr<std::string> RenderStatusView(const v1::Fleet& fleet,
                                             const ViewOptions& view,
                                             const RenderOptions& opts);
// One frame of `ntpfleetctl watch` (table and wide: RenderWatchFrame; json:
// one Fleet on one line, as RenderStatusView's but without whitespace; csv:
// the lines of this update, the header only when `first_frame`).
absl::StatusOr<std::string> RenderWatchView(
    const v1::Fleet& fleet, const std::vector<v1::SkewPoint>& history,
    const ViewOptions& view, const RenderOptions& opts, bool first_frame);

// `ntpfleetctl nodes`, the inventory: one row per node shown (sorted by name
// unless view.sort says otherwise): NODE, CONNECTION, ROLE, VERSION,
// ADDRESSES, LABELS, DIGEST (kShortDigest hex digits; wide: all of it),
// FIRST SEEN (UTC), LAST SEEN (age from opts.now); wide adds PEER (where the
// controller sees its stream come from). Above the table "N nodes" or "N of M
// nodes shown (...)". csv and json as for status.
absl::StatusOr<std::string> RenderNodesView(const v1::Fleet& fleet,
                                            const ViewOptions& view,
                                            const RenderOptions& opts);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_FLEET_VIEW_H_
