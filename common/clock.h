// The read-only clocks every ntpfleet program uses: the monotonic timeline
// (MonoTime, MonotonicClock) that timers and intervals are measured on, and
// the wall clock (Clock) that NTP disciplines; the machine's own of each. The
// agent's steerable clock (AdjustableClock) builds on these in
// agent/clock/clock.h.
//
// Two timelines that are never mixed (different types):
// - MonoTime: the monotonic timeline (CLOCK_MONOTONIC, or the simulator's
//   virtual time). Timers, poll intervals and "time since" are measured on
//   it. It never jumps.
// - absl::Time from a Clock: the wall clock (CLOCK_REALTIME) that NTP
//   disciplines. It can be stepped and slewed.
//
// Units and signs (used throughout ntpfleet): offset = reference minus local
// (positive: the local clock is behind); frequency in ppm (positive: the
// clock runs fast).
#ifndef NTPFLEET_COMMON_CLOCK_H_
#define NTPFLEET_COMMON_CLOCK_H_

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

// CLOCK_MONOTONIC: never stepped, slewed by NTP frequency adjustments like
// CLOCK_REALTIME.
class SystemMonotonicClock final : public MonotonicClock {
 public:
  MonoTime Now() const override;
};

// CLOCK_REALTIME, read only (the controller's and ntpfleetctl's "now").
class SystemWallClock final : public Clock {
 public:
  absl::Time Now() const override;
};

// The largest frequency correction, phase slew included (RFC 5905 §A.5.5.2
// MAXFREQ; the kernel's limit), in ppm either way: what an AdjustableClock
// (agent/clock/clock.h) accepts and what a drift file (common/drift_file.h)
// may hold.
inline constexpr double kMaxFrequencyPpm = 500.0;

}  // namespace ntpfleet::clock

#endif  // NTPFLEET_COMMON_CLOCK_H_
