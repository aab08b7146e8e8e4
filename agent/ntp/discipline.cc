#include "agent/ntp/discipline.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace ntpfleet::ntp {
namespace {

// When the frequency correction is saturated, offsets beyond this are stepped
// (seconds).
constexpr double kSaturatedStep = 0.5e-3;
// The frequency correction counts as saturated when the base frequency leaves
// less than this (ppm) for a slew in the direction needed.
constexpr double kMinSlewHeadroomPpm = 1.0;

}  // namespace

Discipline::Discipline(clock::AdjustableClock* clock,
                       const DisciplineOptions& options, clock::MonoTime now,
                       double initial_adjustment_ppm)
    : clock_(clock), options_(options), t0_(now) {
  base_ppm_ = std::clamp(initial_adjustment_ppm, -options_.max_frequency_ppm,
                         options_.max_frequency_ppm);
  // Start from what the clock has now; if it refuses, the first Update reports
  // it.
  if (SetAdjustment(base_ppm_).ok()) adj_ppm_ = base_ppm_;
}

absl::Status Discipline::SetAdjustment(double ppm) {
  absl::Status s = clock_->SetFrequencyAdjustment(ppm);
  if (s.ok()) adj_ppm_ = ppm;
  return s;
}

void Discipline::Fold(clock::MonoTime now) {
  c0_ += adj_ppm_ * 1e-6 * absl::ToDoubleSeconds(now - t0_);
  t0_ = now;
}

double Discipline::CorrectionAt(clock::MonoTime t) const {
  return c0_ + adj_ppm_ * 1e-6 * absl::ToDoubleSeconds(t - t0_);
}

void Discipline::HandleTimer(clock::MonoTime now) {
  if (!slewing_ || now < slew_end_) return;
  Fold(now);
  slewing_ = false;
  leap_slewing_ = false;
  (void)SetAdjustment(base_ppm_);
}

absl::Status Discipline::Shutdown(clock::MonoTime now) {
  Fold(now);
  slewing_ = false;
  leap_slewing_ = false;
  return SetAdjustment(base_ppm_);
}

absl::Status Discipline::SlewAtLimit(clock::MonoTime now, double e) {
  const double limit = options_.max_frequency_ppm;
  // The room the limit leaves over the base frequency in the direction to go.
  const double headroom = e > 0 ? limit - base_ppm_ : limit + base_ppm_;
  slewing_ = false;
  if (headroom <= 0 || e == 0) return SetAdjustment(base_ppm_);
  const double target =
      std::clamp(base_ppm_ + (e > 0 ? headroom : -headroom), -limit, limit);
  absl::Status s = SetAdjustment(target);
  if (!s.ok()) return s;
  slewing_ = true;
  slew_end_ = now + absl::Seconds(std::fabs(e) * 1e6 / headroom);
  return absl::OkStatus();
}

void Discipline::LeapSecond(clock::MonoTime now, double seconds) {
  Fold(now);
  // What a running slew has yet to correct is still to be corrected.
  double e = seconds;
  if (slewing_ && now < slew_end_) {
    e += (adj_ppm_ - base_ppm_) * 1e-6 * absl::ToDoubleSeconds(slew_end_ - now);
  }
  // Offsets now read `seconds` more (reference minus local); x = offset + C
  // stays continuous if C moves the other way.
  c0_ -= seconds;
  // On the clock's error the next Update tries again, still without stepping.
  (void)SlewAtLimit(now, e);
  leap_slewing_ = e != 0;
}

bool Discipline::StepBy(double e, Correction* result) {
  if (absl::Status s = clock_->Step(absl::Seconds(e)); !s.ok()) {
    result->kind = CorrectionKind::kError;
    result->message = std::string(s.message());
    return false;
  }
  c0_ += e;
  ++steps_;
  slewing_ = false;
  leap_slewing_ = false;
  if (absl::Status s = SetAdjustment(base_ppm_); !s.ok()) {
    result->kind = CorrectionKind::kError;
    result->message = std::string(s.message());
    return false;
  }
  result->kind = CorrectionKind::kStep;
  return true;
}

Correction Discipline::Update(clock::MonoTime now, double x, double f,
                              UpdateMode mode, absl::Duration slew_time,
                              bool allow_step, std::optional<double> max_step) {
  Fold(now);
  Correction result;
  const double e = x - c0_;  // reference minus local, now
  result.offset = e;
  const double limit = options_.max_frequency_ppm;
  const double base = std::clamp(f * 1e6, -limit, limit);

  double step_threshold = absl::ToDoubleSeconds(options_.step_threshold);
  if (mode == UpdateMode::kStartup ||
      (mode == UpdateMode::kForced && allow_step)) {
    step_threshold = absl::ToDoubleSeconds(options_.startup_step_threshold);
  }
  // During a leap slew (leapsecmode slew) the remaining phase is slewed at the
  // limit, never stepped; only a forced resync that allows stepping may step.
  const bool leap =
      leap_slewing_ && !(mode == UpdateMode::kForced && allow_step);
  const bool step_allowed =
      !leap && (options_.step_threshold > absl::ZeroDuration() ||
                mode == UpdateMode::kStartup ||
                (mode == UpdateMode::kForced && allow_step));
  const double panic = absl::ToDoubleSeconds(options_.panic_threshold);
  const bool panic_allowed =
      (mode == UpdateMode::kStartup && options_.allow_panic_at_startup) ||
      (mode == UpdateMode::kForced && allow_step);
  if (panic > 0 && std::fabs(e) > panic && !panic_allowed) {
    result.kind = CorrectionKind::kPanic;
    result.message = absl::StrFormat(
        "offset %+.3f s exceeds the panic threshold (%.0f s): not correcting; "
        "set the clock by hand, or force it with `ntpfleetctl sync --step` on "
        "this node (`ntpfleetctl resync NODE --step --force` from the "
        "controller)",
        e, panic);
    return result;
  }

  const bool step_refused = max_step.has_value() && std::fabs(e) > *max_step;
  if (step_allowed && std::fabs(e) > step_threshold) {
    if (step_refused) {
      result.kind = CorrectionKind::kRefused;
      return result;
    }
    base_ppm_ = base;
    StepBy(e, &result);
    return result;
  }

  // Slew: base frequency plus e spread over the slew time, within the 500 ppm
  // limit. The headroom is what the limit leaves in the direction the slew must
  // go.
  const double headroom = e > 0 ? limit - base : limit + base;
  double seconds =
      leap ? 1e-3 : std::max(absl::ToDoubleSeconds(slew_time), 1e-3);
  // With the frequency correction at the limit there is no room to slew this
  // way: a clock that far off can only be kept by small steps.
  if (step_allowed && std::fabs(e) > kSaturatedStep &&
      headroom < kMinSlewHeadroomPpm) {
    if (step_refused) {
      result.kind = CorrectionKind::kRefused;
      return result;
    }
    base_ppm_ = base;
    if (!StepBy(e, &result)) return result;
    result.message = absl::StrFormat(
        "frequency correction saturated at %+.0f ppm: stepped %+.6f s",
        base_ppm_, e);
    return result;
  }
  base_ppm_ = base;
  double total_ppm = base;  // base + slew
  if (headroom > 0 && e != 0) {
    if (std::fabs(e) / seconds * 1e6 > headroom)
      seconds = std::fabs(e) * 1e6 / headroom;
    // Clamped as the sum that goes to the clock: (limit - base) + base can
    // round to one ulp above the limit, which the clock refuses.
    total_ppm = std::clamp(base + e / seconds * 1e6, -limit, limit);
  }
  absl::Status s = SetAdjustment(total_ppm);
  if (!s.ok()) {
    result.kind = CorrectionKind::kError;
    result.message = std::string(s.message());
    return result;
  }
  slewing_ = total_ppm != base;
  slew_end_ = now + absl::Seconds(seconds);
  leap_slewing_ = leap && slewing_;
  result.kind = CorrectionKind::kSlew;
  return result;
}

}  // namespace ntpfleet::ntp
