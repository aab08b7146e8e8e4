#include "agent/ntp/selection.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

#include "absl/time/time.h"

namespace ntpfleet::ntp {
namespace {

// RFC 5905 §7.2 MAXDIST: one stratum step in the cluster merit factor
// (§11.2.2), so that stratum dominates the ranking and root distance only
// orders candidates of equal stratum.
constexpr absl::Duration kMaxDist = absl::Seconds(1);

// Floor for root distances (see Candidate::root_distance).
constexpr absl::Duration kMinRootDistance = absl::Nanoseconds(1);

// The three tuples each candidate contributes to the chime list (§11.2.1). The
// values are the RFC's types; sorting ties by type puts lowpoints before
// midpoints before highpoints at equal edges, so intervals that merely touch
// still count as overlapping in both scans.
enum EdgeType : int { kLowpoint = -1, kMidpoint = 0, kHighpoint = +1 };

struct Edge {
  absl::Duration value;
  int type;
  size_t candidate;
};

struct Interval {
  absl::Duration low;
  absl::Duration high;
};

bool IsFinite(absl::Duration d) {
  return d != absl::InfiniteDuration() && d != -absl::InfiniteDuration();
}

// Time values are combined in double nanoseconds: exact for integer nanoseconds
// up to ~104 days, which keeps hand-checkable results exact.
double Ns(absl::Duration d) { return absl::ToDoubleNanoseconds(d); }

// §11.2.1 steps 3-6 over a sorted chime list of `m` candidates. Returns the
// intersection interval of the smallest number of falsetickers f < m/2 for
// which one exists, or nothing.
std::optional<Interval> Intersect(const std::vector<Edge>& chimes, size_t m) {
  for (size_t allow = 0; 2 * allow < m; ++allow) {
    const size_t needed = m - allow;
    std::optional<absl::Duration> low;
    int64_t open = 0;  // intervals containing the current edge
    for (const Edge& e : chimes) {
      if (e.type == kLowpoint) ++open;
      if (e.type == kHighpoint) --open;
      if (open >= static_cast<int64_t>(needed)) {
        low = e.value;  // always a lowpoint: only those raise `open`
        break;
      }
    }

    std::optional<absl::Duration> high;
    open = 0;
    for (auto it = chimes.rbegin(); it != chimes.rend(); ++it) {
      if (it->type == kHighpoint) ++open;
      if (it->type == kLowpoint) --open;
      if (open >= static_cast<int64_t>(needed)) {
        high = it->value;
        break;
      }
    }

    // No point is covered by `needed` intervals: assume one more falseticker
    // (step 5B). RFC 5905's appendix also gives up when more than f offsets
    // (midpoints) lie outside [low, high]; that rule refuses honest
    // majorities whose intervals all contain the true time (an accurate
    // source beside a wide one), so, like later ntpd releases, only the
    // interval ends decide.
    if (!low.has_value() || !high.has_value()) continue;
    if (*high >= *low) return Interval{*low, *high};
  }
  return std::nullopt;
}

// §11.2.2 step 3: RMS of survivor i's offset differences from the other
// survivors, in ns.
double SelectionJitterNs(const std::vector<Candidate>& candidates,
                         const std::vector<size_t>& survivors, size_t i) {
  if (survivors.size() < 2) return 0;
  double sum = 0;
  for (size_t j : survivors) {
    const double d = Ns(candidates[i].offset - candidates[j].offset);
    sum += d * d;
  }
  return std::sqrt(sum / static_cast<double>(survivors.size() - 1));
}

}  // namespace

SelectionResult SelectSources(const std::vector<Candidate>& candidates,
                              const SelectionOptions& options) {
  SelectionResult result;
  result.marks.assign(candidates.size(), SelectionMark::kFalseticker);

  // Correctness intervals of the fit candidates (§11.2.1 steps 1-2).
  std::vector<absl::Duration> lambda(candidates.size());
  std::vector<size_t> fit;
  std::vector<Edge> chimes;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    if (!IsFinite(c.offset) || !IsFinite(c.root_distance) ||
        !IsFinite(c.jitter)) {
      continue;
    }
    lambda[i] = std::max(c.root_distance, kMinRootDistance);
    chimes.push_back({c.offset - lambda[i], kLowpoint, i});
    chimes.push_back({c.offset, kMidpoint, i});
    chimes.push_back({c.offset + lambda[i], kHighpoint, i});
    fit.push_back(i);
  }
  std::sort(chimes.begin(), chimes.end(), [](const Edge& a, const Edge& b) {
    return std::tie(a.value, a.type, a.candidate) <
           std::tie(b.value, b.type, b.candidate);
  });

  const std::optional<Interval> intersection = Intersect(chimes, fit.size());
  if (!intersection.has_value()) return result;  // no majority clique
  result.low = intersection->low;
  result.high = intersection->high;

  // Truechimers: correctness interval intersects [low, high]. This is wider
  // than "offset inside [low, high]": up to f candidates with their offset
  // outside still count (§11.2.1).
  std::vector<size_t> survivors;
  for (size_t i : fit) {
    if (candidates[i].offset + lambda[i] < result.low ||
        candidates[i].offset - lambda[i] > result.high) {
      continue;
    }
    survivors.push_back(i);
    result.marks[i] = SelectionMark::kCandidate;
  }
  if (survivors.empty() || survivors.size() < options.min_sane) return result;

  // §11.2.2 step 2: rank by merit factor stratum * MAXDIST + lambda; ties by
  // input order.
  auto merit = [&](size_t i) {
    return kMaxDist * static_cast<int64_t>(candidates[i].stratum) + lambda[i];
  };
  std::sort(survivors.begin(), survivors.end(), [&](size_t a, size_t b) {
    const absl::Duration ma = merit(a);
    const absl::Duration mb = merit(b);
    return ma != mb ? ma < mb : a < b;
  });

  // §11.2.2 steps 3-6: drop the survivor with the largest selection jitter
  // while that improves on the best peer jitter. Never below one survivor,
  // whatever min_survivors says.
  const size_t min_survivors = std::max<size_t>(options.min_survivors, 1);
  while (survivors.size() > min_survivors) {
    double min_peer_jitter_ns = Ns(candidates[survivors[0]].jitter);
    double max_selection_jitter_ns = -1;
    size_t worst = 0;  // position in `survivors`
    for (size_t k = 0; k < survivors.size(); ++k) {
      min_peer_jitter_ns =
          std::min(min_peer_jitter_ns, Ns(candidates[survivors[k]].jitter));
      const double s = SelectionJitterNs(candidates, survivors, survivors[k]);
      // >=: on a tie the lower-ranked survivor goes.
      if (s >= max_selection_jitter_ns) {
        max_selection_jitter_ns = s;
        worst = k;
      }
    }
    // The RFC stops on psi_max < psi_min; stopping on equality too avoids
    // dropping a survivor that cannot lower the jitter floor either.
    if (max_selection_jitter_ns <= min_peer_jitter_ns) break;
    result.marks[survivors[worst]] = SelectionMark::kOutlier;
    survivors.erase(survivors.begin() + static_cast<std::ptrdiff_t>(worst));
  }

  // §11.2.2 step 6A: the first survivor is the system peer, unless one is
  // preferred.
  size_t peer = survivors[0];
  for (size_t i : survivors) {
    if (candidates[i].prefer) {
      peer = i;
      break;
    }
  }

  // §11.2.3 / A.5.5.5 clock_combine: weights 1/lambda, normalised by the
  // smallest lambda so they lie in (0, 1] (the scale cancels). Offsets are
  // taken relative to the system peer, which keeps the sums small and makes the
  // selection jitter the weighted RMS distance from it.
  absl::Duration min_lambda = lambda[survivors[0]];
  for (size_t i : survivors) min_lambda = std::min(min_lambda, lambda[i]);
  double weight_sum = 0;
  double offset_sum_ns = 0;
  double square_sum_ns2 = 0;
  double frequency_sum_ppm = 0;
  for (size_t i : survivors) {
    const double w = absl::FDivDuration(min_lambda, lambda[i]);
    const double d = Ns(candidates[i].offset - candidates[peer].offset);
    weight_sum += w;
    offset_sum_ns += w * d;
    square_sum_ns2 += w * d * d;
    frequency_sum_ppm += w * candidates[i].frequency_ppm;
  }
  const double selection_jitter_ns = std::sqrt(square_sum_ns2 / weight_sum);
  const double peer_jitter_ns = Ns(candidates[peer].jitter);

  for (size_t i : survivors) result.marks[i] = SelectionMark::kCandidate;
  result.marks[peer] = SelectionMark::kSystemPeer;
  result.ok = true;
  result.system_peer = peer;
  result.offset =
      candidates[peer].offset + absl::Nanoseconds(offset_sum_ns / weight_sum);
  result.jitter =
      absl::Nanoseconds(std::sqrt(selection_jitter_ns * selection_jitter_ns +
                                  peer_jitter_ns * peer_jitter_ns));
  result.frequency_ppm = frequency_sum_ppm / weight_sum;
  return result;
}

}  // namespace ntpfleet::ntp
