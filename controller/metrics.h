// Prometheus text exposition (format 0.0.4) of the fleet, in the spirit of
// node_exporter's timex collector and chrony_exporter, and the small HTTP
// server (libmicrohttpd) that serves it on /metrics.
//
//   ntpfleet_node_up{node="db-1"} 1
//   ntpfleet_node_offset_seconds{node="db-1"} 1.2e-05
//   ntpfleet_fleet_skew_seconds 0.00034
//
// Naming follows https://prometheus.io/docs/practices/naming/: base units
// (seconds, ratios), the unit as the name's suffix, `_total` for counters,
// `_timestamp_seconds` for Unix times, `_info` for constant 1 carrying labels,
// one dimension per label. docs/CONTROLLER.md (/metrics) lists every series.
//
// Per-node series exist for every node the registry knows, connected or not:
// ntpfleet_node_up says whether its values are current (1: CONNECTED; 0: STALE
// or DISCONNECTED, the values are the last ones it reported). The status
// series of a node that has not reported since the controller started (known
// from the inventory only) are absent; up, last seen, info and flagged are
// always there.
//
//   std::string page = RenderMetrics(core);  // what GET /metrics answers
#ifndef NTPFLEET_CONTROLLER_METRICS_H_
#define NTPFLEET_CONTROLLER_METRICS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controller/service.h"
#include "proto/ntpfleet.pb.h"

struct MHD_Daemon;

namespace ntpfleet::controller {

// Pure: appends the exposition text for a fleet snapshot and the resync
// counters to *out: build info, fleet gauges, node counts, resync counters and
// every per-node series. One pass over the nodes.
void AppendFleetMetrics(const v1::Fleet& fleet, const ResyncCounters& counters,
                        std::string* out);

// The same, as a new string.
std::string RenderFleetMetrics(const v1::Fleet& fleet,
                               const ResyncCounters& counters);

// Appends the controller's own health: whether it runs without TLS
// (ntpfleet_controller_insecure), refused calls by method and reason, the
// store writer's queue and failures, and agent messages refused by the
// registry's checks.
void AppendControllerMetrics(ControllerCore& core, std::string* out);

// The whole page: the current fleet snapshot (core.Fleet()), the resync
// counters and the controller's health. What ntpfleet-controller serves.
std::string RenderMetrics(ControllerCore& core);

class MetricsServer {
 public:
  // Serves GET /metrics with render() on `address` ("HOST:PORT", IPv4, port 0:
  // any free port), from one internal thread on epoll (libmicrohttpd's "auto"
  // mode: epoll on Linux), so descriptor numbers past FD_SETSIZE (1024) work:
  // a controller holding thousands of agent connections still answers.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::function<std::string()> render);
  ~MetricsServer();
  uint16_t port() const { return port_; }

 private:
  MetricsServer() = default;
  MHD_Daemon* daemon_ = nullptr;
  uint16_t port_ = 0;
  std::function<std::string()> render_;
  friend struct MetricsHandler;
};

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_METRICS_H_
