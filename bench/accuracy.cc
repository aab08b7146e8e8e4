// bench/accuracy: runs every simulator scenario over many seeds and prints, per
// scenario, the medians and worst cases of convergence time, RMS and max offset
// from settling on, RMS frequency error and requests per client. With
// --markdown FILE it (re)writes the accuracy section of that file
// (docs/BENCHMARKS.md) between its markers.
//
//   bazel run -c opt //bench:accuracy -- --seeds 20 --duration 10000s
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "tests/sim/scenarios.h"
#include "tests/sim/simulator.h"

ABSL_FLAG(int, seeds, 20, "runs per scenario (seeds 1..N)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10000),
          "simulated time per run");
ABSL_FLAG(std::string, scenario, "", "run only this scenario");
ABSL_FLAG(int, dump_client, 0,
          "with --dump_seed: whose trace (0: the client under test; in "
          "`chain`, 1 is the agent in the middle)");
ABSL_FLAG(int, dump_seed, 0,
          "print the chosen scenario's trace for this seed (time s, offset µs, "
          "frequency error ppm, error bound µs) and exit");
ABSL_FLAG(bool, last_sample_only, false,
          "run the broken \"last sample\" filter baseline instead of the "
          "engine's filter (FilterOptions::last_sample_only)");
ABSL_FLAG(std::string, markdown, "",
          "write the table into this file between the accuracy markers");

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}
double Worst(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int seeds = absl::GetFlag(FLAGS_seeds);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  ntpfleet::sim::RunOptions options;
  options.last_sample_baseline = absl::GetFlag(FLAGS_last_sample_only);
  if (const int seed = absl::GetFlag(FLAGS_dump_seed); seed > 0) {
    auto sim = ntpfleet::sim::RunScenario(
        ntpfleet::sim::FindScenario(absl::GetFlag(FLAGS_scenario)), seed,
        duration, options);
    const int client = absl::GetFlag(FLAGS_dump_client);
    const ntpfleet::sim::Trace& tr = sim->trace(client);
    for (size_t i = 0; i < tr.time.size(); ++i) {
      std::printf("%8.0f %12.1f %10.3f %12.1f%s\n", tr.time[i],
                  tr.offset[i] * 1e6, tr.frequency[i], tr.error_bound[i] * 1e6,
                  tr.liar_selected[i] ? " liar" : "");
    }
    const ntpfleet::sim::Metrics m = sim->metrics(client);
    std::printf(
        "converged %.0f s, settled %.0f s, rms %.1f us, max %.1f us, "
        "requests %llu\n",
        m.convergence_s, m.settled_s, m.rms_offset_s * 1e6,
        m.max_abs_offset_s * 1e6, static_cast<unsigned long long>(m.requests));
    return 0;
  }
  std::vector<std::string> rows;
  rows.push_back(
      "| scenario | converged (s) median / worst | RMS offset (µs) median / "
      "worst | max offset "
      "(µs) median / worst | RMS freq error (ppm) median | requests median | "
      "steps median | max offset in outages (µs) worst | unconverged runs "
      "| max offset in outages (µs) median | error bound coverage (%, "
      "uncovered s) | median error bound (µs) median | median bound ÷ RMS "
      "offset, median | settled (s) median / worst | after a leap second: max "
      "offset (µs) median / worst, back within 1 ms after (s) worst |");
  rows.push_back(
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  std::vector<std::string> notes;
  for (const auto& scenario : ntpfleet::sim::AllScenarios()) {
    if (!absl::GetFlag(FLAGS_scenario).empty() &&
        scenario.name != absl::GetFlag(FLAGS_scenario)) {
      continue;
    }
    std::vector<double> conv, rms, max, freq, req, steps, outage, bound,
        tightness, outage_runs, settled, leap_max, leap_recovery;
    bool leap = false;
    int unconverged = 0;
    uint64_t checked = 0, uncovered = 0;
    for (int seed = 1; seed <= seeds; ++seed) {
      auto sim = ntpfleet::sim::RunScenario(scenario, seed, duration, options);
      const ntpfleet::sim::Metrics m = sim->metrics(0);
      if (!m.converged) ++unconverged;
      conv.push_back(m.convergence_s);
      rms.push_back(m.rms_offset_s * 1e6);
      max.push_back(m.max_abs_offset_s * 1e6);
      freq.push_back(m.rms_frequency_ppm);
      req.push_back(static_cast<double>(m.requests));
      steps.push_back(m.steps);
      outage.push_back(m.max_abs_offset_in_outage_s * 1e6);
      if (m.max_abs_offset_in_outage_s > 0)
        outage_runs.push_back(m.max_abs_offset_in_outage_s * 1e6);
      checked += m.bound_checked;
      uncovered += m.bound_uncovered;
      if (m.bound_checked > 0 && m.rms_offset_s > 0) {
        bound.push_back(m.median_bound_s * 1e6);
        tightness.push_back(m.median_bound_s / m.rms_offset_s);
      }
      settled.push_back(m.settled_s);
      leap = sim->trace(0).leap_s >= 0;
      leap_max.push_back(m.max_abs_offset_after_leap_s * 1e6);
      leap_recovery.push_back(m.leap_recovery_s);
    }
    // Coverage over every checked second of every seed.
    const std::string coverage =
        checked == 0
            ? std::string("–")
            : absl::StrFormat("%.5f (%llu)",
                              100.0 * static_cast<double>(checked - uncovered) /
                                  static_cast<double>(checked),
                              static_cast<unsigned long long>(uncovered));
    notes.push_back(
        absl::StrCat("- **", scenario.name, "**: ", scenario.parameters));
    rows.push_back(absl::StrFormat(
        "| %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.2f "
        "| %.0f | %.0f | %s | %d of %d | %s | %s | %s | %s | %.1f / %.1f | %s "
        "|",
        scenario.name, Median(conv), Worst(conv), Median(rms), Worst(rms),
        Median(max), Worst(max), Median(freq), Median(req), Median(steps),
        Worst(outage) > 0 ? absl::StrFormat("%.1f", Worst(outage))
                          : std::string("–"),
        unconverged, seeds,
        outage_runs.empty() ? std::string("–")
                            : absl::StrFormat("%.1f", Median(outage_runs)),
        coverage,
        bound.empty() ? std::string("–")
                      : absl::StrFormat("%.1f", Median(bound)),
        tightness.empty() ? std::string("–")
                          : absl::StrFormat("%.2f", Median(tightness)),
        Median(settled), Worst(settled),
        leap ? absl::StrFormat("%.1f / %.1f, %.0f", Median(leap_max),
                               Worst(leap_max), Worst(leap_recovery))
             : std::string("–")));
  }
  const std::string table = absl::StrCat(absl::StrJoin(rows, "\n"), "\n\n",
                                         absl::StrJoin(notes, "\n"));
  std::printf("%d seeds x %s per scenario\n%s\n", seeds,
              absl::FormatDuration(duration).c_str(), table.c_str());
  return 0;
}
