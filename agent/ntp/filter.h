// Per-source measurement filter: turns a source's noisy offset samples into an
// estimate of that source's time and frequency relative to this node's
// free-running oscillator.
//
// RFC 5905 §10's clock filter picks the minimum-delay sample of the last eight,
// because a sample's offset error is bounded by half its delay. This filter
// keeps that insight and uses every sample: it is a two-state Kalman filter
// (phase, frequency) whose measurement noise comes from each sample's delay.
// For an exchange whose round-trip delay exceeds the path's minimum by x, the
// offset error lies in ±x/2 (the excess was spent in one direction or the
// other), so the sample's variance is modelled as σ0² + (x/2)²/3; minimum-delay
// samples dominate, high-delay ones barely move the estimate, and no sample is
// thrown away merely for being in the same window as a better one. Process
// noise models the oscillator's random-walk frequency wander, so older samples
// lose weight as they should, and the estimate carries its own variance (used
// for root distance, poll control and error bounds).
//
// Coordinates: the filter works in "free-running" time. The engine adds the
// discipline's cumulative correction at the sample's time to each measured
// offset, so the filter sees x(t) = reference - uncorrected oscillator, a
// smooth function of time regardless of steps and slews. frequency() is dx/dt
// (dimensionless; -1e-6 means the oscillator gains 1 µs per second).
//
// A popcorn spike (RFC 5905 §10's "spike"; here an innovation beyond 5σ) is
// rejected; three in a row are fitted to a line: flat, the source's time
// jumped and the phase restarts; sloped, a frequency changed (the oscillator's,
// or an upstream's rate) and the filter restarts with the new frequency.
#ifndef NTPFLEET_AGENT_NTP_FILTER_H_
#define NTPFLEET_AGENT_NTP_FILTER_H_

#include <array>
#include <cstddef>
#include <deque>

#include "absl/time/time.h"
#include "agent/clock/clock.h"

namespace ntpfleet::ntp {

struct FilterOptions {
  // The least oscillator frequency random walk assumed, per √s
  // (dimensionless). Larger: trusts old samples less. The filter raises it
  // (up to max_wander) when its innovations show the oscillator wanders more,
  // and lowers it back towards this floor when they stay small.
  double wander = 1e-9;
  double max_wander = 1e-6;
  // Floor of the measurement noise (s): timestamping noise not visible in the
  // delay.
  double noise_floor = 2e-6;
  // Prior standard deviation of the frequency before any sample
  // (dimensionless).
  double initial_frequency_sigma = 500e-6;
  // How many recent delays the path's minimum delay is taken from. Longer
  // finds a lower minimum on a noisy path (bench/accuracy `high-jitter` RMS
  // offset: 16: 101 µs, 32: 84 µs, 64: 82 µs) but follows a path whose delay
  // grew more slowly (at maxpoll with pairs, 32 delays are ~4.5 h).
  size_t min_delay_window = 32;
  // Test-only: a broken baseline for the simulator's floors (tests/sim): the
  // estimate is just the last sample, the frequency from the last two. Never
  // set outside tests.
  bool last_sample_only = false;
};

// What Add() did with a sample.
enum class FilterVerdict {
  kAccepted,
  kSpike,      // rejected as an outlier
  kRestarted,  // accepted after repeated outliers: the phase estimate was
               // restarted
};

class SourceFilter {
 public:
  explicit SourceFilter(const FilterOptions& options = {});

  // Sets the frequency prior (e.g. from the drift file) before the first
  // sample.
  void SetFrequencyPrior(double frequency, double sigma);

  // One sample: `x` = reference minus free-running oscillator at monotonic time
  // `t` (seconds), `delay` the exchange's round-trip delay (seconds, >= 0).
  FilterVerdict Add(clock::MonoTime t, double x, double delay);

  size_t samples() const { return samples_; }
  // Predicted x at t (seconds), and its variance (s²).
  double OffsetAt(clock::MonoTime t) const;
  double OffsetVarianceAt(clock::MonoTime t) const;
  double frequency() const { return f_; }
  double frequency_variance() const { return p_ff_; }
  clock::MonoTime last_update() const { return t_; }
  // RMS of the last eight post-update residuals (s): the peer jitter ntpq
  // shows.
  double jitter() const;
  // The smallest recent delay (s).
  double min_delay() const;
  // The normalised innovation of the last sample (innovation / its predicted
  // σ).
  double last_normalized_innovation() const { return last_nu_; }
  // The oscillator wander the filter currently assumes (per √s): the floor,
  // raised while the innovations show more (see Add()).
  double wander() const { return wander_; }

  // While samples are being rejected as spikes: how far the source's time may
  // already be from the estimate (s, >= 0), extrapolating the run of
  // rejected samples to `now` — the first is taken as having grown since the
  // last accepted sample, as it would after a frequency change. 0 with no
  // spike pending. Either the spikes are popcorn (and the next sample ends the
  // run) or the estimate is wrong by this much: an error bound must cover it.
  double PendingDisagreement(clock::MonoTime now) const;

  // Forget the phase (the next sample sets it); keep the frequency estimate
  // (what the oscillator taught us) and the path's recent delays.
  void ResetPhase();
  // Forget the path's recent delays too: a different server, a different path.
  void ForgetPath();

 private:
  void Predict(double dt);
  // Adapts wander_ to the squared normalised innovation of a sample.
  void AdaptWander(double nu2);
  // After kSpikesToRestart spikes in a row: restart from a straight-line fit
  // of their innovations (see Add()).
  void RestartFromSpikes();
  double MedianDelay() const;

  FilterOptions options_;
  size_t samples_ = 0;
  clock::MonoTime t_;
  // State: x (s) and f = dx/dt; covariance P.
  double x_ = 0;
  double f_ = 0;
  double p_xx_ = 0;
  double p_xf_ = 0;
  double p_ff_;
  int spikes_in_row_ = 0;
  // The run of rejected samples: when, their innovation against the estimate
  // (s) and their measurement variance (s²).
  struct Spike {
    clock::MonoTime t;
    double nu;
    double r;
  };
  static constexpr int kSpikesToRestart = 3;
  std::array<Spike, kSpikesToRestart> spikes_{};
  clock::MonoTime last_accepted_;  // time of the last sample taken
  double last_nu_ = 0;
  double wander_;  // process noise (per √s)
  // Running mean of the squared normalised innovations (1 when the model's
  // variances are right).
  double nu2_mean_ = 1;
  std::deque<double> delays_;
  std::array<double, 8> residuals_{};
  size_t residual_count_ = 0;
};

}  // namespace ntpfleet::ntp

#endif  // NTPFLEET_AGENT_NTP_FILTER_H_
