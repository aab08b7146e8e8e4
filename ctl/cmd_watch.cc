// `ntpfleetctl watch`: a live dashboard that redraws in place (like `watch ntpq
// -p`, for the whole fleet), with a sparkline of the fleet's skew.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <functional>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "ctl/commands.h"
#include "ctl/fleet_client.h"
#include "ctl/fleet_view.h"

namespace ntpfleet::ctl {
namespace {

// Where watch gets the fleet from: the skew history of the last 30 minutes
// (empty if no controller has one), then every fleet update of
// FleetService.WatchFleet — one controller's stream, or each controller's
// merged on every update (ctl/fleet_client.h) — each handed to `on_fleet`
// until the stream ends. Returns the exit code (the stream only ends on an
// error).
int StreamFleet(const CommonOptions& o, absl::Duration interval, bool summary,
                std::vector<v1::SkewPoint>* history,
                const std::function<absl::Status(const v1::Fleet&)>& on_fleet) {
  absl::StatusOr<std::unique_ptr<FleetClient>> client = ConnectFleet(o);
  if (!client.ok()) return PrintError(client.status());
  {
    v1::HistoryRequest request;
    SetTimestamp(absl::Now() - absl::Minutes(30), request.mutable_start());
    absl::StatusOr<v1::HistoryResponse> response =
        (*client)->History(request, absl::Seconds(10));
    if (response.ok()) {
      history->assign(response->points().begin(), response->points().end());
    }
  }
  v1::WatchFleetRequest request;
  SetDuration(interval, request.mutable_min_interval());
  request.set_summary(summary);
  // An update we cannot show ends the watch with its reason (exit 1), rather
  // than a stream of errors, or silence, while it goes on.
  absl::Status cannot_show;
  const absl::Status ended =
      (*client)->WatchFleet(request, [&](const v1::Fleet& fleet) {
        cannot_show = on_fleet(fleet);
        return cannot_show;
      });
  if (!cannot_show.ok()) return PrintError(cannot_show);
  return ControllerError(o.controller, ended);
}

}  // namespace

int RunWatch(const CommonOptions& o, absl::Duration interval,
             const ViewOptions& view) {
  // The recent history first, then live updates appended to it.
  std::vector<v1::SkewPoint> history;
  bool first = true;
  return StreamFleet(
      o, interval, !NeedsFullFleet(view), &history,
      [&](const v1::Fleet& fleet) {
        v1::SkewPoint point;
        *point.mutable_time() = fleet.as_of();
        *point.mutable_skew() = fleet.skew();
        *point.mutable_max_error_bound() = fleet.max_error_bound();
        point.set_nodes(fleet.connected_count());
        point.set_flagged(fleet.flagged_count());
        history.push_back(point);
        if (history.size() > 600) history.erase(history.begin());
        RenderOptions r;
        r.now = absl::Now();
        r.color = o.color;  // redraws in place only on a terminal
        absl::StatusOr<std::string> frame =
            RenderWatchView(fleet, history, view, r, first);
        first = false;
        if (!frame.ok()) return frame.status();
        std::fputs(frame->c_str(), stdout);
        const bool table = view.output == OutputFormat::kTable ||
                           view.output == OutputFormat::kWide;
        if (table && !o.color) std::fputs("\n", stdout);
        std::fflush(stdout);
        return absl::OkStatus();
      });
}

}  // namespace ntpfleet::ctl
