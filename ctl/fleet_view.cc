#include "ctl/fleet_view.h"

#include <fnmatch.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "common/summary_peer.h"
#include "ctl/printable.h"
#include "ctl/text_table.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/util/field_mask_util.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::v1::Fleet;
using ::ntpfleet::v1::Node;

struct StateWordEntry {
  StateName state;
  absl::string_view word;
};

constexpr StateWordEntry kStateWords[] = {
    {StateName::kConnected, "connected"},
    {StateName::kStale, "stale"},
    {StateName::kDisconnected, "disconnected"},
    {StateName::kSynchronised, "synchronised"},
    {StateName::kSyncing, "syncing"},
    {StateName::kUnsynchronised, "unsynchronised"},
    {StateName::kHoldover, "holdover"},
    {StateName::kLocalClock, "local-clock"},
    {StateName::kRefused, "refused"},
    {StateName::kNoReport, "no-report"},
    {StateName::kFlagged, "flagged"},
    {StateName::kDuplicate, "duplicate"},
    {StateName::kCrosscheck, "crosscheck"},
    {StateName::kHealthy, "healthy"},
    {StateName::kUnhealthy, "unhealthy"},
};

bool SyncStateIs(const Node& node, v1::SyncState state) {
  return node.has_status() && node.status().state() == state;
}

bool Unhealthy(const Node& node) {
  return node.connection() == v1::CONNECTION_STATE_STALE ||
         node.connection() == v1::CONNECTION_STATE_DISCONNECTED ||
         node.flagged() || node.crosscheck().flagged() || NotSynchronised(node);
}

// Signed decimal seconds with all nine digits: "-0.000312000".
std::string CsvSeconds(absl::Duration d) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  // Magnitude as unsigned: |INT64_MIN| does not fit an int64_t.
  const uint64_t mag =
      ns < 0 ? 0 - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
  return absl::StrFormat("%s%d.%09d", ns < 0 ? "-" : "", mag / 1'000'000'000,
                         mag % 1'000'000'000);
}

std::string CsvTime(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", FromProto(t),
                          absl::UTCTimeZone());
}

std::vector<std::string> CsvRow(const Node& node) {
  const v1::Hello& hello = node.hello();
  const bool reported = node.has_status();
  const v1::SyncStatus& s = node.status();
  const bool xc = node.has_crosscheck();
  const v1::NodeCrosscheck& c = node.crosscheck();
  std::string reach;
  if (const v1::PeerStatus* p = reported ? SummaryPeer(s) : nullptr) {
    reach = absl::StrFormat("%o", p->reach() & 0xffu);
  }
  return {
      node.name(),
      std::string(ConnectionWord(node)),
      std::string(SyncWord(node)),
      reported ? CsvSeconds(FromProto(s.offset())) : "",
      reported && s.has_error_bound() && !s.error_bound_local()
          ? CsvSeconds(FromProto(s.error_bound()))
          : "",
      reported ? (s.error_bound_local() ? "true" : "false") : "",
      reported ? absl::StrCat(s.stratum()) : "",
      s.refid(),
      reach,
      node.has_deviation() ? CsvSeconds(FromProto(node.deviation())) : "",
      node.flagged() ? "true" : "false",
      node.duplicate_name() ? "true" : "false",
      node.has_last_seen() ? CsvTime(node.last_seen()) : "",
      node.has_first_seen() ? CsvTime(node.first_seen()) : "",
      RoleName(hello.role()),
      hello.agent_version(),
      absl::StrJoin(hello.addresses(), ","),
      FormatLabels(hello),
      hello.config_digest(),
      node.peer(),
      xc ? CsvSeconds(FromProto(c.measured_offset())) : "",
      xc ? CsvSeconds(FromProto(c.uncertainty())) : "",
      xc ? CsvSeconds(FromProto(c.disagreement())) : "",
      c.flagged() ? "true" : "false",
      xc ? absl::StrCat(c.probed_by()) : "",
  };
}

std::string CountsLine(const Fleet& fleet,
                       const std::vector<const Node*>& shown,
                       const NodeFilter& filter) {
  if (!filter.active()) {
    return absl::StrCat(fleet.nodes_size(),
                        fleet.nodes_size() == 1 ? " node\n" : " nodes\n");
  }
  return absl::StrCat(shown.size(), " of ", fleet.nodes_size(),
                      fleet.nodes_size() == 1 ? " node" : " nodes", " shown (",
                      Printable(filter.Describe()), ")\n");
}

// Nodes matching `filter`, in the controller's order.
std::vector<const Node*> Filtered(const Fleet& fleet,
                                  const NodeFilter& filter) {
  std::vector<const Node*> out;
  out.reserve(fleet.nodes_size());
  for (const Node& n : fleet.nodes()) {
    if (Matches(filter, n)) out.push_back(&n);
  }
  return out;
}

void Sort(std::vector<const Node*>& nodes, SortKey key) {
  auto by_name = [](const Node* a, const Node* b) {
    return a->name() < b->name();
  };
  switch (key) {
    case SortKey::kName:
      std::stable_sort(nodes.begin(), nodes.end(), by_name);
      return;
    case SortKey::kOffset:
      std::stable_sort(
          nodes.begin(), nodes.end(), [&](const Node* a, const Node* b) {
            if (a->has_status() != b->has_status()) return a->has_status();
            if (a->has_status()) {
              const absl::Duration oa =
                  absl::AbsDuration(FromProto(a->status().offset()));
              const absl::Duration ob =
                  absl::AbsDuration(FromProto(b->status().offset()));
              if (oa != ob) return oa > ob;
            }
            return by_name(a, b);
          });
      return;
    case SortKey::kBound:
      std::stable_sort(
          nodes.begin(), nodes.end(), [&](const Node* a, const Node* b) {
            // Only a bound to UTC compares with another.
            auto has_bound = [](const Node* n) {
              return n->has_status() && n->status().has_error_bound() &&
                     !n->status().error_bound_local();
            };
            if (has_bound(a) != has_bound(b)) return has_bound(a);
            if (has_bound(a)) {
              const absl::Duration ba = FromProto(a->status().error_bound());
              const absl::Duration bb = FromProto(b->status().error_bound());
              if (ba != bb) return ba > bb;
            }
            return by_name(a, b);
          });
      return;
    case SortKey::kLastSeen:
      std::stable_sort(nodes.begin(), nodes.end(),
                       [&](const Node* a, const Node* b) {
                         if (a->has_last_seen() != b->has_last_seen()) {
                           return !a->has_last_seen();  // never seen: first
                         }
                         if (a->has_last_seen()) {
                           const absl::Time ta = FromProto(a->last_seen());
                           const absl::Time tb = FromProto(b->last_seen());
                           if (ta != tb) return ta < tb;  // oldest first
                         }
                         return by_name(a, b);
                       });
      return;
  }
}

std::string OrDash(std::string s) { return s.empty() ? "-" : s; }

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view s) {
  if (s == "table" || s == "text") return OutputFormat::kTable;
  if (s == "wide") return OutputFormat::kWide;
  if (s == "json") return OutputFormat::kJson;
  if (s == "csv") return OutputFormat::kCsv;
  return absl::InvalidArgumentError(absl::StrCat(
      "--output must be `table` (or `text`), `wide`, `json` or `csv`, not `", s,
      "`"));
}

absl::StatusOr<SortKey> ParseSortKey(absl::string_view s) {
  if (s == "offset") return SortKey::kOffset;
  if (s == "bound") return SortKey::kBound;
  if (s == "name") return SortKey::kName;
  if (s == "last-seen" || s == "last_seen") return SortKey::kLastSeen;
  return absl::InvalidArgumentError(absl::StrCat(
      "--sort must be `offset`, `bound`, `name` or `last-seen`, not `", s,
      "`"));
}

absl::StatusOr<std::vector<StateName>> ParseStates(
    const std::vector<std::string>& values) {
  std::vector<StateName> out;
  for (const std::string& value : values) {
    for (absl::string_view word : absl::StrSplit(value, ',')) {
      const auto it =
          std::find_if(std::begin(kStateWords), std::end(kStateWords),
                       [&](const StateWordEntry& e) { return e.word == word; });
      if (it == std::end(kStateWords)) {
        std::vector<absl::string_view> known;
        for (const StateWordEntry& e : kStateWords) known.push_back(e.word);
        return absl::InvalidArgumentError(
            absl::StrCat("--state: unknown state `", word, "`; one of ",
                         absl::StrJoin(known, ", ")));
      }
      if (std::find(out.begin(), out.end(), it->state) == out.end()) {
        out.push_back(it->state);
      }
    }
  }
  return out;
}

absl::string_view StateWord(StateName state) {
  for (const StateWordEntry& e : kStateWords) {
    if (e.state == state) return e.word;
  }
  return "unknown";
}

bool NotSynchronised(const Node& node) {
  if (node.connection() != v1::CONNECTION_STATE_CONNECTED) return false;
  if (!node.has_status()) return true;
  switch (node.status().state()) {
    case v1::SYNC_STATE_SYNCHRONISED:
    case v1::SYNC_STATE_SYNCING:
      return false;
    case v1::SYNC_STATE_LOCAL_CLOCK:
      return node.hello().role() != v1::ROLE_SERVER;
    default:
      return true;
  }
}

bool HasState(const Node& node, StateName state) {
  switch (state) {
    case StateName::kConnected:
      return node.connection() == v1::CONNECTION_STATE_CONNECTED;
    case StateName::kStale:
      return node.connection() == v1::CONNECTION_STATE_STALE;
    case StateName::kDisconnected:
      return node.connection() == v1::CONNECTION_STATE_DISCONNECTED;
    case StateName::kSynchronised:
      return SyncStateIs(node, v1::SYNC_STATE_SYNCHRONISED);
    case StateName::kSyncing:
      return SyncStateIs(node, v1::SYNC_STATE_SYNCING);
    case StateName::kUnsynchronised:
      return SyncStateIs(node, v1::SYNC_STATE_UNSYNCHRONISED);
    case StateName::kHoldover:
      return SyncStateIs(node, v1::SYNC_STATE_HOLDOVER);
    case StateName::kLocalClock:
      return SyncStateIs(node, v1::SYNC_STATE_LOCAL_CLOCK);
    case StateName::kRefused:
      return SyncStateIs(node, v1::SYNC_STATE_REFUSED);
    case StateName::kNoReport:
      return !node.has_status();
    case StateName::kFlagged:
      return node.flagged();
    case StateName::kDuplicate:
      return node.duplicate_name();
    case StateName::kCrosscheck:
      return node.crosscheck().flagged();
    case StateName::kHealthy:
      return !Unhealthy(node);
    case StateName::kUnhealthy:
      return Unhealthy(node);
  }
  return false;
}

absl::string_view SyncWord(const Node& node) {
  if (!node.has_status()) return "no-report";
  switch (node.status().state()) {
    case v1::SYNC_STATE_SYNCHRONISED:
      return "synchronised";
    case v1::SYNC_STATE_SYNCING:
      return "syncing";
    case v1::SYNC_STATE_UNSYNCHRONISED:
      return "unsynchronised";
    case v1::SYNC_STATE_HOLDOVER:
      return "holdover";
    case v1::SYNC_STATE_LOCAL_CLOCK:
      return "local-clock";
    case v1::SYNC_STATE_REFUSED:
      return "refused";
    default:
      return "unknown";
  }
}

absl::string_view ConnectionWord(const Node& node) {
  switch (node.connection()) {
    case v1::CONNECTION_STATE_CONNECTED:
      return "connected";
    case v1::CONNECTION_STATE_STALE:
      return "stale";
    case v1::CONNECTION_STATE_DISCONNECTED:
      return "disconnected";
    default:
      return "unknown";
  }
}

bool NodeFilter::active() const {
  return !labels.empty() || !states.empty() || !name_globs.empty();
}

std::string NodeFilter::Describe() const {
  std::vector<std::string> parts;
  for (const auto& [k, v] : labels)
    parts.push_back(absl::StrCat("label ", k, "=", v));
  if (!states.empty()) {
    std::vector<absl::string_view> words;
    for (StateName s : states) words.push_back(StateWord(s));
    parts.push_back(absl::StrCat("state ", absl::StrJoin(words, "|")));
  }
  if (!name_globs.empty()) {
    parts.push_back(absl::StrCat("name ", absl::StrJoin(name_globs, "|")));
  }
  return absl::StrJoin(parts, ", ");
}

absl::StatusOr<NodeFilter> ParseNodeFilter(
    const std::vector<std::string>& labels,
    const std::vector<std::string>& states,
    const std::vector<std::string>& name_globs) {
  NodeFilter filter;
  for (const std::string& label : labels) {
    const size_t eq = label.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--label `", label, "` is not KEY=VALUE (e.g. --label rack=a1)"));
    }
    filter.labels.emplace_back(label.substr(0, eq), label.substr(eq + 1));
  }
  absl::StatusOr<std::vector<StateName>> parsed = ParseStates(states);
  if (!parsed.ok()) return parsed.status();
  filter.states = *std::move(parsed);
  for (const std::string& glob : name_globs) {
    if (glob.empty()) {
      return absl::InvalidArgumentError(
          "an empty node name pattern matches nothing; quote a glob such as "
          "'web-*'");
    }
    filter.name_globs.push_back(glob);
  }
  return filter;
}

bool Matches(const NodeFilter& filter, const Node& node) {
  for (const auto& [key, value] : filter.labels) {
    const auto it = node.hello().labels().find(key);
    if (it == node.hello().labels().end() || it->second != value) return false;
  }
  if (!filter.states.empty() &&
      std::none_of(filter.states.begin(), filter.states.end(),
                   [&](StateName s) { return HasState(node, s); })) {
    return false;
  }
  if (!filter.name_globs.empty() &&
      std::none_of(filter.name_globs.begin(), filter.name_globs.end(),
                   [&](const std::string& glob) {
                     return fnmatch(glob.c_str(), node.name().c_str(), 0) == 0;
                   })) {
    return false;
  }
  return true;
}

std::vector<const Node*> SelectNodes(const Fleet& fleet,
                                     const NodeFilter& filter, SortKey key) {
  std::vector<const Node*> nodes = Filtered(fleet, filter);
  Sort(nodes, key);
  return nodes;
}

bool NeedsFullFleet(const ViewOptions& view) {
  return view.output != OutputFormat::kTable;
}

Fleet ShownFleet(const Fleet& fleet, const std::vector<const Node*>& shown) {
  // Every field but the nodes, by the descriptor: a field added to Fleet
  // later is carried over without a change here.
  google::protobuf::FieldMask mask;
  const google::protobuf::Descriptor* d = Fleet::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->number() == Fleet::kNodesFieldNumber) continue;
    mask.add_paths(d->field(i)->name());
  }
  Fleet out;
  google::protobuf::util::FieldMaskUtil::MergeMessageTo(
      fleet, mask, google::protobuf::util::FieldMaskUtil::MergeOptions(), &out);
  out.mutable_nodes()->Reserve(static_cast<int>(shown.size()));
  for (const Node* n : shown) *out.add_nodes() = *n;
  return out;
}

std::string CsvField(absl::string_view value) {
  if (value.find_first_of(",\"\r\n") == absl::string_view::npos) {
    return std::string(value);
  }
  return absl::StrCat("\"", absl::StrReplaceAll(value, {{"\"", "\"\""}}), "\"");
}

std::string RenderCsv(const std::vector<const Node*>& shown) {
  std::string out = absl::StrCat(absl::StrJoin(kCsvColumns, ","), "\n");
  for (const Node* n : shown) {
    const std::vector<std::string> row = CsvRow(*n);
    absl::StrAppend(&out,
                    absl::StrJoin(row, ",",
                                  [](std::string* o, const std::string& f) {
                                    absl::StrAppend(o, CsvField(f));
                                  }),
                    "\n");
  }
  return out;
}

absl::StatusOr<std::string> RenderStatusView(const Fleet& fleet,
                                             const ViewOptions& view,
                                             const RenderOptions& opts) {
  if (view.output == OutputFormat::kJson) {
    // As before unless asked otherwise: the controller's message, verbatim.
    if (!view.filter.active() && !view.sort.has_value()) return ToJson(fleet);
    std::vector<const Node*> shown = Filtered(fleet, view.filter);
    if (view.sort.has_value()) Sort(shown, *view.sort);
    return ToJson(ShownFleet(fleet, shown));
  }
  const std::vector<const Node*> shown =
      SelectNodes(fleet, view.filter, view.sort.value_or(SortKey::kOffset));
  if (view.output == OutputFormat::kCsv) return RenderCsv(shown);
  return RenderFleetStatus(fleet,
                           StatusRows{shown, view.filter.Describe(),
                                      view.output == OutputFormat::kWide},
                           opts);
}

absl::StatusOr<std::string> RenderWatchView(
    const Fleet& fleet, const std::vector<v1::SkewPoint>& history,
    const ViewOptions& view, const RenderOptions& opts, bool first_frame) {
  if (view.output == OutputFormat::kJson) {
    // JSON Lines: a reader takes each update as it comes, line by line.
    if (!view.filter.active() && !view.sort.has_value()) {
      return ToJson(fleet, /*one_line=*/true);
    }
    std::vector<const Node*> shown = Filtered(fleet, view.filter);
    if (view.sort.has_value()) Sort(shown, *view.sort);
    return ToJson(ShownFleet(fleet, shown), /*one_line=*/true);
  }
  const std::vector<const Node*> shown =
      SelectNodes(fleet, view.filter, view.sort.value_or(SortKey::kOffset));
  if (view.output == OutputFormat::kCsv) {
    std::string csv = RenderCsv(shown);
    if (!first_frame) csv.erase(0, csv.find('\n') + 1);  // the header
    return csv;
  }
  return RenderWatchFrame(fleet, history,
                          StatusRows{shown, view.filter.Describe(),
                                     view.output == OutputFormat::kWide},
                          opts);
}

absl::StatusOr<std::string> RenderNodesView(const Fleet& fleet,
                                            const ViewOptions& view,
                                            const RenderOptions& opts) {
  if (view.output == OutputFormat::kJson) {
    std::vector<const Node*> shown = Filtered(fleet, view.filter);
    if (view.sort.has_value()) Sort(shown, *view.sort);
    return ToJson(ShownFleet(fleet, shown));
  }
  const std::vector<const Node*> shown =
      SelectNodes(fleet, view.filter, view.sort.value_or(SortKey::kName));
  if (view.output == OutputFormat::kCsv) return RenderCsv(shown);
  const bool wide = view.output == OutputFormat::kWide;
  std::string out = CountsLine(fleet, shown, view.filter);
  absl::StrAppend(&out, "\n");
  if (shown.empty()) {
    return absl::StrCat(
        out, fleet.nodes().empty() ? "no nodes\n" : "no node matches\n");
  }
  std::vector<std::vector<Cell>> rows;
  for (const Node* n : shown) {
    const v1::Hello& hello = n->hello();
    const bool lost = n->connection() != v1::CONNECTION_STATE_CONNECTED;
    std::string digest = hello.config_digest();
    if (!wide) digest = digest.substr(0, std::min(digest.size(), kShortDigest));
    std::vector<Cell> row = {
        {Printable(n->name())},
        {std::string(ConnectionWord(*n)), lost ? kRed : kNoColor},
        {OrDash(RoleName(hello.role()))},
        {OrDash(Printable(hello.agent_version()))},
        {OrDash(Printable(absl::StrJoin(hello.addresses(), ",")))},
        {OrDash(Printable(FormatLabels(hello)))},
        {OrDash(Printable(digest))},
        {n->has_first_seen() ? FormatUtc(FromProto(n->first_seen())) : "-"},
        {n->has_last_seen() ? FormatAge(opts.now - FromProto(n->last_seen()))
                            : "never"},
    };
    if (wide) row.push_back({OrDash(Printable(n->peer()))});
    rows.push_back(std::move(row));
  }
  std::vector<Column> columns = {
      {"NODE", Align::kLeft, 0},       {"CONNECTION", Align::kLeft, 0},
      {"ROLE", Align::kLeft, 0},       {"VERSION", Align::kLeft, 0},
      {"ADDRESSES", Align::kLeft, 0},  {"LABELS", Align::kLeft, 0},
      {"DIGEST", Align::kLeft, 0},     {"FIRST SEEN (UTC)", Align::kLeft, 0},
      {"LAST SEEN", Align::kRight, 0},
  };
  if (wide) columns.push_back({"PEER", Align::kLeft, 0});
  return absl::StrCat(out, RenderTable(columns, rows, opts.color));
}

}  // namespace ntpfleet::ctl
