#include "agent/ntp/filter.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/time/time.h"
#include "agent/clock/clock.h"

namespace ntpfleet::ntp {

SourceFilter::SourceFilter(const FilterOptions& options)
    : options_(options),
      p_ff_(options.initial_frequency_sigma * options.initial_frequency_sigma),
      wander_(options.wander) {}

void SourceFilter::SetFrequencyPrior(double frequency, double sigma) {
  f_ = frequency;
  p_ff_ = sigma * sigma;
}

void SourceFilter::Predict(double dt) {
  if (dt <= 0) return;
  // x' = x + f dt; P' = F P Fᵀ + Q, with Q from a random-walk frequency of
  // spectral density q.
  const double q = wander_ * wander_;
  x_ += f_ * dt;
  p_xx_ += 2 * dt * p_xf_ + dt * dt * p_ff_ + q * dt * dt * dt / 3;
  p_xf_ += dt * p_ff_ + q * dt * dt / 2;
  p_ff_ += q * dt;
}

double SourceFilter::MedianDelay() const {
  if (delays_.empty()) return 0;
  std::vector<double> sorted(delays_.begin(), delays_.end());
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2,
                   sorted.end());
  return sorted[sorted.size() / 2];
}

double SourceFilter::min_delay() const {
  return delays_.empty() ? 0
                         : *std::min_element(delays_.begin(), delays_.end());
}

FilterVerdict SourceFilter::Add(clock::MonoTime t, double x, double delay) {
  if (options_.last_sample_only) {
    // The test-only baseline (FilterOptions): no filtering at all. Its
    // variance is the sample's own (offset error within ±delay/2); the
    // frequency comes from two samples at least 16 s apart (not the 2 s of a
    // burst's pair, whose slope is mostly noise).
    const double dt = samples_ ? absl::ToDoubleSeconds(t - t_) : 0;
    const double var = std::pow(options_.noise_floor, 2) + delay * delay / 4;
    last_nu_ = samples_ ? (x - OffsetAt(t)) / std::sqrt(2 * var) : 0;
    if (dt >= 16) f_ = (x - x_) / dt;
    if (dt >= 16) p_ff_ = 2 * var / (dt * dt);
    t_ = t;
    x_ = x;
    p_xx_ = var;
    p_xf_ = 0;
    ++samples_;
    return FilterVerdict::kAccepted;
  }
  delays_.push_back(delay);
  if (delays_.size() > options_.min_delay_window) delays_.pop_front();
  // The sample's offset error lies within ±(delay - base)/2, where base is the
  // path's true minimum delay; uniform there, its variance is (delay -
  // base)²/12. The base is at most the smallest delay seen; how far below it
  // may lie shrinks as more delays are seen and grows with their spread: the
  // smallest of n delays lies ~√(2/n) × the spread above the base when the
  // excess is the sum of two exponential one-way delays (its density near 0
  // grows linearly). A longer window finds a lower minimum on a noisy path,
  // so the best samples count more.
  const double lowest = min_delay();
  const double gap =
      std::max(std::sqrt(2.0 / static_cast<double>(delays_.size())) *
                   (MedianDelay() - lowest),
               lowest / delays_.size());
  const double width = std::max(0.0, delay - lowest) + gap;
  const double r =
      options_.noise_floor * options_.noise_floor + width * width / 12;

  if (samples_ == 0) {
    t_ = t;
    x_ = x;
    p_xx_ = r;
    p_xf_ = 0;
    samples_ = 1;
    last_nu_ = 0;
    last_accepted_ = t;
    return FilterVerdict::kAccepted;
  }
  Predict(absl::ToDoubleSeconds(t - t_));
  if (t > t_) t_ = t;

  const double nu = x - x_;
  const double s = p_xx_ + r;
  last_nu_ = nu / std::sqrt(s);
  FilterVerdict verdict = FilterVerdict::kAccepted;
  if (samples_ >= 3 && nu * nu > 25 * s) {
    spikes_[spikes_in_row_++] = Spike{t, nu, r};
    if (spikes_in_row_ < kSpikesToRestart) return FilterVerdict::kSpike;
    // Three in a row: not popcorn. Either the source's time jumped or the
    // oscillator's frequency changed (a temperature step, an upstream that
    // changed its own rate): RestartFromSpikes tells them apart.
    RestartFromSpikes();
    last_accepted_ = t;
    return FilterVerdict::kRestarted;
  }
  spikes_in_row_ = 0;
  last_accepted_ = t;
  AdaptWander(nu * nu / s);
  const double k_x = p_xx_ / s;
  const double k_f = p_xf_ / s;
  x_ += k_x * nu;
  f_ += k_f * nu;
  // P = (I - K H) P, written out for the 2x2 symmetric case.
  const double p_xx = (1 - k_x) * p_xx_;
  const double p_xf = (1 - k_x) * p_xf_;
  const double p_ff = p_ff_ - k_f * p_xf_;
  p_xx_ = p_xx;
  p_xf_ = p_xf;
  p_ff_ = std::max(p_ff, 0.0);
  ++samples_;
  residuals_[residual_count_++ % residuals_.size()] = x - x_;
  return verdict;
}

void SourceFilter::RestartFromSpikes() {
  // The spikes' innovations ν were all taken against the same prediction (a
  // spike only predicts, it updates nothing), so they lie on a line: constant
  // if the source's time jumped, growing at Δf if the frequency changed. Fit
  // ν = a + b·τ, τ = t - t_last (weighted least squares, weights 1/r); a is
  // the correction at the last spike, b the frequency change.
  const Spike& last = spikes_[kSpikesToRestart - 1];
  double w = 0, sx = 0, sxx = 0, sy = 0, sxy = 0;
  for (const Spike& spike : spikes_) {
    const double tau = absl::ToDoubleSeconds(spike.t - last.t);
    const double weight = 1 / spike.r;
    w += weight;
    sx += weight * tau;
    sxx += weight * tau * tau;
    sy += weight * spike.nu;
    sxy += weight * tau * spike.nu;
  }
  const double det = w * sxx - sx * sx;
  double a = sy / w, b = 0, var_a = 1 / w, var_b = 0, cov_ab = 0;
  if (det > 0) {
    const double fit_b = (w * sxy - sx * sy) / det;
    const double fit_a = (sxx * sy - sx * sxy) / det;
    // The residuals' scatter beyond what r predicts (one degree of freedom
    // left) widens the fit's variances; the measurement variance alone may
    // understate it.
    double chi2 = 0;
    for (const Spike& spike : spikes_) {
      const double tau = absl::ToDoubleSeconds(spike.t - last.t);
      const double res = spike.nu - fit_a - fit_b * tau;
      chi2 += res * res / spike.r;
    }
    const double scale = std::max(1.0, chi2);
    const double fit_var_b = scale * w / det;
    // A frequency change only when the slope is beyond doubt (3σ): a jump's
    // three samples fit a flat line, and taking their noisy slope would throw
    // away the frequency the filter knows far better.
    if (fit_b * fit_b > 9 * fit_var_b) {
      a = fit_a;
      b = fit_b;
      var_a = scale * sxx / det;
      var_b = fit_var_b;
      cov_ab = -scale * sx / det;
    }
  }
  const double kept_p_ff = p_ff_;
  ResetPhase();
  // x_ is the prediction at the last spike (Predict ran for each).
  x_ += a;
  f_ += b;
  p_xx_ = var_a;
  p_xf_ = cov_ab;
  // A new frequency is only as certain as its fit; a kept one as before.
  p_ff_ = b != 0 ? var_b : kept_p_ff;
  samples_ = kSpikesToRestart;
}

double SourceFilter::PendingDisagreement(clock::MonoTime now) const {
  if (spikes_in_row_ == 0) return 0;
  const Spike& last = spikes_[spikes_in_row_ - 1];
  // The growth rate of the disagreement: between the last two spikes, or for
  // a single one since the last accepted sample (which agreed).
  const clock::MonoTime from =
      spikes_in_row_ >= 2 ? spikes_[spikes_in_row_ - 2].t : last_accepted_;
  const double from_nu =
      spikes_in_row_ >= 2 ? spikes_[spikes_in_row_ - 2].nu : 0;
  const double span = absl::ToDoubleSeconds(last.t - from);
  const double rate = span > 0 ? (last.nu - from_nu) / span : 0;
  const double ahead = std::max(0.0, absl::ToDoubleSeconds(now - last.t));
  return std::max(std::fabs(last.nu), std::fabs(last.nu + rate * ahead));
}

void SourceFilter::AdaptWander(double nu2) {
  // As ntpd-rs does for its Kalman filter: if the normalised innovations are
  // persistently larger than the model predicts, the oscillator wanders more
  // than assumed (temperature, ageing): double the wander (four times the
  // process noise); if they stay well below, halve it back towards the floor.
  // The mean of ν² over ~8 samples is the test (1 when the model is right).
  if (samples_ < 4) return;
  nu2_mean_ += (std::min(nu2, 25.0) - nu2_mean_) / 8;
  if (nu2_mean_ > 2.5 && wander_ < options_.max_wander) {
    wander_ = std::min(2 * wander_, options_.max_wander);
    nu2_mean_ = 1;
  } else if (nu2_mean_ < 0.4 && wander_ > options_.wander) {
    wander_ = std::max(wander_ / 2, options_.wander);
    nu2_mean_ = 1;
  }
}

double SourceFilter::OffsetAt(clock::MonoTime t) const {
  return x_ + f_ * absl::ToDoubleSeconds(t - t_);
}

double SourceFilter::OffsetVarianceAt(clock::MonoTime t) const {
  const double dt = std::max(0.0, absl::ToDoubleSeconds(t - t_));
  const double q = wander_ * wander_;
  return p_xx_ + 2 * dt * p_xf_ + dt * dt * p_ff_ + q * dt * dt * dt / 3;
}

double SourceFilter::jitter() const {
  const size_t n = std::min(residual_count_, residuals_.size());
  if (n == 0) return 0;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += residuals_[i] * residuals_[i];
  return std::sqrt(sum / n);
}

void SourceFilter::ResetPhase() {
  // The next sample sets the phase; the frequency estimate and what the path's
  // delays showed are kept.
  samples_ = 0;
  p_xx_ = 0;
  p_xf_ = 0;
  spikes_in_row_ = 0;
  residual_count_ = 0;
}

void SourceFilter::ForgetPath() { delays_.clear(); }

}  // namespace ntpfleet::ntp
