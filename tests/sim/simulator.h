// A deterministic discrete-event simulator of NTP networks that runs the real
// engine (agent/ntp/engine.h) on SimClocks, thousands of times faster than real
// time.
//
// Model (as chrony's clknetsim does it): servers keep true time (or lie by a
// fixed offset); every packet's one-way delay is base + jitter * Exp(1) per
// direction, plus loss, outages and a server that goes silent or answers only
// Kiss-o'-Death. Clients are full Engines over SimClocks with an initial
// offset, a frequency error and random-walk wander. Everything random comes
// from one seed, so a run is exactly repeatable.
//
// Every second of simulated time the simulator records each client's true
// offset and frequency error, from which Metrics are computed.
#ifndef NTPFLEET_TESTS_SIM_SIMULATOR_H_
#define NTPFLEET_TESTS_SIM_SIMULATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "agent/clock/sim_clock.h"
#include "agent/ntp/engine.h"

namespace ntpfleet::sim {

// One direction of a network path.
struct PathParams {
  absl::Duration base = absl::Microseconds(100);
  absl::Duration jitter =
      absl::Microseconds(100);  // mean of the exponential part
  double loss = 0;
};

struct ServerParams {
  std::string address;  // "10.0.0.1:123"
  int stratum = 1;
  std::string refid = "GPS";
  absl::Duration offset =
      absl::ZeroDuration();  // server time minus true time (a liar if != 0)
  PathParams to_server;
  PathParams to_client;
  // Answers every request with this kiss code instead of time ("RATE", "DENY").
  std::optional<std::string> kiss;
  // Stops answering at this time (since the start).
  std::optional<absl::Duration> silent_after;
  // Unreachable for `outage_length` from `outage_start`, and again every
  // `outage_period`.
  absl::Duration outage_start = absl::ZeroDuration();
  absl::Duration outage_period = absl::ZeroDuration();
  absl::Duration outage_length = absl::ZeroDuration();
};

struct ClientParams {
  clock::SimClockParams clock;
  ntp::EngineOptions engine;
  int minpoll = 6;
  int maxpoll = 10;
  bool iburst = false;
};

// One client's record, one point per second.
struct Trace {
  std::vector<double> time;         // seconds since start
  std::vector<double> offset;       // true offset, reference minus local (s)
  std::vector<double> frequency;    // rate error, ppm (positive = runs fast)
  std::vector<bool> in_outage;      // any server unreachable by outage then
  std::vector<bool> liar_selected;  // the system peer was a lying server
  // The engine's reported error bound (s; +inf while it reports none): the
  // claim |offset| <= error_bound that Metrics::bound_coverage checks.
  std::vector<double> error_bound;
};

struct Metrics {
  double convergence_s =
      0;                   // last time |offset| > 1 ms or |frequency| > 500 ppm
  bool converged = false;  // not still outside at the end
  double max_abs_offset_s = 0;   // after convergence
  double rms_offset_s = 0;       // after convergence
  double rms_frequency_ppm = 0;  // after convergence
  double max_abs_offset_in_outage_s = 0;
  bool liar_ever_selected = false;  // after convergence
  // After convergence: the fraction of seconds at which |true offset| <= the
  // engine's error bound (1 = always covered; an infinite bound covers), and
  // the median of the finite bounds (s; 0 if none).
  double bound_coverage = 1;
  double median_bound_s = 0;
  uint64_t bound_checked = 0;    // seconds checked
  uint64_t bound_uncovered = 0;  // of which |true offset| > bound
  uint64_t requests = 0;
  int steps = 0;
};

Metrics ComputeMetrics(const Trace& trace, uint64_t requests, int steps);

class Simulation {
 public:
  explicit Simulation(uint64_t seed);
  ~Simulation();

  void AddServer(const ServerParams& params);
  // Returns the client's index. Every server is one of its sources.
  int AddClient(const ClientParams& params);
  void Run(absl::Duration duration);

  const Trace& trace(int client) const;
  const ntp::Engine& engine(int client) const;
  const clock::SimClock& clock(int client) const;
  Metrics metrics(int client) const;
  absl::Duration now() const { return now_.Now().since_origin(); }

 private:
  class VirtualClock : public clock::MonotonicClock {
   public:
    clock::MonoTime Now() const override { return now_; }
    void Set(clock::MonoTime t) { now_ = t; }

   private:
    clock::MonoTime now_;
  };
  struct Client;
  struct Event {
    clock::MonoTime at;
    uint64_t seq;
    std::function<void()> run;
    bool operator>(const Event& o) const {
      return at != o.at ? at > o.at : seq > o.seq;
    }
  };

  void Schedule(clock::MonoTime at, std::function<void()> run);
  void Execute(int client, std::vector<ntp::Transmit> transmits);
  void ArmClientTimer(int client);
  void DeliverToServer(int server, int client, std::vector<uint8_t> request);
  bool Reachable(const ServerParams& server, clock::MonoTime at) const;
  absl::Duration Delay(const PathParams& path);
  void Record();

  std::mt19937_64 rng_;
  VirtualClock now_;
  absl::Time true_epoch_;
  uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::vector<ServerParams> servers_;
  std::vector<std::unique_ptr<Client>> clients_;
};

}  // namespace ntpfleet::sim

#endif  // NTPFLEET_TESTS_SIM_SIMULATOR_H_
