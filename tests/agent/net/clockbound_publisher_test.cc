// ClockBoundModel: the status mapping, the bound and void_after around a leap
// second, external steps and the drift rate.
#include "agent/net/clockbound_publisher.h"

#include "absl/time/civil_time.h"
#include "gtest/gtest.h"

namespace ntpfleet::net {
namespace {

using clockbound::ClockStatus;
constexpr int64_t kSec = 1'000'000'000;

ClockBoundSnapshot Synced(absl::Time clock_now) {
  ClockBoundSnapshot s;
  s.state = ntp::SyncState::kSynchronized;
  s.error_bound = absl::Microseconds(250);
  s.clock_now = clock_now;
  s.as_of = {1000, 0};
  return s;
}

absl::Time Utc(int y, int m, int d, int hh, int mm, int ss) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss),
                         absl::UTCTimeZone());
}

TEST(ClockBoundModelTest, MapsEngineStates) {
  const absl::Duration b = absl::Milliseconds(1);
  const auto up = ntp::ErrorBoundReference::kUpstream;
  using S = ntp::SyncState;
  EXPECT_EQ(ClockBoundModel::MapStatus(S::kSynchronized, b, up),
            ClockStatus::kSynchronized);
  EXPECT_EQ(ClockBoundModel::MapStatus(S::kSyncing, b, up),
            ClockStatus::kSynchronized);
  EXPECT_EQ(
      ClockBoundModel::MapStatus(S::kSyncing, absl::InfiniteDuration(), up),
      ClockStatus::kUnknown);
  EXPECT_EQ(ClockBoundModel::MapStatus(S::kHoldover, b, up),
            ClockStatus::kFreeRunning);
  EXPECT_EQ(ClockBoundModel::MapStatus(S::kUnsynchronized, b, up),
            ClockStatus::kUnknown);
  EXPECT_EQ(ClockBoundModel::MapStatus(S::kRefused, b, up),
            ClockStatus::kUnknown);
  // The local clock's bound (0) is relative to itself, not to true time.
  EXPECT_EQ(ClockBoundModel::MapStatus(S::kLocalClock, absl::ZeroDuration(),
                                       ntp::ErrorBoundReference::kLocalClock),
            ClockStatus::kUnknown);
}

TEST(ClockBoundModelTest, WritesBoundValidityAndDrift) {
  ClockBoundModel m(absl::Seconds(1000));
  ClockBoundSnapshot s = Synced(Utc(2026, 3, 10, 12, 0, 0));
  s.slew_ppm = -100;  // a slew running: the kernel keeps it if we die
  const clockbound::Contents c = m.Contents(s);
  EXPECT_EQ(c.status, ClockStatus::kSynchronized);
  EXPECT_EQ(c.bound_ns, 250'000);
  EXPECT_EQ(c.as_of.sec, 1000);
  EXPECT_EQ(c.void_after.sec, 2000);
  EXPECT_EQ(c.max_drift_ppb, 15'000u + 100'000u);
  EXPECT_FALSE(c.simulated);

  s.state = ntp::SyncState::kUnsynchronized;
  s.error_bound = absl::InfiniteDuration();
  EXPECT_EQ(m.Contents(s).bound_ns, kUnknownBoundNs);
  EXPECT_EQ(m.Stopped({5, 0}).status, ClockStatus::kUnknown);
}

// A leap second announced for this month's end: void_after never reaches past
// it while the bound does not cover it; within 2 s of it the bound has 1 s
// more; afterwards back to normal. A model that ignored leaps would write
// void_after = as_of + 1000 s and the plain bound throughout.
TEST(ClockBoundModelTest, FollowsALeapSecond) {
  ClockBoundModel m(absl::Seconds(1000));
  const absl::Time leap = Utc(2026, 7, 1, 0, 0, 0);
  ClockBoundSnapshot s = Synced(leap - absl::Seconds(100));
  s.leap = ntp::Leap::kInsertSecond;
  clockbound::Contents c = m.Contents(s);
  EXPECT_EQ(c.bound_ns, 250'000);
  EXPECT_EQ(c.void_after.sec * kSec + c.void_after.nsec,
            1000 * kSec + 98 * kSec);  // leap - 2 s, by the clock

  s.clock_now = leap - absl::Milliseconds(1500);
  c = m.Contents(s);
  EXPECT_EQ(c.bound_ns, 250'000 + kSec);
  EXPECT_EQ(c.void_after.sec * kSec + c.void_after.nsec,
            1000 * kSec + 3500 * int64_t{1'000'000});  // leap + 2 s

  // The inserted second: the clock reads 23:59:59 again and the engine no
  // longer announces the leap; the bound still covers it.
  s.leap = ntp::Leap::kNone;
  s.clock_now = leap - absl::Milliseconds(500);
  EXPECT_EQ(m.Contents(s).bound_ns, 250'000 + kSec);
  s.clock_now = leap + absl::Seconds(1);
  EXPECT_EQ(m.Contents(s).bound_ns, 250'000 + kSec);
  s.clock_now = leap + absl::Seconds(3);
  c = m.Contents(s);
  EXPECT_EQ(c.bound_ns, 250'000);
  EXPECT_EQ(c.void_after.sec, 2000);
}

TEST(ClockBoundModelTest, ExternalStepGrowsTheBoundUntilMeasured) {
  ClockBoundModel m(absl::Seconds(1000));
  const absl::Time t0 = Utc(2026, 3, 10, 12, 0, 0);
  const clock::MonoTime m0 = clock::MonoTime::FromDuration(absl::Seconds(50));
  EXPECT_FALSE(m.ObserveClock(t0, m0, 0));
  // One second later, 300 ppm of rate difference: no step.
  EXPECT_FALSE(m.ObserveClock(t0 + absl::Seconds(1) + absl::Microseconds(300),
                              m0 + absl::Seconds(1), 0));
  // A 5 s step.
  std::optional<absl::Duration> step =
      m.ObserveClock(t0 + absl::Seconds(7), m0 + absl::Seconds(2), 0);
  ASSERT_TRUE(step);
  EXPECT_NEAR(absl::ToDoubleSeconds(*step), 5.0, 0.001);
  m.AddStep(*step, /*corrections_now=*/4);
  ClockBoundSnapshot s = Synced(t0 + absl::Seconds(7));
  s.corrections = 4;
  EXPECT_GE(m.Contents(s).bound_ns, 250'000 + 5 * kSec - 1'000'000);
  s.corrections = 5;  // measured since
  EXPECT_EQ(m.Contents(s).bound_ns, 250'000);
  // The engine's own step is not an external one.
  EXPECT_FALSE(m.ObserveClock(t0 - absl::Seconds(3), m0 + absl::Seconds(3),
                              /*own_steps=*/1));
}

}  // namespace
}  // namespace ntpfleet::net
