#include "tests/sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "agent/ntp/packet.h"
#include "agent/ntp/timestamp.h"

namespace ntpfleet::sim {

struct Simulation::Client {
  Client(const clock::MonotonicClock* mono, absl::Time epoch,
         const ClientParams& p)
      : params(p),
        clock(mono, epoch, p.clock),
        engine(&clock, p.engine, mono->Now()) {}
  ClientParams params;
  clock::SimClock clock;
  ntp::Engine engine;
  Trace trace;
  clock::MonoTime timer_at = clock::MonoTime::Infinite();
  uint64_t timer_generation = 0;
  std::vector<bool> source_is_liar;
};

Simulation::Simulation(uint64_t seed)
    : rng_(seed),
      true_epoch_(absl::FromUnixSeconds(1795000000)) {}  // late 2026

Simulation::~Simulation() = default;

void Simulation::AddServer(const ServerParams& params) {
  servers_.push_back(params);
}

int Simulation::AddClient(const ClientParams& params) {
  auto client = std::make_unique<Client>(&now_, true_epoch_, params);
  for (const ServerParams& server : servers_) {
    ntp::SourceConfig source;
    source.name = server.address;
    source.address = server.address;
    source.minpoll = params.minpoll;
    source.maxpoll = params.maxpoll;
    source.iburst = params.iburst;
    client->engine.AddSource(source);
    client->source_is_liar.push_back(server.offset != absl::ZeroDuration());
  }
  clients_.push_back(std::move(client));
  return static_cast<int>(clients_.size()) - 1;
}

void Simulation::Schedule(clock::MonoTime at, std::function<void()> run) {
  events_.push(Event{at, seq_++, std::move(run)});
}

absl::Duration Simulation::Delay(const PathParams& path) {
  std::exponential_distribution<double> exp(1.0);
  return path.base + path.jitter * exp(rng_);
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
    int server = -1;
    for (size_t i = 0; i < servers_.size(); ++i) {
      if (servers_[i].address == t.address) server = static_cast<int>(i);
    }
    if (server < 0) continue;
    const ServerParams& sp = servers_[server];
    std::uniform_real_distribution<double> u(0, 1);
    if (u(rng_) < sp.to_server.loss) continue;
    const clock::MonoTime arrive = now_.Now() + Delay(sp.to_server);
    Schedule(arrive, [this, server, c, bytes = std::move(t.bytes)]() mutable {
      DeliverToServer(server, c, std::move(bytes));
    });
  }
  ArmClientTimer(c);
}

void Simulation::DeliverToServer(int s, int c, std::vector<uint8_t> request) {
  const ServerParams& sp = servers_[s];
  if (!Reachable(sp, now_.Now())) return;
  absl::StatusOr<ntp::NtpPacket> req = ntp::DecodePacket(request);
  if (!req.ok() || req->mode != ntp::Mode::kClient) return;
  const absl::Time server_now =
      true_epoch_ + now_.Now().since_origin() + sp.offset;
  const absl::Duration processing = absl::Microseconds(5);
  ntp::NtpPacket reply;
  reply.version = req->version;
  reply.mode = ntp::Mode::kServer;
  reply.poll = req->poll;
  reply.precision = -20;
  reply.origin = req->transmit;
  reply.receive = ntp::NtpTimestamp::FromTime(server_now);
  reply.transmit = ntp::NtpTimestamp::FromTime(server_now + processing);
  if (sp.kiss) {
    reply.stratum = 0;
    reply.reference_id = ntp::RefId::FromCode(*sp.kiss);
  } else {
    reply.stratum = static_cast<uint8_t>(sp.stratum);
    reply.reference_id = ntp::RefId::FromCode(sp.refid);
    reply.reference =
        ntp::NtpTimestamp::FromTime(server_now - absl::Seconds(8));
    reply.root_dispersion = ntp::NtpShort::FromDuration(absl::Microseconds(10));
  }
  absl::StatusOr<std::vector<uint8_t>> bytes = ntp::EncodePacket(reply);
  if (!bytes.ok()) return;
  std::uniform_real_distribution<double> u(0, 1);
  if (u(rng_) < sp.to_client.loss) return;
  const clock::MonoTime arrive = now_.Now() + processing + Delay(sp.to_client);
  Schedule(arrive, [this, s, c, b = *std::move(bytes)] {
    if (!Reachable(servers_[s], now_.Now())) return;
    Client& client = *clients_[c];
    const absl::Time t4 = client.clock.Now();
    Execute(c, client.engine.HandleResponse(servers_[s].address, b, t4,
                                            now_.Now()));
  });
}

void Simulation::Record() {
  const clock::MonoTime now = now_.Now();
  bool outage = false;
  for (const ServerParams& sp : servers_) {
    if (sp.outage_period > absl::ZeroDuration() && !Reachable(sp, now))
      outage = true;
  }
  for (auto& client : clients_) {
    Trace& tr = client->trace;
    tr.time.push_back(absl::ToDoubleSeconds(now.since_origin()));
    // Reference minus local = true minus local = -phase.
    tr.offset.push_back(-absl::ToDoubleSeconds(client->clock.Phase()));
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
  size_t first = 0;  // first sample after convergence
  for (size_t i = 0; i < n; ++i) {
    if (std::fabs(trace.offset[i]) > 1e-3 ||
        std::fabs(trace.frequency[i]) > 500)
      first = i + 1;
  }
  m.converged = first < n;
  // Converged by the first record from which every later one is within the
  // limits.
  m.convergence_s = first == 0  ? 0
                    : first < n ? trace.time[first]
                                : trace.time.back();
  double sum_off = 0, sum_freq = 0;
  for (size_t i = first; i < n; ++i) {
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
  // The error bound's claim, checked at every second after convergence.
  if (trace.error_bound.size() == n && n > first) {
    size_t covered = 0;
    std::vector<double> finite;
    for (size_t i = first; i < n; ++i) {
      if (std::fabs(trace.offset[i]) <= trace.error_bound[i]) ++covered;
      if (std::isfinite(trace.error_bound[i]))
        finite.push_back(trace.error_bound[i]);
    }
    m.bound_checked = n - first;
    m.bound_uncovered = m.bound_checked - covered;
    m.bound_coverage = static_cast<double>(covered) / (n - first);
    if (!finite.empty()) {
      std::nth_element(finite.begin(), finite.begin() + finite.size() / 2,
                       finite.end());
      m.median_bound_s = finite[finite.size() / 2];
    }
  }
  if (n > first) {
    m.rms_offset_s = std::sqrt(sum_off / (n - first));
    m.rms_frequency_ppm = std::sqrt(sum_freq / (n - first));
  }
  return m;
}

}  // namespace ntpfleet::sim
