// The accuracy floors of issues #3 and #11, over seeds 1..20 of 10 000 s per
// scenario, and the proof that they are tight: the broken "last sample" filter
// baseline (FilterOptions::last_sample_only, no filtering at all) fails the
// ones named in kBaselineFails.
//
// Every floor's statistic starts where the run settled (simulator.h's Metrics),
// so an excursion after that counts. Each floor's comment gives what the
// current engine measures and what the baseline measures there (median / worst
// of the 20 seeds, `bazel run -c opt //bench:accuracy -- --seeds 20 --duration
// 10000s [--last_sample_only]`); the limits leave a modest margin over the
// engine so that a regression shows.
#include "tests/sim/scenarios.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "agent/ntp/engine.h"
#include "agent/ntp/source.h"
#include "gtest/gtest.h"
#include "tests/sim/simulator.h"

namespace ntpfleet::sim {
namespace {

constexpr int kSeeds = 20;
const absl::Duration kDuration = absl::Seconds(10000);

// What a test needs from one run.
struct SeedRun {
  Metrics metrics;
  ntp::EngineStatus status;  // client 0's, at the end
  double final_offset_s = 0;
  int clock_leaps = 0;  // leap seconds the client's (simulated) kernel applied
};

// The runs of a scenario, seeds 1..kSeeds, computed once per test process.
const std::vector<SeedRun>& Runs(const std::string& scenario, bool baseline) {
  static auto* const cache =
      new std::map<std::pair<std::string, bool>, std::vector<SeedRun>>();
  std::vector<SeedRun>& runs = (*cache)[{scenario, baseline}];
  if (runs.empty()) {
    RunOptions options;
    options.last_sample_baseline = baseline;
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
      std::unique_ptr<Simulation> sim =
          RunScenario(FindScenario(scenario), seed, kDuration, options);
      runs.push_back(
          {sim->metrics(0),
           sim->engine(0).Status(clock::MonoTime::FromDuration(sim->now())),
           sim->trace(0).offset.back(), sim->clock(0).leaps()});
    }
  }
  return runs;
}

enum class Over {
  kEverySeed,  // the worst seed must clear the limit
  kMedian,     // the median of the seeds must
};

// value(run) <= limit, over the seeds as `over` says.
struct Floor {
  std::string name;  // "scenario: what"
  std::string scenario;
  Over over;
  std::function<double(const Metrics&)> value;
  double limit;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Aggregate(const Floor& floor, bool baseline) {
  std::vector<double> values;
  for (const SeedRun& run : Runs(floor.scenario, baseline)) {
    values.push_back(floor.value(run.metrics));
  }
  return floor.over == Over::kMedian
             ? Median(values)
             : *std::max_element(values.begin(), values.end());
}

double Converged(const Metrics& m) { return m.converged ? 0 : 1; }
double ConvergenceS(const Metrics& m) { return m.convergence_s; }
double RmsUs(const Metrics& m) { return m.rms_offset_s * 1e6; }
double MaxUs(const Metrics& m) { return m.max_abs_offset_s * 1e6; }
double RmsFrequencyPpm(const Metrics& m) { return m.rms_frequency_ppm; }
double OutageMaxUs(const Metrics& m) {
  return m.max_abs_offset_in_outage_s * 1e6;
}

// Engine / baseline numbers are median / worst over the seeds.
const std::vector<Floor>& Floors() {
  static const auto* const floors = new std::vector<Floor>{
      // --- default: 1 server, 100 µs + 100 µs·Exp each way.
      // Engine 62 / 64 s; baseline 63.5 / 129 s.
      {"default: converged within 90 s", "default", Over::kEverySeed,
       ConvergenceS, 90},
      // Engine 43.4 / 65.2 µs; baseline 89.4 / 116.6 µs. The goal.
      {"default: RMS offset median", "default", Over::kMedian, RmsUs, 45},
      {"default: RMS offset", "default", Over::kEverySeed, RmsUs, 75},
      // Engine 114.7 / 381.5 µs; baseline 390.3 / 633.6 µs.
      {"default: max offset", "default", Over::kEverySeed, MaxUs, 450},
      // Engine 0.16 ppm median; baseline 3.30 ppm.
      {"default: RMS frequency error median", "default", Over::kMedian,
       RmsFrequencyPpm, 0.2},

      // --- iburst. Engine 3 / 3 s; baseline 132.5 / 137 s (its two-point
      // frequency from the burst's end is far off, so it leaves 1 ms again).
      {"iburst: converged within 10 s", "iburst", Over::kEverySeed,
       ConvergenceS, 10},
      // Engine 49.1 / 68.4 µs; baseline 91.5 / 103.0 µs.
      {"iburst: RMS offset median", "iburst", Over::kMedian, RmsUs, 56},

      // --- wrong-date: 100 s off. Engine 1 / 1 s; baseline 132.5 / 137 s.
      {"wrong-date: converged within 30 s", "wrong-date", Over::kEverySeed,
       ConvergenceS, 30},

      // --- large-frequency: 500 ppm. Engine 62 / 64 s; baseline 63.5 / 129 s.
      {"large-frequency: converged within 90 s", "large-frequency",
       Over::kEverySeed, ConvergenceS, 90},
      // Engine 107.4 / 295.1 µs; baseline 213.2 / 258.0 µs.
      {"large-frequency: RMS offset median", "large-frequency", Over::kMedian,
       RmsUs, 125},

      // --- high-jitter: 100 µs + 1 ms·Exp each way.
      // Engine 159.5 / 278 s; baseline 9890 / 10000 s (2 of 20 unconverged).
      {"high-jitter: converged", "high-jitter", Over::kEverySeed, Converged, 0},
      {"high-jitter: converged within 330 s", "high-jitter", Over::kEverySeed,
       ConvergenceS, 330},
      // Engine 84.4 / 124.2 µs; baseline 889.4 / 1094.6 µs. The goal.
      {"high-jitter: RMS offset median", "high-jitter", Over::kMedian, RmsUs,
       100},
      {"high-jitter: RMS offset", "high-jitter", Over::kEverySeed, RmsUs, 150},
      // Engine 500.1 / 993.3 µs; baseline 3862.5 / 5395.3 µs.
      {"high-jitter: max offset", "high-jitter", Over::kEverySeed, MaxUs, 1200},
      // Engine 0.82 ppm median; baseline 32.44 ppm. The goal.
      {"high-jitter: RMS frequency error median", "high-jitter", Over::kMedian,
       RmsFrequencyPpm, 1.0},

      // --- falsetickers: 5 servers, 2 of them 50 ms off.
      // Engine 140.5 / 271.3 µs; baseline 955.4 / 999.3 µs.
      {"falsetickers: max offset", "falsetickers", Over::kEverySeed, MaxUs,
       330},
      // Engine 33.8 / 45.6 µs; baseline 50.7 / 65.9 µs.
      {"falsetickers: RMS offset median", "falsetickers", Over::kMedian, RmsUs,
       40},

      // --- outage: 30 min down every 3 h. In the outages: engine 51.0 / 199.2
      // µs; baseline 2067.0 / 4270.1 µs.
      {"outage: max offset in the outages", "outage", Over::kEverySeed,
       OutageMaxUs, 240},
      {"outage: max offset in the outages, median", "outage", Over::kMedian,
       OutageMaxUs, 60},

      // --- silence: 7000 s of holdover.
      // Engine 155.6 / 357.1 µs; baseline 2611.2 / 10450.9 µs.
      {"silence: RMS offset median", "silence", Over::kMedian, RmsUs, 185},

      // --- asymmetry: a fixed 200 µs asymmetry, so a 100 µs bias no client
      // can see. Engine 62 / 64 s; baseline 270 / 276 s.
      {"asymmetry: converged within 90 s", "asymmetry", Over::kEverySeed,
       ConvergenceS, 90},
      // Engine 112.9 / 137.0 µs; baseline 134.7 / 148.0 µs (the bias is most
      // of it either way).
      {"asymmetry: RMS offset median", "asymmetry", Over::kMedian, RmsUs, 125},
      {"asymmetry: RMS offset", "asymmetry", Over::kEverySeed, RmsUs, 155},

      // --- route-change: the bias goes from 0 to 200 µs at 5000 s.
      // Engine 62 / 64 s; baseline 63.5 / 129 s.
      {"route-change: converged within 90 s", "route-change", Over::kEverySeed,
       ConvergenceS, 90},
      // Engine 143.0 / 185.0 µs; baseline 168.2 / 186.2 µs.
      {"route-change: RMS offset median", "route-change", Over::kMedian, RmsUs,
       165},
      // Engine 306.8 / 389.5 µs; baseline 502.9 / 738.6 µs.
      {"route-change: max offset", "route-change", Over::kEverySeed, MaxUs,
       460},

      // --- loss: 20 % each way.
      // Engine 47.3 / 124.3 µs; baseline 84.1 / 110.2 µs.
      {"loss: RMS offset median", "loss", Over::kMedian, RmsUs, 56},
      {"loss: RMS offset", "loss", Over::kEverySeed, RmsUs, 145},
      // Engine 126 / 309 s; baseline 126.5 / 314 s.
      {"loss: converged within 370 s", "loss", Over::kEverySeed, ConvergenceS,
       370},

      // --- frequency-step: +2 ppm at 5000 s. Engine 3650.8 / 4434.0 µs: at a
      // 1024 s poll the step shows only at the next sample, and three outliers
      // in a row are needed to tell it from popcorn (then the filter restarts
      // with the new frequency, SourceFilter::RestartFromSpikes). The baseline
      // measures 390.3 / 633.6 µs: it never trusts its estimate enough to
      // poll slower than minpoll (1026 requests against the engine's 48), so
      // this floor guards against regressions and does not separate them.
      {"frequency-step: max offset", "frequency-step", Over::kEverySeed, MaxUs,
       5000},

      // --- chain: client <- agent <- server.
      // Engine 7 / 362 s; baseline 247 / 3781 s.
      {"chain: converged within 450 s", "chain", Over::kEverySeed, ConvergenceS,
       450},
      // Engine 108.6 / 259.6 µs; baseline 168.0 / 232.7 µs.
      {"chain: RMS offset median", "chain", Over::kMedian, RmsUs, 125},
      // Engine 784.8 / 2384.5 µs; baseline 942.2 / 1249.3 µs (the client
      // inherits the agent's start-up transient either way).
      {"chain: max offset", "chain", Over::kEverySeed, MaxUs, 2800},

      // --- leap-second (leapsecmode system): the kernel inserts the second
      // at the clock's own midnight, µs from true UTC's. Engine max after the
      // leap 74.3 / 157.2 µs, never a millisecond off; baseline 383.5 / 507.9
      // µs; an engine that ignored the announcement was 1000025.7 / 1000187.2
      // µs off, for 1931 s.
      {"leap-second: max offset after the leap", "leap-second",
       Over::kEverySeed,
       [](const Metrics& m) { return m.max_abs_offset_after_leap_s * 1e6; },
       250},
      {"leap-second: back within 1 ms after the leap (s)", "leap-second",
       Over::kEverySeed, [](const Metrics& m) { return m.leap_recovery_s; }, 0},

      // --- leap-second-slew: a second slewed at the 500 ppm limit less the
      // base frequency; engine (and baseline: the discipline does it) back
      // within 1 ms after 2499 s at worst (1 s / 480 ppm is ~2083 s).
      {"leap-second-slew: back within 1 ms after the leap (s)",
       "leap-second-slew", Over::kEverySeed,
       [](const Metrics& m) { return m.leap_recovery_s; }, 2700},
  };
  return *floors;
}

// The floors the last-sample baseline fails by a wide margin (its value is at
// least 1.3 times the limit, so small shifts do not matter). It also fails,
// by less: "falsetickers: RMS offset median" (50.7 µs), "asymmetry: RMS offset
// median" (134.7 µs) and "route-change: RMS offset median" (168.2 µs).
const std::set<std::string>& BaselineFails() {
  static const auto* const fails = new std::set<std::string>{
      "default: converged within 90 s",
      "default: RMS offset median",
      "default: RMS offset",
      "default: max offset",
      "default: RMS frequency error median",
      "iburst: converged within 10 s",
      "iburst: RMS offset median",
      "wrong-date: converged within 30 s",
      "large-frequency: converged within 90 s",
      "large-frequency: RMS offset median",
      "high-jitter: converged",
      "high-jitter: converged within 330 s",
      "high-jitter: RMS offset median",
      "high-jitter: RMS offset",
      "high-jitter: max offset",
      "high-jitter: RMS frequency error median",
      "falsetickers: max offset",
      "outage: max offset in the outages",
      "outage: max offset in the outages, median",
      "silence: RMS offset median",
      "asymmetry: converged within 90 s",
      "route-change: converged within 90 s",
      "route-change: max offset",
      "loss: RMS offset median",
      "chain: converged within 450 s",
      "chain: RMS offset median",
      "leap-second: max offset after the leap",
  };
  return *fails;
}

// The scenarios with floors, in Floors() order.
std::vector<std::string> FloorScenarios() {
  std::vector<std::string> names;
  for (const Floor& floor : Floors()) {
    if (names.empty() || names.back() != floor.scenario) {
      names.push_back(floor.scenario);
    }
  }
  return names;
}

// One test per scenario, so that shards share the work.
class FloorsTest : public testing::TestWithParam<std::string> {};

TEST_P(FloorsTest, EngineClearsEveryFloor) {
  for (const Floor& floor : Floors()) {
    if (floor.scenario != GetParam()) continue;
    const double value = Aggregate(floor, /*baseline=*/false);
    EXPECT_LE(value, floor.limit) << floor.name;
    std::printf("%-55s %12.2f (limit %g)\n", floor.name.c_str(), value,
                floor.limit);
  }
}

// The floors are tight: an engine whose filter just takes the last sample
// fails the named ones.
TEST_P(FloorsTest, LastSampleBaselineFailsTheNamedFloors) {
  for (const Floor& floor : Floors()) {
    if (floor.scenario != GetParam()) continue;
    const double value = Aggregate(floor, /*baseline=*/true);
    std::printf("baseline %-55s %12.2f (limit %g)%s\n", floor.name.c_str(),
                value, floor.limit, value > floor.limit ? ": fails" : "");
    if (BaselineFails().count(floor.name)) {
      EXPECT_GT(value, floor.limit) << floor.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, FloorsTest,
                         testing::ValuesIn(FloorScenarios()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string name;
                           for (char c : info.param) name += c == '-' ? '_' : c;
                           return name;
                         });

TEST(BaselineFailsTest, NamesOnlyFloorsThatExist) {
  for (const std::string& name : BaselineFails()) {
    bool known = false;
    for (const Floor& floor : Floors()) known |= floor.name == name;
    EXPECT_TRUE(known) << name;
  }
}

TEST(ScenarioTest, WrongDateStepsOnce) {
  for (const SeedRun& run : Runs("wrong-date", false)) {
    EXPECT_EQ(run.metrics.steps, 1);
  }
}

TEST(ScenarioTest, FalsetickersAreNeverTheSystemPeer) {
  for (const SeedRun& run : Runs("falsetickers", false)) {
    EXPECT_TRUE(run.metrics.converged);
    EXPECT_FALSE(run.metrics.liar_ever_selected);
    // The two liars (10.0.0.2 and 10.0.0.4) end up marked as falsetickers.
    ASSERT_EQ(run.status.peers.size(), 5u);
    for (int liar : {1, 3}) {
      ASSERT_TRUE(run.status.peers[liar].mark.has_value());
      EXPECT_EQ(*run.status.peers[liar].mark, ntp::SelectionMark::kFalseticker);
    }
  }
}

TEST(ScenarioTest, OutagesHappen) {
  for (const SeedRun& run : Runs("outage", false)) {
    EXPECT_TRUE(run.metrics.converged);
    EXPECT_GT(run.metrics.max_abs_offset_in_outage_s, 0);
  }
}

TEST(ScenarioTest, KissOfDeathRateBacksThePollOff) {
  for (const SeedRun& run : Runs("kod-rate", false)) {
    const ntp::EngineStatus& st = run.status;
    ASSERT_EQ(st.peers.size(), 1u);
    const ntp::PeerStatus& peer = st.peers[0];
    EXPECT_GT(peer.counters.kod_rate, 0u);
    EXPECT_GT(peer.poll, 6);  // backed off from minpoll
    EXPECT_NE(peer.reason.find("KoD RATE"), std::string::npos) << peer.reason;
    // A server that only kisses gives no time: the node says so instead of
    // pretending.
    EXPECT_EQ(st.state, ntp::SyncState::kUnsynchronized);
    // Backing off means few requests: far fewer than one per 64 s.
    EXPECT_LT(peer.counters.requests, 10000 / 64 / 2);
  }
}

TEST(ScenarioTest, SilenceLeadsToUnreachableAndHoldover) {
  for (const SeedRun& run : Runs("silence", false)) {
    const ntp::EngineStatus& st = run.status;
    ASSERT_EQ(st.peers.size(), 1u);
    const ntp::PeerStatus& peer = st.peers[0];
    EXPECT_EQ(peer.reach, 0);
    EXPECT_EQ(peer.health, ntp::SourceHealth::kUnreachable);
    EXPECT_NE(peer.reason.find("no reply"), std::string::npos) << peer.reason;
    EXPECT_EQ(st.state, ntp::SyncState::kHoldover);
    // Holdover keeps the learned frequency: 7000 s after the server fell silent
    // the clock is still within a few milliseconds, and the error bound has
    // grown to cover it.
    const double offset = std::abs(run.final_offset_s);
    EXPECT_LT(offset, 5e-3);
    EXPECT_GE(absl::ToDoubleSeconds(st.error_bound), offset);
    // It grew from ~0.3 ms at the last update with the filter's uncertainty
    // (5σ of the measured frequency uncertainty and wander: ~2-5 ms here); a
    // bound that did not grow in holdover stays near 0.3 ms.
    EXPECT_GE(st.error_bound, absl::Milliseconds(1));
  }
}

TEST(ScenarioTest, ChainClientFollowsTheAgentNotTheServer) {
  for (const SeedRun& run : Runs("chain", false)) {
    const ntp::EngineStatus& st = run.status;
    ASSERT_EQ(st.peers.size(), 1u);
    EXPECT_EQ(st.peers[0].address, "10.0.1.1:123");
    EXPECT_EQ(st.state, ntp::SyncState::kSynchronized);
    // One stratum below the agent, which is one below the stratum-1 server.
    EXPECT_EQ(st.peers[0].stratum, 2);
    EXPECT_EQ(st.stratum, 3);
  }
}

// leapsecmode system: the kernel repeats 23:59:59 once, at the clock's own
// midnight, and nothing is stepped (an engine that passed the upstream's bit
// on without the month-end and majority checks would also insert it, but one
// that ignored the bit steps the second away: steps 2).
TEST(ScenarioTest, LeapSecondSystemModeInsertsOnceAndStepsNothing) {
  for (const SeedRun& run : Runs("leap-second", false)) {
    EXPECT_EQ(run.clock_leaps, 1);
    EXPECT_EQ(run.metrics.steps, 1);  // the start-up correction only
    EXPECT_EQ(run.status.leap, ntp::Leap::kNone);  // cleared after the leap
  }
}

// leapsecmode slew: the kernel is never told, nothing repeats and nothing is
// stepped; the second is slewed away (an engine without the leap slew steps it
// after three spikes per source: steps 2).
TEST(ScenarioTest, LeapSecondSlewModeNeitherRepeatsNorSteps) {
  for (const SeedRun& run : Runs("leap-second-slew", false)) {
    EXPECT_EQ(run.clock_leaps, 0);
    EXPECT_EQ(run.metrics.steps, 1);
    EXPECT_EQ(run.status.leap, ntp::Leap::kNone);
  }
}

}  // namespace
}  // namespace ntpfleet::sim
