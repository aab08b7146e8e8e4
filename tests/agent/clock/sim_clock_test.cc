#include "agent/clock/sim_clock.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet::clock {
namespace {

using ::testing::HasSubstr;

// A monotonic clock that moves only when the test says so.
class FakeMonotonicClock final : public MonotonicClock {
 public:
  MonoTime Now() const override { return now_; }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  // Not zero, so that nothing relies on the origin being 0.
  MonoTime now_ = MonoTime::FromDuration(absl::Seconds(12345));
};

const absl::Time kEpoch = absl::FromCivil(
    absl::CivilSecond(2026, 1, 1, 0, 0, 0), absl::UTCTimeZone());

double PhaseSeconds(const SimClock& clock) {
  return absl::ToDoubleSeconds(clock.Phase());
}

TEST(SimClockTest, StartsAtInitialOffsetFromTrueTime) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {.initial_offset = absl::Milliseconds(-50)});
  EXPECT_EQ(clock.TrueNow(), kEpoch);
  EXPECT_EQ(clock.Phase(), absl::Milliseconds(-50));
  EXPECT_EQ(clock.Now(), kEpoch - absl::Milliseconds(50));
  EXPECT_EQ(clock.steps(), 0);
  EXPECT_EQ(clock.FrequencyAdjustment(), 0);
}

TEST(SimClockTest, TrueTimeFollowsTheMonotonicClock) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {.initial_offset = absl::Seconds(2)});
  mono.Advance(absl::Seconds(90));
  EXPECT_EQ(clock.TrueNow(), kEpoch + absl::Seconds(90));
  // No frequency error: local = true + 2 s, at every instant.
  EXPECT_EQ(clock.Now(), clock.TrueNow() + absl::Seconds(2));
}

TEST(SimClockTest, PhaseGrowsAtTheFrequencyError) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {.frequency_error_ppm = 100});
  mono.Advance(absl::Seconds(10));
  // 100e-6 * 10 s = 1e-3 s; positive: the fast clock is ahead of true time.
  EXPECT_NEAR(PhaseSeconds(clock), 1e-3, 1e-12);
  EXPECT_NEAR(absl::ToDoubleSeconds(clock.Now() - clock.TrueNow()), 1e-3, 1e-9);
  EXPECT_EQ(clock.RateErrorPpm(), 100);
}

TEST(SimClockTest, SlowClockFallsBehind) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {.frequency_error_ppm = -20});
  mono.Advance(absl::Seconds(50));
  // -20e-6 * 50 s = -1e-3 s.
  EXPECT_NEAR(PhaseSeconds(clock), -1e-3, 1e-12);
}

TEST(SimClockTest, NowIsTrueTimePlusPhase) {
  FakeMonotonicClock mono;
  SimClock clock(
      &mono, kEpoch,
      {.initial_offset = absl::Milliseconds(7), .frequency_error_ppm = 300});
  mono.Advance(absl::Seconds(3));
  // 7 ms + 300e-6 * 3 s = 7.9 ms.
  EXPECT_NEAR(PhaseSeconds(clock), 7.9e-3, 1e-12);
  EXPECT_EQ(clock.Now(), clock.TrueNow() + clock.Phase());
}

TEST(SimClockTest, StepAddsToPhaseAtOnce) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {.initial_offset = absl::Milliseconds(-50)});
  EXPECT_TRUE(clock.Step(absl::Milliseconds(200)).ok());
  // -50 ms + 200 ms = +150 ms, with no time passing.
  EXPECT_NEAR(PhaseSeconds(clock), 0.150, 1e-12);
  EXPECT_TRUE(clock.Step(absl::Milliseconds(-450)).ok());
  // +150 ms - 450 ms = -300 ms.
  EXPECT_NEAR(PhaseSeconds(clock), -0.300, 1e-12);
  EXPECT_EQ(clock.steps(), 2);
}

TEST(SimClockTest, StepKeepsTheDriftAccumulatedBeforeIt) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {.frequency_error_ppm = 100});
  mono.Advance(absl::Seconds(10));  // +1 ms of drift
  ASSERT_TRUE(clock.Step(absl::Milliseconds(-1)).ok());
  EXPECT_NEAR(PhaseSeconds(clock), 0, 1e-12);
  mono.Advance(absl::Seconds(10));  // another +1 ms
  EXPECT_NEAR(PhaseSeconds(clock), 1e-3, 1e-12);
}

TEST(SimClockTest, OpposingAdjustmentCancelsTheFrequencyError) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {.frequency_error_ppm = 100});
  // adjtimex sign: -100 slows the clock by 100 ppm, cancelling +100 ppm fast.
  ASSERT_TRUE(clock.SetFrequencyAdjustment(-100).ok());
  EXPECT_EQ(clock.FrequencyAdjustment(), -100);
  EXPECT_EQ(clock.RateErrorPpm(), 0);
  mono.Advance(absl::Seconds(1000));
  EXPECT_NEAR(PhaseSeconds(clock), 0, 1e-12);
}

TEST(SimClockTest, RateErrorIsNaturalPlusAdjustment) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {.frequency_error_ppm = 100});
  ASSERT_TRUE(clock.SetFrequencyAdjustment(20).ok());
  EXPECT_EQ(clock.RateErrorPpm(), 120);
  mono.Advance(absl::Seconds(10));
  // 120e-6 * 10 s = 1.2 ms.
  EXPECT_NEAR(PhaseSeconds(clock), 1.2e-3, 1e-12);
}

TEST(SimClockTest, NewAdjustmentAppliesOnlyFromNow) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {.frequency_error_ppm = 100});
  mono.Advance(absl::Seconds(10));  // +1 ms at 100 ppm
  ASSERT_TRUE(clock.SetFrequencyAdjustment(-100).ok());
  mono.Advance(absl::Seconds(10));  // +0 at 0 ppm
  EXPECT_NEAR(PhaseSeconds(clock), 1e-3, 1e-12);
  ASSERT_TRUE(clock.SetFrequencyAdjustment(-300).ok());
  mono.Advance(absl::Seconds(5));  // -200e-6 * 5 s = -1 ms
  EXPECT_NEAR(PhaseSeconds(clock), 0, 1e-12);
}

TEST(SimClockTest, AcceptsAdjustmentsUpToTheLimit) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {});
  EXPECT_TRUE(clock.SetFrequencyAdjustment(kMaxFrequencyPpm).ok());
  EXPECT_EQ(clock.FrequencyAdjustment(), 500);
  EXPECT_TRUE(clock.SetFrequencyAdjustment(-kMaxFrequencyPpm).ok());
  EXPECT_EQ(clock.FrequencyAdjustment(), -500);
}

TEST(SimClockTest, RejectsAdjustmentsBeyondTheLimit) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {});
  ASSERT_TRUE(clock.SetFrequencyAdjustment(42).ok());
  for (double ppm : {500.001, -500.001, 1e6, std::nan("")}) {
    SCOPED_TRACE(ppm);
    const absl::Status s = clock.SetFrequencyAdjustment(ppm);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("500 ppm"));
    // A refused adjustment leaves the old one in place.
    EXPECT_EQ(clock.FrequencyAdjustment(), 42);
  }
}

TEST(SimClockTest, RemembersTheSyncState) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {});
  EXPECT_FALSE(clock.sync_state().synchronized);
  SyncState state;
  state.synchronized = true;
  state.estimated_error = absl::Microseconds(250);
  state.max_error = absl::Milliseconds(3);
  state.leap = LeapAction::kInsert;
  ASSERT_TRUE(clock.SetSyncState(state).ok());
  EXPECT_TRUE(clock.sync_state().synchronized);
  EXPECT_EQ(clock.sync_state().estimated_error, absl::Microseconds(250));
  EXPECT_EQ(clock.sync_state().max_error, absl::Milliseconds(3));
  EXPECT_EQ(clock.sync_state().leap, LeapAction::kInsert);
}

// Phase every 10 s for 200 s, read in the same pattern for every clock.
std::vector<double> PhaseTrace(const SimClockParams& params) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, params);
  std::vector<double> phases;
  for (int i = 0; i < 20; ++i) {
    mono.Advance(absl::Seconds(10));
    phases.push_back(PhaseSeconds(clock));
  }
  return phases;
}

TEST(SimClockTest, SameSeedGivesTheSameWander) {
  const SimClockParams params = {.wander = 1e-8, .seed = 7};
  EXPECT_EQ(PhaseTrace(params), PhaseTrace(params));
}

TEST(SimClockTest, DifferentSeedsWanderDifferently) {
  const std::vector<double> a = PhaseTrace({.wander = 1e-8, .seed = 7});
  const std::vector<double> b = PhaseTrace({.wander = 1e-8, .seed = 8});
  EXPECT_NE(a, b);
  // With wander, the phase moves although the nominal frequency error is 0.
  EXPECT_NE(a.back(), 0);
}

TEST(SimClockTest, WanderMovesTheRateError) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {.frequency_error_ppm = 10, .wander = 1e-8});
  mono.Advance(absl::Seconds(100));
  // 100 ticks of 1e-8 * N(0, 1) each = 0.01 ppm * N(0, 10): certainly not 0,
  // and far below 1 ppm (a 100σ event).
  EXPECT_NE(clock.RateErrorPpm(), 10);
  EXPECT_NEAR(clock.RateErrorPpm(), 10, 1);
}

TEST(SimClockTest, WithoutWanderTheSeedDoesNotMatter) {
  EXPECT_EQ(PhaseTrace({.frequency_error_ppm = 3, .seed = 1}),
            PhaseTrace({.frequency_error_ppm = 3, .seed = 2}));
}

TEST(SimClockTest, ReadingDoesNotChangeTheResult) {
  // Lazy integration: reading often or once gives the same phase (no wander,
  // so the integral is linear and exact up to rounding).
  FakeMonotonicClock mono_a;
  FakeMonotonicClock mono_b;
  SimClock a(&mono_a, kEpoch, {.frequency_error_ppm = 37});
  SimClock b(&mono_b, kEpoch, {.frequency_error_ppm = 37});
  for (int i = 0; i < 1000; ++i) {
    mono_a.Advance(absl::Milliseconds(100));
    (void)a.Now();
  }
  mono_b.Advance(absl::Seconds(100));
  // 37e-6 * 100 s = 3.7 ms.
  EXPECT_NEAR(PhaseSeconds(a), 3.7e-3, 1e-12);
  EXPECT_NEAR(PhaseSeconds(b), 3.7e-3, 1e-12);
}

TEST(SimClockTest, ShiftNaturalFrequencyChangesTheRateFromNowOn) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kEpoch, {.frequency_error_ppm = 10});
  mono.Advance(absl::Seconds(100));  // +1 ms at 10 ppm
  clock.ShiftNaturalFrequency(2);
  EXPECT_DOUBLE_EQ(clock.RateErrorPpm(), 12);
  mono.Advance(absl::Seconds(100));  // +1.2 ms at 12 ppm
  EXPECT_NEAR(PhaseSeconds(clock), 2.2e-3, 1e-12);
  // The frequency adjustment NTP sets is separate and unchanged.
  EXPECT_EQ(clock.FrequencyAdjustment(), 0);
}

// Leap seconds as the Linux kernel applies them (STA_INS / STA_DEL).
const absl::Time kLeapDayEnd = absl::FromCivil(
    absl::CivilSecond(2017, 1, 1, 0, 0, 0), absl::UTCTimeZone());

TEST(SimClockLeapTest, InsertedSecondRepeats235959AtTheDayEnd) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kLeapDayEnd - absl::Seconds(10), {});
  SyncState insert;
  insert.leap = LeapAction::kInsert;
  ASSERT_TRUE(clock.SetSyncState(insert).ok());
  mono.Advance(absl::Milliseconds(9500));
  EXPECT_EQ(clock.Now(), kLeapDayEnd - absl::Milliseconds(500));
  EXPECT_EQ(clock.leaps(), 0);
  // 23:59:60.5 reads 23:59:59.5 again; true time runs on.
  mono.Advance(absl::Seconds(1));
  EXPECT_EQ(clock.Now(), kLeapDayEnd - absl::Milliseconds(500));
  EXPECT_EQ(clock.leaps(), 1);
  EXPECT_EQ(clock.Phase(), absl::Seconds(-1));
  // Once only, though the clock reaches midnight again and the flag is set.
  mono.Advance(absl::Seconds(2));
  EXPECT_EQ(clock.Now(), kLeapDayEnd + absl::Milliseconds(1500));
  EXPECT_EQ(clock.leaps(), 1);
  EXPECT_EQ(clock.steps(), 0);  // a leap is not a step
}

TEST(SimClockLeapTest, DeletedSecondSkips235959) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kLeapDayEnd - absl::Seconds(10), {});
  SyncState del;
  del.leap = LeapAction::kDelete;
  ASSERT_TRUE(clock.SetSyncState(del).ok());
  mono.Advance(absl::Milliseconds(8900));  // 23:59:58.9
  EXPECT_EQ(clock.Now(), kLeapDayEnd - absl::Milliseconds(1100));
  mono.Advance(absl::Milliseconds(200));  // 23:59:59.1 is 00:00:00.1
  EXPECT_EQ(clock.Now(), kLeapDayEnd + absl::Milliseconds(100));
  EXPECT_EQ(clock.leaps(), 1);
  EXPECT_EQ(clock.Phase(), absl::Seconds(1));
}

TEST(SimClockLeapTest, NoLeapWithoutTheFlagOrAfterItIsCleared) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kLeapDayEnd - absl::Seconds(10), {});
  mono.Advance(absl::Seconds(20));
  EXPECT_EQ(clock.Now(), kLeapDayEnd + absl::Seconds(10));
  EXPECT_EQ(clock.leaps(), 0);

  // Armed, then disarmed before the day end.
  SimClock disarmed(&mono, kLeapDayEnd - absl::Seconds(10), {});
  SyncState state;
  state.leap = LeapAction::kInsert;
  ASSERT_TRUE(disarmed.SetSyncState(state).ok());
  mono.Advance(absl::Seconds(5));
  state.leap = LeapAction::kNone;
  ASSERT_TRUE(disarmed.SetSyncState(state).ok());
  mono.Advance(absl::Seconds(10));
  EXPECT_EQ(disarmed.leaps(), 0);
  EXPECT_EQ(disarmed.Phase(), absl::ZeroDuration());
}

TEST(SimClockLeapTest, ClearingAndSettingTheFlagAgainArmsTheNextDayEnd) {
  FakeMonotonicClock mono;
  SimClock clock(&mono, kLeapDayEnd - absl::Seconds(1), {});
  SyncState state;
  state.leap = LeapAction::kInsert;
  ASSERT_TRUE(clock.SetSyncState(state).ok());
  mono.Advance(absl::Seconds(2));
  EXPECT_EQ(clock.leaps(), 1);
  state.leap = LeapAction::kNone;
  ASSERT_TRUE(clock.SetSyncState(state).ok());
  state.leap = LeapAction::kInsert;
  ASSERT_TRUE(clock.SetSyncState(state).ok());
  // Not before the end of the next day (by the clock's reading).
  mono.Advance(absl::Hours(23));
  EXPECT_EQ(clock.leaps(), 1);
  mono.Advance(absl::Hours(2));
  EXPECT_EQ(clock.leaps(), 2);
  EXPECT_EQ(clock.Phase(), absl::Seconds(-2));
}

}  // namespace
}  // namespace ntpfleet::clock
