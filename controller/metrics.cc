#include "controller/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <string.h>

#include <bitset>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/proto_time.h"

namespace ntpfleet::controller {
namespace {

// Label values: backslash, double quote and newline escaped (exposition format
// 0.0.4).
std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Family(std::string* out, const char* name, const char* type,
            const char* help) {
  absl::StrAppendFormat(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                        type);
}

double Seconds(const google::protobuf::Duration& d) {
  return absl::ToDoubleSeconds(FromProto(d));
}

}  // namespace

std::string RenderMetrics(const v1::Fleet& fleet,
                          const ResyncCounters& counters) {
  std::string out;
  struct Row {
    std::string node;
    const v1::Node* n;
  };
  std::vector<Row> reporting;
  // Per-node series for the nodes with a live stream (a disconnected node's
  // last status is history, not a current gauge). Duplicate names get their
  // stream's address as an extra label, so every series stays unique.
  for (const v1::Node& n : fleet.nodes()) {
    if (!n.has_status() ||
        n.connection() == v1::CONNECTION_STATE_DISCONNECTED) {
      continue;
    }
    std::string labels = Escape(n.name());
    if (n.duplicate_name()) labels += "\",peer=\"" + Escape(n.peer());
    reporting.push_back({labels, &n});
  }
  Family(&out, "ntpfleet_node_offset_seconds", "gauge",
         "Node clock offset to its reference (reference minus local; positive: "
         "behind).");
  for (const Row& r : reporting) {
    absl::StrAppendFormat(&out,
                          "ntpfleet_node_offset_seconds{node=\"%s\"} %.9g\n",
                          r.node, Seconds(r.n->status().offset()));
  }
  Family(&out, "ntpfleet_node_error_bound_seconds", "gauge",
         "Bound on the node clock's error (ClockBound: |offset| + root "
         "dispersion + root delay/2, "
         "growing with time since the last update).");
  for (const Row& r : reporting) {
    if (r.n->status().has_error_bound()) {
      absl::StrAppendFormat(
          &out, "ntpfleet_node_error_bound_seconds{node=\"%s\"} %.9g\n", r.node,
          Seconds(r.n->status().error_bound()));
    } else {  // unsynchronised: unbounded
      absl::StrAppendFormat(
          &out, "ntpfleet_node_error_bound_seconds{node=\"%s\"} +Inf\n",
          r.node);
    }
  }
  Family(&out, "ntpfleet_node_frequency_ppm", "gauge",
         "Node oscillator frequency error in ppm (positive: runs fast).");
  for (const Row& r : reporting) {
    absl::StrAppendFormat(&out,
                          "ntpfleet_node_frequency_ppm{node=\"%s\"} %.6g\n",
                          r.node, r.n->status().frequency_ppm());
  }
  Family(&out, "ntpfleet_node_stratum", "gauge",
         "Node NTP stratum (16: unsynchronised).");
  for (const Row& r : reporting) {
    absl::StrAppendFormat(&out, "ntpfleet_node_stratum{node=\"%s\"} %d\n",
                          r.node, r.n->status().stratum());
  }
  Family(&out, "ntpfleet_node_reachability_ratio", "gauge",
         "Share of the last 8 polls of the node's system peer that were "
         "answered.");
  for (const Row& r : reporting) {
    uint32_t reach = 0;
    for (const v1::PeerStatus& p : r.n->status().peers()) {
      if (p.mark() == v1::SELECTION_MARK_SYSTEM_PEER) reach = p.reach();
    }
    absl::StrAppendFormat(
        &out, "ntpfleet_node_reachability_ratio{node=\"%s\"} %.3f\n", r.node,
        std::bitset<8>(reach).count() / 8.0);
  }
  Family(&out, "ntpfleet_node_flagged", "gauge",
         "1 if the node deviates beyond the threshold.");
  for (const Row& r : reporting) {
    absl::StrAppendFormat(&out, "ntpfleet_node_flagged{node=\"%s\"} %d\n",
                          r.node, r.n->flagged() ? 1 : 0);
  }
  Family(&out, "ntpfleet_fleet_skew_seconds", "gauge",
         "Max minus min of the offsets of the connected nodes that are "
         "synchronised, syncing or on their local clock.");
  absl::StrAppendFormat(&out, "ntpfleet_fleet_skew_seconds %.9g\n",
                        Seconds(fleet.skew()));
  Family(&out, "ntpfleet_fleet_max_error_bound_seconds", "gauge",
         "The largest error bound among the nodes counted in the skew.");
  absl::StrAppendFormat(&out, "ntpfleet_fleet_max_error_bound_seconds %.9g\n",
                        Seconds(fleet.max_error_bound()));
  Family(&out, "ntpfleet_nodes", "gauge",
         "Nodes by connection state, and flagged ones.");
  int disconnected = 0;
  for (const v1::Node& n : fleet.nodes()) {
    if (n.connection() == v1::CONNECTION_STATE_DISCONNECTED) ++disconnected;
  }
  absl::StrAppendFormat(&out, "ntpfleet_nodes{state=\"connected\"} %d\n",
                        fleet.connected_count());
  absl::StrAppendFormat(&out, "ntpfleet_nodes{state=\"stale\"} %d\n",
                        fleet.stale_count());
  absl::StrAppendFormat(&out, "ntpfleet_nodes{state=\"disconnected\"} %d\n",
                        disconnected);
  absl::StrAppendFormat(&out, "ntpfleet_nodes{state=\"flagged\"} %d\n",
                        fleet.flagged_count());
  Family(&out, "ntpfleet_resync_requests_total", "counter",
         "Resync requests served.");
  absl::StrAppendFormat(&out, "ntpfleet_resync_requests_total %d\n",
                        counters.requests);
  Family(&out, "ntpfleet_resync_node_results_total", "counter",
         "Per-node resync results, by outcome.");
  for (const auto& [outcome, count] : counters.node_results) {
    absl::StrAppendFormat(
        &out, "ntpfleet_resync_node_results_total{outcome=\"%s\"} %d\n",
        Escape(outcome), count);
  }
  return out;
}

std::string RenderControllerMetrics(ControllerCore& core) {
  std::string out;
  Family(&out, "ntpfleet_controller_insecure", "gauge",
         "1 when the controller runs without TLS: nobody is authenticated and "
         "anyone who reaches it can step every clock.");
  absl::StrAppendFormat(&out, "ntpfleet_controller_insecure %d\n",
                        core.options().tls ? 0 : 1);
  Family(&out, "ntpfleet_controller_refused_calls_total", "counter",
         "Calls refused: no usable client identity (unauthenticated) or an "
         "identity not allowed to do it (permission_denied).");
  for (const auto& [key, count] : core.authz().Counters()) {
    const size_t slash = key.find('/');
    absl::StrAppendFormat(
        &out,
        "ntpfleet_controller_refused_calls_total{method=\"%s\",reason=\"%s\"}"
        " %d\n",
        Escape(key.substr(0, slash)), Escape(key.substr(slash + 1)), count);
  }
  const RegistryCounters rc = core.registry().counters();
  Family(&out, "ntpfleet_controller_rejected_messages_total", "counter",
         "Agent messages dropped because a field was out of bounds or "
         "malformed, and Hellos refused by the new-name limits.");
  absl::StrAppendFormat(
      &out,
      "ntpfleet_controller_rejected_messages_total{kind=\"hello\"} %d\n"
      "ntpfleet_controller_rejected_messages_total{kind=\"status\"} %d\n"
      "ntpfleet_controller_rejected_messages_total{kind=\"resync_result\"} "
      "%d\n"
      "ntpfleet_controller_rejected_messages_total{kind=\"new_name\"} %d\n",
      rc.rejected_hellos, rc.rejected_statuses, rc.rejected_results,
      rc.refused_new_names);
  if (StoreWriter* writer = core.writer()) {
    const StoreWriter::Counters wc = writer->counters();
    Family(&out, "ntpfleet_controller_store_writes_total", "counter",
           "Database writes by outcome (dropped: the write queue was full).");
    absl::StrAppendFormat(
        &out,
        "ntpfleet_controller_store_writes_total{outcome=\"written\"} %d\n"
        "ntpfleet_controller_store_writes_total{outcome=\"failed\"} %d\n"
        "ntpfleet_controller_store_writes_total{outcome=\"dropped\"} %d\n",
        wc.written, wc.failed, wc.dropped);
    Family(&out, "ntpfleet_controller_store_queue", "gauge",
           "Database writes waiting for the writer thread.");
    absl::StrAppendFormat(&out, "ntpfleet_controller_store_queue %d\n",
                          wc.queued);
  }
  return out;
}

struct MetricsHandler {
  static MHD_Result Handle(void* cls, MHD_Connection* connection,
                           const char* url, const char* method, const char*,
                           const char*, size_t*, void**) {
    auto* server = static_cast<MetricsServer*>(cls);
    std::string body;
    unsigned int code = MHD_HTTP_OK;
    const char* type = "text/plain; version=0.0.4; charset=utf-8";
    if (std::strcmp(method, "GET") != 0 && std::strcmp(method, "HEAD") != 0) {
      code = MHD_HTTP_METHOD_NOT_ALLOWED;
      body = "only GET\n";
    } else if (std::strcmp(url, "/metrics") == 0) {
      body = server->render_();
    } else {
      code = MHD_HTTP_NOT_FOUND;
      body = "ntpfleet-controller: metrics are at /metrics\n";
      type = "text/plain; charset=utf-8";
    }
    MHD_Response* response = MHD_create_response_from_buffer(
        body.size(), body.data(), MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(response, "Content-Type", type);
    const MHD_Result r = MHD_queue_response(connection, code, response);
    MHD_destroy_response(response);
    return r;
  }
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::function<std::string()> render) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        "--metrics-listen must be HOST:PORT, got " + address);
  }
  std::string host = address.substr(0, colon);
  if (host.empty() || host == "*") host = "0.0.0.0";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        "--metrics-listen needs an IPv4 address, got " + host);
  }
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->render_ = std::move(render);
  server->daemon_ = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
      static_cast<uint16_t>(port), nullptr, nullptr, &MetricsHandler::Handle,
      server.get(), MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_CONNECTION_TIMEOUT,
      10u, MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    return absl::UnavailableError(
        absl::StrFormat("cannot serve metrics on %s (port in use? choose "
                        "another with --metrics-listen)",
                        address));
  }
  const MHD_DaemonInfo* info =
      MHD_get_daemon_info(server->daemon_, MHD_DAEMON_INFO_BIND_PORT);
  server->port_ = info ? info->port : static_cast<uint16_t>(port);
  return server;
}

MetricsServer::~MetricsServer() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

}  // namespace ntpfleet::controller
