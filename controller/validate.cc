// Bounds on what agents send: see validate.h.
#include "controller/validate.h"

#include <cmath>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/labels.h"
#include "common/node_name.h"
#include "common/proto_time.h"

namespace ntpfleet::controller {
namespace {

// Protobuf's limits (google/protobuf/timestamp.proto, duration.proto).
constexpr int64_t kMinTimestampSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxTimestampSeconds = 253402300799;  // 9999-12-31T23:59:59Z
constexpr int64_t kMaxDurationSeconds = 315576000000;   // 10000 years
constexpr int32_t kMaxNanos = 999999999;

// How much of an offending value a message quotes (escaped): enough to find
// it, not enough to flood a log.
constexpr size_t kQuoteBytes = 64;

std::string Quote(absl::string_view value) {
  std::string out =
      absl::StrCat("'", absl::CHexEscape(value.substr(0, kQuoteBytes)), "'");
  if (value.size() > kQuoteBytes) out += "...";
  return out;
}

bool IsPrintableAscii(char c) { return c >= 0x20 && c <= 0x7e; }

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status CheckLength(absl::string_view value, size_t max,
                         absl::string_view field) {
  if (value.size() <= max) return absl::OkStatus();
  return Invalid(field,
                 absl::StrFormat("%d bytes, at most %d", value.size(), max));
}

// At most `max` bytes, every one printable ASCII (0x20..0x7e): nothing a
// terminal or a log would render as something else.
absl::Status CheckPrintable(absl::string_view value, size_t max,
                            absl::string_view field) {
  if (absl::Status s = CheckLength(value, max, field); !s.ok()) return s;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!IsPrintableAscii(value[i])) {
      return Invalid(
          field, absl::StrFormat(
                     "byte 0x%02x at offset %d is not printable ASCII "
                     "(0x20..0x7e) in %s",
                     static_cast<unsigned char>(value[i]), i, Quote(value)));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckCount(int count, int max, absl::string_view field,
                        absl::string_view what) {
  if (count <= max) return absl::OkStatus();
  return Invalid(field, absl::StrFormat("%d %s, at most %d", count, what, max));
}

template <typename IsValidFn>
absl::Status CheckEnum(int value, IsValidFn is_valid, absl::string_view field) {
  if (is_valid(value)) return absl::OkStatus();
  return Invalid(field, absl::StrFormat("unknown value %d", value));
}

absl::Status ValidatePeer(const v1::PeerStatus& peer, absl::string_view field) {
  auto sub = [&](absl::string_view name) {
    return absl::StrCat(field, ".", name);
  };
  if (absl::Status s =
          CheckLength(peer.remote(), kMaxPeerRemoteBytes, sub("remote"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckLength(peer.address(), kMaxPeerAddressBytes, sub("address"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckLength(peer.refid(), kMaxPeerRefidBytes, sub("refid"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckLength(peer.unusable_reason(), kMaxUnusableReasonBytes,
                      sub("unusable_reason"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckCount(peer.counters_size(), kMaxPeerCounters,
                                  sub("counters"), "counters");
      !s.ok()) {
    return s;
  }
  for (const auto& [name, count] : peer.counters()) {
    if (absl::Status s =
            CheckPrintable(name, kMaxPeerCounterNameBytes, sub("counters key"));
        !s.ok()) {
      return s;
    }
  }
  if (peer.stratum() > kMaxStratum) {
    return Invalid(
        sub("stratum"),
        absl::StrFormat("%d, at most %d", peer.stratum(), kMaxStratum));
  }
  if (peer.reach() > kMaxReach) {
    return Invalid(sub("reach"),
                   absl::StrFormat("%d, at most %d", peer.reach(), kMaxReach));
  }
  if (absl::Status s =
          CheckEnum(peer.type(), v1::PeerType_IsValid, sub("type"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckEnum(peer.mark(), v1::SelectionMark_IsValid, sub("mark"));
      !s.ok()) {
    return s;
  }
  const std::pair<const google::protobuf::Duration*, const char*> durations[] =
      {{&peer.when(), "when"},     {&peer.poll(), "poll"},
       {&peer.delay(), "delay"},   {&peer.offset(), "offset"},
       {&peer.jitter(), "jitter"}, {&peer.root_distance(), "root_distance"}};
  for (const auto& [d, name] : durations) {
    if (absl::Status s = ValidateDuration(*d, sub(name)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTimestamp(const google::protobuf::Timestamp& t,
                               absl::string_view field) {
  if (t.seconds() < kMinTimestampSeconds ||
      t.seconds() > kMaxTimestampSeconds) {
    return Invalid(
        field, absl::StrFormat("seconds %d outside [%d, %d] (years 1..9999)",
                               t.seconds(), kMinTimestampSeconds,
                               kMaxTimestampSeconds));
  }
  if (t.nanos() < 0 || t.nanos() > kMaxNanos) {
    return Invalid(field, absl::StrFormat("nanos %d outside [0, %d]", t.nanos(),
                                          kMaxNanos));
  }
  return absl::OkStatus();
}

absl::Status ValidateDuration(const google::protobuf::Duration& d,
                              absl::string_view field) {
  if (d.seconds() < -kMaxDurationSeconds || d.seconds() > kMaxDurationSeconds) {
    return Invalid(
        field,
        absl::StrFormat("seconds %d outside [-%d, %d] (10000 years)",
                        d.seconds(), kMaxDurationSeconds, kMaxDurationSeconds));
  }
  if (d.nanos() < -kMaxNanos || d.nanos() > kMaxNanos) {
    return Invalid(field, absl::StrFormat("nanos %d outside [-%d, %d]",
                                          d.nanos(), kMaxNanos, kMaxNanos));
  }
  if ((d.seconds() > 0 && d.nanos() < 0) ||
      (d.seconds() < 0 && d.nanos() > 0)) {
    return Invalid(field,
                   absl::StrFormat("seconds %d and nanos %d have opposite "
                                   "signs; both must have the duration's sign",
                                   d.seconds(), d.nanos()));
  }
  return absl::OkStatus();
}

absl::Status ValidateHello(const v1::Hello& hello) {
  if (!IsValidNodeName(hello.node_name())) {
    return Invalid(
        "Hello.node_name",
        absl::StrFormat(
            "%s is not a node name: 1..%d bytes of labels of 1..63 "
            "[A-Za-z0-9_-] separated by single '.', no label starting or "
            "ending with '-'",
            Quote(hello.node_name()), kMaxNodeNameBytes));
  }
  if (absl::Status s =
          CheckCount(hello.labels_size(), kMaxLabels, "Hello.labels", "labels");
      !s.ok()) {
    return s;
  }
  for (const auto& [key, value] : hello.labels()) {
    if (absl::Status s = CheckLabel(key, value); !s.ok()) {
      return Invalid("Hello.labels", s.message());
    }
  }
  if (absl::Status s = CheckCount(hello.addresses_size(), kMaxAddresses,
                                  "Hello.addresses", "addresses");
      !s.ok()) {
    return s;
  }
  for (int i = 0; i < hello.addresses_size(); ++i) {
    if (absl::Status s =
            CheckPrintable(hello.addresses(i), kMaxAddressBytes,
                           absl::StrCat("Hello.addresses[", i, "]"));
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckPrintable(
          hello.agent_version(), kMaxAgentVersionBytes, "Hello.agent_version");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckPrintable(
          hello.config_digest(), kMaxConfigDigestBytes, "Hello.config_digest");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckPrintable(hello.instance_id(), kMaxInstanceIdBytes,
                                      "Hello.instance_id");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckEnum(hello.role(), v1::Role_IsValid, "Hello.role");
      !s.ok()) {
    return s;
  }
  if (!hello.has_report_interval()) {
    return Invalid(
        "Hello.report_interval",
        absl::StrCat("missing; it must be from ",
                     absl::FormatDuration(kMinReportInterval), " to ",
                     absl::FormatDuration(kMaxReportInterval)));
  }
  if (absl::Status s =
          ValidateDuration(hello.report_interval(), "Hello.report_interval");
      !s.ok()) {
    return s;
  }
  const absl::Duration interval = FromProto(hello.report_interval());
  if (interval < kMinReportInterval || interval > kMaxReportInterval) {
    return Invalid(
        "Hello.report_interval",
        absl::StrCat(absl::FormatDuration(interval), ", must be from ",
                     absl::FormatDuration(kMinReportInterval), " to ",
                     absl::FormatDuration(kMaxReportInterval)));
  }
  return absl::OkStatus();
}

absl::Status ValidateStatus(const v1::SyncStatus& status) {
  if (absl::Status s =
          ValidateTimestamp(status.sampled_at(), "SyncStatus.sampled_at");
      !s.ok()) {
    return s;
  }
  const std::pair<const google::protobuf::Duration*, const char*> durations[] =
      {{&status.offset(), "SyncStatus.offset"},
       {&status.delay(), "SyncStatus.delay"},
       {&status.jitter(), "SyncStatus.jitter"},
       {&status.root_delay(), "SyncStatus.root_delay"},
       {&status.root_dispersion(), "SyncStatus.root_dispersion"},
       {&status.error_bound(), "SyncStatus.error_bound"},
       {&status.poll(), "SyncStatus.poll"}};
  for (const auto& [d, name] : durations) {
    if (absl::Status s = ValidateDuration(*d, name); !s.ok()) return s;
  }
  const double ppm = status.frequency_ppm();
  if (!std::isfinite(ppm) || std::abs(ppm) > kMaxAbsFrequencyPpm) {
    return Invalid("SyncStatus.frequency_ppm",
                   absl::StrFormat("%g, must be finite and within +/-%g", ppm,
                                   kMaxAbsFrequencyPpm));
  }
  if (status.stratum() > kMaxStratum) {
    return Invalid(
        "SyncStatus.stratum",
        absl::StrFormat("%d, at most %d", status.stratum(), kMaxStratum));
  }
  if (absl::Status s =
          CheckEnum(status.state(), v1::SyncState_IsValid, "SyncStatus.state");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckEnum(status.leap(), v1::Leap_IsValid, "SyncStatus.leap");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckLength(status.refid(), kMaxRefidBytes, "SyncStatus.refid");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckLength(status.system_peer(), kMaxSystemPeerBytes,
                                   "SyncStatus.system_peer");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckLength(status.reason(), kMaxStatusReasonBytes,
                                   "SyncStatus.reason");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckCount(status.peers_size(), kMaxPeers,
                                  "SyncStatus.peers", "peers");
      !s.ok()) {
    return s;
  }
  for (int i = 0; i < status.peers_size(); ++i) {
    if (absl::Status s = ValidatePeer(
            status.peers(i), absl::StrCat("SyncStatus.peers[", i, "]"));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateResyncResult(const v1::ResyncResult& result) {
  if (absl::Status s = CheckLength(result.request_id(), kMaxRequestIdBytes,
                                   "ResyncResult.request_id");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckLength(result.error(), kMaxResyncErrorBytes,
                                   "ResyncResult.error");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckEnum(result.outcome(), v1::ResyncOutcome_IsValid,
                                 "ResyncResult.outcome");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateDuration(result.offset_before(),
                                        "ResyncResult.offset_before");
      !s.ok()) {
    return s;
  }
  return ValidateDuration(result.offset_after(), "ResyncResult.offset_after");
}

}  // namespace ntpfleet::controller
