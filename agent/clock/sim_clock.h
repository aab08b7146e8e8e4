// SimClock: a virtual wall clock for tests, the simulator and the demo fleet.
// It never touches the machine's clock.
//
// True time is `true_epoch` plus the elapsed time of an underlying
// MonotonicClock (the simulator's virtual time, or CLOCK_MONOTONIC in the
// demo). The simulated clock reads
//   local(t) = true(t) + phase(t)
// where phase starts at `initial_offset` and drifts at the clock's rate error:
// the oscillator's natural frequency error (a random walk of `wander` per √s
// around `frequency_error_ppm`) plus the frequency adjustment NTP sets. Steps
// add to phase at once.
//
// Leap seconds as Linux applies them: with SyncState::leap = kInsert the clock
// goes back one second when it reaches the end of a UTC day (by its own
// reading), so it reads 23:59:59 twice; with kDelete it jumps from 23:59:59 to
// 00:00:00. As in the kernel (TIME_WAIT), a leap is applied once, and the next
// needs the flag cleared (SetSyncState with kNone) and set again. True time
// has no leap seconds: it runs on like TAI.
//
// Signs: phase = local minus true (positive: the clock is ahead, so NTP's
// offset, reference minus local, is negative); frequency error positive = runs
// fast.
//
// Thread-safe (an uncontended mutex: the demo's server threads read it too).
//
//   SimClock clock(&mono, absl::Now(), {.initial_offset = absl::Seconds(2),
//                                      .frequency_error_ppm = 300, .seed = 1});
//   clock.Now();                   // 2 s ahead of true time, gaining 300 µs
//   per second
#ifndef NTPFLEET_AGENT_CLOCK_SIM_CLOCK_H_
#define NTPFLEET_AGENT_CLOCK_SIM_CLOCK_H_

#include <cstdint>
#include <optional>
#include <random>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"

namespace ntpfleet::clock {

struct SimClockParams {
  absl::Duration initial_offset =
      absl::ZeroDuration();        // local minus true at the start
  double frequency_error_ppm = 0;  // natural rate error, positive = runs fast
  // Random-walk frequency wander: each second the natural frequency moves by
  // wander * N(0, 1) (dimensionless, e.g. 1e-9 — as chrony's clknetsim models
  // oscillators).
  double wander = 0;
  uint64_t seed = 1;
};

// CLOCK_REALTIME paired with a reading of `mono` at the same instant: the
// realtime read between two readings of `mono`, the tightest pair of up to
// 20 tries (a pair closer than 2 µs ends the tries). `uncertainty` is half
// that pair's gap. For SimClocks whose true time runs with the machine's
// clock (the agent's --clock=sim, live tests): the true times of several of
// them, and CLOCK_REALTIME, then agree to within microseconds. Read apart
// (absl::Now(), then mono), a thread preempted between the two reads put its
// clock's true time off by the preemption (0.36 ms, seen under load).
struct RealtimeAnchor {
  MonoTime mono;
  absl::Time realtime;
  absl::Duration uncertainty;
};
RealtimeAnchor AnchorToRealtime(const MonotonicClock& mono);

class SimClock final : public AdjustableClock {
 public:
  // True time is `true_epoch` at `mono`'s reading now.
  SimClock(const MonotonicClock* mono, absl::Time true_epoch,
           const SimClockParams& params);
  // True time is `anchor.realtime` at `anchor.mono`: with AnchorToRealtime,
  // true time runs with CLOCK_REALTIME.
  SimClock(const MonotonicClock* mono, const RealtimeAnchor& anchor,
           const SimClockParams& params);

  // AdjustableClock.
  absl::Time Now() const override;
  absl::Status Step(absl::Duration delta) override;
  absl::Status SetFrequencyAdjustment(double ppm) override;
  double FrequencyAdjustment() const override;
  absl::Status SetSyncState(const SyncState& state) override;

  // For measuring: true time now, local minus true now, and the clock's total
  // rate error now (natural + adjustment, in ppm, positive = runs fast).
  absl::Time TrueNow() const;
  absl::Duration Phase() const;
  double RateErrorPpm() const;
  SyncState sync_state() const;
  int steps() const;
  // The oscillator's natural frequency changes by `ppm` now (positive: runs
  // faster), as after a temperature change; for the simulator's frequency-step
  // scenarios.
  void ShiftNaturalFrequency(double ppm);
  // Leap seconds applied (inserted or deleted).
  int leaps() const;
  // In an inserted leap second: the clock reads 23:59:59 for the second time,
  // which the kernel flags (TIME_OOP, reported by adjtimex) so that a reader
  // can tell it is 23:59:60.
  bool InInsertedSecond() const;

 private:
  // Integrates phase and wander up to the monotonic clock's present, and
  // applies an armed leap second whose instant the clock passed.
  void Advance() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;

  const MonotonicClock* mono_;
  absl::Time true_epoch_;
  MonoTime origin_;
  double wander_;
  double adjustment_ppm_ ABSL_GUARDED_BY(mu_) = 0;
  SyncState sync_state_ ABSL_GUARDED_BY(mu_);
  int steps_ ABSL_GUARDED_BY(mu_) = 0;
  mutable int leaps_ ABSL_GUARDED_BY(mu_) = 0;
  // A leap was applied and the flag not cleared since (the kernel's
  // TIME_WAIT).
  mutable bool leap_waiting_ ABSL_GUARDED_BY(mu_) = false;
  // The reading at which the last inserted second ends (the midnight the
  // clock reached before going back one second); until then it is 23:59:60.
  mutable std::optional<absl::Time> inserted_until_ ABSL_GUARDED_BY(mu_);

  // Lazily integrated state, valid at mono time `at_`.
  mutable MonoTime at_ ABSL_GUARDED_BY(mu_);
  mutable double phase_s_ ABSL_GUARDED_BY(mu_);  // local minus true, seconds
  mutable double natural_ppm_
      ABSL_GUARDED_BY(mu_);  // natural frequency error, ppm
  mutable absl::Duration next_wander_
      ABSL_GUARDED_BY(mu_);  // next wander tick, since origin_
  mutable std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  mutable std::normal_distribution<double> normal_ ABSL_GUARDED_BY(mu_){0.0,
                                                                        1.0};
};

}  // namespace ntpfleet::clock

#endif  // NTPFLEET_AGENT_CLOCK_SIM_CLOCK_H_
