// `ntpfleetctl sync [--step]`: an immediate burst and correction by this node's
// agent (like ntpdate, without stopping the daemon first).
#include <cstdio>

#include "absl/time/time.h"
#include "common/local_control.h"
#include "common/proto_time.h"
#include "ctl/commands.h"
#include "ctl/render_fleet.h"

namespace ntpfleet::ctl {

int RunSync(const CommonOptions& o, bool step) {
  v1::LocalRequest request;
  request.mutable_resync()->set_allow_step(step);
  request.mutable_resync()->set_burst(true);
  request.mutable_resync()->mutable_deadline()->set_seconds(15);
  absl::StatusOr<v1::LocalResponse> r =
      local_control::CallAgent(o.control_socket, request, absl::Seconds(20));
  if (!r.ok()) return PrintError(r.status());
  const v1::ResyncResult& res = r->resync_result();
  if (o.json) {
    absl::StatusOr<std::string> json = ToJson(res);
    if (!json.ok()) return PrintError(json.status());
    std::fputs(json->c_str(), stdout);
  } else if (res.outcome() == v1::RESYNC_OUTCOME_OK) {
    std::printf("%s: offset before %s, after %s\n",
                res.stepped() ? "stepped" : "slewing",
                FormatOffset(FromProto(res.offset_before())).c_str(),
                FormatOffset(FromProto(res.offset_after())).c_str());
  }
  if (res.outcome() != v1::RESYNC_OUTCOME_OK) {
    std::fprintf(stderr, "ntpfleetctl: no correction: %s\n",
                 res.error().c_str());
    return 3;
  }
  return 0;
}

// `ntpfleetctl sim-step DURATION`: moves the local agent's simulated clock, for
// demos and tests. Prints the step as sent (main.cc keeps it within what the
// wire and the agent take, so it is the step applied) and, from the agent's
// reply, where the clock now is against true time.
int RunSimStep(const CommonOptions& o, absl::Duration step) {
  v1::LocalRequest request;
  SetDuration(step, request.mutable_sim_step()->mutable_step());
  absl::StatusOr<v1::LocalResponse> r =
      local_control::CallAgent(o.control_socket, request, absl::Seconds(5));
  if (!r.ok()) return PrintError(r.status());
  std::printf("moved the simulated clock by %s",
              FormatOffset(FromProto(request.sim_step().step())).c_str());
  if (r->has_status() && r->status().has_sim_true_offset()) {
    // sim_true_offset is true time minus the clock: the clock reads
    // -sim_true_offset from the truth.
    std::printf(
        "; it now reads %s from true time",
        FormatOffset(-FromProto(r->status().sim_true_offset())).c_str());
  }
  std::printf("\n");
  return 0;
}

}  // namespace ntpfleet::ctl
