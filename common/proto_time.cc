#include "common/proto_time.h"

#include <cstdint>
#include <ctime>

#include "absl/time/time.h"

namespace ntpfleet {

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  // Protobuf's Duration tops out at ~10 000 years.
  constexpr int64_t kMaxSeconds = 315576000000;
  if (d >= absl::Seconds(kMaxSeconds)) d = absl::Seconds(kMaxSeconds);
  if (d <= -absl::Seconds(kMaxSeconds)) d = -absl::Seconds(kMaxSeconds);
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const timespec ts = absl::ToTimespec(t);
  out->set_seconds(ts.tv_sec);
  out->set_nanos(static_cast<int32_t>(ts.tv_nsec));
}

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace ntpfleet
