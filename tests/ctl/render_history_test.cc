// RenderNodeHistory and its sparklines: one column per slice of the span, a
// gap in reports as a blank, the offset farthest from zero per column scaled
// min..max, '?' for a bucket without a value, state changes and silences
// (but not the spacing of a node that reports every 10 s), the table grouped
// to kHistoryRows rows, no trailing spaces, control characters in the name.
// The expected strings are written out by hand from the rules in
// ctl/render_history.h.
#include "ctl/render_history.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kT0 = absl::FromUnixSeconds(1700002800);  // 2023-11-14 23:00

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

v1::NodePoint Point(absl::Time t, absl::Duration offset,
                    absl::Duration bound = absl::Microseconds(100),
                    v1::SyncState state = v1::SYNC_STATE_SYNCHRONISED) {
  v1::NodePoint p;
  SetTimestamp(t, p.mutable_time());
  SetDuration(offset, p.mutable_offset_min());
  SetDuration(offset, p.mutable_offset_max());
  SetDuration(offset, p.mutable_offset_last());
  if (bound > absl::ZeroDuration()) {
    SetDuration(bound, p.mutable_max_error_bound());
  }
  p.set_max_stratum(2);
  p.set_worst_state(state);
  p.set_reports(1);
  return p;
}

const NodeHistorySpan kMinute{"web-1", kT0, kT0 + absl::Seconds(60)};

TEST(RenderHistoryTest, OffsetSparklineShowsGapsAsBlanksAndSpikesBothWays) {
  std::vector<v1::NodePoint> points;
  for (int s = 0; s < 60; ++s) {
    if (s >= 20 && s < 30) continue;  // silent
    const absl::Duration offset = s == 40   ? absl::Milliseconds(1)
                                  : s == 50 ? absl::Milliseconds(-1)
                                            : absl::ZeroDuration();
    points.push_back(Point(kT0 + absl::Seconds(s), offset));
  }
  // 0 lies halfway between -1 ms (▁) and +1 ms (█): level round(3.5) = 4, ▅.
  EXPECT_EQ(RenderOffsetSparkline(points, kMinute, absl::Seconds(1), 60),
            Repeat("▅", 20) + Repeat(" ", 10) + Repeat("▅", 10) + "█" +
                Repeat("▅", 9) + "▁" + Repeat("▅", 9));
}

TEST(RenderHistoryTest, AColumnShowsTheOffsetFarthestFromZeroOfItsSlice) {
  // Two points per column: a small positive and a larger negative one.
  std::vector<v1::NodePoint> points;
  for (int s = 0; s < 4; ++s) {
    points.push_back(Point(kT0 + absl::Seconds(15 * s), absl::Microseconds(1)));
    points.push_back(Point(kT0 + absl::Seconds(15 * s + 7),
                           absl::Microseconds(s == 2 ? -80 : -10)));
  }
  // 4 columns of 15 s: -10, -10, -80, -10 µs; -80 is ▁, -10 is █.
  EXPECT_EQ(RenderOffsetSparkline(points, kMinute, absl::Seconds(15), 60),
            "██▁█");
}

TEST(RenderHistoryTest, ColumnsAreAtMostOnePerBucket) {
  const std::vector<v1::NodePoint> points = {Point(kT0, absl::Microseconds(5))};
  // A minute at 1 min resolution: one column, whatever the width allowed.
  EXPECT_EQ(RenderOffsetSparkline(points, kMinute, absl::Minutes(1), 60),
            "▄");  // one value: the middle
}

TEST(RenderHistoryTest, BoundSparklineScalesFromZeroAndMarksUnknownBounds) {
  std::vector<v1::NodePoint> points = {
      Point(kT0, absl::ZeroDuration(), absl::Microseconds(700)),
      Point(kT0 + absl::Seconds(15), absl::ZeroDuration(),
            absl::Microseconds(100)),
      Point(kT0 + absl::Seconds(30), absl::ZeroDuration(), absl::ZeroDuration(),
            v1::SYNC_STATE_UNSYNCHRONISED),
  };
  // 700 µs is █, 100 µs is round(7/7) = 1: ▂; no bound: '?'; no point: ' '.
  EXPECT_EQ(RenderBoundSparkline(points, kMinute, absl::Seconds(15), 60),
            "█▂? ");
}

TEST(RenderHistoryTest, WholeViewSummarisesStateChangesAndSilences) {
  v1::HistoryResponse response;
  SetDuration(absl::Seconds(1), response.mutable_resolution());
  for (int s = 0; s < 60; ++s) {
    if (s >= 20 && s < 30) continue;
    const v1::SyncState state = s >= 40 && s < 45 ? v1::SYNC_STATE_HOLDOVER
                                                  : v1::SYNC_STATE_SYNCHRONISED;
    *response.add_node_points() =
        Point(kT0 + absl::Seconds(s), absl::Microseconds(s - 30),
              absl::Microseconds(100 + s), state);
  }
  const std::string out = RenderNodeHistory(response, kMinute);
  EXPECT_THAT(out, HasSubstr("web-1: 2023-11-14 23:00:00 .. 2023-11-14 "
                             "23:01:00 UTC at 1s resolution, 50 of 60 "
                             "buckets with reports\n"));
  EXPECT_THAT(out, HasSubstr("min -30µs  max +29µs  last +29µs\n"));
  EXPECT_THAT(out, HasSubstr("max 159µs  last 159µs\n"));
  EXPECT_THAT(out, HasSubstr("stratum 2, 50 reports\n"));
  EXPECT_THAT(out, HasSubstr("state changes (4):\n"
                             "  2023-11-14 23:00:20  synchronised -> no "
                             "reports\n"
                             "  2023-11-14 23:00:30  no reports -> "
                             "synchronised\n"
                             "  2023-11-14 23:00:40  synchronised -> holdover\n"
                             "  2023-11-14 23:00:45  holdover -> "
                             "synchronised\n"));
  // 50 buckets in 24 rows: the first row holds buckets 0 and 1 (50/24).
  EXPECT_THAT(out, HasSubstr("TIME (UTC)           OFFSET MIN  OFFSET MAX  "
                             "OFFSET LAST  ERROR BOUND  ST  WORST STATE   "
                             "REPORTS\n"
                             "2023-11-14 23:00:00       -30µs       -29µs    "
                             "    -29µs        101µs   2  synchronised        "
                             "2\n"));
  const std::vector<std::string> lines = absl::StrSplit(out, '\n');
  EXPECT_EQ(lines.back(), "");  // ends in a newline
  int table_rows = 0;
  bool in_table = false;
  for (const std::string& line : lines) {
    EXPECT_TRUE(line.empty() || line.back() != ' ') << "'" << line << "'";
    if (absl::StartsWith(line, "TIME (UTC)"))
      in_table = true;
    else if (in_table && !line.empty())
      ++table_rows;
  }
  EXPECT_EQ(table_rows, kHistoryRows);
}

TEST(RenderHistoryTest, ANodeReportingEvery10sIsNotSilentBetweenReports) {
  v1::HistoryResponse response;
  SetDuration(absl::Seconds(1), response.mutable_resolution());
  for (int s = 0; s < 60; s += 10) {
    *response.add_node_points() =
        Point(kT0 + absl::Seconds(s), absl::ZeroDuration());
  }
  const std::string out = RenderNodeHistory(response, kMinute);
  EXPECT_THAT(out, HasSubstr("state changes: none\n"));
  EXPECT_THAT(out, Not(HasSubstr("no reports")));
}

TEST(RenderHistoryTest, ANodeThatFellSilentSaysSince) {
  v1::HistoryResponse response;
  SetDuration(absl::Seconds(1), response.mutable_resolution());
  for (int s = 0; s < 10; ++s) {
    *response.add_node_points() =
        Point(kT0 + absl::Seconds(s), absl::ZeroDuration());
  }
  EXPECT_THAT(RenderNodeHistory(response, kMinute),
              HasSubstr("  2023-11-14 23:00:10  synchronised -> no reports\n"));
}

TEST(RenderHistoryTest, NoPointsSaysSoAndTheNameIsMadePrintable) {
  v1::HistoryResponse response;
  SetDuration(absl::Minutes(1), response.mutable_resolution());
  const NodeHistorySpan span{"evil\x1b[2Jnode", kT0, kT0 + absl::Hours(24)};
  EXPECT_EQ(RenderNodeHistory(response, span),
            "evil?[2Jnode: 2023-11-14 23:00:00 .. 2023-11-15 23:00:00 UTC at "
            "1m resolution: no reports in this span\n");
}

}  // namespace
}  // namespace ntpfleet::ctl
