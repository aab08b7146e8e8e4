// The simulator's own mechanics: true UTC across a leap second, frequency
// steps, and metrics whose statistics a late excursion cannot escape.
#include "tests/sim/simulator.h"

#include <cstddef>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace ntpfleet::sim {
namespace {

// A client with no reachable source: its clock runs free, so its trace shows
// the simulator's true time model alone.
ClientParams FreeRunning() {
  ClientParams c;
  c.sources = {"192.0.2.1:123"};  // nobody there
  return c;
}

TEST(SimulatorTest, UtcRepeatsTheSecondBeforeALeapMidnight) {
  const absl::Time midnight = absl::FromUnixSeconds(1483228800);  // 2017-01-01
  Simulation sim(1);
  sim.SetStart(midnight - absl::Seconds(10));
  sim.InsertLeapSecond(midnight);
  sim.AddClient(FreeRunning());
  sim.Run(absl::Seconds(20));
  // 20 physical seconds from 23:59:50, one of them repeated.
  EXPECT_EQ(sim.utc(), midnight + absl::Seconds(9));
  const Trace& trace = sim.trace(0);
  EXPECT_EQ(trace.leap_s, 10);
  // A clock that does not insert the leap is a second ahead of UTC after it.
  EXPECT_EQ(trace.offset[9], 0);
  EXPECT_NEAR(trace.offset[10], -1, 1e-9);
  EXPECT_NEAR(trace.offset[20], -1, 1e-9);
  const Metrics m = sim.metrics(0);
  EXPECT_NEAR(m.max_abs_offset_after_leap_s, 1, 1e-9);
  EXPECT_EQ(m.leap_recovery_s, 11);  // still off at the end (t = 20 s)
}

TEST(SimulatorTest, StepFrequencyChangesTheClientsRateAtThatTime) {
  Simulation sim(1);
  const int c = sim.AddClient(FreeRunning());
  sim.StepFrequency(c, absl::Seconds(5), 2);
  sim.Run(absl::Seconds(10));
  const Trace& trace = sim.trace(c);
  EXPECT_EQ(trace.frequency[4], 0);
  EXPECT_EQ(trace.frequency[5], 2);
  // 2 ppm for 5 s: the clock gained 10 µs (offset = UTC minus clock).
  EXPECT_NEAR(trace.offset[10], -10e-6, 1e-12);
}

// A trace that is within 1 ms from the start except for one excursion.
Trace WithExcursion(size_t at, double offset) {
  Trace trace;
  for (size_t i = 0; i <= 200; ++i) {
    trace.time.push_back(static_cast<double>(i));
    trace.offset.push_back(i == at ? offset : 10e-6);
    trace.frequency.push_back(0);
    trace.in_outage.push_back(false);
    trace.liar_selected.push_back(false);
  }
  return trace;
}

TEST(ComputeMetricsTest, AnExcursionAfterSettlingCountsInTheStatistics) {
  const Metrics m = ComputeMetrics(WithExcursion(150, 2e-3), 0, 0);
  EXPECT_TRUE(m.settled);
  EXPECT_EQ(m.settled_s, 0);
  EXPECT_DOUBLE_EQ(m.max_abs_offset_s, 2e-3);
  // Converged only after the excursion.
  EXPECT_TRUE(m.converged);
  EXPECT_EQ(m.convergence_s, 151);
}

TEST(ComputeMetricsTest, SettlingNeedsSixtySecondsInARow) {
  // Within for 0..29, out at 30, then within: settled at 31.
  const Metrics m = ComputeMetrics(WithExcursion(30, 5e-3), 0, 0);
  EXPECT_EQ(m.settled_s, 31);
  EXPECT_DOUBLE_EQ(m.max_abs_offset_s, 10e-6);
}

}  // namespace
}  // namespace ntpfleet::sim
