#include "tests/sim/scenarios.h"

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agent/ntp/leap.h"
#include "tests/sim/simulator.h"

namespace ntpfleet::sim {
namespace {

// The table's default network: 100 µs + 100 µs·Exp(1) each way.
ServerParams DefaultServer(const std::string& address) {
  ServerParams s;
  s.address = address;
  s.to_server.base = absl::Microseconds(100);
  s.to_server.jitter = absl::Microseconds(100);
  s.to_client = s.to_server;
  return s;
}

// A client 0.1 s and 100 ppm off (signs drawn from the seed), wander 1e-9/s,
// minpoll 6.
ClientParams DefaultClient(uint64_t seed, double offset_s = 0.1,
                           double freq_ppm = 100) {
  std::mt19937_64 rng(seed * 7919 + 17);
  std::uniform_int_distribution<int> coin(0, 1);
  ClientParams c;
  c.clock.initial_offset = absl::Seconds(coin(rng) ? offset_s : -offset_s);
  c.clock.frequency_error_ppm = coin(rng) ? freq_ppm : -freq_ppm;
  c.clock.wander = 1e-9;
  c.clock.seed = seed;
  c.engine.seed = seed;
  c.minpoll = 6;
  c.maxpoll = 10;
  return c;
}

// The 2016-12-31 leap second (one a real leap file lists), 5000 s into the
// run; the client iburst, in `mode`.
void BuildLeapSecond(Simulation& sim, uint64_t seed, ntp::LeapMode mode) {
  const absl::Time midnight = absl::FromUnixSeconds(1483228800);
  sim.SetStart(midnight - absl::Seconds(5000));
  sim.InsertLeapSecond(midnight);
  sim.AddServer(DefaultServer("10.0.0.1:123"));
  ClientParams c = DefaultClient(seed);
  c.iburst = true;
  c.engine.leap_mode = mode;
  sim.AddClient(c);
}

std::vector<Scenario> MakeScenarios() {
  std::vector<Scenario> all;
  all.push_back({"default",
                 "1 server, delay 100µs+100µs·Exp each way, client ±0.1 s ±100 "
                 "ppm, wander "
                 "1e-9/s, minpoll 6",
                 [](Simulation& sim, uint64_t seed) {
                   sim.AddServer(DefaultServer("10.0.0.1:123"));
                   sim.AddClient(DefaultClient(seed));
                 }});
  all.push_back(
      {"iburst", "default + iburst", [](Simulation& sim, uint64_t seed) {
         sim.AddServer(DefaultServer("10.0.0.1:123"));
         ClientParams c = DefaultClient(seed);
         c.iburst = true;
         sim.AddClient(c);
       }});
  all.push_back({"wrong-date",
                 "client ±100 s off (set wrong with `date -s`), iburst",
                 [](Simulation& sim, uint64_t seed) {
                   sim.AddServer(DefaultServer("10.0.0.1:123"));
                   ClientParams c = DefaultClient(seed, 100.0);
                   c.iburst = true;
                   sim.AddClient(c);
                 }});
  all.push_back({"large-frequency", "default with ±500 ppm",
                 [](Simulation& sim, uint64_t seed) {
                   sim.AddServer(DefaultServer("10.0.0.1:123"));
                   sim.AddClient(DefaultClient(seed, 0.1, 500));
                 }});
  all.push_back({"high-jitter", "delay 100µs+1ms·Exp each way",
                 [](Simulation& sim, uint64_t seed) {
                   ServerParams s = DefaultServer("10.0.0.1:123");
                   s.to_server.jitter = absl::Milliseconds(1);
                   s.to_client.jitter = absl::Milliseconds(1);
                   sim.AddServer(s);
                   sim.AddClient(DefaultClient(seed));
                 }});
  all.push_back({"falsetickers", "5 servers, 2 of them 50 ms off, iburst",
                 [](Simulation& sim, uint64_t seed) {
                   for (int i = 1; i <= 5; ++i) {
                     ServerParams s =
                         DefaultServer("10.0.0." + std::to_string(i) + ":123");
                     if (i == 2) s.offset = absl::Milliseconds(50);
                     if (i == 4) s.offset = absl::Milliseconds(-50);
                     sim.AddServer(s);
                   }
                   ClientParams c = DefaultClient(seed);
                   c.iburst = true;
                   sim.AddClient(c);
                 }});
  all.push_back(
      {"outage",
       "default + iburst; upstream down 30 min in every 3 h (first at 1.5 h)",
       [](Simulation& sim, uint64_t seed) {
         ServerParams s = DefaultServer("10.0.0.1:123");
         s.outage_start = absl::Minutes(90);
         s.outage_period = absl::Hours(3);
         s.outage_length = absl::Minutes(30);
         sim.AddServer(s);
         ClientParams c = DefaultClient(seed);
         c.iburst = true;
         sim.AddClient(c);
       }});
  all.push_back(
      {"kod-rate",
       "the only server answers KoD RATE: no time at all, so \"unconverged\" "
       "is the right result; the test checks the poll backs off",
       [](Simulation& sim, uint64_t seed) {
         ServerParams s = DefaultServer("10.0.0.1:123");
         s.kiss_rate = true;
         sim.AddServer(s);
         ClientParams c = DefaultClient(seed);
         c.iburst = true;
         sim.AddClient(c);
       }});
  all.push_back({"silence",
                 "default + iburst; the only server goes silent after 3000 s "
                 "(then 7000 s of holdover on the learned frequency)",
                 [](Simulation& sim, uint64_t seed) {
                   ServerParams s = DefaultServer("10.0.0.1:123");
                   s.silent_after = absl::Seconds(3000);
                   sim.AddServer(s);
                   ClientParams c = DefaultClient(seed);
                   c.iburst = true;
                   sim.AddClient(c);
                 }});
  all.push_back({"asymmetry",
                 "default, but the way to the server is 200 µs longer than the "
                 "way back (fixed): the offset is biased by 100 µs, which no "
                 "client can see",
                 [](Simulation& sim, uint64_t seed) {
                   ServerParams s = DefaultServer("10.0.0.1:123");
                   s.to_server.base += absl::Microseconds(200);
                   sim.AddServer(s);
                   sim.AddClient(DefaultClient(seed));
                 }});
  all.push_back(
      {"route-change",
       "default; at 5000 s the way to the server becomes 400 µs longer (a "
       "route change: the delay and the asymmetry jump, the offset's bias "
       "goes from 0 to 200 µs)",
       [](Simulation& sim, uint64_t seed) {
         ServerParams s = DefaultServer("10.0.0.1:123");
         s.to_server.extra = [](absl::Duration t) {
           return t >= absl::Seconds(5000) ? absl::Microseconds(400)
                                           : absl::ZeroDuration();
         };
         sim.AddServer(s);
         sim.AddClient(DefaultClient(seed));
       }});
  all.push_back({"loss", "default with 20 % of packets lost each way",
                 [](Simulation& sim, uint64_t seed) {
                   ServerParams s = DefaultServer("10.0.0.1:123");
                   s.to_server.loss = 0.2;
                   s.to_client.loss = 0.2;
                   sim.AddServer(s);
                   sim.AddClient(DefaultClient(seed));
                 }});
  all.push_back({"frequency-step",
                 "default; at 5000 s the client's oscillator gains 2 ppm (a "
                 "temperature change)",
                 [](Simulation& sim, uint64_t seed) {
                   sim.AddServer(DefaultServer("10.0.0.1:123"));
                   const int c = sim.AddClient(DefaultClient(seed));
                   sim.StepFrequency(c, absl::Seconds(5000), 2);
                 }});
  all.push_back(
      {"chain",
       "client ← agent ← server: the client's only source is an agent "
       "(its own ±0.1 s ±100 ppm clock, the real engine and server code) "
       "whose only source is the server; default paths on both links, "
       "iburst on both",
       [](Simulation& sim, uint64_t seed) {
         sim.AddServer(DefaultServer("10.0.0.1:123"));
         ClientParams c = DefaultClient(seed);
         c.iburst = true;
         c.sources = {"10.0.1.1:123"};
         sim.AddClient(c);
         ClientParams middle = DefaultClient(seed + 1000);
         middle.iburst = true;
         middle.sources = {"10.0.0.1:123"};
         ServeParams serve;
         serve.address = "10.0.1.1:123";
         serve.to_server = DefaultServer(serve.address).to_server;
         serve.to_client = serve.to_server;
         middle.serve = serve;
         sim.AddClient(middle);
       }});
  all.push_back(
      {"leap-second",
       "default + iburst, starting 5000 s before the end of 2016-12-31: the "
       "server announces the inserted leap second all day and true UTC "
       "repeats 23:59:59",
       [](Simulation& sim, uint64_t seed) {
         BuildLeapSecond(sim, seed, ntp::LeapMode::kSystem);
       }});
  all.push_back(
      {"leap-second-slew",
       "leap-second with `leapsecmode slew`: the kernel is never told; the "
       "agent slews the second away at the 500 ppm limit (no repeated "
       "second, ~2000 s a second off-and-closing)",
       [](Simulation& sim, uint64_t seed) {
         BuildLeapSecond(sim, seed, ntp::LeapMode::kSlew);
       }});
  return all;
}

}  // namespace

const std::vector<Scenario>& AllScenarios() {
  static const auto* const all = new std::vector<Scenario>(MakeScenarios());
  return *all;
}

const Scenario& FindScenario(const std::string& name) {
  for (const Scenario& s : AllScenarios()) {
    if (s.name == name) return s;
  }
  return AllScenarios().front();
}

std::unique_ptr<Simulation> RunScenario(const Scenario& scenario, uint64_t seed,
                                        absl::Duration duration,
                                        const RunOptions& options) {
  auto sim = std::make_unique<Simulation>(seed);
  if (options.last_sample_baseline) sim->UseLastSampleBaseline();
  scenario.build(*sim, seed);
  sim->Run(duration);
  return sim;
}

}  // namespace ntpfleet::sim
