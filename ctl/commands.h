// ntpfleetctl's commands, one file each (cmd_*.cc). Each returns the process
// exit code: 0 fine, 1 an error (printed to stderr), 2 a usage error, 3 a check
// failed (--max-skew, a resync with a failed node).
#ifndef NTPFLEET_CTL_COMMANDS_H_
#define NTPFLEET_CTL_COMMANDS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/ntpfleet.grpc.pb.h"

namespace ntpfleet::ctl {

struct CommonOptions {
  std::string controller;      // HOST:PORT
  std::string control_socket;  // the local agent's
  bool json = false;           // --output json
  // TLS to the controller (all empty: plaintext).
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  bool color = false;  // stdout is a terminal
};

// The controller's FleetService; gRPC connects lazily, errors come with the
// first call.
std::unique_ptr<v1::FleetService::Stub> ConnectController(
    const CommonOptions& o);
// "cannot reach the controller at HOST:PORT (...): is ntpfleet-controller
// running? ..."
int ControllerError(const std::string& address, const absl::Status& status);
int PrintError(const absl::Status& status);

int RunStatus(const CommonOptions& o, std::optional<absl::Duration> max_skew);
int RunWatch(const CommonOptions& o, absl::Duration interval);
int RunPeers(const CommonOptions& o,
             const std::string& node);  // node empty: the local agent
int RunResync(const CommonOptions& o, const std::vector<std::string>& nodes,
              const std::string& label, bool all, bool step, bool dry_run);
int RunHistory(const CommonOptions& o, absl::Duration since);
int RunSync(const CommonOptions& o, bool step);               // the local agent
int RunSimStep(const CommonOptions& o, absl::Duration step);  // the local agent

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_COMMANDS_H_
