// Clock interfaces: what the NTP engine reads time from (MonoTime,
// MonotonicClock, Clock: common/clock.h, with the two timelines and the units
// and signs) and what it steers (AdjustableClock, here).
//
// AdjustableClock::SetFrequencyAdjustment(ppm) is the correction applied to
// the clock's rate, with adjtimex's sign: +10 makes the clock run 10 ppm
// faster than it would free-running. To cancel an oscillator that runs 10 ppm
// fast, set -10.
#ifndef NTPFLEET_AGENT_CLOCK_CLOCK_H_
#define NTPFLEET_AGENT_CLOCK_CLOCK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace ntpfleet::clock {

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

// kMaxFrequencyPpm, the largest correction SetFrequencyAdjustment takes, is in
// common/clock.h (the drift file, which ntpfleetctl reads too, is bounded by
// it).

}  // namespace ntpfleet::clock

#endif  // NTPFLEET_AGENT_CLOCK_CLOCK_H_
