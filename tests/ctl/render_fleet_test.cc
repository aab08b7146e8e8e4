// Tests for the controller-backed views of ntpfleetctl (ctl/render_fleet.h).
//
// The golden files testdata/fleet_*.txt were laid out by hand from the rules
// in render_fleet.h, not produced by the code under test: every column as wide
// as its widest cell (OFFSET at least 10, STATE 14, REFID 15, SKEW 9), two
// spaces between columns, numbers right-aligned, text left-aligned, "µ"
// counted as one column, no trailing spaces. The fleet below is the one they
// show: 8 nodes, one of each kind (see Fleet()).
#include "ctl/render_fleet.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::ntpfleet::v1::Fleet;
using ::ntpfleet::v1::HistoryResponse;
using ::ntpfleet::v1::Node;
using ::ntpfleet::v1::PeerStatus;
using ::ntpfleet::v1::ResyncResponse;
using ::ntpfleet::v1::SkewPoint;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// 2026-11-25 23:41:10 UTC.
constexpr int64_t kNowUnixSeconds = 1'795'650'070;
const absl::Time kNow = absl::FromUnixSeconds(kNowUnixSeconds);

std::string ReadGolden(absl::string_view name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const std::string path = absl::StrCat(srcdir ? srcdir : ".",
                                        "/ntpfleet/tests/ctl/testdata/", name);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

google::protobuf::Duration Nanos(int64_t ns) {
  google::protobuf::Duration d;
  d.set_seconds(ns / 1'000'000'000);
  d.set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
  return d;
}

// kNow minus `ago_ms` milliseconds.
google::protobuf::Timestamp Ago(int64_t ago_ms) {
  const int64_t ms = kNowUnixSeconds * 1000 - ago_ms;
  google::protobuf::Timestamp t;
  t.set_seconds(ms / 1000);
  t.set_nanos(static_cast<int32_t>(ms % 1000 * 1'000'000));
  return t;
}

PeerStatus* AddPeer(v1::SyncStatus* s, absl::string_view remote,
                    v1::SelectionMark mark, uint32_t reach) {
  PeerStatus* p = s->add_peers();
  p->set_remote(std::string(remote));
  p->set_mark(mark);
  p->set_reach(reach);
  return p;
}

// A connected client synchronised to the server node: stratum 11, the
// server's address as refid.
Node* AddClient(Fleet* fleet, absl::string_view name, v1::SyncState state,
                int64_t offset_ns, int64_t error_bound_ns,
                int64_t seen_ms_ago) {
  Node* n = fleet->add_nodes();
  n->set_name(std::string(name));
  n->set_connection(v1::CONNECTION_STATE_CONNECTED);
  n->mutable_hello()->set_role(v1::ROLE_CLIENT);
  *n->mutable_last_seen() = Ago(seen_ms_ago);
  v1::SyncStatus* s = n->mutable_status();
  s->set_state(state);
  *s->mutable_offset() = Nanos(offset_ns);
  *s->mutable_error_bound() = Nanos(error_bound_ns);
  s->set_stratum(11);
  s->set_refid("192.168.242.51");
  return n;
}

// The fleet of the golden files, in the controller's (unsorted) order:
// - ntp-server: the server node, on its local clock (green, not a problem);
// - web-1: synchronised; its system peer is named in system_peer and is not
//   its first peer (REACH 377, not the first peer's 17);
// - db-1: flagged at +1.5 ms; system peer found by its '*' mark only (376);
// - cache-1: stale, its last report still shown; no system peer: REACH is the
//   first peer's (177);
// - batch-7: disconnected, never reported since the controller started;
// - app, app: a duplicate name pair, one synchronised, one still syncing;
// - edge-3.eu-west: in holdover, its only peer unreachable; the longest name.
Fleet TestFleet() {
  Fleet f;
  *f.mutable_as_of() = Ago(0);
  *f.mutable_skew() = Nanos(2'100'000);  // +1.5 ms - (-0.6 ms)
  *f.mutable_max_error_bound() = Nanos(2'345'000);
  *f.mutable_threshold() = Nanos(1'000'000);
  f.set_connected_count(6);
  f.set_stale_count(1);
  f.set_flagged_count(1);

  Node* n =
      AddClient(&f, "ntp-server", v1::SYNC_STATE_LOCAL_CLOCK, 0, 11'000, 400);
  n->mutable_hello()->set_role(v1::ROLE_SERVER);
  n->mutable_status()->set_stratum(10);
  n->mutable_status()->set_refid("LOCAL(0)");
  n->mutable_status()->set_system_peer("LOCAL(0)");
  AddPeer(n->mutable_status(), "LOCAL(0)", v1::SELECTION_MARK_SYSTEM_PEER,
          0377);

  n = AddClient(&f, "web-1", v1::SYNC_STATE_SYNCHRONISED, -312'000, 402'600,
                2'300);
  n->mutable_status()->set_system_peer("ntp-server");
  AddPeer(n->mutable_status(), "ntp-backup", v1::SELECTION_MARK_CANDIDATE, 017);
  AddPeer(n->mutable_status(), "ntp-server", v1::SELECTION_MARK_SYSTEM_PEER,
          0377);

  n = AddClient(&f, "db-1", v1::SYNC_STATE_SYNCHRONISED, 1'500'000, 1'712'345,
                1'000);
  n->set_flagged(true);
  AddPeer(n->mutable_status(), "ntp-backup", v1::SELECTION_MARK_CANDIDATE, 017);
  AddPeer(n->mutable_status(), "ntp-server", v1::SELECTION_MARK_SYSTEM_PEER,
          0376);

  n = AddClient(&f, "cache-1", v1::SYNC_STATE_SYNCHRONISED, -45'000, 950'000,
                200'000);
  n->set_connection(v1::CONNECTION_STATE_STALE);
  AddPeer(n->mutable_status(), "ntp-server", v1::SELECTION_MARK_CANDIDATE,
          0177);

  n = f.add_nodes();
  n->set_name("batch-7");
  n->set_connection(v1::CONNECTION_STATE_DISCONNECTED);
  *n->mutable_last_seen() = Ago((2 * 24 + 3) * 3'600'000);

  n = AddClient(&f, "app", v1::SYNC_STATE_SYNCHRONISED, -600'000, 812'300,
                5'550);
  n->set_duplicate_name(true);
  n->mutable_status()->set_system_peer("ntp-server");
  AddPeer(n->mutable_status(), "ntp-server", v1::SELECTION_MARK_SYSTEM_PEER,
          0377);

  n = AddClient(&f, "app", v1::SYNC_STATE_SYNCING, 880'000, 2'345'000, 50);
  n->set_duplicate_name(true);
  AddPeer(n->mutable_status(), "ntp-server", v1::SELECTION_MARK_CANDIDATE, 03);

  n = AddClient(&f, "edge-3.eu-west", v1::SYNC_STATE_HOLDOVER, 210'000,
                1'950'000, 900);
  AddPeer(n->mutable_status(), "ntp-server", v1::SELECTION_MARK_REJECT, 0);
  return f;
}

RenderOptions Plain() {
  RenderOptions opts;
  opts.now = kNow;
  return opts;
}

RenderOptions Colored() {
  RenderOptions opts = Plain();
  opts.color = true;
  return opts;
}

SkewPoint Point(int64_t skew_ns) {
  SkewPoint p;
  *p.mutable_skew() = Nanos(skew_ns);
  return p;
}

std::vector<SkewPoint> Points(const std::vector<int64_t>& skews_ns) {
  std::vector<SkewPoint> points;
  for (int64_t ns : skews_ns) points.push_back(Point(ns));
  return points;
}

// `s` with every "ESC [ ... letter" sequence removed.
std::string StripAnsi(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
      i += 2;
      while (i < s.size() && !absl::ascii_isalpha(s[i])) ++i;
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

// The number of code points (terminal columns for this text).
size_t Columns(absl::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

// ---------------------------------------------------------------------------
// Units.

TEST(FormatOffsetTest, PicksUnitByMagnitudeAndAlwaysShowsSign) {
  EXPECT_EQ(FormatOffset(absl::Microseconds(312)), "+312µs");
  EXPECT_EQ(FormatOffset(absl::Microseconds(-1234)), "-1.234ms");
  EXPECT_EQ(FormatOffset(absl::Milliseconds(2500)), "+2.500s");
  EXPECT_EQ(FormatOffset(absl::ZeroDuration()), "+0µs");
  EXPECT_EQ(FormatOffset(absl::Seconds(3600)), "+3600.000s");
}

TEST(FormatOffsetTest, RoundsHalfUpOnMagnitudeAndKeepsSignOfTinyNegatives) {
  EXPECT_EQ(FormatOffset(absl::Nanoseconds(499)), "+0µs");
  EXPECT_EQ(FormatOffset(absl::Nanoseconds(500)), "+1µs");
  EXPECT_EQ(FormatOffset(absl::Nanoseconds(-500)), "-1µs");
  EXPECT_EQ(FormatOffset(absl::Nanoseconds(-200)), "-0µs");
  EXPECT_EQ(FormatOffset(absl::Nanoseconds(1'234'567)), "+1.235ms");
}

TEST(FormatOffsetTest, MovesToTheNextUnitWhenRoundingReachesIt) {
  EXPECT_EQ(FormatOffset(absl::Nanoseconds(999'499)), "+999µs");
  EXPECT_EQ(FormatOffset(absl::Nanoseconds(999'500)), "+1.000ms");
  EXPECT_EQ(FormatOffset(absl::Nanoseconds(999'999'499)), "+999.999ms");
  EXPECT_EQ(FormatOffset(absl::Nanoseconds(999'999'500)), "+1.000s");
}

TEST(FormatOffsetTest, RoundsSecondsOnceFromTheExactValue) {
  // Rounded to µs first (1.000500 s), then to ms, this would be "+1.001s".
  EXPECT_EQ(FormatOffset(absl::Nanoseconds(1'000'499'600)), "+1.000s");
  EXPECT_EQ(FormatOffset(absl::Nanoseconds(1'000'500'000)), "+1.001s");
}

TEST(FormatOffsetTest, ShowsInfinityAndSurvivesHugeValues) {
  EXPECT_EQ(FormatOffset(absl::InfiniteDuration()), "+inf");
  EXPECT_EQ(FormatOffset(-absl::InfiniteDuration()), "-inf");
  EXPECT_THAT(
      FormatOffset(absl::Seconds(std::numeric_limits<int64_t>::max() / 2)),
      StartsWith("+"));
}

TEST(FormatDurationTest, UsesTheSameUnitsWithoutPlus) {
  EXPECT_EQ(ctl::FormatDuration(absl::Microseconds(312)), "312µs");
  EXPECT_EQ(ctl::FormatDuration(absl::Microseconds(1234)), "1.234ms");
  EXPECT_EQ(ctl::FormatDuration(absl::Milliseconds(2500)), "2.500s");
  EXPECT_EQ(ctl::FormatDuration(absl::ZeroDuration()), "0µs");
  EXPECT_EQ(ctl::FormatDuration(absl::Microseconds(-5)), "-5µs");
}

TEST(FormatAgeTest, GrowsCoarserAndTruncates) {
  EXPECT_EQ(FormatAge(absl::ZeroDuration()), "0.0s ago");
  EXPECT_EQ(FormatAge(absl::Milliseconds(499)), "0.4s ago");
  EXPECT_EQ(FormatAge(absl::Milliseconds(9'999)), "9.9s ago");
  EXPECT_EQ(FormatAge(absl::Seconds(10)), "10s ago");
  EXPECT_EQ(FormatAge(absl::Milliseconds(59'999)), "59s ago");
  EXPECT_EQ(FormatAge(absl::Seconds(60)), "1m ago");
  EXPECT_EQ(FormatAge(absl::Seconds(3 * 60 + 59)), "3m ago");
  EXPECT_EQ(FormatAge(absl::Minutes(60)), "1h ago");
  EXPECT_EQ(FormatAge(absl::Hours(23) + absl::Minutes(59)), "23h ago");
  EXPECT_EQ(FormatAge(absl::Hours(24)), "1d ago");
  EXPECT_EQ(FormatAge(absl::Hours(400 * 24)), "400d ago");
}

TEST(FormatAgeTest, ShowsAgeFromTheFutureAsZero) {
  EXPECT_EQ(FormatAge(absl::Seconds(-3)), "0.0s ago");
}

// ---------------------------------------------------------------------------
// Sparkline.

TEST(RenderSparklineTest, ScalesZeroToLowestAndMaxToHighestBlock) {
  EXPECT_EQ(RenderSparkline(Points({0, 100'000, 200'000, 300'000, 400'000,
                                    500'000, 600'000, 700'000})),
            "▁▂▃▄▅▆▇█");
  EXPECT_EQ(RenderSparkline(Points({700'000, 0, 350'000})), "█▁▅");
}

TEST(RenderSparklineTest, RoundsLevelHalfUp) {
  // 7 * 50 / 700 = 0.5 exactly: level 1.
  EXPECT_EQ(RenderSparkline(Points({49'999, 50'000, 700'000})), "▁▂█");
}

TEST(RenderSparklineTest, FlatAtBottomWhenAllZeroAndEmptyWithoutPoints) {
  EXPECT_EQ(RenderSparkline(Points({0, 0, 0})), "▁▁▁");
  EXPECT_EQ(RenderSparkline(Points({-5'000, 0})), "▁▁");  // Not negative.
  EXPECT_EQ(RenderSparkline({}), "");
}

TEST(RenderSparklineTest, GroupsMoreThanSixtyPointsKeepingEachGroupsMax) {
  // 120 points: pairs (0, k * 100 µs) with k = 0..7 repeating; each column
  // shows the larger of its pair.
  std::vector<int64_t> skews;
  for (int c = 0; c < 120 / 2; ++c) {
    skews.push_back(0);
    skews.push_back((c % 8) * 100'000);
  }
  std::string expected;
  for (int i = 0; i < 7; ++i) expected += "▁▂▃▄▅▆▇█";
  expected += "▁▂▃▄";
  EXPECT_EQ(RenderSparkline(Points(skews)), expected);
}

TEST(RenderSparklineTest, KeepsAOnePointSpikeVisibleWhenGrouping) {
  std::vector<int64_t> skews(600, 0);
  skews[317] = 1'000'000;  // Column 31 of 60 (points 310..319).
  std::string expected;
  for (int i = 0; i < 31; ++i) expected += "▁";
  expected += "█";
  for (int i = 0; i < 28; ++i) expected += "▁";
  EXPECT_EQ(RenderSparkline(Points(skews)), expected);
}

TEST(RenderSparklineTest, NeverWiderThanSixty) {
  for (size_t n : {1u, 59u, 60u, 61u, 119u, 1000u}) {
    const std::string line =
        RenderSparkline(Points(std::vector<int64_t>(n, 5'000)));
    EXPECT_EQ(Columns(line), std::min<size_t>(n, 60)) << n;
  }
}

// ---------------------------------------------------------------------------
// Status.

TEST(RenderFleetStatusTest, MatchesGoldenWithOneNodeOfEachKind) {
  EXPECT_EQ(RenderFleetStatus(TestFleet(), Plain()),
            ReadGolden("fleet_status.txt"));
}

TEST(RenderFleetStatusTest, NoEscapeCodesWithoutColor) {
  EXPECT_THAT(RenderFleetStatus(TestFleet(), Plain()), Not(HasSubstr("\x1b")));
  EXPECT_THAT(RenderWatchFrame(TestFleet(), Points({1, 2}), Plain()),
              Not(HasSubstr("\x1b")));
}

TEST(RenderFleetStatusTest, ColorsStatesFlagsAndSkewOverThreshold) {
  const std::string out = RenderFleetStatus(TestFleet(), Colored());
  EXPECT_THAT(out, HasSubstr("fleet skew \x1b[31m2.100ms\x1b[0m"));
  EXPECT_THAT(out, HasSubstr("\x1b[31m1 flagged\x1b[0m"));
  EXPECT_THAT(out, HasSubstr("\x1b[31m1 stale\x1b[0m"));
  EXPECT_THAT(out, HasSubstr("\x1b[31mFLAGGED\x1b[0m"));
  EXPECT_THAT(out, HasSubstr("\x1b[31m+1.500ms\x1b[0m"));
  EXPECT_THAT(out, HasSubstr("\x1b[31mDUPLICATE NAME\x1b[0m"));
  EXPECT_THAT(out, HasSubstr("\x1b[31mSTALE\x1b[0m"));
  EXPECT_THAT(out, HasSubstr("\x1b[31mDISCONNECTED\x1b[0m"));
  EXPECT_THAT(out, HasSubstr("\x1b[32msynchronised\x1b[0m"));
  EXPECT_THAT(out, HasSubstr("\x1b[33msyncing\x1b[0m"));
  EXPECT_THAT(out, HasSubstr("\x1b[33mholdover\x1b[0m"));
  // The server serving its own clock is fine; a client doing so is not.
  EXPECT_THAT(out, HasSubstr("\x1b[32mlocal clock\x1b[0m"));
}

TEST(RenderFleetStatusTest, ColorDoesNotMoveAnyColumn) {
  EXPECT_EQ(StripAnsi(RenderFleetStatus(TestFleet(), Colored())),
            RenderFleetStatus(TestFleet(), Plain()));
}

TEST(RenderFleetStatusTest,
     ClientOnLocalClockIsYellowAndSkewUnderThresholdPlain) {
  Fleet f;
  *f.mutable_skew() = Nanos(10'000);
  *f.mutable_threshold() = Nanos(1'000'000);
  AddClient(&f, "lonely", v1::SYNC_STATE_LOCAL_CLOCK, 0, 0, 0);
  const std::string out = RenderFleetStatus(f, Colored());
  EXPECT_THAT(out, HasSubstr("\x1b[33mlocal clock\x1b[0m"));
  EXPECT_THAT(out, StartsWith("fleet skew 10µs (threshold 1.000ms)"));
}

// The crosscheck (#14): the fleet bound and the mesh's p99 on a third line,
// and a node the mesh contradicts marked CROSSCHECK. From a controller
// without it (neither field set) the header stays two lines: the golden test
// above pins that.
TEST(RenderFleetStatusTest, FleetBoundLineAndCrosscheckFlag) {
  Fleet f;
  *f.mutable_skew() = Nanos(40'000);
  *f.mutable_threshold() = Nanos(1'000'000);
  *f.mutable_fleet_bound() = Nanos(2'100'000);
  *f.mutable_mesh_skew_p99() = Nanos(5'012'000);
  f.set_crosscheck_flagged_count(1);
  Node* liar =
      AddClient(&f, "liar", v1::SYNC_STATE_SYNCHRONISED, 10'000, 1'000'000, 0);
  liar->mutable_crosscheck()->set_flagged(true);
  Node* ok =
      AddClient(&f, "ok", v1::SYNC_STATE_SYNCHRONISED, -30'000, 1'100'000, 0);
  ok->mutable_crosscheck()->set_flagged(false);
  AddClient(&f, "new", v1::SYNC_STATE_SYNCHRONISED, 0, 1'000'000, 0);
  const std::vector<std::string> lines =
      absl::StrSplit(RenderFleetStatus(f, Plain()), '\n');
  ASSERT_GE(lines.size(), 8u);
  EXPECT_EQ(lines[2],
            "fleet bound ±2.100ms (two largest bounds)  mesh p99 5.012ms (2 "
            "nodes measured), 1 crosscheck-flagged");
  EXPECT_EQ(lines[3], "");
  auto row = [&lines](absl::string_view name) {
    for (const std::string& l : lines) {
      if (absl::StartsWith(l, name)) return l;
    }
    return std::string();
  };
  EXPECT_THAT(row("liar "), HasSubstr("CROSSCHECK"));
  EXPECT_THAT(row("ok "), Not(HasSubstr("CROSSCHECK")));
  EXPECT_THAT(row("new "), Not(HasSubstr("CROSSCHECK")));
  EXPECT_THAT(RenderFleetStatus(f, Colored()),
              HasSubstr("\x1b[31m1 crosscheck-flagged\x1b[0m"));
  // A bound but no measurement yet.
  f.clear_mesh_skew_p99();
  f.set_crosscheck_flagged_count(0);
  for (Node& n : *f.mutable_nodes()) n.clear_crosscheck();
  const std::vector<std::string> early =
      absl::StrSplit(RenderFleetStatus(f, Plain()), '\n');
  EXPECT_EQ(early[2],
            "fleet bound ±2.100ms (two largest bounds)  mesh p99 - (no node "
            "measured)");
}

TEST(RenderFleetStatusTest, ABoundRelativeToTheNodesOwnClockSaysLocal) {
  Fleet f;
  AddClient(&f, "ntp-server", v1::SYNC_STATE_LOCAL_CLOCK, 0, 0, 0)
      ->mutable_status()
      ->set_error_bound_local(true);
  AddClient(&f, "web-1", v1::SYNC_STATE_SYNCHRONISED, 0, 123'000, 0);
  const std::vector<std::string> lines =
      absl::StrSplit(RenderFleetStatus(f, Plain()), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u);
  // Not "0s": relative to UTC the server's error is unknown.
  EXPECT_THAT(lines[3] + lines[4], HasSubstr(" local "));
  EXPECT_THAT(lines[3] + lines[4], HasSubstr("123µs"));
}

TEST(RenderFleetStatusTest, RefusedNodeShowsRefusedAndWhoRefusedIt) {
  // Not "unsynchronised" with no explanation: the state says REFUSED and the
  // node's reason follows the table. A renderer that ignored the new state
  // shows "unknown"; one that dropped the reason has no line with it.
  Fleet f;
  AddClient(&f, "web-1", v1::SYNC_STATE_SYNCHRONISED, 0, 123'000, 0);
  v1::SyncStatus* s =
      AddClient(&f, "dmz-1", v1::SYNC_STATE_REFUSED, 0, 0, 0)->mutable_status();
  s->clear_error_bound();
  s->set_stratum(16);
  s->set_reason(
      "refused by 10.77.2.1: KoD DENY: the server refuses to serve us");
  const std::vector<std::string> lines =
      absl::StrSplit(RenderFleetStatus(f, Plain()), '\n');
  // 2 header lines, a blank, the table (3), a blank, the reason, "".
  ASSERT_EQ(lines.size(), 9u);
  EXPECT_THAT(lines[4], StartsWith("dmz-1  REFUSED "));
  EXPECT_EQ(lines[7],
            "dmz-1: refused by 10.77.2.1: KoD DENY: the server refuses to "
            "serve us");
  EXPECT_THAT(RenderFleetStatus(f, Colored()),
              HasSubstr("\x1b[31mREFUSED\x1b[0m"));
}

TEST(RenderFleetStatusTest, BreaksOffsetTiesByNameAndPutsUnreportedLast) {
  Fleet f;
  f.add_nodes()->set_name("zz-new");  // Connected, no report yet.
  AddClient(&f, "b", v1::SYNC_STATE_SYNCHRONISED, 100'000, 0, 0);
  AddClient(&f, "c", v1::SYNC_STATE_SYNCHRONISED, 900'000, 0, 0);
  f.add_nodes()->set_name("aa-new");
  AddClient(&f, "a", v1::SYNC_STATE_SYNCHRONISED, -100'000, 0, 0);
  const std::vector<std::string> lines =
      absl::StrSplit(RenderFleetStatus(f, Plain()), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 8u);
  std::vector<std::string> order;
  for (size_t i = 3; i < lines.size(); ++i) {
    order.push_back(lines[i].substr(0, lines[i].find(' ')));
  }
  EXPECT_THAT(order, ::testing::ElementsAre("c", "a", "b", "aa-new", "zz-new"));
  EXPECT_THAT(lines[6], HasSubstr("no report"));
  EXPECT_THAT(lines[6], HasSubstr("never"));
}

TEST(RenderFleetStatusTest, NodeColumnGrowsWithLongestName) {
  Fleet f = TestFleet();
  const std::string long_name = "a-rather-long-node-name.example.internal";
  AddClient(&f, long_name, v1::SYNC_STATE_SYNCHRONISED, 1, 0, 0);
  const std::vector<std::string> lines =
      absl::StrSplit(RenderFleetStatus(f, Plain()), '\n', absl::SkipEmpty());
  for (size_t i = 2; i < lines.size(); ++i) {
    // STATE starts after the longest name and the two-space gap.
    const std::string& line = lines[i];
    EXPECT_EQ(line.find_first_not_of(' ', line.find(' ')), long_name.size() + 2)
        << line;
  }
}

TEST(RenderFleetStatusTest, AbsurdOffsetWidensItsColumnForEveryRow) {
  Fleet f;
  AddClient(&f, "a", v1::SYNC_STATE_SYNCHRONISED, 0, 0, 0);
  Node* n = AddClient(&f, "b", v1::SYNC_STATE_UNSYNCHRONISED, 0, 0, 0);
  n->mutable_status()->mutable_offset()->set_seconds(-123'456'789'012);
  const std::vector<std::string> lines =
      absl::StrSplit(RenderFleetStatus(f, Plain()), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_THAT(lines[3], HasSubstr("-123456789012.000s"));
  // Header and rows end in the LAST SEEN column: all equally long.
  EXPECT_EQ(Columns(lines[3]), Columns(lines[4]));
  EXPECT_EQ(Columns(lines[2]) - 7, Columns(lines[3]));  // "  FLAGS"
}

TEST(RenderFleetStatusTest, ReplacesControlCharactersInNamesAndRefids) {
  Fleet f;
  Node* n =
      AddClient(&f, "evil\nname\x1b[2J", v1::SYNC_STATE_SYNCHRONISED, 0, 0, 0);
  n->mutable_status()->set_refid("re\tf\xc2\x9b");  // U+009B is a C1 CSI.
  const std::string out = RenderFleetStatus(f, Colored());
  EXPECT_THAT(out, HasSubstr("evil?name?[2J  "));
  EXPECT_THAT(out, HasSubstr("re?f?  "));
  EXPECT_THAT(out, Not(HasSubstr("\x1b[2J")));
  EXPECT_THAT(out, Not(HasSubstr("\xc2\x9b")));
}

TEST(RenderFleetStatusTest, SaysSoWhenThereAreNoNodes) {
  EXPECT_EQ(RenderFleetStatus(Fleet(), Plain()),
            "fleet skew - (threshold -), max error bound -\n"
            "0 nodes: 0 connected, 0 stale, 0 flagged, 0 duplicate names\n"
            "\n"
            "no nodes\n");
}

// ---------------------------------------------------------------------------
// Watch.

// 70 points: the first 10 (5 ms) are outside the 60-point window; the last
// 60 are (i % 8) * 100 µs for i = 10..69.
std::vector<SkewPoint> WatchHistory() {
  std::vector<int64_t> skews;
  for (int i = 0; i < 70; ++i) {
    skews.push_back(i < 10 ? 5'000'000 : (i % 8) * 100'000);
  }
  return Points(skews);
}

TEST(RenderWatchFrameTest, MatchesGoldenWithLastSixtyPoints) {
  EXPECT_EQ(RenderWatchFrame(TestFleet(), WatchHistory(), Plain()),
            ReadGolden("fleet_watch_frame.txt"));
}

TEST(RenderWatchFrameTest, ClearsScreenFirstOnlyWithColor) {
  const std::string colored =
      RenderWatchFrame(TestFleet(), WatchHistory(), Colored());
  EXPECT_THAT(colored, StartsWith("\x1b[H\x1b[2Jntpfleetctl watch  "));
  EXPECT_EQ(StripAnsi(colored),
            RenderWatchFrame(TestFleet(), WatchHistory(), Plain()));
  EXPECT_THAT(RenderWatchFrame(TestFleet(), WatchHistory(), Plain()),
              StartsWith("ntpfleetctl watch  2026-11-25 23:41:10 UTC\n"));
}

TEST(RenderWatchFrameTest, SaysSoBeforeTheFirstPoint) {
  EXPECT_THAT(RenderWatchFrame(Fleet(), {}, Plain()),
              StartsWith("ntpfleetctl watch  2026-11-25 23:41:10 UTC\n\n"
                         "skew history  (no points yet)\n\n"
                         "fleet skew -"));
}

// ---------------------------------------------------------------------------
// History.

HistoryResponse TestHistory() {
  struct Row {
    int64_t ago_ms;
    int64_t skew_ns;
    int64_t max_error_bound_ns;  // -1: unset
    uint32_t nodes;
    uint32_t flagged;
  };
  const std::vector<Row> rows = {
      {40'000, 312'000, 812'000, 8, 0},
      {30'000, 1'500'000, 1'712'000, 8, 1},
      {20'000, 2'100'000, 2'345'000, 8, 1},
      {9'500, 980'000, 1'950'000, 7, 0},  // 23:41:00.5: shown as 23:41:00.
      {0, 0, -1, 1, 0},
  };
  HistoryResponse h;
  for (const Row& r : rows) {
    SkewPoint* p = h.add_points();
    *p->mutable_time() = Ago(r.ago_ms);
    *p->mutable_skew() = Nanos(r.skew_ns);
    if (r.max_error_bound_ns >= 0) {
      *p->mutable_max_error_bound() = Nanos(r.max_error_bound_ns);
    }
    p->set_nodes(r.nodes);
    p->set_flagged(r.flagged);
  }
  return h;
}

TEST(RenderHistoryTest, MatchesGoldenWithSparklineOnTop) {
  EXPECT_EQ(RenderHistory(TestHistory(), Plain()),
            ReadGolden("fleet_history.txt"));
}

TEST(RenderHistoryTest, ColorsOnlyNonZeroFlaggedAndMovesNothing) {
  const std::string colored = RenderHistory(TestHistory(), Colored());
  EXPECT_THAT(colored, HasSubstr("\x1b[31m1\x1b[0m\n"));
  EXPECT_THAT(colored, Not(HasSubstr("\x1b[31m0")));
  EXPECT_EQ(StripAnsi(colored), RenderHistory(TestHistory(), Plain()));
  EXPECT_THAT(RenderHistory(TestHistory(), Plain()), Not(HasSubstr("\x1b")));
}

TEST(RenderHistoryTest, SaysSoWhenTheRangeIsEmpty) {
  EXPECT_EQ(RenderHistory(HistoryResponse(), Plain()),
            "no skew history in this range\n");
}

// ---------------------------------------------------------------------------
// Resync.

void AddResult(ResyncResponse* r, absl::string_view node,
               v1::ResyncOutcome outcome, int64_t before_ns, int64_t after_ns,
               bool stepped, absl::string_view error) {
  constexpr int64_t kUnset = std::numeric_limits<int64_t>::min();
  v1::NodeResyncResult* n = r->add_results();
  n->set_node(std::string(node));
  v1::ResyncResult* res = n->mutable_result();
  res->set_outcome(outcome);
  if (before_ns != kUnset) *res->mutable_offset_before() = Nanos(before_ns);
  if (after_ns != kUnset) *res->mutable_offset_after() = Nanos(after_ns);
  res->set_stepped(stepped);
  res->set_error(std::string(error));
}

constexpr int64_t kNone = std::numeric_limits<int64_t>::min();

ResyncResponse TestResync() {
  ResyncResponse r;
  r.set_request_id("7f3a");
  AddResult(&r, "web-1", v1::RESYNC_OUTCOME_OK, -1'234'567, 12'400, false, "");
  AddResult(&r, "db-1", v1::RESYNC_OUTCOME_OK, 2'500'000'000, -3'000, true, "");
  AddResult(&r, "batch-7", v1::RESYNC_OUTCOME_NOT_CONNECTED, kNone, kNone,
            false, "no stream to the controller");
  AddResult(&r, "edge-3.eu-west", v1::RESYNC_OUTCOME_FAILED, 210'000, kNone,
            false, "no usable source: all peers unreachable");
  AddResult(&r, "cache-1", v1::RESYNC_OUTCOME_TIMED_OUT, kNone, kNone, false,
            "no result within 10.000s");
  return r;
}

TEST(RenderResyncTest, MatchesGoldenWithSummary) {
  EXPECT_EQ(RenderResync(TestResync()), ReadGolden("fleet_resync.txt"));
}

TEST(RenderResyncTest, SummarisesDryRun) {
  ResyncResponse r;
  AddResult(&r, "a", v1::RESYNC_OUTCOME_DRY_RUN, kNone, kNone, false, "");
  AddResult(&r, "b", v1::RESYNC_OUTCOME_DRY_RUN, kNone, kNone, false, "");
  EXPECT_EQ(RenderResync(r),
            "NODE  OUTCOME  OFFSET BEFORE  OFFSET AFTER  ACTION  ERROR\n"
            "a     dry run              -             -  -\n"
            "b     dry run              -             -  -\n"
            "2 nodes: 2 dry run\n");
}

TEST(RenderResyncTest, SaysSoWhenNothingWasSelected) {
  EXPECT_EQ(RenderResync(ResyncResponse()), "no nodes selected\n");
}

TEST(RenderResyncTest, CountsAnOutcomeFromANewerApiAsUnknown) {
  ResyncResponse r;
  AddResult(&r, "a", v1::RESYNC_OUTCOME_OK, 0, 0, false, "");
  AddResult(&r, "b", static_cast<v1::ResyncOutcome>(42), kNone, kNone, false,
            "");
  EXPECT_THAT(RenderResync(r), HasSubstr("b     unknown"));
  EXPECT_THAT(RenderResync(r), HasSubstr("\n2 nodes: 1 ok, 1 unknown\n"));
}

TEST(ResyncSucceededTest, TrueOnlyWhenEveryNodeIsOkOrDryRun) {
  ResyncResponse ok;
  AddResult(&ok, "a", v1::RESYNC_OUTCOME_OK, 0, 0, false, "");
  AddResult(&ok, "b", v1::RESYNC_OUTCOME_DRY_RUN, kNone, kNone, false, "");
  EXPECT_TRUE(ResyncSucceeded(ok));

  for (v1::ResyncOutcome bad :
       {v1::RESYNC_OUTCOME_FAILED, v1::RESYNC_OUTCOME_TIMED_OUT,
        v1::RESYNC_OUTCOME_NOT_CONNECTED, v1::RESYNC_OUTCOME_UNSPECIFIED}) {
    ResyncResponse r = ok;
    AddResult(&r, "c", bad, kNone, kNone, false, "");
    EXPECT_FALSE(ResyncSucceeded(r)) << v1::ResyncOutcome_Name(bad);
  }
  EXPECT_FALSE(ResyncSucceeded(TestResync()));
}

TEST(ResyncSucceededTest, FalseWhenNoNodeWasSelected) {
  EXPECT_FALSE(ResyncSucceeded(ResyncResponse()));
}

// ---------------------------------------------------------------------------
// JSON.

template <typename M>
void ExpectJsonRoundTrip(const M& original) {
  absl::StatusOr<std::string> json = ToJson(original);
  ASSERT_THAT(json, IsOk());
  EXPECT_THAT(*json, ::testing::EndsWith("}\n"));
  M parsed;
  const google::protobuf::util::Status s =
      google::protobuf::util::JsonStringToMessage(*json, &parsed);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(original, parsed))
      << *json;
}

TEST(ToJsonTest, ParsesBackToAnEqualMessage) {
  ExpectJsonRoundTrip(TestFleet());
  ExpectJsonRoundTrip(TestHistory());
  ExpectJsonRoundTrip(TestResync());
}

TEST(ToJsonTest, UsesProtoFieldNamesAndPrintsDefaults) {
  absl::StatusOr<std::string> json = ToJson(TestFleet());
  ASSERT_THAT(json, IsOk());
  EXPECT_THAT(*json, HasSubstr("\"error_bound\": \"0.001712345s\""));
  EXPECT_THAT(*json, HasSubstr("\"last_seen\": \"2026-11-25T23:41:09.600Z\""));
  EXPECT_THAT(*json, HasSubstr("\"duplicate_name\": false"));
  EXPECT_THAT(*json, HasSubstr("\"state\": \"SYNC_STATE_HOLDOVER\""));
  EXPECT_THAT(*json, Not(HasSubstr("errorBound")));
}

TEST(ToJsonTest, RejectsDurationJsonCannotCarry) {
  ResyncResponse r;
  v1::ResyncResult* res = r.add_results()->mutable_result();
  res->mutable_offset_before()->set_seconds(315'576'000'001);  // > 10000 y
  EXPECT_THAT(ToJson(r),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("ntpfleet.v1.ResyncResponse"),
                                        HasSubstr("offset_before"))));
}

}  // namespace
}  // namespace ntpfleet::ctl
