#include "common/ntp/timestamp.h"

#include <cstdint>
#include <limits>

#include "absl/numeric/int128.h"
#include "absl/time/time.h"

namespace ntpfleet::ntp {
namespace {

// absl::Duration's resolution is a quarter of a nanosecond.
constexpr int64_t kTicksPerSecond = 4'000'000'000;
const absl::Duration kTick = absl::Nanoseconds(1) / 4;

// Splits d into whole seconds (floor) and a non-negative remainder in ticks (<
// kTicksPerSecond).
void SplitFloor(absl::Duration d, int64_t* seconds, int64_t* ticks) {
  absl::Duration rem;
  int64_t s = absl::IDivDuration(d, absl::Seconds(1), &rem);
  if (rem < absl::ZeroDuration()) {
    s -= 1;
    rem += absl::Seconds(1);
  }
  *seconds = s;
  *ticks = absl::IDivDuration(rem, kTick, &rem);
}

// Ticks (< 4e9) to a 32-bit fraction of a second, rounded to nearest; may
// return 2^32.
uint64_t TicksToFraction(int64_t ticks) {
  return ((static_cast<uint64_t>(ticks) << 32) + kTicksPerSecond / 2) /
         kTicksPerSecond;
}

// A 32-bit fraction of a second to ticks, rounded to nearest.
int64_t FractionToTicks(uint32_t fraction) {
  return static_cast<int64_t>(
      (uint64_t{fraction} * kTicksPerSecond + (uint64_t{1} << 31)) >> 32);
}

const absl::Time kNtpEpoch = absl::FromUnixSeconds(-kNtpToUnixSeconds);

}  // namespace

int64_t DurationToFixed32x32(absl::Duration d) {
  int64_t seconds, ticks;
  SplitFloor(d, &seconds, &ticks);
  // Representable seconds: [-2^31, 2^31).
  if (seconds >= (int64_t{1} << 31)) return std::numeric_limits<int64_t>::max();
  if (seconds < -(int64_t{1} << 31)) return std::numeric_limits<int64_t>::min();
  // A multiplication, not `<< 32`: shifting a negative value left is undefined
  // behaviour before C++20 (UBSan: "left shift of negative value").
  absl::int128 fixed = absl::int128(seconds) * (int64_t{1} << 32) +
                       absl::int128(TicksToFraction(ticks));
  if (fixed > std::numeric_limits<int64_t>::max())
    return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(fixed);
}

absl::Duration Fixed32x32ToDuration(int64_t fixed) {
  // Arithmetic shift keeps the sign; the low 32 bits are a non-negative
  // fraction.
  const int64_t seconds = fixed >> 32;
  const uint32_t fraction = static_cast<uint32_t>(fixed);
  return absl::Seconds(seconds) + kTick * FractionToTicks(fraction);
}

NtpTimestamp NtpTimestamp::FromTime(absl::Time t) {
  int64_t seconds, ticks;
  SplitFloor(t - kNtpEpoch, &seconds, &ticks);
  // Wrap into the era; the unsigned arithmetic below is modulo 2^64 and the
  // shift drops the era.
  const uint64_t raw =
      (static_cast<uint64_t>(seconds) << 32) + TicksToFraction(ticks);
  return NtpTimestamp(raw);
}

int64_t EraOf(absl::Time t) {
  int64_t seconds, ticks;
  SplitFloor(t - kNtpEpoch, &seconds, &ticks);
  // Floor division by 2^32 (arithmetic shift).
  return seconds >> 32;
}

absl::Time NtpTimestamp::ToTimeInEra(int64_t era) const {
  return kNtpEpoch + absl::Seconds(era * kEraSeconds) +
         absl::Seconds(int64_t{seconds()}) +
         kTick * FractionToTicks(fraction());
}

absl::Time NtpTimestamp::ToTime(absl::Time pivot) const {
  return pivot + Diff(*this, FromTime(pivot));
}

absl::Duration NtpTimestamp::Diff(NtpTimestamp a, NtpTimestamp b) {
  // RFC 5905 §6: "the 64-bit difference ... in two's complement arithmetic".
  return Fixed32x32ToDuration(static_cast<int64_t>(a.raw_ - b.raw_));
}

NtpTimestamp NtpTimestamp::Add(absl::Duration d) const {
  return NtpTimestamp(raw_ + static_cast<uint64_t>(DurationToFixed32x32(d)));
}

NtpShort NtpShort::FromDuration(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return NtpShort(0);
  int64_t seconds, ticks;
  SplitFloor(d, &seconds, &ticks);
  if (seconds >= (int64_t{1} << 16)) return NtpShort(0xffffffffu);
  // 16-bit fraction, rounded to nearest.
  const uint64_t frac16 =
      ((static_cast<uint64_t>(ticks) << 16) + kTicksPerSecond / 2) /
      kTicksPerSecond;
  const uint64_t raw = (static_cast<uint64_t>(seconds) << 16) + frac16;
  return NtpShort(raw > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(raw));
}

absl::Duration NtpShort::ToDuration() const {
  const int64_t seconds = raw_ >> 16;
  const uint64_t frac16 = raw_ & 0xffffu;
  const int64_t ticks = static_cast<int64_t>(
      (frac16 * kTicksPerSecond + (uint64_t{1} << 15)) >> 16);
  return absl::Seconds(seconds) + kTick * ticks;
}

}  // namespace ntpfleet::ntp
