// ctl/render_crosscheck.h: the header (reference, probe load computed from
// packet sizes, pairwise skew, closure), the rows (flagged first, verdicts),
// the reasons, --edges, and the "no solve yet" and "off" cases. Canned
// CrosscheckResponses; the expected strings are written from the header's
// rules, not produced by the code under test.
#include "ctl/render_crosscheck.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
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
using ::testing::StartsWith;

// 2026-11-25 23:41:10 UTC.
const absl::Time kNow = absl::FromUnixSeconds(1'795'650'070);

v1::NodeCrosscheckRow* Row(v1::CrosscheckResponse* r, const std::string& name,
                           absl::Duration bound) {
  v1::NodeCrosscheckRow* row = r->add_nodes();
  row->set_name(name);
  row->set_state(v1::SYNC_STATE_SYNCHRONISED);
  if (bound > absl::ZeroDuration()) {
    SetDuration(bound, row->mutable_error_bound());
  }
  return row;
}

void Measure(v1::NodeCrosscheckRow* row, absl::Duration reported,
             absl::Duration measured, absl::Duration uncertainty, bool flagged,
             const std::string& reason = "") {
  v1::NodeCrosscheck* c = row->mutable_crosscheck();
  SetDuration(reported, c->mutable_reported_offset());
  SetDuration(measured, c->mutable_measured_offset());
  SetDuration(uncertainty, c->mutable_uncertainty());
  SetDuration(reported - measured, c->mutable_disagreement());
  c->set_flagged(flagged);
  c->set_probed_by(3);
  c->set_reason(reason);
}

// Six nodes: the reference, three agreeing clients (one with a larger
// disagreement than the liar's bound, but inside its own), the liar reporting
// 5 ms off, a node measured but without a bound, and one never measured.
v1::CrosscheckResponse Canned() {
  v1::CrosscheckResponse r;
  SetTimestamp(kNow - absl::Seconds(4), r.mutable_as_of());
  SetDuration(absl::Seconds(64), r.mutable_interval());
  r.set_probes_per_node(3);
  SetDuration(absl::Microseconds(1200), r.mutable_pairwise_p50());
  SetDuration(absl::Microseconds(5010), r.mutable_pairwise_p99());
  SetDuration(absl::Microseconds(5020), r.mutable_pairwise_max());
  SetDuration(absl::Microseconds(14), r.mutable_closure_rms());
  r.set_reference("srv-1");
  v1::NodeCrosscheckRow* srv = Row(&r, "srv-1", absl::ZeroDuration());
  srv->set_state(v1::SYNC_STATE_LOCAL_CLOCK);
  Measure(srv, absl::ZeroDuration(), absl::ZeroDuration(), absl::ZeroDuration(),
          false, "the reference");
  Measure(Row(&r, "c-2", absl::Microseconds(300)), absl::Microseconds(-12),
          absl::Microseconds(-10), absl::Microseconds(9), false);
  Measure(Row(&r, "c-1", absl::Milliseconds(2)), absl::Microseconds(700),
          absl::Microseconds(-200), absl::Microseconds(9), false);
  Measure(Row(&r, "liar", absl::Microseconds(312)), absl::Microseconds(5000),
          absl::Microseconds(-3), absl::Microseconds(9), true,
          "|disagreement| 5.003ms > bound 312µs + 3 x 9µs");
  v1::NodeCrosscheckRow* syncing = Row(&r, "c-3", absl::ZeroDuration());
  syncing->set_state(v1::SYNC_STATE_UNSYNCHRONISED);
  Measure(syncing, absl::Microseconds(40), absl::Microseconds(35),
          absl::Microseconds(9), false, "no error bound: not synchronised");
  // Not measured, as the controller sends it: a NodeCrosscheck with the
  // report and the reason but no measured offset (a renderer that took the
  // message's presence for a measurement showed +0 ±0 here).
  v1::NodeCrosscheck* fresh =
      Row(&r, "new", absl::Microseconds(100))->mutable_crosscheck();
  SetDuration(absl::Microseconds(20), fresh->mutable_reported_offset());
  fresh->set_reason("not probed by any node yet");
  r.set_flagged_count(1);
  for (int i = 0; i < 15; ++i) {
    v1::ProbeEdge* e = r.add_edges();
    e->set_from(i == 0 ? "liar" : "c-2");
    e->set_to(i == 0 ? "c-1" : "srv-1");
    SetDuration(absl::Microseconds(-190), e->mutable_offset());
    SetDuration(absl::Microseconds(80), e->mutable_delay());
    SetDuration(absl::Microseconds(i == 0 ? 7 : 0), e->mutable_residual());
    SetTimestamp(kNow - absl::Seconds(30), e->mutable_measured_at());
  }
  return r;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n');
}

CrosscheckRenderOptions Plain() {
  CrosscheckRenderOptions o;
  o.now = kNow;
  return o;
}

TEST(ProbeLoadTest, ComputedFromPacketSizes) {
  EXPECT_EQ(kNtpPacketOnWireBytes, 90);  // 48 NTP + 8 UDP + 20 IPv4 + 14 Eth
  // 3 exchanges of 2 x 90 B every 64 s: 540 / 64 = 8.4375 B/s.
  EXPECT_DOUBLE_EQ(ProbeBytesPerSecond(3, absl::Seconds(64)), 8.4375);
  EXPECT_DOUBLE_EQ(ProbeBytesPerSecond(300, absl::Seconds(64)), 843.75);
  EXPECT_EQ(ProbeBytesPerSecond(3, absl::ZeroDuration()), 0);
}

TEST(RenderCrosscheckTest, HeaderSaysWhenWhatAgainstWhatAndTheLoad) {
  const std::vector<std::string> l = Lines(RenderCrosscheck(Canned(), Plain()));
  ASSERT_GE(l.size(), 7u);
  EXPECT_EQ(l[0], "crosscheck  as of 2026-11-25 23:41:06 UTC (4.0s ago)");
  EXPECT_EQ(l[1],
            "reference   srv-1 (offsets are reference minus local: '+' means "
            "behind it)");
  EXPECT_EQ(l[2],
            "probes      3 per node every 64s: 3 x 2 x 90 B = 8.4 B/s per "
            "node; 15 exchanges = 42.2 B/s for the fleet");
  EXPECT_EQ(l[3],
            "pairwise    |Ci - Cj| over 5 measured nodes: p50 1.200ms  p99 "
            "5.010ms  max 5.020ms");
  EXPECT_EQ(l[4],
            "closure     RMS 14µs (residuals of the edges: small when the "
            "loops close)");
  // Judged: c-1, c-2, liar (the reference, c-3 and "new" are not).
  EXPECT_EQ(l[5], "verdict     1 of 3 judged nodes FLAGGED: liar");
  EXPECT_EQ(l[6], "");
  // Probes the controller left out (taken before a state change) are said.
  v1::CrosscheckResponse waiting = Canned();
  waiting.set_edges_predating_state(2);
  const std::vector<std::string> w = Lines(RenderCrosscheck(waiting, Plain()));
  ASSERT_GE(w.size(), 7u);
  EXPECT_EQ(w[5],
            "waiting     2 probes left out: taken before a node's last "
            "sync-state change (a step, the end of a slew); replaced at the "
            "prober's next round");
  EXPECT_EQ(w[6], "verdict     1 of 3 judged nodes FLAGGED: liar");
}

TEST(RenderCrosscheckTest, FlaggedFirstThenByNameWithEachVerdict) {
  const std::vector<std::string> l = Lines(RenderCrosscheck(Canned(), Plain()));
  ASSERT_GE(l.size(), 14u);
  // NODE is as wide as "srv-1"; STATE at least 14 ("unsynchronised");
  // REPORTED, MEASURED and DISAGREE at least 10, right-aligned; two spaces
  // between columns.
  EXPECT_EQ(l[7],
            "NODE   STATE             REPORTED    MEASURED  ±UNCERT    DISAGREE"
            "    BOUND  PROBED-BY  VERDICT");
  EXPECT_EQ(l[8],
            "liar   synchronised      +5.000ms        -3µs     ±9µs    +5.003ms"
            "    312µs          3  FLAGGED");
  EXPECT_EQ(l[9],
            "c-1    synchronised        +700µs      -200µs     ±9µs      +900µs"
            "  2.000ms          3  ok");
  EXPECT_EQ(l[10],
            "c-2    synchronised         -12µs       -10µs     ±9µs        -2µs"
            "    300µs          3  ok");
  EXPECT_EQ(l[11],
            "c-3    unsynchronised       +40µs       +35µs     ±9µs        +5µs"
            "        -          3  not judged");
  EXPECT_EQ(l[12],
            "new    synchronised         +20µs           -        -           -"
            "    100µs          -  not measured");
  EXPECT_EQ(l[13],
            "srv-1  local clock           +0µs        +0µs     ±0µs        +0µs"
            "        -          3  reference");
  // The reasons, in the rows' order.
  const std::string text = RenderCrosscheck(Canned(), Plain());
  EXPECT_THAT(text,
              HasSubstr("\nliar: |disagreement| 5.003ms > bound 312µs + 3 x "
                        "9µs\nc-3: no error bound: not synchronised\nnew: not "
                        "probed by any node yet\nsrv-1: the reference\n"));
  EXPECT_THAT(text, Not(HasSubstr("edges (OFFSET")));
  EXPECT_THAT(text, Not(HasSubstr("\x1b")));
  CrosscheckRenderOptions color = Plain();
  color.color = true;
  EXPECT_THAT(RenderCrosscheck(Canned(), color),
              HasSubstr("\x1b[31mFLAGGED\x1b[0m"));
}

TEST(RenderCrosscheckTest, EdgesListTheProbeGraph) {
  CrosscheckRenderOptions o = Plain();
  o.edges = true;
  const std::string text = RenderCrosscheck(Canned(), o);
  EXPECT_THAT(text, HasSubstr("\n15 edges (OFFSET is C(to) - C(from), as FROM "
                              "measured TO)\nFROM  TO         OFFSET  DELAY  "
                              "RESIDUAL  MEASURED\nc-2   srv-1      -190µs  "
                              " 80µs      +0µs   30s ago\n"));
  // Sorted by FROM: liar's edge is last.
  EXPECT_TRUE(absl::EndsWith(
      text, "liar  c-1        -190µs   80µs      +7µs   30s ago\n"))
      << text;
}

TEST(RenderCrosscheckTest, NoSolveYetAndOffSaySo) {
  v1::CrosscheckResponse r;
  SetDuration(absl::Seconds(64), r.mutable_interval());
  r.set_probes_per_node(3);
  EXPECT_EQ(RenderCrosscheck(r, Plain()),
            "crosscheck  no solve yet\n"
            "            each node probes 3 others once every 64s; the first "
            "solve follows their first probe reports\n\nno nodes\n");
  r.set_probes_per_node(0);
  EXPECT_THAT(RenderCrosscheck(r, Plain()),
              HasSubstr("the crosscheck is off on this controller "
                        "(--crosscheck-probes 0)"));
  EXPECT_FALSE(AnyCrosscheckFlagged(r));
}

TEST(RenderCrosscheckTest, MedianGaugeAndWhichControllerAnswered) {
  v1::CrosscheckResponse r = Canned();
  r.clear_reference();
  CrosscheckRenderOptions o = Plain();
  o.controller = "ctl-b:7123";
  const std::vector<std::string> l = Lines(RenderCrosscheck(r, o));
  EXPECT_THAT(l[0], HasSubstr("(4.0s ago)  from ctl-b:7123"));
  EXPECT_THAT(l[1], StartsWith("reference   no server node in the mesh: "
                               "offsets are relative to the median node's "
                               "report"));
}

TEST(AnyCrosscheckFlaggedTest, ByCountOrByRow) {
  v1::CrosscheckResponse r = Canned();
  EXPECT_TRUE(AnyCrosscheckFlagged(r));
  r.set_flagged_count(0);
  EXPECT_TRUE(AnyCrosscheckFlagged(r));  // the liar's row still says so
  for (v1::NodeCrosscheckRow& row : *r.mutable_nodes()) {
    row.mutable_crosscheck()->set_flagged(false);
  }
  EXPECT_FALSE(AnyCrosscheckFlagged(r));
}

}  // namespace
}  // namespace ntpfleet::ctl
