// The engine's status as the ntpfleet.v1 messages the controller, the local
// control socket and ntpfleetctl share.
#ifndef NTPFLEET_AGENT_REPORT_STATUS_PROTO_H_
#define NTPFLEET_AGENT_REPORT_STATUS_PROTO_H_

#include "absl/time/time.h"
#include "agent/ntp/engine.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::report {

// `sampled_at` is the node's clock when the status was taken.
v1::SyncStatus ToProto(const ntp::EngineStatus& status, absl::Time sampled_at);

void SetDuration(absl::Duration d, google::protobuf::Duration* out);
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);
absl::Duration FromProto(const google::protobuf::Duration& d);
absl::Time FromProto(const google::protobuf::Timestamp& t);

}  // namespace ntpfleet::report

#endif  // NTPFLEET_AGENT_REPORT_STATUS_PROTO_H_
