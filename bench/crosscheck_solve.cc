// The crosscheck's controller-side cost (controller/crosscheck): the time of
// AssignMesh (K = 3) and of Solve on synthetic fleets whose true clock offsets
// are known, for each of --sizes nodes: --repeats runs each, min and median.
// Beside the times, the solve's accuracy against the truth (RMS of measured -
// true offset, the median uncertainty the solve claims, nodes measured and
// flagged), so that a broken solve cannot look fast. Prints a Markdown section
// (bench/run.sh --only crosscheck).
//
// The fleet is built like tests/controller/crosscheck_test's MakeFleet: node 0
// is the fleet's server (true offset 0, the gauge); the others' true offsets
// (reference minus local) are uniform in +-2 ms; every node reports its offset
// to within 10 us with a 100 us bound (honest: none should be flagged); each
// probe's delay is uniform in [50, 500] us and its offset the true difference
// plus an error uniform within +-delay/2 (the most a path asymmetry can do,
// RFC 5905 §8). Fixed seed: the same fleet on every run.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "controller/crosscheck.h"

ABSL_FLAG(std::vector<std::string>, sizes,
          std::vector<std::string>({"1000", "10000", "100000"}),
          "fleet sizes (nodes), comma-separated");
ABSL_FLAG(int, repeats, 7, "runs per size; min and median of their times");
ABSL_FLAG(uint32_t, seed, 1, "the fleet's random seed (and the mesh's)");

namespace {

namespace cc = ntpfleet::controller::crosscheck;

constexpr int kProbes = 3;  // K, the controller's --crosscheck-probes default
constexpr double kUs = 1e-6;
constexpr double kMs = 1e-3;

struct Fleet {
  std::vector<cc::MeshNode> mesh_nodes;
  std::vector<double> truth;  // seconds, reference minus local
  cc::SolveInput input;
};

Fleet MakeFleet(int n, uint32_t seed) {
  Fleet f;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> offset(-2 * kMs, 2 * kMs);
  std::uniform_real_distribution<double> delay(50 * kUs, 500 * kUs);
  std::uniform_real_distribution<double> unit(-1, 1);
  f.truth.resize(n);
  for (int i = 0; i < n; ++i) {
    // Addresses only need to be distinct strings here (nothing is probed).
    f.mesh_nodes.push_back(
        {absl::StrCat("node", i),
         absl::StrFormat("10.%d.%d.%d:123", (i + 1) >> 16, ((i + 1) >> 8) & 255,
                         (i + 1) & 255)});
    f.truth[i] = i == 0 ? 0 : offset(rng);
    cc::NodeInput in;
    in.name = f.mesh_nodes[i].name;
    in.reported = f.truth[i] + unit(rng) * 10 * kUs;
    in.bound = 100 * kUs;
    in.state = ntpfleet::v1::SYNC_STATE_SYNCHRONISED;
    in.server = i == 0;
    f.input.nodes.push_back(in);
  }
  std::map<std::string, int> index;
  for (int i = 0; i < n; ++i) index[f.mesh_nodes[i].name] = i;
  const absl::Time when = absl::FromUnixSeconds(1700000000);
  for (const auto& [from, targets] :
       cc::AssignMesh(f.mesh_nodes, kProbes, seed)) {
    for (const cc::MeshTarget& t : targets) {
      const int i = index[from];
      const int j = index[t.node];
      cc::Edge e;
      e.from = from;
      e.to = t.node;
      e.delay = delay(rng);
      // theta_ij = C_j - C_i = y_i - y_j, plus the path's error.
      e.theta = f.truth[i] - f.truth[j] + unit(rng) * e.delay / 2;
      e.measured_at = when;
      f.input.edges.push_back(e);
    }
  }
  f.input.as_of = when;
  return f;
}

// Min and median (the upper one for an even count) of `v`, in ms.
std::pair<double, double> MinMedian(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.front(), v[v.size() / 2]};
}

double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// "100 000": the documents' way of writing counts.
std::string Spaced(int64_t v) {
  std::string digits = absl::StrCat(v), out;
  for (size_t k = 0; k < digits.size(); ++k) {
    if (k > 0 && (digits.size() - k) % 3 == 0) out += ' ';
    out += digits[k];
  }
  return out;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double one = -1;
  in >> one;
  return one < 0 ? "?" : absl::StrFormat("%.2f", one);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  const uint32_t seed = absl::GetFlag(FLAGS_seed);
  std::vector<int> sizes;
  for (const std::string& s : absl::GetFlag(FLAGS_sizes)) {
    int n = 0;
    if (!absl::SimpleAtoi(s, &n) || n < 2) {
      std::fprintf(stderr, "--sizes: '%s' is not a fleet size >= 2\n",
                   s.c_str());
      return 2;
    }
    sizes.push_back(n);
  }
  const std::string load_before = LoadAverage();

  std::vector<std::string> rows;
  int inaccurate = 0;
  for (const int n : sizes) {
    const Fleet f = MakeFleet(n, seed);
    std::vector<double> mesh_ms, solve_ms;
    size_t mesh_edges = 0;
    cc::Solution s;
    for (int r = 0; r < repeats; ++r) {
      auto start = std::chrono::steady_clock::now();
      const cc::Mesh mesh = cc::AssignMesh(f.mesh_nodes, kProbes, seed);
      mesh_ms.push_back(Ms(std::chrono::steady_clock::now() - start));
      mesh_edges = 0;
      for (const auto& [from, targets] : mesh) mesh_edges += targets.size();
      start = std::chrono::steady_clock::now();
      s = cc::Solve(f.input);
      solve_ms.push_back(Ms(std::chrono::steady_clock::now() - start));
    }
    // Accuracy over the nodes other than the server (the gauge: exactly 0).
    // Every node's error (measured - true offset) shares one part, the error
    // of the server's own few probes (the gauge), drawn once per fleet: its
    // mean over the nodes, "common". Around it, each node's own error: its
    // RMS, "spread". Each edge's error is uniform within +-sigma_e (sigma_e =
    // delay/2) and the claimed uncertainty takes it as a 1-sigma error of
    // sigma_e, so an honest solve's spread is well below the median
    // uncertainty (0.4 to 0.6 of it in these fleets) and its common
    // error a draw of the same order (at most 1.44x it over seeds 1-5 at
    // 1 000 to 100 000 nodes).
    // A broken solve (a sign, an index or the weights wrong; unconverged
    // iterations) is off by ~ms, tens of uncertainties; one with a wrong
    // gauge flags the honest nodes or shows a common error of that size.
    double common = 0;
    for (int i = 1; i < n; ++i) {
      common += s.nodes[i].measured_offset - f.truth[i];
    }
    common /= n - 1;
    double sum2 = 0;
    std::vector<double> sigma;
    for (int i = 1; i < n; ++i) {
      const double err = s.nodes[i].measured_offset - f.truth[i] - common;
      sum2 += err * err;
      sigma.push_back(s.nodes[i].uncertainty);
    }
    const double spread = std::sqrt(sum2 / (n - 1));
    std::sort(sigma.begin(), sigma.end());
    const double median_sigma = sigma[sigma.size() / 2];
    const bool accurate = s.measured_count == n && s.flagged_count == 0 &&
                          spread <= median_sigma &&
                          std::abs(common) <= 2 * median_sigma &&
                          mesh_edges == f.input.edges.size();
    if (!accurate) ++inaccurate;
    const auto mesh = MinMedian(mesh_ms);
    const auto solve = MinMedian(solve_ms);
    rows.push_back(absl::StrFormat(
        "| %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %s / %d | %+.1f | %.1f | "
        "%.1f | %s | %s |",
        Spaced(n), Spaced(static_cast<int64_t>(f.input.edges.size())),
        n <= cc::kDenseLimit ? "dense, exact σ" : "CG, approx. σ", mesh.first,
        mesh.second, solve.first, solve.second, Spaced(s.measured_count),
        s.flagged_count, common / kUs, spread / kUs, median_sigma / kUs,
        accurate ? "yes" : "NO", solve.second <= 1000 ? "MET" : "MISSED"));
  }

  std::printf("## Crosscheck solve\n\n");
  std::printf(
      "The controller's crosscheck cost (controller/crosscheck), on one "
      "thread, "
      "-c opt: `AssignMesh` with K = %d probes per node and `Solve` (weighted "
      "least squares over the probe graph; dense Cholesky with exact "
      "uncertainties up to %d nodes, preconditioned conjugate gradients (CG) "
      "with approximate ones above). Synthetic fleets, seed %u: node 0 the "
      "server, true offsets uniform in ±2 ms, honest reports (within 10 µs, "
      "bound 100 µs), probe delays uniform in 50–500 µs with an error uniform "
      "within ±delay/2. %d runs per size; the fastest run's and the median "
      "run's wall time. Accuracy (the last run), over every node but the "
      "server, of measured − true offset: its mean (\"common\": the error of "
      "the server's own probes, which every node's measurement shares) and "
      "its RMS about that mean (\"spread\"), beside the median uncertainty "
      "the solve claims; \"accurate\" is every node measured, none flagged, "
      "spread ≤ median uncertainty and |common| ≤ 2 × median uncertainty (a "
      "broken solve is ms off). The controller solves at most once per 5 s, "
      "on its own thread, off the report path.\n\n",
      kProbes, cc::kDenseLimit, seed, repeats);
  std::printf(
      "| nodes | edges | solve | mesh min ms | mesh median ms | solve min ms | "
      "solve median ms | measured / flagged | error: common µs | error: "
      "spread µs | median uncertainty µs | accurate | solve ≤ 1 s |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string& row : rows) std::printf("%s\n", row.c_str());
  std::printf(
      "\nLoad average (1 min) before the runs: %s, after: %s (the machine's "
      "other work shares its cores; the minimum is the least disturbed "
      "run).\n",
      load_before.c_str(), LoadAverage().c_str());
  return inaccurate == 0 ? 0 : 1;
}
