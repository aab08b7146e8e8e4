#include "ctl/fleet_health.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/proto_time.h"
#include "ctl/fleet_view.h"
#include "ctl/printable.h"
#include "ctl/render_fleet.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::v1::Fleet;
using ::ntpfleet::v1::Node;

constexpr HealthRule kNodeRules[] = {
    HealthRule::kStale,          HealthRule::kDisconnected,
    HealthRule::kUnsynchronised, HealthRule::kFlagged,
    HealthRule::kCrosscheck,
};

std::string Nodes(size_t n) {
  return absl::StrCat(n, n == 1 ? " node" : " nodes");
}

// "a, b, c, d, e and 3 more", each name printable and with its detail.
std::string List(const std::vector<std::string>& items) {
  const size_t listed = std::min(items.size(), kListedNodes);
  std::string out = absl::StrJoin(items.begin(), items.begin() + listed, ", ");
  if (items.size() > listed) {
    absl::StrAppend(&out, " and ", items.size() - listed, " more");
  }
  return out;
}

bool Breaks(const Node& node, HealthRule rule) {
  switch (rule) {
    case HealthRule::kStale:
      return node.connection() == v1::CONNECTION_STATE_STALE;
    case HealthRule::kDisconnected:
      return node.connection() == v1::CONNECTION_STATE_DISCONNECTED;
    case HealthRule::kUnsynchronised:
      return NotSynchronised(node);
    case HealthRule::kFlagged:
      return node.flagged();
    case HealthRule::kCrosscheck:
      return node.crosscheck().flagged();
    default:
      return false;
  }
}

// How a node breaks `rule`, after its name.
std::string Detail(const Node& node, HealthRule rule) {
  switch (rule) {
    case HealthRule::kUnsynchronised: {
      absl::string_view state = SyncWord(node);
      if (state == "local-clock") state = "client on its local clock";
      return absl::StrCat(" (", state, ")");
    }
    case HealthRule::kFlagged:
      if (!node.has_status()) return "";
      return absl::StrCat(" (", FormatOffset(FromProto(node.status().offset())),
                          ")");
    case HealthRule::kCrosscheck:
      // By how much its report and the mesh disagree, against what it may.
      return absl::StrCat(
          " (reports ",
          FormatOffset(FromProto(node.crosscheck().disagreement())),
          " off the mesh's measurement, bound ",
          node.has_status() && node.status().has_error_bound()
              ? ctl::FormatDuration(FromProto(node.status().error_bound()))
              : std::string("-"),
          ")");
    case HealthRule::kStale:
    case HealthRule::kDisconnected:
      return "";
    default:
      return "";
  }
}

std::string Description(HealthRule rule, size_t n, const Fleet& fleet) {
  switch (rule) {
    case HealthRule::kStale:
      return absl::StrCat(Nodes(n),
                          " connected but silent for 3 report intervals");
    case HealthRule::kDisconnected:
      return absl::StrCat(
          Nodes(n),
          " not connected (decommissioned: `ntpfleetctl forget NODE`; down "
          "on purpose: --allow disconnected)");
    case HealthRule::kUnsynchronised:
      return absl::StrCat(Nodes(n), " connected and not keeping time");
    case HealthRule::kFlagged:
      return absl::StrCat(
          Nodes(n), " beyond the threshold ",
          ctl::FormatDuration(FromProto(fleet.threshold())),
          " (offset, or deviation from the fleet's median offset)");
    case HealthRule::kCrosscheck:
      return absl::StrCat(
          Nodes(n),
          " whose reported offset the other nodes' measurements contradict "
          "(beyond its bound plus 3 x their uncertainty; `ntpfleetctl "
          "crosscheck`)");
    default:
      return "";
  }
}

}  // namespace

absl::string_view RuleName(HealthRule rule) {
  switch (rule) {
    case HealthRule::kSkew:
      return "skew";
    case HealthRule::kMinNodes:
      return "min-nodes";
    case HealthRule::kStale:
      return "stale";
    case HealthRule::kDisconnected:
      return "disconnected";
    case HealthRule::kUnsynchronised:
      return "unsynchronised";
    case HealthRule::kFlagged:
      return "flagged";
    case HealthRule::kCrosscheck:
      return "crosscheck";
  }
  return "unknown";
}

absl::StatusOr<std::vector<HealthRule>> ParseAllowedRules(
    const std::vector<std::string>& values) {
  std::vector<HealthRule> out;
  for (const std::string& value : values) {
    for (absl::string_view word : absl::StrSplit(value, ',')) {
      const auto it =
          std::find_if(std::begin(kNodeRules), std::end(kNodeRules),
                       [&](HealthRule r) { return RuleName(r) == word; });
      if (it == std::end(kNodeRules)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--allow: `", word,
                         "` is not a rule that can be allowed; one of stale, "
                         "disconnected, unsynchronised, flagged, crosscheck"));
      }
      if (std::find(out.begin(), out.end(), *it) == out.end()) {
        out.push_back(*it);
      }
    }
  }
  return out;
}

HealthReport CheckHealth(const Fleet& fleet,
                         const std::vector<const Node*>& shown,
                         const HealthOptions& options) {
  HealthReport report;
  if (options.max_skew.has_value() &&
      FromProto(fleet.skew()) > *options.max_skew) {
    report.failed.push_back(
        {HealthRule::kSkew,
         absl::StrCat(
             "fleet skew ", ctl::FormatDuration(FromProto(fleet.skew())),
             " exceeds --max-skew ", ctl::FormatDuration(*options.max_skew)),
         {}});
  }
  const size_t counted = static_cast<size_t>(
      std::count_if(shown.begin(), shown.end(),
                    [](const Node* n) { return n->has_deviation(); }));
  const size_t min_nodes = static_cast<size_t>(std::max(1, options.min_nodes));
  if (counted < min_nodes) {
    const std::string among =
        shown.size() == static_cast<size_t>(fleet.nodes_size())
            ? Nodes(shown.size())
            : absl::StrCat("the ", Nodes(shown.size()), " shown");
    std::string message = absl::StrCat(
        counted == 0 ? "no node" : Nodes(counted), " of ", among,
        counted > 1 ? " are" : " is",
        " counted in the skew (connected and synchronised, syncing or on the "
        "local clock)");
    if (counted == 0) {
      absl::StrAppend(&message, ": a skew of no node proves nothing");
    }
    if (counted > 0 || min_nodes > 1) {
      absl::StrAppend(&message, ", fewer than --min-nodes ", min_nodes);
    }
    report.failed.push_back({HealthRule::kMinNodes, std::move(message), {}});
  }
  for (HealthRule rule : kNodeRules) {
    RuleResult result{rule, "", {}};
    std::vector<std::string> items;
    for (const Node* n : shown) {
      if (!Breaks(*n, rule)) continue;
      result.nodes.push_back(n->name());
      items.push_back(absl::StrCat(Printable(n->name()), Detail(*n, rule)));
    }
    if (result.nodes.empty()) continue;
    result.message =
        absl::StrCat(Description(rule, items.size(), fleet), ": ", List(items));
    const bool allowed = std::find(options.allow.begin(), options.allow.end(),
                                   rule) != options.allow.end();
    (allowed ? report.allowed : report.failed).push_back(std::move(result));
  }
  return report;
}

std::string FormatHealthReport(const HealthReport& report) {
  std::string out;
  for (const RuleResult& r : report.failed) {
    absl::StrAppend(&out, "ntpfleetctl: unhealthy: ", RuleName(r.rule), ": ",
                    r.message, "\n");
  }
  for (const RuleResult& r : report.allowed) {
    absl::StrAppend(&out, "ntpfleetctl: allowed (--allow ", RuleName(r.rule),
                    "): ", RuleName(r.rule), ": ", r.message, "\n");
  }
  return out;
}

}  // namespace ntpfleet::ctl
