// ntpfleet-controller: wiring and flags only. See --help.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <sys/resource.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/flags.h"
#include "common/grpc_log.h"
#include "common/hostport.h"
#include "common/log.h"
#include "common/tls.h"
#include "controller/db_lock.h"
#include "controller/listen_address.h"
#include "controller/metrics.h"
#include "controller/node_history.h"
#include "controller/registry.h"
#include "controller/service.h"
#include "controller/store.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:7123",
          "gRPC address for agents and ntpfleetctl; anything but loopback "
          "needs --tls-cert/--tls-key/--tls-ca (or --insecure)");
ABSL_FLAG(std::string, db, "/var/lib/ntpfleet-controller/controller.db",
          "SQLite database: node inventory, skew and per-node history, resync "
          "audit log");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:7124",
          "HTTP address for Prometheus /metrics; empty: off");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate of this controller (ntpfleetctl certs issue "
          "--controller HOST): with --tls-key and --tls-ca, mutual TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA (ntpfleetctl certs init): every agent and ntpfleetctl must "
          "present a certificate it signed");
ABSL_FLAG(bool, insecure, false,
          "allow plain text on a non-loopback --listen address: NOBODY is "
          "authenticated, anyone who reaches the port can step every clock "
          "(for a lab only; warned at start and on /metrics)");
ABSL_FLAG(absl::Duration, operator_max_step, absl::Milliseconds(128),
          "the largest step an operator's resync may make; beyond it an "
          "admin must add --force");
ABSL_FLAG(absl::Duration, resync_min_interval, absl::Seconds(5),
          "a node is asked to resync at most once per this interval");
ABSL_FLAG(int, resync_rate, 25000,
          "nodes asked to resync per second (a fleet-wide resync goes out in "
          "waves of rate/10 every 100 ms, so the NTP server is not flooded: "
          "each node sends it 4 requests 2 s apart; lower it for a server "
          "that answers fewer than ~4 x rate requests per second)");
ABSL_FLAG(int, max_agent_streams, 20000,
          "agent streams held at once; more are refused");
ABSL_FLAG(int, agent_queues,
          ntpfleet::controller::AgentServiceImpl::kDefaultQueues,
          "gRPC completion queues (one thread each) serving the agent streams; "
          "see \"Serving design\" in docs/CONTROLLER.md");
ABSL_FLAG(absl::Duration, snapshot_interval, absl::Seconds(1),
          "the fleet view (status, GetFleet, /metrics) is rebuilt at most once "
          "per this after its last build: a report shows after at most this "
          "plus one build");
ABSL_FLAG(absl::Duration, skew_threshold, absl::Milliseconds(1),
          "nodes whose offset or deviation from the fleet median exceeds this "
          "are flagged");
ABSL_FLAG(uint64_t, max_nodes, 100000,
          "the most node names the controller keeps; agents with new names "
          "beyond it are refused");
ABSL_FLAG(double, new_names_per_second, 50,
          "new node names admitted per second on average (a token bucket); "
          "known names are always admitted");
ABSL_FLAG(std::string, node_history_retention, "1h,7d,365d",
          "how long each node's history is kept at 1 s, 1 min and 1 h "
          "resolution (0 turns a resolution off); docs/CONTROLLER.md gives "
          "the disk it takes per node");
ABSL_FLAG(int, crosscheck_probes, 3,
          "nodes each agent probes for the crosscheck (docs/CROSSCHECK.md): "
          "every node is then probed by at least this many others; 0 turns "
          "the crosscheck off");
ABSL_FLAG(absl::Duration, crosscheck_interval, absl::Seconds(64),
          "one crosscheck probe per target per this (at least 64s): each node "
          "sends K NTP requests per interval, 2 x 90 bytes on the wire each");
ABSL_FLAG(double, new_names_burst, 2000,
          "new node names admitted at once (the bucket's size): a fleet's "
          "first start");
ABSL_FLAG(bool, verbose, false,
          "log debug messages, and gRPC's own INFO lines (its errors are "
          "always logged, as WARN grpc: ...)");

namespace {

// The largest message the controller takes (bytes).
constexpr int kMaxReceiveMessage = 256 << 10;

// Every agent holds a TCP connection, so one descriptor, for as long as it
// runs: the soft limit (often 1024) would refuse agents long before memory or
// CPU run out. Raised to the hard limit (the systemd unit sets LimitNOFILE).
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t soft = limit.rlim_cur;
  if (soft < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = soft;
  }
  ntpfleet::Log(ntpfleet::LogLevel::kInfo,
                "descriptors: up to %d open files (soft limit raised from %d; "
                "one per connected agent)",
                static_cast<uint64_t>(limit.rlim_cur),
                static_cast<uint64_t>(soft));
}

int Fail(const absl::Status& status, int code) {
  std::fprintf(stderr, "ntpfleet-controller: %s\n",
               std::string(status.message()).c_str());
  return code;
}

// Exit status for a failed listen-address check: 2 (usage) for an address
// that is wrong whatever else runs, 1 (error) for a port in use or denied.
int ListenExitCode(const absl::Status& status) {
  return absl::IsInvalidArgument(status) ? 2 : 1;
}

// A duration flag that only makes sense from zero up.
absl::Status NotNegative(absl::Duration d, absl::string_view flag,
                         absl::string_view example) {
  if (d >= absl::ZeroDuration()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s %s: must be 0 or more, e.g. %s=%s", flag,
                      absl::FormatDuration(d), flag, example));
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the ntpfleet controller: tracks every agent of the fleet and serves "
      "ntpfleetctl.\n"
      "Runs beside the agent on the fleet's designated NTP server node.\n\n"
      "  ntpfleet-controller --listen 0.0.0.0:7123 --db "
      "/var/lib/ntpfleet-controller/controller.db \\\n"
      "                      --metrics-listen 0.0.0.0:7124\n\n"
      "Agents find it through their `controller HOST:PORT` directive; "
      "ntpfleetctl through\n"
      "--controller or $NTPFLEET_CONTROLLER.");
  ntpfleet::DashedFlags flags(argc, argv);
  absl::ParseCommandLine(flags.argc(), flags.argv());
  // Abseil's lock-order graph (deadlock detection) costs every lock taken on
  // the report path; the tests keep it on, where it finds lock-order bugs.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ntpfleet::SetLogProgram("ntpfleet-controller");
  if (absl::GetFlag(FLAGS_verbose))
    ntpfleet::SetLogLevel(ntpfleet::LogLevel::kDebug);
  ntpfleet::RouteGrpcLogging(absl::GetFlag(FLAGS_verbose));
  RaiseDescriptorLimit();

  // Signals are taken by sigwait() below, so block them before any thread
  // starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  for (const absl::Status& s :
       {NotNegative(absl::GetFlag(FLAGS_skew_threshold), "--skew-threshold",
                    "1ms"),
        NotNegative(absl::GetFlag(FLAGS_operator_max_step),
                    "--operator-max-step", "128ms"),
        NotNegative(absl::GetFlag(FLAGS_resync_min_interval),
                    "--resync-min-interval", "5s")}) {
    if (!s.ok()) return Fail(s, 2);
  }
  // Both addresses checked (resolved, and bound for a moment) before
  // anything starts: a wrong one is a usage error naming the form.
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const ntpfleet::controller::ListenSpec listen_spec{"--listen", 7123, false};
  absl::StatusOr<ntpfleet::HostPort> listen_at =
      ntpfleet::controller::CheckListenAddress(listen, listen_spec);
  if (!listen_at.ok()) {
    return Fail(listen_at.status(), ListenExitCode(listen_at.status()));
  }
  const ntpfleet::controller::ListenSpec metrics_spec{"--metrics-listen", 7124,
                                                      true};
  if (const std::string m = absl::GetFlag(FLAGS_metrics_listen); !m.empty()) {
    absl::StatusOr<ntpfleet::HostPort> at =
        ntpfleet::controller::CheckListenAddress(m, metrics_spec);
    if (!at.ok()) return Fail(at.status(), ListenExitCode(at.status()));
  }
  const int probes = absl::GetFlag(FLAGS_crosscheck_probes);
  if (probes < 0 || probes > ntpfleet::controller::kMaxProbeResults) {
    return Fail(absl::InvalidArgumentError(absl::StrFormat(
                    "--crosscheck-probes %d: give 0 (off) to %d", probes,
                    ntpfleet::controller::kMaxProbeResults)),
                2);
  }
  const absl::Duration probe_interval =
      absl::GetFlag(FLAGS_crosscheck_interval);
  if (probe_interval < ntpfleet::controller::kMinCrosscheckInterval) {
    return Fail(absl::InvalidArgumentError(absl::StrFormat(
                    "--crosscheck-interval %s is below %s: at most one probe "
                    "per node pair per 64 s (docs/CROSSCHECK.md)",
                    absl::FormatDuration(probe_interval),
                    absl::FormatDuration(
                        ntpfleet::controller::kMinCrosscheckInterval))),
                2);
  }
  ntpfleet::TlsFiles tls;
  tls.cert = absl::GetFlag(FLAGS_tls_cert);
  tls.key = absl::GetFlag(FLAGS_tls_key);
  tls.ca = absl::GetFlag(FLAGS_tls_ca);
  const bool insecure = absl::GetFlag(FLAGS_insecure);
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (!tls.empty()) {
    // All three or an error: never plain text because one was forgotten.
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> c =
        ntpfleet::ServerCredentials(tls, "--tls-cert/--tls-key/--tls-ca");
    if (!c.ok()) return Fail(c.status(), 2);
    credentials = *c;
    if (insecure) {
      return Fail(absl::InvalidArgumentError(
                      "--insecure and --tls-* contradict each other: drop "
                      "--insecure"),
                  2);
    }
  } else if (!ntpfleet::IsLoopbackHost(listen_at->host) && !insecure) {
    return Fail(
        absl::InvalidArgumentError(absl::StrFormat(
            "refusing to listen on %s in plain text: anyone who reaches it "
            "could step every clock of the fleet. Give --tls-cert, --tls-key "
            "and --tls-ca (see `ntpfleetctl certs` and docs/SECURITY.md), or "
            "--listen 127.0.0.1:PORT for this machine only, or --insecure "
            "for a lab",
            listen)),
        2);
  } else {
    credentials = grpc::InsecureServerCredentials();
    if (insecure) {
      ntpfleet::Log(ntpfleet::LogLevel::kWarning,
                    "--insecure: plain text on %s, NOBODY is authenticated: "
                    "anyone who reaches the port can step every clock",
                    listen);
    }
  }

  // A usage error, so before anything is opened.
  absl::StatusOr<
      std::array<absl::Duration, ntpfleet::controller::kNodeHistoryTiers>>
      retention = ntpfleet::controller::ParseNodeHistoryRetention(
          absl::GetFlag(FLAGS_node_history_retention));
  if (!retention.ok()) return Fail(retention.status(), 2);

  // The machine's clocks, read only: the controller never sets them.
  ntpfleet::clock::SystemWallClock clock;
  ntpfleet::clock::SystemMonotonicClock mono;
  const std::string db = absl::GetFlag(FLAGS_db);
  // Before the database is opened (or, if corrupt, moved aside): a second
  // controller on it would split the agents' reports and the audit log, and
  // its recovery could move the first one's database away. Exit 1: an error
  // of the environment, as a port in use.
  absl::StatusOr<ntpfleet::controller::DbLock> db_lock =
      ntpfleet::controller::DbLock::Acquire(db);
  if (!db_lock.ok()) return Fail(db_lock.status(), 1);
  std::string recovered;
  absl::StatusOr<std::unique_ptr<ntpfleet::controller::Store>> store =
      ntpfleet::controller::Store::OpenOrRecover(db, &recovered);
  if (!store.ok()) return Fail(store.status(), 1);
  if (!recovered.empty()) {
    ntpfleet::Log(ntpfleet::LogLevel::kError, "%s", recovered);
  }
  if (const int64_t n = (*store)->interrupted_on_open(); n > 0) {
    ntpfleet::Log(ntpfleet::LogLevel::kWarning,
                  "%d resync(s) were in flight when the controller last "
                  "stopped: their unanswered nodes are recorded as "
                  "INTERRUPTED (ntpfleetctl audit)",
                  n);
  }
  ntpfleet::controller::NodeHistoryOptions ho;
  ho.retention = *retention;
  ntpfleet::controller::NodeHistory node_history(ho);
  ntpfleet::controller::RegistryOptions ro;
  ro.on_report = [&node_history](const std::string& node,
                                 const ntpfleet::v1::SyncStatus& status,
                                 absl::Time now) {
    node_history.Record(node, status, now);
  };
  ro.skew_threshold = absl::GetFlag(FLAGS_skew_threshold);
  ro.max_nodes = absl::GetFlag(FLAGS_max_nodes);
  ro.new_names_per_second = absl::GetFlag(FLAGS_new_names_per_second);
  ro.new_names_burst = absl::GetFlag(FLAGS_new_names_burst);
  ntpfleet::controller::Registry registry(&clock, &mono, ro);
  absl::StatusOr<std::vector<ntpfleet::controller::Store::NodeRecord>> known =
      (*store)->LoadNodes();
  if (!known.ok()) return Fail(known.status(), 1);
  for (const auto& node : *known)
    registry.AddKnownNode(node.hello, node.last_seen, node.first_seen);
  ntpfleet::Log(ntpfleet::LogLevel::kInfo, "%s: %d known nodes", db,
                known->size());

  ntpfleet::controller::ControllerOptions co;
  co.crosscheck.probes = probes;
  co.crosscheck.interval = probe_interval;
  co.tls = !tls.empty();
  co.resync.operator_max_step = absl::GetFlag(FLAGS_operator_max_step);
  co.resync.min_interval = absl::GetFlag(FLAGS_resync_min_interval);
  co.resync.nodes_per_second = std::max(1, absl::GetFlag(FLAGS_resync_rate));
  co.max_agent_streams = absl::GetFlag(FLAGS_max_agent_streams);
  co.node_history = &node_history;
  co.snapshot_interval =
      std::max(absl::ZeroDuration(), absl::GetFlag(FLAGS_snapshot_interval));
  ntpfleet::controller::ControllerCore core(&clock, &registry, store->get(),
                                            co);
  core.Start();
  node_history.Start(&clock, core.writer());
  ntpfleet::controller::AgentServiceImpl agents(
      &core, absl::GetFlag(FLAGS_agent_queues));
  ntpfleet::controller::FleetServiceImpl fleet(&core);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), credentials, &port);
  // A second controller must not share the port (the kernel would split the
  // agents between them): no SO_REUSEPORT.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  agents.AddTo(builder);
  builder.RegisterService(&fleet);
  // Agents ping every 10 s (keepalive) to find a dead peer in seconds; allow
  // it, and ping them.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // Agents send a few hundred bytes a second each: bandwidth-delay probing
  // would only add a ping per burst of reports on every connection.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  // Bounded before anything is stored: an agent's message is a few KiB (64
  // peers at most), a request of ntpfleetctl less; an agent holds one stream,
  // ntpfleetctl one or two.
  builder.SetMaxReceiveMessageSize(kMaxReceiveMessage);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 16);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 16 << 10);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    // Checked free at start; taken since, or gRPC's own reason (logged above
    // as "WARN grpc: ...").
    absl::StatusOr<ntpfleet::HostPort> again =
        ntpfleet::controller::CheckListenAddress(listen, listen_spec);
    if (!again.ok()) return Fail(again.status(), 1);
    return Fail(
        absl::UnavailableError(absl::StrFormat(
            "cannot listen on %s (gRPC's reason is logged above)", listen)),
        1);
  }
  agents.Start();
  ntpfleet::Log(ntpfleet::LogLevel::kInfo, "listening on %s:%d (%s)",
                listen.substr(0, listen.rfind(':')), port,
                co.tls ? "mutual TLS" : "plain text, nobody authenticated");

  std::unique_ptr<ntpfleet::controller::MetricsServer> metrics;
  if (const std::string m = absl::GetFlag(FLAGS_metrics_listen); !m.empty()) {
    absl::StatusOr<std::unique_ptr<ntpfleet::controller::MetricsServer>>
        started = ntpfleet::controller::MetricsServer::Start(
            m, [&core] { return ntpfleet::controller::RenderMetrics(core); });
    if (!started.ok()) {
      // Checked free at start: taken since, or libmicrohttpd's own reason.
      absl::StatusOr<ntpfleet::HostPort> again =
          ntpfleet::controller::CheckListenAddress(m, metrics_spec);
      return Fail(again.ok() ? started.status() : again.status(), 1);
    }
    metrics = *std::move(started);
    ntpfleet::Log(ntpfleet::LogLevel::kInfo, "metrics on http://%s:%d/metrics",
                  m.substr(0, m.rfind(':')), metrics->port());
  }

  int sig = 0;
  sigwait(&signals, &sig);
  ntpfleet::Log(ntpfleet::LogLevel::kInfo, "stopping");
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  agents.Shutdown();
  node_history.Stop();  // its open buckets go to the writer, which core stops
  core.Stop();
  return 0;
}
