// The accuracy scenarios of issue #3, each a small network for the Simulator.
// The floors every run must clear are checked in scenarios_test.cc;
// bench/accuracy runs them over many seeds and writes the table of medians into
// docs/BENCHMARKS.md.
#ifndef NTPFLEET_TESTS_SIM_SCENARIOS_H_
#define NTPFLEET_TESTS_SIM_SCENARIOS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/sim/simulator.h"

namespace ntpfleet::sim {

struct Scenario {
  std::string name;
  std::string parameters;  // in words, for the benchmark table
  // Builds the network; the client under test must be client 0.
  std::function<void(Simulation& sim, uint64_t seed)> build;
};

// default, iburst, wrong-date, large-frequency, high-jitter, falsetickers,
// outage, kod-rate, silence, asymmetry, route-change, loss, frequency-step,
// chain, leap-second.
const std::vector<Scenario>& AllScenarios();
const Scenario& FindScenario(const std::string& name);

struct RunOptions {
  // Test-only: every engine's filter is the broken "last sample" baseline
  // (FilterOptions::last_sample_only), to show the floors are tight.
  bool last_sample_baseline = false;
};

// Runs one scenario for `duration` with `seed`; the simulation is returned for
// inspection.
std::unique_ptr<Simulation> RunScenario(const Scenario& scenario, uint64_t seed,
                                        absl::Duration duration,
                                        const RunOptions& options = {});

}  // namespace ntpfleet::sim

#endif  // NTPFLEET_TESTS_SIM_SCENARIOS_H_
