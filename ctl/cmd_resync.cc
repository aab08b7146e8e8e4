// `ntpfleetctl resync NODE...|--label L|--all [--step] [--dry-run]`: an
// immediate burst and correction on the selected nodes during an incident, with
// nothing to stop first.
#include <grpcpp/grpcpp.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "ctl/commands.h"
#include "ctl/render_fleet.h"

namespace ntpfleet::ctl {
namespace {

std::string WhoAmI() {
  const passwd* pw = getpwuid(getuid());
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat(pw ? pw->pw_name : std::to_string(getuid()), "@", host);
}

}  // namespace

int RunResync(const CommonOptions& o, const std::vector<std::string>& nodes,
              const std::string& label, bool all, bool step, bool dry_run) {
  if (nodes.empty() && label.empty() && !all) {
    std::fprintf(stderr,
                 "ntpfleetctl resync: name the nodes, or use --label KEY=VALUE "
                 "or --all\n");
    return 2;
  }
  v1::ResyncRequest request;
  for (const std::string& n : nodes) request.mutable_selector()->add_names(n);
  request.mutable_selector()->set_label(label);
  request.mutable_selector()->set_all(all);
  request.set_allow_step(step);
  request.set_burst(true);
  request.set_dry_run(dry_run);
  request.mutable_deadline()->set_seconds(10);
  request.set_requested_by(WhoAmI());
  auto stub = ConnectController(o);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(20));
  v1::ResyncResponse response;
  if (grpc::Status s = stub->Resync(&context, request, &response); !s.ok()) {
    return ControllerError(o.controller, FromGrpcStatus(s));
  }
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
