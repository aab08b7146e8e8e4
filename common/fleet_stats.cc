#include "common/fleet_stats.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "common/proto_time.h"

namespace ntpfleet {

bool CountsInSkew(const v1::SyncStatus& status) {
  switch (status.state()) {
    case v1::SYNC_STATE_SYNCHRONISED:
    case v1::SYNC_STATE_SYNCING:
    case v1::SYNC_STATE_LOCAL_CLOCK:
      return true;
    default:
      return false;
  }
}

void ComputeFleetStats(absl::Duration threshold, v1::Fleet* fleet) {
  SetDuration(threshold, fleet->mutable_threshold());
  fleet->clear_connected_count();
  fleet->clear_stale_count();
  fleet->clear_flagged_count();
  std::vector<std::pair<v1::Node*, absl::Duration>> counted;  // node, offset
  absl::Duration max_error_bound = absl::ZeroDuration();
  // The two largest error bounds, for fleet_bound; bounded nodes only.
  absl::Duration top[2] = {-absl::InfiniteDuration(),
                           -absl::InfiniteDuration()};
  int bounded = 0;
  fleet->clear_fleet_bound();
  for (v1::Node& node : *fleet->mutable_nodes()) {
    node.clear_deviation();
    node.clear_flagged();
    if (node.connection() == v1::CONNECTION_STATE_STALE) {
      fleet->set_stale_count(fleet->stale_count() + 1);
    } else if (node.connection() == v1::CONNECTION_STATE_CONNECTED) {
      fleet->set_connected_count(fleet->connected_count() + 1);
      if (node.has_status() && CountsInSkew(node.status())) {
        counted.emplace_back(&node, FromProto(node.status().offset()));
        max_error_bound =
            std::max(max_error_bound, FromProto(node.status().error_bound()));
        if (node.status().has_error_bound()) {
          const absl::Duration b = FromProto(node.status().error_bound());
          ++bounded;
          if (b > top[0]) {
            top[1] = top[0];
            top[0] = b;
          } else if (b > top[1]) {
            top[1] = b;
          }
        }
      }
    }
  }

  if (counted.empty()) {
    SetDuration(absl::ZeroDuration(), fleet->mutable_skew());
    SetDuration(absl::ZeroDuration(), fleet->mutable_max_error_bound());
    return;
  }

  std::vector<absl::Duration> offsets;
  offsets.reserve(counted.size());
  for (const auto& c : counted) offsets.push_back(c.second);
  std::sort(offsets.begin(), offsets.end());
  const size_t n = offsets.size();
  const absl::Duration median =
      n % 2 == 1 ? offsets[n / 2] : (offsets[n / 2 - 1] + offsets[n / 2]) / 2;
  SetDuration(offsets.back() - offsets.front(), fleet->mutable_skew());
  SetDuration(max_error_bound, fleet->mutable_max_error_bound());
  // Any two counted nodes are each within their bound of the reference, so
  // within the sum of the two largest bounds of each other.
  if (bounded >= 2) SetDuration(top[0] + top[1], fleet->mutable_fleet_bound());

  for (const auto& [node, offset] : counted) {
    const absl::Duration deviation = offset - median;
    SetDuration(deviation, node->mutable_deviation());
    // Both tests, because they catch different failures. |offset| is the
    // distance to the fleet's reference (the designated server): it catches a
    // node that is wrong even when the rest of the fleet is wrong the same way
    // (the median moved with it). |deviation| is the distance to the rest of
    // the fleet: it catches a node that disagrees with its peers even while
    // its own offset is still inside the threshold (the median sits near the
    // other side of it) — and clock agreement between nodes is what
    // distributed applications rely on.
    const bool flagged = absl::AbsDuration(deviation) > threshold ||
                         absl::AbsDuration(offset) > threshold;
    node->set_flagged(flagged);
    if (flagged) fleet->set_flagged_count(fleet->flagged_count() + 1);
  }
}

}  // namespace ntpfleet
