// controller/crosscheck: the probe mesh's invariants, and the solver on
// synthetic fleets whose true clock offsets are known (fixed seeds).
#include "controller/crosscheck.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet::controller::crosscheck {
namespace {

using ::testing::HasSubstr;

std::vector<MeshNode> Nodes(int n, const std::string& prefix = "node") {
  std::vector<MeshNode> nodes;
  for (int i = 0; i < n; ++i) {
    nodes.push_back({absl::StrCat(prefix, i),
                     absl::StrCat("10.0.", i / 250, ".", i % 250 + 1, ":123")});
  }
  return nodes;
}

// Every invariant of AssignMesh; returns the number of ordered edges.
size_t ExpectValidMesh(const Mesh& mesh, const std::vector<MeshNode>& nodes,
                       int k) {
  const int n = static_cast<int>(nodes.size());
  const int want = std::min(k, n - 1);
  std::map<std::string, std::string> address;
  for (const MeshNode& m : nodes) address[m.name] = m.address;
  std::map<std::string, int> in_degree;
  std::set<std::pair<std::string, std::string>> edges;
  size_t count = 0;
  for (const auto& [from, targets] : mesh) {
    EXPECT_TRUE(address.count(from)) << from;
    // A broken mesh gives a node fewer or more targets than K.
    EXPECT_EQ(static_cast<int>(targets.size()), want) << from;
    for (const MeshTarget& t : targets) {
      EXPECT_NE(t.node, from) << "a node probing itself";
      EXPECT_EQ(t.address, address[t.node]) << t.node;
      // A repeated ordered edge would make a prober ask one target twice per
      // interval.
      EXPECT_TRUE(edges.insert({from, t.node}).second)
          << from << "->" << t.node << " twice";
      ++in_degree[t.node];
      ++count;
    }
  }
  if (n >= 2 && k > 0) {
    EXPECT_EQ(static_cast<int>(mesh.size()), n);
    for (const MeshNode& m : nodes) {
      // Every node is probed by at least K others (the "at least 3").
      EXPECT_GE(in_degree[m.name], want) << m.name;
    }
  }
  return count;
}

TEST(MeshTest, EveryNodeProbesKAndIsProbedByAtLeastKForManySizes) {
  for (int k = 1; k <= 4; ++k) {
    for (int n = 0; n <= 60; ++n) {
      for (uint64_t seed : {1, 2, 99}) {
        SCOPED_TRACE(absl::StrCat("n=", n, " k=", k, " seed=", seed));
        const std::vector<MeshNode> nodes = Nodes(n);
        ExpectValidMesh(AssignMesh(nodes, k, seed), nodes, k);
      }
    }
  }
}

TEST(MeshTest, SmallFleetEveryNodeProbesEveryOther) {
  const std::vector<MeshNode> nodes = Nodes(4);
  const Mesh mesh = AssignMesh(nodes, 3, 7);
  // n <= K+1: the complete graph, n (n - 1) ordered edges.
  EXPECT_EQ(ExpectValidMesh(mesh, nodes, 3), 12u);
  EXPECT_TRUE(AssignMesh(Nodes(1), 3, 7).empty());
  EXPECT_TRUE(AssignMesh(Nodes(10), 0, 7).empty()) << "--crosscheck-probes 0";
}

TEST(MeshTest, DeterministicForSeedAndNamesWhateverTheirOrder) {
  std::vector<MeshNode> nodes = Nodes(200);
  const Mesh a = AssignMesh(nodes, 3, 42);
  std::reverse(nodes.begin(), nodes.end());
  std::mt19937 rng(5);
  std::shuffle(nodes.begin(), nodes.end(), rng);
  EXPECT_EQ(AssignMesh(nodes, 3, 42), a);
  // Another seed gives another mesh (a mesh ignoring its seed would not).
  EXPECT_NE(AssignMesh(nodes, 3, 43), a);
}

TEST(MeshTest, JoiningNodeChangesFewAssignments) {
  std::vector<size_t> changes;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    std::vector<MeshNode> nodes = Nodes(1000);
    const Mesh before = AssignMesh(nodes, 3, seed);
    nodes.push_back({"newcomer", "10.9.9.9:123"});
    const Mesh after = AssignMesh(nodes, 3, seed);
    ExpectValidMesh(after, nodes, 3);
    size_t changed = 0;
    for (const auto& [from, targets] : before) {
      if (after.at(from) != targets) ++changed;
    }
    changes.push_back(changed);
  }
  std::sort(changes.begin(), changes.end());
  // The newcomer lands at one place in each of the K orders: its predecessor
  // in each changes target (3). A mesh redrawn from scratch on every change
  // would change nearly all 1000; a redraw of one order about 1000 / 3.
  EXPECT_LE(changes[changes.size() / 2], 3u) << "median of 10 seeds";
  EXPECT_LE(changes.back(), 400u);
}

TEST(MeshTest, ProbeAddressFromTheStreamsPeer) {
  EXPECT_EQ(ProbeAddress("ipv4:10.0.0.7:5123", 123), "10.0.0.7:123");
  EXPECT_EQ(ProbeAddress("ipv6:[::1]:5123", 11123), "[::1]:11123");
  EXPECT_EQ(ProbeAddress("ipv6:%5B2001:db8::1%5D:5123", 123),
            "[2001:db8::1]:123");
  EXPECT_EQ(ProbeAddress("ipv6:[::ffff:192.0.2.1]:5123", 123), "192.0.2.1:123");
  EXPECT_EQ(ProbeAddress("ipv4:10.0.0.7:5123", 0), std::nullopt);
  EXPECT_EQ(ProbeAddress("unix:/run/x.sock", 123), std::nullopt);
  EXPECT_EQ(ProbeAddress("ipv4:host.example:5123", 123), std::nullopt);
  EXPECT_EQ(ProbeAddress("ipv6:[fe80::1%eth0]:5123", 123), std::nullopt);
}

// ---------------------------------------------------------------------------
// The solver.

constexpr double kUs = 1e-6;
constexpr double kMs = 1e-3;

// A fleet with known true offsets y (reference minus local, seconds): node 0
// is the server (y = 0) when `server`; each probe's theta is the truth plus
// an error uniform within +-delay/2 (the most a path asymmetry can do), its
// delay uniform in [min_delay, max_delay].
struct Fleet {
  std::vector<double> truth;
  SolveInput input;
  double noise_rms = 0;
};

Fleet MakeFleet(int n, int k, uint32_t seed, bool server,
                double spread = 2 * kMs, double min_delay = 50 * kUs,
                double max_delay = 500 * kUs, bool noise = true) {
  Fleet f;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> offset(-spread, spread);
  std::uniform_real_distribution<double> delay(min_delay, max_delay);
  std::uniform_real_distribution<double> unit(-1, 1);
  std::vector<MeshNode> mesh_nodes = Nodes(n);
  f.truth.resize(n);
  for (int i = 0; i < n; ++i) {
    f.truth[i] = server && i == 0 ? 0 : offset(rng);
    NodeInput in;
    in.name = mesh_nodes[i].name;
    // An honest report: within 10 us of the truth, bound 100 us.
    in.reported = f.truth[i] + unit(rng) * 10 * kUs;
    in.bound = 100 * kUs;
    in.state = v1::SYNC_STATE_SYNCHRONISED;
    in.server = server && i == 0;
    f.input.nodes.push_back(in);
  }
  std::map<std::string, int> index;
  for (int i = 0; i < n; ++i) index[mesh_nodes[i].name] = i;
  double sum2 = 0;
  for (const auto& [from, targets] : AssignMesh(mesh_nodes, k, seed)) {
    for (const MeshTarget& t : targets) {
      const int i = index[from];
      const int j = index[t.node];
      Edge e;
      e.from = from;
      e.to = t.node;
      e.delay = delay(rng);
      const double err = noise ? unit(rng) * e.delay / 2 : 0;
      sum2 += err * err;
      e.theta = f.truth[i] - f.truth[j] + err;  // theta_ij = y_i - y_j
      e.measured_at = absl::FromUnixSeconds(1700000000);
      f.input.edges.push_back(e);
    }
  }
  f.noise_rms = std::sqrt(sum2 / f.input.edges.size());
  f.input.as_of = absl::FromUnixSeconds(1700000000);
  return f;
}

// Recomputes the edges of node `i` as if its clock were `delta` further
// behind (its true offset y_i grows by delta): theta_ij grows by delta on
// its own probes, theta_ji shrinks by delta on probes of it.
void MoveClock(Fleet& f, int i, double delta) {
  f.truth[i] += delta;
  const std::string& name = f.input.nodes[i].name;
  for (Edge& e : f.input.edges) {
    if (e.from == name) e.theta += delta;
    if (e.to == name) e.theta -= delta;
  }
}

TEST(SolverTest, NoiselessMeshRecoversTheTruthExactly) {
  Fleet f = MakeFleet(50, 3, 11, /*server=*/true, 2 * kMs, 50 * kUs, 500 * kUs,
                      /*noise=*/false);
  const Solution s = Solve(f.input);
  EXPECT_EQ(s.reference, "node0");
  EXPECT_EQ(s.components, 1);
  EXPECT_EQ(s.measured_count, 50);
  for (int i = 0; i < 50; ++i) {
    // A sign error (theta = y_j - y_i) gives |2 y_i|, up to 4 ms.
    EXPECT_NEAR(s.nodes[i].measured_offset, f.truth[i], 1e-12) << i;
  }
  // Loops close exactly without noise; a wrong solution leaves ms residuals.
  EXPECT_LT(s.closure_rms, 1e-12);
}

TEST(SolverTest, NoisyMeshWithinAFewUncertaintiesOfTheTruth) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    Fleet f = MakeFleet(300, 3, seed, /*server=*/true);
    const Solution s = Solve(f.input);
    ASSERT_EQ(s.measured_count, 300);
    double worst = 0;  // in uncertainties
    for (int i = 1; i < 300; ++i) {
      const NodeResult& r = s.nodes[i];
      ASSERT_GT(r.uncertainty, 0) << i;
      // Each edge's error is taken as half its delay (<= 250 us here), and a
      // node has >= 6 edges: its uncertainty is well under 250 us.
      EXPECT_LT(r.uncertainty, 250 * kUs) << i;
      worst = std::max(
          worst, std::abs(r.measured_offset - f.truth[i]) / r.uncertainty);
    }
    // Errors are uniform within +-delay/2, so sigma = delay/2 overstates
    // them: every node well within 4 sigma. A solver that ignored the
    // weights, mixed up a sign or an index is off by ~ms = tens of sigma.
    EXPECT_LT(worst, 4.0) << "seed " << seed;
    EXPECT_EQ(s.nodes[0].measured_offset, 0) << "the server is the gauge";
    EXPECT_EQ(s.nodes[0].uncertainty, 0);
    EXPECT_EQ(s.nodes[0].reason, "the reference");
    // The honest fleet: nobody flagged (a flag rule without the bound, or
    // with the sign of the disagreement wrong, flags many).
    EXPECT_EQ(s.flagged_count, 0) << "seed " << seed;
  }
}

TEST(SolverTest, LoopsCloseToTheNoise) {
  Fleet f = MakeFleet(300, 3, 5, /*server=*/true);
  const Solution s = Solve(f.input);
  // Least squares fits n-1 of 3n degrees of freedom: residuals are a bit
  // smaller than the noise, never larger. A solution that does not fit the
  // edges (all zeros, a sign error) leaves the true differences (~ms) in the
  // residuals, far above the noise (~100 us).
  EXPECT_LE(s.closure_rms, f.noise_rms);
  EXPECT_GE(s.closure_rms, 0.5 * f.noise_rms);
  double sum2 = 0;
  for (const EdgeResult& e : s.edges) sum2 += e.residual * e.residual;
  EXPECT_NEAR(std::sqrt(sum2 / s.edges.size()), s.closure_rms, 1e-15);
  EXPECT_EQ(s.edges.size(), 900u);
}

TEST(SolverTest, NodeReportingFiveMillisecondsOffIsFlaggedAndNoOther) {
  Fleet f = MakeFleet(200, 3, 21, /*server=*/true);
  // --sim-report-bias 5ms: the report moves, the clock (and every probe of
  // it) does not.
  *f.input.nodes[17].reported += 5 * kMs;
  const Solution s = Solve(f.input);
  EXPECT_TRUE(s.nodes[17].flagged) << s.nodes[17].reason;
  // The disagreement is the bias, to within the measurement's error; a
  // solver that used reports as measurements would see none.
  EXPECT_NEAR(s.nodes[17].disagreement, 5 * kMs,
              10 * kUs + 4 * s.nodes[17].uncertainty);
  EXPECT_NE(s.nodes[17].reason.find("beyond its error bound"),
            std::string::npos);
  EXPECT_EQ(s.flagged_count, 1) << "only the liar";
  for (int i = 0; i < 200; ++i) {
    if (i != 17) {
      EXPECT_FALSE(s.nodes[i].flagged) << i << s.nodes[i].reason;
    }
  }
}

TEST(SolverTest, NodeWhoseClockWasMovedIsFlagged) {
  Fleet f = MakeFleet(200, 3, 22, /*server=*/true);
  // Someone stepped node 23's clock back by 5 ms; its report still says
  // where it was (no agent noticed). The probes see the new clock.
  MoveClock(f, 23, 5 * kMs);
  const Solution s = Solve(f.input);
  EXPECT_TRUE(s.nodes[23].flagged);
  EXPECT_NEAR(s.nodes[23].measured_offset, f.truth[23],
              4 * s.nodes[23].uncertainty);
  EXPECT_NEAR(s.nodes[23].disagreement, -5 * kMs,
              10 * kUs + 4 * s.nodes[23].uncertainty);
  EXPECT_EQ(s.flagged_count, 1);
}

// Probes that may predate a node's sync-state change (it stepped or finished
// slewing since) say nothing about the clock its report now describes: left
// out, so an honest node that just synchronised is not flagged on the probes
// of its clock from before. A solver that used them flags node 23 (its
// measured offset is 5 ms from its report) and any syncing node.
TEST(SolverTest, ProbesPredatingAStateChangeAreLeftOutAndSyncingIsNotJudged) {
  Fleet f = MakeFleet(40, 3, 31, /*server=*/true);
  const absl::Time received = absl::FromUnixSeconds(1700000100);
  for (Edge& e : f.input.edges) e.received_at = received;
  // Node 23's clock was 5 ms off when probed; it has since stepped and now
  // reports (truthfully) where its clock is now.
  MoveClock(f, 23, 5 * kMs);
  f.input.nodes[23].state_since = received - kProbeReportDelay / 2;
  // Node 7 is syncing: not judged, whatever its probes say.
  f.input.nodes[7].state = v1::SYNC_STATE_SYNCING;
  *f.input.nodes[7].reported += 50 * kMs;
  const Solution s = Solve(f.input);
  EXPECT_EQ(s.edges_predating_state, 6);  // node 23's 3 probes and 3 probers
  EXPECT_FALSE(s.nodes[23].flagged) << s.nodes[23].reason;
  EXPECT_FALSE(s.nodes[23].measured) << "no edge of node 23 should be used";
  EXPECT_FALSE(s.nodes[7].judged);
  EXPECT_FALSE(s.nodes[7].flagged);
  EXPECT_THAT(s.nodes[7].reason, HasSubstr("syncing"));
  EXPECT_EQ(s.flagged_count, 0);

  // Once the state is older than a report's delay, its edges count again.
  f.input.nodes[23].state_since = received - kProbeReportDelay;
  EXPECT_TRUE(Solve(f.input).nodes[23].flagged);
}

// One prober that lies about its target (5 ms off, with a near-zero delay
// that would make its edge outweigh every honest one) pulls the target's
// solution beyond its bound; it is one witness, and one is not enough. A
// solver without the witness rule flags the honest target (asserted below);
// with the sigma floor at a quarter of the median instead of the median, the
// edge dragged the neighbours too and seven nodes were flagged (the liar
// prober is not flagged either way: its own report is true).
TEST(SolverTest, OneLyingProberCannotFrameItsTarget) {
  Fleet f = MakeFleet(40, 3, 41, /*server=*/true);
  Edge* lie = nullptr;
  for (Edge& e : f.input.edges) {
    if (e.from == "node7") {
      lie = &e;
      break;
    }
  }
  ASSERT_NE(lie, nullptr);
  lie->theta -= 5 * kMs;  // says its target is 5 ms further ahead
  lie->delay = 1e-9;      // and that it measured it over a perfect path
  const std::string target = lie->to;
  const Solution s = Solve(f.input);
  for (const NodeResult& r : s.nodes) {
    EXPECT_FALSE(r.flagged) << r.name << ": " << r.reason;
    if (r.name == target) {
      // The least-squares rule alone would flag it: the witnesses save it.
      EXPECT_GT(std::abs(r.disagreement), *r.bound + 3 * r.uncertainty)
          << "the lie should have moved the solution";
      EXPECT_THAT(r.reason, HasSubstr("fewer than two witnesses"));
    }
  }
  // Two probers agreeing do flag: the target's clock really moved.
  Fleet g = MakeFleet(40, 3, 41, /*server=*/true);
  int idx = -1;
  for (size_t i = 0; i < g.input.nodes.size(); ++i) {
    if (g.input.nodes[i].name == target) idx = static_cast<int>(i);
  }
  ASSERT_GE(idx, 0);
  MoveClock(g, idx, 5 * kMs);
  EXPECT_TRUE(Solve(g.input).nodes[idx].flagged);
}

// Two nodes cut off from the reference (their other probes not yet in: left
// out after a state change) measure only each other. On the median of their
// two reports one's 5 ms lie is split between them: both looked 2.5 ms off
// and both were flagged (seen in tests/integration/crosscheck_test). Too few
// reports to tell which is wrong: neither is judged.
TEST(SolverTest, TwoNodesOnTheMedianGaugeAreNotJudged) {
  SolveInput in;
  in.nodes = {{"a", 0.0, 50e-6, v1::SYNC_STATE_SYNCHRONISED, false},
              {"b", 5e-3, 50e-6, v1::SYNC_STATE_SYNCHRONISED, false}};
  in.edges = {{"a", "b", 0.0, 40 * kUs, absl::InfinitePast()},
              {"b", "a", 0.0, 40 * kUs, absl::InfinitePast()}};
  const Solution s = Solve(in);
  EXPECT_EQ(s.flagged_count, 0);
  for (const NodeResult& r : s.nodes) {
    EXPECT_TRUE(r.measured) << r.name;
    EXPECT_FALSE(r.judged) << r.name;
    EXPECT_THAT(r.reason, HasSubstr("at least 3 needed")) << r.name;
  }
}

TEST(SolverTest, MedianGaugeWithoutAServer) {
  // The fleet follows an outside reference (UTC): every true offset is
  // 3 ms plus a spread, and the reports say so. With no server in the mesh
  // the probes fix only differences; the median gauge lines them up with the
  // reports. A gauge that only made the mean zero would be 3 ms off.
  Fleet f = MakeFleet(100, 3, 31, /*server=*/false);
  for (int i = 0; i < 100; ++i) {
    MoveClock(f, i, 3 * kMs);
    *f.input.nodes[i].reported += 3 * kMs;
  }
  const Solution s = Solve(f.input);
  EXPECT_EQ(s.reference, "");
  for (int i = 0; i < 100; ++i) {
    EXPECT_NEAR(s.nodes[i].measured_offset, f.truth[i],
                10 * kUs + 4 * s.nodes[i].uncertainty)
        << i;
  }
  EXPECT_EQ(s.flagged_count, 0);
  // And a liar still stands out against the median.
  *f.input.nodes[40].reported += 5 * kMs;
  const Solution liar = Solve(f.input);
  EXPECT_TRUE(liar.nodes[40].flagged);
  EXPECT_EQ(liar.flagged_count, 1);
}

TEST(SolverTest, ServerGaugeIgnoresTheReports) {
  // With a server, reports play no part in the measurement: shifting every
  // report by 1 ms moves no measured offset (a median gauge would move all
  // of them by 1 ms) and flags every node.
  Fleet f = MakeFleet(60, 3, 41, /*server=*/true);
  const Solution a = Solve(f.input);
  for (NodeInput& n : f.input.nodes) *n.reported += 1 * kMs;
  const Solution b = Solve(f.input);
  for (int i = 0; i < 60; ++i) {
    EXPECT_DOUBLE_EQ(a.nodes[i].measured_offset, b.nodes[i].measured_offset);
  }
  EXPECT_EQ(b.flagged_count, 59) << "all but the reference";
}

TEST(SolverTest, ExactUncertaintyOfAChain) {
  // server -> a, a -> b, sigma 20 us each (no edge under the median's
  // floor): Var(a) = 20^2, Var(b) = 20^2 + 20^2 (us^2). A solver that forgot
  // the chain (b's own edge only) gives 20 us.
  SolveInput in;
  in.nodes = {{"s", 0.0, 1e-4, v1::SYNC_STATE_SYNCHRONISED, true},
              {"a", 1e-3, 1e-4, v1::SYNC_STATE_SYNCHRONISED, false},
              {"b", 2e-3, 1e-4, v1::SYNC_STATE_SYNCHRONISED, false}};
  in.edges = {{"s", "a", -1e-3, 40 * kUs, absl::InfinitePast()},
              {"a", "b", -1e-3, 40 * kUs, absl::InfinitePast()}};
  const Solution s = Solve(in);
  EXPECT_NEAR(s.nodes[1].uncertainty, 20 * kUs, 1e-12);
  EXPECT_NEAR(s.nodes[2].uncertainty, std::sqrt(800.0) * kUs, 1e-12);
  EXPECT_NEAR(s.nodes[1].measured_offset, 1e-3, 1e-12);
  EXPECT_NEAR(s.nodes[2].measured_offset, 2e-3, 1e-12);
  EXPECT_EQ(s.nodes[1].probed_by, 1u);
  // The floor: a delay of 0 counts as the median edge's (the larger of the
  // two, 20 us here), not as infinitely sure.
  in.edges[0].delay = 0;
  EXPECT_NEAR(Solve(in).nodes[1].uncertainty, 20 * kUs, 1e-12);
  // And never below 1 us, whatever the median.
  in.edges[1].delay = 0;
  EXPECT_NEAR(Solve(in).nodes[1].uncertainty, 1 * kUs, 1e-12);
}

TEST(SolverTest, DisconnectedComponentsAreGaugedSeparately) {
  // Two meshes that never probe each other: A with the server, B without.
  Fleet a = MakeFleet(20, 3, 51, /*server=*/true);
  Fleet b = MakeFleet(20, 3, 52, /*server=*/false);
  SolveInput in = a.input;
  for (NodeInput n : b.input.nodes) {
    n.name = "b" + n.name;
    in.nodes.push_back(n);
  }
  for (Edge e : b.input.edges) {
    e.from = "b" + e.from;
    e.to = "b" + e.to;
    in.edges.push_back(e);
  }
  in.nodes.push_back({"lonely", 0.0, 1e-4, v1::SYNC_STATE_SYNCHRONISED, false});
  const Solution s = Solve(in);
  EXPECT_EQ(s.components, 2);
  EXPECT_EQ(s.reference, "node0");
  EXPECT_EQ(s.measured_count, 40);
  for (int i = 0; i < 20; ++i) {
    EXPECT_NEAR(s.nodes[i].measured_offset, a.truth[i],
                4 * s.nodes[i].uncertainty + 1e-9);
    EXPECT_NEAR(s.nodes[20 + i].measured_offset, b.truth[i],
                10 * kUs + 4 * s.nodes[20 + i].uncertainty);
    EXPECT_NE(s.nodes[20 + i].reason.find("median gauge"), std::string::npos);
  }
  EXPECT_FALSE(s.nodes[40].measured) << "no edge touches it";
  EXPECT_EQ(s.nodes[40].reason, "not probed by any node yet");
  EXPECT_EQ(s.flagged_count, 0);
}

TEST(SolverTest, NoEdges) {
  SolveInput in;
  in.nodes = {{"a", 0.0, 1e-4, v1::SYNC_STATE_SYNCHRONISED, true},
              {"b", 0.0, std::nullopt, v1::SYNC_STATE_UNSYNCHRONISED, false}};
  const Solution s = Solve(in);
  EXPECT_EQ(s.components, 0);
  EXPECT_EQ(s.measured_count, 0);
  EXPECT_EQ(s.flagged_count, 0);
  EXPECT_FALSE(s.p50.has_value());
  EXPECT_EQ(s.closure_rms, 0);
  EXPECT_EQ(s.reference, "");
  const v1::CrosscheckResponse r = ToProto(s);
  EXPECT_FALSE(r.has_pairwise_p99());
  ASSERT_EQ(r.nodes_size(), 2);
  EXPECT_FALSE(r.nodes(0).crosscheck().has_measured_offset());
}

TEST(SolverTest, UnjudgedNodesSayWhy) {
  Fleet f = MakeFleet(30, 3, 61, /*server=*/true);
  f.input.nodes[3].bound.reset();     // unsynchronised
  f.input.nodes[4].reported.reset();  // no fresh report
  *f.input.nodes[3].reported += 50 * kMs;
  const Solution s = Solve(f.input);
  EXPECT_FALSE(s.nodes[3].judged);
  EXPECT_FALSE(s.nodes[3].flagged) << "no bound: not judged, whatever it says";
  EXPECT_EQ(s.nodes[3].reason, "no error bound: not synchronised");
  EXPECT_EQ(s.nodes[4].reason, "no fresh report from it");
  EXPECT_TRUE(s.nodes[4].measured) << "its clock is still measured";
  // Edges naming unknown nodes, NaN or negative delays are left out.
  f.input.edges.push_back({"node1", "ghost", 0, 1e-4, absl::InfinitePast()});
  f.input.edges.push_back({"node1", "node2", NAN, 1e-4, absl::InfinitePast()});
  f.input.edges.push_back({"node1", "node2", 0, -1, absl::InfinitePast()});
  EXPECT_EQ(Solve(f.input).edges.size(), s.edges.size());
}

TEST(SolverTest, KthPairwiseDifferenceMatchesBruteForce) {
  std::mt19937_64 rng(7);
  for (int n : {2, 3, 10, 57, 200}) {
    std::uniform_int_distribution<int64_t> d(-5000000, 5000000);
    std::vector<int64_t> v(n);
    for (int64_t& x : v) x = d(rng);
    v[n / 2] = v[0];  // a repeat: a difference of 0
    std::vector<int64_t> all;
    for (int i = 0; i < n; ++i) {
      for (int j = i + 1; j < n; ++j) all.push_back(std::llabs(v[i] - v[j]));
    }
    std::sort(all.begin(), all.end());
    for (uint64_t k = 1; k <= all.size();
         k += std::max<size_t>(1, all.size() / 37)) {
      EXPECT_EQ(KthPairwiseDifference(v, k), all[k - 1]) << n << " " << k;
    }
    EXPECT_EQ(KthPairwiseDifference(v, all.size()), all.back());
  }
}

TEST(SolverTest, PairwiseSkewQuantilesOfTheMeasuredNodes) {
  Fleet f = MakeFleet(80, 3, 71, /*server=*/true);
  const Solution s = Solve(f.input);
  std::vector<int64_t> all;
  for (int i = 0; i < 80; ++i) {
    for (int j = i + 1; j < 80; ++j) {
      all.push_back(std::llabs(std::llround(s.nodes[i].measured_offset * 1e9) -
                               std::llround(s.nodes[j].measured_offset * 1e9)));
    }
  }
  std::sort(all.begin(), all.end());
  const size_t m = all.size();  // 3160
  ASSERT_TRUE(s.p50.has_value());
  EXPECT_DOUBLE_EQ(*s.p50, all[(m + 1) / 2 - 1] * 1e-9);
  EXPECT_DOUBLE_EQ(*s.p99, all[(m * 99 + 99) / 100 - 1] * 1e-9);
  EXPECT_DOUBLE_EQ(*s.max, all.back() * 1e-9);
  // And they describe the true skew: offsets uniform in +-2 ms, so the
  // largest pairwise difference is near 4 ms (to within the probes' error).
  EXPECT_GT(*s.max, 3.5 * kMs);
  EXPECT_LT(*s.max, 4.1 * kMs);
}

TEST(SolverTest, LargeComponentIsSolvedIterativelyWithApproximateUncertainty) {
  Fleet f = MakeFleet(kDenseLimit + 200, 3, 81, /*server=*/true);
  *f.input.nodes[500].reported += 5 * kMs;
  const Solution s = Solve(f.input);
  double worst = 0;
  for (size_t i = 1; i < f.truth.size(); ++i) {
    const NodeResult& r = s.nodes[i];
    worst = std::max(worst,
                     std::abs(r.measured_offset - f.truth[i]) / r.uncertainty);
  }
  // sqrt(2 / sum w) over-states a node's own sigma (about sqrt(1 / sum w)
  // when its neighbours are well known), so errors stay within 4 of it.
  EXPECT_LT(worst, 4.0);
  EXPECT_TRUE(s.nodes[500].flagged);
  EXPECT_EQ(s.flagged_count, 1);
}

// sqrt(2 / sum of w_e over node i's edges + 1 / that sum of the reference,
// node 0), w_e = 1 / max(delay_e / 2, 1 us, the median edge's sigma)^2: the
// uncertainty the iterative path gives (crosscheck.h).
std::vector<double> ApproximateUncertainties(const Fleet& f) {
  std::map<std::string, int> index;
  for (size_t i = 0; i < f.input.nodes.size(); ++i) {
    index[f.input.nodes[i].name] = static_cast<int>(i);
  }
  std::vector<double> sigmas;
  for (const Edge& e : f.input.edges) {
    sigmas.push_back(std::max(e.delay / 2, 1 * kUs));
  }
  std::nth_element(sigmas.begin(), sigmas.begin() + sigmas.size() / 2,
                   sigmas.end());
  const double floor = sigmas[sigmas.size() / 2];  // the median edge's
  std::vector<double> sum_w(f.input.nodes.size(), 0.0);
  for (const Edge& e : f.input.edges) {
    const double sigma = std::max({e.delay / 2, 1 * kUs, floor});
    sum_w[index[e.from]] += 1 / (sigma * sigma);
    sum_w[index[e.to]] += 1 / (sigma * sigma);
  }
  std::vector<double> out;
  for (double w : sum_w) out.push_back(std::sqrt(2 / w + 1 / sum_w[0]));
  return out;
}

// The scale the issue asks for: 10 000 nodes, 3 probes each (30 000 edges),
// on the iterative path. How long it takes is bench/crosscheck_solve's
// (docs/BENCHMARKS.md), not a test's.
TEST(SolverTest, TenThousandNodesAllMeasuredOnTheIterativePath) {
  Fleet f = MakeFleet(10000, 3, 91, /*server=*/true);
  const Solution s = Solve(f.input);
  EXPECT_EQ(s.edges.size(), 30000u);
  EXPECT_EQ(s.measured_count, 10000);
  EXPECT_EQ(s.flagged_count, 0);
  // The iterative path's uncertainties are the approximation; the dense
  // path's exact ones differ from it (see the next test), so a component of
  // this size solved densely (or not at all) fails here.
  const std::vector<double> approx = ApproximateUncertainties(f);
  EXPECT_EQ(s.nodes[0].uncertainty, 0) << "the reference";
  for (int i = 1; i < 10000; ++i) {
    ASSERT_NEAR(s.nodes[i].uncertainty, approx[i], 1e-12 * approx[i]) << i;
  }
}

// The approximation against the exact covariance of a fleet solved densely:
// within a factor 0.7..2 of it at every node, and a reference with noisy
// probes raises every node's. Without the reference's term (the old
// sqrt(2 / sum w)), a reference probed over paths 4x slower than the rest
// left every node's approximation under 0.7 of the truth (599 of 599).
TEST(SolverTest, ApproximateUncertaintyTracksTheExactOne) {
  Fleet f = MakeFleet(600, 3, 93, /*server=*/true);
  for (Edge& e : f.input.edges) {
    if (e.from == "node0" || e.to == "node0") e.delay *= 4;
  }
  const Solution s = Solve(f.input);  // 600 nodes: dense, exact
  const std::vector<double> approx = ApproximateUncertainties(f);
  int under = 0;
  for (int i = 1; i < 600; ++i) {
    const double ratio = approx[i] / s.nodes[i].uncertainty;
    EXPECT_LT(ratio, 2.0) << i;
    if (ratio < 0.7) ++under;
  }
  EXPECT_EQ(under, 0);
}

TEST(SolverTest, ThousandNodesUseTheDensePathWithExactUncertainties) {
  Fleet f = MakeFleet(kDenseLimit, 3, 92, /*server=*/true);
  const Solution s = Solve(f.input);
  EXPECT_EQ(s.measured_count, kDenseLimit);
  EXPECT_EQ(s.flagged_count, 0);
  // The exact uncertainty relative to the server also carries the errors of
  // the paths to it, so it is not the approximation: a component of
  // kDenseLimit nodes sent down the iterative path matches it everywhere.
  const std::vector<double> approx = ApproximateUncertainties(f);
  int differ = 0;
  for (int i = 1; i < kDenseLimit; ++i) {
    if (std::abs(s.nodes[i].uncertainty - approx[i]) > 0.01 * approx[i]) {
      ++differ;
    }
  }
  EXPECT_GT(differ, kDenseLimit * 9 / 10);
}

TEST(SolverTest, ToProtoCarriesTheSolution) {
  Fleet f = MakeFleet(10, 3, 93, /*server=*/true);
  *f.input.nodes[2].reported += 5 * kMs;
  const Solution s = Solve(f.input);
  const v1::CrosscheckResponse r = ToProto(s);
  EXPECT_EQ(r.reference(), "node0");
  EXPECT_EQ(r.flagged_count(), 1u);
  ASSERT_EQ(r.nodes_size(), 10);
  EXPECT_TRUE(r.nodes(2).crosscheck().flagged());
  EXPECT_EQ(r.edges_size(), 30);
  EXPECT_EQ(r.nodes(2).crosscheck().probed_by(), s.nodes[2].probed_by);
  EXPECT_NEAR(r.nodes(2).crosscheck().disagreement().nanos() * 1e-9 +
                  r.nodes(2).crosscheck().disagreement().seconds(),
              s.nodes[2].disagreement, 1e-9);
  EXPECT_EQ(ToProto(s, /*with_edges=*/false).edges_size(), 0);
}

}  // namespace
}  // namespace ntpfleet::controller::crosscheck
