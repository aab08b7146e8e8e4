#include "agent/ntp/discipline.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "agent/clock/sim_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet::ntp {
namespace {

using ::ntpfleet::clock::MonoTime;
using ::testing::HasSubstr;

// A monotonic clock that moves only when the test says so.
class FakeMonotonicClock final : public clock::MonotonicClock {
 public:
  MonoTime Now() const override { return now_; }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  MonoTime now_ = MonoTime::FromDuration(absl::Seconds(500));
};

// An AdjustableClock without CAP_SYS_TIME: every control is refused.
class DeniedClock final : public clock::AdjustableClock {
 public:
  absl::Time Now() const override { return absl::UnixEpoch(); }
  absl::Status Step(absl::Duration) override {
    return absl::PermissionDeniedError(
        "clock_adjtime: Operation not permitted");
  }
  absl::Status SetFrequencyAdjustment(double) override {
    return absl::PermissionDeniedError("adjtimex: Operation not permitted");
  }
  double FrequencyAdjustment() const override { return 0; }
  absl::Status SetSyncState(const clock::SyncState&) override {
    return absl::PermissionDeniedError("adjtimex: Operation not permitted");
  }
};

const absl::Time kEpoch = absl::FromCivil(
    absl::CivilSecond(2026, 1, 1, 0, 0, 0), absl::UTCTimeZone());
constexpr absl::Duration kSlewTime = absl::Seconds(16);

// A SimClock with no error of its own, and a Discipline over it starting at 0
// ppm. With C = 0 at the start, the offset e of the first Update is x itself.
class DisciplineTest : public ::testing::Test {
 protected:
  explicit DisciplineTest(const DisciplineOptions& options = {})
      : clock_(&mono_, kEpoch, {}),
        discipline_(&clock_, options, mono_.Now(), 0) {}

  double PhaseSeconds() const { return absl::ToDoubleSeconds(clock_.Phase()); }

  FakeMonotonicClock mono_;
  clock::SimClock clock_;
  Discipline discipline_;
};

TEST_F(DisciplineTest, StartsWithoutCorrection) {
  EXPECT_EQ(discipline_.CorrectionAt(mono_.Now()), 0);
  EXPECT_EQ(discipline_.base_frequency_ppm(), 0);
  EXPECT_FALSE(discipline_.slewing());
  EXPECT_EQ(discipline_.next_timer(), MonoTime::Infinite());
  EXPECT_EQ(clock_.FrequencyAdjustment(), 0);
}

TEST_F(DisciplineTest, StepsOnlyAboveThreshold) {
  const MonoTime now = mono_.Now();
  // 0.2 s > 0.128 s: stepped at once.
  const Correction c =
      discipline_.Update(now, 0.2, 0, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kStep);
  EXPECT_DOUBLE_EQ(c.offset, 0.2);
  EXPECT_NEAR(PhaseSeconds(), 0.2, 1e-12);
  EXPECT_EQ(clock_.steps(), 1);
  EXPECT_EQ(discipline_.steps(), 1);
  EXPECT_DOUBLE_EQ(discipline_.CorrectionAt(now), 0.2);
  EXPECT_FALSE(discipline_.slewing());

  // 0.1 s < 0.128 s: slewed, not stepped (x = 0.3 s against C = 0.2 s).
  // Spread over 250 s: 0.1 s / 250 s = 400 ppm, within the limit.
  const Correction slew =
      discipline_.Update(now, 0.3, 0, UpdateMode::kNormal, absl::Seconds(250));
  EXPECT_EQ(slew.kind, CorrectionKind::kSlew);
  EXPECT_NEAR(slew.offset, 0.1, 1e-15);
  EXPECT_EQ(clock_.steps(), 1);
  EXPECT_EQ(discipline_.steps(), 1);
  EXPECT_NEAR(PhaseSeconds(), 0.2, 1e-12);
  EXPECT_TRUE(discipline_.slewing());
  EXPECT_NEAR(clock_.FrequencyAdjustment(), 400, 1e-9);
  EXPECT_EQ(discipline_.next_timer(), now + absl::Seconds(250));
}

TEST_F(DisciplineTest, SlewSpreadsTheOffsetOverTheSlewTime) {
  const MonoTime now = mono_.Now();
  const Correction c =
      discipline_.Update(now, 1e-3, 0, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kSlew);
  EXPECT_DOUBLE_EQ(c.offset, 1e-3);
  // 1e-3 s / 16 s = 62.5e-6 = 62.5 ppm on top of the 0 ppm base.
  EXPECT_NEAR(clock_.FrequencyAdjustment(), 62.5, 1e-9);
  EXPECT_EQ(discipline_.base_frequency_ppm(), 0);
  EXPECT_TRUE(discipline_.slewing());
  EXPECT_EQ(discipline_.next_timer(), now + absl::Seconds(16));
  EXPECT_EQ(clock_.steps(), 0);

  // Halfway: 62.5e-6 * 8 s = 0.5 ms corrected so far.
  mono_.Advance(absl::Seconds(8));
  EXPECT_NEAR(discipline_.CorrectionAt(mono_.Now()), 0.5e-3, 1e-12);
  discipline_.HandleTimer(mono_.Now());  // not due yet: nothing changes
  EXPECT_TRUE(discipline_.slewing());

  mono_.Advance(absl::Seconds(8));
  discipline_.HandleTimer(mono_.Now());
  EXPECT_FALSE(discipline_.slewing());
  EXPECT_EQ(discipline_.next_timer(), MonoTime::Infinite());
  EXPECT_EQ(clock_.FrequencyAdjustment(), 0);  // back to the base
  // 62.5e-6 * 16 s = 1 ms, all of it.
  EXPECT_NEAR(discipline_.CorrectionAt(mono_.Now()), 1e-3, 1e-12);
  EXPECT_NEAR(PhaseSeconds(), 1e-3, 1e-12);

  // And nothing more accumulates after the slew.
  mono_.Advance(absl::Seconds(100));
  EXPECT_NEAR(discipline_.CorrectionAt(mono_.Now()), 1e-3, 1e-12);
  EXPECT_NEAR(PhaseSeconds(), 1e-3, 1e-12);
}

TEST_F(DisciplineTest, NegativeOffsetSlewsTheClockBack) {
  const MonoTime now = mono_.Now();
  const Correction c =
      discipline_.Update(now, -2e-3, 0, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kSlew);
  // -2e-3 s / 16 s = -125 ppm.
  EXPECT_NEAR(clock_.FrequencyAdjustment(), -125, 1e-9);
  mono_.Advance(absl::Seconds(16));
  discipline_.HandleTimer(mono_.Now());
  EXPECT_NEAR(PhaseSeconds(), -2e-3, 1e-12);
  EXPECT_NEAR(discipline_.CorrectionAt(mono_.Now()), -2e-3, 1e-12);
}

TEST_F(DisciplineTest, SlewIsStretchedToStayWithinTheLimit) {
  // Base 490 ppm leaves 10 ppm of headroom for a positive slew. 0.4 ms over
  // 16 s would need 25 ppm; stretched to 0.4e-3 / 10e-6 = 40 s instead. (0.4
  // ms is below the saturated-step floor of 0.5 ms, so it is slewed.)
  const MonoTime now = mono_.Now();
  const Correction c =
      discipline_.Update(now, 0.4e-3, 490e-6, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kSlew);
  EXPECT_NEAR(discipline_.base_frequency_ppm(), 490, 1e-9);
  EXPECT_LE(clock_.FrequencyAdjustment(), clock::kMaxFrequencyPpm);
  EXPECT_NEAR(clock_.FrequencyAdjustment(), 500, 1e-9);
  EXPECT_NEAR(absl::ToDoubleSeconds(discipline_.next_timer() - now), 40, 1e-6);
  mono_.Advance(absl::Seconds(40));
  discipline_.HandleTimer(mono_.Now());
  EXPECT_FALSE(discipline_.slewing());
  EXPECT_NEAR(clock_.FrequencyAdjustment(), 490, 1e-9);
  // 490e-6 * 40 s of base + 0.4 ms of slew = 19.6 ms + 0.4 ms = 20 ms.
  EXPECT_NEAR(discipline_.CorrectionAt(mono_.Now()), 20e-3, 1e-9);
}

// A slew at the limit over any base frequency: the sum sent to the clock never
// exceeds the limit, not even by the one ulp that (limit - base) + base can
// round to (e.g. base -167.30481463987093 ppm). The SimClock, like the
// kernel, refuses |ppm| > 500: before the fix a resync failed "frequency
// adjustment 500.000 ppm is beyond the +/-500 ppm limit" on ~10% of bases.
TEST_F(DisciplineTest, SlewAtTheLimitNeverExceedsItAfterRounding) {
  int slews = 0;
  for (int i = 0; i <= 2000; ++i) {
    const double base_ppm = -499.75 + i * 0.4997 + 1e-7 * i;
    mono_.Advance(absl::Seconds(1));
    const Correction c =
        discipline_.Update(mono_.Now(), 0.4e-3, base_ppm * 1e-6,
                           UpdateMode::kNormal, absl::Milliseconds(1));
    ASSERT_NE(c.kind, CorrectionKind::kError)
        << "base " << base_ppm << " ppm: " << c.message;
    EXPECT_LE(std::fabs(clock_.FrequencyAdjustment()), clock::kMaxFrequencyPpm);
    if (c.kind == CorrectionKind::kSlew) ++slews;
  }
  EXPECT_GT(slews, 1900);
}

class NeverStepDisciplineTest : public DisciplineTest {
 protected:
  static DisciplineOptions NeverStep() {
    DisciplineOptions options;
    options.step_threshold = absl::ZeroDuration();  // ntpd -x
    return options;
  }
  NeverStepDisciplineTest() : DisciplineTest(NeverStep()) {}
};

TEST_F(NeverStepDisciplineTest, NeverExceedsTheFrequencyLimit) {
  // Base 450 ppm; +10 ms over 16 s would need 625 ppm more, but only 50 ppm is
  // left: the slew takes 10e-3 / 50e-6 = 200 s at 500 ppm in total.
  const MonoTime now = mono_.Now();
  const Correction c =
      discipline_.Update(now, 10e-3, 450e-6, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kSlew);
  EXPECT_NEAR(discipline_.base_frequency_ppm(), 450, 1e-9);
  EXPECT_LE(std::fabs(clock_.FrequencyAdjustment()), clock::kMaxFrequencyPpm);
  EXPECT_NEAR(clock_.FrequencyAdjustment(), 500, 1e-9);
  EXPECT_NEAR(absl::ToDoubleSeconds(discipline_.next_timer() - now), 200, 1e-6);
  EXPECT_EQ(clock_.steps(), 0);
}

TEST_F(NeverStepDisciplineTest, NeverStepsInNormalMode) {
  const Correction c =
      discipline_.Update(mono_.Now(), 0.5, 0, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kSlew);
  EXPECT_EQ(clock_.steps(), 0);
  EXPECT_NEAR(clock_.FrequencyAdjustment(), 500, 1e-9);
  // 0.5 s at 500 ppm: 1000 s.
  EXPECT_NEAR(absl::ToDoubleSeconds(discipline_.next_timer() - mono_.Now()),
              1000, 1e-6);
}

TEST_F(NeverStepDisciplineTest, StillStepsAtStartup) {
  const Correction c =
      discipline_.Update(mono_.Now(), 0.5, 0, UpdateMode::kStartup, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kStep);
  EXPECT_NEAR(PhaseSeconds(), 0.5, 1e-12);
}

TEST_F(DisciplineTest, RefusesToCorrectBeyondThePanicThreshold) {
  const Correction c =
      discipline_.Update(mono_.Now(), 2000, 0, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kPanic);
  EXPECT_DOUBLE_EQ(c.offset, 2000);
  EXPECT_THAT(c.message, HasSubstr("panic threshold"));
  // The clock is untouched.
  EXPECT_EQ(clock_.steps(), 0);
  EXPECT_EQ(clock_.Phase(), absl::ZeroDuration());
  EXPECT_EQ(clock_.FrequencyAdjustment(), 0);
  EXPECT_EQ(discipline_.CorrectionAt(mono_.Now()), 0);
  EXPECT_FALSE(discipline_.slewing());
}

TEST_F(DisciplineTest, NegativePanicOffsetIsRefusedToo) {
  const Correction c =
      discipline_.Update(mono_.Now(), -2000, 0, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kPanic);
  EXPECT_EQ(clock_.steps(), 0);
}

TEST_F(DisciplineTest, StepsPanicOffsetAtStartup) {
  // allow_panic_at_startup defaults to true (ntpd -g).
  const Correction c =
      discipline_.Update(mono_.Now(), 2000, 0, UpdateMode::kStartup, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kStep);
  EXPECT_NEAR(PhaseSeconds(), 2000, 1e-9);
  EXPECT_DOUBLE_EQ(discipline_.CorrectionAt(mono_.Now()), 2000);
}

TEST(DisciplinePanicTest, RefusesPanicOffsetAtStartupWithoutPermission) {
  FakeMonotonicClock mono;
  clock::SimClock clock(&mono, kEpoch, {});
  DisciplineOptions options;
  options.allow_panic_at_startup = false;
  Discipline discipline(&clock, options, mono.Now(), 0);
  const Correction c =
      discipline.Update(mono.Now(), 2000, 0, UpdateMode::kStartup, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kPanic);
  EXPECT_THAT(c.message, HasSubstr("panic threshold"));
  EXPECT_EQ(clock.steps(), 0);
}

TEST_F(DisciplineTest, ForcedResyncWithStepCorrectsPanicOffset) {
  const Correction c =
      discipline_.Update(mono_.Now(), 2000, 0, UpdateMode::kForced, kSlewTime,
                         /*allow_step=*/true);
  EXPECT_EQ(c.kind, CorrectionKind::kStep);
  EXPECT_NEAR(PhaseSeconds(), 2000, 1e-9);
}

TEST_F(DisciplineTest, ForcedResyncWithoutStepStillPanics) {
  const Correction c =
      discipline_.Update(mono_.Now(), 2000, 0, UpdateMode::kForced, kSlewTime,
                         /*allow_step=*/false);
  EXPECT_EQ(c.kind, CorrectionKind::kPanic);
  EXPECT_EQ(clock_.steps(), 0);
}

TEST_F(DisciplineTest, ForcedResyncWithStepUsesTheStartupThreshold) {
  // 2 ms: slewed normally, stepped by `resync --step`.
  const Correction c =
      discipline_.Update(mono_.Now(), 2e-3, 0, UpdateMode::kForced, kSlewTime,
                         /*allow_step=*/true);
  EXPECT_EQ(c.kind, CorrectionKind::kStep);
  EXPECT_NEAR(PhaseSeconds(), 2e-3, 1e-12);
}

TEST_F(DisciplineTest, StartupStepsAboveStartupThreshold) {
  // 2 ms > the 1 ms start-up threshold.
  const Correction c =
      discipline_.Update(mono_.Now(), 2e-3, 0, UpdateMode::kStartup, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kStep);
  EXPECT_NEAR(PhaseSeconds(), 2e-3, 1e-12);
  EXPECT_EQ(clock_.steps(), 1);
}

TEST_F(DisciplineTest, StartupSlewsBelowStartupThreshold) {
  // 0.5 ms < 1 ms: slewed, at 0.5e-3 / 16 s = 31.25 ppm.
  const Correction c = discipline_.Update(mono_.Now(), 0.5e-3, 0,
                                          UpdateMode::kStartup, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kSlew);
  EXPECT_EQ(clock_.steps(), 0);
  EXPECT_NEAR(clock_.FrequencyAdjustment(), 31.25, 1e-9);
}

TEST_F(DisciplineTest, FrequencyCancelsTheOscillatorError) {
  // x' = f = -100e-6: the free-running oscillator gains 100 µs per second on
  // the reference, i.e. runs 100 ppm fast; the adjustment (adjtimex sign) is
  // -100 ppm.
  const Correction c = discipline_.Update(mono_.Now(), 0, -100e-6,
                                          UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kSlew);
  EXPECT_NEAR(discipline_.base_frequency_ppm(), -100, 1e-9);
  EXPECT_NEAR(clock_.FrequencyAdjustment(), -100, 1e-9);
  EXPECT_FALSE(discipline_.slewing());  // no phase to slew
}

TEST(DisciplineFrequencyTest, KeepsAFastOscillatorOnTime) {
  FakeMonotonicClock mono;
  clock::SimClock clock(&mono, kEpoch, {.frequency_error_ppm = 100});
  Discipline discipline(&clock, {}, mono.Now(), 0);
  discipline.Update(mono.Now(), 0, -100e-6, UpdateMode::kNormal, kSlewTime);
  EXPECT_NEAR(clock.RateErrorPpm(), 0, 1e-9);
  mono.Advance(absl::Seconds(1000));
  EXPECT_NEAR(absl::ToDoubleSeconds(clock.Phase()), 0, 1e-9);
  // C(t) = -100e-6 * 1000 s = -0.1 s, following x(t) exactly.
  EXPECT_NEAR(discipline.CorrectionAt(mono.Now()), -0.1, 1e-9);
}

TEST_F(DisciplineTest, InitialAdjustmentIsAppliedAndClamped) {
  Discipline from_drift_file(&clock_, {}, mono_.Now(), 12.5);
  EXPECT_EQ(from_drift_file.base_frequency_ppm(), 12.5);
  EXPECT_EQ(clock_.FrequencyAdjustment(), 12.5);
  Discipline out_of_range(&clock_, {}, mono_.Now(), -800);
  EXPECT_EQ(out_of_range.base_frequency_ppm(), -500);
  EXPECT_EQ(clock_.FrequencyAdjustment(), -500);
}

TEST_F(DisciplineTest, StepsWhenTheFrequencyIsSaturated) {
  // Base at the +500 ppm limit and the clock still behind by 2 ms: no room to
  // slew it faster, so it is stepped (2 ms is above the 0.5 ms floor).
  const Correction c = discipline_.Update(mono_.Now(), 2e-3, 500e-6,
                                          UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kStep);
  EXPECT_THAT(c.message, HasSubstr("saturated"));
  EXPECT_NEAR(PhaseSeconds(), 2e-3, 1e-12);
  EXPECT_EQ(clock_.FrequencyAdjustment(), 500);
  EXPECT_FALSE(discipline_.slewing());
}

TEST_F(DisciplineTest, StepsWhenTheFrequencyIsSaturatedNegative) {
  const Correction c = discipline_.Update(mono_.Now(), -2e-3, -500e-6,
                                          UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kStep);
  EXPECT_THAT(c.message, HasSubstr("saturated"));
  EXPECT_NEAR(PhaseSeconds(), -2e-3, 1e-12);
}

TEST_F(DisciplineTest, SaturatedFrequencyStillSlewsTheOtherWay) {
  // At +500 ppm, a clock 2 ms *ahead* has 1000 ppm of room downwards:
  // -2e-3 / 16 s = -125 ppm, total 375 ppm.
  const Correction c = discipline_.Update(mono_.Now(), -2e-3, 500e-6,
                                          UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kSlew);
  EXPECT_NEAR(clock_.FrequencyAdjustment(), 375, 1e-9);
}

// Below the step threshold and with room to slew, an offset is slewed however
// long that takes (the slew is stretched, not turned into a step).
TEST_F(DisciplineTest, SlewsWhenTheLimitLeavesRoom) {
  const MonoTime now = mono_.Now();
  // Base 450 ppm leaves 50 ppm: 10 ms takes 10e-3 / 50e-6 = 200 s.
  const Correction c =
      discipline_.Update(now, 10e-3, 450e-6, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kSlew);
  EXPECT_EQ(discipline_.next_timer() - now, absl::Seconds(200));
  EXPECT_NEAR(clock_.FrequencyAdjustment(), 500, 1e-9);
}

TEST(DisciplineShutdownTest, EndsTheSlewAtTheLearnedFrequency) {
  FakeMonotonicClock mono;
  clock::SimClock clock(&mono, kEpoch, {});
  Discipline discipline(&clock, {}, mono.Now(), 12.5);  // from a drift file
  const Correction c =
      discipline.Update(mono.Now(), 1e-3, 0, UpdateMode::kNormal, kSlewTime);
  ASSERT_EQ(c.kind, CorrectionKind::kSlew);
  const double base = discipline.base_frequency_ppm();
  // 62.5 ppm of slew on top of the base.
  ASSERT_NEAR(clock.FrequencyAdjustment(), base + 62.5, 1e-9);

  mono.Advance(absl::Seconds(4));  // a quarter of the slew done
  const double corrected = discipline.CorrectionAt(mono.Now());
  ASSERT_TRUE(discipline.Shutdown(mono.Now()).ok());
  EXPECT_DOUBLE_EQ(clock.FrequencyAdjustment(), base);
  EXPECT_FALSE(discipline.slewing());
  EXPECT_EQ(discipline.next_timer(), MonoTime::Infinite());
  // What was corrected stays; from now on only the base rate accrues.
  EXPECT_DOUBLE_EQ(discipline.CorrectionAt(mono.Now()), corrected);
}

TEST(DisciplineSlewTest, LargeOffsetBelowTheStepThresholdIsSlewed) {
  FakeMonotonicClock mono;
  clock::SimClock clock(&mono, kEpoch, {});
  Discipline discipline(&clock, {}, mono.Now(), 0);
  const Correction c =
      discipline.Update(mono.Now(), 0.1, 0, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kSlew);
  EXPECT_EQ(discipline.next_timer() - mono.Now(), absl::Seconds(200));
  EXPECT_EQ(clock.steps(), 0);
}

TEST(DisciplineErrorTest, ReportsARefusedStep) {
  FakeMonotonicClock mono;
  DeniedClock clock;
  Discipline discipline(&clock, {}, mono.Now(), 0);
  const Correction c =
      discipline.Update(mono.Now(), 0.2, 0, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kError);
  EXPECT_EQ(c.message, "clock_adjtime: Operation not permitted");
  EXPECT_EQ(discipline.steps(), 0);
  EXPECT_EQ(discipline.CorrectionAt(mono.Now()), 0);
}

TEST(DisciplineErrorTest, ReportsARefusedSlew) {
  FakeMonotonicClock mono;
  DeniedClock clock;
  Discipline discipline(&clock, {}, mono.Now(), 0);
  const Correction c =
      discipline.Update(mono.Now(), 1e-4, 0, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kError);
  EXPECT_EQ(c.message, "adjtimex: Operation not permitted");
  EXPECT_FALSE(discipline.slewing());
  // Nothing was applied, so nothing is counted as corrected.
  mono.Advance(absl::Seconds(16));
  EXPECT_EQ(discipline.CorrectionAt(mono.Now()), 0);
}

// leapsecmode slew: UTC went back 1 s (an inserted second) and the clock ran
// on. x = offset + C must stay continuous, so C absorbs the jump, and the
// clock is slewed back at the 500 ppm limit, never stepped.
TEST(DisciplineLeapTest, SlewsAnInsertedSecondAtTheLimitAndNeverSteps) {
  FakeMonotonicClock mono;
  clock::SimClock clock(&mono, kEpoch, {});  // no error of its own: x = 0
  Discipline discipline(&clock, {}, mono.Now(), 0);
  discipline.LeapSecond(mono.Now(), -1.0);
  // Offsets now read 1 s less: C moved by +1 s, so x = offset + C is as before.
  EXPECT_DOUBLE_EQ(discipline.CorrectionAt(mono.Now()), 1.0);
  EXPECT_TRUE(discipline.leap_slewing());
  EXPECT_DOUBLE_EQ(clock.FrequencyAdjustment(), -500);
  // 1 s at 500 ppm: 2000 s.
  EXPECT_EQ(discipline.next_timer() - mono.Now(), absl::Seconds(2000));

  // An update half-way finds 0.5 s to go: far above the 128 ms step
  // threshold, it is slewed on at the limit, not stepped.
  mono.Advance(absl::Seconds(1000));
  const Correction c =
      discipline.Update(mono.Now(), 0, 0, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(c.kind, CorrectionKind::kSlew);
  EXPECT_NEAR(c.offset, -0.5, 1e-9);
  EXPECT_EQ(clock.steps(), 0);
  EXPECT_DOUBLE_EQ(clock.FrequencyAdjustment(), -500);
  EXPECT_NEAR(absl::ToDoubleSeconds(discipline.next_timer() - mono.Now()), 1000,
              1e-6);
  mono.Advance(absl::Seconds(1000));
  discipline.HandleTimer(mono.Now());
  EXPECT_FALSE(discipline.leap_slewing());
  EXPECT_DOUBLE_EQ(clock.FrequencyAdjustment(), 0);
  // The clock lost exactly the inserted second, without a step.
  EXPECT_NEAR(absl::ToDoubleSeconds(clock.Phase()), -1.0, 1e-9);
  EXPECT_EQ(clock.steps(), 0);
  // From here the normal rules apply again: 0.2 s would be stepped.
  const Correction after =
      discipline.Update(mono.Now(), 0.2 + discipline.CorrectionAt(mono.Now()),
                        0, UpdateMode::kNormal, kSlewTime);
  EXPECT_EQ(after.kind, CorrectionKind::kStep);
}

TEST(DisciplineLeapTest, AForcedResyncThatAllowsStepsMayStillStep) {
  FakeMonotonicClock mono;
  clock::SimClock clock(&mono, kEpoch, {});
  Discipline discipline(&clock, {}, mono.Now(), 0);
  discipline.LeapSecond(mono.Now(), -1.0);
  const Correction c = discipline.Update(mono.Now(), 0, 0, UpdateMode::kForced,
                                         absl::Milliseconds(1), true);
  EXPECT_EQ(c.kind, CorrectionKind::kStep);
  EXPECT_EQ(clock.steps(), 1);
  EXPECT_FALSE(discipline.leap_slewing());
}

}  // namespace
}  // namespace ntpfleet::ntp
