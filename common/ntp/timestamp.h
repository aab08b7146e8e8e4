// NTP's on-wire time formats (RFC 5905 §6) and their conversion to
// absl::Time/absl::Duration.
//
// NtpTimestamp is the 64-bit "timestamp format": 32 bits of seconds since the
// era's epoch and 32 bits of fraction (2^-32 s ≈ 233 ps, finer than absl's 1/4
// ns tick). The raw value is kept as is, because origin-timestamp matching (RFC
// 5905 §8) must be bit-exact and the encoder must round-trip what it decoded.
//
// Eras (RFC 5905 §6): era 0 began 1900-01-01 00:00:00 UTC; era 1 begins
// 2036-02-07 06:28:16 UTC. A timestamp carries no era. Differences are taken in
// 64-bit two's complement arithmetic, which is correct across an era boundary
// as long as the two times are within 68 years of each other; an absolute date
// is resolved against a pivot (normally the local clock's reading): the
// candidate within ±68 years of the pivot is chosen. So a client that sends
// "2036-02-07 06:28:20" as seconds = 4 (era 1) is read correctly by a server
// whose clock is near 2036, and one that sends 1900-based values near 2^32 is
// read correctly too.
//
// NtpShort is the 32-bit "short format" (16.16, unsigned) used for root delay
// and dispersion.
//
// Example:
//   NtpTimestamp t = NtpTimestamp::FromTime(clock.Now());
//   absl::Duration d = NtpTimestamp::Diff(t2, t);      // t2 - t, signed,
//   era-safe absl::Time back = t.ToTime(/*pivot=*/clock.Now());
#ifndef NTPFLEET_COMMON_NTP_TIMESTAMP_H_
#define NTPFLEET_COMMON_NTP_TIMESTAMP_H_

#include <cstdint>

#include "absl/time/time.h"

namespace ntpfleet::ntp {

// Seconds from the NTP prime epoch (1900-01-01) to the Unix epoch (1970-01-01).
inline constexpr int64_t kNtpToUnixSeconds = 2208988800;
// Seconds in one NTP era (2^32).
inline constexpr int64_t kEraSeconds = int64_t{1} << 32;

// The 32.32 fixed-point conversion of a signed duration, rounded to the nearest
// 2^-32 s and saturated to the 64-bit range (about ±68 years).
int64_t DurationToFixed32x32(absl::Duration d);
absl::Duration Fixed32x32ToDuration(int64_t fixed);

class NtpTimestamp {
 public:
  constexpr NtpTimestamp() = default;
  static constexpr NtpTimestamp FromRaw(uint64_t raw) {
    return NtpTimestamp(raw);
  }
  static constexpr NtpTimestamp FromParts(uint32_t seconds, uint32_t fraction) {
    return NtpTimestamp((uint64_t{seconds} << 32) | fraction);
  }
  // The time's position within its era (the era itself is dropped, as on the
  // wire).
  static NtpTimestamp FromTime(absl::Time t);

  constexpr uint64_t raw() const { return raw_; }
  constexpr uint32_t seconds() const {
    return static_cast<uint32_t>(raw_ >> 32);
  }
  constexpr uint32_t fraction() const { return static_cast<uint32_t>(raw_); }
  // RFC 5905 §7.3: a zero timestamp means "unknown / not set".
  constexpr bool is_zero() const { return raw_ == 0; }

  // The absolute time within ±2^31 s (68 years) of `pivot`.
  absl::Time ToTime(absl::Time pivot) const;
  // The absolute time in a given era (0: 1900–2036, 1: 2036–2172, -1:
  // 1764–1900).
  absl::Time ToTimeInEra(int64_t era) const;

  // a - b as a signed duration, by 64-bit two's complement subtraction (RFC
  // 5905 §6), correct across era boundaries for times within 68 years of each
  // other.
  static absl::Duration Diff(NtpTimestamp a, NtpTimestamp b);
  // This timestamp moved by d (wrapping within the era, as on the wire).
  NtpTimestamp Add(absl::Duration d) const;

  friend constexpr bool operator==(NtpTimestamp a, NtpTimestamp b) {
    return a.raw_ == b.raw_;
  }
  friend constexpr bool operator!=(NtpTimestamp a, NtpTimestamp b) {
    return a.raw_ != b.raw_;
  }

 private:
  explicit constexpr NtpTimestamp(uint64_t raw) : raw_(raw) {}
  uint64_t raw_ = 0;
};

// The era number of an absolute time (RFC 5905 §6): floor((t - 1900-01-01) /
// 2^32 s).
int64_t EraOf(absl::Time t);

// 16.16 unsigned fixed point seconds (RFC 5905 §6 "short format").
class NtpShort {
 public:
  constexpr NtpShort() = default;
  static constexpr NtpShort FromRaw(uint32_t raw) { return NtpShort(raw); }
  // Rounded to the nearest 2^-16 s; negative durations become 0, too large ones
  // saturate.
  static NtpShort FromDuration(absl::Duration d);

  constexpr uint32_t raw() const { return raw_; }
  absl::Duration ToDuration() const;

  friend constexpr bool operator==(NtpShort a, NtpShort b) {
    return a.raw_ == b.raw_;
  }
  friend constexpr bool operator!=(NtpShort a, NtpShort b) {
    return a.raw_ != b.raw_;
  }

 private:
  explicit constexpr NtpShort(uint32_t raw) : raw_(raw) {}
  uint32_t raw_ = 0;
};

}  // namespace ntpfleet::ntp

#endif  // NTPFLEET_COMMON_NTP_TIMESTAMP_H_
