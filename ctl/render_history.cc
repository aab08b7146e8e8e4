// RenderNodeHistory: see render_history.h.
#include "ctl/render_history.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "ctl/printable.h"
#include "ctl/render_fleet.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::v1::NodePoint;

constexpr const char* kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
constexpr size_t kMaxStateChanges = 20;

absl::string_view StateName(int state) {
  switch (state) {
    case v1::SYNC_STATE_SYNCHRONISED:
      return "synchronised";
    case v1::SYNC_STATE_LOCAL_CLOCK:
      return "local clock";
    case v1::SYNC_STATE_SYNCING:
      return "syncing";
    case v1::SYNC_STATE_HOLDOVER:
      return "holdover";
    case v1::SYNC_STATE_UNSYNCHRONISED:
      return "unsynchronised";
    case v1::SYNC_STATE_REFUSED:
      return "refused";
    default:
      return "unknown";
  }
}

std::string Utc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", t, absl::UTCTimeZone());
}

// "1s", "1m", "1h", "90s".
std::string Resolution(absl::Duration d) {
  const int64_t s = absl::ToInt64Seconds(d);
  if (s > 0 && s % 3600 == 0) return absl::StrCat(s / 3600, "h");
  if (s > 0 && s % 60 == 0) return absl::StrCat(s / 60, "m");
  if (s > 0) return absl::StrCat(s, "s");
  return absl::FormatDuration(d);
}

// 86400 -> "86 400".
std::string Thousands(uint64_t n) {
  std::string digits = absl::StrCat(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ' ';
    out += digits[i];
  }
  return out;
}

size_t CodePoints(absl::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (c & 0xc0) != 0x80; }));
}

absl::Duration Span(const NodeHistorySpan& span) {
  return std::max(span.end - span.start, absl::Nanoseconds(1));
}

// Buckets of `resolution` in the span, at least 1.
int64_t BucketsIn(const NodeHistorySpan& span, absl::Duration resolution) {
  if (resolution <= absl::ZeroDuration()) return 1;
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(
                                  absl::FDivDuration(Span(span), resolution))));
}

int Columns(const NodeHistorySpan& span, absl::Duration resolution,
            int columns) {
  return static_cast<int>(std::clamp<int64_t>(BucketsIn(span, resolution), 1,
                                              std::max(columns, 1)));
}

// The column of a point at `t`.
int ColumnOf(absl::Time t, const NodeHistorySpan& span, int columns) {
  const double f = absl::FDivDuration(t - span.start, Span(span));
  return std::clamp(static_cast<int>(std::floor(f * columns)), 0, columns - 1);
}

int64_t Nanos(const google::protobuf::Duration& d) {
  return absl::ToInt64Nanoseconds(FromProto(d));
}

int Level(double fraction) {
  return std::clamp(static_cast<int>(std::lround(7.0 * fraction)), 0, 7);
}

struct Column {
  bool any = false;  // a point falls in it
  bool has = false;  // one of them carries the value
  int64_t value = 0;
};

std::string Draw(const std::vector<Column>& columns, int64_t lo, int64_t hi,
                 bool from_zero) {
  std::string out;
  for (const Column& c : columns) {
    if (!c.any) {
      out += ' ';
    } else if (!c.has) {
      out += '?';
    } else if (hi == lo) {
      out += kBlocks[from_zero ? (hi == 0 ? 0 : 7) : 3];
    } else {
      out += kBlocks[Level(static_cast<double>(c.value - lo) /
                           static_cast<double>(hi - lo))];
    }
  }
  return out;
}

// A group of consecutive points merged as the store merges buckets.
struct Merged {
  absl::Time time;
  bool has_offset = false;
  int64_t min = 0, max = 0, last = 0;
  bool has_bound = false;
  int64_t bound = 0;
  uint32_t stratum = 0;
  int state = v1::SYNC_STATE_SYNCHRONISED;
  int severity = -1;
  uint64_t reports = 0;
};

int Severity(int state) {
  static constexpr int kBestFirst[] = {
      v1::SYNC_STATE_SYNCHRONISED,   v1::SYNC_STATE_LOCAL_CLOCK,
      v1::SYNC_STATE_SYNCING,        v1::SYNC_STATE_HOLDOVER,
      v1::SYNC_STATE_UNSYNCHRONISED, v1::SYNC_STATE_REFUSED};
  for (int i = 0; i < 6; ++i) {
    if (kBestFirst[i] == state) return i;
  }
  return 6;
}

void Fold(const NodePoint& p, Merged* m) {
  if (m->reports == 0 && m->severity < 0) m->time = FromProto(p.time());
  if (p.has_offset_min()) {
    const int64_t lo = Nanos(p.offset_min()), hi = Nanos(p.offset_max());
    m->min = m->has_offset ? std::min(m->min, lo) : lo;
    m->max = m->has_offset ? std::max(m->max, hi) : hi;
    m->last = Nanos(p.offset_last());
    m->has_offset = true;
  }
  if (p.has_max_error_bound()) {
    const int64_t b = Nanos(p.max_error_bound());
    m->bound = m->has_bound ? std::max(m->bound, b) : b;
    m->has_bound = true;
  }
  m->stratum = std::max(m->stratum, p.max_stratum());
  if (Severity(p.worst_state()) > m->severity) {
    m->severity = Severity(p.worst_state());
    m->state = p.worst_state();
  }
  m->reports += p.reports();
}

std::string Offset(int64_t ns) { return FormatOffset(absl::Nanoseconds(ns)); }
std::string Magnitude(int64_t ns) {
  return ctl::FormatDuration(absl::Nanoseconds(ns));
}

std::string Table(const std::vector<NodePoint>& points) {
  const size_t n = points.size();
  const size_t groups = std::min(n, static_cast<size_t>(kHistoryRows));
  std::vector<std::vector<std::string>> rows = {
      {"TIME (UTC)", "OFFSET MIN", "OFFSET MAX", "OFFSET LAST", "ERROR BOUND",
       "ST", "WORST STATE", "REPORTS"}};
  for (size_t g = 0; g < groups; ++g) {
    Merged m;
    for (size_t i = g * n / groups; i < (g + 1) * n / groups; ++i) {
      Fold(points[i], &m);
    }
    rows.push_back({
        Utc(m.time),
        m.has_offset ? Offset(m.min) : "-",
        m.has_offset ? Offset(m.max) : "-",
        m.has_offset ? Offset(m.last) : "-",
        m.has_bound ? Magnitude(m.bound) : "-",
        absl::StrCat(m.stratum),
        std::string(StateName(m.state)),
        absl::StrCat(m.reports),
    });
  }
  // Left: time and state; right: the numbers.
  const std::vector<bool> left = {true,  false, false, false,
                                  false, false, true,  false};
  std::vector<size_t> width(left.size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], CodePoints(row[c]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string pad(width[c] - CodePoints(row[c]), ' ');
      if (c > 0) line += "  ";
      absl::StrAppend(&line, left[c] ? "" : pad, row[c], left[c] ? pad : "");
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string StateChanges(const std::vector<NodePoint>& points,
                         const NodeHistorySpan& span,
                         absl::Duration resolution) {
  // The usual spacing of the buckets: the median gap between them.
  std::vector<absl::Duration> gaps;
  for (size_t i = 1; i < points.size(); ++i) {
    gaps.push_back(FromProto(points[i].time()) -
                   FromProto(points[i - 1].time()));
  }
  absl::Duration silent = absl::InfiniteDuration();
  if (!gaps.empty()) {
    std::vector<absl::Duration> sorted = gaps;
    std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2,
                     sorted.end());
    silent = std::max(3 * sorted[sorted.size() / 2], resolution);
  } else {
    silent = 3 * resolution;
  }
  std::vector<std::string> changes;
  auto change = [&](absl::Time t, absl::string_view from,
                    absl::string_view to) {
    changes.push_back(absl::StrCat("  ", Utc(t), "  ", from, " -> ", to));
  };
  for (size_t i = 0; i < points.size(); ++i) {
    const absl::string_view state = StateName(points[i].worst_state());
    if (i == 0) continue;
    const absl::string_view before = StateName(points[i - 1].worst_state());
    if (gaps[i - 1] > silent) {
      change(FromProto(points[i - 1].time()) + resolution, before,
             "no reports");
      change(FromProto(points[i].time()), "no reports", state);
    } else if (points[i].worst_state() != points[i - 1].worst_state()) {
      change(FromProto(points[i].time()), before, state);
    }
  }
  if (!points.empty()) {
    const absl::Time after_last = FromProto(points.back().time()) + resolution;
    if (span.end - after_last > silent) {
      change(after_last, StateName(points.back().worst_state()), "no reports");
    }
  }
  if (changes.empty()) return "state changes: none\n";
  std::string out = absl::StrCat("state changes (", changes.size(), "):\n");
  const size_t shown = std::min(changes.size(), kMaxStateChanges);
  for (size_t i = 0; i < shown; ++i) absl::StrAppend(&out, changes[i], "\n");
  if (changes.size() > shown) {
    absl::StrAppend(&out, "  ... and ", changes.size() - shown,
                    " more (--output json has every bucket)\n");
  }
  return out;
}

}  // namespace

std::string RenderOffsetSparkline(const std::vector<NodePoint>& points,
                                  const NodeHistorySpan& span,
                                  absl::Duration resolution, int columns) {
  const int n = Columns(span, resolution, columns);
  std::vector<Column> cols(n);
  std::optional<int64_t> lo, hi;
  for (const NodePoint& p : points) {
    Column& c = cols[ColumnOf(FromProto(p.time()), span, n)];
    c.any = true;
    if (!p.has_offset_min()) continue;
    // The one farthest from zero: a spike either way stays visible.
    for (int64_t v : {Nanos(p.offset_min()), Nanos(p.offset_max())}) {
      if (!c.has || std::abs(v) > std::abs(c.value)) c.value = v;
      c.has = true;
    }
  }
  for (const Column& c : cols) {
    if (!c.has) continue;
    lo = lo ? std::min(*lo, c.value) : c.value;
    hi = hi ? std::max(*hi, c.value) : c.value;
  }
  return Draw(cols, lo.value_or(0), hi.value_or(0), /*from_zero=*/false);
}

std::string RenderBoundSparkline(const std::vector<NodePoint>& points,
                                 const NodeHistorySpan& span,
                                 absl::Duration resolution, int columns) {
  const int n = Columns(span, resolution, columns);
  std::vector<Column> cols(n);
  int64_t top = 0;
  for (const NodePoint& p : points) {
    Column& c = cols[ColumnOf(FromProto(p.time()), span, n)];
    c.any = true;
    if (!p.has_max_error_bound()) continue;
    c.value = std::max(c.has ? c.value : 0, Nanos(p.max_error_bound()));
    c.has = true;
    top = std::max(top, c.value);
  }
  return Draw(cols, 0, top, /*from_zero=*/true);
}

std::string RenderNodeHistory(const v1::HistoryResponse& history,
                              const NodeHistorySpan& span) {
  const std::string node = Printable(span.node);
  const absl::Duration resolution = FromProto(history.resolution());
  const std::vector<NodePoint> points(history.node_points().begin(),
                                      history.node_points().end());
  std::string out =
      absl::StrCat(node, ": ", Utc(span.start), " .. ", Utc(span.end),
                   " UTC at ", Resolution(resolution), " resolution");
  if (points.empty()) {
    return absl::StrCat(out, ": no reports in this span\n");
  }
  absl::StrAppend(&out, ", ", Thousands(points.size()), " of ",
                  Thousands(BucketsIn(span, resolution)),
                  " buckets with reports\n\n");

  Merged all;
  for (const NodePoint& p : points) Fold(p, &all);
  const int columns = Columns(span, resolution, kSparklineWidth);
  absl::StrAppend(
      &out, "offset  ",
      RenderOffsetSparkline(points, span, resolution, kSparklineWidth), "  ",
      all.has_offset
          ? absl::StrCat("min ", Offset(all.min), "  max ", Offset(all.max),
                         "  last ", Offset(all.last))
          : "no offset reported",
      "\n");
  // The last bound reported, from the newest point that has one.
  std::optional<int64_t> last_bound;
  for (auto it = points.rbegin(); it != points.rend() && !last_bound; ++it) {
    if (it->has_max_error_bound()) last_bound = Nanos(it->max_error_bound());
  }
  absl::StrAppend(
      &out, "bound   ",
      RenderBoundSparkline(points, span, resolution, kSparklineWidth), "  ",
      all.has_bound ? absl::StrCat("max ", Magnitude(all.bound), "  last ",
                                   Magnitude(*last_bound))
                    : "no error bound reported",
      "\n");
  absl::StrAppend(&out, "        one column = ",
                  Resolution(absl::Seconds(std::max<int64_t>(
                      1, absl::ToInt64Seconds(Span(span) / columns)))),
                  "; blank: no report; ?: no value reported\n");
  uint32_t lowest = points.front().max_stratum();
  for (const NodePoint& p : points) lowest = std::min(lowest, p.max_stratum());
  absl::StrAppend(&out, "stratum ",
                  lowest == all.stratum
                      ? absl::StrCat(lowest)
                      : absl::StrCat(lowest, "..", all.stratum),
                  ", ", Thousands(all.reports), " reports\n\n");
  absl::StrAppend(&out, StateChanges(points, span, resolution), "\n");
  absl::StrAppend(&out, Table(points));
  return out;
}

}  // namespace ntpfleet::ctl
