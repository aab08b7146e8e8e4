// Clock discipline: steers an AdjustableClock towards the engine's estimate of
// true time (RFC 5905 §11.3 and Appendix A.5.5 decide the same questions: step
// or slew, and how fast).
//
// The engine's filters estimate x(t) = reference minus the free-running
// oscillator and its rate f = dx/dt. The discipline keeps the clock's
// cumulative correction C(t) (steps plus integrated frequency adjustments) and
// makes C follow x:
// - frequency: the adjustment is set to f (in ppm, adjtimex sign), cancelling
// the oscillator's
//   error, so the clock does not drift between polls;
// - phase: the remaining offset e = x - C is stepped if |e| exceeds the step
// threshold (0.128 s,
//   `tinker step`), otherwise slewed by a temporary extra frequency for a
//   while; |frequency + slew| never exceeds 500 ppm;
// - panic: an offset beyond the panic threshold (1000 s, `tinker panic`) is
// never corrected,
//   unless at start-up with `allow_panic_at_startup` (ntpd -g) or in a forced
//   resync that allows stepping;
// - start-up: the first correction after the agent starts steps any offset
// above
//   `startup_step_threshold` (default 1 ms): slewing 100 ms at 500 ppm would
//   take 200 s, and a freshly started node (like one after ntpdate at boot)
//   should be right at once.
//
// Offsets are in seconds as doubles here (the engine's filter domain); the
// AdjustableClock gets absl::Duration.
#ifndef NTPFLEET_AGENT_NTP_DISCIPLINE_H_
#define NTPFLEET_AGENT_NTP_DISCIPLINE_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"

namespace ntpfleet::ntp {

struct DisciplineOptions {
  absl::Duration step_threshold =
      absl::Milliseconds(128);  // 0: never step (ntpd -x)
  absl::Duration panic_threshold = absl::Seconds(1000);  // 0: no panic check
  absl::Duration startup_step_threshold = absl::Milliseconds(1);
  bool allow_panic_at_startup = true;  // like ntpd -g
  double max_frequency_ppm = clock::kMaxFrequencyPpm;
};

enum class UpdateMode {
  kStartup,  // the first correction since start
  kNormal,
  kForced,  // a forced resync (`ntpfleetctl resync`), stepping allowed per
            // allow_step
};

enum class CorrectionKind {
  kSlew,
  kStep,
  kPanic,  // refused: beyond the panic threshold
  kError,  // the clock refused (e.g. no CAP_SYS_TIME)
  // Refused: the correction would step the clock by more than the caller's
  // `max_step` (a resync from the controller); nothing was changed.
  kRefused,
};

struct Correction {
  CorrectionKind kind = CorrectionKind::kSlew;
  double offset =
      0;  // e before the correction, seconds (reference minus local)
  std::string message;  // for kPanic / kError
};

class Discipline {
 public:
  // `initial_adjustment_ppm`: the frequency adjustment to start from (e.g. the
  // drift file).
  Discipline(clock::AdjustableClock* clock, const DisciplineOptions& options,
             clock::MonoTime now, double initial_adjustment_ppm);

  // Seconds of correction applied up to monotonic time t (steps plus integrated
  // adjustment).
  double CorrectionAt(clock::MonoTime t) const;

  // Steers towards x (reference minus free-running, seconds, at `now`) with
  // rate f = dx/dt. `slew_time`: how long to spread a phase correction over
  // (stretched if the 500 ppm limit needs it). `allow_step`: for kForced only.
  // `max_step` (seconds, >= 0): a step larger than this is not made, and
  // nothing else is changed either (kRefused); slews are not limited.
  Correction Update(clock::MonoTime now, double x, double f, UpdateMode mode,
                    absl::Duration slew_time, bool allow_step = false,
                    std::optional<double> max_step = std::nullopt);

  // Keeps the learned frequency and finishes any slew (holdover); nothing else
  // changes. Ends a slew when it is due.
  void HandleTimer(clock::MonoTime now);

  // A leap second the clock was not told about (`leapsecmode slew`): at `now`
  // UTC, and with it every source, jumped by `seconds` (-1 for an inserted
  // second, +1 for a deleted one) while the clock ran on. The correction C
  // absorbs the jump, so that x = offset + C stays continuous (no filter sees
  // a spike), and the clock, now `seconds` off, is slewed at the frequency
  // limit: 1 s at 500 ppm takes about 2000 s. Until that slew ends, Update()
  // never steps (it re-plans the remaining phase at the limit), so the clock
  // never repeats or skips a second.
  void LeapSecond(clock::MonoTime now, double seconds);
  // A leap slew is under way.
  bool leap_slewing() const { return leap_slewing_; }

  // Before the agent exits: ends any slew early and leaves the clock at the
  // learned base frequency. The kernel keeps whatever rate it was last given,
  // so an agent that stopped mid-slew would leave the clock running up to
  // 500 ppm off until the next start (chronyd resets on exit for the same
  // reason). What the slew had not yet corrected stays uncorrected. The
  // clock's error, if setting the frequency fails.
  absl::Status Shutdown(clock::MonoTime now);
  clock::MonoTime next_timer() const {
    return slewing_ ? slew_end_ : clock::MonoTime::Infinite();
  }

  // The learned frequency adjustment (adjtimex sign: positive speeds the
  // clock), without slew.
  double base_frequency_ppm() const { return base_ppm_; }
  bool slewing() const { return slewing_; }
  int steps() const { return steps_; }
  const DisciplineOptions& options() const { return options_; }

 private:
  // Folds the correction accumulated at the current adjustment into c0_ up to
  // `now`.
  void Fold(clock::MonoTime now);
  // Slews e seconds at the frequency limit over the base frequency.
  absl::Status SlewAtLimit(clock::MonoTime now, double e);
  absl::Status SetAdjustment(double ppm);
  // Steps the clock by e seconds and sets the base frequency; fills `result`
  // (kStep, or kError with the clock's message). False on error.
  bool StepBy(double e, Correction* result);

  clock::AdjustableClock* clock_;
  DisciplineOptions options_;
  // C(t) = c0_ + adj_ppm_ * 1e-6 * (t - t0_)
  clock::MonoTime t0_;
  double c0_ = 0;
  double adj_ppm_ = 0;
  double base_ppm_ = 0;
  bool slewing_ = false;
  bool leap_slewing_ = false;
  clock::MonoTime slew_end_;
  int steps_ = 0;
};

}  // namespace ntpfleet::ntp

#endif  // NTPFLEET_AGENT_NTP_DISCIPLINE_H_
