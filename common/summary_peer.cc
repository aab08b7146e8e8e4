#include "common/summary_peer.h"

namespace ntpfleet {

const v1::PeerStatus* SummaryPeer(const v1::SyncStatus& status) {
  if (!status.system_peer().empty()) {
    for (const v1::PeerStatus& p : status.peers()) {
      if (p.remote() == status.system_peer()) return &p;
    }
  }
  for (const v1::PeerStatus& p : status.peers()) {
    if (p.mark() == v1::SELECTION_MARK_SYSTEM_PEER) return &p;
  }
  return status.peers().empty() ? nullptr : &status.peers(0);
}

}  // namespace ntpfleet
