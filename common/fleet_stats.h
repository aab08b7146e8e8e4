// The fleet-wide values of a v1::Fleet, computed from its nodes: the one
// definition of skew, max error bound, deviation, flags and counts, shared by
// the controller (controller/registry.cc, over its own nodes) and ntpfleetctl
// (ctl/fleet_client.cc, over the nodes merged from several controllers), so
// that the two can never disagree on what "skew" means.
//
//   v1::Fleet fleet;                 // nodes with connection and status set
//   ComputeFleetStats(absl::Milliseconds(1), &fleet);
//   // fleet.skew(), max_error_bound(), threshold(), the counts, and each
//   // node's deviation() and flagged() are now set from the nodes.
//
// The rules:
// - A node is "counted in skew" when it is CONNECTED (not STALE: its offset is
//   old), has a status, and that status is SYNCHRONISED, SYNCING or
//   LOCAL_CLOCK (an unsynchronised or holdover node's offset says nothing about
//   where its clock is now).
// - skew = max - min of the counted nodes' offsets; max_error_bound = the
//   largest error bound among them; both zero when none is counted.
//   fleet_bound = the two largest error bounds among them added (the most two
//   of them can disagree if their bounds hold); unset with fewer than two
//   counted nodes with a bound.
// - Exactly the counted nodes get a deviation (offset - the median of the
//   counted offsets; the mean of the middle two for an even count) and a
//   flag: |deviation| > threshold or |offset| > threshold. Every other node's
//   deviation is cleared and its flag is false.
// - connected_count counts CONNECTED nodes, stale_count STALE ones,
//   flagged_count the flagged ones.
// Nothing else of the fleet (as_of, names, order of nodes) is touched.
//
// Thread safety: a pure function of its arguments.
#ifndef NTPFLEET_COMMON_FLEET_STATS_H_
#define NTPFLEET_COMMON_FLEET_STATS_H_

#include "absl/time/time.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet {

// Whether a node in `status` has an offset that describes where its clock is
// now (the sync-state part of "counted in skew").
bool CountsInSkew(const v1::SyncStatus& status);

// Sets fleet->threshold to `threshold` and recomputes skew, max_error_bound,
// the three counts and every node's deviation and flag (see above).
void ComputeFleetStats(absl::Duration threshold, v1::Fleet* fleet);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_FLEET_STATS_H_
