// Tests for ctl/fleet_health.h: each rule fails for the right node and only
// for it, a check with no node counted fails, --min-nodes, --allow, and the
// messages.
#include "ctl/fleet_health.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ctl/fleet_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/ctl/test_fleet.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::ctl::testing::AddNode;
using ::ntpfleet::ctl::testing::Connection;
using ::ntpfleet::ctl::testing::Flagged;
using ::ntpfleet::ctl::testing::Label;
using ::ntpfleet::ctl::testing::Measured;
using ::ntpfleet::ctl::testing::NoReport;
using ::ntpfleet::ctl::testing::Offset;
using ::ntpfleet::ctl::testing::Role;
using ::ntpfleet::ctl::testing::SetFleetHeader;
using ::ntpfleet::ctl::testing::State;
using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<const v1::Node*> All(const v1::Fleet& f) {
  return SelectNodes(f, NodeFilter{}, SortKey::kName);
}

HealthOptions MaxSkew(absl::Duration d) {
  HealthOptions h;
  h.max_skew = d;
  return h;
}

// The rules that failed, by name, and the nodes of one of them.
std::vector<std::string> Failed(const HealthReport& r) {
  std::vector<std::string> names;
  for (const RuleResult& f : r.failed) names.emplace_back(RuleName(f.rule));
  return names;
}
std::vector<std::string> NodesOf(const HealthReport& r, HealthRule rule) {
  for (const RuleResult& f : r.failed) {
    if (f.rule == rule) return f.nodes;
  }
  return {};
}

// A server on its local clock and two synchronised clients: what a healthy
// small fleet looks like.
v1::Fleet Healthy() {
  v1::Fleet f;
  State(Role(AddNode(&f, "ntp"), v1::ROLE_SERVER), v1::SYNC_STATE_LOCAL_CLOCK);
  Offset(AddNode(&f, "web-1"), absl::Microseconds(120));
  Offset(AddNode(&f, "web-2"), absl::Microseconds(-80));
  SetFleetHeader(&f, absl::Microseconds(200));
  return f;
}

TEST(HealthTest, HealthyFleetPasses) {
  const v1::Fleet f = Healthy();
  const HealthReport r = CheckHealth(f, All(f), MaxSkew(absl::Milliseconds(1)));
  EXPECT_TRUE(r.healthy()) << FormatHealthReport(r);
  EXPECT_THAT(r.allowed, IsEmpty());
  EXPECT_EQ(FormatHealthReport(r), "");
}

TEST(HealthTest, SkewAboveMaxFailsWithTheOldMessage) {
  const v1::Fleet f = Healthy();  // skew 200 µs
  const HealthReport r =
      CheckHealth(f, All(f), MaxSkew(absl::Microseconds(199)));
  EXPECT_THAT(Failed(r), ElementsAre("skew"));
  EXPECT_EQ(FormatHealthReport(r),
            "ntpfleetctl: unhealthy: skew: fleet skew 200µs exceeds "
            "--max-skew 199µs\n");
  // Equal is not above.
  EXPECT_TRUE(
      CheckHealth(f, All(f), MaxSkew(absl::Microseconds(200))).healthy());
}

// The bug of issue #13: with the whole fleet down the skew is 0 and the check
// passed.
TEST(HealthTest, NoNodeCountedFails) {
  v1::Fleet down;
  Connection(AddNode(&down, "web-1"), v1::CONNECTION_STATE_DISCONNECTED);
  Connection(AddNode(&down, "web-2"), v1::CONNECTION_STATE_DISCONNECTED);
  SetFleetHeader(&down, absl::ZeroDuration());
  HealthOptions h = MaxSkew(absl::Milliseconds(1));
  h.allow = {HealthRule::kDisconnected};  // even when they are allowed
  const HealthReport r = CheckHealth(down, All(down), h);
  EXPECT_THAT(Failed(r), ElementsAre("min-nodes"));
  EXPECT_THAT(r.failed[0].message,
              HasSubstr("no node of 2 nodes is counted in the skew"));

  const v1::Fleet empty;
  const HealthReport e =
      CheckHealth(empty, All(empty), MaxSkew(absl::Milliseconds(1)));
  EXPECT_THAT(Failed(e), ElementsAre("min-nodes"));
}

TEST(HealthTest, MinNodesCountsOnlyNodesInTheSkewAmongThoseShown) {
  v1::Fleet f = Healthy();                              // 3 counted
  State(AddNode(&f, "web-3"), v1::SYNC_STATE_SYNCING);  // counted too
  SetFleetHeader(&f, absl::Microseconds(200));
  HealthOptions h;
  h.min_nodes = 4;
  EXPECT_TRUE(CheckHealth(f, All(f), h).healthy());
  h.min_nodes = 5;
  HealthReport r = CheckHealth(f, All(f), h);
  EXPECT_THAT(Failed(r), ElementsAre("min-nodes"));
  EXPECT_THAT(r.failed[0].message,
              HasSubstr("4 nodes of 4 nodes are counted in the skew"));
  EXPECT_THAT(r.failed[0].message, HasSubstr("fewer than --min-nodes 5"));
  // Shown: the two web-[12] only.
  h.min_nodes = 3;
  NodeFilter web;
  web.name_globs = {"web-[12]"};
  r = CheckHealth(f, SelectNodes(f, web, SortKey::kName), h);
  EXPECT_THAT(Failed(r), ElementsAre("min-nodes"));
  EXPECT_THAT(r.failed[0].message, HasSubstr("2 nodes of the 2 nodes shown"));
}

// One broken node per rule among healthy ones: each rule names its node, and
// only it.
TEST(HealthTest, EachNodeRuleFailsForItsNodeOnly) {
  v1::Fleet f = Healthy();
  Connection(AddNode(&f, "hung"), v1::CONNECTION_STATE_STALE);
  Connection(AddNode(&f, "gone"), v1::CONNECTION_STATE_DISCONNECTED);
  State(AddNode(&f, "lost"), v1::SYNC_STATE_HOLDOVER);
  State(AddNode(&f, "alone"), v1::SYNC_STATE_LOCAL_CLOCK);  // a client
  NoReport(AddNode(&f, "new"));
  State(AddNode(&f, "coming"), v1::SYNC_STATE_SYNCING);  // passes
  Flagged(Offset(AddNode(&f, "far"), absl::Microseconds(1500)));
  SetFleetHeader(&f, absl::Microseconds(1580));
  const HealthReport r = CheckHealth(f, All(f), MaxSkew(absl::Seconds(1)));
  EXPECT_THAT(Failed(r), ElementsAre("stale", "disconnected", "unsynchronised",
                                     "flagged"));
  EXPECT_THAT(NodesOf(r, HealthRule::kStale), ElementsAre("hung"));
  EXPECT_THAT(NodesOf(r, HealthRule::kDisconnected), ElementsAre("gone"));
  EXPECT_THAT(NodesOf(r, HealthRule::kUnsynchronised),
              ElementsAre("alone", "lost", "new"));
  EXPECT_THAT(NodesOf(r, HealthRule::kFlagged), ElementsAre("far"));
  EXPECT_EQ(FormatHealthReport(r),
            "ntpfleetctl: unhealthy: stale: 1 node connected but silent for 3 "
            "report intervals: hung\n"
            "ntpfleetctl: unhealthy: disconnected: 1 node not connected "
            "(decommissioned: `ntpfleetctl forget NODE`; down on purpose: "
            "--allow disconnected): gone\n"
            "ntpfleetctl: unhealthy: unsynchronised: 3 nodes connected and not "
            "keeping time: alone (client on its local clock), lost (holdover), "
            "new (no-report)\n"
            "ntpfleetctl: unhealthy: flagged: 1 node beyond the threshold "
            "1.000ms (offset, or deviation from the fleet's median offset): "
            "far (+1.500ms)\n");
}

TEST(HealthTest, NodeRulesLookOnlyAtTheNodesShown) {
  v1::Fleet f = Healthy();
  Label(Connection(AddNode(&f, "other-rack"), v1::CONNECTION_STATE_STALE),
        "rack", "b");
  Label(f.mutable_nodes(1), "rack", "a");
  SetFleetHeader(&f, absl::Microseconds(200));
  EXPECT_FALSE(CheckHealth(f, All(f), MaxSkew(absl::Seconds(1))).healthy());
  NodeFilter rack_a;
  rack_a.labels = {{"rack", "a"}};
  EXPECT_TRUE(CheckHealth(f, SelectNodes(f, rack_a, SortKey::kName),
                          MaxSkew(absl::Seconds(1)))
                  .healthy());
}

TEST(HealthTest, AllowedRulesAreReportedButDoNotFail) {
  v1::Fleet f = Healthy();
  Connection(AddNode(&f, "decommissioned"), v1::CONNECTION_STATE_DISCONNECTED);
  Connection(AddNode(&f, "hung"), v1::CONNECTION_STATE_STALE);
  SetFleetHeader(&f, absl::Microseconds(200));
  HealthOptions h = MaxSkew(absl::Milliseconds(1));
  h.allow = {HealthRule::kDisconnected};
  const HealthReport r = CheckHealth(f, All(f), h);
  EXPECT_THAT(Failed(r), ElementsAre("stale"));  // not allowed
  ASSERT_EQ(r.allowed.size(), 1u);
  EXPECT_THAT(r.allowed[0].nodes, ElementsAre("decommissioned"));
  EXPECT_THAT(FormatHealthReport(r),
              HasSubstr("ntpfleetctl: allowed (--allow disconnected): "
                        "disconnected: 1 node not connected"));
  h.allow.push_back(HealthRule::kStale);
  EXPECT_TRUE(CheckHealth(f, All(f), h).healthy());
}

TEST(HealthTest, LongListsNameTheFirstFiveAndCountTheRest) {
  v1::Fleet f = Healthy();
  for (const char* name : {"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"}) {
    Connection(AddNode(&f, name), v1::CONNECTION_STATE_STALE);
  }
  SetFleetHeader(&f, absl::Microseconds(200));
  const HealthReport r = CheckHealth(f, All(f), MaxSkew(absl::Seconds(1)));
  ASSERT_EQ(r.failed.size(), 1u);
  EXPECT_EQ(r.failed[0].nodes.size(), 8u);  // all of them, for a caller
  EXPECT_THAT(r.failed[0].message,
              HasSubstr("8 nodes connected but silent for 3 report intervals: "
                        "s1, s2, s3, s4, s5 and 3 more"));
}

// The crosscheck rule: a node whose report the mesh contradicts fails the
// check even when its own offset and deviation are fine (a node lying that it
// is at +0 is inside any threshold); a node measured and agreeing passes.
TEST(HealthTest, CrosscheckFlaggedNodeFailsItsOwnRule) {
  v1::Fleet f = Healthy();
  Measured(f.mutable_nodes(1), absl::Microseconds(110), absl::Microseconds(9),
           false);  // web-1: measured, agrees
  Measured(Offset(AddNode(&f, "liar"), absl::ZeroDuration()),
           absl::Milliseconds(-5), absl::Microseconds(9), true);
  SetFleetHeader(&f, absl::Microseconds(200));
  f.set_crosscheck_flagged_count(1);
  const HealthReport r = CheckHealth(f, All(f), MaxSkew(absl::Milliseconds(1)));
  EXPECT_THAT(Failed(r), ElementsAre("crosscheck"));
  EXPECT_THAT(NodesOf(r, HealthRule::kCrosscheck), ElementsAre("liar"));
  EXPECT_EQ(FormatHealthReport(r),
            "ntpfleetctl: unhealthy: crosscheck: 1 node whose reported offset "
            "the other nodes' measurements contradict (beyond its bound plus 3 "
            "x their uncertainty; `ntpfleetctl crosscheck`): liar (reports "
            "+5.000ms off the mesh's measurement, bound 100µs)\n");
  // --allow crosscheck: still listed, no longer failing.
  HealthOptions h = MaxSkew(absl::Milliseconds(1));
  h.allow = {HealthRule::kCrosscheck};
  const HealthReport allowed = CheckHealth(f, All(f), h);
  EXPECT_TRUE(allowed.healthy());
  ASSERT_EQ(allowed.allowed.size(), 1u);
  EXPECT_THAT(allowed.allowed[0].nodes, ElementsAre("liar"));
  // Filtered out of view: not looked at.
  NodeFilter web;
  web.name_globs = {"web-*"};
  EXPECT_TRUE(CheckHealth(f, SelectNodes(f, web, SortKey::kName),
                          MaxSkew(absl::Milliseconds(1)))
                  .healthy());
}

TEST(HealthTest, OnlyNodeRulesCanBeAllowed) {
  EXPECT_THAT(
      ParseAllowedRules({"crosscheck"}),
      ::ntpfleet::testing::IsOkAndHolds(ElementsAre(HealthRule::kCrosscheck)));
  EXPECT_THAT(ParseAllowedRules({"stale,disconnected", "flagged"}),
              ::ntpfleet::testing::IsOkAndHolds(
                  ElementsAre(HealthRule::kStale, HealthRule::kDisconnected,
                              HealthRule::kFlagged)));
  EXPECT_THAT(ParseAllowedRules({"skew"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("`skew` is not a rule that can be allowed")));
  EXPECT_THAT(
      ParseAllowedRules({"min-nodes"}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("min-nodes")));
  EXPECT_THAT(ParseAllowedRules({}), IsOk());
}

}  // namespace
}  // namespace ntpfleet::ctl
