// What ntpfleet-agent writes into its ClockBound shared memory segment
// (clockbound/, docs/CLOCKBOUND.md), and when.
//
// ClockBoundModel is the policy, with no I/O: from the engine's status it makes
// the segment's contents —
//   status: synchronised, or syncing with a known bound -> 1 synchronized;
//           holdover -> 2 free running; everything else (unsynchronised,
//           refused, an unknown bound, and the local clock, whose bound is
//           relative to itself, not to true time) -> 0 unknown;
//   bound:  the engine's error bound, plus every external step not yet
//           measured, plus 1 s around a leap second; 2^62 ns when unknown;
//   as_of:  CLOCK_MONOTONIC_COARSE when the bound was computed;
//   void_after: as_of + `validity` (1000 s by default, as ClockBound's daemon),
//           and never past a pending leap second the bound does not cover;
//   max drift: kPhi (15 ppm, RFC 5905's frequency tolerance) plus the slew
//           running (an agent killed mid-slew leaves the kernel at that rate);
// — and it sees steps of the clock that the engine did not make (someone
// ran `date`, `ntpfleetctl sim-step`): the clock minus the monotonic clock
// jumps.
//
// ClockBoundPublisher adds the segment (clockbound::Writer). AgentLoop calls
// it after every engine event, at least once a second, at once on a step, and
// on the way out (status unknown).
#ifndef NTPFLEET_AGENT_NET_CLOCKBOUND_PUBLISHER_H_
#define NTPFLEET_AGENT_NET_CLOCKBOUND_PUBLISHER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "agent/ntp/engine.h"
#include "clockbound/segment.h"
#include "clockbound/writer.h"

namespace ntpfleet::net {

// The engine's view when a bound was computed.
struct ClockBoundSnapshot {
  ntp::SyncState state = ntp::SyncState::kUnsynchronized;
  absl::Duration error_bound = absl::InfiniteDuration();
  ntp::ErrorBoundReference reference = ntp::ErrorBoundReference::kUpstream;
  ntp::Leap leap = ntp::Leap::kNone;   // announced for this month's end
  absl::Time clock_now;                // the clock's reading then
  clockbound::Timespec64 as_of{0, 0};  // CLOCK_MONOTONIC_COARSE then
  double slew_ppm = 0;  // frequency adjustment beyond the learned one, ppm
  // A simulated clock: its reading minus CLOCK_MONOTONIC, ns (the segment's
  // extension). nullopt: the clock is CLOCK_REALTIME.
  std::optional<int64_t> clock_minus_monotonic_ns;
  uint64_t corrections = 0;  // the engine's count, to end a step's penalty
};

// The bound written when there is none (status unknown): about 146 years, a
// number no reader can mistake for a measurement.
inline constexpr int64_t kUnknownBoundNs = int64_t{1} << 62;
// A leap second's neighbourhood, by the clock: the bound covers the second
// from this long before the leap until this long after it.
inline constexpr absl::Duration kLeapWindow = absl::Seconds(2);

class ClockBoundModel {
 public:
  explicit ClockBoundModel(absl::Duration validity) : validity_(validity) {}

  // The segment's contents for `s` (remembers a pending leap's instant).
  clockbound::Contents Contents(const ClockBoundSnapshot& s);
  // On the way out: unknown.
  clockbound::Contents Stopped(const clockbound::Timespec64& as_of) const;

  // A step the engine did not make, seen by the clock minus the monotonic
  // clock jumping by more than 1 ms + 1000 ppm of the time since the last
  // look (the clock's rate differs from the monotonic clock's only by a sim
  // oscillator's error and the slew, both well under that). Returns the step
  // (positive: the clock moved forward); nullopt if none. `own_steps`: the
  // engine's count (its steps are its own measurement, not a penalty). Not
  // checked near a leap second.
  std::optional<absl::Duration> ObserveClock(absl::Time clock_now,
                                             clock::MonoTime mono_now,
                                             int own_steps);
  // The bound grows by |step| until the engine's next correction after
  // `corrections_now` (a fresh measurement).
  void AddStep(absl::Duration step, uint64_t corrections_now);
  absl::Duration step_penalty() const { return step_penalty_; }

  static clockbound::ClockStatus MapStatus(ntp::SyncState state,
                                           absl::Duration error_bound,
                                           ntp::ErrorBoundReference reference);

 private:
  bool NearLeap(absl::Time clock_now) const;

  absl::Duration validity_;
  absl::Duration step_penalty_ = absl::ZeroDuration();
  uint64_t penalty_corrections_ = 0;
  std::optional<absl::Time> leap_at_;  // pending or just passed
  // ObserveClock's last look.
  std::optional<absl::Duration> last_clock_minus_mono_;
  clock::MonoTime last_mono_;
  int last_own_steps_ = 0;
};

class ClockBoundPublisher {
 public:
  static absl::StatusOr<std::unique_ptr<ClockBoundPublisher>> Open(
      const std::string& path, absl::Duration validity);

  void Publish(const ClockBoundSnapshot& s) {
    writer_->Write(model_.Contents(s));
  }
  void PublishStopped(const clockbound::Timespec64& as_of) {
    writer_->Write(model_.Stopped(as_of));
  }
  ClockBoundModel& model() { return model_; }
  const std::string& path() const { return writer_->path(); }

 private:
  ClockBoundPublisher(std::unique_ptr<clockbound::Writer> writer,
                      absl::Duration validity)
      : writer_(std::move(writer)), model_(validity) {}

  std::unique_ptr<clockbound::Writer> writer_;
  ClockBoundModel model_;
};

// CLOCK_MONOTONIC_COARSE now.
clockbound::Timespec64 MonotonicCoarseNow();

}  // namespace ntpfleet::net

#endif  // NTPFLEET_AGENT_NET_CLOCKBOUND_PUBLISHER_H_
