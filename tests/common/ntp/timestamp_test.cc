#include "common/ntp/timestamp.h"

#include <cstdint>
#include <limits>
#include <random>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace ntpfleet::ntp {
namespace {

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss),
                         absl::UTCTimeZone());
}

// RFC 5905 §6: era 1 begins at 2036-02-07 06:28:16 UTC.
const absl::Time kEra1Start = Utc(2036, 2, 7, 6, 28, 16);

TEST(NtpTimestampTest, UnixEpochIs2208988800Seconds) {
  NtpTimestamp t = NtpTimestamp::FromTime(absl::UnixEpoch());
  EXPECT_EQ(t.seconds(), 2208988800u);
  EXPECT_EQ(t.fraction(), 0u);
}

TEST(NtpTimestampTest, FractionIsBinary) {
  EXPECT_EQ(NtpTimestamp::FromTime(absl::UnixEpoch() + absl::Milliseconds(500))
                .fraction(),
            0x80000000u);
  // 1 ns = 4.294967296 units of 2^-32 s -> 4.
  EXPECT_EQ(NtpTimestamp::FromTime(absl::UnixEpoch() + absl::Nanoseconds(1))
                .fraction(),
            4u);
  // 2^-32 s ≈ 0.233 ns rounds to the nearest quarter nanosecond.
  EXPECT_EQ(NtpTimestamp::FromParts(0, 1).ToTimeInEra(0) -
                NtpTimestamp::FromParts(0, 0).ToTimeInEra(0),
            absl::Nanoseconds(1) / 4);
}

TEST(NtpTimestampTest, Era1StartsIn2036) {
  EXPECT_EQ(EraOf(kEra1Start - absl::Seconds(1)), 0);
  EXPECT_EQ(EraOf(kEra1Start), 1);
  EXPECT_EQ(EraOf(Utc(1899, 12, 31)), -1);
  EXPECT_EQ(NtpTimestamp::FromTime(kEra1Start).raw(), 0u);
  EXPECT_EQ(NtpTimestamp::FromTime(kEra1Start - absl::Seconds(1)).seconds(),
            0xffffffffu);
  EXPECT_EQ(NtpTimestamp::FromParts(0, 0).ToTimeInEra(1), kEra1Start);
  EXPECT_EQ(NtpTimestamp::FromParts(0, 0).ToTimeInEra(0), Utc(1900, 1, 1));
}

TEST(NtpTimestampTest, DiffIsSignedAcrossTheEraBoundary) {
  const NtpTimestamp after =
      NtpTimestamp::FromTime(kEra1Start + absl::Seconds(1));
  const NtpTimestamp before =
      NtpTimestamp::FromTime(kEra1Start - absl::Seconds(1));
  EXPECT_EQ(after.seconds(), 1u);
  EXPECT_EQ(before.seconds(), 0xffffffffu);
  EXPECT_EQ(NtpTimestamp::Diff(after, before), absl::Seconds(2));
  EXPECT_EQ(NtpTimestamp::Diff(before, after), absl::Seconds(-2));
}

TEST(NtpTimestampTest, DiffKeepsSubNanosecondSign) {
  const NtpTimestamp a = NtpTimestamp::FromParts(100, 0);
  const NtpTimestamp b = NtpTimestamp::FromParts(100, 0x80000000);  // +0.5 s
  EXPECT_EQ(NtpTimestamp::Diff(a, b), absl::Milliseconds(-500));
  EXPECT_EQ(NtpTimestamp::Diff(b, a), absl::Milliseconds(500));
}

TEST(NtpTimestampTest, ToTimeResolvesTheEraNearestThePivot) {
  // A client in 2036 sends seconds = 4: 4 s into era 1, not 1900-01-01
  // 00:00:04.
  const NtpTimestamp early_era1 = NtpTimestamp::FromParts(4, 0);
  EXPECT_EQ(early_era1.ToTime(Utc(2036, 1, 1)), kEra1Start + absl::Seconds(4));
  EXPECT_EQ(early_era1.ToTime(Utc(2030, 6, 1)), kEra1Start + absl::Seconds(4));
  // The same value seen from 1930 is 1900-01-01 00:00:04.
  EXPECT_EQ(early_era1.ToTime(Utc(1930, 1, 1)), Utc(1900, 1, 1, 0, 0, 4));
  // A 1900-based value just before the boundary read by a server already in
  // era 1.
  const NtpTimestamp late_era0 = NtpTimestamp::FromParts(0xfffffff0u, 0);
  EXPECT_EQ(late_era0.ToTime(Utc(2036, 3, 1)), kEra1Start - absl::Seconds(16));
  // Today's date, read from today.
  const absl::Time now = Utc(2026, 11, 25, 12, 0, 0);
  EXPECT_EQ(
      NtpTimestamp::FromTime(now).ToTime(now + absl::Hours(24 * 365 * 30)),
      now);
}

TEST(NtpTimestampTest, AddWrapsWithinTheEra) {
  const NtpTimestamp t = NtpTimestamp::FromParts(0xffffffffu, 0);
  EXPECT_EQ(t.Add(absl::Seconds(2)), NtpTimestamp::FromParts(1, 0));
  EXPECT_EQ(NtpTimestamp::FromParts(1, 0).Add(absl::Seconds(-2)), t);
}

TEST(NtpTimestampTest, RandomTimesRoundTripExactly) {
  std::mt19937_64 rng(20261125);
  std::uniform_int_distribution<int64_t> quarter_ns(
      0, int64_t{4'000'000'000} * 3600 * 24 * 365 * 60);
  const absl::Time base = Utc(2000, 1, 1);
  for (int i = 0; i < 10000; ++i) {
    const absl::Time t = base + absl::Nanoseconds(1) / 4 * quarter_ns(rng);
    // 2^-32 s is finer than absl's 1/4 ns tick, so the round trip is exact.
    ASSERT_EQ(NtpTimestamp::FromTime(t).ToTime(t + absl::Hours(24 * 365 * 50)),
              t);
  }
}

TEST(FixedPointTest, DurationRoundTripsAndNegativesFloor) {
  EXPECT_EQ(DurationToFixed32x32(absl::Milliseconds(-500)),
            static_cast<int64_t>(0xffffffff80000000));
  EXPECT_EQ(Fixed32x32ToDuration(static_cast<int64_t>(0xffffffff80000000)),
            absl::Milliseconds(-500));
  EXPECT_EQ(DurationToFixed32x32(absl::Seconds(1)), int64_t{1} << 32);
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> ticks(
      -int64_t{4'000'000'000} * 1'000'000, int64_t{4'000'000'000} * 1'000'000);
  for (int i = 0; i < 10000; ++i) {
    const absl::Duration d = absl::Nanoseconds(1) / 4 * ticks(rng);
    ASSERT_EQ(Fixed32x32ToDuration(DurationToFixed32x32(d)), d);
  }
}

TEST(FixedPointTest, SaturatesBeyond68Years) {
  EXPECT_EQ(DurationToFixed32x32(absl::Hours(24 * 365 * 100)),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(DurationToFixed32x32(-absl::Hours(24 * 365 * 100)),
            std::numeric_limits<int64_t>::min());
}

TEST(NtpShortTest, SixteenDotSixteen) {
  EXPECT_EQ(NtpShort::FromDuration(absl::Milliseconds(1500)).raw(),
            0x00018000u);
  EXPECT_EQ(NtpShort::FromRaw(0x00018000u).ToDuration(),
            absl::Milliseconds(1500));
  // 2^-16 s = 15.2587890625 µs, to the nearest quarter nanosecond.
  EXPECT_EQ(NtpShort::FromRaw(1).ToDuration(),
            absl::Nanoseconds(15258) + absl::Nanoseconds(3) / 4);
  EXPECT_EQ(NtpShort::FromDuration(absl::Microseconds(15)).raw(), 1u);
  EXPECT_EQ(NtpShort::FromDuration(absl::Microseconds(-3)).raw(), 0u);
  EXPECT_EQ(NtpShort::FromDuration(absl::Hours(1000)).raw(), 0xffffffffu);
}

}  // namespace
}  // namespace ntpfleet::ntp
