// The crosscheck's maths (docs/CROSSCHECK.md): which node probes which (the
// mesh), and what the probes say about every node's clock (the solver). Pure:
// no gRPC, no threads, no clocks (the time of a solve is passed in), no IO.
//
// Sign conventions (proto/ntpfleet.proto):
// - an edge i->j is node i's measurement of node j's NTP server:
//   theta_ij = C_j - C_i ("reference minus local", j being the reference);
// - a node's offset y_i = C_ref - C_i, as SyncStatus.offset; so
//   theta_ij = y_i - y_j.
//
//   std::vector<MeshNode> eligible = {{"a", "10.0.0.1:123"}, ...};
//   Mesh mesh = AssignMesh(eligible, /*probes=*/3, /*seed=*/1);
//   // mesh["a"]: the targets node a probes.
//
//   SolveInput in;  // nodes (reports) and edges (probe results)
//   Solution s = Solve(in);
//   // s.nodes[i].measured_offset, .uncertainty, .flagged; s.p99, ...
//
// Thread safety: pure functions of their arguments.
#ifndef NTPFLEET_CONTROLLER_CROSSCHECK_H_
#define NTPFLEET_CONTROLLER_CROSSCHECK_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::controller::crosscheck {

// ---------------------------------------------------------------------------
// The mesh.

// A node that can be probed: its NTP server's address ("ip:port").
struct MeshNode {
  std::string name;
  std::string address;
};

struct MeshTarget {
  std::string node;
  std::string address;
  bool operator==(const MeshTarget& o) const {
    return node == o.node && address == o.address;
  }
};

// Prober name -> its targets, sorted by target name.
using Mesh = std::map<std::string, std::vector<MeshTarget>>;

// Who probes whom among `nodes` (names unique; order does not matter), with
// `probes` (K) targets per node:
// - n <= K+1: every node probes every other;
// - otherwise the union of K cyclic orders of the nodes (position p probes
//   position p+1), order r sorting the nodes by a keyed hash of (seed, r,
//   salt, name). An order that would repeat an ordered edge of an earlier one
//   is redrawn with the next salt (at most kMeshTries times); if one still
//   repeats, the whole mesh falls back to K shifts of the first order
//   (position p probes p+1 .. p+K), which cannot repeat. Either way every node
//   probes exactly K others, is probed by exactly K others, and no ordered
//   pair appears twice.
// Deterministic for a given seed and set of names. Since each order is by a
// hash of the name, a node joining lands at one place in each order: it
// changes the targets of about K other nodes (unless a redraw is needed).
// An empty mesh for K <= 0 or fewer than two nodes.
inline constexpr int kMeshTries = 32;
Mesh AssignMesh(const std::vector<MeshNode>& nodes, int probes, uint64_t seed);

// Where node's NTP server is probed, from the gRPC peer its agent's stream
// comes from ("ipv4:10.0.0.7:5123", "ipv6:[::1]:5123") and its Hello.ntp_port:
// "10.0.0.7:123", "[::1]:123". Nullopt for any other peer (a Unix socket, a
// name) or port 0.
std::optional<std::string> ProbeAddress(absl::string_view grpc_peer,
                                        uint32_t ntp_port);

// ---------------------------------------------------------------------------
// The solver.

// One probe result (ProbeResult), in seconds.
struct Edge {
  std::string from;  // the prober
  std::string to;    // the node probed
  double theta = 0;  // C_to - C_from (ProbeResult.offset)
  double delay = 0;  // round trip of that sample, >= 0
  absl::Time measured_at = absl::InfinitePast();  // the prober's clock
  // The controller's clock when this measurement arrived (InfinitePast:
  // unknown, taken as "long ago").
  absl::Time received_at = absl::InfinitePast();
};

// How long after its measurement an agent may send a probe result (it
// coalesces ProbeReports to one per 10 s), plus scheduling slack.
inline constexpr absl::Duration kProbeReportDelay = absl::Seconds(12);

// One node: what it reports (all optional but the name).
struct NodeInput {
  std::string name;
  // SyncStatus.offset (reference minus local), when it has a fresh report.
  std::optional<double> reported;
  // SyncStatus.error_bound; nullopt: unknown (unsynchronised).
  std::optional<double> bound;
  v1::SyncState state = v1::SYNC_STATE_UNSPECIFIED;
  bool server = false;  // Hello.role == ROLE_SERVER
  // The controller's clock when the node entered `state` (InfinitePast:
  // unknown, taken as "long ago"). A probe of or by the node that arrived
  // less than kProbeReportDelay after it may have measured its clock before
  // the change (a step, the end of a slew), when the report says something
  // else: such an edge is left out until the next probe replaces it.
  absl::Time state_since = absl::InfinitePast();
};

struct SolveInput {
  std::vector<NodeInput> nodes;  // names unique
  std::vector<Edge> edges;       // from/to among `nodes` (others ignored)
  absl::Time as_of = absl::InfinitePast();
};

// An edge's sigma: half its delay, at least kMinSigma and at least the median
// edge's divided by kSigmaFloorRatio. The delay is the prober's word: an edge
// claiming a near-perfect path must not outweigh the honest ones around it
// and drag its ends where its offset says (tests/controller/crosscheck_test
// OneLyingProberCannotFrameItsTarget: with a floor of a quarter of the median
// such an edge still moved its target's neighbours beyond their bounds).
inline constexpr double kMinSigma = 1e-6;  // s
inline constexpr double kSigmaFloorRatio = 1;

// A component of the probe graph without the reference is gauged by the
// median of its nodes' (reported - measured); with fewer reports than this,
// its nodes are not judged (two nodes cannot tell which one lies).
inline constexpr size_t kMinMedianGauge = 3;

// Above this many nodes in a component, uncertainties are approximated
// (sqrt(2 / sum of w over a node's edges + 1 / the same sum of the
// reference's)) and the system is solved by
// preconditioned conjugate gradients instead of a dense Cholesky.
inline constexpr int kDenseLimit = 1000;

struct NodeResult {
  std::string name;
  // In a component of the probe graph with at least one edge, and probed by
  // another node (or the reference): the node has a NodeCrosscheck.
  bool measured = false;
  double measured_offset = 0;  // y_i, seconds, reference minus local
  double uncertainty = 0;      // 1 sigma, seconds
  std::optional<double> reported;
  std::optional<double> bound;
  v1::SyncState state = v1::SYNC_STATE_UNSPECIFIED;
  bool judged = false;
  double disagreement = 0;  // reported - measured (when reported)
  bool flagged = false;     // |disagreement| > bound + 3 uncertainty
  uint32_t probed_by = 0;   // distinct nodes with an edge into it
  std::string reason;       // why not judged, or why flagged
};

struct EdgeResult {
  Edge edge;
  double residual = 0;  // theta - (y_from - y_to)
};

struct Solution {
  absl::Time as_of = absl::InfinitePast();
  std::vector<NodeResult> nodes;  // in input order
  std::vector<EdgeResult> edges;  // the edges used, in input order
  std::string reference;          // the ROLE_SERVER node gauging, or empty
  int components = 0;             // with at least one edge
  int measured_count = 0;
  int flagged_count = 0;
  // Pairwise |y_i - y_j| over measured nodes (nearest rank); nullopt with
  // fewer than two measured nodes.
  std::optional<double> p50, p99, max;
  double closure_rms = 0;  // RMS of the edges' residuals (0 without edges)
  // Edges left out because they may predate a sync-state change of one of
  // their nodes (NodeInput.state_since).
  int edges_predating_state = 0;
};

// Only edges that arrived at least kProbeReportDelay after both of their
// nodes entered their current sync state are used, and only nodes that are
// synchronised, in holdover or serving their local clock are judged (a
// syncing node's clock is being slewed or stepped, faster than one probe per
// interval can follow). Weighted least squares per connected component of the
// probe graph:
// minimises sum_e w_e (y_from - y_to - theta_e)^2, w_e = 1 / sigma_e^2,
// sigma_e = max(delay_e / 2, 1 us, the median edge's sigma). Gauge: y = 0
// at the ROLE_SERVER node in its component (the first by name if several claim
// it); elsewhere shifted so that the median over the component's judged nodes
// (else its reporting nodes) of reported - y is zero. Uncertainty: sqrt of the
// covariance's diagonal, exact (dense) up to kDenseLimit nodes per component:
// with the server gauge the inverse of the Laplacian with the server's row and
// column removed, with the median gauge the diagonal of the Laplacian's
// pseudo-inverse (the mean-zero gauge); above it sqrt(2 / sum of w_e over
// the node's edges + 1 / that sum of the reference, when there is one).
Solution Solve(const SolveInput& input);

// The k-th smallest (1-based) of |v_i - v_j| over all pairs i < j, in
// O(n log n + n log(range)): sorted, then a binary search on the value with
// a two-pointer count. Values in integer nanoseconds so the answer is exact.
int64_t KthPairwiseDifference(std::vector<int64_t> values, uint64_t k);

// The CrosscheckResponse of `s` (without the controller's settings: interval
// and probes_per_node are the caller's).
v1::CrosscheckResponse ToProto(const Solution& s, bool with_edges = true);
// A node's NodeCrosscheck (only meaningful when r.measured).
v1::NodeCrosscheck ToProto(const NodeResult& r, absl::Time as_of);

}  // namespace ntpfleet::controller::crosscheck

#endif  // NTPFLEET_CONTROLLER_CROSSCHECK_H_
