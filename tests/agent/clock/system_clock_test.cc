// SystemClock against the real kernel clock. This machine's clock must never
// move, so the only setters called are ones that would be no-ops even if
// permitted (Step(0), setting the frequency to the value just read) or that
// must be rejected before any system call; and even those run only when
// CAP_SYS_TIME is absent, as it is under `bazel test` (//tools:no_sys_time).
// SetSyncState is not called at all (it would change the kernel's status); its
// pure parts are tested instead.
#include "agent/clock/system_clock.h"

#include <linux/capability.h>
#include <sys/timex.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::clock {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::IsOkAndHolds;
using ::ntpfleet::testing::StatusIs;
using ::testing::AllOf;
using ::testing::DoubleNear;
using ::testing::Field;
using ::testing::HasSubstr;

// Whether this process could set the clock: CAP_SYS_TIME in the effective set
// (CapEff in /proc/self/status, a hex mask). Unreadable counts as "yes", to
// stay on the safe side.
bool MaySetClock() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (!absl::StartsWith(line, "CapEff:")) continue;
    const std::string mask = line.substr(7);
    uint64_t caps = 0;
    if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(mask), &caps))
      return true;
    return (caps >> CAP_SYS_TIME) & 1;
  }
  return true;
}

TEST(SystemClockTest, NowIsCloseToAbslNow) {
  SystemClock clock;
  EXPECT_LT(absl::AbsDuration(clock.Now() - absl::Now()), absl::Seconds(1));
}

TEST(SystemClockTest, ReadsFrequencyAdjustmentWithoutPrivilege) {
  SystemClock clock;
  // modes = 0 needs no capability; the kernel keeps the frequency within ±500
  // ppm.
  EXPECT_THAT(clock.ReadFrequencyAdjustment(),
              IsOkAndHolds(DoubleNear(0, kMaxFrequencyPpm)));
  EXPECT_LE(std::fabs(clock.FrequencyAdjustment()), kMaxFrequencyPpm);
}

TEST(SystemMonotonicClockTest, NeverGoesBackwards) {
  SystemMonotonicClock clock;
  MonoTime previous = clock.Now();
  for (int i = 0; i < 10000; ++i) {
    const MonoTime now = clock.Now();
    ASSERT_GE(now, previous) << "at read " << i;
    previous = now;
  }
}

// Calls setters; refuses to when this process holds CAP_SYS_TIME.
class SystemClockWithoutCapabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(MaySetClock())
        << "this process has CAP_SYS_TIME: run it with `bazel test`, which "
           "drops it "
           "(//tools:no_sys_time); not calling any setter";
  }
  SystemClock clock_;
};

TEST_F(SystemClockWithoutCapabilityTest, SettingFrequencyNeedsCapSysTime) {
  absl::StatusOr<double> current = clock_.ReadFrequencyAdjustment();
  ASSERT_THAT(current, IsOk());
  // The value just read: a no-op even if it were permitted.
  EXPECT_THAT(clock_.SetFrequencyAdjustment(*current),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("CAP_SYS_TIME"),
                             HasSubstr("AmbientCapabilities"))));
}

TEST_F(SystemClockWithoutCapabilityTest, SteppingNeedsCapSysTime) {
  EXPECT_THAT(
      clock_.Step(absl::ZeroDuration()),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("CAP_SYS_TIME")));
}

// Without the capability, any call reaching the kernel would fail with
// PermissionDenied, so InvalidArgument shows the range check comes first.
TEST_F(SystemClockWithoutCapabilityTest,
       RejectsFrequencyOutOfRangeBeforeAskingTheKernel) {
  EXPECT_THAT(
      clock_.SetFrequencyAdjustment(600),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("600 ppm")));
  EXPECT_THAT(
      clock_.SetFrequencyAdjustment(-500.001),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
  EXPECT_THAT(
      clock_.SetFrequencyAdjustment(std::numeric_limits<double>::quiet_NaN()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
}

TEST_F(SystemClockWithoutCapabilityTest,
       RejectsInfiniteStepBeforeAskingTheKernel) {
  EXPECT_THAT(
      clock_.Step(absl::InfiniteDuration()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("infinite")));
  EXPECT_THAT(
      clock_.Step(-absl::InfiniteDuration()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("infinite")));
}

auto Split(int64_t seconds, int64_t nanoseconds) {
  return IsOkAndHolds(
      AllOf(Field(&internal::SplitOffset::seconds, seconds),
            Field(&internal::SplitOffset::nanoseconds, nanoseconds)));
}

TEST(SplitStepOffsetTest, KeepsNanosecondsNonNegative) {
  using internal::SplitStepOffset;
  EXPECT_THAT(SplitStepOffset(absl::ZeroDuration()), Split(0, 0));
  EXPECT_THAT(SplitStepOffset(absl::Milliseconds(1500)), Split(1, 500000000));
  EXPECT_THAT(SplitStepOffset(absl::Milliseconds(-1500)), Split(-2, 500000000));
  EXPECT_THAT(SplitStepOffset(absl::Seconds(-2)), Split(-2, 0));
  EXPECT_THAT(SplitStepOffset(absl::Nanoseconds(-1)), Split(-1, 999999999));
  EXPECT_THAT(SplitStepOffset(absl::Nanoseconds(999999999)),
              Split(0, 999999999));
  EXPECT_THAT(SplitStepOffset(absl::Hours(-24 * 365) - absl::Nanoseconds(3)),
              Split(-24 * 365 * 3600 - 1, 999999997));
}

TEST(SplitStepOffsetTest, TruncatesSubNanosecondsTowardsZero) {
  using internal::SplitStepOffset;
  EXPECT_THAT(SplitStepOffset(absl::Nanoseconds(1) / 4), Split(0, 0));
  EXPECT_THAT(SplitStepOffset(-absl::Nanoseconds(1) / 4), Split(0, 0));
  EXPECT_THAT(SplitStepOffset(absl::Seconds(-1) - absl::Nanoseconds(1) / 4),
              Split(-1, 0));
}

TEST(SplitStepOffsetTest, RejectsInfinity) {
  EXPECT_THAT(
      internal::SplitStepOffset(absl::InfiniteDuration()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("infinite")));
}

TEST(StatusForSyncStateTest, SynchronizedClearsUnsync) {
  SyncState state;
  state.synchronized = true;
  EXPECT_EQ(internal::StatusForSyncState(STA_UNSYNC, state), 0);
  state.synchronized = false;
  EXPECT_EQ(internal::StatusForSyncState(0, state), STA_UNSYNC);
}

TEST(StatusForSyncStateTest, LeapSetsExactlyOneOfInsAndDel) {
  SyncState state;
  state.synchronized = true;
  state.leap = LeapAction::kInsert;
  EXPECT_EQ(internal::StatusForSyncState(STA_DEL, state), STA_INS);
  state.leap = LeapAction::kDelete;
  EXPECT_EQ(internal::StatusForSyncState(STA_INS, state), STA_DEL);
  state.leap = LeapAction::kNone;
  EXPECT_EQ(internal::StatusForSyncState(STA_INS | STA_DEL, state), 0);
}

TEST(StatusForSyncStateTest, TurnsKernelPllOffAndKeepsOtherBits) {
  SyncState state;
  state.synchronized = true;
  EXPECT_EQ(internal::StatusForSyncState(
                STA_PLL | STA_FLL | STA_NANO | STA_PPSFREQ, state),
            STA_NANO | STA_PPSFREQ);
}

TEST(ErrorBoundMicrosTest, ConvertsToMicrosecondsAndClamps) {
  using internal::ErrorBoundMicros;
  EXPECT_EQ(ErrorBoundMicros(absl::Microseconds(1500)), 1500);
  EXPECT_EQ(ErrorBoundMicros(absl::Seconds(16)), 16000000);
  EXPECT_EQ(ErrorBoundMicros(absl::Seconds(100)), 16000000);
  EXPECT_EQ(ErrorBoundMicros(absl::InfiniteDuration()), 16000000);
  EXPECT_EQ(ErrorBoundMicros(absl::ZeroDuration()), 0);
  EXPECT_EQ(ErrorBoundMicros(absl::Milliseconds(-3)), 0);
}

}  // namespace
}  // namespace ntpfleet::clock
