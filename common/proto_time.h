// google.protobuf.Duration/Timestamp <-> absl::Duration/absl::Time, for every
// piece that speaks the ntpfleet.v1 API. Reading saturates (absl arithmetic),
// so a malformed message cannot overflow; writing an infinite duration gives
// protobuf's largest (about 10 000 years).
#ifndef NTPFLEET_COMMON_PROTO_TIME_H_
#define NTPFLEET_COMMON_PROTO_TIME_H_

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include "absl/time/time.h"

namespace ntpfleet {

void SetDuration(absl::Duration d, google::protobuf::Duration* out);
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);
absl::Duration FromProto(const google::protobuf::Duration& d);
absl::Time FromProto(const google::protobuf::Timestamp& t);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_PROTO_TIME_H_
