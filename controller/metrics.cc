#include "controller/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <array>
#include <bitset>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/version.h"

namespace ntpfleet::controller {
namespace {

// Label values with backslash, double quote and line feed escaped (text
// format 0.0.4); the rest is copied as it is (agents' strings are printable
// ASCII, controller/validate.h).
void AppendEscaped(absl::string_view s, std::string* out) {
  // Node names and most values need nothing escaped: one append.
  if (s.find_first_of("\\\"\n") == absl::string_view::npos) {
    out->append(s.data(), s.size());
    return;
  }
  for (char c : s) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '"':
        out->append("\\\"");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        out->push_back(c);
    }
  }
}

void AppendLabel(absl::string_view key, absl::string_view value,
                 std::string* out) {
  out->push_back(',');
  out->append(key.data(), key.size());
  out->append("=\"");
  AppendEscaped(value, out);
  out->push_back('"');
}

// A sample value: the shortest decimal that reads back as the same double
// (std::to_chars), and the format's spellings of the special values.
void AppendValue(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
  } else {
    char buf[32];
    const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v);
    out->append(buf, r.ptr);
  }
}

void AppendFamily(absl::string_view name, absl::string_view type,
                  absl::string_view help, std::string* out) {
  absl::StrAppendFormat(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                        type);
}

// One sample of a series without labels.
void AppendSample(absl::string_view name, double value, std::string* out) {
  out->append(name.data(), name.size());
  out->push_back(' ');
  AppendValue(value, out);
  out->push_back('\n');
}

// Seconds, without a detour through absl::Duration (this runs per node).
double Seconds(const google::protobuf::Duration& d) {
  return static_cast<double>(d.seconds()) + d.nanos() * 1e-9;
}

// An enum value's name as a label value: without its prefix, lower case
// ("SYNC_STATE_SYNCHRONISED" -> "synchronised").
std::string EnumLabel(const std::string& name, absl::string_view prefix) {
  absl::string_view v = name;
  if (absl::StartsWith(v, prefix)) v.remove_prefix(prefix.size());
  return absl::AsciiStrToLower(v);
}

// Label values for SyncState and Role, computed once.
const std::string& SyncStateLabel(v1::SyncState state) {
  static const auto* const kLabels = [] {
    auto* labels = new std::array<std::string, v1::SyncState_ARRAYSIZE>();
    for (int i = 0; i < v1::SyncState_ARRAYSIZE; ++i) {
      if (v1::SyncState_IsValid(i)) {
        (*labels)[i] = EnumLabel(
            v1::SyncState_Name(static_cast<v1::SyncState>(i)), "SYNC_STATE_");
      }
    }
    return labels;
  }();
  return (*kLabels)[v1::SyncState_IsValid(state) ? state : 0];
}

const std::string& RoleLabel(v1::Role role) {
  static const auto* const kLabels = [] {
    auto* labels = new std::array<std::string, v1::Role_ARRAYSIZE>();
    for (int i = 0; i < v1::Role_ARRAYSIZE; ++i) {
      if (v1::Role_IsValid(i)) {
        (*labels)[i] =
            EnumLabel(v1::Role_Name(static_cast<v1::Role>(i)), "ROLE_");
      }
    }
    return labels;
  }();
  return (*kLabels)[v1::Role_IsValid(role) ? role : 0];
}

// One per-node series: every one is a gauge, carries the label `node` (and
// `peer` for a name two live agents use, so each sample stays unique), and
// has its unit as its name's suffix. `value` returns nullopt when the node has
// nothing to say (no status yet): the sample is left out. `labels`, when set,
// appends more labels, each as `,key="value"`.
struct NodeSeries {
  const char* name;
  const char* type;
  const char* help;
  std::optional<double> (*value)(const v1::Node& node);
  void (*labels)(const v1::Node& node, std::string* out);
};

// Status values: present once the node has reported since the controller
// started (its last report, also while STALE or DISCONNECTED).
std::optional<double> StatusSeconds(const v1::Node& n,
                                    const google::protobuf::Duration& d) {
  if (!n.has_status()) return std::nullopt;
  return Seconds(d);
}

const NodeSeries kNodeSeries[] = {
    {"ntpfleet_node_up", "gauge",
     "1 when the node is CONNECTED (its stream sent something within 3 report "
     "intervals), 0 when STALE or DISCONNECTED: its other series are then the "
     "last values it reported.",
     [](const v1::Node& n) -> std::optional<double> {
       return n.connection() == v1::CONNECTION_STATE_CONNECTED ? 1 : 0;
     },
     nullptr},
    {"ntpfleet_node_last_seen_timestamp_seconds", "gauge",
     "Unix time (controller's clock) of the node's last message.",
     [](const v1::Node& n) -> std::optional<double> {
       if (!n.has_last_seen()) return std::nullopt;
       return static_cast<double>(n.last_seen().seconds()) +
              n.last_seen().nanos() * 1e-9;
     },
     nullptr},
    {"ntpfleet_node_info", "gauge",
     "Always 1: the node's agent version, role and configuration digest "
     "(SHA-256 of its effective configuration) as labels.",
     [](const v1::Node&) -> std::optional<double> { return 1; },
     [](const v1::Node& n, std::string* out) {
       AppendLabel("agent_version", n.hello().agent_version(), out);
       AppendLabel("role", RoleLabel(n.hello().role()), out);
       AppendLabel("config_digest", n.hello().config_digest(), out);
     }},
    {"ntpfleet_node_flagged", "gauge",
     "1 if the node is flagged: counted in the skew and its offset or "
     "deviation from the fleet median is beyond the skew threshold.",
     [](const v1::Node& n) -> std::optional<double> {
       return n.flagged() ? 1 : 0;
     },
     nullptr},
    {"ntpfleet_node_sync_state", "gauge",
     "Always 1, with the node's sync state as the label state: synchronised, "
     "syncing, local_clock, holdover, unsynchronised, refused.",
     [](const v1::Node& n) -> std::optional<double> {
       if (!n.has_status()) return std::nullopt;
       return 1;
     },
     [](const v1::Node& n, std::string* out) {
       AppendLabel("state", SyncStateLabel(n.status().state()), out);
     }},
    {"ntpfleet_node_offset_seconds", "gauge",
     "Node clock offset to its reference, reference minus local (positive: "
     "the node is behind).",
     [](const v1::Node& n) { return StatusSeconds(n, n.status().offset()); },
     nullptr},
    {"ntpfleet_node_error_bound_seconds", "gauge",
     "How far the node's time may be from its reference: |offset| + 5 sigma "
     "of the estimate + half the delay + the upstream's own bound, growing in "
     "holdover; +Inf while unsynchronised.",
     [](const v1::Node& n) -> std::optional<double> {
       if (!n.has_status()) return std::nullopt;
       if (!n.status().has_error_bound())
         return std::numeric_limits<double>::infinity();
       return Seconds(n.status().error_bound());
     },
     nullptr},
    {"ntpfleet_node_frequency_ratio", "gauge",
     "Node oscillator frequency error as a ratio (1e-6 = 1 ppm; positive: "
     "the clock runs fast).",
     [](const v1::Node& n) -> std::optional<double> {
       if (!n.has_status()) return std::nullopt;
       return n.status().frequency_ppm() / 1e6;  // exact for 12.5 ppm
     },
     nullptr},
    {"ntpfleet_node_stratum", "gauge", "Node NTP stratum (16: unsynchronised).",
     [](const v1::Node& n) -> std::optional<double> {
       if (!n.has_status()) return std::nullopt;
       return n.status().stratum();
     },
     nullptr},
    {"ntpfleet_node_leap_indicator", "gauge",
     "Node leap indicator (RFC 5905 7.3): 0 none, 1 the last minute of the "
     "day has 61 s, 2 it has 59 s, 3 alarm (unsynchronised).",
     [](const v1::Node& n) -> std::optional<double> {
       if (!n.has_status()) return std::nullopt;
       switch (n.status().leap()) {
         case v1::LEAP_NONE:
           return 0;
         case v1::LEAP_INSERT:
           return 1;
         case v1::LEAP_DELETE:
           return 2;
         case v1::LEAP_ALARM:
           return 3;
         default:
           return std::nullopt;
       }
     },
     nullptr},
    {"ntpfleet_node_root_delay_seconds", "gauge",
     "Node root delay: round trip to the primary reference (RFC 5905 7.3).",
     [](const v1::Node& n) {
       return StatusSeconds(n, n.status().root_delay());
     },
     nullptr},
    {"ntpfleet_node_root_dispersion_seconds", "gauge",
     "Node root dispersion: its error budget to the primary reference "
     "(RFC 5905 7.3).",
     [](const v1::Node& n) {
       return StatusSeconds(n, n.status().root_dispersion());
     },
     nullptr},
    {"ntpfleet_node_reachability_ratio", "gauge",
     "Share of the last 8 polls of the node's system peer that were answered "
     "(0 with no system peer).",
     [](const v1::Node& n) -> std::optional<double> {
       if (!n.has_status()) return std::nullopt;
       uint32_t reach = 0;
       for (const v1::PeerStatus& p : n.status().peers()) {
         if (p.mark() == v1::SELECTION_MARK_SYSTEM_PEER) reach = p.reach();
       }
       return std::bitset<8>(reach).count() / 8.0;
     },
     nullptr},
    {"ntpfleet_node_crosscheck_flagged", "gauge",
     "1 if the crosscheck flags the node: its reported offset and the "
     "mesh's measurement of its clock disagree by more than its error bound "
     "plus 3 x the measurement's uncertainty (docs/CROSSCHECK.md); absent "
     "until another node has probed it.",
     [](const v1::Node& n) -> std::optional<double> {
       if (!n.has_crosscheck()) return std::nullopt;
       return n.crosscheck().flagged() ? 1 : 0;
     },
     nullptr},
    {"ntpfleet_node_crosscheck_disagreement_seconds", "gauge",
     "The node's reported offset minus the offset the crosscheck mesh "
     "measured for it.",
     [](const v1::Node& n) -> std::optional<double> {
       if (!n.has_crosscheck() || !n.crosscheck().has_disagreement()) {
         return std::nullopt;
       }
       return Seconds(n.crosscheck().disagreement());
     },
     nullptr},
    {"ntpfleet_node_crosscheck_measured_offset_seconds", "gauge",
     "The node's offset to the fleet's reference as the crosscheck mesh "
     "measured it (reference minus local), solved from the probes.",
     [](const v1::Node& n) -> std::optional<double> {
       if (!n.has_crosscheck() || !n.crosscheck().has_measured_offset()) {
         return std::nullopt;
       }
       return Seconds(n.crosscheck().measured_offset());
     },
     nullptr},
};

// Bytes reserved per sample besides its name: the node label and the value,
// and for a series with more labels (info: version, role, a 64-byte digest)
// that much more. A guess that saves reallocations and their copies.
constexpr size_t kReservePerSample = 48;
constexpr size_t kReserveMoreLabels = 128;

}  // namespace

void AppendFleetMetrics(const v1::Fleet& fleet, const ResyncCounters& counters,
                        std::string* out) {
  constexpr size_t kSeries = std::size(kNodeSeries);
  const size_t nodes = static_cast<size_t>(fleet.nodes_size());
  // Each family's samples must be one group, so one pass over the nodes
  // writes every series' samples into its own buffer; they are joined below.
  std::vector<std::string> samples(kSeries);
  for (size_t i = 0; i < kSeries; ++i) {
    samples[i].reserve(
        nodes * (std::strlen(kNodeSeries[i].name) + kReservePerSample +
                 (kNodeSeries[i].labels != nullptr ? kReserveMoreLabels : 0)));
  }
  int connected = 0;
  int stale = 0;
  int disconnected = 0;
  std::string labels;
  for (const v1::Node& node : fleet.nodes()) {
    switch (node.connection()) {
      case v1::CONNECTION_STATE_CONNECTED:
        ++connected;
        break;
      case v1::CONNECTION_STATE_STALE:
        ++stale;
        break;
      default:
        ++disconnected;
    }
    labels.assign("{node=\"");
    AppendEscaped(node.name(), &labels);
    labels.push_back('"');
    if (node.duplicate_name()) AppendLabel("peer", node.peer(), &labels);
    for (size_t i = 0; i < kSeries; ++i) {
      const NodeSeries& series = kNodeSeries[i];
      const std::optional<double> value = series.value(node);
      if (!value.has_value()) continue;
      std::string& o = samples[i];
      o.append(series.name);
      o.append(labels);
      if (series.labels != nullptr) series.labels(node, &o);
      o.append("} ");
      AppendValue(*value, &o);
      o.push_back('\n');
    }
  }

  size_t total = out->size() + (16 << 10);  // headers and the fixed families
  for (const std::string& s : samples) total += s.size() + 512;
  out->reserve(total);

  AppendFamily("ntpfleet_build_info", "gauge",
               "Always 1, with the controller's version as a label.", out);
  absl::StrAppend(out, "ntpfleet_build_info{version=\"");
  AppendEscaped(NTPFLEET_VERSION, out);
  out->append("\"} 1\n");

  AppendFamily("ntpfleet_fleet_skew_seconds", "gauge",
               "Max minus min of the offsets of the nodes counted in the "
               "skew: CONNECTED, synchronised, syncing or on their local "
               "clock (0 with none).",
               out);
  AppendSample("ntpfleet_fleet_skew_seconds", Seconds(fleet.skew()), out);
  AppendFamily("ntpfleet_fleet_max_error_bound_seconds", "gauge",
               "The largest error bound among the nodes counted in the skew.",
               out);
  AppendSample("ntpfleet_fleet_max_error_bound_seconds",
               Seconds(fleet.max_error_bound()), out);
  AppendFamily("ntpfleet_fleet_skew_threshold_seconds", "gauge",
               "The controller's --skew-threshold: nodes whose offset or "
               "deviation from the median is beyond it are flagged.",
               out);
  AppendSample("ntpfleet_fleet_skew_threshold_seconds",
               Seconds(fleet.threshold()), out);

  AppendFamily("ntpfleet_fleet_bound_seconds", "gauge",
               "The guaranteed bound on any two nodes' disagreement: the two "
               "largest error bounds among the nodes counted in the skew, "
               "added (absent with fewer than two).",
               out);
  if (fleet.has_fleet_bound()) {
    AppendSample("ntpfleet_fleet_bound_seconds", Seconds(fleet.fleet_bound()),
                 out);
  }
  AppendFamily("ntpfleet_mesh_skew_seconds", "gauge",
               "The crosscheck mesh's measured pairwise skew |Ci - Cj| over "
               "every pair of measured nodes, by quantile (1: the largest); "
               "absent until two nodes are measured.",
               out);
  if (fleet.has_mesh_skew_p50()) {
    out->append("ntpfleet_mesh_skew_seconds{quantile=\"0.5\"} ");
    AppendValue(Seconds(fleet.mesh_skew_p50()), out);
    out->append("\nntpfleet_mesh_skew_seconds{quantile=\"0.99\"} ");
    AppendValue(Seconds(fleet.mesh_skew_p99()), out);
    out->append("\nntpfleet_mesh_skew_seconds{quantile=\"1\"} ");
    AppendValue(Seconds(fleet.mesh_skew_max()), out);
    out->push_back('\n');
  }
  AppendFamily("ntpfleet_crosscheck_flagged_nodes", "gauge",
               "Nodes the crosscheck flags (see "
               "ntpfleet_node_crosscheck_flagged).",
               out);
  AppendSample("ntpfleet_crosscheck_flagged_nodes",
               fleet.crosscheck_flagged_count(), out);

  AppendFamily("ntpfleet_nodes", "gauge",
               "Nodes the controller knows, by connection state (a name two "
               "live agents use counts twice).",
               out);
  absl::StrAppend(out, "ntpfleet_nodes{connection=\"connected\"} ", connected,
                  "\nntpfleet_nodes{connection=\"stale\"} ", stale,
                  "\nntpfleet_nodes{connection=\"disconnected\"} ",
                  disconnected, "\n");
  AppendFamily("ntpfleet_nodes_flagged", "gauge",
               "Nodes flagged (see ntpfleet_node_flagged).", out);
  AppendSample("ntpfleet_nodes_flagged", fleet.flagged_count(), out);

  AppendFamily("ntpfleet_resync_requests_total", "counter",
               "Resync requests served since the controller started.", out);
  AppendSample("ntpfleet_resync_requests_total",
               static_cast<double>(counters.requests), out);
  AppendFamily("ntpfleet_resync_node_results_total", "counter",
               "Per-node resync results since the controller started, by "
               "outcome.",
               out);
  // Every outcome from the start, at 0 until one happens (rate() needs the
  // series before its first increase). INTERRUPTED is written to the audit
  // log at start-up only, never counted here.
  for (int i = 0; i < v1::ResyncOutcome_ARRAYSIZE; ++i) {
    if (!v1::ResyncOutcome_IsValid(i) || i == v1::RESYNC_OUTCOME_UNSPECIFIED ||
        i == v1::RESYNC_OUTCOME_INTERRUPTED) {
      continue;
    }
    const std::string& name =
        v1::ResyncOutcome_Name(static_cast<v1::ResyncOutcome>(i));
    const auto it = counters.node_results.find(name);
    out->append("ntpfleet_resync_node_results_total{outcome=\"");
    AppendEscaped(EnumLabel(name, "RESYNC_OUTCOME_"), out);
    out->append("\"} ");
    AppendValue(
        it == counters.node_results.end() ? 0 : static_cast<double>(it->second),
        out);
    out->push_back('\n');
  }

  for (size_t i = 0; i < kSeries; ++i) {
    AppendFamily(kNodeSeries[i].name, kNodeSeries[i].type, kNodeSeries[i].help,
                 out);
    out->append(samples[i]);
  }
}

std::string RenderFleetMetrics(const v1::Fleet& fleet,
                               const ResyncCounters& counters) {
  std::string out;
  AppendFleetMetrics(fleet, counters, &out);
  return out;
}

void AppendControllerMetrics(ControllerCore& core, std::string* out) {
  AppendFamily("ntpfleet_controller_insecure", "gauge",
               "1 when the controller runs without TLS: nobody is "
               "authenticated and anyone who reaches it can step every clock.",
               out);
  AppendSample("ntpfleet_controller_insecure", core.options().tls ? 0 : 1, out);
  AppendFamily("ntpfleet_controller_refused_calls_total", "counter",
               "Calls refused: no usable client identity (unauthenticated) or "
               "an identity not allowed to do it (permission_denied).",
               out);
  for (const auto& [key, count] : core.authz().Counters()) {
    const size_t slash = key.find('/');
    out->append("ntpfleet_controller_refused_calls_total{method=\"");
    AppendEscaped(absl::string_view(key).substr(0, slash), out);
    out->append("\"");
    AppendLabel("reason",
                slash == std::string::npos
                    ? absl::string_view()
                    : absl::string_view(key).substr(slash + 1),
                out);
    out->append("} ");
    AppendValue(static_cast<double>(count), out);
    out->push_back('\n');
  }
  const RegistryCounters rc = core.registry().counters();
  AppendFamily("ntpfleet_controller_rejected_messages_total", "counter",
               "Agent messages dropped because a field was out of bounds or "
               "malformed, and Hellos refused by the new-name limits.",
               out);
  absl::StrAppend(
      out, "ntpfleet_controller_rejected_messages_total{kind=\"hello\"} ",
      rc.rejected_hellos,
      "\nntpfleet_controller_rejected_messages_total{kind=\"status\"} ",
      rc.rejected_statuses,
      "\nntpfleet_controller_rejected_messages_total{kind=\"resync_result\"} ",
      rc.rejected_results,
      "\nntpfleet_controller_rejected_messages_total{kind=\"new_name\"} ",
      rc.refused_new_names, "\n");
  AppendFamily("ntpfleet_crosscheck_probe_reports_dropped_total", "counter",
               "Crosscheck probe reports (too_many_results) and results "
               "(the other reasons) dropped since the controller started.",
               out);
  const auto drops = core.crosscheck_hub().drops();
  for (size_t i = 0; i < drops.size(); ++i) {
    out->append("ntpfleet_crosscheck_probe_reports_dropped_total{reason=\"");
    out->append(ProbeDropLabel(static_cast<ProbeDrop>(i)));
    out->append("\"} ");
    AppendValue(static_cast<double>(drops[i]), out);
    out->push_back('\n');
  }
  if (StoreWriter* writer = core.writer()) {
    const StoreWriter::Counters wc = writer->counters();
    AppendFamily(
        "ntpfleet_controller_store_writes_total", "counter",
        "Database writes by outcome (dropped: the write queue was full).", out);
    absl::StrAppend(
        out, "ntpfleet_controller_store_writes_total{outcome=\"written\"} ",
        wc.written,
        "\nntpfleet_controller_store_writes_total{outcome=\"failed\"} ",
        wc.failed,
        "\nntpfleet_controller_store_writes_total{outcome=\"dropped\"} ",
        wc.dropped, "\n");
    AppendFamily("ntpfleet_controller_store_queue", "gauge",
                 "Database writes waiting for the writer thread.", out);
    AppendSample("ntpfleet_controller_store_queue",
                 static_cast<double>(wc.queued), out);
  }
}

std::string RenderMetrics(ControllerCore& core) {
  const std::shared_ptr<const v1::Fleet> fleet = core.Fleet();
  std::string out;
  AppendFleetMetrics(*fleet, core.Counters(), &out);
  AppendControllerMetrics(core, &out);
  return out;
}

struct MetricsHandler {
  static MHD_Result Handle(void* cls, MHD_Connection* connection,
                           const char* url, const char* method, const char*,
                           const char*, size_t*, void**) {
    auto* server = static_cast<MetricsServer*>(cls);
    // Handed to libmicrohttpd without a copy (a large fleet's page is
    // megabytes); it deletes the string when the response is done.
    auto* body = new std::string();
    unsigned int code = MHD_HTTP_OK;
    const char* type = "text/plain; version=0.0.4; charset=utf-8";
    if (std::strcmp(method, "GET") != 0 && std::strcmp(method, "HEAD") != 0) {
      code = MHD_HTTP_METHOD_NOT_ALLOWED;
      *body = "only GET\n";
    } else if (std::strcmp(url, "/metrics") == 0) {
      *body = server->render_();
    } else {
      code = MHD_HTTP_NOT_FOUND;
      *body = "ntpfleet-controller: metrics are at /metrics\n";
      type = "text/plain; charset=utf-8";
    }
    MHD_Response* response =
        MHD_create_response_from_buffer_with_free_callback_cls(
            body->size(), body->data(),
            [](void* p) { delete static_cast<std::string*>(p); }, body);
    if (response == nullptr) {
      delete body;
      return MHD_NO;
    }
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
  // MHD_USE_AUTO_INTERNAL_THREAD: one thread on the best poller the system
  // has, epoll on Linux. Not select(): it cannot watch a descriptor numbered
  // FD_SETSIZE (1024) or more, and a controller with a thousand agent
  // connections hands out such numbers to every new scrape (which
  // libmicrohttpd then refuses: "New connection socket descriptor (1024) is
  // not less than FD_SETSIZE"). At most kMaxScrapers connections at once: a
  // scrape is a Prometheus server or two, or a person with curl.
  constexpr unsigned int kMaxScrapers = 64;
  server->daemon_ = MHD_start_daemon(
      MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG,
      static_cast<uint16_t>(port), nullptr, nullptr, &MetricsHandler::Handle,
      server.get(), MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_CONNECTION_TIMEOUT,
      10u, MHD_OPTION_CONNECTION_LIMIT, kMaxScrapers, MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    return absl::UnavailableError(
        absl::StrFormat("cannot serve metrics on %s (libmicrohttpd could not "
                        "start; its reason, if it gave one, is logged above)",
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
