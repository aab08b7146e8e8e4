// The health check of `ntpfleetctl status --max-skew D [--min-nodes N]`: rules
// that a fleet must pass, each naming the nodes that break it, so that a check
// that passes means the fleet was seen and is keeping time — never that
// nothing was looked at.
//
// Rules (HealthRule), checked together; the check fails when any one does:
//   skew          the fleet's skew (Fleet.skew, the controller's, of all
//                 nodes: filters do not change it) is above --max-skew;
//   min-nodes     fewer than --min-nodes (default 1) of the nodes shown are
//                 counted in the skew (CONNECTED, reporting SYNCHRONISED,
//                 SYNCING or LOCAL_CLOCK: Node.deviation is set): with no node
//                 counted the skew is 0 and proves nothing;
//   stale         a node shown is STALE (stream open, silent for 3 report
//                 intervals);
//   disconnected  a node shown is DISCONNECTED (known to the inventory, no
//                 stream);
//   unsynchronised a node shown is CONNECTED and not keeping time
//                 (fleet_view.h NotSynchronised: unsynchronised, holdover,
//                 refused, no report yet, a client on its local clock; SYNCING
//                 passes: its offset is counted in the skew and flagged if
//                 large);
//   flagged       a node shown is flagged (|offset| or |deviation| beyond the
//                 controller's threshold);
//   crosscheck    a node shown is crosscheck-flagged (Node.crosscheck.flagged:
//                 the other nodes measured its clock further from what it
//                 reports than its own error bound plus 3 x the measurement's
//                 uncertainty; docs/CROSSCHECK.md). A controller without the
//                 crosscheck flags no node: the rule passes.
// The node rules look at the nodes shown (after --label, --state and name
// filters); --allow RULE tolerates a node rule: its nodes are still reported,
// as allowed, but do not fail the check (a maintenance window: --allow
// disconnected; a decommissioned node is better forgotten: `ntpfleetctl
// forget NODE`).
//
//   HealthOptions h;
//   h.max_skew = absl::Milliseconds(1);
//   HealthReport r = CheckHealth(fleet, SelectNodes(fleet, filter, key), h);
//   if (!r.healthy()) { std::cerr << FormatHealthReport(r); return 3; }
//
// Thread safety: pure functions of their arguments; safe to call concurrently.
#ifndef NTPFLEET_CTL_FLEET_HEALTH_H_
#define NTPFLEET_CTL_FLEET_HEALTH_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {

enum class HealthRule {
  kSkew,
  kMinNodes,
  kStale,
  kDisconnected,
  kUnsynchronised,
  kFlagged,
  kCrosscheck,
};
// "skew", "min-nodes", "stale", "disconnected", "unsynchronised", "flagged",
// "crosscheck".
absl::string_view RuleName(HealthRule rule);
// The values of --allow (each may be a comma list): only the node rules
// (stale, disconnected, unsynchronised, flagged, crosscheck); InvalidArgument
// otherwise.
absl::StatusOr<std::vector<HealthRule>> ParseAllowedRules(
    const std::vector<std::string>& values);

struct HealthOptions {
  std::optional<absl::Duration> max_skew;  // unset: no skew rule
  int min_nodes = 1;                       // counted nodes among those shown
  std::vector<HealthRule> allow;           // node rules tolerated
};

// How many node names a message lists before "and N more".
inline constexpr size_t kListedNodes = 5;

struct RuleResult {
  HealthRule rule;
  // What is wrong, with the names (the first kListedNodes, then "and N
  // more"): "2 nodes connected but silent for 3 report intervals: a, b".
  std::string message;
  // Every node that breaks the rule, in the order shown (empty for skew and
  // min-nodes).
  std::vector<std::string> nodes;
};

struct HealthReport {
  std::vector<RuleResult> failed;   // in HealthRule order
  std::vector<RuleResult> allowed;  // broken, but tolerated by --allow
  bool healthy() const { return failed.empty(); }
};

// `shown` points into `fleet`: the nodes the view selected.
HealthReport CheckHealth(const v1::Fleet& fleet,
                         const std::vector<const v1::Node*>& shown,
                         const HealthOptions& options);

// For stderr, one line per rule:
//   "ntpfleetctl: unhealthy: skew: fleet skew 41.894ms exceeds --max-skew
//   1.000ms"
//   "ntpfleetctl: unhealthy: stale: 1 node connected but silent ...: web-7"
//   "ntpfleetctl: allowed (--allow disconnected): disconnected: ..."
// Empty for a healthy report without allowed rules.
std::string FormatHealthReport(const HealthReport& report);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_FLEET_HEALTH_H_
