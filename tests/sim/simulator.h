// A deterministic discrete-event simulator of NTP networks that runs the real
// engine (agent/ntp/engine.h) on SimClocks, thousands of times faster than real
// time.
//
// Model (as chrony's clknetsim does it): reference servers keep true UTC (or
// lie by a fixed offset); every packet's one-way delay is base + extra(t) +
// jitter * Exp(1) per direction (extra(t) makes the path asymmetric, fixed or
// varying), plus loss, outages and a server that goes silent or rate-limits
// with Kiss-o'-Death. Every server answers through the agent's own server code
// (agent/ntp/server.h's Responder): reference servers with fixed system
// variables, and a client that also serves (`ClientParams::serve`, the middle
// of a chain) with the ones its Engine derives, as the agent does. Clients are
// full Engines over SimClocks with an initial offset, a frequency error,
// random-walk wander and optional frequency steps (temperature). True UTC may
// insert a leap second (the second before midnight repeats, as the kernel
// shows it). Everything random comes from one seed, so a run is exactly
// repeatable.
//
// Every second of simulated time the simulator records each client's true
// offset (true UTC minus its clock) and frequency error, from which Metrics
// are computed.
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
  double loss = 0;              // probability a packet is lost
  // Extra delay (>= 0) at a time since the start: a different value in each
  // direction is an asymmetry no NTP client can see (it biases the measured
  // offset by half the difference, RFC 5905 §8), e.g. a route change.
  std::function<absl::Duration(absl::Duration since_start)> extra;
};

struct ServerParams {
  std::string address;  // "10.0.0.1:123"
  int stratum = 1;
  std::string refid = "GPS";
  absl::Duration offset =
      absl::ZeroDuration();  // server time minus true time (a liar if != 0)
  PathParams to_server;
  PathParams to_client;
  // Rate-limits every client to nothing (`restrict default limited kod`,
  // `discard average 0 burst 0`), each client's allowance already spent before
  // the start: the Responder answers every request with KoD RATE (RFC 5905
  // §7.4) or drops it, and never gives time.
  bool kiss_rate = false;
  // Stops answering at this time (since the start).
  std::optional<absl::Duration> silent_after;
  // Unreachable for `outage_length` from `outage_start`, and again every
  // `outage_period`.
  absl::Duration outage_start = absl::ZeroDuration();
  absl::Duration outage_period = absl::ZeroDuration();
  absl::Duration outage_length = absl::ZeroDuration();
};

// A client that also serves NTP (the agent's server thread): answered by the
// Responder with the system variables its Engine derives.
struct ServeParams {
  std::string address;   // "10.0.1.1:123"
  PathParams to_server;  // from its clients to it
  PathParams to_client;
};

struct ClientParams {
  clock::SimClockParams clock;
  ntp::EngineOptions engine;
  int minpoll = 6;
  int maxpoll = 10;
  bool iburst = false;
  // The addresses it uses as sources (reference servers or serving clients);
  // empty: every reference server added before it.
  std::vector<std::string> sources;
  std::optional<ServeParams> serve;
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
  // When true UTC repeated a second (s since start); < 0: no leap second.
  double leap_s = -1;
};

// "Within" below means |offset| <= 1 ms and |frequency error| <= 500 ppm.
struct Metrics {
  // The first record from which every later one is within (the strict
  // convergence time, as the comparison with chronyd measures it).
  double convergence_s = 0;
  bool converged = false;  // not still outside at the end
  // The statistics below are taken from `settled_s` on, the start of the first
  // kSettleSeconds records in a row that are within: so an excursion after
  // that (an overshoot, a drift in an outage, a leap second) counts in them.
  // Runs that never settle have none (all 0).
  double max_abs_offset_s = 0;
  double rms_offset_s = 0;
  double rms_frequency_ppm = 0;
  double max_abs_offset_in_outage_s = 0;
  bool liar_ever_selected = false;
  // From settled_s on: the fraction of seconds at which |true offset| <= the
  // engine's error bound (1 = always covered; an infinite bound covers), and
  // the median of the finite bounds (s; 0 if none).
  double bound_coverage = 1;
  double median_bound_s = 0;
  uint64_t bound_checked = 0;    // seconds checked
  uint64_t bound_uncovered = 0;  // of which |true offset| > bound
  // Of the seconds checked, those with no bound at all (infinite: covers
  // anything, so they must be few for the coverage to mean something).
  uint64_t bound_infinite = 0;
  uint64_t requests = 0;
  int steps = 0;

  // --- tests/sim realism (issue #11 item 5) ---
  double settled_s = 0;  // see above; the end of the run if never settled
  bool settled = false;
  // With a leap second (Trace::leap_s >= 0): the largest |offset| from the
  // leap to the end, and how long after the leap the offset came back within
  // 1 ms for good (0: it never left; the rest of the run if it never came
  // back).
  double max_abs_offset_after_leap_s = 0;
  double leap_recovery_s = 0;
};

// Records in a row that must be within for a run to count as settled.
inline constexpr int kSettleSeconds = 60;

Metrics ComputeMetrics(const Trace& trace, uint64_t requests, int steps);

class Simulation {
 public:
  explicit Simulation(uint64_t seed);
  ~Simulation();

  // Before any AddClient: true UTC at the start (default late 2026).
  void SetStart(absl::Time utc);
  // True UTC inserts a leap second before `midnight` (a UTC midnight after the
  // start): the second before it repeats. Reference servers announce it (leap
  // indicator 1, RFC 5905 §7.3) from the start of that day until it is over.
  void InsertLeapSecond(absl::Time midnight);
  void AddServer(const ServerParams& params);
  // Returns the client's index.
  int AddClient(const ClientParams& params);
  // The client's oscillator changes its natural frequency by `ppm` (positive:
  // faster) at `at` since the start, as after a temperature change.
  void StepFrequency(int client, absl::Duration at, double ppm);
  // Test-only: every client's filter is the broken "last sample" baseline
  // (FilterOptions::last_sample_only). Before any AddClient.
  void UseLastSampleBaseline() { last_sample_baseline_ = true; }
  void Run(absl::Duration duration);

  const Trace& trace(int client) const;
  const ntp::Engine& engine(int client) const;
  const clock::SimClock& clock(int client) const;
  Metrics metrics(int client) const;
  absl::Duration now() const { return now_.Now().since_origin(); }
  // True UTC now, as a server's clock reads it (23:59:59 twice at an inserted
  // leap second).
  absl::Time utc() const;
  // True UTC minus `clock`'s reading (reference minus local), across a leap
  // second too.
  absl::Duration OffsetToUtc(const clock::SimClock& clock) const;

 private:
  class VirtualClock : public clock::MonotonicClock {
   public:
    clock::MonoTime Now() const override { return now_; }
    void Set(clock::MonoTime t) { now_ = t; }

   private:
    clock::MonoTime now_;
  };
  struct Client;
  struct Server;
  // Where a request to an address goes: a reference server or a serving client.
  struct Endpoint {
    int server = -1;
    int client = -1;
  };
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
  Endpoint Find(const std::string& address) const;
  bool Reachable(const Endpoint& to, clock::MonoTime at) const;
  const PathParams& PathTo(const Endpoint& to) const;
  const PathParams& PathFrom(const Endpoint& to) const;
  const std::string& AddressOf(const Endpoint& to) const;
  void DeliverToServer(Endpoint server, int client,
                       std::vector<uint8_t> request);
  bool Reachable(const ServerParams& server, clock::MonoTime at) const;
  absl::Duration Delay(const PathParams& path);
  void Record();

  std::mt19937_64 rng_;
  VirtualClock now_;
  absl::Time true_epoch_;
  std::optional<absl::Time> leap_midnight_;
  bool last_sample_baseline_ = false;
  uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::vector<std::unique_ptr<Server>> servers_;
  std::vector<std::unique_ptr<Client>> clients_;
};

}  // namespace ntpfleet::sim

#endif  // NTPFLEET_TESTS_SIM_SIMULATOR_H_
