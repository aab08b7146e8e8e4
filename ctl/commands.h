// ntpfleetctl's commands, one file each (cmd_*.cc). Each returns the process
// exit code: 0 fine, 1 an error (printed to stderr), 2 a usage error, 3 a check
// failed (status's health check, drift found, a resync with a failed node, a
// node flagged by the crosscheck).
#ifndef NTPFLEET_CTL_COMMANDS_H_
#define NTPFLEET_CTL_COMMANDS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ctl/fleet_health.h"
#include "ctl/fleet_view.h"
#include "google/protobuf/arena.h"
#include "proto/ntpfleet.grpc.pb.h"

namespace ntpfleet::ctl {

class FleetClient;  // ctl/fleet_client.h

struct CommonOptions {
  // HOST:PORT, or several comma-separated (FleetClient asks them all).
  std::string controller;
  std::string control_socket;                  // the local agent's
  bool json = false;                           // --output json
  OutputFormat output = OutputFormat::kTable;  // --output
  // Mutual TLS to the controller: all three or none (none: plain text, which
  // only a controller on loopback or started with --insecure accepts).
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  bool color = false;  // stdout is a terminal
};

// The controller's FleetService; gRPC connects lazily, errors come with the
// first call. Fails at once on a bad --controller address or a half or
// unreadable TLS configuration (never plain text instead).
absl::StatusOr<std::unique_ptr<v1::FleetService::Stub>> ConnectController(
    const CommonOptions& o);
// Every controller of o.controller (one or several, comma-separated): the
// fleet commands' way in (ctl/fleet_client.h). Fails at once on a bad list or
// a half or unreadable TLS configuration.
absl::StatusOr<std::unique_ptr<FleetClient>> ConnectFleet(
    const CommonOptions& o);
// "cannot reach the controller at HOST:PORT (...): is ntpfleet-controller
// running? ..."
int ControllerError(const std::string& address, const absl::Status& status);
int PrintError(const absl::Status& status);

// The fleet now (FleetService.GetFleet; `summary` as GetFleetRequest.summary),
// parsed onto `arena`. On failure prints why (ControllerError, PrintError) and
// returns null: the command exits 1. The one place status, nodes and drift get
// the fleet from.
v1::Fleet* FetchFleet(const CommonOptions& o, bool summary,
                      google::protobuf::Arena* arena);

struct StatusOptions {
  ViewOptions view;
  // The health check (ctl/fleet_health.h) runs when `check` is set (--max-skew
  // or --min-nodes given): exit 3 when it fails.
  bool check = false;
  HealthOptions health;
};
int RunStatus(const CommonOptions& o, const StatusOptions& s);
int RunWatch(const CommonOptions& o, absl::Duration interval,
             const ViewOptions& view);
// `ntpfleetctl nodes`: the inventory (ctl/fleet_view.h RenderNodesView).
int RunNodes(const CommonOptions& o, const ViewOptions& view);
// `ntpfleetctl drift`: nodes grouped by config digest (ctl/fleet_drift.h);
// exit 3 when a node's configuration differs from its cohort's, or when no
// node was compared.
int RunDrift(const CommonOptions& o, const ViewOptions& view,
             const std::string& by_label);
int RunPeers(const CommonOptions& o,
             const std::string& node);  // node empty: the local agent
struct ResyncOptions {
  std::vector<std::string> nodes;
  std::string label;
  bool all = false;
  bool step = false;
  bool dry_run = false;
  bool force = false;  // a step beyond the operator limit (admin)
  bool yes = false;    // --all without asking
};
int RunResync(const CommonOptions& o, const ResyncOptions& r);
int RunForget(const CommonOptions& o, const std::string& node);
int RunAudit(const CommonOptions& o, absl::Duration since);
// `ntpfleetctl crosscheck`: the mesh's measurement of each node beside its
// report (ctl/render_crosscheck.h); `edges` adds the probe graph. Exit 3 when
// a node is flagged. kCrosscheckHelp: `ntpfleetctl crosscheck --help`.
int RunCrosscheck(const CommonOptions& o, bool edges);
extern const char kCrosscheckHelp[];
// node empty: the fleet's skew; else that node's history.
int RunHistory(const CommonOptions& o, const std::string& node,
               absl::Duration since);
int RunSync(const CommonOptions& o, bool step);               // the local agent
int RunSimStep(const CommonOptions& o, absl::Duration step);  // the local agent

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_COMMANDS_H_
