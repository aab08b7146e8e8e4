// The controller's crosscheck state (docs/CROSSCHECK.md): the probe mesh it
// assigned, the latest probe result of every edge, the counts of what it
// dropped, and the latest solution. The maths is controller/crosscheck.h;
// this holds its inputs and outputs between agents' streams (Accept), the
// housekeeper (UpdateMesh) and the solver's thread (Solve).
//
// No gRPC, no threads of its own; time is passed in (the controller's wall
// clock; a step back counts as no time passing).
//
//   CrosscheckHub hub(options);
//   for (auto& [node, assignment] : hub.UpdateMesh(eligible, now)) send...
//   hub.Accept("node-a", report, now);          // each ProbeReport
//   if (hub.SolveDue(now)) hub.Solve(nodes, now);  // off every other lock
//   std::shared_ptr<const crosscheck::Solution> s = hub.Latest();
//
// Thread-safety: thread-safe. Accept and UpdateMesh hold the hub's lock for a
// few map operations only; Solve copies the edges under it and solves
// outside it, so a report never waits for a solve.
#ifndef NTPFLEET_CONTROLLER_CROSSCHECK_HUB_H_
#define NTPFLEET_CONTROLLER_CROSSCHECK_HUB_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/crosscheck.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::controller {

struct CrosscheckOptions {
  // Targets per node (--crosscheck-probes); 0: the crosscheck is off (no
  // assignment is ever sent, nothing is solved).
  int probes = 3;
  // One probe per target per interval (--crosscheck-interval, >= 64 s).
  absl::Duration interval = absl::Seconds(64);
  // The mesh is recomputed at most once per this.
  absl::Duration mesh_debounce = absl::Seconds(30);
  // A solve at most once per this, and only when something changed (or once
  // per interval, so that old edges fall out and new reports are compared).
  absl::Duration solve_interval = absl::Seconds(5);
  uint64_t seed = 1;
};

// The least --crosscheck-interval: "at most one probe per node pair per 64 s".
inline constexpr absl::Duration kMinCrosscheckInterval = absl::Seconds(64);
// An agent sends at most this many results per report (ProbeReport).
inline constexpr int kMaxProbeResults = 16;
// Edges whose measurement has not changed for this many intervals fall out.
inline constexpr int kEdgeLifetimeIntervals = 3;

// Why a probe report or result was dropped (/metrics label `reason`).
enum class ProbeDrop {
  kTooManyResults,  // the whole report: more than kMaxProbeResults
  kUnassigned,      // a result for a target not assigned to that node
  kOffsetRange,     // |offset| beyond 1e6 s
  kDelayRange,      // delay missing, < 0 or > 10 s
  kMalformed,       // over-long strings, invalid protobuf time
  kCount,
};
const char* ProbeDropLabel(ProbeDrop reason);

class CrosscheckHub {
 public:
  explicit CrosscheckHub(CrosscheckOptions options);

  const CrosscheckOptions& options() const { return options_; }
  bool enabled() const { return options_.probes > 0; }

  // The eligible nodes now (connected, serving NTP, a probeable address).
  // When they differ from the last mesh's and the last recompute was at
  // least mesh_debounce ago, recomputes the mesh and returns the assignment
  // of every node whose target list changed (an empty one: stop probing);
  // otherwise nothing. Edges the new mesh no longer has are dropped.
  std::vector<std::pair<std::string, v1::ProbeAssignment>> UpdateMesh(
      std::vector<crosscheck::MeshNode> eligible, absl::Time now);

  // What `node` probes now; nullopt when it is not in the mesh.
  std::optional<v1::ProbeAssignment> AssignmentFor(
      const std::string& node) const;

  // A ProbeReport from `node`'s stream. InvalidArgument when the whole
  // report was dropped (too many results); otherwise OK, with each result
  // kept (the edge's latest), skipped (no measurement: error set) or dropped
  // and counted.
  absl::Status Accept(const std::string& node, const v1::ProbeReport& report,
                      absl::Time now);

  // When `node` entered `state`, as this hub has seen it (the controller's
  // clock at the first call that saw the state; calls come every second):
  // crosscheck::NodeInput.state_since. The first sighting counts as the
  // start, which errs on the side of leaving edges out.
  absl::Time StateSince(const std::string& node, v1::SyncState state,
                        absl::Time now);
  // Forgets the states of every node not in `nodes` (forgotten names).
  void ForgetStatesExcept(const absl::flat_hash_set<std::string>& nodes);

  // Whether a solve is due: crosscheck on, at least solve_interval since the
  // last, and new data since (or an interval since the last).
  bool SolveDue(absl::Time now) const;
  // Solves with the edges measured within kEdgeLifetimeIntervals x interval
  // (older ones are forgotten) and `nodes` (their reports), and makes the
  // solution the latest. Call from one thread at a time.
  void Solve(std::vector<crosscheck::NodeInput> nodes, absl::Time now);

  // The latest solution; null before the first.
  std::shared_ptr<const crosscheck::Solution> Latest() const;
  // Bumped by each solve.
  uint64_t version() const;

  std::array<uint64_t, static_cast<size_t>(ProbeDrop::kCount)> drops() const;
  size_t edge_count() const;

 private:
  struct StoredEdge {
    crosscheck::Edge edge;
    absl::Time fresh_at;  // controller's clock when this measurement arrived
  };
  void Drop(ProbeDrop reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++drops_[static_cast<size_t>(reason)];
  }

  const CrosscheckOptions options_;
  mutable absl::Mutex mu_;
  std::vector<crosscheck::MeshNode> eligible_ ABSL_GUARDED_BY(mu_);
  crosscheck::Mesh mesh_ ABSL_GUARDED_BY(mu_);
  absl::Time mesh_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // (prober, target) -> its latest measurement.
  absl::flat_hash_map<std::pair<std::string, std::string>, StoredEdge> edges_
      ABSL_GUARDED_BY(mu_);
  // node -> (its sync state, the controller's clock when first seen in it).
  absl::flat_hash_map<std::string, std::pair<v1::SyncState, absl::Time>> states_
      ABSL_GUARDED_BY(mu_);
  bool new_data_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time solved_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::shared_ptr<const crosscheck::Solution> latest_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint64_t, static_cast<size_t>(ProbeDrop::kCount)> drops_
      ABSL_GUARDED_BY(mu_){};
};

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_CROSSCHECK_HUB_H_
