// ntpfleetctl: wiring and flags only; each command in its own file. See --help.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "agent/report/status_proto.h"
#include "common/flags.h"
#include "ctl/local_client.h"
#include "ctl/render_peers.h"

ABSL_FLAG(std::string, control_socket, ntpfleet::ctl::kDefaultControlSocket,
          "the local agent's control socket");

namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "ntpfleetctl: %s\n", std::string(s.message()).c_str());
  return 1;
}

// `peers`: this node's upstreams as ntpq -p shows them, with why unusable ones
// are unusable.
int LocalPeers() {
  ntpfleet::v1::LocalRequest request;
  request.mutable_status();
  absl::StatusOr<ntpfleet::v1::LocalResponse> r = ntpfleet::ctl::CallAgent(
      absl::GetFlag(FLAGS_control_socket), request, absl::Seconds(5));
  if (!r.ok()) return Fail(r.status());
  std::fputs(
      ntpfleet::ctl::RenderPeersWithReasons(r->status().status()).c_str(),
      stdout);
  return 0;
}

// `sync`: an immediate burst and correction by the local agent (like ntpdate,
// without stopping anything first).
int LocalSync(bool step) {
  ntpfleet::v1::LocalRequest request;
  request.mutable_resync()->set_allow_step(step);
  request.mutable_resync()->set_burst(true);
  request.mutable_resync()->mutable_deadline()->set_seconds(15);
  absl::StatusOr<ntpfleet::v1::LocalResponse> r = ntpfleet::ctl::CallAgent(
      absl::GetFlag(FLAGS_control_socket), request, absl::Seconds(20));
  if (!r.ok()) return Fail(r.status());
  const ntpfleet::v1::ResyncResult& res = r->resync_result();
  if (res.outcome() != ntpfleet::v1::RESYNC_OUTCOME_OK) {
    std::fprintf(stderr, "ntpfleetctl: no correction: %s\n",
                 res.error().c_str());
    return 1;
  }
  std::printf(
      "%s: offset before %+.6f s, after %+.6f s\n",
      res.stepped() ? "stepped" : "slewing",
      absl::ToDoubleSeconds(ntpfleet::report::FromProto(res.offset_before())),
      absl::ToDoubleSeconds(ntpfleet::report::FromProto(res.offset_after())));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "ntpfleetctl: see and steer the fleet's clocks.\n\n"
      "On a node (talks to the local agent, no controller needed):\n"
      "  ntpfleetctl peers          this node's upstreams, in ntpq -p's "
      "layout, and why any\n"
      "                             of them cannot be used\n"
      "  ntpfleetctl sync [--step]  measure and correct now (like ntpdate, "
      "nothing to stop)\n");
  ntpfleet::DashedFlags flags(argc, argv);
  std::vector<char*> args = absl::ParseCommandLine(flags.argc(), flags.argv());
  if (args.size() < 2) {
    std::fprintf(stderr, "%s", absl::ProgramUsageMessage().data());
    return 2;
  }
  const std::string command = args[1];
  if (command == "peers" && args.size() == 2) return LocalPeers();
  if (command == "sync") {
    const bool step = args.size() > 2 && std::string(args[2]) == "--step";
    return LocalSync(step);
  }
  std::fprintf(stderr, "ntpfleetctl: unknown command `%s`\n\n%s",
               command.c_str(), absl::ProgramUsageMessage().data());
  return 2;
}
