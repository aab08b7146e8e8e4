// `ntpfleetctl drift`: configuration drift, from the config digest each agent
// reports in its Hello (SHA-256 of its effective configuration, docs/AGENT.md).
//
// Nodes are put in cohorts — by role (client, server), or with --by-label K by
// their value of label K ("rack=a1"; nodes without K are the cohort "K
// unset") — and within a cohort the most common digest is the reference. The
// odd ones out are the nodes of a cohort whose digest is not its reference.
// When two or more digests tie for most common, the cohort has no reference
// and every node of it is an odd one out (which configuration is right cannot
// be told). A cohort of one node has no odd one out. Nodes are compared as
// given (the caller filters: `drift --state connected` leaves out the last
// known configuration of nodes that are gone).
//
// The digest covers the whole effective configuration, `node_name` and
// `label` lines included: nodes that set node_name in their configuration
// (rather than --node-name or the host name) have digests of their own, and
// all of them are odd ones out.
//
//   DriftReport r = FindDrift(SelectNodes(fleet, filter, SortKey::kName), "");
//   std::cout << *RenderDrift(r, OutputFormat::kTable, opts);
//   return r.drift() ? 3 : 0;
//
// Thread safety: pure functions of their arguments; safe to call concurrently.
#ifndef NTPFLEET_CTL_FLEET_DRIFT_H_
#define NTPFLEET_CTL_FLEET_DRIFT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ctl/fleet_view.h"
#include "ctl/render_fleet.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {

struct DigestGroup {
  std::string digest;                  // "" when the agent sent none
  std::vector<const v1::Node*> nodes;  // by name
};

struct Cohort {
  std::string name;                  // "client", "rack=a1", "rack unset"
  std::vector<DigestGroup> digests;  // biggest first, then by digest
  bool has_reference = false;        // false: the top digests tie
  size_t size = 0;                   // nodes in the cohort
};

struct OddNode {
  const v1::Node* node;
  std::string cohort;
  std::string reference;  // the cohort's most common digest; "" if none
  size_t reference_nodes = 0;
  size_t cohort_nodes = 0;
};

struct DriftReport {
  std::string by;                    // "role" or "label K"
  size_t nodes = 0;                  // nodes compared
  std::vector<DigestGroup> digests;  // fleet-wide, biggest first
  std::vector<Cohort> cohorts;       // by name
  std::vector<OddNode> odd;          // by cohort, then name
  bool drift() const { return !odd.empty(); }
};

// `by_label` empty: cohorts by role.
DriftReport FindDrift(const std::vector<const v1::Node*>& nodes,
                      const std::string& by_label);

// table/wide: "N configuration digests among M nodes, by role", the digests
// (DIGEST — kShortDigest hex digits, wide: all —, NODES, COHORTS with counts,
// the first node names), then "no drift ..." or the odd ones out (NODE,
// COHORT, DIGEST, REFERENCE "digest (n of m)" or "none: a tie"). csv: one line
// per node: node,cohort,config_digest,reference_digest,odd. json: {"by",
// "nodes", "digests": [{"config_digest", "nodes": [names]}], "odd_ones_out":
// [{"node", "cohort", "config_digest", "reference_digest"}]}.
absl::StatusOr<std::string> RenderDrift(const DriftReport& report,
                                        OutputFormat output,
                                        const RenderOptions& opts);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_FLEET_DRIFT_H_
