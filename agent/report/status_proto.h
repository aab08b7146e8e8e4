// The engine's status as the ntpfleet.v1 messages the controller, the local
// control socket and ntpfleetctl share.
#ifndef NTPFLEET_AGENT_REPORT_STATUS_PROTO_H_
#define NTPFLEET_AGENT_REPORT_STATUS_PROTO_H_

#include "absl/time/time.h"
#include "agent/ntp/engine.h"
#include "common/proto_time.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::report {

// `sampled_at` is the node's clock when the status was taken.
v1::SyncStatus ToProto(const ntp::EngineStatus& status, absl::Time sampled_at);

// The time conversions, where code that speaks the API already looks for them.
using ::ntpfleet::FromProto;
using ::ntpfleet::SetDuration;
using ::ntpfleet::SetTimestamp;

}  // namespace ntpfleet::report

#endif  // NTPFLEET_AGENT_REPORT_STATUS_PROTO_H_
