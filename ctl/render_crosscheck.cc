#include "ctl/render_crosscheck.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "ctl/printable.h"
#include "ctl/render_fleet.h"
#include "ctl/text_table.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::v1::CrosscheckResponse;
using ::ntpfleet::v1::NodeCrosscheckRow;
using ::ntpfleet::v1::ProbeEdge;

std::string Plural(uint64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// "64s" for whole seconds (the interval is at least 64 s), else absl's form.
std::string Interval(absl::Duration d) {
  if (d == absl::Seconds(absl::ToInt64Seconds(d))) {
    return absl::StrCat(absl::ToInt64Seconds(d), "s");
  }
  return absl::FormatDuration(d);
}

std::string SyncStateWord(v1::SyncState state) {
  switch (state) {
    case v1::SYNC_STATE_SYNCHRONISED:
      return "synchronised";
    case v1::SYNC_STATE_SYNCING:
      return "syncing";
    case v1::SYNC_STATE_UNSYNCHRONISED:
      return "unsynchronised";
    case v1::SYNC_STATE_HOLDOVER:
      return "holdover";
    case v1::SYNC_STATE_LOCAL_CLOCK:
      return "local clock";
    case v1::SYNC_STATE_REFUSED:
      return "REFUSED";
    default:
      return "-";
  }
}

enum class Verdict { kFlagged, kOk, kReference, kNotJudged, kNotMeasured };

// The mesh measured this node's clock: the controller sends every node's row
// with its NodeCrosscheck (the reason when it was not measured), and sets the
// measured offset only when it was.
bool Measured(const NodeCrosscheckRow& row) {
  return row.crosscheck().has_measured_offset();
}

Verdict VerdictOf(const NodeCrosscheckRow& row, const std::string& reference) {
  if (row.crosscheck().flagged()) return Verdict::kFlagged;
  if (!Measured(row)) return Verdict::kNotMeasured;
  if (!reference.empty() && row.name() == reference) return Verdict::kReference;
  // The controller gives a reason exactly when it did not judge the node.
  if (!row.crosscheck().reason().empty()) return Verdict::kNotJudged;
  return Verdict::kOk;
}

Cell VerdictCell(Verdict v) {
  switch (v) {
    case Verdict::kFlagged:
      return {"FLAGGED", kRed};
    case Verdict::kOk:
      return {"ok", kGreen};
    case Verdict::kReference:
      return {"reference"};
    case Verdict::kNotJudged:
      return {"not judged", kYellow};
    case Verdict::kNotMeasured:
      return {"not measured", kYellow};
  }
  return {"-"};
}

std::string DurationOr(bool has, const google::protobuf::Duration& d,
                       absl::string_view prefix = "") {
  return has ? absl::StrCat(prefix, ctl::FormatDuration(FromProto(d))) : "-";
}

std::string HeaderLines(const CrosscheckResponse& r,
                        const CrosscheckRenderOptions& opts, size_t measured) {
  std::string out;
  if (!r.has_as_of()) {
    absl::StrAppend(&out, "crosscheck  no solve yet");
    if (!opts.controller.empty()) {
      absl::StrAppend(&out, "  (from ", Printable(opts.controller), ")");
    }
    absl::StrAppend(&out, "\n");
    if (r.probes_per_node() == 0) {
      absl::StrAppend(&out,
                      "            the crosscheck is off on this controller "
                      "(--crosscheck-probes 0)\n");
    } else {
      absl::StrAppend(&out, "            each node probes ",
                      r.probes_per_node(), " others once every ",
                      Interval(FromProto(r.interval())),
                      "; the first solve follows their first probe reports\n");
    }
    return out;
  }
  const absl::Time as_of = FromProto(r.as_of());
  absl::StrAppend(&out, "crosscheck  as of ", FormatUtc(as_of), " UTC (",
                  FormatAge(opts.now - as_of), ")");
  if (!opts.controller.empty()) {
    absl::StrAppend(&out, "  from ", Printable(opts.controller));
  }
  absl::StrAppend(&out, "\n");
  if (r.reference().empty()) {
    absl::StrAppend(&out,
                    "reference   no server node in the mesh: offsets are "
                    "relative to the median node's report\n");
  } else {
    absl::StrAppend(&out, "reference   ", Printable(r.reference()),
                    " (offsets are reference minus local: '+' means behind "
                    "it)\n");
  }
  const absl::Duration interval = FromProto(r.interval());
  const int64_t k = r.probes_per_node();
  // Each exchange is counted once for the fleet: one per measured edge.
  const int64_t exchanges = r.edges_size() > 0
                                ? r.edges_size()
                                : static_cast<int64_t>(r.nodes_size()) * k;
  absl::StrAppend(
      &out, "probes      ", k, " per node every ", Interval(interval), ": ", k,
      " x 2 x ", kNtpPacketOnWireBytes,
      " B = ", absl::StrFormat("%.1f", ProbeBytesPerSecond(k, interval)),
      " B/s per node; ", Plural(exchanges, "exchange", "exchanges"), " = ",
      absl::StrFormat("%.1f", ProbeBytesPerSecond(exchanges, interval)),
      " B/s for the fleet\n");
  absl::StrAppend(&out, "pairwise    |Ci - Cj| over ",
                  Plural(measured, "measured node", "measured nodes"), ": p50 ",
                  DurationOr(r.has_pairwise_p50(), r.pairwise_p50()), "  p99 ",
                  DurationOr(r.has_pairwise_p99(), r.pairwise_p99()), "  max ",
                  DurationOr(r.has_pairwise_max(), r.pairwise_max()), "\n");
  absl::StrAppend(&out, "closure     RMS ",
                  DurationOr(r.has_closure_rms(), r.closure_rms()),
                  " (residuals of the edges: small when the loops close)\n");
  if (r.edges_predating_state() > 0) {
    absl::StrAppend(
        &out, "waiting     ",
        Plural(r.edges_predating_state(), "probe", "probes"),
        " left out: taken before a node's last sync-state change (a step, "
        "the end of a slew); replaced at the prober's next round\n");
  }
  return out;
}

}  // namespace

double ProbeBytesPerSecond(int64_t exchanges, absl::Duration interval) {
  const double seconds = absl::ToDoubleSeconds(interval);
  if (seconds <= 0) return 0;
  return static_cast<double>(exchanges) * 2.0 *
         static_cast<double>(kNtpPacketOnWireBytes) / seconds;
}

bool AnyCrosscheckFlagged(const CrosscheckResponse& response) {
  if (response.flagged_count() > 0) return true;
  return std::any_of(
      response.nodes().begin(), response.nodes().end(),
      [](const NodeCrosscheckRow& r) { return r.crosscheck().flagged(); });
}

std::string RenderCrosscheck(const CrosscheckResponse& r,
                             const CrosscheckRenderOptions& opts) {
  std::vector<const NodeCrosscheckRow*> rows;
  size_t measured = 0;
  for (const NodeCrosscheckRow& row : r.nodes()) {
    rows.push_back(&row);
    measured += Measured(row) ? 1 : 0;
  }
  std::string out = HeaderLines(r, opts, measured);
  // Flagged first, the largest |disagreement| first; then by name.
  std::stable_sort(
      rows.begin(), rows.end(),
      [](const NodeCrosscheckRow* a, const NodeCrosscheckRow* b) {
        const bool fa = a->crosscheck().flagged();
        const bool fb = b->crosscheck().flagged();
        if (fa != fb) return fa;
        if (fa) {
          const absl::Duration da =
              absl::AbsDuration(FromProto(a->crosscheck().disagreement()));
          const absl::Duration db =
              absl::AbsDuration(FromProto(b->crosscheck().disagreement()));
          if (da != db) return da > db;
        }
        return a->name() < b->name();
      });
  if (r.has_as_of()) {
    size_t judged = 0;
    std::vector<std::string> flagged;
    for (const NodeCrosscheckRow* row : rows) {
      const Verdict v = VerdictOf(*row, r.reference());
      if (v == Verdict::kOk || v == Verdict::kFlagged) ++judged;
      if (v == Verdict::kFlagged) flagged.push_back(Printable(row->name()));
    }
    if (flagged.empty()) {
      absl::StrAppend(&out, "verdict     no node flagged (",
                      Plural(judged, "node", "nodes"), " judged)\n");
    } else {
      absl::StrAppend(
          &out, "verdict     ",
          Paint(absl::StrCat(flagged.size(), " of ",
                             Plural(judged, "judged node", "judged nodes"),
                             " FLAGGED"),
                kRed, opts.color),
          ": ", absl::StrJoin(flagged, ", "), "\n");
    }
  }
  absl::StrAppend(&out, "\n");
  if (rows.empty()) return absl::StrCat(out, "no nodes\n");

  std::vector<std::vector<Cell>> cells;
  for (const NodeCrosscheckRow* row : rows) {
    const v1::NodeCrosscheck& c = row->crosscheck();
    const bool has = Measured(*row);
    const Verdict v = VerdictOf(*row, r.reference());
    auto offset = [](bool set, const google::protobuf::Duration& d) {
      return set ? FormatOffset(FromProto(d)) : std::string("-");
    };
    cells.push_back({
        {Printable(row->name())},
        {SyncStateWord(row->state())},
        {offset(c.has_reported_offset(), c.reported_offset())},
        {offset(has, c.measured_offset())},
        {has ? absl::StrCat("±",
                            ctl::FormatDuration(FromProto(c.uncertainty())))
             : "-"},
        {offset(c.has_disagreement(), c.disagreement()),
         v == Verdict::kFlagged ? kRed : kNoColor},
        {DurationOr(row->has_error_bound(), row->error_bound())},
        {has ? absl::StrCat(c.probed_by()) : "-"},
        VerdictCell(v),
    });
  }
  const std::vector<Column> columns = {
      {"NODE", Align::kLeft, 0},       {"STATE", Align::kLeft, 14},
      {"REPORTED", Align::kRight, 10}, {"MEASURED", Align::kRight, 10},
      {"±UNCERT", Align::kRight, 0},   {"DISAGREE", Align::kRight, 10},
      {"BOUND", Align::kRight, 0},     {"PROBED-BY", Align::kRight, 0},
      {"VERDICT", Align::kLeft, 0},
  };
  absl::StrAppend(&out, RenderTable(columns, cells, opts.color));
  std::string reasons;
  for (const NodeCrosscheckRow* row : rows) {
    if (row->crosscheck().reason().empty()) continue;
    absl::StrAppend(&reasons, Printable(row->name()), ": ",
                    Printable(row->crosscheck().reason()), "\n");
  }
  if (!reasons.empty()) absl::StrAppend(&out, "\n", reasons);

  if (opts.edges) {
    std::vector<const ProbeEdge*> edges;
    for (const ProbeEdge& e : r.edges()) edges.push_back(&e);
    std::stable_sort(edges.begin(), edges.end(),
                     [](const ProbeEdge* a, const ProbeEdge* b) {
                       if (a->from() != b->from()) return a->from() < b->from();
                       return a->to() < b->to();
                     });
    absl::StrAppend(&out, "\n", Plural(edges.size(), "edge", "edges"),
                    " (OFFSET is C(to) - C(from), as FROM measured TO)\n");
    if (!edges.empty()) {
      std::vector<std::vector<Cell>> edge_cells;
      for (const ProbeEdge* e : edges) {
        edge_cells.push_back({
            {Printable(e->from())},
            {Printable(e->to())},
            {FormatOffset(FromProto(e->offset()))},
            {ctl::FormatDuration(FromProto(e->delay()))},
            {e->has_residual() ? FormatOffset(FromProto(e->residual())) : "-"},
            {e->has_measured_at()
                 ? FormatAge(opts.now - FromProto(e->measured_at()))
                 : "-"},
        });
      }
      absl::StrAppend(&out, RenderTable({{"FROM", Align::kLeft, 0},
                                         {"TO", Align::kLeft, 0},
                                         {"OFFSET", Align::kRight, 10},
                                         {"DELAY", Align::kRight, 0},
                                         {"RESIDUAL", Align::kRight, 0},
                                         {"MEASURED", Align::kRight, 0}},
                                        edge_cells, opts.color));
    }
  }
  return out;
}

}  // namespace ntpfleet::ctl
