// ntpfleet-controller: wiring and flags only. See --help.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

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
#include "agent/clock/clock.h"
#include "agent/clock/system_clock.h"
#include "common/files.h"
#include "common/flags.h"
#include "common/log.h"
#include "controller/metrics.h"
#include "controller/registry.h"
#include "controller/service.h"
#include "controller/store.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:7123",
          "gRPC address for agents and ntpfleetctl");
ABSL_FLAG(std::string, db, "/var/lib/ntpfleet/controller.db",
          "SQLite database: node inventory, skew history, resync audit log");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:7124",
          "HTTP address for Prometheus /metrics; empty: off");
ABSL_FLAG(
    std::string, tls_cert, "",
    "PEM certificate for gRPC over TLS (with --tls-key); empty: plaintext");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls-cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA: require agents and ntpfleetctl to present a certificate it "
          "signed");
ABSL_FLAG(absl::Duration, skew_threshold, absl::Milliseconds(1),
          "nodes whose offset or deviation from the fleet median exceeds this "
          "are flagged");
ABSL_FLAG(uint64_t, max_nodes, 100000,
          "the most node names the controller keeps; agents with new names "
          "beyond it are refused");
ABSL_FLAG(double, new_names_per_second, 50,
          "new node names admitted per second on average (a token bucket); "
          "known names are always admitted");
ABSL_FLAG(double, new_names_burst, 2000,
          "new node names admitted at once (the bucket's size): a fleet's "
          "first start");

namespace {

// The machine's clock, read only: the controller never sets it.
class WallClock final : public ntpfleet::clock::Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the ntpfleet controller: tracks every agent of the fleet and serves "
      "ntpfleetctl.\n"
      "Runs beside the agent on the fleet's designated NTP server node.\n\n"
      "  ntpfleet-controller --listen 0.0.0.0:7123 --db "
      "/var/lib/ntpfleet/controller.db \\\n"
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

  // Signals are taken by sigwait() below, so block them before any thread
  // starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  WallClock clock;
  const std::string db = absl::GetFlag(FLAGS_db);
  absl::StatusOr<std::unique_ptr<ntpfleet::controller::Store>> store =
      ntpfleet::controller::Store::Open(db);
  if (!store.ok()) {
    std::fprintf(stderr, "ntpfleet-controller: %s\n",
                 std::string(store.status().message()).c_str());
    return 1;
  }
  ntpfleet::controller::RegistryOptions ro;
  ro.skew_threshold = absl::GetFlag(FLAGS_skew_threshold);
  ro.max_nodes = absl::GetFlag(FLAGS_max_nodes);
  ro.new_names_per_second = absl::GetFlag(FLAGS_new_names_per_second);
  ro.new_names_burst = absl::GetFlag(FLAGS_new_names_burst);
  ntpfleet::clock::SystemMonotonicClock monotonic;
  ntpfleet::controller::Registry registry(&clock, &monotonic, ro);
  absl::StatusOr<std::vector<ntpfleet::controller::Store::NodeRecord>> known =
      (*store)->LoadNodes();
  if (!known.ok()) {
    std::fprintf(stderr, "ntpfleet-controller: %s\n",
                 std::string(known.status().message()).c_str());
    return 1;
  }
  for (const auto& node : *known)
    registry.AddKnownNode(node.hello, node.last_seen);
  ntpfleet::Log(ntpfleet::LogLevel::kInfo, "%s: %d known nodes", db,
                known->size());

  ntpfleet::controller::ControllerCore core(&clock, &registry, store->get());
  core.Start();
  ntpfleet::controller::AgentServiceImpl agents(&core);
  ntpfleet::controller::FleetServiceImpl fleet(&core);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::InsecureServerCredentials();
  if (!absl::GetFlag(FLAGS_tls_cert).empty()) {
    grpc::SslServerCredentialsOptions ssl(
        absl::GetFlag(FLAGS_tls_client_ca).empty()
            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    absl::StatusOr<std::string> key =
        ntpfleet::ReadFile(absl::GetFlag(FLAGS_tls_key));
    absl::StatusOr<std::string> cert =
        ntpfleet::ReadFile(absl::GetFlag(FLAGS_tls_cert));
    if (!key.ok() || !cert.ok()) {
      std::fprintf(
          stderr, "ntpfleet-controller: %s\n",
          std::string((key.ok() ? cert : key).status().message()).c_str());
      return 1;
    }
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    if (!absl::GetFlag(FLAGS_tls_client_ca).empty()) {
      absl::StatusOr<std::string> ca =
          ntpfleet::ReadFile(absl::GetFlag(FLAGS_tls_client_ca));
      if (!ca.ok()) {
        std::fprintf(stderr, "ntpfleet-controller: %s\n",
                     std::string(ca.status().message()).c_str());
        return 1;
      }
      ssl.pem_root_certs = *ca;
    }
    credentials = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), credentials, &port);
  // A second controller must not share the port (the kernel would split the
  // agents between them): no SO_REUSEPORT.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&agents);
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
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr,
                 "ntpfleet-controller: cannot listen on %s (port in use? "
                 "choose another with "
                 "--listen)\n",
                 absl::GetFlag(FLAGS_listen).c_str());
    return 1;
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  ntpfleet::Log(ntpfleet::LogLevel::kInfo, "listening on %s:%d",
                listen.substr(0, listen.rfind(':')), port);

  std::unique_ptr<ntpfleet::controller::MetricsServer> metrics;
  if (const std::string m = absl::GetFlag(FLAGS_metrics_listen); !m.empty()) {
    absl::StatusOr<std::unique_ptr<ntpfleet::controller::MetricsServer>>
        started = ntpfleet::controller::MetricsServer::Start(m, [&core] {
          return ntpfleet::controller::RenderMetrics(*core.Fleet(),
                                                     core.Counters());
        });
    if (!started.ok()) {
      std::fprintf(stderr, "ntpfleet-controller: %s\n",
                   std::string(started.status().message()).c_str());
      return 1;
    }
    metrics = *std::move(started);
    ntpfleet::Log(ntpfleet::LogLevel::kInfo, "metrics on http://%s:%d/metrics",
                  m.substr(0, m.rfind(':')), metrics->port());
  }

  int sig = 0;
  sigwait(&signals, &sig);
  ntpfleet::Log(ntpfleet::LogLevel::kInfo, "stopping");
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  core.Stop();
  return 0;
}
