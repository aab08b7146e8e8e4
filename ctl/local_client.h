// Talks to the ntpfleet-agent on this node over its local control socket (see
// LocalRequest in proto/ntpfleet.proto): one request, one response.
#ifndef NTPFLEET_CTL_LOCAL_CLIENT_H_
#define NTPFLEET_CTL_LOCAL_CLIENT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {

inline constexpr char kDefaultControlSocket[] = "/run/ntpfleet/agent.sock";

// Unavailable "no ntpfleet-agent is running here (nothing listens on PATH)"
// when there is none; PermissionDenied with the agent's message when it
// refuses the caller (see AgentLoop: status needs root or the ntpfleet group,
// resync and sim-step need root); FailedPrecondition with the agent's message
// for any other error.
absl::StatusOr<v1::LocalResponse> CallAgent(const std::string& socket_path,
                                            const v1::LocalRequest& request,
                                            absl::Duration timeout);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_LOCAL_CLIENT_H_
