// The machine's real clocks: SystemClock steers CLOCK_REALTIME through
// clock_adjtime(2), and SystemMonotonicClock reads CLOCK_MONOTONIC. This is the
// only code in ntpfleet that moves the system clock; everything else talks to
// the AdjustableClock / MonotonicClock interfaces (agent/clock/clock.h) so that
// tests and the simulator can use SimClock instead.
//
// Only clock_gettime and clock_adjtime are used (no settimeofday, adjtime or
// ntp_adjtime), so the agent also runs under LD_PRELOAD clock simulators that
// intercept exactly those calls.
//
// Privileges: reading (Now, FrequencyAdjustment) needs none. Step,
// SetFrequencyAdjustment and SetSyncState need CAP_SYS_TIME; without it they
// return absl::PermissionDeniedError with a message that names the capability
// and the fix.
//
// Frequency discipline happens in userspace: SystemClock sets the kernel's
// frequency (ADJ_FREQUENCY) and steps (ADJ_SETOFFSET), and never enables the
// kernel's own PLL/FLL (STA_PLL/STA_FLL).
//
// Example:
//   ntpfleet::clock::SystemClock clock;
//   absl::Time now = clock.Now();
//   if (absl::Status s = clock.SetFrequencyAdjustment(-12.5); !s.ok()) {
//     // s.code() == kPermissionDenied without CAP_SYS_TIME; s.message() says
//     how to fix it.
//   }
//   absl::Status stepped = clock.Step(absl::Milliseconds(-250));  // 250 ms
//   back, at once
//
// Thread safety: both classes are stateless; every method may be called from
// any thread. Each call is one or two system calls; SetSyncState's
// read-modify-write of the kernel status is not atomic against other processes
// adjusting the clock (only one time daemon should own the clock).
#ifndef NTPFLEET_AGENT_CLOCK_SYSTEM_CLOCK_H_
#define NTPFLEET_AGENT_CLOCK_SYSTEM_CLOCK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"

namespace ntpfleet::clock {

class SystemClock final : public AdjustableClock {
 public:
  SystemClock() = default;

  // clock_gettime(CLOCK_REALTIME).
  absl::Time Now() const override;

  // Adds `delta` to CLOCK_REALTIME at once (ADJ_SETOFFSET | ADJ_NANO;
  // nanosecond resolution, finer parts are truncated towards zero).
  // InvalidArgument for an infinite delta.
  absl::Status Step(absl::Duration delta) override;

  // Sets the kernel's frequency correction (ADJ_FREQUENCY), in ppm with
  // adjtimex's sign: positive makes the clock run faster. InvalidArgument if
  // |ppm| > kMaxFrequencyPpm (checked before any system call).
  absl::Status SetFrequencyAdjustment(double ppm) override;

  // The kernel's current frequency correction in ppm (clock_adjtime with modes
  // = 0, which needs no privilege). Returns 0 if the kernel cannot be asked
  // (only possible when a sandbox such as seccomp blocks clock_adjtime); use
  // ReadFrequencyAdjustment() to see that error.
  double FrequencyAdjustment() const override;
  absl::StatusOr<double> ReadFrequencyAdjustment() const;

  // Tells the kernel (and through it ntptime, adjtimex readers, the RTC) the
  // clock's state: STA_UNSYNC, STA_INS/STA_DEL, esterror and maxerror
  // (ADJ_STATUS | ADJ_ESTERROR | ADJ_MAXERROR). The other status bits are kept
  // as they are, except STA_PLL/STA_FLL, which are cleared.
  absl::Status SetSyncState(const SyncState& state) override;
};

// SystemMonotonicClock (CLOCK_MONOTONIC) is in common/clock.h.

// The pure parts of SystemClock, exposed so that tests can check them without
// touching the kernel.
namespace internal {

// A step split the way ADJ_SETOFFSET | ADJ_NANO wants it: the step is seconds +
// nanoseconds, with nanoseconds in [0, 1e9) also for negative steps (-1.5 s is
// {-2, 500000000}).
struct SplitOffset {
  int64_t seconds = 0;
  int64_t nanoseconds = 0;
};
// InvalidArgument for an infinite duration; sub-nanosecond parts are truncated
// towards zero.
absl::StatusOr<SplitOffset> SplitStepOffset(absl::Duration delta);

// The timex.status to write for `state`, given the kernel's current status:
// STA_UNSYNC cleared when synchronized (set otherwise), STA_INS/STA_DEL from
// state.leap, STA_PLL/STA_FLL cleared, every other bit kept.
int StatusForSyncState(int current_status, const SyncState& state);

// An error bound as timex.esterror/maxerror want it: microseconds, clamped to
// [0, 16 s] (the kernel's NTP_PHASE_LIMIT; it marks the clock unsynchronised
// once maxerror passes it).
long ErrorBoundMicros(
    absl::Duration bound);  // NOLINT(runtime/int): timex's field type

}  // namespace internal
}  // namespace ntpfleet::clock

#endif  // NTPFLEET_AGENT_CLOCK_SYSTEM_CLOCK_H_
