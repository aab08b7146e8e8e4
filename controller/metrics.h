// Prometheus text exposition (format 0.0.4) of the fleet, in the spirit of
// node_exporter's timex collector and chrony_exporter, and the small HTTP
// server (libmicrohttpd) that serves it on /metrics.
//
//   ntpfleet_node_offset_seconds{node="db-1"} 0.000012
//   ntpfleet_fleet_skew_seconds 0.000340
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

// Pure: the exposition text for a fleet snapshot and the resync counters.
std::string RenderMetrics(const v1::Fleet& fleet,
                          const ResyncCounters& counters);

// The controller's own health, for the same exposition: whether it runs
// without TLS (ntpfleet_controller_insecure), refused calls by method and
// reason, the store writer's queue and failures, and agent messages refused by
// the registry's checks.
std::string RenderControllerMetrics(ControllerCore& core);

class MetricsServer {
 public:
  // Serves GET /metrics with render() on `address` ("HOST:PORT", port 0: any
  // free port).
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
