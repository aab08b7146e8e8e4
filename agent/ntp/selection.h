// System-level source selection (RFC 5905 §11.2): which sources tell the truth,
// which of those to combine, and the combined estimate. Pure functions over
// per-source summaries; no state.
//
//   1. Intersection (§11.2.1, Marzullo's algorithm as modified by RFC 5905):
//   each candidate's
//      correctness interval is [offset - root distance, offset + root
//      distance]. For f = 0, 1, ... while f < n/2, look for the interval [low,
//      high] where at least n - f correctness intervals overlap (low <= high).
//      A candidate whose interval does not intersect [low, high] is a
//      falseticker. No such f -> no majority, no truechimers ("no server
//      suitable"). Unlike RFC 5905's appendix, offsets (midpoints) outside
//      [low, high] do not count against f: that rule refused honest majorities
//      whose intervals all contain the true time.
//   2. Clustering (§11.2.2): the truechimers are ranked by the merit factor
//      stratum * MAXDIST (1 s) + root distance. While more than `min_survivors`
//      remain and the largest selection jitter (RMS of a survivor's offset
//      differences from the other survivors) exceeds the smallest peer jitter,
//      the survivor with the largest selection jitter is dropped (on a tie, the
//      one ranked lower). Dropped ones are outliers.
//   3. Combining (§11.2.3): survivors' offsets (and frequency estimates)
//   averaged with weights
//      1 / root distance. The system peer is the first survivor in merit order
//      (lowest stratum, then smallest root distance; ties by input order),
//      except that a `prefer` candidate among the survivors wins. No clock-hop
//      hysteresis: this function has no memory of the last peer.
//
// Usage:
//   SelectionResult r = SelectSources(candidates);
//   if (r.ok) discipline.Update(r.offset, r.jitter);  //
//   candidates[r.system_peer] lends its
//                                                      // stratum, refid, root
//                                                      delay, ...
//
// Deterministic for a given input; thread-compatible (no shared state).
#ifndef NTPFLEET_AGENT_NTP_SELECTION_H_
#define NTPFLEET_AGENT_NTP_SELECTION_H_

#include <cstddef>
#include <vector>

#include "absl/time/time.h"

namespace ntpfleet::ntp {

// One usable source's current estimate, as the selection sees it. The caller
// has already dropped unfit sources (§11.2, accept()); a candidate whose
// offset, root distance or jitter is infinite is treated as unfit too: marked
// kFalseticker and not counted in the majority.
struct Candidate {
  int id = 0;             // caller's identifier, returned in the result
  absl::Duration offset;  // reference minus local, from the source's filter
  absl::Duration
      root_distance;  // lambda (§11.2): root delay/2 + root dispersion + own
                      // terms; values below 1 ns are treated as 1 ns (a
                      // zero-width interval could never give low < high, and
                      // its weight would be 1/0)
  absl::Duration jitter;  // the source's peer jitter (§10)
  double frequency_ppm =
      0;  // the source's frequency estimate, positive = local runs fast
  int stratum = 16;
  bool prefer = false;
};

enum class SelectionMark {
  kFalseticker,  // 'x' outside the intersection
  kOutlier,      // '-' dropped by clustering
  kCandidate,    // '+' combined
  kSystemPeer,   // '*' combined, and the system peer
};

struct SelectionResult {
  // One mark per input candidate, in input order.
  std::vector<SelectionMark> marks;
  // False when no majority of candidates agrees, or fewer than `min_sane`
  // truechimers: nothing may steer the clock. Then no mark is kSystemPeer and
  // offset/jitter/frequency are zero. With no majority every mark is
  // kFalseticker; with too few truechimers, those few are kCandidate (nothing
  // was combined) and the others kFalseticker.
  bool ok = false;
  size_t system_peer = 0;  // index into the input, valid when ok
  absl::Duration offset;   // combined offset of the survivors (§11.2.3)
  // Combined system jitter: sqrt(selection jitter² + peer jitter²) (§11.2.3),
  // where the selection jitter is the survivors' 1/root-distance-weighted RMS
  // offset difference from the system peer (appendix A.5.5.5 clock_combine) and
  // the peer jitter is the system peer's.
  absl::Duration jitter;
  double frequency_ppm = 0;  // combined frequency estimate
  // The intersection interval found (§11.2.1), for diagnostics; zero when there
  // was no majority.
  absl::Duration low;
  absl::Duration high;
};

struct SelectionOptions {
  size_t min_survivors = 3;  // NMIN/CLOCK_MINCLOCK
  size_t min_sane = 1;  // `tos minsane`: fewer truechimers than this -> not ok
};

SelectionResult SelectSources(const std::vector<Candidate>& candidates,
                              const SelectionOptions& options = {});

}  // namespace ntpfleet::ntp

#endif  // NTPFLEET_AGENT_NTP_SELECTION_H_
