#include "agent/net/clockbound_publisher.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/time/civil_time.h"

namespace ntpfleet::net {
namespace {

int64_t Ns(const clockbound::Timespec64& t) {
  return t.sec * 1'000'000'000 + t.nsec;
}

clockbound::Timespec64 FromNs(int64_t ns) {
  return {ns / 1'000'000'000, ns % 1'000'000'000};
}

// Rounded up: a bound is never understated.
int64_t CeilNs(absl::Duration d) {
  return absl::ToInt64Nanoseconds(absl::Ceil(d, absl::Nanoseconds(1)));
}

// 00:00:00 UTC of the month after `t`'s: where a leap second announced this
// month falls (RFC 5905 §7.3: the leap indicator warns of the last minute of
// the current month; the engine keeps it only until then).
absl::Time NextMonthStart(absl::Time t) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilMonth month(absl::ToCivilSecond(t, utc));
  return absl::FromCivil(month + 1, utc);
}

}  // namespace

clockbound::Timespec64 MonotonicCoarseNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return {ts.tv_sec, ts.tv_nsec};
}

clockbound::ClockStatus ClockBoundModel::MapStatus(
    ntp::SyncState state, absl::Duration error_bound,
    ntp::ErrorBoundReference reference) {
  using clockbound::ClockStatus;
  if (error_bound == absl::InfiniteDuration() ||
      reference != ntp::ErrorBoundReference::kUpstream) {
    return ClockStatus::kUnknown;
  }
  switch (state) {
    case ntp::SyncState::kSynchronized:
    case ntp::SyncState::kSyncing:  // steered, its offset inside the bound
      return ClockStatus::kSynchronized;
    case ntp::SyncState::kHoldover:
      return ClockStatus::kFreeRunning;
    default:
      return ClockStatus::kUnknown;
  }
}

bool ClockBoundModel::NearLeap(absl::Time clock_now) const {
  return leap_at_ && clock_now >= *leap_at_ - kLeapWindow &&
         clock_now < *leap_at_ + kLeapWindow;
}

clockbound::Contents ClockBoundModel::Contents(const ClockBoundSnapshot& s) {
  if (step_penalty_ > absl::ZeroDuration() &&
      s.corrections > penalty_corrections_) {
    step_penalty_ = absl::ZeroDuration();  // measured since
  }
  if (s.leap == ntp::Leap::kInsertSecond ||
      s.leap == ntp::Leap::kDeleteSecond) {
    leap_at_ = NextMonthStart(s.clock_now);
  } else if (leap_at_ && s.clock_now >= *leap_at_ + kLeapWindow) {
    leap_at_.reset();  // passed (or withdrawn and long past)
  } else if (leap_at_ && s.clock_now < *leap_at_ - kLeapWindow) {
    leap_at_.reset();  // withdrawn before its window
  }

  clockbound::Contents c;
  c.as_of = s.as_of;
  const int64_t as_of = Ns(s.as_of);
  int64_t void_after = as_of + absl::ToInt64Nanoseconds(validity_);
  c.status = MapStatus(s.state, s.error_bound, s.reference);
  absl::Duration bound = s.error_bound + step_penalty_;
  if (leap_at_) {
    if (NearLeap(s.clock_now)) {
      // 23:59:60 has no CLOCK_REALTIME reading of its own: around it the
      // clock may be a whole second from true time.
      bound += absl::Seconds(1);
      void_after = std::min(
          void_after, as_of + absl::ToInt64Nanoseconds(*leap_at_ + kLeapWindow -
                                                       s.clock_now));
    } else {
      // Not to be trusted past the leap by a reader the agent no longer
      // updates (the bound above does not cover it).
      void_after = std::min(
          void_after, as_of + absl::ToInt64Nanoseconds(*leap_at_ - kLeapWindow -
                                                       s.clock_now));
    }
  }
  c.void_after = FromNs(std::max(void_after, as_of));
  c.bound_ns = c.status == clockbound::ClockStatus::kUnknown
                   ? kUnknownBoundNs
                   : std::min(CeilNs(bound), kUnknownBoundNs);
  const double ppb = ntp::kPhi * 1e9 + std::fabs(s.slew_ppm) * 1e3;
  c.max_drift_ppb = static_cast<uint32_t>(std::min(std::ceil(ppb), 999e6));
  if (s.clock_minus_monotonic_ns) {
    c.simulated = true;
    c.clock_minus_monotonic_ns = *s.clock_minus_monotonic_ns;
  }
  return c;
}

clockbound::Contents ClockBoundModel::Stopped(
    const clockbound::Timespec64& as_of) const {
  clockbound::Contents c;
  c.as_of = as_of;
  c.void_after = as_of;
  c.bound_ns = kUnknownBoundNs;
  c.max_drift_ppb = static_cast<uint32_t>(ntp::kPhi * 1e9);
  c.status = clockbound::ClockStatus::kUnknown;
  return c;
}

std::optional<absl::Duration> ClockBoundModel::ObserveClock(
    absl::Time clock_now, clock::MonoTime mono_now, int own_steps) {
  const absl::Duration diff =
      (clock_now - absl::UnixEpoch()) - mono_now.since_origin();
  std::optional<absl::Duration> step;
  if (last_clock_minus_mono_ && own_steps == last_own_steps_ &&
      !NearLeap(clock_now)) {
    const absl::Duration jump = diff - *last_clock_minus_mono_;
    const absl::Duration elapsed = mono_now - last_mono_;
    const absl::Duration tolerance =
        absl::Milliseconds(1) + absl::AbsDuration(elapsed) * 1000 / 1'000'000;
    if (absl::AbsDuration(jump) > tolerance) step = jump;
  }
  last_clock_minus_mono_ = diff;
  last_mono_ = mono_now;
  last_own_steps_ = own_steps;
  return step;
}

void ClockBoundModel::AddStep(absl::Duration step, uint64_t corrections_now) {
  step_penalty_ += absl::AbsDuration(step);
  penalty_corrections_ = corrections_now;
}

absl::StatusOr<std::unique_ptr<ClockBoundPublisher>> ClockBoundPublisher::Open(
    const std::string& path, absl::Duration validity) {
  absl::StatusOr<std::unique_ptr<clockbound::Writer>> w =
      clockbound::Writer::Open(path);
  if (!w.ok()) return w.status();
  return std::unique_ptr<ClockBoundPublisher>(
      new ClockBoundPublisher(*std::move(w), validity));
}

}  // namespace ntpfleet::net
