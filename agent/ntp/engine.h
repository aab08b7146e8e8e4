// The NTP engine: the system process of RFC 5905 (§11) over a set of Sources.
// It owns each source's state machine and filter, selects and combines them
// (selection.h), steers the clock through the Discipline, and derives the
// system variables a server hands on (stratum, refid, root delay and
// dispersion, leap) and the node's error bound.
//
// Sans-IO like everything in agent/ntp: the caller passes events in and carries
// out what comes back.
//
//   Engine engine(&clock, options, mono.Now());
//   int id = engine.AddSource({.name = "ntp1", .address = "10.0.0.1:123",
//   .iburst = true}); for (const Transmit& t : engine.Start(mono.Now())) { send
//   t.bytes to t.address;
//                                                        engine.OnTransmit(t.source,
//                                                        clock.Now(),
//                                                                          mono.Now());
//                                                                          }
//   ... on a datagram:   engine.HandleResponse(from, bytes, t4_local,
//   mono.Now())
//   ... at next_timer(): engine.HandleTimer(mono.Now())
//
// Not thread-safe; one event at a time.
#ifndef NTPFLEET_AGENT_NTP_ENGINE_H_
#define NTPFLEET_AGENT_NTP_ENGINE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "agent/clock/clock.h"
#include "agent/ntp/discipline.h"
#include "agent/ntp/filter.h"
#include "agent/ntp/leap.h"
#include "agent/ntp/selection.h"
#include "agent/ntp/server.h"
#include "agent/ntp/source.h"
#include "common/ntp/packet.h"

namespace ntpfleet::ntp {

// Frequency tolerance: how fast an unsynchronised estimate's error may grow
// (RFC 5905 PHI, 15 ppm; ClockBound uses the same idea).
inline constexpr double kPhi = 15e-6;

struct EngineOptions {
  DisciplineOptions discipline;
  FilterOptions filter;
  SelectionOptions selection;
  // Frequency adjustment to start from (adjtimex sign, ppm), e.g. from the
  // drift file.
  std::optional<double> initial_frequency_ppm;
  // `server 127.127.1.0` + `fudge ... stratum N`: with no usable upstream,
  // serve the local clock at this stratum instead of going unsynchronised.
  std::optional<int> local_clock_stratum;
  // Poll control: raise the poll interval after this many consecutive samples
  // that agree with the filter's prediction (normalised innovation below 1.5).
  int poll_up_after = 4;
  // `leapfile`, parsed (the agent reads the file). With a table, a leap second
  // the sources announce is taken only at a month end it lists, while it
  // covers that month end; without one (or past its expiry) only at the end
  // of June or December (leap.h DecideLeap).
  std::optional<LeapTable> leap_table;
  // `leapsecmode`: the kernel carries out a leap second, or the discipline
  // slews it (leap.h LeapMode).
  LeapMode leap_mode = LeapMode::kSystem;
  // Poll control by noise (s, 0: off): while the filter's predicted
  // uncertainty (1σ) at the next poll exceeds this, the source is sampled more
  // often, down to several requests per minpoll interval; the poll rises only
  // if the prediction over twice the interval stays within it.
  double poll_target_sigma = 100e-6;
  uint64_t seed = 1;
};

// How far a forced resync may step the clock (a resync from the controller;
// the node's own root user is not limited). A measured offset that needs a
// larger step is not corrected at all: the correction is kRefused and its
// message says why, e.g. "offset -800.0 ms is beyond this request's step limit
// (128 ms): an admin can lift it with `ntpfleetctl resync --force`".
struct StepLimit {
  absl::Duration max_step;  // the largest |offset| that may be stepped, >= 0
  std::string name;         // whose limit, for the message
  std::string fix;          // how to lift it, for the message
};

// A request to send: bytes to `address`; then call OnTransmit(source, t1, now).
struct Transmit {
  int source = 0;
  std::string address;
  std::vector<uint8_t> bytes;
};

enum class SyncState {
  kUnsynchronized,
  kSyncing,
  kSynchronized,
  kHoldover,
  kLocalClock,
  // Unsynchronised because every source refused us with a Kiss-o'-Death DENY
  // or RSTR (RFC 5905 §7.4): not a state that passes by waiting. Served as
  // unsynchronised (stratum 16); the reason names who refused.
  kRefused,
};
const char* SyncStateName(SyncState state);

// What the error bound is relative to.
enum class ErrorBoundReference {
  kUpstream,    // the upstream servers' time (UTC, if theirs is)
  kLocalClock,  // this node's own clock, serving as the fleet's time: not UTC
};

struct PeerStatus {
  int id = 0;
  std::string name;
  std::string address;
  SourceHealth health = SourceHealth::kNew;
  std::string reason;  // why it cannot be used, in words
  int stratum = 16;
  RefId reference_id;
  bool prefer = false;
  uint8_t reach = 0;
  int poll = 6;  // log2 s
  std::optional<absl::Duration> since_last_response;
  absl::Duration offset;  // current estimate, reference minus local
  absl::Duration delay;
  absl::Duration jitter;
  absl::Duration root_distance;
  std::optional<SelectionMark> mark;  // nullopt: not a candidate (' ')
  bool has_reference() const { return since_last_response.has_value(); }
  SourceCounters counters;
};

// A monitor-only source (Engine::AddMonitor): a server measured as an
// upstream is (Source, SourceFilter) but never used — the fleet's crosscheck
// probes of other nodes (docs/CROSSCHECK.md).
struct MonitorConfig {
  std::string name;     // for status and logs (the target's node name)
  std::string address;  // "ip:port"
  // One exchange per interval, never more often than kMinMonitorInterval.
  absl::Duration interval = absl::Seconds(64);
  int precision = -20;  // this node's clock precision, log2 s
  std::optional<Key> key;
};
inline constexpr absl::Duration kMinMonitorInterval = absl::Seconds(64);

// What a monitor measured, as its filter has it.
struct MonitorStatus {
  int id = 0;
  std::string name;
  std::string address;
  absl::Duration interval;  // in force (>= kMinMonitorInterval)
  SourceHealth health = SourceHealth::kNew;
  // Why there is no measurement, in words; empty when `offset` is set.
  std::string error;
  // The target's stratum in its last reply (16: unsynchronised, or no reply).
  int stratum = 16;
  uint64_t samples = 0;  // samples the filter took (spikes not counted)
  // The last sample's offset: the target's clock minus ours (reference minus
  // local), from one exchange, so wrong by at most delay / 2 (RFC 5905 §8).
  // Unset before the first sample.
  std::optional<absl::Duration> offset;
  absl::Duration delay;   // of the last sample
  absl::Duration jitter;  // the filter's
  // Our clock when that sample arrived.
  std::optional<absl::Time> measured_at;
  SourceCounters counters;
};

struct EngineStatus {
  SyncState state = SyncState::kUnsynchronized;
  absl::Duration offset;  // estimated current offset, reference minus local
  absl::Duration
      last_offset;  // offset measured at the last update, before its correction
  absl::Duration delay;   // to the system peer
  absl::Duration jitter;  // system jitter
  double frequency_ppm =
      0;  // the oscillator's frequency error, positive = runs fast
  int stratum = 16;
  RefId reference_id;
  Leap leap = Leap::kUnsynchronized;
  absl::Duration root_delay;
  absl::Duration root_dispersion;
  // How far the clock may be from the reference, |offset| included: the
  // estimate's own uncertainty (5σ), path asymmetry (half the delay relied on)
  // and the upstream's bound. Infinite while unknown (unsynchronised, or before
  // the first correction). See docs/ENGINE.md.
  absl::Duration error_bound = absl::InfiniteDuration();
  ErrorBoundReference error_bound_reference = ErrorBoundReference::kUpstream;
  std::optional<int> system_peer;  // index into peers
  int poll = 6;
  std::optional<absl::Time> reference_time;  // local clock at the last update
  int steps = 0;
  std::vector<PeerStatus> peers;
  // The local clock fallback's stratum, when configured.
  std::optional<int> local_clock_stratum;
  // Why the node is not synchronised, in words, when there is more to say than
  // the state: "clock is -2000.000 s off, beyond the panic threshold (1000 s):
  // not correcting; ...". Empty otherwise.
  std::string reason;
};

// What a node serves (RFC 5905 §9.2's system variables) while its engine
// reports `st`: sets leap, stratum, refid, root delay and dispersion and the
// reference time in `out`, leaving the rest (precision). `local_now`: the
// clock's reading, the reference time of a node serving its own clock.
void ApplyStatus(const EngineStatus& st, absl::Time local_now,
                 SystemVariables* out);

class Engine {
 public:
  Engine(clock::AdjustableClock* clock, const EngineOptions& options,
         clock::MonoTime now);

  // Adds an upstream; returns its id. Before Start().
  int AddSource(const SourceConfig& config);
  // Monitor-only sources, at any time (before or after Start): polled once
  // per interval (no burst), measured by the same Source and SourceFilter as
  // upstreams, but never selection candidates and without any effect on the
  // clock, the system variables, the error bound or the sync state. A target
  // answering unsynchronised is measured all the same. Ids are
  // >= kFirstMonitorId (Transmit.source carries them); the first request
  // goes out within 0.5 s (at the next timer).
  static constexpr int kFirstMonitorId = 1 << 24;
  int AddMonitor(const MonitorConfig& config, clock::MonoTime now);
  // Stops polling it; a reply still in flight is counted as unknown. False if
  // there is no such monitor.
  bool RemoveMonitor(int id);
  std::vector<MonitorStatus> Monitors() const;
  std::vector<Transmit> Start(clock::MonoTime now);
  std::vector<Transmit> HandleTimer(clock::MonoTime now);
  void OnTransmit(int source, absl::Time t1_local, clock::MonoTime now);
  // A datagram from `from` ("ip:port"). Datagrams from addresses we did not
  // query are dropped and counted.
  std::vector<Transmit> HandleResponse(const std::string& from,
                                       absl::Span<const uint8_t> bytes,
                                       absl::Time t4_local,
                                       clock::MonoTime now);
  // A new address for a source whose name was (re)resolved; empty if resolution
  // failed, or gave no address the agent may poll (then `why_none` is the
  // peer's reason: "never polled: ...").
  std::vector<Transmit> SetSourceAddress(int source, const std::string& address,
                                         clock::MonoTime now,
                                         std::string why_none = "");
  // Forced resync: a burst to every usable source, and the next correction may
  // step (always when `allow_step`, else above the normal step threshold), but
  // never by more than `limit` when one is given. While a forced resync is
  // pending, the tightest limit of those asked for applies.
  std::vector<Transmit> StartResync(
      clock::MonoTime now, bool allow_step,
      std::optional<StepLimit> limit = std::nullopt);

  // A newer `leapfile` (the agent re-reads it daily, as ntpd does): nullopt
  // when it could not be used. Takes effect at the next announcement vote.
  void SetLeapTable(std::optional<LeapTable> table) {
    options_.leap_table = std::move(table);
  }

  clock::MonoTime next_timer() const;
  EngineStatus Status(clock::MonoTime now) const;
  uint64_t unknown_sender_drops() const { return unknown_sender_; }
  // Before the agent exits: the clock is left at the learned base frequency
  // with no slew running (Discipline::Shutdown).
  absl::Status Shutdown(clock::MonoTime now) {
    return discipline_.Shutdown(now);
  }
  const Discipline& discipline() const { return discipline_; }
  // How many corrections have been applied since start (grows with every step
  // or slew).
  uint64_t corrections() const { return corrections_; }
  // How many corrections were attempted (also those refused: panic, or the
  // clock's error).
  uint64_t attempts() const { return attempts_; }
  // Outcome of the most recent correction (for resync results and logs).
  const std::optional<Correction>& last_correction() const {
    return last_correction_;
  }

 private:
  struct Peer {
    std::unique_ptr<Source> source;
    SourceFilter filter;
    std::optional<Sample> last_sample;
    std::optional<SelectionMark> mark;
    clock::MonoTime timer = clock::MonoTime::Infinite();
    int good_in_row = 0;
    int spikes_in_row = 0;
    // The last kFilterWindow samples the filter accepted (RFC 5905 §10's
    // clock filter register); the minimum-delay one gives the root delay.
    std::deque<Sample> window;
  };

  // A monitor-only source (AddMonitor).
  struct Monitor {
    std::unique_ptr<Source> source;
    SourceFilter filter;
    clock::MonoTime timer = clock::MonoTime::Infinite();
    std::deque<Sample> window;  // as Peer::window
    uint64_t samples = 0;
    std::optional<absl::Time> measured_at;
    std::optional<absl::Duration> offset;  // of the last sample
    absl::Duration delay;                  // of the last sample
  };

  void Execute(int id, std::vector<SourceAction> actions, clock::MonoTime now,
               std::vector<Transmit>* out);
  void ExecuteMonitor(int id, std::vector<SourceAction> actions,
                      std::vector<Transmit>* out);
  void OnMonitorSample(Monitor& monitor, const Sample& sample);
  // An upstream's (id < kFirstMonitorId) or a monitor's Source.
  const Source& SourceOf(int id) const;
  // Every source's outstanding exchange is void (the clock stepped).
  void VoidExchanges();
  void OnSample(int id, const Sample& sample, clock::MonoTime now);
  void UpdateClock(clock::MonoTime now);
  absl::Duration RootDistance(const Peer& peer, clock::MonoTime now) const;
  // The part of the error bound fixed at an update from system peer `peer`
  // (seconds): path asymmetry, the upstream's bound, the selection spread.
  double BoundAtUpdate(const Peer& peer) const;
  // In holdover: kBoundSigmas × the held estimate's σ at `now` (seconds).
  double HoldoverUncertainty(clock::MonoTime now) const;
  void AdjustPoll(Peer& peer, FilterVerdict verdict, clock::MonoTime now);
  // Whether the start-up correction should wait for more samples of `peer`.
  bool StartupWaiting(const Peer& peer, clock::MonoTime now) const;
  // The minimum-delay sample of the peer's window (RFC 5905 §10): the one
  // whose delay the filter relies on most.
  static const Sample& MinDelaySample(const Peer& peer);
  // Leap seconds. VoteLeap counts the truechimers' leap indicators after each
  // correction and keeps the announcement DecideLeap accepts (or clears it);
  // ValidatedLeap is what the node serves and tells the kernel: that
  // announcement until its month end, once. CrossLeap runs at the leap
  // instant: it voids exchanges in flight and, when the kernel was not told
  // (leapsecmode slew), has the discipline slew the second away.
  void VoteLeap(clock::MonoTime now);
  Leap ValidatedLeap(absl::Time wall) const;
  void CrossLeap(clock::MonoTime now);

  clock::AdjustableClock* clock_;
  EngineOptions options_;
  Discipline discipline_;
  std::vector<Peer> peers_;
  std::map<int, Monitor> monitors_;
  int next_monitor_id_ = kFirstMonitorId;
  uint64_t next_seed_;
  uint64_t unknown_sender_ = 0;

  bool forced_pending_ = false;
  bool forced_allow_step_ = false;
  std::optional<StepLimit> forced_limit_;
  std::optional<int> system_peer_;
  double combined_jitter_ = 0;
  double selection_spread_ = 0;  // s, see UpdateClock
  std::optional<clock::MonoTime> last_update_;
  std::optional<absl::Time> reference_time_;
  double last_offset_ = 0;
  std::optional<Correction> last_correction_;
  // The offset of the last correction refused as beyond the panic threshold,
  // until a correction succeeds: the clock is known to be wrong.
  std::optional<double> panic_offset_;
  uint64_t corrections_ = 0;
  uint64_t attempts_ = 0;
  // The system variables at the last update, served on during holdover.
  struct Held {
    int stratum;
    RefId reference_id;
    absl::Duration root_delay;
    // The upstream's root dispersion + ε + the selection spread: without the
    // filter's uncertainty and the offset, which holdover adds as they grow.
    absl::Duration root_dispersion;
    SourceFilter filter;     // the system peer's, at the update
    double bound_at_update;  // BoundAtUpdate(system peer), s
    int poll;
  };
  std::optional<Held> held_;
  // The accepted leap announcement: insert or delete, at `at` (the end of the
  // UTC month, 00:00:00 of the next one).
  struct PendingLeap {
    Leap kind;
    absl::Time at;
  };
  std::optional<PendingLeap> leap_;
  std::optional<absl::Time> leap_done_;  // the last leap crossed
  clock::MonoTime leap_timer_ = clock::MonoTime::Infinite();  // ~ leap_->at
  clock::LeapAction kernel_leap_ = clock::LeapAction::kNone;  // last told
  // CrossLeap's last look at the clock before the leap (monotonic, wall).
  struct LeapCheck {
    clock::MonoTime mono;
    absl::Time wall;
  };
  std::optional<LeapCheck> leap_check_;
};

}  // namespace ntpfleet::ntp

#endif  // NTPFLEET_AGENT_NTP_ENGINE_H_
