#include "ctl/render_fleet.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "common/summary_peer.h"
#include "ctl/printable.h"
#include "ctl/text_table.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::v1::Fleet;
using ::ntpfleet::v1::HistoryResponse;
using ::ntpfleet::v1::Node;
using ::ntpfleet::v1::NodeResyncResult;
using ::ntpfleet::v1::PeerStatus;
using ::ntpfleet::v1::ResyncResponse;
using ::ntpfleet::v1::ResyncResult;
using ::ntpfleet::v1::SkewPoint;
using ::ntpfleet::v1::SyncStatus;

constexpr absl::string_view kHomeAndClear = "\x1b[H\x1b[2J";

// Eighths, lowest first (U+2581..U+2588).
constexpr absl::string_view kBlocks[] = {"▁", "▂", "▃", "▄",
                                         "▅", "▆", "▇", "█"};

constexpr size_t kRefidWidth = 15;  // As ntpq cuts it.
constexpr absl::string_view kTimeFormat = "%Y-%m-%d %H:%M:%S";

std::string Plural(uint64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// ---------------------------------------------------------------------------
// Units.

// |d| as "312µs", "1.234ms" or "2.500s". Each unit is rounded half up from
// the Duration itself (never from an already rounded value), and the unit is
// picked after rounding, so 999.9996 µs is "1.000ms", not "1000µs".
std::string FormatMagnitude(absl::Duration magnitude) {
  const int64_t us =
      absl::ToInt64Microseconds(magnitude + absl::Nanoseconds(500));
  if (us < 1000) return absl::StrCat(us, "µs");
  if (us < 1'000'000) {
    return absl::StrFormat("%d.%03dms", us / 1000, us % 1000);
  }
  const int64_t ms =
      absl::ToInt64Milliseconds(magnitude + absl::Microseconds(500));
  return absl::StrFormat("%d.%03ds", ms / 1000, ms % 1000);
}

std::string FormatSigned(absl::Duration d, absl::string_view plus) {
  const bool negative = d < absl::ZeroDuration();
  if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) {
    return absl::StrCat(negative ? "-" : plus, "inf");
  }
  return absl::StrCat(negative ? "-" : plus,
                      FormatMagnitude(absl::AbsDuration(d)));
}

std::string DurationOrDash(bool present, const google::protobuf::Duration& d) {
  return present ? ctl::FormatDuration(FromProto(d)) : "-";
}

// ---------------------------------------------------------------------------
// Status table.

// The reach of the system peer (by name, else by its '*' mark), else of the
// first peer; "-" without peers.
std::string Reach(const SyncStatus& status) {
  const PeerStatus* chosen = SummaryPeer(status);
  if (chosen == nullptr) return "-";
  return absl::StrFormat("%o", chosen->reach() & 0xffu);
}

Cell StateCell(const Node& node) {
  switch (node.connection()) {
    case v1::CONNECTION_STATE_STALE:
      return {"STALE", kRed};
    case v1::CONNECTION_STATE_DISCONNECTED:
      return {"DISCONNECTED", kRed};
    default:
      break;
  }
  if (!node.has_status()) return {"no report"};
  switch (node.status().state()) {
    case v1::SYNC_STATE_SYNCHRONISED:
      return {"synchronised", kGreen};
    case v1::SYNC_STATE_SYNCING:
      return {"syncing", kYellow};
    case v1::SYNC_STATE_UNSYNCHRONISED:
      return {"unsynchronised", kRed};
    case v1::SYNC_STATE_REFUSED:
      // Every server refused this node (KoD DENY): waiting will not help; the
      // reason below the table says who.
      return {"REFUSED", kRed};
    case v1::SYNC_STATE_HOLDOVER:
      return {"holdover", kYellow};
    case v1::SYNC_STATE_LOCAL_CLOCK:
      // Serving its own clock is the server's job when it has no upstream,
      // and a problem on a client.
      return {"local clock",
              node.hello().role() == v1::ROLE_SERVER ? kGreen : kYellow};
    default:
      return {"unknown"};
  }
}

// --output wide: ROLE, VERSION, ADDRESSES, LABELS, DIGEST (12 hex digits, as
// git shortens a hash: enough to tell a fleet's few configurations apart).
std::vector<Cell> WideCells(const Node& node) {
  const v1::Hello& hello = node.hello();
  auto or_dash = [](std::string s) { return s.empty() ? "-" : s; };
  return {
      {or_dash(RoleName(hello.role()))},
      {or_dash(Printable(hello.agent_version()))},
      {or_dash(Printable(absl::StrJoin(hello.addresses(), ",")))},
      {or_dash(Printable(FormatLabels(hello)))},
      {or_dash(std::string(
          absl::string_view(hello.config_digest()).substr(0, kShortDigest)))},
      // The crosscheck (docs/CROSSCHECK.md): the mesh's measurement of the
      // node's offset, and the report minus it; "-" when no node measured it.
      {node.has_crosscheck()
           ? FormatOffset(FromProto(node.crosscheck().measured_offset()))
           : "-"},
      {node.has_crosscheck()
           ? FormatOffset(FromProto(node.crosscheck().disagreement()))
           : "-",
       node.crosscheck().flagged() ? kRed : kNoColor},
  };
}

std::vector<Cell> NodeRow(const Node& node, absl::Time now, bool wide) {
  std::vector<Cell> row;
  row.push_back({Printable(node.name())});
  row.push_back(StateCell(node));
  if (node.has_status()) {
    const SyncStatus& s = node.status();
    row.push_back({FormatOffset(FromProto(s.offset())),
                   node.flagged() ? kRed : kNoColor});
    // A node on its own clock is the fleet's time: its bound is relative to
    // itself, not UTC (proto: error_bound_local).
    row.push_back({s.error_bound_local()
                       ? std::string("local")
                       : DurationOrDash(s.has_error_bound(), s.error_bound())});
    row.push_back({absl::StrCat(s.stratum())});
    row.push_back(
        {s.refid().empty()
             ? "-"
             : std::string(CutToWidth(Printable(s.refid()), kRefidWidth))});
    row.push_back({Reach(s)});
  } else {
    for (int i = 0; i < 5; ++i) row.push_back({"-"});
  }
  row.push_back({node.has_last_seen()
                     ? FormatAge(now - FromProto(node.last_seen()))
                     : "never"});
  if (wide) {
    for (Cell& cell : WideCells(node)) row.push_back(std::move(cell));
  }
  std::vector<absl::string_view> flags;
  if (node.flagged()) flags.push_back("FLAGGED");
  // The mesh measured this node's clock elsewhere than it says
  // (docs/CROSSCHECK.md; `ntpfleetctl crosscheck` shows by how much).
  if (node.crosscheck().flagged()) flags.push_back("CROSSCHECK");
  if (node.duplicate_name()) flags.push_back("DUPLICATE NAME");
  row.push_back({absl::StrJoin(flags, ", "), kRed});
  return row;
}

// Largest |offset| first, nodes that never reported last, then by name; the
// controller's order between equals (a duplicate name pair with equal
// offsets).
std::vector<const Node*> SortedNodes(const Fleet& fleet) {
  std::vector<const Node*> nodes;
  for (const Node& n : fleet.nodes()) nodes.push_back(&n);
  auto abs_offset = [](const Node* n) {
    return absl::AbsDuration(FromProto(n->status().offset()));
  };
  std::stable_sort(nodes.begin(), nodes.end(),
                   [&](const Node* a, const Node* b) {
                     if (a->has_status() != b->has_status()) {
                       return a->has_status();
                     }
                     if (a->has_status()) {
                       const absl::Duration oa = abs_offset(a);
                       const absl::Duration ob = abs_offset(b);
                       if (oa != ob) return oa > ob;
                     }
                     return a->name() < b->name();
                   });
  return nodes;
}

// "fleet bound ±2.100ms (two largest bounds)  mesh p99 41µs (5 nodes
// measured)[, 1 crosscheck-flagged]": what any two nodes may disagree by, by
// their own bounds, beside what the mesh measured them to disagree by. Empty
// from a controller without the crosscheck (neither value set), so its status
// reads as before.
std::string FleetBoundLine(const Fleet& fleet, bool color) {
  if (!fleet.has_fleet_bound() && !fleet.has_mesh_skew_p99()) return "";
  uint64_t measured = 0;
  for (const Node& n : fleet.nodes()) measured += n.has_crosscheck() ? 1 : 0;
  std::string out = absl::StrCat(
      "fleet bound ",
      fleet.has_fleet_bound()
          ? absl::StrCat("±",
                         ctl::FormatDuration(FromProto(fleet.fleet_bound())))
          : std::string("-"),
      " (two largest bounds)  mesh p99 ",
      DurationOrDash(fleet.has_mesh_skew_p99(), fleet.mesh_skew_p99()), " (",
      measured == 0 ? std::string("no node")
                    : Plural(measured, "node", "nodes"),
      " measured)");
  if (fleet.crosscheck_flagged_count() > 0) {
    absl::StrAppend(&out, ", ",
                    Paint(absl::StrCat(fleet.crosscheck_flagged_count(),
                                       " crosscheck-flagged"),
                          kRed, color));
  }
  return absl::StrCat(out, "\n");
}

std::string FleetHeader(const Fleet& fleet, bool color) {
  const bool over_threshold =
      fleet.has_skew() && fleet.has_threshold() &&
      FromProto(fleet.threshold()) > absl::ZeroDuration() &&
      FromProto(fleet.skew()) > FromProto(fleet.threshold());
  uint64_t duplicates = 0;
  for (const Node& n : fleet.nodes()) duplicates += n.duplicate_name() ? 1 : 0;
  auto red_if_any = [&](uint64_t n, absl::string_view one,
                        absl::string_view many) {
    return Paint(Plural(n, one, many), n > 0 ? kRed : kNoColor, color);
  };
  return absl::StrCat(
      "fleet skew ",
      Paint(DurationOrDash(fleet.has_skew(), fleet.skew()),
            over_threshold ? kRed : kNoColor, color),
      " (threshold ", DurationOrDash(fleet.has_threshold(), fleet.threshold()),
      "), max error bound ",
      DurationOrDash(fleet.has_max_error_bound(), fleet.max_error_bound()),
      "\n", Plural(fleet.nodes_size(), "node", "nodes"), ": ",
      fleet.connected_count(), " connected, ",
      red_if_any(fleet.stale_count(), "stale", "stale"), ", ",
      red_if_any(fleet.flagged_count(), "flagged", "flagged"), ", ",
      red_if_any(duplicates, "duplicate name", "duplicate names"), "\n",
      FleetBoundLine(fleet, color));
}

// "skew history  ▁▂▃  min 0µs  max 700µs": the sparkline of `points`, and the
// range of the skews it shows.
std::string SkewChart(const std::vector<SkewPoint>& points) {
  if (points.empty()) return "skew history  (no points yet)\n";
  absl::Duration lo = absl::InfiniteDuration();
  absl::Duration hi = absl::ZeroDuration();
  for (const SkewPoint& p : points) {
    const absl::Duration skew =
        std::max(absl::ZeroDuration(), FromProto(p.skew()));
    lo = std::min(lo, skew);
    hi = std::max(hi, skew);
  }
  return absl::StrCat("skew history  ", RenderSparkline(points), "  min ",
                      ctl::FormatDuration(lo), "  max ",
                      ctl::FormatDuration(hi), "\n");
}

absl::string_view OutcomeLabel(v1::ResyncOutcome outcome) {
  switch (outcome) {
    case v1::RESYNC_OUTCOME_OK:
      return "ok";
    case v1::RESYNC_OUTCOME_FAILED:
      return "failed";
    case v1::RESYNC_OUTCOME_TIMED_OUT:
      return "timed out";
    case v1::RESYNC_OUTCOME_NOT_CONNECTED:
      return "NOT CONNECTED";
    case v1::RESYNC_OUTCOME_DRY_RUN:
      return "dry run";
    case v1::RESYNC_OUTCOME_RATE_LIMITED:
      return "rate limited";
    case v1::RESYNC_OUTCOME_INTERRUPTED:
      return "interrupted";
    default:
      return "unknown";
  }
}

}  // namespace

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime(kTimeFormat, t, absl::UTCTimeZone());
}

std::string RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_CLIENT:
      return "client";
    case v1::ROLE_SERVER:
      return "server";
    default:
      return "";
  }
}

std::string FormatLabels(const v1::Hello& hello) {
  // A proto map's order is unspecified: sorted by key, so that the same
  // labels always read the same.
  const std::map<std::string, std::string> sorted(hello.labels().begin(),
                                                  hello.labels().end());
  return absl::StrJoin(sorted, ",", absl::PairFormatter("="));
}

std::string FormatOffset(absl::Duration d) { return FormatSigned(d, "+"); }

std::string FormatDuration(absl::Duration d) { return FormatSigned(d, ""); }

std::string FormatAge(absl::Duration age) {
  const int64_t ms =
      absl::ToInt64Milliseconds(std::max(age, absl::ZeroDuration()));
  if (ms < 10'000) {
    return absl::StrFormat("%d.%ds ago", ms / 1000, ms % 1000 / 100);
  }
  const int64_t s = ms / 1000;
  if (s < 60) return absl::StrCat(s, "s ago");
  const int64_t m = s / 60;
  if (m < 60) return absl::StrCat(m, "m ago");
  const int64_t h = m / 60;
  if (h < 24) return absl::StrCat(h, "h ago");
  return absl::StrCat(h / 24, "d ago");
}

std::string RenderSparkline(const std::vector<SkewPoint>& points) {
  const size_t n = points.size();
  const size_t columns = std::min(n, static_cast<size_t>(kSparklineWidth));
  // Whole nanoseconds (saturating), so that the ratios below are of finite
  // numbers even for an absurd skew.
  std::vector<int64_t> heights(columns, 0);
  for (size_t c = 0; c < columns; ++c) {
    for (size_t i = c * n / columns; i < (c + 1) * n / columns; ++i) {
      heights[c] = std::max(
          heights[c], absl::ToInt64Nanoseconds(FromProto(points[i].skew())));
    }
  }
  const int64_t top =
      heights.empty() ? 0 : *std::max_element(heights.begin(), heights.end());
  std::string out;
  for (int64_t h : heights) {
    const int level =
        top > 0
            ? static_cast<int>(
                  7.0 * static_cast<double>(h) / static_cast<double>(top) + 0.5)
            : 0;
    absl::StrAppend(&out, kBlocks[std::clamp(level, 0, 7)]);
  }
  return out;
}

std::string RenderFleetStatus(const Fleet& fleet, const RenderOptions& opts) {
  StatusRows every;
  every.nodes = SortedNodes(fleet);
  return RenderFleetStatus(fleet, every, opts);
}

std::string RenderFleetStatus(const Fleet& fleet, const StatusRows& shown,
                              const RenderOptions& opts) {
  std::string out = FleetHeader(fleet, opts.color);
  if (!shown.filter.empty()) {
    absl::StrAppend(&out, shown.nodes.size(), " of ",
                    Plural(fleet.nodes_size(), "node", "nodes"), " shown (",
                    Printable(shown.filter), ")\n");
  }
  absl::StrAppend(&out, "\n");
  if (fleet.nodes().empty()) return absl::StrCat(out, "no nodes\n");
  if (shown.nodes.empty()) return absl::StrCat(out, "no node matches\n");
  std::vector<std::vector<Cell>> rows;
  for (const Node* n : shown.nodes) {
    rows.push_back(NodeRow(*n, opts.now, shown.wide));
  }
  // Minimum widths fit the usual values ("unsynchronised", "+999.999ms",
  // "192.168.100.200", "59.9s ago"), so that a watch frame does not jump.
  std::vector<Column> columns = {
      {"NODE", Align::kLeft, 0},     {"STATE", Align::kLeft, 14},
      {"OFFSET", Align::kRight, 10}, {"ERROR BOUND", Align::kRight, 0},
      {"ST", Align::kRight, 0},      {"REFID", Align::kLeft, kRefidWidth},
      {"REACH", Align::kRight, 0},   {"LAST SEEN", Align::kRight, 0},
  };
  if (shown.wide) {
    columns.insert(columns.end(), {{"ROLE", Align::kLeft, 0},
                                   {"VERSION", Align::kLeft, 0},
                                   {"ADDRESSES", Align::kLeft, 0},
                                   {"LABELS", Align::kLeft, 0},
                                   {"DIGEST", Align::kLeft, 0},
                                   {"MEASURED", Align::kRight, 0},
                                   {"DISAGREE", Align::kRight, 0}});
  }
  columns.push_back({"FLAGS", Align::kLeft, 0});
  absl::StrAppend(&out, RenderTable(columns, rows, opts.color));
  // Why a node is not synchronised, when it said more than its state (who
  // refused it, a clock beyond the panic threshold), in the rows' order.
  std::string reasons;
  for (const Node* n : shown.nodes) {
    if (!n->has_status() || n->status().reason().empty()) continue;
    absl::StrAppend(&reasons, Printable(n->name()), ": ",
                    Printable(n->status().reason()), "\n");
  }
  if (!reasons.empty()) absl::StrAppend(&out, "\n", reasons);
  return out;
}

std::string RenderWatchFrame(const Fleet& fleet,
                             const std::vector<SkewPoint>& history,
                             const RenderOptions& opts) {
  StatusRows every;
  every.nodes = SortedNodes(fleet);
  return RenderWatchFrame(fleet, history, every, opts);
}

std::string RenderWatchFrame(const Fleet& fleet,
                             const std::vector<SkewPoint>& history,
                             const StatusRows& shown,
                             const RenderOptions& opts) {
  const size_t keep =
      std::min(history.size(), static_cast<size_t>(kSparklineWidth));
  const std::vector<SkewPoint> recent(history.end() - keep, history.end());
  return absl::StrCat(opts.color ? kHomeAndClear : absl::string_view(),
                      "ntpfleetctl watch  ", FormatUtc(opts.now), " UTC\n\n",
                      SkewChart(recent), "\n",
                      RenderFleetStatus(fleet, shown, opts));
}

std::string RenderHistory(const HistoryResponse& history,
                          const RenderOptions& opts) {
  if (history.points().empty()) return "no skew history in this range\n";
  const std::vector<SkewPoint> points(history.points().begin(),
                                      history.points().end());
  std::vector<std::vector<Cell>> rows;
  for (const SkewPoint& p : points) {
    rows.push_back({
        {FormatUtc(FromProto(p.time()))},
        {DurationOrDash(p.has_skew(), p.skew())},
        {DurationOrDash(p.has_max_error_bound(), p.max_error_bound())},
        {absl::StrCat(p.nodes())},
        {absl::StrCat(p.flagged()), p.flagged() > 0 ? kRed : kNoColor},
    });
  }
  const std::vector<Column> columns = {
      {"TIME (UTC)", Align::kLeft, 0},       {"SKEW", Align::kRight, 9},
      {"MAX ERROR BOUND", Align::kRight, 0}, {"NODES", Align::kRight, 0},
      {"FLAGGED", Align::kRight, 0},
  };
  return absl::StrCat(SkewChart(points), "\n",
                      RenderTable(columns, rows, opts.color));
}

std::string RenderResync(const ResyncResponse& response) {
  if (response.results().empty()) return "no nodes selected\n";
  // Counted per outcome, listed in this order.
  std::vector<std::pair<v1::ResyncOutcome, uint64_t>> counts = {
      {v1::RESYNC_OUTCOME_OK, 0},
      {v1::RESYNC_OUTCOME_DRY_RUN, 0},
      {v1::RESYNC_OUTCOME_FAILED, 0},
      {v1::RESYNC_OUTCOME_TIMED_OUT, 0},
      {v1::RESYNC_OUTCOME_NOT_CONNECTED, 0},
      {v1::RESYNC_OUTCOME_RATE_LIMITED, 0},
      {v1::RESYNC_OUTCOME_INTERRUPTED, 0},
      {v1::RESYNC_OUTCOME_UNSPECIFIED, 0},  // And anything newer.
  };
  std::vector<std::vector<Cell>> rows;
  for (const NodeResyncResult& r : response.results()) {
    const ResyncResult& res = r.result();
    auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) {
      return c.first == res.outcome();
    });
    if (it == counts.end()) it = counts.end() - 1;
    ++it->second;
    const bool ok = res.outcome() == v1::RESYNC_OUTCOME_OK;
    rows.push_back({
        {Printable(r.node())},
        {std::string(OutcomeLabel(res.outcome()))},
        {res.has_offset_before() ? FormatOffset(FromProto(res.offset_before()))
                                 : "-"},
        {res.has_offset_after() ? FormatOffset(FromProto(res.offset_after()))
                                : "-"},
        {ok ? (res.stepped() ? "stepped" : "slewed") : "-"},
        {Printable(res.error())},
    });
  }
  std::vector<Column> columns = {
      {"NODE", Align::kLeft, 0},           {"OUTCOME", Align::kLeft, 0},
      {"OFFSET BEFORE", Align::kRight, 0}, {"OFFSET AFTER", Align::kRight, 0},
      {"ACTION", Align::kLeft, 0},         {"ERROR", Align::kLeft, 0},
  };
  // Asked through several controllers (ntpfleetctl --controller A,B): which
  // one served each node, before ERROR.
  const bool via = std::any_of(
      response.results().begin(), response.results().end(),
      [](const NodeResyncResult& r) { return !r.controller().empty(); });
  if (via) {
    columns.insert(columns.end() - 1, {"CONTROLLER", Align::kLeft, 0});
    for (size_t i = 0; i < rows.size(); ++i) {
      const std::string& c = response.results(static_cast<int>(i)).controller();
      rows[i].insert(rows[i].end() - 1, Cell{c.empty() ? "-" : Printable(c)});
    }
  }
  std::vector<std::string> parts;
  for (const auto& [outcome, n] : counts) {
    if (n == 0) continue;
    std::string label(OutcomeLabel(outcome));
    for (char& c : label) c = absl::ascii_tolower(c);
    parts.push_back(absl::StrCat(n, " ", label));
  }
  return absl::StrCat(RenderTable(columns, rows, /*color=*/false),
                      Plural(response.results_size(), "node", "nodes"), ": ",
                      absl::StrJoin(parts, ", "), "\n");
}

std::string RenderAudit(const v1::AuditResponse& audit, absl::Time now) {
  if (audit.records().empty()) return "no resyncs in that time\n";
  std::vector<std::vector<Cell>> rows;
  for (const v1::AuditRecord& a : audit.records()) {
    std::vector<std::string> what;
    const v1::NodeSelector& sel = a.selector();
    if (sel.all()) what.push_back("--all");
    if (!sel.label().empty()) what.push_back("--label " + sel.label());
    for (const std::string& n : sel.names()) what.push_back(n);
    if (a.allow_step()) what.push_back("--step");
    if (a.force()) what.push_back("--force");
    if (a.dry_run()) what.push_back("--dry-run");
    std::map<std::string, int> outcomes;
    for (const NodeResyncResult& r : a.results()) {
      std::string label(OutcomeLabel(r.result().outcome()));
      for (char& c : label) c = absl::ascii_tolower(c);
      ++outcomes[label];
    }
    std::vector<std::string> parts;
    for (const auto& [label, n] : outcomes) {
      parts.push_back(absl::StrCat(n, " ", label));
    }
    rows.push_back({
        {FormatAge(now - FromProto(a.time()))},
        {Printable(a.requested_by())},
        {Printable(absl::StrJoin(what, " "))},
        {parts.empty() ? "no node" : absl::StrJoin(parts, ", ")},
        {Printable(a.request_id())},
    });
  }
  const std::vector<Column> columns = {
      {"WHEN", Align::kRight, 0},   {"BY", Align::kLeft, 0},
      {"RESYNC", Align::kLeft, 0},  {"RESULTS", Align::kLeft, 0},
      {"REQUEST", Align::kLeft, 0},
  };
  return RenderTable(columns, rows, /*color=*/false);
}

bool ResyncSucceeded(const ResyncResponse& response) {
  if (response.results().empty()) return false;
  for (const NodeResyncResult& r : response.results()) {
    const v1::ResyncOutcome o = r.result().outcome();
    if (o != v1::RESYNC_OUTCOME_OK && o != v1::RESYNC_OUTCOME_DRY_RUN) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message,
                                   bool one_line) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = !one_line;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const google::protobuf::util::Status s =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!s.ok()) {
    // Protobuf reports a value it cannot write (an out-of-range Duration or
    // Timestamp, an Any of an unknown type) as INTERNAL; for our caller it is
    // the message that is at fault.
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write ", message.GetTypeName(),
                     " as JSON: ", s.message().ToString()));
  }
  if (json.empty() || json.back() != '\n') json.push_back('\n');
  return json;
}

}  // namespace ntpfleet::ctl
