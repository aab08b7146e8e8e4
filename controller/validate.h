// Bounds on everything an agent sends the controller (issue #10): a Hello, a
// SyncStatus or a ResyncResult is checked here before the Registry keeps it or
// anything shows it to a person. Every string has a length limit, every
// repeated field a count limit, every Timestamp/Duration protobuf's valid
// range, every enum a known value and every number a sane range, so one
// misbehaving or hostile agent can neither blow up the controller's memory nor
// put garbage into the fleet that everyone reads.
//
// Pure functions, no state. Each returns OK or InvalidArgument whose message
// names the field and the limit, e.g.
//   "Hello.labels: 70 labels, at most 64".
#ifndef NTPFLEET_CONTROLLER_VALIDATE_H_
#define NTPFLEET_CONTROLLER_VALIDATE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/labels.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::controller {

// Hello.
// Labels: kMaxLabels, kMaxLabelKeyBytes, kMaxLabelValueBytes in
// common/labels.h (the agent's parser applies the same rule).
inline constexpr int kMaxAddresses = 32;
inline constexpr size_t kMaxAddressBytes = 64;       // printable ASCII
inline constexpr size_t kMaxAgentVersionBytes = 64;  // printable ASCII
inline constexpr size_t kMaxConfigDigestBytes = 64;  // printable ASCII
inline constexpr size_t kMaxInstanceIdBytes = 64;    // printable ASCII
// Hello.report_interval must be set and within these (inclusive). The upper
// bound is the agent's own (common/config/parser.cc: report_interval from
// 100ms to 24h), so every agent configuration the agent accepts is accepted
// here; with stale_intervals 3 a silent node is STALE within 72 h at most.
inline constexpr absl::Duration kMinReportInterval = absl::Milliseconds(100);
// PeerStatus.counters: entries, and the bytes of each name.
inline constexpr int kMaxPeerCounters = 32;
inline constexpr size_t kMaxPeerCounterNameBytes = 32;
inline constexpr absl::Duration kMaxReportInterval = absl::Hours(1);

// SyncStatus.
inline constexpr double kMaxAbsFrequencyPpm = 1e6;  // |frequency_ppm|
inline constexpr uint32_t kMaxStratum = 16;
inline constexpr size_t kMaxRefidBytes = 64;
inline constexpr size_t kMaxSystemPeerBytes = 64;
inline constexpr size_t kMaxStatusReasonBytes = 512;
inline constexpr int kMaxPeers = 64;
// PeerStatus.
inline constexpr size_t kMaxPeerRemoteBytes = 253;
inline constexpr size_t kMaxPeerAddressBytes = 64;
inline constexpr size_t kMaxPeerRefidBytes = 64;
inline constexpr size_t kMaxUnusableReasonBytes = 256;
inline constexpr uint32_t kMaxReach = 255;  // an 8-bit shift register

// ResyncResult.
inline constexpr size_t kMaxRequestIdBytes = 64;
inline constexpr size_t kMaxResyncErrorBytes = 1024;

// Whether `hello` is within the limits above: node_name IsValidNodeName
// (common/node_name.h); labels, addresses, agent_version, config_digest,
// instance_id bounded and printable; role a known Role; report_interval set,
// a valid Duration, within [kMinReportInterval, kMaxReportInterval].
absl::Status ValidateHello(const v1::Hello& hello);

// Whether `status` is within the limits above: every Timestamp and Duration
// valid (its own and every peer's), frequency_ppm finite and within
// ±kMaxAbsFrequencyPpm, strata <= 16, enums known, strings and peer count
// bounded, reach <= 255.
absl::Status ValidateStatus(const v1::SyncStatus& status);

// Whether `result` is within the limits above: request_id and error bounded,
// outcome a known ResyncOutcome, offsets valid Durations.
absl::Status ValidateResyncResult(const v1::ResyncResult& result);

// Protobuf's own range for the well-known types
// (google/protobuf/timestamp.proto and duration.proto): a Timestamp's seconds
// in [0001-01-01, 9999-12-31]
// (-62135596800 .. 253402300799) with nanos in [0, 999999999]; a Duration's
// |seconds| <= 315576000000 (10000 years), |nanos| <= 999999999, and seconds
// and nanos not of opposite signs. `field` names the field in the message.
absl::Status ValidateTimestamp(const google::protobuf::Timestamp& t,
                               absl::string_view field);
absl::Status ValidateDuration(const google::protobuf::Duration& d,
                              absl::string_view field);

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_VALIDATE_H_
