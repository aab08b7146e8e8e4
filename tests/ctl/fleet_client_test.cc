// The merges of ctl/fleet_client: several controllers' fleets into one (the
// freshest report per node, connected anywhere, fleet values recomputed),
// audit logs, and a resync through several controllers that asks each node
// through exactly one of them. Fake fleets and fake controllers; no network.
#include "ctl/fleet_client.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/fleet_stats.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::IsOkAndHolds;
using ::ntpfleet::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

// A node as a controller lists it: `seen` s after kT0 (negative: never),
// `offset_us` its reported offset.
v1::Node MakeNode(const std::string& name, v1::ConnectionState connection,
                  double seen, double offset_us,
                  v1::SyncState state = v1::SYNC_STATE_SYNCHRONISED,
                  double sampled = 0) {
  v1::Node n;
  n.set_name(name);
  n.set_connection(connection);
  if (seen >= 0) SetTimestamp(kT0 + absl::Seconds(seen), n.mutable_last_seen());
  v1::SyncStatus* s = n.mutable_status();
  s->set_state(state);
  SetDuration(absl::Microseconds(offset_us), s->mutable_offset());
  SetDuration(absl::Microseconds(100), s->mutable_error_bound());
  SetTimestamp(kT0 + absl::Seconds(sampled), s->mutable_sampled_at());
  return n;
}

constexpr auto kConnected = v1::CONNECTION_STATE_CONNECTED;
constexpr auto kStale = v1::CONNECTION_STATE_STALE;
constexpr auto kDisconnected = v1::CONNECTION_STATE_DISCONNECTED;

// A controller's fleet of `nodes`, with its own values computed as the
// controller would (threshold 1 ms unless given).
v1::Fleet MakeFleet(std::vector<v1::Node> nodes, double as_of = 200,
                    absl::Duration threshold = absl::Milliseconds(1)) {
  v1::Fleet f;
  for (v1::Node& n : nodes) *f.add_nodes() = std::move(n);
  SetTimestamp(kT0 + absl::Seconds(as_of), f.mutable_as_of());
  ComputeFleetStats(threshold, &f);
  return f;
}

v1::Fleet Merge(const std::vector<const v1::Fleet*>& fleets,
                std::vector<std::string>* notes = nullptr) {
  std::vector<ControllerFleet> in;
  for (size_t i = 0; i < fleets.size(); ++i) {
    in.push_back(
        {absl::StrCat("ctl-", std::string(1, static_cast<char>('a' + i)),
                      ":7123"),
         fleets[i]});
  }
  v1::Fleet out;
  std::vector<std::string> n = MergeFleets(in, &out);
  if (notes != nullptr) *notes = n;
  return out;
}

const v1::Node& Named(const v1::Fleet& f, const std::string& name) {
  for (const v1::Node& n : f.nodes()) {
    if (n.name() == name) return n;
  }
  ADD_FAILURE() << "no node " << name;
  return f.nodes(0);
}

double OffsetUs(const v1::Node& n) {
  return absl::ToDoubleMicroseconds(FromProto(n.status().offset()));
}

TEST(FresherTest, LaterLastSeenThenLaterSampleElseNeither) {
  EXPECT_TRUE(Fresher(MakeNode("n", kConnected, 10, 0),
                      MakeNode("n", kConnected, 9, 0, {}, 50)));
  EXPECT_FALSE(Fresher(MakeNode("n", kConnected, 9, 0, {}, 50),
                       MakeNode("n", kConnected, 10, 0)));
  // Same last_seen: the later sample.
  EXPECT_TRUE(Fresher(MakeNode("n", kConnected, 10, 0, {}, 3),
                      MakeNode("n", kConnected, 10, 0, {}, 2)));
  // Never heard from is older than anything.
  EXPECT_TRUE(Fresher(MakeNode("n", kDisconnected, 0, 0),
                      MakeNode("n", kDisconnected, -1, 0)));
  // Equal: neither.
  EXPECT_FALSE(Fresher(MakeNode("n", kConnected, 10, 0, {}, 3),
                       MakeNode("n", kConnected, 10, 0, {}, 3)));
}

TEST(MergeFleetsTest, FreshestReportPerNodeWins) {
  // web-1: b heard it last (its report +250 µs is newer than a's +900 µs).
  // db-1: a heard it last. cache-1: same last_seen, b's sample is newer.
  const v1::Fleet a = MakeFleet({
      MakeNode("web-1", kConnected, 100, 900),
      MakeNode("db-1", kConnected, 105, -40),
      MakeNode("cache-1", kConnected, 100, 10, v1::SYNC_STATE_SYNCHRONISED, 7),
  });
  const v1::Fleet b = MakeFleet({
      MakeNode("web-1", kConnected, 101, 250),
      MakeNode("db-1", kConnected, 104, 700),
      MakeNode("cache-1", kConnected, 100, 20, v1::SYNC_STATE_SYNCHRONISED, 8),
  });
  const v1::Fleet m = Merge({&a, &b});
  ASSERT_THAT(m.nodes(), SizeIs(3));
  EXPECT_EQ(OffsetUs(Named(m, "web-1")), 250);
  EXPECT_EQ(OffsetUs(Named(m, "db-1")), -40);
  EXPECT_EQ(OffsetUs(Named(m, "cache-1")), 20);
  // Sorted by name.
  EXPECT_EQ(m.nodes(0).name(), "cache-1");
  EXPECT_EQ(m.nodes(2).name(), "web-1");
  // A full tie keeps the controller given first.
  const v1::Fleet a2 = MakeFleet({MakeNode("n", kConnected, 5, 1)});
  const v1::Fleet b2 = MakeFleet({MakeNode("n", kConnected, 5, 2)});
  EXPECT_EQ(OffsetUs(Merge({&a2, &b2}).nodes(0)), 1);
  EXPECT_EQ(OffsetUs(Merge({&b2, &a2}).nodes(0)), 2);
}

TEST(MergeFleetsTest, ConnectedIfAnyControllerHasItConnected) {
  // a lost web-1's stream after its last report (fresher, DISCONNECTED); b
  // still holds it (CONNECTED). db-1: STALE on a, unknown to b. cache-1:
  // DISCONNECTED on a, STALE on b.
  const v1::Fleet a = MakeFleet({
      MakeNode("web-1", kDisconnected, 120, 300),
      MakeNode("db-1", kStale, 100, 0),
      MakeNode("cache-1", kDisconnected, 100, 0),
  });
  const v1::Fleet b = MakeFleet({
      MakeNode("web-1", kConnected, 119, 200),
      MakeNode("cache-1", kStale, 90, 0),
  });
  const v1::Fleet m = Merge({&a, &b});
  EXPECT_EQ(Named(m, "web-1").connection(), kConnected);
  EXPECT_EQ(OffsetUs(Named(m, "web-1")), 300);  // still a's fresher report
  EXPECT_EQ(Named(m, "db-1").connection(), kStale);
  EXPECT_EQ(Named(m, "cache-1").connection(), kStale);
  EXPECT_EQ(m.connected_count(), 1u);
  EXPECT_EQ(m.stale_count(), 2u);
  // Counted in skew, so it has a deviation.
  EXPECT_TRUE(Named(m, "web-1").has_deviation());
}

TEST(MergeFleetsTest, FleetValuesAreRecomputedOverTheMergedNodes) {
  // Each controller sees part of the fleet: a has x (+100 µs) and y (+500 µs),
  // b has z (+3000 µs) and an old y. Merged offsets 100, 500, 3000: skew
  // 2900 µs, median 500, z flagged (|offset| and |deviation| 2500 > 1 ms).
  // A merge that kept either controller's own skew would say 400 µs or 0.
  const v1::Fleet a = MakeFleet({
      MakeNode("x", kConnected, 100, 100),
      MakeNode("y", kConnected, 100, 500),
  });
  v1::Fleet b = MakeFleet({
      MakeNode("y", kConnected, 50, -7000),
      MakeNode("z", kConnected, 100, 3000),
      MakeNode("w", kConnected, 100, 9000, v1::SYNC_STATE_UNSYNCHRONISED),
  });
  ASSERT_EQ(FromProto(a.skew()), absl::Microseconds(400));
  const v1::Fleet m = Merge({&a, &b});
  EXPECT_EQ(FromProto(m.skew()), absl::Microseconds(2900));
  EXPECT_EQ(FromProto(m.max_error_bound()), absl::Microseconds(100));
  EXPECT_EQ(FromProto(Named(m, "x").deviation()), absl::Microseconds(-400));
  EXPECT_EQ(FromProto(Named(m, "y").deviation()), absl::ZeroDuration());
  EXPECT_EQ(FromProto(Named(m, "z").deviation()), absl::Microseconds(2500));
  EXPECT_TRUE(Named(m, "z").flagged());
  EXPECT_FALSE(Named(m, "y").flagged());
  // w is unsynchronised: listed, not counted, no deviation, not flagged
  // (even though b's own computation had none either, nothing leaks).
  EXPECT_FALSE(Named(m, "w").has_deviation());
  EXPECT_FALSE(Named(m, "w").flagged());
  EXPECT_EQ(m.flagged_count(), 1u);
  EXPECT_EQ(m.connected_count(), 4u);
  // The same as the controller's own function over the same nodes.
  v1::Fleet expected = m;
  ComputeFleetStats(absl::Milliseconds(1), &expected);
  EXPECT_EQ(expected.SerializeAsString(), m.SerializeAsString());
  // as_of: the latest answer.
  b = MakeFleet({MakeNode("z", kConnected, 100, 3000)}, /*as_of=*/300);
  EXPECT_EQ(FromProto(Merge({&a, &b}).as_of()), kT0 + absl::Seconds(300));
}

TEST(MergeFleetsTest, ASelfReportedDeviationOrFlagIsNotKept) {
  // b's entry of x carries b's view (flagged, a deviation); x is not counted
  // in the merged fleet (DISCONNECTED everywhere): both must be cleared.
  const v1::Fleet a = MakeFleet({MakeNode("y", kConnected, 100, 0)});
  v1::Fleet b = MakeFleet({MakeNode("x", kConnected, 100, 5000)});
  b.mutable_nodes(0)->set_connection(kDisconnected);
  ASSERT_TRUE(b.nodes(0).flagged());
  const v1::Fleet m = Merge({&a, &b});
  EXPECT_FALSE(Named(m, "x").flagged());
  EXPECT_FALSE(Named(m, "x").has_deviation());
  EXPECT_EQ(m.flagged_count(), 0u);
}

TEST(MergeFleetsTest, DifferentThresholdsUseTheSmallestAndSaySo) {
  const v1::Fleet a = MakeFleet({MakeNode("x", kConnected, 100, 1500)}, 200,
                                absl::Milliseconds(2));
  const v1::Fleet b = MakeFleet({MakeNode("y", kConnected, 100, 0)}, 200,
                                absl::Milliseconds(1));
  std::vector<std::string> notes;
  const v1::Fleet m = Merge({&a, &b}, &notes);
  EXPECT_EQ(FromProto(m.threshold()), absl::Milliseconds(1));
  EXPECT_TRUE(Named(m, "x").flagged());  // 1.5 ms > 1 ms; a alone: not
  EXPECT_THAT(notes, ElementsAre(HasSubstr(
                         "thresholds differ (ctl-a:7123 2ms, ctl-b:7123 1ms): "
                         "nodes are flagged against the smallest, 1ms")));
  std::vector<std::string> none;
  Merge({&b, &b}, &none);
  EXPECT_THAT(none, IsEmpty());
}

TEST(MergeFleetsTest, ADuplicatedNameComesWithAllItsEntriesFromOneController) {
  // a holds two live agents named "dup" (duplicate_name); b one older entry.
  v1::Fleet a = MakeFleet({MakeNode("dup", kConnected, 100, 10),
                           MakeNode("dup", kConnected, 101, 20)});
  a.mutable_nodes(0)->set_duplicate_name(true);
  a.mutable_nodes(1)->set_duplicate_name(true);
  const v1::Fleet b = MakeFleet({MakeNode("dup", kConnected, 99, 30)});
  const v1::Fleet m = Merge({&a, &b});
  ASSERT_THAT(m.nodes(), SizeIs(2));
  EXPECT_EQ(OffsetUs(m.nodes(0)), 10);
  EXPECT_EQ(OffsetUs(m.nodes(1)), 20);
  EXPECT_TRUE(m.nodes(0).duplicate_name());
}

TEST(MergeFleetsTest, OneFleetIsPassedThroughUnchanged) {
  v1::Fleet a = MakeFleet({MakeNode("x", kConnected, 100, 100)});
  a.set_flagged_count(42);  // whatever the controller said stays
  const v1::Fleet m = Merge({&a});
  EXPECT_EQ(m.SerializeAsString(), a.SerializeAsString());
}

// The crosscheck's fleet-wide values survive a merge, from the freshest
// snapshot that has them; the flagged count is recounted over the merged
// nodes. A merge that dropped them (ComputeFleetStats does not set them)
// leaves fleet_bound and mesh_skew_p99 unset; one that took the first
// controller's says 9 ms; one that kept a controller's count says 2.
TEST(MergeFleetsTest, CrosscheckValuesComeFromTheFreshestSnapshot) {
  v1::Fleet a = MakeFleet({MakeNode("x", kConnected, 100, 100),
                           MakeNode("y", kConnected, 100, 200)},
                          /*as_of=*/200);
  v1::Fleet b = MakeFleet(
      {MakeNode("x", kConnected, 101, 100), MakeNode("y", kConnected, 99, 200)},
      /*as_of=*/201);
  SetDuration(absl::Milliseconds(9), a.mutable_fleet_bound());
  SetDuration(absl::Milliseconds(9), a.mutable_mesh_skew_p50());
  SetDuration(absl::Milliseconds(9), a.mutable_mesh_skew_p99());
  SetDuration(absl::Milliseconds(9), a.mutable_mesh_skew_max());
  a.set_crosscheck_flagged_count(2);
  SetDuration(absl::Microseconds(250), b.mutable_fleet_bound());
  SetDuration(absl::Microseconds(40), b.mutable_mesh_skew_p50());
  SetDuration(absl::Microseconds(90), b.mutable_mesh_skew_p99());
  SetDuration(absl::Microseconds(95), b.mutable_mesh_skew_max());
  b.set_crosscheck_flagged_count(0);
  // x's freshest entry is b's and flags it; y's is a's and does not.
  b.mutable_nodes(0)->mutable_crosscheck()->set_flagged(true);
  a.mutable_nodes(0)->mutable_crosscheck()->set_flagged(false);
  a.mutable_nodes(1)->mutable_crosscheck()->set_flagged(false);
  b.mutable_nodes(1)->mutable_crosscheck()->set_flagged(true);  // older entry
  const v1::Fleet m = Merge({&a, &b});
  EXPECT_EQ(FromProto(m.fleet_bound()), absl::Microseconds(250));
  EXPECT_EQ(FromProto(m.mesh_skew_p50()), absl::Microseconds(40));
  EXPECT_EQ(FromProto(m.mesh_skew_p99()), absl::Microseconds(90));
  EXPECT_EQ(FromProto(m.mesh_skew_max()), absl::Microseconds(95));
  EXPECT_TRUE(Named(m, "x").crosscheck().flagged());
  EXPECT_FALSE(Named(m, "y").crosscheck().flagged());
  EXPECT_EQ(m.crosscheck_flagged_count(), 1u);
  // The fresher controller is older (no crosscheck): the other one's values
  // are kept rather than lost.
  b.clear_fleet_bound();
  b.clear_mesh_skew_p50();
  b.clear_mesh_skew_p99();
  b.clear_mesh_skew_max();
  const v1::Fleet m2 = Merge({&a, &b});
  EXPECT_EQ(FromProto(m2.fleet_bound()), absl::Milliseconds(9));
  EXPECT_EQ(FromProto(m2.mesh_skew_p99()), absl::Milliseconds(9));
  // Neither has them: none invented.
  a.clear_fleet_bound();
  a.clear_mesh_skew_p99();
  const v1::Fleet m3 = Merge({&a, &b});
  EXPECT_FALSE(m3.has_mesh_skew_p99());
}

v1::CrosscheckResponse Solved(double as_of, const std::string& reference) {
  v1::CrosscheckResponse r;
  if (as_of >= 0) SetTimestamp(kT0 + absl::Seconds(as_of), r.mutable_as_of());
  r.set_reference(reference);
  return r;
}

TEST(PickCrosscheckTest, FirstControllerWithASolveElseFirstAnswer) {
  const std::vector<std::string> at = {"a:1", "b:1", "c:1"};
  // a has no solve yet, b is older (UNIMPLEMENTED), c has one: c.
  std::vector<v1::CrosscheckResponse> r = {Solved(-1, ""), {}, Solved(5, "c")};
  CrosscheckPick p = PickCrosscheck(
      at, {absl::OkStatus(), absl::UnimplementedError("x"), absl::OkStatus()},
      &r);
  ASSERT_THAT(p.status, IsOk());
  EXPECT_EQ(p.address, "c:1");
  EXPECT_EQ(p.index, 2u);
  EXPECT_EQ(p.response.reference(), "c");
  EXPECT_THAT(p.without_rpc, ElementsAre("b:1"));
  // Nobody has a solve: the first that answered, saying so.
  r = {{}, Solved(-1, "first"), Solved(-1, "third")};
  p = PickCrosscheck(
      at, {absl::UnavailableError("down"), absl::OkStatus(), absl::OkStatus()},
      &r);
  ASSERT_THAT(p.status, IsOk());
  EXPECT_EQ(p.address, "b:1");
  EXPECT_FALSE(p.response.has_as_of());
}

TEST(PickCrosscheckTest, AnOlderControllerGetsAClearMessage) {
  std::vector<v1::CrosscheckResponse> r(1);
  CrosscheckPick p = PickCrosscheck(
      {"a:1"}, {absl::UnimplementedError("Method not found")}, &r);
  EXPECT_THAT(
      p.status,
      StatusIs(absl::StatusCode::kUnimplemented,
               HasSubstr("the controller at a:1 has no crosscheck "
                         "(FleetService.Crosscheck is UNIMPLEMENTED)")));
  EXPECT_THAT(p.status, StatusIs(absl::StatusCode::kUnimplemented,
                                 HasSubstr("upgrade it")));
  // One old, one down: the outage is the likelier story.
  r.resize(2);
  p = PickCrosscheck({"a:1", "b:1"},
                     {absl::UnimplementedError("x"),
                      absl::UnavailableError("connection refused")},
                     &r);
  EXPECT_THAT(p.status, StatusIs(absl::StatusCode::kUnavailable,
                                 HasSubstr("connection refused")));
}

v1::AuditRecord Record(const std::string& id, double at, int64_t row) {
  v1::AuditRecord r;
  r.set_id(row);
  r.set_request_id(id);
  r.set_requested_by("user:alice (operator)");
  SetTimestamp(kT0 + absl::Seconds(at), r.mutable_time());
  return r;
}

TEST(MergeAuditsTest, NewestFirstOnceEachAtMostLimit) {
  v1::AuditResponse a, b;
  *a.add_records() = Record("resync-3", 30, 7);
  *a.add_records() = Record("resync-1", 10, 5);
  *b.add_records() = Record("resync-2", 20, 1);
  *b.add_records() = Record("resync-1", 10, 9);  // the same, another row id
  v1::AuditRecord other = Record("resync-1", 11, 2);  // same id, other request
  *b.add_records() = other;
  const v1::AuditResponse m = MergeAudits({a, b}, 0);
  std::vector<std::string> order;
  for (const v1::AuditRecord& r : m.records()) {
    order.push_back(absl::StrCat(
        r.request_id(), "@",
        absl::ToUnixSeconds(FromProto(r.time())) - absl::ToUnixSeconds(kT0)));
  }
  EXPECT_THAT(order, ElementsAre("resync-3@30", "resync-2@20", "resync-1@11",
                                 "resync-1@10"));
  EXPECT_THAT(MergeAudits({a, b}, 2).records(), SizeIs(2));
}

// A fake controller for resyncs: the nodes it holds a stream of, the nodes it
// only knows (DISCONNECTED), their labels; records every node it asks.
struct FakeController {
  std::set<std::string> connected;
  std::set<std::string> known;              // also DISCONNECTED ones
  std::map<std::string, std::string> rack;  // node -> label rack=VALUE
  absl::Status fails;                       // non-OK: every call fails
  std::vector<std::string> asked;
  int calls = 0;

  v1::ResyncResponse Resync(const v1::ResyncRequest& request) {
    ++calls;
    std::set<std::string> selected;
    const v1::NodeSelector& s = request.selector();
    for (const std::string& n : s.names()) selected.insert(n);
    for (const std::string& n : known) {
      if (s.all()) selected.insert(n);
      auto it = rack.find(n);
      if (!s.label().empty() && it != rack.end() &&
          s.label() == "rack=" + it->second) {
        selected.insert(n);
      }
    }
    v1::ResyncResponse out;
    out.set_request_id(absl::StrCat("resync-", calls));
    for (const std::string& n : selected) {
      v1::NodeResyncResult* r = out.add_results();
      r->set_node(n);
      if (connected.count(n) > 0) {
        asked.push_back(n);
        r->mutable_result()->set_outcome(v1::RESYNC_OUTCOME_OK);
      } else {
        r->mutable_result()->set_outcome(v1::RESYNC_OUTCOME_NOT_CONNECTED);
      }
    }
    return out;
  }
  v1::Fleet Fleet() const {
    v1::Fleet f;
    for (const std::string& n : known) {
      v1::Node* node = f.add_nodes();
      node->set_name(n);
      node->set_connection(connected.count(n) > 0 ? kConnected : kDisconnected);
      auto it = rack.find(n);
      if (it != rack.end())
        (*node->mutable_hello()->mutable_labels())["rack"] = it->second;
    }
    return f;
  }
};

struct Outcome {
  absl::StatusOr<v1::ResyncResponse> response;
  std::vector<std::string> warnings;
};

Outcome ResyncVia(std::vector<FakeController>& controllers,
                  const v1::ResyncRequest& request) {
  std::vector<std::string> addresses;
  for (size_t i = 0; i < controllers.size(); ++i) {
    addresses.push_back(
        absl::StrCat("ctl-", std::string(1, static_cast<char>('a' + i)), ":1"));
  }
  Outcome out;
  ResyncCalls calls;
  calls.resync =
      [&](size_t i,
          const v1::ResyncRequest& r) -> absl::StatusOr<v1::ResyncResponse> {
    if (!controllers[i].fails.ok()) return controllers[i].fails;
    return controllers[i].Resync(r);
  };
  calls.fleet = [&](size_t i) -> absl::StatusOr<v1::Fleet> {
    if (!controllers[i].fails.ok()) return controllers[i].fails;
    return controllers[i].Fleet();
  };
  calls.warn = [&](const std::string& w) { out.warnings.push_back(w); };
  out.response = ResyncThroughControllers(addresses, request, calls);
  return out;
}

// "node outcome via controller" for each result.
std::vector<std::string> Rows(const v1::ResyncResponse& r) {
  std::vector<std::string> rows;
  for (const v1::NodeResyncResult& n : r.results()) {
    rows.push_back(absl::StrCat(
        n.node(), " ", v1::ResyncOutcome_Name(n.result().outcome()).substr(15),
        " ", n.controller()));
  }
  return rows;
}

// Every node asked at most once, over all controllers.
void ExpectNoneAskedTwice(const std::vector<FakeController>& controllers) {
  std::map<std::string, int> times;
  for (const FakeController& c : controllers) {
    for (const std::string& n : c.asked) ++times[n];
  }
  for (const auto& [node, n] : times) EXPECT_EQ(n, 1) << node;
}

TEST(ResyncThroughControllersTest, NamesGoToTheFirstControllerHoldingThem) {
  std::vector<FakeController> c(2);
  c[0].connected = {"n1"};
  c[0].known = {"n1", "n2"};
  c[1].connected = {"n2", "n1"};
  c[1].known = {"n1", "n2"};
  v1::ResyncRequest request;
  for (const char* n : {"n1", "n2", "ghost"})
    request.mutable_selector()->add_names(n);
  const Outcome o = ResyncVia(c, request);
  ASSERT_THAT(o.response, IsOk());
  EXPECT_THAT(Rows(*o.response), ElementsAre("ghost NOT_CONNECTED ctl-a:1",
                                             "n1 OK ctl-a:1", "n2 OK ctl-b:1"));
  EXPECT_THAT(c[0].asked, ElementsAre("n1"));
  EXPECT_THAT(c[1].asked, ElementsAre("n2"));  // not n1 again
  ExpectNoneAskedTwice(c);
  EXPECT_EQ(o.response->request_id(), "resync-1,resync-1");
  EXPECT_THAT(o.response->results(0).result().error(),
              HasSubstr("not connected to any controller (ctl-a:1, ctl-b:1)"));
  EXPECT_THAT(o.warnings, IsEmpty());
}

TEST(ResyncThroughControllersTest, AllReachesNodesOnlyALaterControllerKnows) {
  // n3 never connected to a (a has no record of it); n2 is DISCONNECTED on a.
  std::vector<FakeController> c(2);
  c[0].connected = {"n1"};
  c[0].known = {"n1", "n2"};
  c[1].connected = {"n1", "n2", "n3"};
  c[1].known = {"n1", "n2", "n3"};
  v1::ResyncRequest request;
  request.mutable_selector()->set_all(true);
  const Outcome o = ResyncVia(c, request);
  ASSERT_THAT(o.response, IsOk());
  EXPECT_THAT(Rows(*o.response),
              ElementsAre("n1 OK ctl-a:1", "n2 OK ctl-b:1", "n3 OK ctl-b:1"));
  ExpectNoneAskedTwice(c);
}

TEST(ResyncThroughControllersTest, LabelSelectsOnEveryController) {
  std::vector<FakeController> c(2);
  c[0].connected = {"a1"};
  c[0].known = {"a1", "b1"};
  c[0].rack = {{"a1", "r1"}, {"b1", "r2"}};
  c[1].connected = {"a1", "a2", "b1"};
  c[1].known = {"a1", "a2", "b1"};
  c[1].rack = {{"a1", "r1"}, {"a2", "r1"}, {"b1", "r2"}};
  v1::ResyncRequest request;
  request.mutable_selector()->set_label("rack=r1");
  const Outcome o = ResyncVia(c, request);
  ASSERT_THAT(o.response, IsOk());
  EXPECT_THAT(Rows(*o.response), ElementsAre("a1 OK ctl-a:1", "a2 OK ctl-b:1"));
  ExpectNoneAskedTwice(c);
}

TEST(ResyncThroughControllersTest, ADeadControllerIsNamedAndSkipped) {
  std::vector<FakeController> c(2);
  c[0].fails = absl::UnavailableError("failed to connect to all addresses");
  c[1].connected = {"n1", "n2"};
  c[1].known = {"n1", "n2"};
  v1::ResyncRequest request;
  request.mutable_selector()->set_all(true);
  const Outcome o = ResyncVia(c, request);
  ASSERT_THAT(o.response, IsOk());
  EXPECT_THAT(Rows(*o.response), ElementsAre("n1 OK ctl-b:1", "n2 OK ctl-b:1"));
  EXPECT_THAT(o.warnings,
              ElementsAre("controller ctl-a:1 did not answer: failed to "
                          "connect to all addresses"));
}

TEST(ResyncThroughControllersTest, ATimeoutStopsRatherThanAskTwice) {
  // a may have asked the nodes before its deadline passed: b must not.
  std::vector<FakeController> c(2);
  c[0].fails = absl::DeadlineExceededError("Deadline Exceeded");
  c[1].connected = {"n1"};
  c[1].known = {"n1"};
  v1::ResyncRequest request;
  request.mutable_selector()->add_names("n1");
  const Outcome o = ResyncVia(c, request);
  EXPECT_THAT(o.response, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                   HasSubstr("not asked again")));
  EXPECT_EQ(c[1].calls, 0);
}

TEST(ResyncThroughControllersTest, NoControllerAnsweringIsAnError) {
  std::vector<FakeController> c(2);
  c[0].fails = absl::UnavailableError("refused");
  c[1].fails = absl::UnavailableError("refused");
  v1::ResyncRequest request;
  request.mutable_selector()->add_names("n1");
  EXPECT_THAT(ResyncVia(c, request).response,
              StatusIs(absl::StatusCode::kUnavailable,
                       "no controller answered (ctl-a:1, ctl-b:1)"));
}

TEST(ParseControllerListTest, OneOrSeveralCheckedAddresses) {
  EXPECT_THAT(ParseControllerList("127.0.0.1:7123"),
              IsOkAndHolds(ElementsAre("127.0.0.1:7123")));
  EXPECT_THAT(ParseControllerList("a:1, b:2,[::1]:3"),
              IsOkAndHolds(ElementsAre("a:1", "b:2", "[::1]:3")));
  EXPECT_THAT(
      ParseControllerList("a:1,,b:2"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty address")));
  EXPECT_THAT(ParseControllerList("a:1,A:1"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--controller: A:1 is given twice"));
  EXPECT_THAT(ParseControllerList("a:1,b:99999"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("99999 is not a port")));
  EXPECT_THAT(
      ParseControllerList("a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 8")));
}

// gRPC takes any string as a target and fails only on the first call ("DNS
// resolution failed for [:::]:1"): the hosts are checked up front, naming
// `what` (the flag or $NTPFLEET_CONTROLLER).
TEST(ParseControllerListTest, HostsAreNamesOrAddresses) {
  EXPECT_THAT(
      ParseControllerList(
          "[fe80::1%eth0]:7123,dns:///ctl.example:7123,[::ffff:1.2.3.4]:1"),
      IsOkAndHolds(ElementsAre("[fe80::1%eth0]:7123", "dns:///ctl.example:7123",
                               "[::ffff:1.2.3.4]:1")));
  EXPECT_THAT(ParseControllerList("[:::]:1"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("':::' is not an IPv6 address")));
  EXPECT_THAT(ParseControllerList("[ctl.example]:1"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("a host name or IPv4 address goes without")));
  EXPECT_THAT(ParseControllerList("a:1,a b:1", "$NTPFLEET_CONTROLLER"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "$NTPFLEET_CONTROLLER: 'a b:1': 'a b' is not a host "
                       "name or IPv4 address"));
}

}  // namespace
}  // namespace ntpfleet::ctl
