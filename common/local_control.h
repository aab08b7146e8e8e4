// The agent's local control socket, both sides of it: the path, the framing
// (a 4-octet big-endian length, then the serialized LocalRequest or
// LocalResponse of proto/ntpfleet.proto; one request, one response per
// connection) and the client call ntpfleetctl, the agent's own --sync and the
// tests use. The agent's server side (agent/net/agent_loop) frames with the
// same functions.
#ifndef NTPFLEET_COMMON_LOCAL_CONTROL_H_
#define NTPFLEET_COMMON_LOCAL_CONTROL_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::local_control {

inline constexpr char kDefaultControlSocket[] = "/run/ntpfleet/agent.sock";

// The largest step `sim-step` moves a simulated clock by, either way: 2^31 s
// (about 68 years, 596523 h), half an NTP era. NTP computes offsets from
// differences of 64-bit timestamps, which are unambiguous only within 2^31 s
// (RFC 5905 section 6): a clock moved further could never be corrected. The
// agent refuses a larger step, and ntpfleetctl refuses it before asking.
inline constexpr int64_t kMaxSimStepSeconds = int64_t{1} << 31;

// The largest message either side accepts (octets, without the length).
inline constexpr size_t kMaxMessage = size_t{1} << 20;

// The length prefix and the serialized message.
std::string Frame(const google::protobuf::Message& message);

// The length announced by a buffer's first 4 octets, or nullopt while fewer
// than 4 have arrived. A length over kMaxMessage is the caller's to refuse.
std::optional<uint32_t> FrameLength(const std::string& buffer);

// Unavailable "no ntpfleet-agent is running here (nothing listens on PATH)"
// when there is none; PermissionDenied with the agent's message when it
// refuses the caller (see AgentLoop: status needs root or the ntpfleet group,
// resync and sim-step need root); FailedPrecondition with the agent's message
// for any other error.
absl::StatusOr<v1::LocalResponse> CallAgent(const std::string& socket_path,
                                            const v1::LocalRequest& request,
                                            absl::Duration timeout);

}  // namespace ntpfleet::local_control

#endif  // NTPFLEET_COMMON_LOCAL_CONTROL_H_
