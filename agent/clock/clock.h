// Clock interfaces: what the NTP engine reads time from and steers.
//
// Two timelines that are never mixed (different types):
// - MonoTime: the monotonic timeline (CLOCK_MONOTONIC, or the simulator's
// virtual time). Timers,
//   poll intervals and "time since" are measured on it. It never jumps.
// - absl::Time from a Clock: the wall clock (CLOCK_REALTIME) that NTP
// disciplines. It can be
//   stepped and slewed.
//
// Units and signs (used throughout ntpfleet):
// - offset = reference minus local: positive means the local clock is behind.
// - frequency in ppm: positive means the clock runs fast.
// - AdjustableClock::SetFrequencyAdjustment(ppm) is the correction applied to
// the clock's rate,
//   with adjtimex's sign: +10 makes the clock run 10 ppm faster than it would
//   free-running. To cancel an oscillator that runs 10 ppm fast, set -10.
#ifndef NTPFLEET_AGENT_CLOCK_CLOCK_H_
#define NTPFLEET_AGENT_CLOCK_CLOCK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ntpfleet::clock {

// A point on the monotonic timeline, as a duration since an arbitrary origin.
class MonoTime {
 public:
  constexpr MonoTime() = default;
  static constexpr MonoTime FromDuration(absl::Duration since_origin) {
    return MonoTime(since_origin);
  }
  static MonoTime Infinite() { return MonoTime(absl::InfiniteDuration()); }

  constexpr absl::Duration since_origin() const { return since_origin_; }

  MonoTime& operator+=(absl::Duration d) {
    since_origin_ += d;
    return *this;
  }
  friend MonoTime operator+(MonoTime t, absl::Duration d) { return t += d; }
  friend MonoTime operator-(MonoTime t, absl::Duration d) {
    return MonoTime(t.since_origin_ - d);
  }
  friend absl::Duration operator-(MonoTime a, MonoTime b) {
    return a.since_origin_ - b.since_origin_;
  }
  friend bool operator==(MonoTime a, MonoTime b) {
    return a.since_origin_ == b.since_origin_;
  }
  friend bool operator!=(MonoTime a, MonoTime b) {
    return a.since_origin_ != b.since_origin_;
  }
  friend bool operator<(MonoTime a, MonoTime b) {
    return a.since_origin_ < b.since_origin_;
  }
  friend bool operator<=(MonoTime a, MonoTime b) {
    return a.since_origin_ <= b.since_origin_;
  }
  friend bool operator>(MonoTime a, MonoTime b) {
    return a.since_origin_ > b.since_origin_;
  }
  friend bool operator>=(MonoTime a, MonoTime b) {
    return a.since_origin_ >= b.since_origin_;
  }

 private:
  explicit constexpr MonoTime(absl::Duration d) : since_origin_(d) {}
  absl::Duration since_origin_;
};

class MonotonicClock {
 public:
  virtual ~MonotonicClock() = default;
  virtual MonoTime Now() const = 0;
};

// The wall clock, read-only.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// RFC 5905 leap indicator as the kernel applies it (STA_INS / STA_DEL at
// 23:59:59 UTC).
enum class LeapAction { kNone, kInsert, kDelete };

// What the kernel (and through it, other programs such as ntptime or
// ClockBound-style readers) is told about the clock's state after each update.
struct SyncState {
  bool synchronized =
      false;  // clears STA_UNSYNC; enables the kernel's 11-minute RTC sync
  absl::Duration estimated_error = absl::ZeroDuration();  // timex.esterror
  absl::Duration max_error = absl::Seconds(16);           // timex.maxerror
  LeapAction leap = LeapAction::kNone;
};

// The wall clock with the controls NTP discipline needs. Implementations:
// SystemClock (clock_adjtime on CLOCK_REALTIME) and SimClock (virtual).
class AdjustableClock : public Clock {
 public:
  // Moves the clock by `delta` at once (positive: forward). ADJ_SETOFFSET on
  // Linux.
  virtual absl::Status Step(absl::Duration delta) = 0;
  // Sets the rate correction in ppm (adjtimex sign: positive runs faster);
  // |ppm| <= 500.
  virtual absl::Status SetFrequencyAdjustment(double ppm) = 0;
  virtual double FrequencyAdjustment() const = 0;
  virtual absl::Status SetSyncState(const SyncState& state) = 0;
};

// The largest frequency correction, phase slew included (RFC 5905 §A.5.5.2
// MAXFREQ; the kernel's limit).
inline constexpr double kMaxFrequencyPpm = 500.0;

}  // namespace ntpfleet::clock

#endif  // NTPFLEET_AGENT_CLOCK_CLOCK_H_
