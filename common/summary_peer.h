// Which of a node's peer rows a one-line summary shows — the same row in the
// controller's summary fleets (GetFleetRequest.summary) and in ntpfleetctl's
// status table.
#ifndef NTPFLEET_COMMON_SUMMARY_PEER_H_
#define NTPFLEET_COMMON_SUMMARY_PEER_H_

#include "proto/ntpfleet.pb.h"

namespace ntpfleet {

// The system peer (by SyncStatus.system_peer, else by its '*' mark), else the
// first row; null without rows. Points into `status`.
const v1::PeerStatus* SummaryPeer(const v1::SyncStatus& status);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_SUMMARY_PEER_H_
