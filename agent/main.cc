// ntpfleet-agent: wiring and flags only (ARCHITECTURE.md). See --help.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "agent/clock/sim_clock.h"
#include "agent/clock/system_clock.h"
#include "agent/config/keys_file.h"
#include "agent/config/server_checks.h"
#include "agent/net/agent_loop.h"
#include "agent/report/reporter.h"
#include "agent/report/resync_gate.h"
#include "agent/report/status_proto.h"
#include "clockbound/segment.h"
#include "common/config/config.h"
#include "common/config/config_file.h"
#include "common/flags.h"
#include "common/grpc_log.h"
#include "common/hostport.h"
#include "common/local_control.h"
#include "common/log.h"
#include "common/tls.h"

ABSL_FLAG(
    std::string, config, "/etc/ntpfleet/agent.conf",
    "configuration file (ntpd's ntp.conf syntax plus ntpfleet's directives)");
ABSL_FLAG(int, port, -1,
          "UDP port to serve NTP on (default: the config's `port`, else 123; "
          "0: any free port)");
ABSL_FLAG(std::string, listen, "",
          "local address to serve on, ADDRESS or ADDRESS:PORT ([v6]:PORT) "
          "(default: all addresses)");
ABSL_FLAG(std::string, clock, "system",
          "`system` disciplines this machine's clock (needs CAP_SYS_TIME); "
          "`sim` runs the agent "
          "on a simulated clock that starts --sim-offset off and runs "
          "--sim-freq-ppm fast "
          "(tests and the demo: the machine's clock is never touched)");
ABSL_FLAG(absl::Duration, sim_offset, absl::ZeroDuration(),
          "with --clock=sim: how far ahead of true time the clock starts, e.g. "
          "2.5s or -300ms");
ABSL_FLAG(double, sim_freq_ppm, 0,
          "with --clock=sim: the oscillator's error in ppm (+ = fast)");
ABSL_FLAG(double, sim_wander, 1e-9,
          "with --clock=sim: random-walk frequency wander per second");
ABSL_FLAG(absl::Duration, sim_report_bias, absl::ZeroDuration(),
          "with --clock=sim, for tests: report offsets this far off the truth "
          "(added to the offset sent to controllers and shown locally; never "
          "to the clock, its error bound or the time it serves): a lying node "
          "for the crosscheck (docs/CROSSCHECK.md)");
ABSL_FLAG(std::string, control_socket,
          ntpfleet::local_control::kDefaultControlSocket,
          "local control socket for ntpfleetctl (root-only); empty: none");
ABSL_FLAG(bool, check_config, false,
          "print the effective configuration and exit");
ABSL_FLAG(bool, once, false,
          "like ntpdate: measure now and correct the clock once (stepping if "
          "needed), then "
          "exit; if an agent is already running, ask it instead of fighting it "
          "for the port");
ABSL_FLAG(std::string, node_name, "",
          "name to report (default: the config's node_name, "
          "else the host name)");
ABSL_FLAG(std::string, clockbound_shm, "",
          "where to write the ClockBound shared memory segment, overriding the "
          "config's `clockbound_shm` (`none`: no segment; default: "
          "/var/run/clockbound/shm0 with --clock=system, none with "
          "--clock=sim); see docs/CLOCKBOUND.md");
ABSL_FLAG(absl::Duration, clockbound_validity, absl::Seconds(1000),
          "how long ClockBound readers may trust the last bound written if "
          "the agent stops writing (the segment's void_after - as_of; "
          "ClockBound's daemon uses 1000s)");
ABSL_FLAG(bool, verbose, false, "log debug messages");

namespace {

ntpfleet::net::AgentLoop* g_loop = nullptr;

void OnSignal(int) {
  if (g_loop != nullptr) g_loop->RequestStop();
}

std::string HostName() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

// This host's addresses (not loopback), for the controller's inventory.
std::vector<std::string> HostAddresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    const int family = a->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    char host[NI_MAXHOST] = {};
    const socklen_t len =
        family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (getnameinfo(a->ifa_addr, len, host, sizeof(host), nullptr, 0,
                    NI_NUMERICHOST) != 0) {
      continue;
    }
    const std::string h = host;
    if (h == "127.0.0.1" || h == "::1") continue;
    out.push_back(h);
    // The controller takes at most 32 (controller/validate.h).
    if (out.size() == 32) break;
  }
  freeifaddrs(list);
  return out;
}

// --port and --listen, checked: a port outside 0..65535 is an error, never
// wrapped. Sets *port (-1: not given) and *address.
absl::Status ServeFlags(int* port, std::string* address) {
  const int flag_port = absl::GetFlag(FLAGS_port);
  *port = -1;
  if (flag_port != -1) {
    absl::StatusOr<int> p =
        ntpfleet::CheckPort(flag_port, "--port", /*allow_zero=*/true);
    if (!p.ok()) return p.status();
    *port = *p;
  }
  *address = absl::GetFlag(FLAGS_listen);
  if (address->empty()) return absl::OkStatus();
  in6_addr scratch;
  if (inet_pton(AF_INET, address->c_str(), &scratch) == 1 ||
      inet_pton(AF_INET6, address->c_str(), &scratch) == 1) {
    return absl::OkStatus();
  }
  absl::StatusOr<ntpfleet::HostPort> hp =
      ntpfleet::ParseHostPort(*address, "--listen", /*allow_zero=*/true);
  const std::string form =
      "ADDRESS or ADDRESS:PORT, e.g. 127.0.0.1, 0.0.0.0:123 or [::1]:123";
  if (!hp.ok()) {
    if (address->find(':') == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--listen: '%s' is not an IP address (%s)", *address, form));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(hp.status().message(), " (", form, ")"));
  }
  if (inet_pton(AF_INET, hp->host.c_str(), &scratch) != 1 &&
      inet_pton(AF_INET6, hp->host.c_str(), &scratch) != 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--listen: '%s' is not an IP address (%s)", hp->host, form));
  }
  if (*port != -1 && *port != hp->port) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--listen %s and --port %d name different ports: give the port once",
        *address, *port));
  }
  *address = hp->host;
  *port = hp->port;
  return absl::OkStatus();
}

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i)
    hex += absl::StrFormat("%02x", digest[i]);
  return hex;
}

int PrintResync(const ntpfleet::v1::ResyncResult& r) {
  using ntpfleet::report::FromProto;
  if (r.outcome() == ntpfleet::v1::RESYNC_OUTCOME_OK) {
    std::printf("%s the clock: offset was %+.6f s, now %+.6f s\n",
                r.stepped() ? "stepped" : "slewing",
                absl::ToDoubleSeconds(FromProto(r.offset_before())),
                absl::ToDoubleSeconds(FromProto(r.offset_after())));
    return 0;
  }
  std::fprintf(stderr, "ntpfleet-agent: no correction: %s\n",
               r.error().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the ntpfleet agent: a complete NTP client and server that disciplines "
      "this node's clock\n"
      "and reports to the fleet's controller.\n\n"
      "  ntpfleet-agent --config /etc/ntpfleet/agent.conf      # the daemon "
      "(systemd runs it)\n"
      "  ntpfleet-agent --config FILE --check-config           # what the "
      "agent would do\n"
      "  ntpfleet-agent --once                                 # one "
      "correction now, like ntpdate\n"
      "  ntpfleet-agent --config F --clock=sim --sim-offset=2s --port 12300  # "
      "try it safely\n\n"
      "A classic ntpd ntp.conf works unchanged; see docs/AGENT.md.");
  ntpfleet::DashedFlags flags(argc, argv);
  absl::ParseCommandLine(flags.argc(), flags.argv());
  // Abseil's lock-order graph costs every lock; the tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ntpfleet::SetLogProgram("ntpfleet-agent");
  if (absl::GetFlag(FLAGS_verbose))
    ntpfleet::SetLogLevel(ntpfleet::LogLevel::kDebug);
  ntpfleet::RouteGrpcLogging(absl::GetFlag(FLAGS_verbose));
  signal(SIGPIPE, SIG_IGN);

  int serve_port = -1;
  std::string serve_address;
  if (absl::Status s = ServeFlags(&serve_port, &serve_address); !s.ok()) {
    std::fprintf(stderr, "ntpfleet-agent: %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }

  const std::string socket_path = absl::GetFlag(FLAGS_control_socket);
  if (absl::GetFlag(FLAGS_once) && !socket_path.empty()) {
    // An agent already running owns the clock and the port: ask it.
    ntpfleet::v1::LocalRequest request;
    request.mutable_resync()->set_allow_step(true);
    request.mutable_resync()->set_burst(true);
    request.mutable_resync()->mutable_deadline()->set_seconds(15);
    absl::StatusOr<ntpfleet::v1::LocalResponse> response =
        ntpfleet::local_control::CallAgent(socket_path, request,
                                           absl::Seconds(20));
    if (response.ok()) {
      std::printf("asked the running agent (%s)\n", socket_path.c_str());
      return PrintResync(response->resync_result());
    }
    if (!absl::IsUnavailable(response.status())) {
      std::fprintf(stderr, "ntpfleet-agent: %s\n",
                   std::string(response.status().message()).c_str());
      return 1;
    }
  }

  absl::StatusOr<ntpfleet::config::AgentConfig> config =
      ntpfleet::config::LoadConfigFile(absl::GetFlag(FLAGS_config));
  if (!config.ok()) {
    std::fprintf(stderr, "ntpfleet-agent: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  // One server written several ways is one source; forms resolvers read
  // differently (127.1, 010) are refused (agent/config/server_checks.h).
  if (absl::Status s = ntpfleet::config::MergeSameServers(&*config); !s.ok()) {
    std::fprintf(stderr, "ntpfleet-agent: %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_check_config)) {
    // What the running agent says when it resolves the lines (agent_loop):
    // numeric addresses that can never answer, its own included.
    const int own_port = serve_port >= 0 ? serve_port : config->port;
    for (std::string& w : ntpfleet::config::UnanswerableServers(
             *config, ntpfleet::net::ThisAgent(serve_address, own_port))) {
      config->warnings.push_back(std::move(w));
    }
  }
  for (const std::string& w : config->warnings)
    ntpfleet::Log(ntpfleet::LogLevel::kWarning, "%s", w);
  // The files it names, as the start will meet them: a FIFO or a directory is
  // refused here, never opened (a FIFO would block the start).
  if (absl::Status s = ntpfleet::config::CheckNamedFiles(*config); !s.ok()) {
    std::fprintf(stderr, "ntpfleet-agent: %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_check_config)) {
    // The keys file as the start reads it (AgentLoop::Init, the same call).
    absl::StatusOr<ntpfleet::config::LoadedKeys> keys =
        ntpfleet::config::LoadKeysFile(*config);
    if (!keys.ok()) {
      std::fprintf(stderr, "ntpfleet-agent: %s\n",
                   std::string(keys.status().message()).c_str());
      return 2;
    }
    for (const std::string& w : keys->warnings)
      ntpfleet::Log(ntpfleet::LogLevel::kWarning, "%s", w);
    std::fputs(ntpfleet::config::FormatEffectiveConfig(*config).c_str(),
               stdout);
    return 0;
  }

  const absl::Duration report_bias = absl::GetFlag(FLAGS_sim_report_bias);
  if (report_bias != absl::ZeroDuration() &&
      absl::GetFlag(FLAGS_clock) != "sim") {
    std::fprintf(stderr,
                 "ntpfleet-agent: --sim-report-bias makes the agent report "
                 "offsets that are not true: it is for tests, and only "
                 "accepted with --clock=sim\n");
    return 2;
  }

  ntpfleet::clock::SystemMonotonicClock mono;
  std::unique_ptr<ntpfleet::clock::AdjustableClock> clock;
  std::function<absl::Duration()> sim_true_offset;
  const std::string clock_kind = absl::GetFlag(FLAGS_clock);
  if (clock_kind == "system") {
    auto system = std::make_unique<ntpfleet::clock::SystemClock>();
    // Fail at once, not at the first correction: setting the frequency to what
    // it already is changes nothing but needs the same capability.
    if (absl::Status s =
            system->SetFrequencyAdjustment(system->FrequencyAdjustment());
        !s.ok()) {
      std::fprintf(stderr, "ntpfleet-agent: %s\n",
                   std::string(s.message()).c_str());
      return 1;
    }
    clock = std::move(system);
  } else if (clock_kind == "sim") {
    ntpfleet::clock::SimClockParams params;
    params.initial_offset = absl::GetFlag(FLAGS_sim_offset);
    params.frequency_error_ppm = absl::GetFlag(FLAGS_sim_freq_ppm);
    params.wander = absl::GetFlag(FLAGS_sim_wander);
    params.seed = static_cast<uint64_t>(getpid());
    auto sim = std::make_unique<ntpfleet::clock::SimClock>(
        &mono, ntpfleet::clock::AnchorToRealtime(mono), params);
    const ntpfleet::clock::SimClock* sim_clock = sim.get();
    // True minus local (LocalStatus.sim_true_offset): the truth the reports
    // are tested against.
    sim_true_offset = [sim_clock] { return -sim_clock->Phase(); };
    clock = std::move(sim);
  } else {
    std::fprintf(
        stderr, "ntpfleet-agent: --clock must be `system` or `sim`, not `%s`\n",
        clock_kind.c_str());
    return 2;
  }

  ntpfleet::net::AgentOptions options;
  options.config = *config;
  options.node_name = absl::GetFlag(FLAGS_node_name);
  if (options.node_name.empty()) options.node_name = config->node_name;
  if (options.node_name.empty()) options.node_name = HostName();
  options.port = serve_port >= 0 ? serve_port : config->port;
  options.listen_address = serve_address;
  options.control_socket = socket_path;
  options.clock = clock.get();
  options.mono = &mono;
  options.clock_is_system = clock_kind == "system";
  options.once = absl::GetFlag(FLAGS_once);
  options.report_bias = report_bias;
  options.sim_true_offset = sim_true_offset;
  if (report_bias != absl::ZeroDuration()) {
    ntpfleet::Log(ntpfleet::LogLevel::kWarning,
                  "sim: reporting offsets %s off the truth (--sim-report-bias)",
                  absl::FormatDuration(report_bias));
  }
  // The ClockBound segment: --clockbound-shm, else the config's
  // `clockbound_shm`, else the default on the system clock only (many
  // simulated agents share one machine in the demo and the tests).
  if (const std::string flag = absl::GetFlag(FLAGS_clockbound_shm);
      !flag.empty()) {
    options.clockbound_shm = flag == "none" ? "" : flag;
    options.clockbound_required = true;
  } else if (config->clockbound_shm) {
    options.clockbound_shm = *config->clockbound_shm;
    options.clockbound_required = true;
  } else if (clock_kind == "system") {
    options.clockbound_shm = ntpfleet::clockbound::kDefaultPath;
  }
  options.clockbound_validity = absl::GetFlag(FLAGS_clockbound_validity);
  if (options.clockbound_validity <= absl::ZeroDuration()) {
    std::fprintf(stderr,
                 "ntpfleet-agent: --clockbound-validity must be positive\n");
    return 2;
  }

  absl::StatusOr<std::unique_ptr<ntpfleet::net::AgentLoop>> loop =
      ntpfleet::net::AgentLoop::Create(std::move(options));
  if (!loop.ok()) {
    std::fprintf(stderr, "ntpfleet-agent: %s\n",
                 std::string(loop.status().message()).c_str());
    return 1;
  }
  g_loop = loop->get();

  // With `controller` lines, report to each over its own long-lived stream
  // (and take resyncs from any of them, through one ResyncGate so that two
  // controllers cannot resync the node twice as often as one).
  std::vector<std::unique_ptr<ntpfleet::report::Reporter>> reporters;
  ntpfleet::report::ResyncGate resync_gate(
      ntpfleet::report::kControllerResyncMinInterval);
  if (!config->controllers.empty() && !absl::GetFlag(FLAGS_once)) {
    ntpfleet::report::ReporterOptions ro;
    ro.report_interval = config->report_interval;
    ntpfleet::TlsFiles tls{config->tls_cert, config->tls_key, config->tls_ca};
    if (!tls.empty()) {
      // All three, readable, matching: or the agent does not start (never
      // plain text because one file was missing). The same for every
      // controller.
      absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
          ntpfleet::ClientCredentials(tls, "tls_cert/tls_key/tls_ca");
      if (!creds.ok()) {
        std::fprintf(stderr, "ntpfleet-agent: %s\n",
                     std::string(creds.status().message()).c_str());
        return 2;
      }
      ro.credentials = *std::move(creds);
    } else {
      ntpfleet::Log(ntpfleet::LogLevel::kWarning,
                    "reporting to controller %s in plain text (no tls_cert, "
                    "tls_key, tls_ca): only a controller on loopback or "
                    "started with --insecure accepts that",
                    absl::StrJoin(config->controllers, ", "));
    }
    ro.hello = (*loop)->LocalStatus().node();
    for (const std::string& a : HostAddresses()) ro.hello.add_addresses(a);
    ro.hello.set_config_digest(
        Sha256Hex(ntpfleet::config::FormatSharedConfig(*config)));
    ntpfleet::report::SetDuration(config->report_interval,
                                  ro.hello.mutable_report_interval());
    // One instance id for all: each controller sees this agent's reconnects
    // as the same instance.
    std::random_device random;
    ro.hello.set_instance_id(absl::StrFormat("%08x%08x", random(), random()));
    ntpfleet::net::AgentLoop* l = loop->get();
    const ntpfleet::clock::MonotonicClock* m = &mono;
    for (const std::string& controller : config->controllers) {
      ro.controller = controller;
      reporters.push_back(std::make_unique<ntpfleet::report::Reporter>(
          ro, [l, m, controller, &resync_gate](
                  const ntpfleet::v1::Resync& r,
                  std::function<void(const ntpfleet::v1::ResyncResult&)> done) {
            if (std::optional<std::string> refused =
                    resync_gate.Admit(controller, m->Now())) {
              ntpfleet::Log(ntpfleet::LogLevel::kInfo,
                            "resync from controller %s not done: %s",
                            controller, *refused);
              ntpfleet::v1::ResyncResult result;
              result.set_request_id(r.request_id());
              result.set_outcome(ntpfleet::v1::RESYNC_OUTCOME_RATE_LIMITED);
              result.set_error(*refused);
              done(result);
              return;
            }
            l->PostResync(r, std::move(done));
          }));
    }
    // The crosscheck: each controller's probe assignment to the loop, and the
    // results for its targets back to its stream.
    for (size_t i = 0; i < reporters.size(); ++i) {
      const std::string controller = config->controllers[i];
      reporters[i]->SetProbesHandler(
          [l, controller](const ntpfleet::v1::ProbeAssignment& a) {
            l->PostProbes(controller, a);
          });
    }
    (*loop)->SetProbeListener(
        [&reporters, &config](
            const std::string& controller,
            const std::vector<ntpfleet::v1::ProbeResult>& results) {
          for (size_t i = 0; i < reporters.size(); ++i) {
            if (config->controllers[i] == controller) {
              reporters[i]->PublishProbes(results);
            }
          }
        });
    (*loop)->SetStatusListener([&reporters](const ntpfleet::v1::SyncStatus& s) {
      for (const auto& reporter : reporters) reporter->Publish(s);
    });
    (*loop)->SetLocalStatusFiller([&reporters](ntpfleet::v1::LocalStatus* out) {
      for (const auto& reporter : reporters) {
        *out->add_controllers() = reporter->Link();
      }
    });
    for (const auto& reporter : reporters) reporter->Start();
  }
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  absl::Status run = (*loop)->Run();
  g_loop = nullptr;
  for (const auto& reporter : reporters) reporter->Stop();
  if (!run.ok()) {
    std::fprintf(stderr, "ntpfleet-agent: %s\n",
                 std::string(run.message()).c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_once)) {
    return (*loop)->once_result() ? PrintResync(*(*loop)->once_result()) : 1;
  }
  ntpfleet::Log(ntpfleet::LogLevel::kInfo, "stopped");
  return 0;
}
