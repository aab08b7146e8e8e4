// `ntpfleetctl watch`: a live dashboard that redraws in place (like `watch ntpq
// -p`, for the whole fleet), with a sparkline of the fleet's skew.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "ctl/commands.h"
#include "ctl/fleet_client.h"
#include "ctl/render_fleet.h"

namespace ntpfleet::ctl {

int RunWatch(const CommonOptions& o, absl::Duration interval) {
  absl::StatusOr<std::unique_ptr<FleetClient>> client = ConnectFleet(o);
  if (!client.ok()) return PrintError(client.status());
  // The recent history first, then live updates appended to it.
  std::vector<v1::SkewPoint> history;
  {
    v1::HistoryRequest request;
    SetTimestamp(absl::Now() - absl::Minutes(30), request.mutable_start());
    absl::StatusOr<v1::HistoryResponse> response =
        (*client)->History(request, absl::Seconds(10));
    if (response.ok()) {
      history.assign(response->points().begin(), response->points().end());
    }
  }
  v1::WatchFleetRequest request;
  SetDuration(interval, request.mutable_min_interval());
  request.set_summary(!o.json);  // as `status`
  // One controller's stream, or each controller's merged on every update
  // (ctl/fleet_client.h).
  const absl::Status ended =
      (*client)->WatchFleet(request, [&](const v1::Fleet& fleet) {
        v1::SkewPoint point;
        *point.mutable_time() = fleet.as_of();
        *point.mutable_skew() = fleet.skew();
        *point.mutable_max_error_bound() = fleet.max_error_bound();
        point.set_nodes(fleet.connected_count());
        point.set_flagged(fleet.flagged_count());
        history.push_back(point);
        if (history.size() > 600) history.erase(history.begin());
        if (o.json) {
          absl::StatusOr<std::string> json = ToJson(fleet);
          if (json.ok()) std::fputs(json->c_str(), stdout);
        } else {
          RenderOptions r;
          r.now = absl::Now();
          r.color = o.color;  // redraws in place only on a terminal
          std::fputs(RenderWatchFrame(fleet, history, r).c_str(), stdout);
          if (!o.color) std::fputs("\n", stdout);
        }
        std::fflush(stdout);
      });
  return ControllerError(o.controller, ended);
}

}  // namespace ntpfleet::ctl
