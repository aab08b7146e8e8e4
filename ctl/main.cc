// ntpfleetctl: wiring and flags only; each command is in its own cmd_*.cc. See
// --help.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/local_control.h"
#include "ctl/cmd_certs.h"
#include "ctl/cmd_doctor.h"
#include "ctl/cmd_import.h"
#include "ctl/commands.h"

ABSL_FLAG(std::string, controller, "",
          "controller address HOST:PORT, or several comma-separated "
          "(HOST:PORT,HOST:PORT: all are asked and their answers merged) "
          "(default: $NTPFLEET_CONTROLLER, else localhost:7123)");
ABSL_FLAG(std::string, control_socket,
          ntpfleet::local_control::kDefaultControlSocket,
          "the local agent's control socket (peers without NODE, sync)");
ABSL_FLAG(std::string, output, "table", "`table` (or `text`) or `json`");
ABSL_FLAG(std::string, config, "/etc/ntpfleet/agent.conf",
          "doctor: the agent's configuration");
ABSL_FLAG(std::string, out_file, "",
          "import-*: write the configuration to FILE (atomically, mode 0644) "
          "instead of stdout");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA that signed the controller's certificate (mutual TLS: with "
          "--tls-cert and --tls-key; default: $NTPFLEET_TLS_CA)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate saying who you are (ntpfleetctl certs issue --user "
          "NAME --role ROLE; default: $NTPFLEET_TLS_CERT)");
ABSL_FLAG(std::string, tls_key, "",
          "PEM key of --tls-cert (default: $NTPFLEET_TLS_KEY)");
ABSL_FLAG(std::string, color, "auto",
          "`auto` (only on a terminal), `always` or `never`");
ABSL_FLAG(std::optional<absl::Duration>, max_skew, std::nullopt,
          "status: exit with code 3 when the fleet's skew exceeds this (e.g. "
          "1ms), for scripts "
          "and health checks");
ABSL_FLAG(
    bool, step, false,
    "resync/sync: step the clock for any offset above 1 ms (without it, "
    "offsets above the "
    "step threshold, 128 ms, are still stepped and smaller ones are slewed)");
ABSL_FLAG(bool, all, false, "resync: every node");
ABSL_FLAG(std::string, label, "",
          "resync: the nodes with this label, KEY=VALUE");
ABSL_FLAG(bool, dry_run, false,
          "resync: show which nodes would be asked, ask none");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(1),
          "watch: redraw at most this often");
ABSL_FLAG(std::optional<absl::Duration>, since, std::nullopt,
          "history, audit: how far back (default 1h for history, 24h for "
          "audit), e.g. 30m, 24h, 168h");
ABSL_FLAG(bool, force, false,
          "resync: allow a step beyond the controller's operator limit (128 ms "
          "by default); needs the admin role");
ABSL_FLAG(bool, yes, false,
          "resync --all: do not ask (needed without a terminal)");
ABSL_FLAG(std::string, dir, "",
          "certs: the directory of the CA and its certificates");
ABSL_FLAG(std::string, node, "", "certs issue: a node certificate for NAME");
ABSL_FLAG(std::string, user, "",
          "certs issue: a user certificate for NAME (with --role)");
ABSL_FLAG(std::string, role, "",
          "certs issue --user: `viewer`, `operator` or `admin`");
ABSL_FLAG(std::optional<int>, days, std::nullopt,
          "certs: validity in days (default 3650 for the CA, 825 otherwise)");
ABSL_FLAG(std::string, tls_dir, "",
          "import-*: with --controller, add tls_cert DIR/node.pem, tls_key "
          "DIR/node.key and tls_ca DIR/ca.pem");
ABSL_FLAG(std::string, keys_out, "",
          "import-chrony-conf: convert chrony's keyfile to ntpd's format into "
          "this FILE (mode 0600) and use it");
ABSL_FLAG(std::string, root, "",
          "import-*: read the files the configuration names under DIR (e.g. "
          "another machine's image)");

constexpr char kUsage[] = R"(see and steer the fleet's clocks.

The fleet (through the controller):
  ntpfleetctl status [--max-skew 1ms]   every node: offset, error bound, stratum, ...
                                        sorted by |offset|, fleet skew on top (alias: skew)
  ntpfleetctl watch                     the same, live, with a skew sparkline
  ntpfleetctl peers NODE                a node's upstreams, in ntpq -p's layout
  ntpfleetctl resync NODE...|--label K=V|--all [--step] [--force] [--dry-run] [--yes]
                                        measure and correct now, on many nodes at once
                                        (operator; --all and --force: admin)
  ntpfleetctl history [--since 1h]      fleet skew over time
  ntpfleetctl history NODE [--since 24h]
                                        one node over time: offset and error-bound sparklines,
                                        min/max/last, stratum, state changes, a table (1 s,
                                        1 min or 1 h buckets, chosen by the span)
  ntpfleetctl audit [--since 24h]       who resynced what, and each node's result
  ntpfleetctl forget NODE               drop a decommissioned node (admin)

Several controllers (docs/CONTROLLER.md "More than one controller"): --controller A,B asks
them all at once and merges: the freshest report of each node wins, a node is CONNECTED if
any controller has it connected, and the fleet's skew and flags are recomputed over the
merged nodes. A controller that does not answer is named on stderr and the rest are still
shown (exit code as if it had answered); none answering is an error (exit 1). resync asks
each node through ONE controller (the first that holds its stream) and says which; forget
goes to all (exit 1 unless every one that knew the node forgot it); history is the first
answering controller's; audit merges their logs.

Mutual TLS: --tls-cert, --tls-key, --tls-ca (or $NTPFLEET_TLS_CERT, _KEY, _CA); your
certificate's role decides what you may do: viewer, operator, admin (docs/SECURITY.md).

This node (through the local agent, no controller needed):
  ntpfleetctl peers                     this node's upstreams, and why any is unusable
  ntpfleetctl sync [--step]             measure and correct now (like ntpdate)
  ntpfleetctl doctor [--config F]       check this node's NTP setup: who holds UDP 123,
                                        other time daemons, each upstream, the controller,
                                        TLS, drift file, kernel clock; the fix for each
                                        (ntpfleetctl doctor --help)
  ntpfleetctl sim-step -- DURATION      move a simulated clock (agents run with --clock=sim:
                                        demos and tests), as `date -s` would a real one

Migrating a node (no controller needed):
  ntpfleetctl import-ntp-conf FILE      an ntpd ntp.conf as an agent configuration
  ntpfleetctl import-chrony-conf FILE   a chrony.conf as one [--keys-out FILE]
                                        [--controller HOST:PORT [--tls-dir DIR]]
                                        [--out-file FILE] [--root DIR]; what the agent
                                        cannot do is kept as `# dropped: ... — why`

Certificates (mutual TLS; no controller needed):
  ntpfleetctl certs init --dir DIR [--days 3650]      the fleet's CA: DIR/ca.pem, DIR/ca.key
  ntpfleetctl certs issue --dir DIR --node NAME       a node's certificate and key
  ntpfleetctl certs issue --dir DIR --user NAME --role viewer|operator|admin
  ntpfleetctl certs issue --dir DIR --controller HOST[,HOST...]   (the names clients dial)
                                        [--days 825]; never overwrites a file

--output json prints the API's messages as JSON. Exit codes: 0 fine, 1 error, 2 usage,
3 a check failed (--max-skew exceeded, or a resync that did not succeed everywhere).)";

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  // `ntpfleetctl doctor --help`: the checks, not every flag of every command.
  if (argc >= 3 && std::string(argv[1]) == "doctor") {
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--help" || a == "-h" || a == "-help") {
        std::fputs(ntpfleet::ctl::kDoctorHelp, stdout);
        return 0;
      }
    }
  }
  ntpfleet::DashedFlags flags(argc, argv);
  std::vector<char*> args = absl::ParseCommandLine(flags.argc(), flags.argv());
  if (args.size() >= 2 && (std::string(args[1]) == "import-ntp-conf" ||
                           std::string(args[1]) == "import-chrony-conf")) {
    // --controller has no default here.
    return ntpfleet::ctl::RunImport(
        args[1], std::vector<std::string>(args.begin() + 2, args.end()),
        {absl::GetFlag(FLAGS_controller), absl::GetFlag(FLAGS_tls_dir),
         absl::GetFlag(FLAGS_out_file), absl::GetFlag(FLAGS_keys_out),
         absl::GetFlag(FLAGS_root)});
  }
  ntpfleet::ctl::CommonOptions o;
  o.controller = absl::GetFlag(FLAGS_controller);
  if (o.controller.empty()) {
    const char* env = std::getenv("NTPFLEET_CONTROLLER");
    o.controller = env && *env ? env : "localhost:7123";
  }
  o.control_socket = absl::GetFlag(FLAGS_control_socket);
  auto flag_or_env = [](std::string value, const char* env) {
    if (value.empty()) {
      const char* e = std::getenv(env);
      if (e != nullptr) value = e;
    }
    return value;
  };
  o.tls_ca = flag_or_env(absl::GetFlag(FLAGS_tls_ca), "NTPFLEET_TLS_CA");
  o.tls_cert = flag_or_env(absl::GetFlag(FLAGS_tls_cert), "NTPFLEET_TLS_CERT");
  o.tls_key = flag_or_env(absl::GetFlag(FLAGS_tls_key), "NTPFLEET_TLS_KEY");
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output != "table" && output != "text" && output != "json") {
    std::fprintf(stderr,
                 "ntpfleetctl: --output must be `table` (or `text`) or "
                 "`json`\n");
    return 2;
  }
  o.json = output == "json";
  const std::string color = absl::GetFlag(FLAGS_color);
  o.color = color == "always" || (color == "auto" && isatty(STDOUT_FILENO));

  if (args.size() < 2) {
    std::fputs(absl::ProgramUsageMessage().data(), stderr);
    return 2;
  }
  const std::string command = args[1];
  const std::vector<std::string> rest(args.begin() + 2, args.end());
  if (command == "certs") {  // --controller is the host list here
    return ntpfleet::ctl::RunCerts(
        rest, {absl::GetFlag(FLAGS_dir), absl::GetFlag(FLAGS_node),
               absl::GetFlag(FLAGS_user), absl::GetFlag(FLAGS_role),
               absl::GetFlag(FLAGS_controller), absl::GetFlag(FLAGS_days)});
  }
  if (command == "status" || command == "skew") {
    return ntpfleet::ctl::RunStatus(o, absl::GetFlag(FLAGS_max_skew));
  }
  if (command == "watch")
    return ntpfleet::ctl::RunWatch(o, absl::GetFlag(FLAGS_interval));
  if (command == "peers" && rest.size() <= 1) {
    return ntpfleet::ctl::RunPeers(o, rest.empty() ? "" : rest[0]);
  }
  if (command == "resync") {
    ntpfleet::ctl::ResyncOptions r;
    r.nodes = rest;
    r.label = absl::GetFlag(FLAGS_label);
    r.all = absl::GetFlag(FLAGS_all);
    r.step = absl::GetFlag(FLAGS_step);
    r.dry_run = absl::GetFlag(FLAGS_dry_run);
    r.force = absl::GetFlag(FLAGS_force);
    r.yes = absl::GetFlag(FLAGS_yes);
    return ntpfleet::ctl::RunResync(o, r);
  }
  if (command == "history" && rest.size() <= 1) {
    return ntpfleet::ctl::RunHistory(
        o, rest.empty() ? "" : rest[0],
        absl::GetFlag(FLAGS_since).value_or(absl::Hours(1)));
  }
  if (command == "audit" && rest.empty()) {
    return ntpfleet::ctl::RunAudit(
        o, absl::GetFlag(FLAGS_since).value_or(absl::Hours(24)));
  }
  if (command == "forget" && rest.size() == 1) {
    return ntpfleet::ctl::RunForget(o, rest[0]);
  }
  if (command == "sim-step" && rest.size() == 1) {
    absl::Duration step;
    if (!absl::ParseDuration(rest[0], &step)) {
      std::fprintf(
          stderr,
          "ntpfleetctl sim-step: `%s` is not a duration (e.g. 800ms, -2s)\n",
          rest[0].c_str());
      return 2;
    }
    return ntpfleet::ctl::RunSimStep(o, step);
  }
  if (command == "doctor" && rest.empty()) {
    ntpfleet::ctl::DoctorOptions d;
    d.config = absl::GetFlag(FLAGS_config);
    d.socket = o.control_socket;
    d.json = o.json;
    d.tls_cert = o.tls_cert;
    d.tls_key = o.tls_key;
    d.tls_ca = o.tls_ca;
    return ntpfleet::ctl::RunDoctor(d);
  }
  if (command == "sync" && rest.empty()) {
    return ntpfleet::ctl::RunSync(o, absl::GetFlag(FLAGS_step));
  }
  std::fprintf(stderr, "ntpfleetctl: unknown command `%s`\n\n%s",
               command.c_str(), absl::ProgramUsageMessage().data());
  return 2;
}
