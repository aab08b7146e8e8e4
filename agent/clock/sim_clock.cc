#include "agent/clock/sim_clock.h"

#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace ntpfleet::clock {

RealtimeAnchor AnchorToRealtime(const MonotonicClock& mono) {
  RealtimeAnchor best{MonoTime(), absl::Time(), absl::InfiniteDuration()};
  for (int i = 0; i < 20 && best.uncertainty > absl::Microseconds(1); ++i) {
    const MonoTime before = mono.Now();
    const absl::Time realtime = absl::Now();
    const MonoTime after = mono.Now();
    const absl::Duration half = (after - before) / 2;
    if (half < best.uncertainty) best = {before + half, realtime, half};
  }
  return best;
}

SimClock::SimClock(const MonotonicClock* mono, absl::Time true_epoch,
                   const SimClockParams& params)
    : SimClock(mono,
               RealtimeAnchor{mono->Now(), true_epoch, absl::ZeroDuration()},
               params) {}

SimClock::SimClock(const MonotonicClock* mono, const RealtimeAnchor& anchor,
                   const SimClockParams& params)
    : mono_(mono),
      true_epoch_(anchor.realtime),
      origin_(anchor.mono),
      wander_(params.wander),
      at_(origin_),
      phase_s_(absl::ToDoubleSeconds(params.initial_offset)),
      natural_ppm_(params.frequency_error_ppm),
      next_wander_(absl::Seconds(1)),
      rng_(params.seed) {}

void SimClock::Advance() const {
  const MonoTime now = mono_->Now();
  if (now <= at_) return;
  const absl::Time local_before =
      true_epoch_ + (at_ - origin_) + absl::Seconds(phase_s_);
  // Piecewise-constant rate between wander ticks (one per second of monotonic
  // time).
  while (wander_ != 0 && origin_ + next_wander_ <= now) {
    const MonoTime tick = origin_ + next_wander_;
    phase_s_ += (natural_ppm_ + adjustment_ppm_) * 1e-6 *
                absl::ToDoubleSeconds(tick - at_);
    at_ = tick;
    natural_ppm_ += wander_ * 1e6 * normal_(rng_);
    next_wander_ += absl::Seconds(1);
  }
  phase_s_ += (natural_ppm_ + adjustment_ppm_) * 1e-6 *
              absl::ToDoubleSeconds(now - at_);
  at_ = now;
  if (sync_state_.leap == LeapAction::kNone || leap_waiting_) return;
  // The end of the UTC day the clock read at the last advance: an inserted
  // second starts there, a deleted one (23:59:59) one second earlier.
  const int64_t day = absl::ToUnixSeconds(local_before) / 86400;
  const absl::Time midnight = absl::FromUnixSeconds((day + 1) * 86400);
  const absl::Time local_now =
      true_epoch_ + (now - origin_) + absl::Seconds(phase_s_);
  const bool insert = sync_state_.leap == LeapAction::kInsert;
  const absl::Time instant = insert ? midnight : midnight - absl::Seconds(1);
  if (local_before < instant && local_now >= instant) {
    phase_s_ += insert ? -1.0 : 1.0;
    if (insert) inserted_until_ = instant;
    ++leaps_;
    leap_waiting_ = true;
  }
}

absl::Time SimClock::TrueNow() const {
  return true_epoch_ + (mono_->Now() - origin_);
}

absl::Duration SimClock::Phase() const {
  absl::MutexLock lock(&mu_);
  Advance();
  return absl::Seconds(phase_s_);
}

double SimClock::RateErrorPpm() const {
  absl::MutexLock lock(&mu_);
  Advance();
  return natural_ppm_ + adjustment_ppm_;
}

absl::Time SimClock::Now() const {
  absl::MutexLock lock(&mu_);
  Advance();
  return TrueNow() + absl::Seconds(phase_s_);
}

double SimClock::FrequencyAdjustment() const {
  absl::MutexLock lock(&mu_);
  return adjustment_ppm_;
}

SyncState SimClock::sync_state() const {
  absl::MutexLock lock(&mu_);
  return sync_state_;
}

int SimClock::steps() const {
  absl::MutexLock lock(&mu_);
  return steps_;
}

void SimClock::ShiftNaturalFrequency(double ppm) {
  absl::MutexLock lock(&mu_);
  Advance();  // the old rate applies up to now
  natural_ppm_ += ppm;
}

bool SimClock::InInsertedSecond() const {
  absl::MutexLock lock(&mu_);
  Advance();
  const absl::Time reading = TrueNow() + absl::Seconds(phase_s_);
  return inserted_until_ && reading < *inserted_until_ &&
         reading >= *inserted_until_ - absl::Seconds(1);
}

int SimClock::leaps() const {
  absl::MutexLock lock(&mu_);
  Advance();
  return leaps_;
}

absl::Status SimClock::Step(absl::Duration delta) {
  absl::MutexLock lock(&mu_);
  Advance();
  phase_s_ += absl::ToDoubleSeconds(delta);
  ++steps_;
  return absl::OkStatus();
}

absl::Status SimClock::SetFrequencyAdjustment(double ppm) {
  if (!(std::fabs(ppm) <= kMaxFrequencyPpm)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "frequency adjustment %.3f ppm is beyond the +/-%.0f ppm limit", ppm,
        kMaxFrequencyPpm));
  }
  absl::MutexLock lock(&mu_);
  Advance();  // the old rate applies up to now
  adjustment_ppm_ = ppm;
  return absl::OkStatus();
}

absl::Status SimClock::SetSyncState(const SyncState& state) {
  absl::MutexLock lock(&mu_);
  Advance();  // a leap armed until now applies up to now
  sync_state_ = state;
  if (state.leap == LeapAction::kNone) leap_waiting_ = false;
  return absl::OkStatus();
}

}  // namespace ntpfleet::clock
