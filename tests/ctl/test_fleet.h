// Hand-made fleets for the tests of ctl/fleet_view.h, fleet_health.h and
// fleet_drift.h: AddNode() makes a healthy node as the controller reports one
// (connected client, synchronised, counted in the skew: deviation set), and
// the setters below turn it into what a test needs, keeping Node.deviation as
// the controller sets it (only for CONNECTED nodes reporting SYNCHRONISED,
// SYNCING or LOCAL_CLOCK).
#ifndef NTPFLEET_TESTS_CTL_TEST_FLEET_H_
#define NTPFLEET_TESTS_CTL_TEST_FLEET_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl::testing {

// 2026-11-25 23:41:10 UTC.
inline const absl::Time kNow = absl::FromUnixSeconds(1'795'650'070);

inline void Recount(v1::Node* n) {
  const bool counted = n->connection() == v1::CONNECTION_STATE_CONNECTED &&
                       n->has_status() &&
                       (n->status().state() == v1::SYNC_STATE_SYNCHRONISED ||
                        n->status().state() == v1::SYNC_STATE_SYNCING ||
                        n->status().state() == v1::SYNC_STATE_LOCAL_CLOCK);
  if (!counted) {
    n->clear_deviation();
    n->set_flagged(false);
  } else if (!n->has_deviation()) {
    SetDuration(absl::ZeroDuration(), n->mutable_deviation());
  }
}

// A connected client, synchronised at +0 with a 100 µs bound, last seen 1 s
// before kNow, first seen a day before.
inline v1::Node* AddNode(v1::Fleet* fleet, absl::string_view name) {
  v1::Node* n = fleet->add_nodes();
  n->set_name(std::string(name));
  n->set_connection(v1::CONNECTION_STATE_CONNECTED);
  n->mutable_hello()->set_node_name(std::string(name));
  n->mutable_hello()->set_role(v1::ROLE_CLIENT);
  SetTimestamp(kNow - absl::Seconds(1), n->mutable_last_seen());
  SetTimestamp(kNow - absl::Hours(24), n->mutable_first_seen());
  v1::SyncStatus* s = n->mutable_status();
  s->set_state(v1::SYNC_STATE_SYNCHRONISED);
  SetDuration(absl::ZeroDuration(), s->mutable_offset());
  SetDuration(absl::Microseconds(100), s->mutable_error_bound());
  s->set_stratum(11);
  Recount(n);
  return n;
}

inline v1::Node* Offset(v1::Node* n, absl::Duration offset) {
  SetDuration(offset, n->mutable_status()->mutable_offset());
  return n;
}
inline v1::Node* Bound(v1::Node* n, absl::Duration bound) {
  SetDuration(bound, n->mutable_status()->mutable_error_bound());
  return n;
}
inline v1::Node* State(v1::Node* n, v1::SyncState state) {
  n->mutable_status()->set_state(state);
  Recount(n);
  return n;
}
inline v1::Node* Connection(v1::Node* n, v1::ConnectionState c) {
  n->set_connection(c);
  Recount(n);
  return n;
}
inline v1::Node* NoReport(v1::Node* n) {
  n->clear_status();
  Recount(n);
  return n;
}
inline v1::Node* Label(v1::Node* n, const std::string& k,
                       const std::string& v) {
  (*n->mutable_hello()->mutable_labels())[k] = v;
  return n;
}
inline v1::Node* Role(v1::Node* n, v1::Role role) {
  n->mutable_hello()->set_role(role);
  return n;
}
inline v1::Node* Digest(v1::Node* n, const std::string& digest) {
  n->mutable_hello()->set_config_digest(digest);
  return n;
}
inline v1::Node* SeenAgo(v1::Node* n, absl::Duration ago) {
  SetTimestamp(kNow - ago, n->mutable_last_seen());
  return n;
}
inline v1::Node* Flagged(v1::Node* n) {
  n->set_flagged(true);
  return n;
}

// What the mesh measured of the node (Node.crosscheck), as a controller with
// the crosscheck fills it: reported = the node's offset, disagreement =
// reported - measured, probed by 3.
inline v1::Node* Measured(v1::Node* n, absl::Duration measured,
                          absl::Duration uncertainty, bool flagged) {
  v1::NodeCrosscheck* c = n->mutable_crosscheck();
  const absl::Duration reported = FromProto(n->status().offset());
  SetDuration(measured, c->mutable_measured_offset());
  SetDuration(uncertainty, c->mutable_uncertainty());
  SetDuration(reported, c->mutable_reported_offset());
  SetDuration(reported - measured, c->mutable_disagreement());
  c->set_flagged(flagged);
  c->set_probed_by(3);
  SetTimestamp(kNow - absl::Seconds(2), c->mutable_as_of());
  return n;
}

// The fleet-wide fields as a controller fills them.
inline void SetFleetHeader(v1::Fleet* f, absl::Duration skew) {
  SetTimestamp(kNow, f->mutable_as_of());
  SetDuration(skew, f->mutable_skew());
  SetDuration(absl::Microseconds(100), f->mutable_max_error_bound());
  SetDuration(absl::Milliseconds(1), f->mutable_threshold());
  uint32_t connected = 0, stale = 0, flagged = 0;
  for (const v1::Node& n : f->nodes()) {
    connected += n.connection() == v1::CONNECTION_STATE_CONNECTED;
    stale += n.connection() == v1::CONNECTION_STATE_STALE;
    flagged += n.flagged();
  }
  f->set_connected_count(connected);
  f->set_stale_count(stale);
  f->set_flagged_count(flagged);
}

}  // namespace ntpfleet::ctl::testing

#endif  // NTPFLEET_TESTS_CTL_TEST_FLEET_H_
