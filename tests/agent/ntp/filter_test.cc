#include "agent/ntp/filter.h"

#include <cmath>
#include <cstdint>
#include <random>

#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "gtest/gtest.h"

namespace ntpfleet::ntp {
namespace {

using ::ntpfleet::clock::MonoTime;

MonoTime At(double seconds) {
  return MonoTime::FromDuration(absl::Seconds(seconds));
}

TEST(SourceFilterTest, FirstSampleSetsOffset) {
  SourceFilter filter;
  EXPECT_EQ(filter.samples(), 0u);
  EXPECT_EQ(filter.Add(At(1000), 0.0123, 0.001), FilterVerdict::kAccepted);
  EXPECT_EQ(filter.samples(), 1u);
  EXPECT_EQ(filter.OffsetAt(At(1000)), 0.0123);
  // No frequency yet (the prior's mean is 0): the offset holds.
  EXPECT_EQ(filter.frequency(), 0.0);
  EXPECT_EQ(filter.OffsetAt(At(2000)), 0.0123);
  EXPECT_EQ(filter.last_update(), At(1000));
  EXPECT_EQ(filter.min_delay(), 0.001);
  EXPECT_EQ(filter.jitter(), 0.0);
  // Its variance is the sample's: one delay seen, so gap = max(0.35 * (median
  // - min), min / 1) = 1 ms, width = 0 + 1 ms;
  // r = (2 µs)² + (1 ms)² / 12 = 4e-12 + 8.3333e-8 = 8.33373333e-8 s².
  EXPECT_NEAR(filter.OffsetVarianceAt(At(1000)), 4e-12 + 1e-6 / 12, 1e-20);
}

TEST(SourceFilterTest, FrequencyPriorExtrapolatesTheFirstSample) {
  SourceFilter filter;
  filter.SetFrequencyPrior(2e-5, 1e-6);
  EXPECT_EQ(filter.frequency(), 2e-5);
  EXPECT_EQ(filter.frequency_variance(), 1e-12);
  filter.Add(At(1000), 0.001, 0.001);
  // x(1100) = 1 ms + 2e-5 * 100 s = 3 ms.
  EXPECT_NEAR(filter.OffsetAt(At(1100)), 0.003, 1e-15);
}

TEST(SourceFilterTest, MinimumDelaySampleDominates) {
  SourceFilter filter;  // noise floor σ0 = 2 µs
  const MonoTime t = At(1000);
  // A: x = 0, delay 100 µs. Delays seen: {100 µs}; min = median = 100 µs.
  //   gap = max(√(2/1) * (100 - 100), 100 / 1) µs = 100 µs
  //   width = max(0, 100 - 100) µs + gap = 100 µs
  //   r_A = σ0² + width² / 12 = 4e-12 + 1e-8 / 12 = 1.0048e-8 / 12
  //       = 8.37333e-10 s²
  ASSERT_EQ(filter.Add(t, 0.0, 100e-6), FilterVerdict::kAccepted);
  // B: x = 100 µs, delay 300 µs. Delays {100, 300} µs: min 100, median =
  // sorted[2 / 2] = 300.
  //   gap = max(√(2/2) * (300 - 100), 100 / 2) µs = max(200, 50) µs = 200 µs
  //   width = (300 - 100) µs + 200 µs = 400 µs
  //   r_B = 4e-12 + (400e-6)² / 12 = 4e-12 + 1.6e-7 / 12 = 1.60048e-7 / 12
  //       = 1.33373e-8 s²
  // Same t, so no prediction: P_xx = r_A, and the Kalman gain is
  //   K = r_A / (r_A + r_B) = 1.0048 / (1.0048 + 16.0048) = 1.0048 / 17.0096
  //     = 0.0590725
  //   x = 0 + K * (100 µs - 0) = 5.90725 µs
  // (an unweighted mean would say 50 µs).
  ASSERT_EQ(filter.Add(t, 100e-6, 300e-6), FilterVerdict::kAccepted);
  EXPECT_NEAR(filter.OffsetAt(t), 100e-6 * 1.0048 / 17.0096, 1e-9);
  EXPECT_NEAR(filter.OffsetAt(t), 5.90725e-6, 1e-11);
  // The variance shrinks to (1 - K) r_A = r_A r_B / (r_A + r_B).
  EXPECT_NEAR(filter.OffsetVarianceAt(t),
              (1.0048e-8 / 12) * (1.60048e-7 / 12) / (17.0096e-8 / 12), 1e-20);
  // No time passed between them, so nothing was learnt about frequency.
  EXPECT_EQ(filter.frequency(), 0.0);
  EXPECT_EQ(filter.min_delay(), 100e-6);
}

TEST(SourceFilterTest, LearnsAConstantFrequency) {
  SourceFilter filter;
  // Noiseless: x = 1e-4 * t (the oscillator loses 100 µs per second against
  // the reference), a sample every 64 s, a constant 100 µs delay.
  double t = 0;
  for (int i = 1; i <= 10; ++i) {
    t = 64.0 * i;
    ASSERT_EQ(filter.Add(At(t), 1e-4 * t, 100e-6), FilterVerdict::kAccepted)
        << "sample " << i;
  }
  EXPECT_NEAR(filter.frequency(), 1e-4, 1e-9);
  EXPECT_NEAR(filter.OffsetAt(At(t)), 1e-4 * t, 1e-9);
  // Extrapolated 1024 s past the last sample: 1e-4 * (640 + 1024) s
  // = 166.4 ms. The bound above would allow 1e-9 * 1024 s ≈ 1 µs of error;
  // on noiseless data the filter does far better (about 4e-11 s here), so
  // hold it to 1 ns.
  EXPECT_NEAR(filter.OffsetAt(At(t + 1024)), 0.1664, 1e-9);
}

// Six samples at a constant 1 ms offset, 64 s apart, 100 µs delay.
SourceFilter SettledFilter() {
  SourceFilter filter;
  for (int i = 1; i <= 6; ++i) {
    EXPECT_EQ(filter.Add(At(64.0 * i), 1e-3, 100e-6), FilterVerdict::kAccepted);
  }
  return filter;
}

TEST(SourceFilterTest, SingleOutlierIsASpikeAndChangesNothing) {
  SourceFilter filter = SettledFilter();
  const double before = filter.OffsetAt(At(64.0 * 7));
  const double frequency = filter.frequency();
  const double jitter = filter.jitter();
  EXPECT_NEAR(before, 1e-3, 1e-9);
  // 10 ms off against an estimate good to a few µs: far beyond 5σ.
  EXPECT_EQ(filter.Add(At(64.0 * 7), 11e-3, 100e-6), FilterVerdict::kSpike);
  EXPECT_GT(std::fabs(filter.last_normalized_innovation()), 5);
  EXPECT_DOUBLE_EQ(filter.OffsetAt(At(64.0 * 7)), before);
  EXPECT_EQ(filter.frequency(), frequency);
  EXPECT_EQ(filter.jitter(), jitter);
  EXPECT_EQ(filter.samples(), 6u);
  // The run of spikes ends with a good sample.
  EXPECT_EQ(filter.Add(At(64.0 * 8), 1e-3, 100e-6), FilterVerdict::kAccepted);
  EXPECT_NEAR(filter.OffsetAt(At(64.0 * 8)), 1e-3, 1e-9);
}

TEST(SourceFilterTest, ThreeOutliersInARowRestartThePhase) {
  SourceFilter filter = SettledFilter();
  const double frequency = filter.frequency();
  EXPECT_EQ(filter.Add(At(64.0 * 7), 11e-3, 100e-6), FilterVerdict::kSpike);
  EXPECT_EQ(filter.Add(At(64.0 * 8), 11e-3, 100e-6), FilterVerdict::kSpike);
  EXPECT_NEAR(filter.OffsetAt(At(64.0 * 8)), 1e-3, 1e-9);
  EXPECT_EQ(filter.Add(At(64.0 * 9), 11e-3, 100e-6), FilterVerdict::kRestarted);
  // The three outliers agree on a jump of 10 ms and no slope: the phase
  // restarts at their level, the frequency is kept (their noisy slope is not
  // taken over the one the filter knows).
  EXPECT_NEAR(filter.OffsetAt(At(64.0 * 9)), 11e-3, 1e-9);
  EXPECT_EQ(filter.frequency(), frequency);
  EXPECT_EQ(filter.samples(), 3u);
  // And follows the new level from then on.
  for (int i = 10; i <= 12; ++i) {
    EXPECT_EQ(filter.Add(At(64.0 * i), 11e-3, 100e-6), FilterVerdict::kAccepted)
        << "sample " << i;
  }
  EXPECT_NEAR(filter.OffsetAt(At(64.0 * 12)), 11e-3, 1e-9);
}

// A frequency step (temperature, or an upstream that changed its own rate):
// the outliers' innovations grow along a line, and the restart takes the new
// frequency from it at once. Restarting the phase alone (the old rule) keeps
// the old frequency, so the very next sample is an outlier again.
TEST(SourceFilterTest, OutliersOnASlopeRestartWithTheNewFrequency) {
  SourceFilter filter = SettledFilter();  // 1 ms, frequency ~0, t = 384 s
  ASSERT_NEAR(filter.frequency(), 0, 1e-9);
  // From t = 384 s the source runs 20 ppm faster: +1.28 ms per 64 s.
  const auto x = [](double t) { return 1e-3 + 20e-6 * (t - 384); };
  for (int i = 7; i <= 8; ++i) {
    EXPECT_EQ(filter.Add(At(64.0 * i), x(64.0 * i), 100e-6),
              FilterVerdict::kSpike)
        << "sample " << i;
  }
  EXPECT_EQ(filter.Add(At(64.0 * 9), x(64.0 * 9), 100e-6),
            FilterVerdict::kRestarted);
  EXPECT_NEAR(filter.frequency(), 20e-6, 1e-9);
  EXPECT_NEAR(filter.OffsetAt(At(64.0 * 9)), x(64.0 * 9), 1e-9);
  // The path is the same: its delays are kept for the error bound.
  EXPECT_EQ(filter.min_delay(), 100e-6);
  // It follows the new line from then on.
  for (int i = 10; i <= 13; ++i) {
    EXPECT_EQ(filter.Add(At(64.0 * i), x(64.0 * i), 100e-6),
              FilterVerdict::kAccepted)
        << "sample " << i;
  }
  EXPECT_NEAR(filter.OffsetAt(At(64.0 * 13)), x(64.0 * 13), 1e-7);
}

// While outliers are pending the filter says how far off they claim it is,
// growing at their rate: the error bound covers a real change before the
// restart confirms it (0 once a good sample ends the run).
TEST(SourceFilterTest, PendingOutliersSayHowFarOffTheEstimateMayBe) {
  SourceFilter filter = SettledFilter();  // last sample at 384 s
  EXPECT_EQ(filter.PendingDisagreement(At(448)), 0);
  // 1.28 ms off at 448 s: since 384 s it grew at 20 µs/s.
  ASSERT_EQ(filter.Add(At(448), 1e-3 + 1.28e-3, 100e-6), FilterVerdict::kSpike);
  EXPECT_NEAR(filter.PendingDisagreement(At(448)), 1.28e-3, 1e-6);
  EXPECT_NEAR(filter.PendingDisagreement(At(480)), 1.92e-3, 1e-6);
  // A good sample ends the run.
  ASSERT_EQ(filter.Add(At(512), 1e-3, 100e-6), FilterVerdict::kAccepted);
  EXPECT_EQ(filter.PendingDisagreement(At(512)), 0);
}

TEST(SourceFilterTest, JitterIsTheRmsOfTheLastEightPostUpdateResiduals) {
  // All samples at one instant with zero delay: no prediction step, and every
  // sample's variance is σ0² (width = 0 + max(0, 0 / n) = 0). The filter is
  // then a running mean: after k samples P_xx = σ0² / k, the next gain is
  // K = (σ0²/k) / (σ0²/k + σ0²) = 1 / (k + 1), and the residual it records,
  // x - x_after, is x minus the mean of all k + 1 samples.
  // Alternate +a, -a, +a, ... (a = σ0 / 2, well inside the 5σ spike gate):
  //   #1 +a: mean a            (the first sample records no residual)
  //   #2 -a: mean 0    residual -a
  //   #3 +a: mean a/3  residual +2a/3
  //   #4 -a: mean 0    residual -a
  //   #5 +a: mean a/5  residual +4a/5
  //   #6 -a: mean 0    residual -a
  //   #7 +a: mean a/7  residual +6a/7
  //   #8 -a: mean 0    residual -a
  //   #9 +a: mean a/9  residual +8a/9
  // jitter = a * sqrt((4 + 4/9 + 16/25 + 36/49 + 64/81) / 8) = 0.9089322 a:
  // smaller than the samples' own scatter a, since each residual is taken
  // after the sample has pulled the estimate towards itself.
  const double a = 1e-6;
  SourceFilter filter;
  const MonoTime t = At(1000);
  for (int i = 1; i <= 9; ++i) {
    ASSERT_EQ(filter.Add(t, i % 2 == 1 ? a : -a, 0.0), FilterVerdict::kAccepted)
        << "sample " << i;
  }
  EXPECT_NEAR(filter.OffsetAt(t), a / 9, 1e-18);
  EXPECT_NEAR(
      filter.jitter(),
      a * std::sqrt((4 + 4.0 / 9 + 16.0 / 25 + 36.0 / 49 + 64.0 / 81) / 8),
      1e-15);
  EXPECT_NEAR(filter.jitter(), 0.9089322e-6, 1e-12);

  // Only the last eight count: #10 (-a, residual -a) replaces #2's -a and #11
  // (+a, mean a/11, residual +10a/11) replaces #3's +2a/3:
  // jitter = a * sqrt((4 + 100/121 + 16/25 + 36/49 + 64/81) / 8) = 0.9348304 a.
  filter.Add(t, -a, 0.0);
  filter.Add(t, a, 0.0);
  EXPECT_NEAR(
      filter.jitter(),
      a * std::sqrt((4 + 100.0 / 121 + 16.0 / 25 + 36.0 / 49 + 64.0 / 81) / 8),
      1e-15);
  EXPECT_NEAR(filter.jitter(), 0.9348304e-6, 1e-12);
}

TEST(SourceFilterTest, ResetPhaseKeepsFrequency) {
  SourceFilter filter;
  for (int i = 1; i <= 10; ++i) filter.Add(At(64.0 * i), 64e-4 * i, 100e-6);
  const double frequency = filter.frequency();
  const double frequency_variance = filter.frequency_variance();
  ASSERT_NEAR(frequency, 1e-4, 1e-9);
  ASSERT_GT(filter.jitter(), 0.0);

  filter.ResetPhase();
  EXPECT_EQ(filter.frequency(), frequency);
  EXPECT_EQ(filter.frequency_variance(), frequency_variance);
  // The residuals are forgotten; the path's delays are kept (the error
  // bound's asymmetry term rests on them) until ForgetPath (a new server).
  EXPECT_EQ(filter.jitter(), 0.0);
  EXPECT_EQ(filter.min_delay(), 100e-6);
  filter.ForgetPath();
  EXPECT_EQ(filter.min_delay(), 0.0);
  // The phase is forgotten too: the next sample (a new server, say) is taken as
  // it is, not rejected as a spike against the old level.
  EXPECT_EQ(filter.samples(), 0u);
  EXPECT_EQ(filter.Add(At(704), 3e-3, 100e-6), FilterVerdict::kAccepted);
  EXPECT_DOUBLE_EQ(filter.OffsetAt(At(704)), 3e-3);
}

// An oscillator whose frequency random-walks at `wander` per √s, sampled every
// 64 s with 2 µs of noise and equal delays; returns the filter's wander after
// 200 samples.
double LearnedWander(double wander, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0, 1);
  SourceFilter filter;
  double x = 0, f = 20e-6;
  for (int i = 0; i < 200; ++i) {
    filter.Add(At(64.0 * i), x + 2e-6 * normal(rng), 200e-6);
    for (int s = 0; s < 64; ++s) {
      x += f;
      f += wander * normal(rng);
    }
  }
  return filter.wander();
}

// The error bound extrapolates with the filter's wander, so it must follow the
// oscillator: one wandering 100 times more than the 1e-9 floor is learned
// (a filter that never adapts stays at 1e-9), and a quiet one stays at the
// floor (one that only ever raises it would not).
TEST(SourceFilterTest, WanderAdaptsToTheOscillator) {
  EXPECT_GT(LearnedWander(1e-7, 1), 2e-8);
  EXPECT_LT(LearnedWander(1e-7, 1), 1e-6);
  EXPECT_LT(LearnedWander(1e-10, 2), 2e-9);
}

// The simulator's broken baseline (tests/sim): no filtering at all.
TEST(SourceFilterTest, LastSampleOnlyBaselineTakesTheLastSample) {
  FilterOptions options;
  options.last_sample_only = true;
  SourceFilter filter(options);
  filter.Add(At(0), 0.001, 0.0002);
  filter.Add(At(64), 0.002, 0.0002);
  EXPECT_DOUBLE_EQ(filter.OffsetAt(At(64)), 0.002);
  EXPECT_DOUBLE_EQ(filter.frequency(), 0.001 / 64);
  // A sample 2 s later (a burst's pair) moves the offset, not the frequency.
  filter.Add(At(66), 0.005, 0.0002);
  EXPECT_DOUBLE_EQ(filter.OffsetAt(At(66)), 0.005);
  EXPECT_DOUBLE_EQ(filter.frequency(), 0.001 / 64);
  EXPECT_EQ(filter.samples(), 3u);
}

}  // namespace
}  // namespace ntpfleet::ntp
