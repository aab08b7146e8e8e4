#include "agent/clock/system_clock.h"

#include <sys/timex.h>
#include <time.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"

namespace ntpfleet::clock {
namespace {

// timex.freq is in "scaled ppm": ppm with a 16-bit binary fraction.
constexpr double kFreqScale = 65536.0;

// The kernel's NTP_PHASE_LIMIT (MAXPHASE << 5 = 16 s) in microseconds: the
// largest esterror and maxerror it keeps, and the maxerror past which it sets
// STA_UNSYNC by itself.
constexpr long kMaxErrorMicros = 16'000'000;  // NOLINT(runtime/int)

std::string ErrnoText(int err) {
  char buf[128];
  // GNU strerror_r (g++ defines _GNU_SOURCE): returns a pointer that may or may
  // not be buf.
  return strerror_r(err, buf, sizeof(buf));
}

// `what` completes "cannot ...", e.g. "step the system clock".
absl::Status AdjtimeError(int err, absl::string_view what) {
  if (err == EPERM) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot ", what,
                     ": operation not permitted (needs CAP_SYS_TIME: run "
                     "ntpfleet-agent as root or with "
                     "AmbientCapabilities=CAP_SYS_TIME; tests and the demo use "
                     "--clock=sim)"));
  }
  return absl::InternalError(absl::StrCat(
      "cannot ", what, ": clock_adjtime(CLOCK_REALTIME): ", ErrnoText(err)));
}

// clock_adjtime returns the clock state (TIME_OK ... TIME_ERROR, all >= 0) on
// success; TIME_ERROR (5) is normal for an unsynchronised clock, so only -1 is
// a failure.
absl::Status Adjtime(struct timex* tx, absl::string_view what) {
  if (clock_adjtime(CLOCK_REALTIME, tx) == -1) return AdjtimeError(errno, what);
  return absl::OkStatus();
}

}  // namespace

namespace internal {

absl::StatusOr<SplitOffset> SplitStepOffset(absl::Duration delta) {
  if (delta == absl::InfiniteDuration() || delta == -absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        "cannot step the system clock by an infinite duration");
  }
  absl::Duration remainder;
  SplitOffset split;
  split.seconds = absl::IDivDuration(delta, absl::Seconds(1), &remainder);
  // remainder has delta's sign and |remainder| < 1 s; ToInt64Nanoseconds
  // truncates towards zero.
  split.nanoseconds = absl::ToInt64Nanoseconds(remainder);
  if (split.nanoseconds < 0) {
    // The kernel wants tv_usec (nanoseconds with ADJ_NANO) in [0, 1e9): -1.5 s
    // is -2 s + 0.5 s.
    split.seconds -= 1;
    split.nanoseconds += 1'000'000'000;
  }
  return split;
}

int StatusForSyncState(int current_status, const SyncState& state) {
  // We discipline in userspace, so the kernel's PLL/FLL stay off (a previous
  // ntpd may have left STA_PLL on; the kernel would then keep slewing towards
  // its last ADJ_OFFSET).
  int status =
      current_status & ~(STA_PLL | STA_FLL | STA_UNSYNC | STA_INS | STA_DEL);
  // With STA_UNSYNC clear the kernel also copies the system time to the RTC
  // every 11 minutes (sync_cmos_clock / the "11-minute mode"), so the RTC is
  // right at the next boot; nothing else needs doing for that.
  if (!state.synchronized) status |= STA_UNSYNC;
  switch (state.leap) {
    case LeapAction::kNone:
      break;
    case LeapAction::kInsert:
      status |= STA_INS;
      break;
    case LeapAction::kDelete:
      status |= STA_DEL;
      break;
  }
  return status;
}

long ErrorBoundMicros(absl::Duration bound) {  // NOLINT(runtime/int)
  if (bound <= absl::ZeroDuration()) return 0;
  if (bound >= absl::Microseconds(kMaxErrorMicros)) return kMaxErrorMicros;
  return static_cast<long>(
      absl::ToInt64Microseconds(bound));  // NOLINT(runtime/int)
}

}  // namespace internal

absl::Time SystemClock::Now() const {
  struct timespec ts;
  // CLOCK_REALTIME always exists and &ts is valid: clock_gettime cannot fail
  // here.
  clock_gettime(CLOCK_REALTIME, &ts);
  return absl::TimeFromTimespec(ts);
}

absl::Status SystemClock::Step(absl::Duration delta) {
  absl::StatusOr<internal::SplitOffset> split =
      internal::SplitStepOffset(delta);
  if (!split.ok()) return split.status();
  struct timex tx = {};
  tx.modes = ADJ_SETOFFSET | ADJ_NANO;
  tx.time.tv_sec = split->seconds;
  tx.time.tv_usec = split->nanoseconds;  // nanoseconds, because of ADJ_NANO
  return Adjtime(&tx, absl::StrCat("step the system clock by ",
                                   absl::FormatDuration(delta)));
}

absl::Status SystemClock::SetFrequencyAdjustment(double ppm) {
  // Written so that NaN is rejected too.
  if (!(std::fabs(ppm) <= kMaxFrequencyPpm)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot set the system clock's frequency to %g ppm: "
                        "out of range (at most "
                        "%g ppm either way)",
                        ppm, kMaxFrequencyPpm));
  }
  struct timex tx = {};
  tx.modes = ADJ_FREQUENCY;
  tx.freq = std::llround(ppm * kFreqScale);
  return Adjtime(&tx, absl::StrFormat(
                          "set the system clock's frequency to %.3f ppm", ppm));
}

absl::StatusOr<double> SystemClock::ReadFrequencyAdjustment() const {
  struct timex tx = {};
  tx.modes = 0;  // read only: needs no privilege
  if (absl::Status s = Adjtime(&tx, "read the system clock's frequency");
      !s.ok())
    return s;
  return static_cast<double>(tx.freq) / kFreqScale;
}

double SystemClock::FrequencyAdjustment() const {
  absl::StatusOr<double> ppm = ReadFrequencyAdjustment();
  return ppm.ok() ? *ppm : 0.0;
}

absl::Status SystemClock::SetSyncState(const SyncState& state) {
  struct timex current = {};
  current.modes = 0;
  if (absl::Status s = Adjtime(&current, "read the kernel's clock status");
      !s.ok())
    return s;

  struct timex tx = {};
  tx.modes = ADJ_STATUS | ADJ_ESTERROR | ADJ_MAXERROR;
  tx.status = internal::StatusForSyncState(current.status, state);
  tx.esterror = internal::ErrorBoundMicros(state.estimated_error);
  // The kernel adds 500 us/s to maxerror between updates and sets STA_UNSYNC
  // itself once it passes 16 s, so a clock whose agent stops updating is
  // eventually reported unsynchronised.
  tx.maxerror = internal::ErrorBoundMicros(state.max_error);
  return Adjtime(&tx, "set the kernel's clock status");
}

}  // namespace ntpfleet::clock
