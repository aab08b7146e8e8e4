// `ntpfleetctl crosscheck [--edges] [--output table|json]`: the mesh's
// measurement of every node's clock beside what the node reports
// (FleetService.Crosscheck; ctl/render_crosscheck.h; docs/CROSSCHECK.md).
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ctl/commands.h"
#include "ctl/fleet_client.h"
#include "ctl/render_crosscheck.h"
#include "ctl/render_fleet.h"

namespace ntpfleet::ctl {

const char kCrosscheckHelp[] =
    R"(ntpfleetctl crosscheck [--edges] [--output table|json] [--controller A[,B...]]

The fleet checks itself (docs/CROSSCHECK.md). The controller gives every node a few
other nodes to measure (--crosscheck-probes K, 3 by default; in a fleet of more than
K+1 nodes each node is measured by at least K others). Each agent asks those nodes'
NTP servers for the time once per --crosscheck-interval (64 s by default, never more
often), as it measures an upstream but never using the answer for its own clock, and
reports what it measured. The controller solves the probe graph (weighted least squares, each probe weighted by
its round-trip delay) for every node's clock relative to the reference (the fleet's
server node), and compares that with the offset the node reports itself.

What it shows:
  the header     when solved; the reference; the probe load (computed from packet
                 sizes: K exchanges of 2 x 90 bytes per node per interval); the
                 measured pairwise skew |Ci - Cj| over every pair of measured nodes
                 (p50, p99, max); the closure RMS (how far the loops of the probe
                 graph fail to close: large means a probe or path is asymmetric)
  one row each   REPORTED (what the node says: reference minus local), MEASURED
                 (what the mesh says of its clock), ±UNCERT (1 sigma of MEASURED),
                 DISAGREE (reported minus measured), BOUND (the node's own error
                 bound), PROBED-BY (how many nodes measured it), VERDICT
  --edges        every measured edge: FROM measured TO's clock at OFFSET = C(to) -
                 C(from), the round-trip DELAY, and its RESIDUAL in the solution

A FLAGGED node: |DISAGREE| > BOUND + 3 x UNCERT. Its report and the other nodes'
measurement of its clock cannot both be right: a lying or buggy agent, an
asymmetric path to its upstream, or a clock someone moved behind its back. It does
NOT say which of the two is wrong, nor anything about UTC: the mesh measures clocks
relative to the reference, and a whole fleet following a wrong server is not
flagged. Flagged nodes are also marked CROSSCHECK in `ntpfleetctl status`, fail its
health check (rule `crosscheck`, --allow crosscheck tolerates it), and are in
/metrics (ntpfleet_node_crosscheck_flagged) and the alert NtpfleetCrosscheckDisagrees.

Several controllers (--controller A,B): each is asked; the first (in that order)
that has a solve is shown, and the header says which. A controller older than the
crosscheck answers UNIMPLEMENTED: it is named and skipped.

Exit codes: 0 no node flagged (also: no solve yet), 1 error (no controller answered,
or none has the crosscheck), 2 usage, 3 a node is flagged.
)";

int RunCrosscheck(const CommonOptions& o, bool edges) {
  absl::StatusOr<std::unique_ptr<FleetClient>> client = ConnectFleet(o);
  if (!client.ok()) return PrintError(client.status());
  CrosscheckPick pick = (*client)->Crosscheck(absl::Seconds(10));
  const bool several = (*client)->several();
  if (several && !absl::IsUnimplemented(pick.status)) {
    for (const std::string& old : pick.without_rpc) {
      std::fprintf(stderr,
                   "ntpfleetctl: controller %s has no crosscheck "
                   "(UNIMPLEMENTED: older than the mesh); skipped\n",
                   old.c_str());
    }
  }
  if (!pick.status.ok()) {
    if (absl::IsUnimplemented(pick.status)) return PrintError(pick.status);
    return ControllerError(o.controller, pick.status);
  }
  if (o.json) {
    absl::StatusOr<std::string> json = ToJson(pick.response);
    if (!json.ok()) return PrintError(json.status());
    if (several) {
      // stdout stays one JSON document; which controller goes to stderr.
      std::fprintf(stderr, "ntpfleetctl: crosscheck from controller %s\n",
                   pick.address.c_str());
    }
    std::fputs(json->c_str(), stdout);
  } else {
    CrosscheckRenderOptions r;
    r.now = absl::Now();
    r.color = o.color;
    r.edges = edges;
    if (several) r.controller = pick.address;
    std::fputs(RenderCrosscheck(pick.response, r).c_str(), stdout);
  }
  return AnyCrosscheckFlagged(pick.response) ? 3 : 0;
}

}  // namespace ntpfleet::ctl
