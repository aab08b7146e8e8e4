// Registry: connection states on fake wall and monotonic clocks (a wall step
// makes no node stale or fresh), validation of what agents send, the new-name
// limits, Forget, reconnect and duplicate
// rules, fleet skew maths with hand-checked numbers, selection, change
// notification.
#include "controller/registry.h"

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::controller {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::_;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using ::ntpfleet::testing::FakeClock;
using ::ntpfleet::testing::FakeMonotonicClock;

// A Report/Touch/ReportResult status: kept, or refused as not live.
#define ASSERT_OK(expr) ASSERT_THAT((expr), IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), IsOk())
#define EXPECT_NOT_LIVE(expr) \
  EXPECT_THAT((expr), StatusIs(absl::StatusCode::kNotFound, _))

v1::Hello MakeHello(const std::string& name, const std::string& instance,
                    absl::Duration report_interval = absl::Seconds(1)) {
  v1::Hello hello;
  hello.set_node_name(name);
  hello.set_instance_id(instance);
  // The instance id never leaves the registry: tests tell instances apart by
  // their version string instead.
  hello.set_agent_version("agent-" + instance);
  if (report_interval != absl::ZeroDuration()) {
    SetDuration(report_interval, hello.mutable_report_interval());
  }
  return hello;
}

v1::SyncStatus MakeStatus(absl::Duration offset,
                          absl::Duration error_bound = absl::Microseconds(100),
                          v1::SyncState state = v1::SYNC_STATE_SYNCHRONISED) {
  v1::SyncStatus status;
  status.set_state(state);
  SetDuration(offset, status.mutable_offset());
  SetDuration(error_bound, status.mutable_error_bound());
  return status;
}

// The only entry of that name in the fleet; fails the test if not exactly one.
v1::Node OnlyNode(const v1::Fleet& fleet, const std::string& name) {
  std::vector<v1::Node> found;
  for (const v1::Node& n : fleet.nodes()) {
    if (n.name() == name) found.push_back(n);
  }
  EXPECT_EQ(found.size(), 1u) << "entries named " << name;
  return found.empty() ? v1::Node() : found.front();
}

class RegistryTest : public ::testing::Test {
 protected:
  uint64_t MustConnect(const v1::Hello& hello,
                       const std::string& peer = "ipv4:10.0.0.1:4000") {
    absl::StatusOr<uint64_t> id = registry_.Connect(hello, peer);
    EXPECT_THAT(id, IsOk());
    return id.ok() ? *id : 0;
  }
  // Connects `name` and reports a synchronised status with `offset`.
  uint64_t Reporting(const std::string& name, absl::Duration offset,
                     absl::Duration error_bound = absl::Microseconds(100)) {
    const uint64_t c = MustConnect(MakeHello(name, name + "-1"));
    EXPECT_OK(registry_.Report(c, MakeStatus(offset, error_bound)));
    return c;
  }

  // Time passing: both clocks move together (a step of the wall clock alone
  // is clock_.Advance / clock_.Set).
  void Advance(absl::Duration d) {
    clock_.Advance(d);
    mono_.Advance(d);
  }

  FakeClock clock_;
  FakeMonotonicClock mono_;
  Registry registry_{&clock_, &mono_};
};

TEST_F(RegistryTest, ConnectedNodeShowsItsHelloStatusPeerAndLastSeen) {
  const uint64_t c = MustConnect(MakeHello("a", "i1"), "ipv4:10.0.0.7:5123");
  EXPECT_NE(c, 0u);
  Advance(absl::Milliseconds(400));
  ASSERT_OK(registry_.Report(c, MakeStatus(absl::Microseconds(250))));

  const v1::Fleet fleet = registry_.GetFleet();
  EXPECT_EQ(FromProto(fleet.as_of()), clock_.Now());
  ASSERT_EQ(fleet.nodes_size(), 1);
  const v1::Node& node = fleet.nodes(0);
  EXPECT_EQ(node.name(), "a");
  EXPECT_EQ(node.connection(), v1::CONNECTION_STATE_CONNECTED);
  EXPECT_EQ(node.hello().agent_version(), "agent-i1");
  // Never handed out: whoever knew it could pass for this agent.
  EXPECT_EQ(node.hello().instance_id(), "");
  EXPECT_EQ(node.peer(), "ipv4:10.0.0.7:5123");
  EXPECT_EQ(FromProto(node.last_seen()), clock_.Now());
  EXPECT_EQ(FromProto(node.status().offset()), absl::Microseconds(250));
  EXPECT_FALSE(node.duplicate_name());
  EXPECT_EQ(fleet.connected_count(), 1u);
  EXPECT_EQ(fleet.stale_count(), 0u);
}

TEST_F(RegistryTest, RejectsHelloWithoutNodeName) {
  EXPECT_THAT(registry_.Connect(MakeHello("", "i1"), "ipv4:10.0.0.9:1"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ipv4:10.0.0.9:1")));
  EXPECT_EQ(registry_.GetFleet().nodes_size(), 0);
}

TEST_F(RegistryTest, StaleAfterThreeOfItsOwnReportIntervalsOfSilence) {
  const uint64_t c = MustConnect(MakeHello("a", "i1", absl::Seconds(2)));
  ASSERT_OK(registry_.Report(c, MakeStatus(absl::ZeroDuration())));

  Advance(absl::Seconds(6) - absl::Nanoseconds(1));
  EXPECT_EQ(OnlyNode(registry_.GetFleet(), "a").connection(),
            v1::CONNECTION_STATE_CONNECTED);

  Advance(absl::Nanoseconds(1));  // silent for 3 × 2 s
  v1::Fleet fleet = registry_.GetFleet();
  EXPECT_EQ(OnlyNode(fleet, "a").connection(), v1::CONNECTION_STATE_STALE);
  EXPECT_EQ(fleet.stale_count(), 1u);
  EXPECT_EQ(fleet.connected_count(), 0u);

  // Any message brings it back.
  ASSERT_OK(registry_.Touch(c));
  fleet = registry_.GetFleet();
  EXPECT_EQ(OnlyNode(fleet, "a").connection(), v1::CONNECTION_STATE_CONNECTED);
  EXPECT_EQ(fleet.stale_count(), 0u);
}

TEST_F(RegistryTest, StaleCountsStaleIntervalsOfTheNodesOwnInterval) {
  RegistryOptions options;
  options.stale_intervals = 5;
  Registry registry(&clock_, &mono_, options);
  ASSERT_THAT(registry.Connect(MakeHello("a", "i1", absl::Seconds(3)), "p"),
              IsOk());
  Advance(absl::Seconds(15) - absl::Nanoseconds(1));
  EXPECT_EQ(OnlyNode(registry.GetFleet(), "a").connection(),
            v1::CONNECTION_STATE_CONNECTED);
  Advance(absl::Nanoseconds(1));  // silent for 5 × 3 s
  EXPECT_EQ(OnlyNode(registry.GetFleet(), "a").connection(),
            v1::CONNECTION_STATE_STALE);
}

TEST_F(RegistryTest, DisconnectKeepsLastStatusAndDeadConnectionIsRefused) {
  const uint64_t c = Reporting("a", absl::Microseconds(40));
  const absl::Time seen = clock_.Now();
  Advance(absl::Seconds(30));
  registry_.Disconnect(c);

  const v1::Fleet fleet = registry_.GetFleet();
  const v1::Node node = OnlyNode(fleet, "a");
  EXPECT_EQ(node.connection(), v1::CONNECTION_STATE_DISCONNECTED);
  EXPECT_EQ(FromProto(node.status().offset()), absl::Microseconds(40));
  EXPECT_EQ(FromProto(node.last_seen()), seen);
  EXPECT_FALSE(node.has_deviation());  // not counted in skew
  EXPECT_EQ(fleet.connected_count(), 0u);
  EXPECT_EQ(fleet.stale_count(), 0u);

  EXPECT_NOT_LIVE(registry_.Report(c, MakeStatus(absl::ZeroDuration())));
  EXPECT_NOT_LIVE(registry_.Touch(c));
  registry_.Disconnect(c);  // twice: harmless
}

TEST_F(RegistryTest, ReconnectOfSameInstanceReplacesOldStream) {
  const uint64_t old_conn = MustConnect(MakeHello("a", "i1"), "ipv4:1.1.1.1:1");
  ASSERT_OK(registry_.Report(old_conn, MakeStatus(absl::Microseconds(10))));
  const uint64_t new_conn = MustConnect(MakeHello("a", "i1"), "ipv4:1.1.1.1:2");
  EXPECT_NE(new_conn, old_conn);

  // The old stream's late messages and clean-up do nothing.
  EXPECT_NOT_LIVE(registry_.Report(old_conn, MakeStatus(absl::Seconds(9))));
  registry_.Disconnect(old_conn);

  const v1::Node node = OnlyNode(registry_.GetFleet(), "a");
  EXPECT_EQ(node.connection(), v1::CONNECTION_STATE_CONNECTED);
  EXPECT_FALSE(node.duplicate_name());
  EXPECT_EQ(node.peer(), "ipv4:1.1.1.1:2");
  // Its latest status survives the reconnect until the new stream reports.
  EXPECT_EQ(FromProto(node.status().offset()), absl::Microseconds(10));
  EXPECT_OK(registry_.Report(new_conn, MakeStatus(absl::Microseconds(20))));

  absl::StatusOr<Registry::Selection> sel = registry_.Select([] {
    v1::NodeSelector s;
    s.add_names("a");
    return s;
  }());
  ASSERT_THAT(sel, IsOk());
  EXPECT_THAT(sel->connected,
              ElementsAre(Field(&Registry::Target::connection, new_conn)));
}

TEST_F(RegistryTest, DuplicateNamesFromDifferentInstancesAreBothFlagged) {
  const uint64_t c1 = MustConnect(MakeHello("a", "i1"), "ipv4:10.0.0.1:1");
  const uint64_t c2 = MustConnect(MakeHello("a", "i2"), "ipv4:10.0.0.2:1");
  ASSERT_OK(registry_.Report(c1, MakeStatus(absl::Microseconds(100))));
  ASSERT_OK(registry_.Report(c2, MakeStatus(absl::Microseconds(-300))));

  const v1::Fleet fleet = registry_.GetFleet();
  ASSERT_EQ(fleet.nodes_size(), 2);  // not merged
  EXPECT_EQ(fleet.nodes(0).hello().agent_version(), "agent-i1");
  EXPECT_EQ(fleet.nodes(1).hello().agent_version(), "agent-i2");
  for (const v1::Node& n : fleet.nodes()) {
    EXPECT_EQ(n.name(), "a");
    EXPECT_TRUE(n.duplicate_name());
    EXPECT_EQ(n.connection(), v1::CONNECTION_STATE_CONNECTED);
  }
  EXPECT_EQ(FromProto(fleet.nodes(0).status().offset()),
            absl::Microseconds(100));
  EXPECT_EQ(FromProto(fleet.nodes(1).status().offset()),
            absl::Microseconds(-300));
  EXPECT_EQ(fleet.connected_count(), 2u);
  EXPECT_EQ(FromProto(fleet.skew()), absl::Microseconds(400));

  std::optional<v1::Node> first = registry_.GetNode("a");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->hello().agent_version(), "agent-i1");
  EXPECT_TRUE(first->duplicate_name());

  // A resync of "a" goes to both.
  v1::NodeSelector by_name;
  by_name.add_names("a");
  absl::StatusOr<Registry::Selection> sel = registry_.Select(by_name);
  ASSERT_THAT(sel, IsOk());
  EXPECT_THAT(sel->connected,
              ElementsAre(Field(&Registry::Target::connection, c1),
                          Field(&Registry::Target::connection, c2)));

  // When one leaves, the other is the only entry and no longer flagged.
  registry_.Disconnect(c1);
  const v1::Node left = OnlyNode(registry_.GetFleet(), "a");
  EXPECT_EQ(left.hello().agent_version(), "agent-i2");
  EXPECT_FALSE(left.duplicate_name());
  EXPECT_EQ(left.connection(), v1::CONNECTION_STATE_CONNECTED);

  // And when the last one leaves, the name stays known.
  registry_.Disconnect(c2);
  EXPECT_EQ(OnlyNode(registry_.GetFleet(), "a").connection(),
            v1::CONNECTION_STATE_DISCONNECTED);
}

TEST_F(RegistryTest, NewInstanceTakesOverDisconnectedEntry) {
  const uint64_t c1 = MustConnect(MakeHello("a", "i1"));
  registry_.Disconnect(c1);
  MustConnect(MakeHello("a", "i2"));  // the agent restarted
  const v1::Node node = OnlyNode(registry_.GetFleet(), "a");
  EXPECT_EQ(node.connection(), v1::CONNECTION_STATE_CONNECTED);
  EXPECT_EQ(node.hello().agent_version(), "agent-i2");
  EXPECT_FALSE(node.duplicate_name());
}

TEST_F(RegistryTest, KnownNodeIsDisconnectedUntilItConnects) {
  const absl::Time seen = clock_.Now() - absl::Hours(2);
  v1::Hello hello = MakeHello("b", "old");
  (*hello.mutable_labels())["rack"] = "a1";
  registry_.AddKnownNode(hello, seen);

  v1::Node node = OnlyNode(registry_.GetFleet(), "b");
  EXPECT_EQ(node.connection(), v1::CONNECTION_STATE_DISCONNECTED);
  EXPECT_EQ(FromProto(node.last_seen()), seen);
  EXPECT_EQ(node.hello().labels().at("rack"), "a1");
  EXPECT_FALSE(node.has_status());

  MustConnect(MakeHello("b", "new"));
  node = OnlyNode(registry_.GetFleet(), "b");
  EXPECT_EQ(node.connection(), v1::CONNECTION_STATE_CONNECTED);
  EXPECT_EQ(node.hello().agent_version(), "agent-new");

  // The inventory never overrides what a stream said.
  registry_.AddKnownNode(MakeHello("b", "older"), seen);
  EXPECT_EQ(OnlyNode(registry_.GetFleet(), "b").hello().agent_version(),
            "agent-new");
}

// Node.first_seen: the inventory's for a known node (kept when it connects
// again), the Connect's time for a new name, the name's for a duplicate, and
// the Connect's time for a known node the inventory had none for.
TEST_F(RegistryTest, FirstSeenComesFromTheInventoryOrTheFirstConnect) {
  const absl::Time first = clock_.Now() - absl::Hours(48);
  registry_.AddKnownNode(MakeHello("known", "old"),
                         clock_.Now() - absl::Hours(2), first);
  registry_.AddKnownNode(MakeHello("undated", "old"),
                         clock_.Now() - absl::Hours(2));
  EXPECT_EQ(FromProto(OnlyNode(registry_.GetFleet(), "known").first_seen()),
            first);
  EXPECT_FALSE(OnlyNode(registry_.GetFleet(), "undated").has_first_seen());

  clock_.Advance(absl::Minutes(5));
  const absl::Time connected_at = clock_.Now();
  MustConnect(MakeHello("known", "new"));
  MustConnect(MakeHello("undated", "new"));
  MustConnect(MakeHello("fresh", "i1"));
  clock_.Advance(absl::Minutes(5));
  MustConnect(MakeHello("fresh", "i2"));  // a duplicate of a live name

  const v1::Fleet fleet = registry_.GetFleet();
  EXPECT_EQ(FromProto(OnlyNode(fleet, "known").first_seen()), first);
  EXPECT_EQ(FromProto(OnlyNode(fleet, "undated").first_seen()), connected_at);
  int fresh = 0;
  for (const v1::Node& n : fleet.nodes()) {
    if (n.name() != "fresh") continue;
    ++fresh;
    EXPECT_EQ(FromProto(n.first_seen()), connected_at);
  }
  EXPECT_EQ(fresh, 2);
}

// Offsets +0.3 ms, −0.2 ms, +1.5 ms: skew = 1.5 − (−0.2) = 1.7 ms; sorted
// (−0.2, 0.3, 1.5) so the median is 0.3 ms; deviations 0, −0.5, +1.2 ms. With
// the 1 ms threshold only c is flagged (|offset| 1.5 and |deviation| 1.2).
TEST_F(RegistryTest, SkewMedianDeviationsAndFlagsByHand) {
  Reporting("a", absl::Microseconds(300), absl::Microseconds(500));
  Reporting("b", absl::Microseconds(-200), absl::Microseconds(400));
  Reporting("c", absl::Microseconds(1500), absl::Microseconds(2000));

  const v1::Fleet fleet = registry_.GetFleet();
  EXPECT_EQ(FromProto(fleet.skew()), absl::Microseconds(1700));
  EXPECT_EQ(FromProto(fleet.max_error_bound()), absl::Microseconds(2000));
  EXPECT_EQ(FromProto(fleet.threshold()), absl::Milliseconds(1));
  EXPECT_EQ(FromProto(OnlyNode(fleet, "a").deviation()), absl::ZeroDuration());
  EXPECT_EQ(FromProto(OnlyNode(fleet, "b").deviation()),
            absl::Microseconds(-500));
  EXPECT_EQ(FromProto(OnlyNode(fleet, "c").deviation()),
            absl::Microseconds(1200));
  EXPECT_FALSE(OnlyNode(fleet, "a").flagged());
  EXPECT_FALSE(OnlyNode(fleet, "b").flagged());
  EXPECT_TRUE(OnlyNode(fleet, "c").flagged());
  EXPECT_EQ(fleet.flagged_count(), 1u);
  EXPECT_EQ(fleet.connected_count(), 3u);
}

// Offsets +0.9, +0.8, −0.5 ms: median 0.8 ms; d's deviation is −1.3 ms though
// its offset (0.5 ms) is inside the threshold: flagged by deviation alone.
TEST_F(RegistryTest, FlagsNodeThatDisagreesWithTheFleetByDeviationAlone) {
  Reporting("b", absl::Microseconds(900));
  Reporting("c", absl::Microseconds(800));
  Reporting("d", absl::Microseconds(-500));
  const v1::Fleet fleet = registry_.GetFleet();
  EXPECT_EQ(FromProto(fleet.skew()), absl::Microseconds(1400));
  EXPECT_EQ(FromProto(OnlyNode(fleet, "d").deviation()),
            absl::Microseconds(-1300));
  EXPECT_TRUE(OnlyNode(fleet, "d").flagged());
  EXPECT_FALSE(OnlyNode(fleet, "b").flagged());
  EXPECT_FALSE(OnlyNode(fleet, "c").flagged());
  EXPECT_EQ(fleet.flagged_count(), 1u);
}

// All three 1.1..1.3 ms behind the reference: they agree with each other
// (deviations ≤ 0.1 ms) but every one is beyond 1 ms of the reference.
TEST_F(RegistryTest, FlagsWholeFleetOffTheReferenceByOffset) {
  Reporting("a", absl::Microseconds(1100));
  Reporting("b", absl::Microseconds(1200));
  Reporting("c", absl::Microseconds(1300));
  const v1::Fleet fleet = registry_.GetFleet();
  EXPECT_EQ(FromProto(fleet.skew()), absl::Microseconds(200));
  EXPECT_EQ(FromProto(OnlyNode(fleet, "a").deviation()),
            absl::Microseconds(-100));
  EXPECT_EQ(fleet.flagged_count(), 3u);
}

// Even count: the median is the mean of the middle two, (0.3 + 0.6) / 2.
TEST_F(RegistryTest, MedianOfEvenCountIsMeanOfMiddleTwo) {
  Reporting("a", absl::Microseconds(100));
  Reporting("b", absl::Microseconds(300));
  Reporting("c", absl::Microseconds(600));
  Reporting("d", absl::Microseconds(1000));
  const v1::Fleet fleet = registry_.GetFleet();
  EXPECT_EQ(FromProto(OnlyNode(fleet, "a").deviation()),
            absl::Microseconds(-350));
  EXPECT_EQ(FromProto(OnlyNode(fleet, "d").deviation()),
            absl::Microseconds(550));
  EXPECT_EQ(fleet.flagged_count(), 0u);
}

TEST_F(RegistryTest, ThresholdIsConfigurable) {
  RegistryOptions options;
  options.skew_threshold = absl::Milliseconds(2);
  Registry registry(&clock_, &mono_, options);
  absl::StatusOr<uint64_t> c = registry.Connect(MakeHello("c", "i"), "p");
  ASSERT_THAT(c, IsOk());
  ASSERT_OK(registry.Report(*c, MakeStatus(absl::Microseconds(1500))));
  const v1::Fleet fleet = registry.GetFleet();
  EXPECT_EQ(FromProto(fleet.threshold()), absl::Milliseconds(2));
  EXPECT_FALSE(OnlyNode(fleet, "c").flagged());
  EXPECT_EQ(fleet.flagged_count(), 0u);
}

TEST_F(RegistryTest, OnlyConnectedReportingSyncedNodesCountInSkew) {
  MustConnect(MakeHello("no-status", "i"));
  const uint64_t unsynced = MustConnect(MakeHello("unsynced", "i"));
  ASSERT_OK(registry_.Report(
      unsynced, MakeStatus(absl::Milliseconds(50), absl::Seconds(16),
                           v1::SYNC_STATE_UNSYNCHRONISED)));
  // Refused by its servers (KoD DENY): its clock is free-running too.
  const uint64_t refused = MustConnect(MakeHello("refused", "i"));
  ASSERT_OK(registry_.Report(
      refused, MakeStatus(absl::Milliseconds(70), absl::Seconds(16),
                          v1::SYNC_STATE_REFUSED)));
  const uint64_t holdover = MustConnect(MakeHello("holdover", "i"));
  ASSERT_OK(registry_.Report(
      holdover, MakeStatus(absl::Milliseconds(20), absl::Milliseconds(30),
                           v1::SYNC_STATE_HOLDOVER)));
  const uint64_t syncing = MustConnect(MakeHello("syncing", "i"));
  ASSERT_OK(registry_.Report(
      syncing, MakeStatus(absl::Microseconds(100), absl::Microseconds(700),
                          v1::SYNC_STATE_SYNCING)));
  const uint64_t server = MustConnect(MakeHello("server", "i"));
  ASSERT_OK(registry_.Report(
      server, MakeStatus(absl::ZeroDuration(), absl::Microseconds(10),
                         v1::SYNC_STATE_LOCAL_CLOCK)));
  // A stale node's old offset does not count either.
  const uint64_t stale =
      MustConnect(MakeHello("stale", "i", absl::Milliseconds(100)));
  ASSERT_OK(registry_.Report(stale, MakeStatus(absl::Milliseconds(9))));
  Advance(absl::Milliseconds(300));
  ASSERT_OK(registry_.Touch(syncing));
  ASSERT_OK(registry_.Touch(server));

  const v1::Fleet fleet = registry_.GetFleet();
  EXPECT_EQ(FromProto(fleet.skew()), absl::Microseconds(100));
  EXPECT_EQ(FromProto(fleet.max_error_bound()), absl::Microseconds(700));
  for (const v1::Node& n : fleet.nodes()) {
    const bool counted = n.name() == "syncing" || n.name() == "server";
    EXPECT_EQ(n.has_deviation(), counted) << n.name();
    EXPECT_FALSE(n.flagged()) << n.name();
  }
  EXPECT_EQ(OnlyNode(fleet, "stale").connection(), v1::CONNECTION_STATE_STALE);
  EXPECT_EQ(fleet.flagged_count(), 0u);
}

TEST_F(RegistryTest, EmptyFleetHasZeroSkew) {
  const v1::Fleet fleet = registry_.GetFleet();
  EXPECT_TRUE(fleet.has_skew());
  EXPECT_EQ(FromProto(fleet.skew()), absl::ZeroDuration());
  EXPECT_EQ(FromProto(fleet.max_error_bound()), absl::ZeroDuration());
  EXPECT_THAT(fleet.nodes(), IsEmpty());
}

TEST_F(RegistryTest, GetNodeComputesDeviationAndUnknownIsNullopt) {
  Reporting("a", absl::Microseconds(300));
  Reporting("b", absl::Microseconds(-200));
  Reporting("c", absl::Microseconds(1500));
  std::optional<v1::Node> c = registry_.GetNode("c");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(FromProto(c->deviation()), absl::Microseconds(1200));
  EXPECT_TRUE(c->flagged());
  EXPECT_FALSE(registry_.GetNode("nope").has_value());
}

class RegistrySelectTest : public RegistryTest {
 protected:
  void SetUp() override {
    v1::Hello a = MakeHello("a", "i");
    (*a.mutable_labels())["rack"] = "r1";
    a_ = MustConnect(a);
    v1::Hello b = MakeHello("b", "i");
    (*b.mutable_labels())["rack"] = "r2";
    b_ = MustConnect(b);
    v1::Hello c = MakeHello("c", "i");
    (*c.mutable_labels())["rack"] = "r1";
    registry_.AddKnownNode(c, clock_.Now());  // known, not connected
  }
  static std::vector<std::string> Names(const Registry::Selection& s) {
    std::vector<std::string> names;
    for (const Registry::Target& t : s.connected) names.push_back(t.node);
    return names;
  }
  uint64_t a_ = 0;
  uint64_t b_ = 0;
};

TEST_F(RegistrySelectTest, ByNamesWithUnknownAndDisconnectedNames) {
  v1::NodeSelector selector;
  for (const char* name : {"ghost", "b", "c", "a", "b"}) {
    selector.add_names(name);
  }
  absl::StatusOr<Registry::Selection> sel = registry_.Select(selector);
  ASSERT_THAT(sel, IsOk());
  EXPECT_THAT(Names(*sel), ElementsAre("a", "b"));
  EXPECT_EQ(sel->connected[0].connection, a_);
  EXPECT_EQ(sel->connected[1].connection, b_);
  EXPECT_THAT(sel->not_connected, ElementsAre("c", "ghost"));
}

TEST_F(RegistrySelectTest, ByLabel) {
  v1::NodeSelector selector;
  selector.set_label("rack=r1");
  absl::StatusOr<Registry::Selection> sel = registry_.Select(selector);
  ASSERT_THAT(sel, IsOk());
  EXPECT_THAT(Names(*sel), ElementsAre("a"));
  EXPECT_THAT(sel->not_connected, ElementsAre("c"));

  selector.set_label("rack=r9");
  sel = registry_.Select(selector);
  ASSERT_THAT(sel, IsOk());
  EXPECT_THAT(sel->connected, IsEmpty());
  EXPECT_THAT(sel->not_connected, IsEmpty());
}

TEST_F(RegistrySelectTest, AllIncludesStaleStreamsAndKnownNodes) {
  Advance(absl::Minutes(1));  // a and b are STALE: streams still open
  v1::NodeSelector selector;
  selector.set_all(true);
  absl::StatusOr<Registry::Selection> sel = registry_.Select(selector);
  ASSERT_THAT(sel, IsOk());
  EXPECT_THAT(Names(*sel), ElementsAre("a", "b"));
  EXPECT_THAT(sel->not_connected, ElementsAre("c"));
}

TEST_F(RegistrySelectTest, RejectsSelectorsThatSelectNothingOrBadLabels) {
  EXPECT_THAT(registry_.Select(v1::NodeSelector()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("selects nothing")));
  for (const char* label : {"rack", "=r1"}) {
    v1::NodeSelector selector;
    selector.set_label(label);
    EXPECT_THAT(
        registry_.Select(selector),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key=value")))
        << label;
  }
}

TEST_F(RegistryTest, VersionBumpsOnEveryChange) {
  uint64_t v = registry_.version();
  auto bumped = [&] {
    const uint64_t now = registry_.version();
    const bool changed = now != v;
    v = now;
    return changed;
  };
  const uint64_t c = MustConnect(MakeHello("a", "i"));
  EXPECT_TRUE(bumped());
  EXPECT_OK(registry_.Report(c, MakeStatus(absl::ZeroDuration())));
  EXPECT_TRUE(bumped());
  EXPECT_OK(registry_.Touch(c));
  EXPECT_TRUE(bumped());
  EXPECT_OK(registry_.ReportResult(c, v1::ResyncResult()));
  EXPECT_TRUE(bumped());
  v1::SyncStatus bad;
  bad.set_stratum(99);
  EXPECT_THAT(registry_.Report(c, bad),
              StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_FALSE(bumped());  // a dropped message changes nothing
  registry_.GetFleet();
  EXPECT_FALSE(bumped());  // reads change nothing
  registry_.Disconnect(c);
  EXPECT_TRUE(bumped());
  registry_.Disconnect(c);
  EXPECT_FALSE(bumped());  // a no-op is not a change
  registry_.AddKnownNode(MakeHello("z", "i"), clock_.Now());
  EXPECT_TRUE(bumped());
  EXPECT_OK(registry_.Forget("z"));
  EXPECT_TRUE(bumped());
  EXPECT_THAT(registry_.Forget("z"), StatusIs(absl::StatusCode::kNotFound, _));
  EXPECT_FALSE(bumped());
}

TEST_F(RegistryTest, SnapshotIsValidUntilTheFirstConnectedNodeTurnsStale) {
  EXPECT_EQ(registry_.TakeSnapshot().valid_until, clock::MonoTime::Infinite());
  Reporting("a", absl::Microseconds(1));  // interval 1 s: stale after 3 s
  Advance(absl::Seconds(1));
  const uint64_t b = Reporting("b", absl::Microseconds(2));
  const Registry::Snapshot s = registry_.TakeSnapshot();
  EXPECT_EQ(s.version, registry_.version());
  EXPECT_EQ(s.valid_until, mono_.Now() + absl::Seconds(2));  // a's, not b's
  EXPECT_FALSE(registry_.Expired(s));
  EXPECT_EQ(s.fleet->connected_count(), 2u);

  Advance(absl::Seconds(2));  // a is stale now; b turns at +1 s
  const Registry::Snapshot later = registry_.TakeSnapshot();
  EXPECT_EQ(later.fleet->stale_count(), 1u);
  EXPECT_TRUE(registry_.Expired(s));
  EXPECT_EQ(later.valid_until, mono_.Now() + absl::Seconds(1));
  EXPECT_EQ(later.version, s.version);  // time alone changes no version

  registry_.Disconnect(b);
  const Registry::Snapshot none = registry_.TakeSnapshot();
  EXPECT_EQ(none.valid_until, clock::MonoTime::Infinite());
  Advance(absl::Hours(24 * 365));
  EXPECT_FALSE(registry_.Expired(none));
  EXPECT_NE(registry_.version(), s.version);
}

TEST_F(RegistryTest, SnapshotIsNotChangedByLaterReports) {
  const uint64_t c = Reporting("a", absl::Microseconds(5));
  const Registry::Snapshot s = registry_.TakeSnapshot();
  ASSERT_OK(registry_.Report(c, MakeStatus(absl::Microseconds(9))));
  EXPECT_EQ(FromProto(OnlyNode(*s.fleet, "a").status().offset()),
            absl::Microseconds(5));
  EXPECT_EQ(FromProto(OnlyNode(registry_.GetFleet(), "a").status().offset()),
            absl::Microseconds(9));
}

// ---------------------------------------------------------------------------
// Staleness on the controller's monotonic clock.

TEST_F(RegistryTest, SteppingTheWallClockForwardMakesNoNodeStale) {
  const uint64_t c = MustConnect(MakeHello("a", "i1", absl::Seconds(1)));
  ASSERT_OK(registry_.Report(c, MakeStatus(absl::ZeroDuration())));
  const absl::Time seen = clock_.Now();
  mono_.Advance(absl::Seconds(1));
  clock_.Advance(absl::Hours(5));  // the controller's clock is stepped
  v1::Fleet fleet = registry_.GetFleet();
  EXPECT_EQ(OnlyNode(fleet, "a").connection(), v1::CONNECTION_STATE_CONNECTED);
  // What people read stays on the wall clock.
  EXPECT_EQ(FromProto(OnlyNode(fleet, "a").last_seen()), seen);
  EXPECT_EQ(FromProto(fleet.as_of()), seen + absl::Hours(5));
  // Silence on the monotonic clock still counts.
  mono_.Advance(absl::Seconds(2));
  EXPECT_EQ(OnlyNode(registry_.GetFleet(), "a").connection(),
            v1::CONNECTION_STATE_STALE);
}

TEST_F(RegistryTest, SteppingTheWallClockBackKeepsNoSilentNodeFresh) {
  const uint64_t c = MustConnect(MakeHello("a", "i1", absl::Seconds(1)));
  ASSERT_OK(registry_.Report(c, MakeStatus(absl::ZeroDuration())));
  clock_.Set(clock_.Now() - absl::Hours(5));  // stepped back
  mono_.Advance(absl::Seconds(3) - absl::Nanoseconds(1));
  EXPECT_EQ(OnlyNode(registry_.GetFleet(), "a").connection(),
            v1::CONNECTION_STATE_CONNECTED);
  mono_.Advance(absl::Nanoseconds(1));  // 3 × 1 s of real silence
  v1::Fleet fleet = registry_.GetFleet();
  EXPECT_EQ(OnlyNode(fleet, "a").connection(), v1::CONNECTION_STATE_STALE);
  EXPECT_EQ(fleet.stale_count(), 1u);
  // A report (stamped with the stepped wall clock) brings it back.
  ASSERT_OK(registry_.Report(c, MakeStatus(absl::ZeroDuration())));
  fleet = registry_.GetFleet();
  EXPECT_EQ(OnlyNode(fleet, "a").connection(), v1::CONNECTION_STATE_CONNECTED);
  EXPECT_EQ(FromProto(OnlyNode(fleet, "a").last_seen()), clock_.Now());
}

TEST_F(RegistryTest, SnapshotExpiryFollowsTheMonotonicClockOnly) {
  Reporting("a", absl::Microseconds(1));  // stale after 3 s
  const Registry::Snapshot s = registry_.TakeSnapshot();
  clock_.Advance(absl::Hours(1));
  EXPECT_FALSE(registry_.Expired(s));
  mono_.Advance(absl::Seconds(3) - absl::Nanoseconds(1));
  EXPECT_FALSE(registry_.Expired(s));
  mono_.Advance(absl::Nanoseconds(1));
  EXPECT_TRUE(registry_.Expired(s));
}

// ---------------------------------------------------------------------------
// What agents send is checked.

TEST_F(RegistryTest, InvalidHelloIsRefusedAndCounted) {
  v1::Hello spaced = MakeHello("web 1", "i1");
  EXPECT_THAT(registry_.Connect(spaced, "ipv4:10.0.0.9:1"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("ipv4:10.0.0.9:1"),
                             HasSubstr("Hello.node_name"))));
  v1::Hello silent = MakeHello("a", "i1", absl::ZeroDuration());  // no interval
  EXPECT_THAT(registry_.Connect(silent, "p"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Hello.report_interval")));
  v1::Hello wild = MakeHello("a", "i1");
  wild.mutable_report_interval()->set_seconds(int64_t{100000000} * 3600);
  EXPECT_THAT(registry_.Connect(wild, "p"),
              StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_EQ(registry_.GetFleet().nodes_size(), 0);
  EXPECT_EQ(registry_.counters().rejected_hellos, 3u);
  EXPECT_EQ(registry_.version(), 0u);
}

TEST_F(RegistryTest, InvalidStatusIsDroppedTheStreamGoesOn) {
  const uint64_t c = Reporting("a", absl::Microseconds(40));
  const absl::Time seen = clock_.Now();
  Advance(absl::Seconds(2));
  v1::SyncStatus nan = MakeStatus(absl::Microseconds(41));
  nan.set_frequency_ppm(std::nan(""));
  EXPECT_THAT(registry_.Report(c, nan),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("SyncStatus.frequency_ppm")));
  v1::SyncStatus late = MakeStatus(absl::Microseconds(42));
  late.mutable_sampled_at()->set_seconds(253402300800);
  EXPECT_THAT(registry_.Report(c, std::make_shared<v1::SyncStatus>(late)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("SyncStatus.sampled_at")));
  EXPECT_EQ(registry_.counters().rejected_statuses, 2u);
  // Neither kept nor a sign of life.
  v1::Node node = OnlyNode(registry_.GetFleet(), "a");
  EXPECT_EQ(FromProto(node.status().offset()), absl::Microseconds(40));
  EXPECT_EQ(FromProto(node.last_seen()), seen);
  Advance(absl::Seconds(1));
  EXPECT_EQ(OnlyNode(registry_.GetFleet(), "a").connection(),
            v1::CONNECTION_STATE_STALE);
  // The stream is still live: the next good report is kept.
  ASSERT_OK(registry_.Report(c, MakeStatus(absl::Microseconds(43))));
  node = OnlyNode(registry_.GetFleet(), "a");
  EXPECT_EQ(FromProto(node.status().offset()), absl::Microseconds(43));
  EXPECT_EQ(node.connection(), v1::CONNECTION_STATE_CONNECTED);
}

TEST_F(RegistryTest, ResyncResultIsCheckedAndRefreshesLastSeen) {
  const uint64_t c = Reporting("a", absl::Microseconds(1));
  Advance(absl::Seconds(2));
  v1::ResyncResult bad;
  bad.set_error(std::string(1025, 'e'));
  EXPECT_THAT(registry_.ReportResult(c, bad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ResyncResult.error")));
  EXPECT_EQ(registry_.counters().rejected_results, 1u);
  Advance(absl::Seconds(1));
  EXPECT_EQ(OnlyNode(registry_.GetFleet(), "a").connection(),
            v1::CONNECTION_STATE_STALE);

  v1::ResyncResult good;
  good.set_request_id("resync-1-1");
  good.set_outcome(v1::RESYNC_OUTCOME_OK);
  ASSERT_OK(registry_.ReportResult(c, good));
  const v1::Node node = OnlyNode(registry_.GetFleet(), "a");
  EXPECT_EQ(node.connection(), v1::CONNECTION_STATE_CONNECTED);
  EXPECT_EQ(FromProto(node.last_seen()), clock_.Now());

  registry_.Disconnect(c);
  EXPECT_NOT_LIVE(registry_.ReportResult(c, good));
}

// ---------------------------------------------------------------------------
// Limits on names.

TEST_F(RegistryTest, MaxNodesRefusesNewNamesNotKnownOnes) {
  RegistryOptions options;
  options.max_nodes = 2;
  Registry registry(&clock_, &mono_, options);
  registry.AddKnownNode(MakeHello("known", "old"), clock_.Now());
  absl::StatusOr<uint64_t> a = registry.Connect(MakeHello("a", "i"), "p");
  ASSERT_THAT(a, IsOk());
  EXPECT_THAT(registry.Connect(MakeHello("b", "i"), "p"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("'b'"), HasSubstr("--max-nodes 2"))));
  EXPECT_EQ(registry.counters().refused_new_names, 1u);
  // Known names always get in: from the inventory, a reconnect, a duplicate.
  EXPECT_THAT(registry.Connect(MakeHello("known", "new"), "p"), IsOk());
  EXPECT_THAT(registry.Connect(MakeHello("a", "i"), "p"), IsOk());
  EXPECT_THAT(registry.Connect(MakeHello("a", "other"), "p"), IsOk());
  EXPECT_EQ(registry.counters().refused_new_names, 1u);
  EXPECT_EQ(registry.GetFleet().nodes_size(), 3);  // known, a, a (duplicate)
}

TEST_F(RegistryTest, NewNamesAreRateLimitedOnTheMonotonicClock) {
  RegistryOptions options;
  options.new_names_burst = 3;
  options.new_names_per_second = 2;
  Registry registry(&clock_, &mono_, options);
  for (int i = 0; i < 10; ++i) {  // the inventory takes no tokens
    registry.AddKnownNode(MakeHello(absl::StrCat("k", i), "i"), clock_.Now());
  }
  for (const char* name : {"a", "b", "c"}) {  // the burst
    EXPECT_THAT(registry.Connect(MakeHello(name, "i"), "p"), IsOk()) << name;
  }
  EXPECT_THAT(
      registry.Connect(MakeHello("d", "i"), "p"),
      StatusIs(absl::StatusCode::kResourceExhausted,
               AllOf(HasSubstr("'d'"), HasSubstr("--new-names-per-second"),
                     HasSubstr("--new-names-burst"))));
  // Known names are always accepted, however fast.
  for (int i = 0; i < 10; ++i) {
    EXPECT_THAT(registry.Connect(MakeHello(absl::StrCat("k", i), "i"), "p"),
                IsOk());
  }
  EXPECT_THAT(registry.Connect(MakeHello("a", "i"), "p"), IsOk());
  // A step of the wall clock refills nothing.
  clock_.Advance(absl::Hours(1));
  EXPECT_THAT(registry.Connect(MakeHello("d", "i"), "p"),
              StatusIs(absl::StatusCode::kResourceExhausted, _));
  // Half a second at 2 a second: one token.
  mono_.Advance(absl::Milliseconds(500));
  EXPECT_THAT(registry.Connect(MakeHello("d", "i"), "p"), IsOk());
  EXPECT_THAT(registry.Connect(MakeHello("e", "i"), "p"),
              StatusIs(absl::StatusCode::kResourceExhausted, _));
  EXPECT_EQ(registry.counters().refused_new_names, 3u);
  // A long quiet refills the bucket up to the burst, not beyond.
  mono_.Advance(absl::Hours(1));
  for (const char* name : {"e", "f", "g"}) {
    EXPECT_THAT(registry.Connect(MakeHello(name, "i"), "p"), IsOk()) << name;
  }
  EXPECT_THAT(registry.Connect(MakeHello("h", "i"), "p"),
              StatusIs(absl::StatusCode::kResourceExhausted, _));
  EXPECT_EQ(registry.counters().refused_new_names, 4u);
}

TEST_F(RegistryTest, DefaultLimitsLetAFleetStartAtOnce) {
  const RegistryOptions defaults;
  EXPECT_EQ(defaults.max_nodes, 100000u);
  EXPECT_EQ(defaults.new_names_per_second, 50);
  EXPECT_EQ(defaults.new_names_burst, 2000);
  for (int i = 0; i < 2000; ++i) {
    ASSERT_THAT(registry_.Connect(MakeHello(absl::StrCat("n", i), "i"), "p"),
                IsOk())
        << i;
  }
  EXPECT_THAT(registry_.Connect(MakeHello("n2000", "i"), "p"),
              StatusIs(absl::StatusCode::kResourceExhausted, _));
  mono_.Advance(absl::Milliseconds(20));  // 1/50 s: one more
  EXPECT_THAT(registry_.Connect(MakeHello("n2000", "i"), "p"), IsOk());
}

// ---------------------------------------------------------------------------
// Forget.

TEST_F(RegistryTest, ForgetRemovesOnlyADisconnectedNode) {
  EXPECT_THAT(registry_.Forget("ghost"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("ghost")));

  const uint64_t c = Reporting("a", absl::Microseconds(1));
  EXPECT_THAT(registry_.Forget("a"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("node a is connected"),
                             HasSubstr("stop its agent first"))));
  // A duplicate keeps it connected after one stream ends.
  const uint64_t dup = MustConnect(MakeHello("a", "other"));
  registry_.Disconnect(c);
  EXPECT_THAT(registry_.Forget("a"),
              StatusIs(absl::StatusCode::kFailedPrecondition, _));
  registry_.Disconnect(dup);

  ASSERT_OK(registry_.Forget("a"));
  EXPECT_EQ(registry_.GetFleet().nodes_size(), 0);
  EXPECT_EQ(registry_.GetNode("a"), std::nullopt);
  EXPECT_THAT(registry_.Forget("a"), StatusIs(absl::StatusCode::kNotFound, _));

  registry_.AddKnownNode(MakeHello("inv", "i"), clock_.Now());
  ASSERT_OK(registry_.Forget("inv"));
  EXPECT_EQ(registry_.GetFleet().nodes_size(), 0);
}

TEST_F(RegistryTest, AForgottenNameIsNewAgain) {
  RegistryOptions options;
  options.new_names_burst = 1;
  options.new_names_per_second = 1;
  Registry registry(&clock_, &mono_, options);
  absl::StatusOr<uint64_t> a = registry.Connect(MakeHello("a", "i"), "p");
  ASSERT_THAT(a, IsOk());
  registry.Disconnect(*a);
  ASSERT_OK(registry.Forget("a"));
  EXPECT_THAT(registry.Connect(MakeHello("a", "i"), "p"),
              StatusIs(absl::StatusCode::kResourceExhausted, _));
  mono_.Advance(absl::Seconds(1));
  EXPECT_THAT(registry.Connect(MakeHello("a", "i"), "p"), IsOk());
}

TEST(SummarizeFleetTest, KeepsOnlyThePeerRowATableShows) {
  v1::Fleet fleet;
  v1::Node* by_name = fleet.add_nodes();  // system_peer names the row
  by_name->set_name("a");
  by_name->set_peer("ipv4:10.0.0.7:5123");
  by_name->mutable_first_seen()->set_seconds(1'700'000'000);
  by_name->mutable_hello()->set_role(v1::ROLE_SERVER);
  by_name->mutable_hello()->set_config_digest("ab12");
  by_name->mutable_hello()->add_addresses("10.0.0.7");
  (*by_name->mutable_hello()->mutable_labels())["rack"] = "a1";
  by_name->mutable_status()->set_system_peer("10.0.0.2");
  for (const char* remote : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
    by_name->mutable_status()->add_peers()->set_remote(remote);
  }
  v1::Node* by_mark = fleet.add_nodes();  // no system_peer: the '*' row
  by_mark->set_name("b");
  by_mark->mutable_status()->add_peers()->set_remote("10.0.0.1");
  v1::PeerStatus* star = by_mark->mutable_status()->add_peers();
  star->set_remote("10.0.0.9");
  star->set_mark(v1::SELECTION_MARK_SYSTEM_PEER);
  v1::Node* none = fleet.add_nodes();  // neither: the first row
  none->set_name("c");
  none->mutable_status()->add_peers()->set_remote("10.0.0.4");
  none->mutable_status()->add_peers()->set_remote("10.0.0.5");
  fleet.add_nodes()->set_name("d");  // no status at all
  fleet.set_flagged_count(7);

  const std::shared_ptr<const v1::Fleet> summary = SummarizeFleet(fleet);
  ASSERT_EQ(summary->nodes_size(), 4);
  EXPECT_EQ(summary->flagged_count(), 7u);
  auto remotes = [&](int i) {
    std::vector<std::string> r;
    for (const v1::PeerStatus& p : summary->nodes(i).status().peers()) {
      r.push_back(p.remote());
    }
    return r;
  };
  EXPECT_THAT(remotes(0), ElementsAre("10.0.0.2"));
  EXPECT_THAT(remotes(1), ElementsAre("10.0.0.9"));
  EXPECT_THAT(remotes(2), ElementsAre("10.0.0.4"));
  EXPECT_FALSE(summary->nodes(3).has_status());
  // The table's columns and what `status` filters on (labels) stay; the rest
  // of the Hello, the address and first_seen go.
  EXPECT_EQ(summary->nodes(0).name(), "a");
  EXPECT_EQ(summary->nodes(0).hello().role(), v1::ROLE_SERVER);
  EXPECT_EQ(summary->nodes(0).hello().labels().at("rack"), "a1");
  EXPECT_TRUE(summary->nodes(0).hello().config_digest().empty());
  EXPECT_EQ(summary->nodes(0).hello().addresses_size(), 0);
  EXPECT_TRUE(summary->nodes(0).peer().empty());
  EXPECT_FALSE(summary->nodes(0).has_first_seen());
  EXPECT_EQ(fleet.nodes(0).status().peers_size(), 3);  // the input is intact
}

}  // namespace
}  // namespace ntpfleet::controller
