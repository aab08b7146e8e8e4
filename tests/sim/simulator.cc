#include "tests/sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "agent/ntp/access.h"
#include "agent/ntp/server.h"
#include "common/ntp/packet.h"
#include "common/ntp/timestamp.h"

namespace ntpfleet::sim {
namespace {

// How long a server takes from receiving a request to sending the reply.
constexpr absl::Duration kProcessing = absl::Microseconds(5);

}  // namespace

struct Simulation::Server {
  Server(const ServerParams& p, ntp::AccessList access,
         const ntp::RateLimitOptions& rate)
      : params(p), responder(std::move(access), rate, /*keys=*/nullptr) {}
  ServerParams params;
  ntp::Responder responder;
};

struct Simulation::Client {
  Client(const clock::MonotonicClock* mono, absl::Time epoch,
         const ClientParams& p, const ntp::IpAddress& address)
      : params(p),
        ip(address),
        clock(mono, epoch, p.clock),
        engine(&clock, p.engine, mono->Now()) {
    if (p.serve) {
      responder = std::make_unique<ntp::Responder>(
          ntp::AccessList(), ntp::RateLimitOptions(), /*keys=*/nullptr);
    }
  }
  ClientParams params;
  ntp::IpAddress ip;  // where its requests come from
  clock::SimClock clock;
  ntp::Engine engine;
  std::unique_ptr<ntp::Responder> responder;  // when it serves
  Trace trace;
  clock::MonoTime timer_at = clock::MonoTime::Infinite();
  uint64_t timer_generation = 0;
  std::vector<bool> source_is_liar;
};

Simulation::Simulation(uint64_t seed)
    : rng_(seed),
      true_epoch_(absl::FromUnixSeconds(1795000000)) {}  // late 2026

Simulation::~Simulation() = default;

void Simulation::SetStart(absl::Time utc) { true_epoch_ = utc; }

void Simulation::InsertLeapSecond(absl::Time midnight) {
  leap_midnight_ = midnight;
}

absl::Duration Simulation::OffsetToUtc(const clock::SimClock& clock) const {
  // Compared on a scale without leap seconds: true time is physical; a clock
  // reading r counts one second more once r is past the leap (its 00:00:00 is
  // the physical midnight + 1 s), and during its inserted second, which it
  // reads as 23:59:59 again but the kernel flags as 23:59:60, also one more.
  // So a clock that inserts the second a few µs after true UTC is a few µs
  // off, and one that does not insert it (leapsecmode slew) is a second off
  // until it has slewed.
  const absl::Time physical = true_epoch_ + now_.Now().since_origin();
  const absl::Time reading = clock.Now();
  absl::Time continuous = reading;
  if (leap_midnight_ &&
      (reading >= *leap_midnight_ || clock.InInsertedSecond()))
    continuous += absl::Seconds(1);
  return physical - continuous;
}

absl::Time Simulation::utc() const {
  // The simulation's time is physical (the seconds a clock's oscillator
  // counts); UTC repeats the second before the leap's midnight, as Linux shows
  // an inserted second (23:59:59 twice), and is one second behind after it.
  const absl::Time physical = true_epoch_ + now_.Now().since_origin();
  if (leap_midnight_ && physical >= *leap_midnight_) {
    return physical - absl::Seconds(1);
  }
  return physical;
}

void Simulation::AddServer(const ServerParams& params) {
  ntp::AccessList access;
  ntp::RateLimitOptions rate;
  if (params.kiss_rate) {
    // `restrict default limited kod` with `discard average 0` (a KoD at most
    // once a second) and no burst allowance: every request is over the limit.
    access.Add({ntp::IpAddress::V4(0, 0, 0, 0), 0, ntp::kLimited | ntp::kKod});
    rate.average = 0;
    rate.burst = 0;
  }
  servers_.push_back(std::make_unique<Server>(params, std::move(access), rate));
}

int Simulation::AddClient(const ClientParams& params) {
  const int c = static_cast<int>(clients_.size());
  ClientParams p = params;
  if (last_sample_baseline_) p.engine.filter.last_sample_only = true;
  auto client = std::make_unique<Client>(
      &now_, true_epoch_, p,
      ntp::IpAddress::V4(10, 1, static_cast<uint8_t>(c >> 8),
                         static_cast<uint8_t>(c & 0xff)));
  std::vector<std::string> sources = p.sources;
  if (sources.empty()) {
    for (const auto& server : servers_)
      sources.push_back(server->params.address);
  }
  for (const std::string& address : sources) {
    ntp::SourceConfig source;
    source.name = address;
    source.address = address;
    source.minpoll = p.minpoll;
    source.maxpoll = p.maxpoll;
    source.iburst = p.iburst;
    client->engine.AddSource(source);
    const Endpoint to = Find(address);
    client->source_is_liar.push_back(to.server >= 0 &&
                                     servers_[to.server]->params.offset !=
                                         absl::ZeroDuration());
    if (to.server >= 0 && servers_[to.server]->params.kiss_rate) {
      // The client's allowance was spent before the start (a previous run of
      // it): the limiter has just seen a request from it. A fresh client's
      // first request is always answered (access.h), which would give it time.
      ntp::NtpPacket request;
      request.mode = ntp::Mode::kClient;
      absl::StatusOr<std::vector<uint8_t>> bytes = ntp::EncodePacket(request);
      std::vector<uint8_t> reply(128);
      if (bytes.ok()) {
        servers_[to.server]->responder.Prepare(
            *bytes, client->ip, ntp::NtpTimestamp(), {}, now_.Now(),
            absl::MakeSpan(reply));
      }
    }
  }
  clients_.push_back(std::move(client));
  return c;
}

void Simulation::StepFrequency(int client, absl::Duration at, double ppm) {
  Schedule(clock::MonoTime::FromDuration(at), [this, client, ppm] {
    clients_[client]->clock.ShiftNaturalFrequency(ppm);
  });
}

void Simulation::Schedule(clock::MonoTime at, std::function<void()> run) {
  events_.push(Event{at, seq_++, std::move(run)});
}

absl::Duration Simulation::Delay(const PathParams& path) {
  std::exponential_distribution<double> exp(1.0);
  const absl::Duration extra =
      path.extra ? path.extra(now_.Now().since_origin()) : absl::ZeroDuration();
  return path.base + extra + path.jitter * exp(rng_);
}

Simulation::Endpoint Simulation::Find(const std::string& address) const {
  Endpoint to;
  for (size_t i = 0; i < servers_.size(); ++i) {
    if (servers_[i]->params.address == address) to.server = static_cast<int>(i);
  }
  for (size_t i = 0; i < clients_.size(); ++i) {
    if (clients_[i]->params.serve &&
        clients_[i]->params.serve->address == address)
      to.client = static_cast<int>(i);
  }
  return to;
}

bool Simulation::Reachable(const ServerParams& server,
                           clock::MonoTime at) const {
  const absl::Duration t = at.since_origin();
  if (server.silent_after && t >= *server.silent_after) return false;
  if (server.outage_period > absl::ZeroDuration() && t >= server.outage_start) {
    const absl::Duration into =
        (t - server.outage_start) % server.outage_period;
    if (into < server.outage_length) return false;
  }
  return true;
}

bool Simulation::Reachable(const Endpoint& to, clock::MonoTime at) const {
  return to.server < 0 || Reachable(servers_[to.server]->params, at);
}

const PathParams& Simulation::PathTo(const Endpoint& to) const {
  return to.server >= 0 ? servers_[to.server]->params.to_server
                        : clients_[to.client]->params.serve->to_server;
}

const PathParams& Simulation::PathFrom(const Endpoint& to) const {
  return to.server >= 0 ? servers_[to.server]->params.to_client
                        : clients_[to.client]->params.serve->to_client;
}

const std::string& Simulation::AddressOf(const Endpoint& to) const {
  return to.server >= 0 ? servers_[to.server]->params.address
                        : clients_[to.client]->params.serve->address;
}

void Simulation::ArmClientTimer(int c) {
  Client& client = *clients_[c];
  const clock::MonoTime at = client.engine.next_timer();
  if (at == client.timer_at) return;
  client.timer_at = at;
  const uint64_t generation = ++client.timer_generation;
  if (at == clock::MonoTime::Infinite()) return;
  Schedule(std::max(at, now_.Now()), [this, c, generation] {
    Client& cl = *clients_[c];
    if (cl.timer_generation != generation) return;  // superseded
    cl.timer_at = clock::MonoTime::Infinite();
    Execute(c, cl.engine.HandleTimer(now_.Now()));
  });
}

void Simulation::Execute(int c, std::vector<ntp::Transmit> transmits) {
  Client& client = *clients_[c];
  for (ntp::Transmit& t : transmits) {
    // The transmit timestamp is read just before the packet leaves.
    client.engine.OnTransmit(t.source, client.clock.Now(), now_.Now());
    const Endpoint to = Find(t.address);
    if (to.server < 0 && to.client < 0) continue;
    const PathParams& path = PathTo(to);
    std::uniform_real_distribution<double> u(0, 1);
    if (u(rng_) < path.loss) continue;
    const clock::MonoTime arrive = now_.Now() + Delay(path);
    Schedule(arrive, [this, to, c, bytes = std::move(t.bytes)]() mutable {
      DeliverToServer(to, c, std::move(bytes));
    });
  }
  ArmClientTimer(c);
}

void Simulation::DeliverToServer(Endpoint to, int c,
                                 std::vector<uint8_t> request) {
  if (!Reachable(to, now_.Now())) return;
  // The server's clock at reception, and what it says about itself.
  absl::Time t2;
  ntp::SystemVariables system;
  ntp::Responder* responder;
  if (to.server >= 0) {
    Server& server = *servers_[to.server];
    const absl::Time utc_now = utc();
    t2 = utc_now + server.params.offset;
    // RFC 5905 §7.3: the leap indicator warns of a leap second at the end of
    // the current day (announced all that day).
    system.leap = leap_midnight_ && utc_now < *leap_midnight_ &&
                          utc_now >= *leap_midnight_ - absl::Hours(24)
                      ? ntp::Leap::kInsertSecond
                      : ntp::Leap::kNone;
    system.stratum = server.params.stratum;
    system.reference_id = ntp::RefId::FromCode(server.params.refid);
    system.root_delay = absl::ZeroDuration();
    system.root_dispersion = absl::Microseconds(10);
    system.reference_time = ntp::NtpTimestamp::FromTime(t2 - absl::Seconds(8));
    responder = &server.responder;
  } else {
    Client& node = *clients_[to.client];
    t2 = node.clock.Now();
    ntp::ApplyStatus(node.engine.Status(now_.Now()), t2, &system);
    responder = node.responder.get();
  }
  // Room for the reply: at least a header and a MAC, and the request's length.
  std::vector<uint8_t> reply(std::max<size_t>(request.size(), 128));
  const ntp::Responder::Prepared prepared = responder->Prepare(
      request, clients_[c]->ip, ntp::NtpTimestamp::FromTime(t2), system,
      now_.Now(), absl::MakeSpan(reply));
  if (prepared.length == 0) return;
  // The server's clock advances by kProcessing at its own rate; the error of
  // taking it as exact is at most 500 ppm x 5 µs = 2.5 ns.
  reply.resize(responder->Finish(prepared,
                                 ntp::NtpTimestamp::FromTime(t2 + kProcessing),
                                 absl::MakeSpan(reply)));
  const PathParams& path = PathFrom(to);
  std::uniform_real_distribution<double> u(0, 1);
  if (u(rng_) < path.loss) return;
  const clock::MonoTime arrive = now_.Now() + kProcessing + Delay(path);
  Schedule(arrive, [this, to, c, b = std::move(reply)] {
    if (!Reachable(to, now_.Now())) return;
    Client& client = *clients_[c];
    const absl::Time t4 = client.clock.Now();
    Execute(c, client.engine.HandleResponse(AddressOf(to), b, t4, now_.Now()));
  });
}

void Simulation::Record() {
  const clock::MonoTime now = now_.Now();
  bool outage = false;
  for (const auto& server : servers_) {
    const ServerParams& sp = server->params;
    if (sp.outage_period > absl::ZeroDuration() && !Reachable(sp, now))
      outage = true;
  }
  for (auto& client : clients_) {
    Trace& tr = client->trace;
    tr.time.push_back(absl::ToDoubleSeconds(now.since_origin()));
    // Reference minus local = true UTC minus the clock (OffsetToUtc).
    tr.offset.push_back(absl::ToDoubleSeconds(OffsetToUtc(client->clock)));
    tr.frequency.push_back(client->clock.RateErrorPpm());
    tr.in_outage.push_back(outage);
    const ntp::EngineStatus st = client->engine.Status(now);
    tr.liar_selected.push_back(st.system_peer &&
                               client->source_is_liar[*st.system_peer]);
    tr.error_bound.push_back(absl::ToDoubleSeconds(st.error_bound));
  }
}

void Simulation::Run(absl::Duration duration) {
  const clock::MonoTime start = now_.Now();
  for (auto& client : clients_) {
    if (leap_midnight_) {
      client->trace.leap_s = absl::ToDoubleSeconds(
          *leap_midnight_ - (true_epoch_ + start.since_origin()));
    }
  }
  for (size_t c = 0; c < clients_.size(); ++c) {
    Execute(static_cast<int>(c), clients_[c]->engine.Start(start));
  }
  for (absl::Duration t = absl::ZeroDuration(); t <= duration;
       t += absl::Seconds(1)) {
    Schedule(start + t, [this] { Record(); });
  }
  const clock::MonoTime end = start + duration;
  while (!events_.empty() && events_.top().at <= end) {
    Event event = events_.top();
    events_.pop();
    now_.Set(event.at);
    event.run();
  }
  now_.Set(end);
}

const Trace& Simulation::trace(int client) const {
  return clients_[client]->trace;
}
const ntp::Engine& Simulation::engine(int client) const {
  return clients_[client]->engine;
}
const clock::SimClock& Simulation::clock(int client) const {
  return clients_[client]->clock;
}

Metrics Simulation::metrics(int client) const {
  uint64_t requests = 0;
  const ntp::EngineStatus st = clients_[client]->engine.Status(now_.Now());
  for (const ntp::PeerStatus& p : st.peers) requests += p.counters.requests;
  return ComputeMetrics(trace(client), requests,
                        clients_[client]->clock.steps());
}

Metrics ComputeMetrics(const Trace& trace, uint64_t requests, int steps) {
  Metrics m;
  m.requests = requests;
  m.steps = steps;
  const size_t n = trace.time.size();
  const auto within = [&trace](size_t i) {
    return std::fabs(trace.offset[i]) <= 1e-3 &&
           std::fabs(trace.frequency[i]) <= 500;
  };
  size_t first = 0;  // the first record from which every later one is within
  for (size_t i = 0; i < n; ++i) {
    if (!within(i)) first = i + 1;
  }
  m.converged = first < n;
  m.convergence_s = first == 0  ? 0
                    : first < n ? trace.time[first]
                                : trace.time.back();
  // The statistics start where the run settled, whatever comes later: they
  // cannot be made good by where they start.
  size_t settled = n;
  int in_row = 0;
  for (size_t i = 0; i < n && settled == n; ++i) {
    in_row = within(i) ? in_row + 1 : 0;
    if (in_row == kSettleSeconds) settled = i + 1 - kSettleSeconds;
  }
  m.settled = settled < n;
  m.settled_s = settled < n ? trace.time[settled] : n ? trace.time.back() : 0;
  double sum_off = 0, sum_freq = 0;
  for (size_t i = settled; i < n; ++i) {
    m.max_abs_offset_s =
        std::max(m.max_abs_offset_s, std::fabs(trace.offset[i]));
    sum_off += trace.offset[i] * trace.offset[i];
    sum_freq += trace.frequency[i] * trace.frequency[i];
    if (trace.in_outage[i]) {
      m.max_abs_offset_in_outage_s =
          std::max(m.max_abs_offset_in_outage_s, std::fabs(trace.offset[i]));
    }
    if (trace.liar_selected[i]) m.liar_ever_selected = true;
  }
  // The error bound's claim, checked at every second from settling on.
  if (trace.error_bound.size() == n && n > settled) {
    size_t covered = 0;
    std::vector<double> finite;
    for (size_t i = settled; i < n; ++i) {
      if (std::fabs(trace.offset[i]) <= trace.error_bound[i]) ++covered;
      if (std::isfinite(trace.error_bound[i])) {
        finite.push_back(trace.error_bound[i]);
      } else {
        ++m.bound_infinite;
      }
    }
    m.bound_checked = n - settled;
    m.bound_uncovered = m.bound_checked - covered;
    m.bound_coverage = static_cast<double>(covered) / (n - settled);
    if (!finite.empty()) {
      std::nth_element(finite.begin(), finite.begin() + finite.size() / 2,
                       finite.end());
      m.median_bound_s = finite[finite.size() / 2];
    }
  }
  if (n > settled) {
    m.rms_offset_s = std::sqrt(sum_off / (n - settled));
    m.rms_frequency_ppm = std::sqrt(sum_freq / (n - settled));
  }
  if (trace.leap_s >= 0) {
    for (size_t i = 0; i < n; ++i) {
      if (trace.time[i] < trace.leap_s) continue;
      const double offset = std::fabs(trace.offset[i]);
      m.max_abs_offset_after_leap_s =
          std::max(m.max_abs_offset_after_leap_s, offset);
      if (offset > 1e-3) m.leap_recovery_s = trace.time[i] + 1 - trace.leap_s;
    }
  }
  return m;
}

}  // namespace ntpfleet::sim
