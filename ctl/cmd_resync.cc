// `ntpfleetctl resync NODE...|--label L|--all [--step] [--force] [--dry-run]`:
// an immediate burst and correction on the selected nodes during an incident,
// with nothing to stop first. `--all` on a terminal asks first (--yes for
// scripts; without a terminal it must be given).
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "common/grpc_status.h"
#include "ctl/commands.h"
#include "ctl/fleet_client.h"
#include "ctl/render_fleet.h"

namespace ntpfleet::ctl {
namespace {

// Asks on the terminal; true only for an explicit yes.
bool Confirm(const std::string& question) {
  std::fprintf(stderr, "%s [y/N] ", question.c_str());
  std::fflush(stderr);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  answer = absl::AsciiStrToLower(absl::StripAsciiWhitespace(answer));
  return answer == "y" || answer == "yes";
}

}  // namespace

int RunResync(const CommonOptions& o, const ResyncOptions& r) {
  if (r.nodes.empty() && r.label.empty() && !r.all) {
    std::fprintf(stderr,
                 "ntpfleetctl resync: name the nodes, or use --label KEY=VALUE "
                 "or --all\n");
    return 2;
  }
  if (r.all && !r.dry_run && !r.yes) {
    if (!isatty(STDIN_FILENO)) {
      std::fprintf(stderr,
                   "ntpfleetctl resync --all: asks every node of the fleet to "
                   "correct its clock; add --yes to do that from a script\n");
      return 2;
    }
    if (!Confirm(r.step || r.force
                     ? "Resync EVERY node of the fleet, stepping clocks?"
                     : "Resync EVERY node of the fleet?")) {
      std::fprintf(stderr, "ntpfleetctl resync: nothing asked\n");
      return 1;
    }
  }
  v1::ResyncRequest request;
  for (const std::string& n : r.nodes) request.mutable_selector()->add_names(n);
  request.mutable_selector()->set_label(r.label);
  request.mutable_selector()->set_all(r.all);
  request.set_allow_step(r.step);
  request.set_force(r.force);
  request.set_burst(true);
  request.set_dry_run(r.dry_run);
  request.mutable_deadline()->set_seconds(10);
  absl::StatusOr<std::unique_ptr<FleetClient>> client = ConnectFleet(o);
  if (!client.ok()) return PrintError(client.status());
  // The controller asks a large fleet in waves (--resync-rate nodes a
  // second): wait long enough for them. With several controllers, each node
  // goes through one of them (ctl/fleet_client.h).
  absl::StatusOr<v1::ResyncResponse> asked = (*client)->Resync(
      request, r.all ? absl::Seconds(120) : absl::Seconds(30));
  if (!asked.ok()) return ControllerError(o.controller, asked.status());
  const v1::ResyncResponse& response = *asked;
  if (o.json) {
    absl::StatusOr<std::string> json = ToJson(response);
    if (!json.ok()) return PrintError(json.status());
    std::fputs(json->c_str(), stdout);
  } else {
    std::fputs(RenderResync(response).c_str(), stdout);
  }
  return ResyncSucceeded(response) ? 0 : 3;
}

}  // namespace ntpfleet::ctl
