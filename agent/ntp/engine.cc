#include "agent/ntp/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "agent/ntp/selection.h"

namespace ntpfleet::ntp {
namespace {

// The error bound counts this many standard deviations of the filter's own
// uncertainty (σₓ, which grows between updates with the measured frequency
// uncertainty and wander). 5σ of a normal error is exceeded with probability
// 6·10⁻⁷: fbclock's "six nines" (its 4σ covers ~99.994 %).
constexpr double kBoundSigmas = 5;
// Holdover ends (the node declares itself unsynchronised) when its root
// distance, which grows with that uncertainty, passes this (ntpd's maxdist).
constexpr double kMaxHoldoverDistance = 1.5;
// Below this measured offset a synchronised node counts as synchronised rather
// than syncing.
constexpr double kSyncedOffset = 1e-3;
// RFC 5905 §10: the clock filter's register of recent samples.
constexpr size_t kFilterWindow = 8;
// A phase correction is slewed over this many of the system peer's sample
// intervals (later samples re-aim it). The clock's rate error during a slew is
// the phase error over the slew time: over one interval, the start-up slews
// (64 s apart, tens of µs each) made most of the RMS frequency error. bench/
// accuracy, `default`: over 1 interval 0.26 ppm, 3: 0.18, 4: 0.16, with the
// RMS offset 43 µs in each.
constexpr int kSlewIntervals = 4;
// A noisy path is sampled at most 2^this times per minpoll interval.
constexpr int kMaxRequestsPerPollLog2 = 3;
// The start-up correction waits at most for this many samples of the system
// peer for its estimate to become precise enough (see StartupWaiting).
constexpr size_t kMaxStartupSamples = 16;

// An offset for a message: "-800.0 ms", "+12.345 s".
std::string FormatOffset(double seconds) {
  if (std::fabs(seconds) < 1) return absl::StrFormat("%+.1f ms", seconds * 1e3);
  return absl::StrFormat("%+.3f s", seconds);
}

// A limit for a message: "128 ms", "1 s", "1000 s", "0 s".
std::string FormatLimit(absl::Duration d) {
  if (d > absl::ZeroDuration() && d < absl::Seconds(1)) {
    return absl::StrFormat("%g ms", absl::ToDoubleMilliseconds(d));
  }
  return absl::StrFormat("%g s", absl::ToDoubleSeconds(d));
}

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// The controller drops a status whose reason is longer than 512 bytes
// (controller/validate.h kMaxStatusReasonBytes): stay inside it.
constexpr size_t kMaxReasonBytes = 480;

// When every source refused us (KoD DENY or RSTR), who did and what they said,
// e.g. "refused by 10.0.0.1: KoD DENY: the server refuses to serve us; ...";
// empty otherwise (no source, or one that has not refused us).
std::string RefusedReason(const std::vector<PeerStatus>& peers) {
  if (peers.empty()) return "";
  std::string out =
      peers.size() == 1
          ? "refused by "
          : absl::StrFormat("refused by all %d servers: ", peers.size());
  for (size_t i = 0; i < peers.size(); ++i) {
    if (peers[i].health != SourceHealth::kDenied) return "";
    absl::StrAppend(&out, i > 0 ? "; " : "", peers[i].name, ": ",
                    peers[i].reason);
  }
  if (out.size() > kMaxReasonBytes) {
    // Cut at a UTF-8 character boundary (not inside a continuation byte).
    size_t cut = kMaxReasonBytes - 3;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) {
      --cut;
    }
    out.resize(cut);
    out += "...";
  }
  return out;
}

}  // namespace

const char* SyncStateName(SyncState state) {
  switch (state) {
    case SyncState::kUnsynchronized:
      return "unsynchronised";
    case SyncState::kSyncing:
      return "syncing";
    case SyncState::kSynchronized:
      return "synchronised";
    case SyncState::kHoldover:
      return "holdover";
    case SyncState::kLocalClock:
      return "local clock";
    case SyncState::kRefused:
      return "refused";
  }
  return "unknown";
}

Engine::Engine(clock::AdjustableClock* clock, const EngineOptions& options,
               clock::MonoTime now)
    : clock_(clock),
      options_(options),
      discipline_(
          clock, options.discipline, now,
          options.initial_frequency_ppm.value_or(clock->FrequencyAdjustment())),
      next_seed_(options.seed) {}

int Engine::AddSource(const SourceConfig& config) {
  Peer peer;
  peer.source =
      std::make_unique<Source>(config, next_seed_++ * 0x9e3779b97f4a7c15ULL);
  peer.filter = SourceFilter(options_.filter);
  // The frequency we start from is the best prior for the oscillator: x' =
  // adjustment. A drift file makes it a confident one.
  peer.filter.SetFrequencyPrior(discipline_.base_frequency_ppm() * 1e-6,
                                options_.initial_frequency_ppm
                                    ? 10e-6
                                    : options_.filter.initial_frequency_sigma);
  peers_.push_back(std::move(peer));
  return static_cast<int>(peers_.size()) - 1;
}

int Engine::AddMonitor(const MonitorConfig& config, clock::MonoTime now) {
  SourceConfig sc;
  sc.name = config.name;
  sc.address = config.address;
  sc.precision = config.precision;
  sc.key = config.key;
  sc.fixed_interval = std::max(config.interval, kMinMonitorInterval);
  // The poll the requests announce (RFC 5905 §7.3), log2 of the interval
  // rounded up; minpoll = maxpoll, so nothing moves it but a KoD RATE.
  sc.minpoll = sc.maxpoll = std::clamp(
      static_cast<int>(
          std::ceil(std::log2(absl::ToDoubleSeconds(*sc.fixed_interval)))),
      6, 17);
  sc.pair_from_poll = 0;  // one exchange per interval, never two
  sc.measure_unfit = true;
  Monitor monitor;
  monitor.source =
      std::make_unique<Source>(sc, next_seed_++ * 0x9e3779b97f4a7c15ULL);
  monitor.filter = SourceFilter(options_.filter);
  monitor.filter.SetFrequencyPrior(
      discipline_.base_frequency_ppm() * 1e-6,
      options_.initial_frequency_ppm ? 10e-6
                                     : options_.filter.initial_frequency_sigma);
  const int id = next_monitor_id_++;
  Monitor& m = monitors_.emplace(id, std::move(monitor)).first->second;
  std::vector<Transmit> none;  // Start only arms the first poll's timer
  ExecuteMonitor(id, m.source->Start(now), &none);
  return id;
}

bool Engine::RemoveMonitor(int id) { return monitors_.erase(id) > 0; }

const Source& Engine::SourceOf(int id) const {
  return id >= kFirstMonitorId ? *monitors_.at(id).source : *peers_[id].source;
}

void Engine::ExecuteMonitor(int id, std::vector<SourceAction> actions,
                            std::vector<Transmit>* out) {
  Monitor& monitor = monitors_.at(id);
  for (SourceAction& action : actions) {
    std::visit(Overloaded{
                   [&](SendRequest& send) {
                     out->push_back(Transmit{id, monitor.source->address(),
                                             std::move(send.bytes)});
                   },
                   [&](const ArmTimer& arm) { monitor.timer = arm.at; },
                   [&](const SampleAccepted& accepted) {
                     OnMonitorSample(monitor, accepted.sample);
                   },
                   [&](const HealthChanged&) {},
               },
               action);
  }
}

void Engine::OnMonitorSample(Monitor& monitor, const Sample& sample) {
  // The crosscheck wants each probe's own measurement: one exchange every 64 s
  // or more, whose error is at most half its delay (RFC 5905 §8), and which
  // shows a target's clock that moved at once. The filter (in the same
  // free-running coordinates as OnSample) only gives the jitter: its spike
  // rejection would hold a stepped target's old phase for kSpikesToRestart
  // polls, minutes at this interval. Nothing here reaches selection, the
  // discipline or the system variables.
  ++monitor.samples;
  monitor.measured_at = clock_->Now();
  monitor.offset = sample.offset;
  monitor.delay = sample.delay;
  const double x = absl::ToDoubleSeconds(sample.offset) +
                   discipline_.CorrectionAt(sample.time);
  const FilterVerdict verdict =
      monitor.filter.Add(sample.time, x, absl::ToDoubleSeconds(sample.delay));
  if (verdict == FilterVerdict::kSpike) return;
  if (verdict == FilterVerdict::kRestarted) monitor.window.clear();
  monitor.window.push_back(sample);
  if (monitor.window.size() > kFilterWindow) monitor.window.pop_front();
}

std::vector<MonitorStatus> Engine::Monitors() const {
  std::vector<MonitorStatus> out;
  for (const auto& [id, monitor] : monitors_) {
    const Source& source = *monitor.source;
    MonitorStatus m;
    m.id = id;
    m.name = source.config().name;
    m.address = source.address();
    m.interval = *source.config().fixed_interval;
    m.health = source.health();
    m.stratum = source.stratum();
    m.samples = monitor.samples;
    m.offset = monitor.offset;
    m.measured_at = monitor.measured_at;
    m.jitter = absl::Seconds(monitor.filter.jitter());
    m.delay = monitor.delay;
    if (!m.offset) {
      m.error = !source.reason().empty()         ? source.reason()
                : source.has_response()          ? "no usable reply yet"
                : source.counters().requests > 0 ? "no reply yet"
                                                 : "not probed yet";
    }
    m.counters = source.counters();
    out.push_back(std::move(m));
  }
  return out;
}

void Engine::VoidExchanges() {
  for (Peer& peer : peers_) peer.source->ClockStepped();
  for (auto& [id, monitor] : monitors_) monitor.source->ClockStepped();
}

void Engine::Execute(int id, std::vector<SourceAction> actions,
                     clock::MonoTime now, std::vector<Transmit>* out) {
  Peer& peer = peers_[id];
  for (SourceAction& action : actions) {
    std::visit(Overloaded{
                   [&](SendRequest& send) {
                     out->push_back(Transmit{id, peer.source->address(),
                                             std::move(send.bytes)});
                   },
                   [&](const ArmTimer& arm) { peer.timer = arm.at; },
                   [&](const SampleAccepted& accepted) {
                     OnSample(id, accepted.sample, now);
                   },
                   [&](const HealthChanged&) {},
               },
               action);
  }
}

std::vector<Transmit> Engine::Start(clock::MonoTime now) {
  std::vector<Transmit> out;
  for (size_t i = 0; i < peers_.size(); ++i) {
    Execute(static_cast<int>(i), peers_[i].source->Start(now), now, &out);
  }
  return out;
}

std::vector<Transmit> Engine::HandleTimer(clock::MonoTime now) {
  std::vector<Transmit> out;
  CrossLeap(now);
  discipline_.HandleTimer(now);
  for (size_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i].timer <= now) {
      Execute(static_cast<int>(i), peers_[i].source->HandleTimer(now), now,
              &out);
    }
  }
  for (auto& [id, monitor] : monitors_) {
    if (monitor.timer <= now) {
      ExecuteMonitor(id, monitor.source->HandleTimer(now), &out);
    }
  }
  return out;
}

void Engine::OnTransmit(int source, absl::Time t1_local, clock::MonoTime now) {
  if (source >= 0 && source < static_cast<int>(peers_.size())) {
    peers_[source].source->OnTransmit(t1_local, now);
  } else if (auto it = monitors_.find(source); it != monitors_.end()) {
    it->second.source->OnTransmit(t1_local, now);
  }
}

std::vector<Transmit> Engine::HandleResponse(const std::string& from,
                                             absl::Span<const uint8_t> bytes,
                                             absl::Time t4_local,
                                             clock::MonoTime now) {
  std::vector<Transmit> out;
  CrossLeap(now);
  if (from.empty()) {
    ++unknown_sender_;
    return out;
  }
  // An upstream and a monitor (or two monitors) may share an address: the
  // reply goes to the source whose request it answers (its origin timestamp,
  // RFC 5905 §8), else to the first one, which counts it.
  uint64_t origin = 0;
  for (size_t k = 24; k < 32 && bytes.size() >= kHeaderSize; ++k) {
    origin = (origin << 8) | bytes[k];
  }
  std::optional<int> chosen;
  auto consider = [&](int id, const Source& source) {
    if (source.address() != from) return;
    if (!chosen || (source.expected_origin().raw() == origin &&
                    SourceOf(*chosen).expected_origin().raw() != origin)) {
      chosen = id;
    }
  };
  for (size_t i = 0; i < peers_.size(); ++i) {
    consider(static_cast<int>(i), *peers_[i].source);
  }
  for (const auto& [id, monitor] : monitors_) consider(id, *monitor.source);
  if (!chosen) {
    ++unknown_sender_;
  } else if (*chosen >= kFirstMonitorId) {
    ExecuteMonitor(
        *chosen,
        monitors_.at(*chosen).source->HandleResponse(bytes, t4_local, now),
        &out);
  } else {
    Execute(*chosen,
            peers_[*chosen].source->HandleResponse(bytes, t4_local, now), now,
            &out);
  }
  return out;
}

std::vector<Transmit> Engine::SetSourceAddress(int source,
                                               const std::string& address,
                                               clock::MonoTime now,
                                               std::string why_none) {
  std::vector<Transmit> out;
  if (source < 0 || source >= static_cast<int>(peers_.size())) return out;
  Peer& peer = peers_[source];
  // Still none: only the reason may change.
  if (peer.source->address() == address && !address.empty()) return out;
  // A different server: what the filter learned about the old one's phase does
  // not apply, nor the old path's delays.
  peer.filter.ResetPhase();
  peer.filter.ForgetPath();
  peer.window.clear();
  Execute(source, peer.source->SetAddress(address, now, std::move(why_none)),
          now, &out);
  return out;
}

std::vector<Transmit> Engine::StartResync(clock::MonoTime now, bool allow_step,
                                          std::optional<StepLimit> limit) {
  std::vector<Transmit> out;
  if (limit) limit->max_step = std::max(limit->max_step, absl::ZeroDuration());
  if (!forced_pending_) {
    forced_limit_ = std::move(limit);
  } else if (limit &&
             (!forced_limit_ || limit->max_step < forced_limit_->max_step)) {
    forced_limit_ = std::move(limit);  // the tightest of those pending
  }
  forced_pending_ = true;
  forced_allow_step_ = allow_step;
  for (size_t i = 0; i < peers_.size(); ++i) {
    // A resync measures afresh: the filter's smoothed phase (which a sudden
    // jump of the clock, say 800 ms, enters only gradually, or as a spike)
    // must not stand in for what the burst now measures. The frequency it
    // learned still holds.
    peers_[i].filter.ResetPhase();
    Execute(static_cast<int>(i), peers_[i].source->StartBurst(now, 4), now,
            &out);
    // HandleTimer sends the first request of the burst now.
    Execute(static_cast<int>(i), peers_[i].source->HandleTimer(now), now, &out);
  }
  return out;
}

clock::MonoTime Engine::next_timer() const {
  clock::MonoTime next = std::min(discipline_.next_timer(), leap_timer_);
  for (const Peer& peer : peers_) next = std::min(next, peer.timer);
  for (const auto& [id, monitor] : monitors_)
    next = std::min(next, monitor.timer);
  return next;
}

void Engine::OnSample(int id, const Sample& sample, clock::MonoTime now) {
  Peer& peer = peers_[id];
  peer.last_sample = sample;
  // Into free-running coordinates: x = reference - (local - correction).
  const double x = absl::ToDoubleSeconds(sample.offset) +
                   discipline_.CorrectionAt(sample.time);
  const FilterVerdict verdict =
      peer.filter.Add(sample.time, x, absl::ToDoubleSeconds(sample.delay));
  AdjustPoll(peer, verdict, now);
  if (verdict == FilterVerdict::kSpike) return;
  if (verdict == FilterVerdict::kRestarted) peer.window.clear();
  peer.window.push_back(sample);
  if (peer.window.size() > kFilterWindow) peer.window.pop_front();
  UpdateClock(now);
}

const Sample& Engine::MinDelaySample(const Peer& peer) {
  if (peer.window.empty()) return *peer.last_sample;
  return *std::min_element(
      peer.window.begin(), peer.window.end(),
      [](const Sample& a, const Sample& b) { return a.delay < b.delay; });
}

void Engine::AdjustPoll(Peer& peer, FilterVerdict verdict,
                        clock::MonoTime now) {
  Source& source = *peer.source;
  peer.spikes_in_row =
      verdict == FilterVerdict::kSpike ? peer.spikes_in_row + 1 : 0;
  // Not during a burst (its samples come 2 s apart, not a poll interval), nor
  // before the filter has a few samples — except that a start-up correction
  // waiting for a precise estimate asks for samples faster from the second.
  if (source.bursting()) return;
  if (verdict == FilterVerdict::kRestarted) {
    // The filter's model was wrong (the source's time jumped, or the
    // frequency changed): relearn at minpoll, as after a start.
    peer.good_in_row = 0;
    source.SetPollExponent(source.config().minpoll);
    source.SetRequestsPerPoll(1);
    return;
  }
  if (peer.filter.samples() < 2) return;
  const bool waiting = corrections_ == 0 && StartupWaiting(peer, now);
  if (peer.filter.samples() < 4 && !waiting) return;
  const double nu = std::fabs(peer.filter.last_normalized_innovation());
  const int minpoll = source.config().minpoll;
  // The sampling level: log2 of the interval between samples. Below minpoll
  // the poll stays at minpoll and each poll sends 2^(minpoll - level)
  // requests.
  int level = source.poll_exponent();
  for (int n = source.requests_per_poll(); n > 1; n /= 2) --level;
  const clock::MonoTime t = peer.filter.last_update();
  const double poll_s = std::ldexp(1.0, source.poll_exponent());
  const double sigma_next =
      std::sqrt(peer.filter.OffsetVarianceAt(t + absl::Seconds(poll_s)));
  const double sigma_longer =
      std::sqrt(peer.filter.OffsetVarianceAt(t + absl::Seconds(2 * poll_s)));
  // On a long path the error bound's asymmetry term (half the delay) dwarfs
  // the target: sampling faster than it takes to bring 5σ down to that term
  // would buy nothing the bound could show.
  const double target =
      options_.poll_target_sigma > 0
          ? std::max(options_.poll_target_sigma,
                     peer.filter.min_delay() / 2 / kBoundSigmas)
          : 0;
  if (verdict == FilterVerdict::kSpike) {
    // A spike is a bad sample too (RFC 5905 §13's poll-adjust counter moves
    // down on one): it ends the run of good samples. One alone (a popcorn
    // spike) leaves the poll as it is; a second in a row lowers it: either the
    // path got noisy, or the source moved and the filter needs one more sample
    // to confirm it, better sooner than a long poll later.
    peer.good_in_row = 0;
    if (peer.spikes_in_row >= 2) level = std::max(level - 1, minpoll);
  } else if (nu > 3 && peer.filter.samples() >= 4) {
    peer.good_in_row = 0;
    level = std::max(level - 1, minpoll);
  } else if (target > 0 && sigma_next > target) {
    // Samples agree with the model, but there are too few to average the
    // path's noise down to the target: sample more often, below minpoll by
    // sending several requests per poll.
    peer.good_in_row = 0;
    --level;
  } else if (peer.filter.samples() < 4) {
    return;
  } else if (nu < 1.5 && ++peer.good_in_row >= options_.poll_up_after) {
    peer.good_in_row = 0;
    if (target <= 0 || sigma_longer <= target) ++level;
  }
  level = std::max(level, minpoll - kMaxRequestsPerPollLog2);
  source.SetPollExponent(std::max(level, minpoll));
  source.SetRequestsPerPoll(1 << std::max(0, minpoll - level));
}

bool Engine::StartupWaiting(const Peer& peer, clock::MonoTime now) const {
  // The start-up correction steps anything above the start-up threshold
  // (1 ms): made from an estimate whose own 5σ exceeds that, it would likely
  // leave the clock beyond it, with a frequency as poor, to be corrected again.
  // On a noisy path it waits for more samples (poll control asks for them
  // faster), up to kMaxStartupSamples. On a path whose delay exceeds the
  // threshold the asymmetry alone may hide ±delay/2, so 5σ within the delay
  // is enough.
  const double limit = std::max(
      absl::ToDoubleSeconds(options_.discipline.startup_step_threshold),
      peer.filter.min_delay());
  return corrections_ == 0 && peer.filter.samples() < kMaxStartupSamples &&
         kBoundSigmas * std::sqrt(peer.filter.OffsetVarianceAt(now)) > limit;
}

double Engine::HoldoverUncertainty(clock::MonoTime now) const {
  return kBoundSigmas * std::sqrt(held_->filter.OffsetVarianceAt(now)) +
         held_->filter.PendingDisagreement(now);
}

double Engine::BoundAtUpdate(const Peer& peer) const {
  const Sample& s = *peer.last_sample;
  // Path asymmetry: the estimate rests on the lowest-delay exchanges, whose
  // offset is wrong by at most half their delay if the path is asymmetric (RFC
  // 5905 §8: the true offset lies within ±δ/2 of θ); the upstream's own error
  // bound is its root delay / 2 + root dispersion; ε is the reading error.
  return (absl::ToDoubleSeconds(s.root_delay) + peer.filter.min_delay()) / 2 +
         absl::ToDoubleSeconds(s.root_dispersion + s.dispersion) +
         selection_spread_;
}

absl::Duration Engine::RootDistance(const Peer& peer,
                                    clock::MonoTime now) const {
  if (!peer.last_sample) return absl::InfiniteDuration();
  const Sample& s = *peer.last_sample;
  // RFC 5905 §11.2 λ, with the filter's own uncertainty in place of the sample
  // dispersion.
  const double age =
      std::max(0.0, absl::ToDoubleSeconds(now - peer.filter.last_update()));
  return (s.root_delay + s.delay) / 2 + s.root_dispersion + s.dispersion +
         absl::Seconds(std::sqrt(peer.filter.OffsetVarianceAt(now)) +
                       peer.filter.jitter() + kPhi * age);
}

void Engine::UpdateClock(clock::MonoTime now) {
  std::vector<Candidate> candidates;
  std::vector<int> ids;
  for (size_t i = 0; i < peers_.size(); ++i) {
    Peer& peer = peers_[i];
    peer.mark.reset();
    const Source& source = *peer.source;
    if (source.health() != SourceHealth::kOk || source.reach() == 0 ||
        peer.filter.samples() == 0) {
      continue;
    }
    Candidate c;
    c.id = static_cast<int>(i);
    c.offset = absl::Seconds(peer.filter.OffsetAt(now) -
                             discipline_.CorrectionAt(now));
    c.root_distance = RootDistance(peer, now);
    c.jitter = absl::Seconds(peer.filter.jitter());
    c.frequency_ppm = -peer.filter.frequency() * 1e6;
    c.stratum = peer.last_sample->stratum;
    c.prefer = source.config().prefer;
    candidates.push_back(c);
    ids.push_back(static_cast<int>(i));
  }
  const SelectionResult result = SelectSources(candidates, options_.selection);
  for (size_t k = 0; k < result.marks.size(); ++k)
    peers_[ids[k]].mark = result.marks[k];
  if (!result.ok) {
    system_peer_.reset();
    return;
  }
  system_peer_ = ids[result.system_peer];
  const Peer& sp = peers_[*system_peer_];

  const double e = absl::ToDoubleSeconds(result.offset);
  const double f = -result.frequency_ppm * 1e-6;
  UpdateMode mode = UpdateMode::kNormal;
  bool allow_step = false;
  std::optional<double> max_step;
  if (forced_pending_) {
    mode = UpdateMode::kForced;
    allow_step = forced_allow_step_;
    if (forced_limit_)
      max_step = absl::ToDoubleSeconds(forced_limit_->max_step);
  } else if (corrections_ == 0) {
    // Start-up: wait for a second sample so the frequency is known too. Only a
    // clock so far off that any correction is better than none is stepped at
    // the first sample, and then only once every source that can answer has
    // answered: a falseticker that happens to answer first must not set the
    // clock.
    if (sp.filter.samples() < 2) {
      const bool far_off =
          std::fabs(e) >
          absl::ToDoubleSeconds(options_.discipline.step_threshold);
      bool all_heard = true;
      for (const Peer& peer : peers_) {
        const SourceHealth h = peer.source->health();
        if (h != SourceHealth::kUnresolved && h != SourceHealth::kDenied &&
            h != SourceHealth::kUnreachable && peer.filter.samples() == 0) {
          all_heard = false;
        }
      }
      if (!far_off || !all_heard) return;
    } else if (StartupWaiting(sp, now)) {
      return;
    }
    mode = UpdateMode::kStartup;
  }
  // The interval between the system peer's samples: its poll, divided by the
  // requests per poll on a noisy path.
  const absl::Duration interval =
      absl::Seconds(std::ldexp(1.0, sp.source->poll_exponent()) /
                    sp.source->requests_per_poll());
  // A forced resync corrects as fast as the 500 ppm limit allows (the
  // discipline stretches the slew as needed); otherwise the correction is
  // spread over kSlewIntervals sample intervals — slow slews keep the clock's
  // rate error low while the corrections are noise-sized. An offset far
  // beyond the estimate's own uncertainty is no noise (the clock was moved,
  // or the source changed): the slew is shortened by √(10σ/|e|), so 5 ms
  // against σ = 30 µs is corrected in about one interval instead of ~6
  // (chrony's corrtimeratio shortens large corrections the same way).
  const double sigma = std::sqrt(sp.filter.OffsetVarianceAt(now));
  const double shorten =
      std::fabs(e) > 10 * sigma ? std::sqrt(10 * sigma / std::fabs(e)) : 1.0;
  const absl::Duration slew_time =
      mode == UpdateMode::kForced
          ? absl::Milliseconds(1)
          : std::clamp(interval * (kSlewIntervals * shorten), absl::Seconds(1),
                       absl::Seconds(1024));
  Correction correction =
      discipline_.Update(now, e + discipline_.CorrectionAt(now), f, mode,
                         slew_time, allow_step, max_step);
  if (correction.kind == CorrectionKind::kRefused) {
    // The resync is over (failed); the clock is left to the normal discipline.
    correction.message = absl::StrFormat(
        "offset %s is beyond %s (%s): %s", FormatOffset(correction.offset),
        forced_limit_->name, FormatLimit(forced_limit_->max_step),
        forced_limit_->fix);
    forced_pending_ = false;
    forced_limit_.reset();
    last_correction_ = correction;
    ++attempts_;
    return;
  }
  last_correction_ = correction;
  ++attempts_;
  if (correction.kind == CorrectionKind::kPanic) {
    // The clock is known to be wrong by more than the panic threshold: until a
    // correction succeeds, Status() says unsynchronised and the server serves
    // leap 3 / stratum 16; the kernel is told too (STA_UNSYNC, which also
    // stops it copying the wrong time to the RTC).
    panic_offset_ = correction.offset;
    if (clock_->SetSyncState(clock::SyncState{}).ok()) {
      kernel_leap_ = clock::LeapAction::kNone;  // that cleared STA_INS/DEL too
    }
    return;
  }
  if (correction.kind == CorrectionKind::kError) return;
  panic_offset_.reset();
  forced_pending_ = false;
  forced_limit_.reset();
  ++corrections_;
  if (correction.kind == CorrectionKind::kStep) VoidExchanges();
  last_update_ = now;
  reference_time_ = clock_->Now();
  last_offset_ = e;
  combined_jitter_ = absl::ToDoubleSeconds(result.jitter);
  // How far the combined offset may stray from the system peer's estimate: the
  // selection jitter alone (the system jitter less the peer's own).
  const double peer_jitter = sp.filter.jitter();
  selection_spread_ = std::sqrt(std::max(
      0.0, combined_jitter_ * combined_jitter_ - peer_jitter * peer_jitter));
  VoteLeap(now);

  const EngineStatus status = Status(now);
  held_ = Held{status.stratum, status.reference_id, status.root_delay,
               // The upstream's part only: holdover adds its own uncertainty
               // and offset terms.
               sp.last_sample->root_dispersion + sp.last_sample->dispersion +
                   absl::Seconds(selection_spread_),
               sp.filter, BoundAtUpdate(sp), status.poll};
  clock::SyncState sync;
  sync.synchronized = true;
  sync.estimated_error = status.error_bound;
  sync.max_error = status.root_delay / 2 + status.root_dispersion;
  // The kernel applies STA_INS/STA_DEL at the end of the current UTC day, so
  // it hears of the leap only on the month's last day, and only in
  // leapsecmode system.
  const absl::Time wall = clock_->Now();
  const Leap leap = ValidatedLeap(wall);
  sync.leap = options_.leap_mode != LeapMode::kSystem || leap == Leap::kNone ||
                      wall < leap_->at - absl::Hours(24)
                  ? clock::LeapAction::kNone
              : leap == Leap::kInsertSecond ? clock::LeapAction::kInsert
                                            : clock::LeapAction::kDelete;
  if (clock_->SetSyncState(sync).ok()) kernel_leap_ = sync.leap;
}

void Engine::VoteLeap(clock::MonoTime now) {
  LeapVotes votes;
  for (const Peer& peer : peers_) {
    if (!peer.mark || *peer.mark == SelectionMark::kFalseticker ||
        !peer.last_sample) {
      continue;
    }
    ++votes.voters;
    if (peer.last_sample->leap == Leap::kInsertSecond) ++votes.insert;
    if (peer.last_sample->leap == Leap::kDeleteSecond) ++votes.remove;
  }
  const absl::Time wall = clock_->Now();
  const Leap leap = DecideLeap(
      votes, wall, options_.leap_table ? &*options_.leap_table : nullptr);
  const absl::Time at = EndOfUtcMonth(wall);
  if (leap == Leap::kNone || (leap_done_ && *leap_done_ == at)) {
    leap_.reset();
    leap_timer_ = clock::MonoTime::Infinite();
    return;
  }
  leap_ = PendingLeap{leap, at};
  // A little early (0.1 % of the way, at least 2 s: the clock's rate against
  // the monotonic one is off by up to 500 ppm), so that CrossLeap reads the
  // clock once before the leap and can see the kernel's inserted second.
  const absl::Duration until = at - wall;
  leap_timer_ =
      now + std::max(absl::ZeroDuration(),
                     until - std::max(absl::Seconds(2), until / 1000));
}

Leap Engine::ValidatedLeap(absl::Time wall) const {
  // Never past its month end (in holdover too), and never twice: after the
  // kernel inserts the second the clock reads 23:59:59 again.
  if (!leap_ || wall >= leap_->at || (leap_done_ && *leap_done_ == leap_->at)) {
    return Leap::kNone;
  }
  return leap_->kind;
}

void Engine::CrossLeap(clock::MonoTime now) {
  if (!leap_ || now < leap_timer_) return;
  const absl::Time wall = clock_->Now();
  const absl::Duration left = leap_->at - wall;
  // The kernel inserts the second at the leap: the clock then reads up to 1 s
  // before it again — it went back by a second against the monotonic clock
  // since the last look. Otherwise a clock still short of the leap is waited
  // for (looking again when it should be there).
  const bool kernel_inserted =
      kernel_leap_ == clock::LeapAction::kInsert && leap_check_ &&
      wall < leap_check_->wall + (now - leap_check_->mono) -
                 absl::Milliseconds(500);
  if (left > absl::ZeroDuration() && !kernel_inserted) {
    leap_check_ = LeapCheck{now, wall};
    leap_timer_ = now + left + absl::Microseconds(1);
    return;
  }
  leap_check_.reset();
  leap_done_ = leap_->at;
  leap_timer_ = clock::MonoTime::Infinite();
  // An exchange in flight may have its timestamps on both sides of the leap.
  VoidExchanges();
  const clock::LeapAction action = leap_->kind == Leap::kInsertSecond
                                       ? clock::LeapAction::kInsert
                                       : clock::LeapAction::kDelete;
  if (kernel_leap_ != action) {
    // The clock ran through the leap (leapsecmode slew, or no update on the
    // last day told the kernel): UTC jumped by -1 s (inserted) or +1 s
    // (deleted) against it.
    discipline_.LeapSecond(now,
                           action == clock::LeapAction::kInsert ? -1.0 : 1.0);
  }
}

void ApplyStatus(const EngineStatus& st, absl::Time local_now,
                 SystemVariables* out) {
  out->leap = st.leap;
  out->stratum = st.stratum;
  out->reference_id = st.reference_id;
  out->root_delay = st.root_delay;
  out->root_dispersion = st.root_dispersion;
  out->reference_time = st.reference_time
                            ? NtpTimestamp::FromTime(*st.reference_time)
                            : NtpTimestamp();
  // Serving its own clock, a node's reference time is now.
  if (st.state == SyncState::kLocalClock) {
    out->reference_time = NtpTimestamp::FromTime(local_now);
  }
}

EngineStatus Engine::Status(clock::MonoTime now) const {
  EngineStatus st;
  st.frequency_ppm = -discipline_.base_frequency_ppm();
  st.steps = discipline_.steps();
  st.reference_time = reference_time_;
  st.last_offset = absl::Seconds(last_offset_);
  st.local_clock_stratum = options_.local_clock_stratum;
  for (size_t i = 0; i < peers_.size(); ++i) {
    const Peer& peer = peers_[i];
    const Source& source = *peer.source;
    PeerStatus p;
    p.id = static_cast<int>(i);
    p.name = source.config().name;
    p.address = source.address();
    p.health = source.health();
    p.reason = source.reason();
    p.stratum = source.stratum();
    p.reference_id = source.reference_id();
    p.prefer = source.config().prefer;
    p.reach = source.reach();
    p.poll = source.poll_exponent();
    if (source.has_response())
      p.since_last_response = now - source.last_response();
    if (peer.last_sample) {
      p.offset = absl::Seconds(peer.filter.OffsetAt(now) -
                               discipline_.CorrectionAt(now));
      p.delay = MinDelaySample(peer).delay;
      p.root_distance = RootDistance(peer, now);
    }
    p.jitter = absl::Seconds(peer.filter.jitter());
    p.mark = peer.mark;
    if (p.reason.empty() && p.mark == SelectionMark::kFalseticker) {
      p.reason = "falseticker: disagrees with the majority of the servers";
    }
    p.counters = source.counters();
    st.peers.push_back(std::move(p));
  }

  const bool peer_usable =
      system_peer_ && peers_[*system_peer_].source->reach() != 0 &&
      peers_[*system_peer_].source->health() == SourceHealth::kOk;
  if (peer_usable && corrections_ == 0) {
    // A system peer is chosen and the first correction is on its way: the
    // offset is known, the clock not yet set.
    const Peer& sp = peers_[*system_peer_];
    st.system_peer = *system_peer_;
    st.state = SyncState::kSyncing;
    // Unknown until the clock has been set: error_bound stays infinite.
    st.offset =
        absl::Seconds(sp.filter.OffsetAt(now) - discipline_.CorrectionAt(now));
    st.last_offset = st.offset;
    st.stratum = 16;
    st.reference_id = RefId::FromCode("INIT");
    st.leap = Leap::kUnsynchronized;
  } else if (peer_usable && corrections_ > 0) {
    const Peer& sp = peers_[*system_peer_];
    const Sample& s = *sp.last_sample;
    st.system_peer = *system_peer_;
    st.state = std::fabs(last_offset_) < kSyncedOffset
                   ? SyncState::kSynchronized
                   : SyncState::kSyncing;
    st.stratum = std::min(s.stratum + 1, 16);
    // RFC 5905 §7.3: the refid of a secondary server is its upstream's IPv4
    // address. We know the upstream as "ip:port"; an IPv6 or unparsable address
    // falls back to the upstream's refid.
    st.reference_id = s.reference_id;
    int a, b, c, d;
    if (std::sscanf(sp.source->address().c_str(), "%d.%d.%d.%d", &a, &b, &c,
                    &d) == 4) {
      st.reference_id = RefId::FromIpv4(a, b, c, d);
    }
    st.leap = ValidatedLeap(clock_->Now());
    // The root delay of the sample the filter relies on most, the minimum-delay
    // one (RFC 5905 §10), not of whichever came last.
    const Sample& best = MinDelaySample(sp);
    st.delay = best.delay;
    st.jitter = absl::Seconds(combined_jitter_);
    st.offset =
        absl::Seconds(sp.filter.OffsetAt(now) - discipline_.CorrectionAt(now));
    st.root_delay = best.root_delay + best.delay;
    // The filter's own uncertainty now: it grows with the time since the last
    // sample at the measured frequency uncertainty and wander.
    // Plus, while its latest samples are being rejected as spikes, how far
    // they say the estimate is already off (SourceFilter::
    // PendingDisagreement): a frequency step looks like that until the filter
    // restarts (tests/sim `frequency-step`).
    const double uncertainty =
        kBoundSigmas * std::sqrt(sp.filter.OffsetVarianceAt(now)) +
        sp.filter.PendingDisagreement(now);
    // What the node serves is its clock, so the part of the offset not yet
    // slewed out is an error of the served time too, which a downstream
    // node's bound must cover.
    st.root_dispersion = s.root_dispersion + s.dispersion +
                         absl::Seconds(uncertainty + selection_spread_) +
                         absl::AbsDuration(st.offset);
    st.poll = sp.source->poll_exponent();
    st.error_bound = absl::AbsDuration(st.offset) +
                     absl::Seconds(BoundAtUpdate(sp) + uncertainty);
  } else if (held_ && corrections_ > 0 &&
             absl::ToDoubleSeconds(held_->root_delay / 2 +
                                   held_->root_dispersion) +
                     HoldoverUncertainty(now) <
                 kMaxHoldoverDistance) {
    // Holdover: the clock keeps the learned frequency; we keep serving what we
    // last knew, with a dispersion that grows with time, so that clients weigh
    // us down gradually (as ntpd does). The estimate of the last system peer's
    // filter still says where the clock stands, and how uncertain that is: its
    // variance grows with the frequency uncertainty and the wander it measured.
    st.state = SyncState::kHoldover;
    st.stratum = held_->stratum;
    st.reference_id = held_->reference_id;
    st.leap = ValidatedLeap(clock_->Now());
    st.root_delay = held_->root_delay;
    const double uncertainty = HoldoverUncertainty(now);
    st.poll = held_->poll;
    st.offset = absl::Seconds(held_->filter.OffsetAt(now) -
                              discipline_.CorrectionAt(now));
    st.root_dispersion = held_->root_dispersion + absl::Seconds(uncertainty) +
                         absl::AbsDuration(st.offset);
    st.error_bound = absl::AbsDuration(st.offset) +
                     absl::Seconds(held_->bound_at_update + uncertainty);
  } else if (options_.local_clock_stratum) {
    st.state = SyncState::kLocalClock;
    st.stratum = *options_.local_clock_stratum;
    // ntpd's local clock driver is 127.127.1.0; as a stratum >= 2 refid that
    // address is what ntpd and chrony (127.127.1.1) send, and what ntpq users
    // recognise.
    st.reference_id = RefId::FromIpv4(127, 127, 1, 0);
    // A leap the sources announced is still due (the kernel may be armed):
    // clients are told, as in holdover.
    st.leap = ValidatedLeap(clock_->Now());
    // The node is its own reference: relative to the fleet's time (this
    // clock) the bound is 0; relative to UTC it is unknown.
    st.error_bound = absl::ZeroDuration();
    st.error_bound_reference = ErrorBoundReference::kLocalClock;
  } else {
    st.state = SyncState::kUnsynchronized;
    st.reference_id = RefId::FromCode(corrections_ > 0 ? "HOLD" : "INIT");
  }
  if (!st.system_peer) {
    // Every source refused us: no answer will come by waiting (a refused source
    // is not asked again), so say who refused rather than just
    // "unsynchronised". Holdover and the local clock keep their state, with the
    // reason.
    st.reason = RefusedReason(st.peers);
    if (!st.reason.empty() && st.state == SyncState::kUnsynchronized) {
      st.state = SyncState::kRefused;
    }
  }
  if (panic_offset_) {
    // The last correction was refused as beyond the panic threshold: the clock
    // is known to be wrong, whatever the sources, the holdover or the local
    // clock would say. Serve the alarm condition (leap 3, stratum 16, RFC 5905
    // §7.3) until corrected, so that no client synchronises to it; refid STEP
    // (§7.4: the time stepped and we have not resynchronised).
    st.state = SyncState::kUnsynchronized;
    st.stratum = 16;
    st.reference_id = RefId::FromCode("STEP");
    st.offset = absl::Seconds(*panic_offset_);
    st.last_offset = st.offset;
    st.reason = absl::StrFormat(
        "clock is %s off, beyond the panic threshold (%s): not correcting; "
        "set the clock by hand, or force it with `ntpfleetctl sync --step` "
        "on this node (`ntpfleetctl resync NODE --step --force` from the "
        "controller)",
        FormatOffset(*panic_offset_),
        FormatLimit(options_.discipline.panic_threshold));
    st.error_bound = absl::InfiniteDuration();
  }
  // A leap second the kernel was not told of (leapsecmode slew) that the clock
  // has reached but CrossLeap has not handled yet (its monotonic timer can fire
  // a few µs after the clock's own month end): UTC is already a second away.
  if (leap_ && !(leap_done_ && *leap_done_ == leap_->at) &&
      kernel_leap_ == clock::LeapAction::kNone && clock_->Now() >= leap_->at) {
    st.error_bound += absl::Seconds(1);
  }
  // Stratum 16 means unsynchronised (RFC 5905 §7.3): it always comes with the
  // alarm (leap 3), whatever the upstream's leap bit.
  if (st.stratum >= 16) {
    st.stratum = 16;
    st.leap = Leap::kUnsynchronized;
  }
  return st;
}

}  // namespace ntpfleet::ntp
