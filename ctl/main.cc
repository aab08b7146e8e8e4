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
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clockbound/segment.h"
#include "common/flags.h"
#include "common/grpc_log.h"
#include "common/local_control.h"
#include "common/log.h"
#include "ctl/cmd_certs.h"
#include "ctl/cmd_doctor.h"
#include "ctl/cmd_import.h"
#include "ctl/cmd_now.h"
#include "ctl/commands.h"
#include "ctl/flag_values.h"
#include "ctl/fleet_health.h"
#include "ctl/fleet_view.h"

ABSL_FLAG(std::string, controller, "",
          "controller address HOST:PORT, or several comma-separated "
          "(HOST:PORT,HOST:PORT: all are asked and their answers merged) "
          "(default: $NTPFLEET_CONTROLLER, else localhost:7123)");
ABSL_FLAG(std::string, control_socket,
          ntpfleet::local_control::kDefaultControlSocket,
          "the local agent's control socket (peers without NODE, sync)");
ABSL_FLAG(std::string, output, "table",
          "`table` (or `text`) or `json`; status, watch, nodes and drift also "
          "`wide` (more columns) and `csv`");
ABSL_FLAG(std::string, shm, ntpfleet::clockbound::kDefaultPath,
          "now: the ClockBound segment to read (the agent's `clockbound_shm`)");
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
// Durations and numbers are strings here, converted by ctl/flag_values.h: a
// bad value is then a usage error (exit 2) showing an example, not Abseil's
// "ERROR: Illegal value" (exit 1).
ABSL_FLAG(std::string, color, "auto",
          "`auto` (only on a terminal), `always` or `never`");
ABSL_FLAG(std::string, max_skew, "",
          "status: the health check: exit 3 when the fleet's skew exceeds this "
          "duration, 0 or more (e.g. 1ms), or a node shown is stale, "
          "disconnected, unsynchronised or flagged (also by the crosscheck), "
          "or fewer than --min-nodes nodes are counted");
ABSL_FLAG(std::string, min_nodes, "",
          "status: the health check (also without --max-skew): fail when "
          "fewer than N (1 or more) of the nodes shown are counted in the "
          "skew (default 1)");
ABSL_FLAG(std::string, allow, "",
          "status --max-skew/--min-nodes: tolerate these node rules "
          "(repeatable or comma list: stale, disconnected, unsynchronised, "
          "flagged, crosscheck); their nodes are still listed on stderr");
ABSL_FLAG(std::string, state, "",
          "status, watch, nodes, drift: only nodes in any of these states "
          "(repeatable or comma list): connected, stale, disconnected, "
          "synchronised, syncing, unsynchronised, holdover, local-clock, "
          "refused, no-report, flagged, duplicate, crosscheck, healthy, "
          "unhealthy");
ABSL_FLAG(std::string, sort, "",
          "status, watch, nodes: `offset` (status's default), `bound`, "
          "`name` (nodes's default) or `last-seen`; worst first");
ABSL_FLAG(std::string, by_label, "",
          "drift: compare each node with the nodes of its value of this "
          "label (default: of its role)");
ABSL_FLAG(
    bool, step, false,
    "resync/sync: step the clock for any offset above 1 ms (without it, "
    "offsets above the "
    "step threshold, 128 ms, are still stepped and smaller ones are slewed)");
ABSL_FLAG(bool, all, false, "resync: every node");
ABSL_FLAG(bool, edges, false,
          "crosscheck: also list every measured edge of the probe graph");
ABSL_FLAG(std::string, label, "",
          "resync: the nodes with this label, KEY=VALUE; status, watch, "
          "nodes, drift: only the nodes with it (repeatable: all must match)");
ABSL_FLAG(bool, dry_run, false,
          "resync: show which nodes would be asked, ask none");
ABSL_FLAG(std::string, interval, "1s",
          "watch: redraw at most this often (a duration, e.g. 5s)");
ABSL_FLAG(std::string, since, "",
          "history, audit: how far back, a positive duration (default 1h for "
          "history, 24h for audit), e.g. 30m, 24h, 168h");
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
ABSL_FLAG(std::string, days, "",
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
  ntpfleetctl status [NAME-GLOB...]     every node: offset, error bound, stratum, ...
                                        sorted by |offset|, fleet skew on top (alias: skew)
  ntpfleetctl watch [NAME-GLOB...]      the same, live, with a skew sparkline
  ntpfleetctl nodes [NAME-GLOB...]      the inventory: role, version, addresses, labels,
                                        config digest, first and last seen
  ntpfleetctl drift [--by-label K]      nodes grouped by config digest; the odd ones out of
                                        each role (or label value); exit 3 if any
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
  ntpfleetctl crosscheck [--edges]      the fleet checks itself: each node's clock as the
                                        other nodes measured it, beside what it reports;
                                        pairwise skew p50/p99/max; exit 3 if a node is
                                        flagged (ntpfleetctl crosscheck --help)

Several controllers (docs/CONTROLLER.md "More than one controller"): --controller A,B asks
them all at once and merges: the freshest report of each node wins, a node is CONNECTED if
any controller has it connected, and the fleet's skew and flags are recomputed over the
merged nodes. A controller that does not answer is named on stderr and the rest are still
shown (exit code as if it had answered); none answering is an error (exit 1). resync asks
each node through ONE controller (the first that holds its stream) and says which; forget
goes to all (exit 1 unless every one that knew the node forgot it); history is the first
answering controller's; audit merges their logs; crosscheck shows the first controller
with a solve, and says which.

Choosing nodes (status, watch, nodes, drift; all given must match):
  NAME-GLOB...                          names, fnmatch patterns ('web-*'; quote them)
  --label K=V                           with this label (repeat: all of them)
  --state S[,S]                         in any of these states: connected, stale,
                                        disconnected, synchronised, syncing, unsynchronised,
                                        holdover, local-clock, refused, no-report, flagged,
                                        duplicate, crosscheck, healthy, unhealthy
  --sort offset|bound|name|last-seen    worst first (status: offset; nodes: name)
  --output table|wide|json|csv          wide adds role, version, addresses, labels, digest
The fleet's skew and counts on top stay the whole fleet's ("3 of 40 nodes shown").

Health check (exit 3 and one line per failed rule on stderr, naming the nodes):
  ntpfleetctl status --max-skew 1ms [--min-nodes N] [--allow disconnected]
    fails when the fleet's skew exceeds 1ms, when a node shown is stale, disconnected,
    unsynchronised (holdover, refused, no report, a client on its local clock; syncing
    passes), flagged, or crosscheck-flagged (the other nodes measured its clock
    elsewhere than it reports: ntpfleetctl crosscheck), or when fewer than N nodes
    shown (default 1) are counted in the skew. --allow RULE tolerates stale,
    disconnected, unsynchronised, flagged or crosscheck nodes (still listed). A decommissioned node: `ntpfleetctl forget NODE`.

Examples:
  ntpfleetctl status --label rack=a1 --sort bound          one rack, worst error bound first
  ntpfleetctl status --state unhealthy                     what the health check complains of
  ntpfleetctl status 'db-*' --max-skew 1ms --min-nodes 3   a check of the database nodes
  ntpfleetctl nodes --state disconnected --sort last-seen  gone the longest first
  ntpfleetctl nodes --output csv > inventory.csv           the inventory for a spreadsheet
  ntpfleetctl drift --by-label rack --state connected      configurations per rack, live nodes

Mutual TLS: --tls-cert, --tls-key, --tls-ca (or $NTPFLEET_TLS_CERT, _KEY, _CA); your
certificate's role decides what you may do: viewer, operator, admin (docs/SECURITY.md).

This node (through the local agent, no controller needed):
  ntpfleetctl peers                     this node's upstreams, and why any is unusable
  ntpfleetctl sync [--step]             measure and correct now (like ntpdate)
  ntpfleetctl doctor [--config F]       check this node's NTP setup: who holds UDP 123,
                                        other time daemons, each upstream, the controller,
                                        TLS, drift file, kernel clock; the fix for each
                                        (ntpfleetctl doctor --help)
  ntpfleetctl now [--shm PATH]          now, bounded: earliest, latest, the bound and the
                                        clock's status from the agent's ClockBound segment
                                        (default /var/run/clockbound/shm0; docs/CLOCKBOUND.md)
  ntpfleetctl sim-step -- DURATION      move a simulated clock (agents run with --clock=sim:
                                        demos and tests), as `date -s` would a real one;
                                        at most 596523h (68 years, half an NTP era) either way

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

--output json prints the API's messages as JSON (watch: one document per line, one line per
update). Exit codes: 0 fine, 1 error, 2 usage (a bad flag value, argument or --controller
address; the message shows what is expected), 3 a check failed (status's health check, drift found, a resync that did not succeed
everywhere, or a node flagged by the crosscheck).)";

namespace {

// Every value of a repeatable flag (--label a=1 --label b=2): Abseil keeps only
// the last. `args` as DashedFlags rewrote them; nothing after "--".
std::vector<std::string> RepeatedFlag(int argc, char** argv,
                                      const std::string& name) {
  std::vector<std::string> values;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") break;
    for (const char* dash : {"--", "-"}) {
      const std::string flag = std::string(dash) + name;
      if (a == flag && i + 1 < argc) {
        values.push_back(argv[++i]);
      } else if (a.rfind(flag + "=", 0) == 0) {
        values.push_back(a.substr(flag.size() + 1));
      }
    }
  }
  return values;
}

int Usage(const absl::Status& status) {
  std::fprintf(stderr, "ntpfleetctl: %s\n",
               std::string(status.message()).c_str());
  return 2;
}

// A duration flag given as text: nullopt when not given.
absl::StatusOr<std::optional<absl::Duration>> OptionalDuration(
    absl::string_view flag, const std::string& text, absl::string_view example,
    ntpfleet::ctl::DurationRange range) {
  if (text.empty()) return std::nullopt;
  absl::StatusOr<absl::Duration> d =
      ntpfleet::ctl::ParseDurationFlag(flag, text, example, range);
  if (!d.ok()) return d.status();
  return std::optional<absl::Duration>(*d);
}

absl::StatusOr<std::optional<int>> OptionalCount(absl::string_view flag,
                                                 const std::string& text,
                                                 absl::string_view example,
                                                 int min) {
  if (text.empty()) return std::nullopt;
  absl::StatusOr<int> n =
      ntpfleet::ctl::ParseCountFlag(flag, text, example, min);
  if (!n.ok()) return n.status();
  return std::optional<int>(*n);
}

// The commands that talk to the controller (--controller is checked for
// them; `peers` only with a NODE).
bool UsesController(const std::string& command,
                    const std::vector<std::string>& rest) {
  for (const char* c : {"status", "skew", "watch", "nodes", "drift", "resync",
                        "history", "audit", "crosscheck", "forget"}) {
    if (command == c) return true;
  }
  return command == "peers" && !rest.empty();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  // `ntpfleetctl doctor --help`: the checks, not every flag of every command.
  // `ntpfleetctl crosscheck --help`: what is measured and what a flag means.
  if (argc >= 3 && (std::string(argv[1]) == "doctor" ||
                    std::string(argv[1]) == "crosscheck")) {
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--help" || a == "-h" || a == "-help") {
        std::fputs(std::string(argv[1]) == "doctor"
                       ? ntpfleet::ctl::kDoctorHelp
                       : ntpfleet::ctl::kCrosscheckHelp,
                   stdout);
        return 0;
      }
    }
  }
  ntpfleet::DashedFlags flags(argc, argv);
  const std::vector<std::string> labels =
      RepeatedFlag(flags.argc(), flags.argv(), "label");
  const std::vector<std::string> states =
      RepeatedFlag(flags.argc(), flags.argv(), "state");
  const std::vector<std::string> allowed =
      RepeatedFlag(flags.argc(), flags.argv(), "allow");
  std::vector<char*> args = absl::ParseCommandLine(flags.argc(), flags.argv());
  // gRPC's own lines ("E1204 ... channel.cc") as ours, errors only.
  ntpfleet::SetLogProgram("ntpfleetctl");
  ntpfleet::RouteGrpcLogging(/*verbose=*/false);
  if (args.size() >= 2 && (std::string(args[1]) == "import-ntp-conf" ||
                           std::string(args[1]) == "import-chrony-conf")) {
    // --controller has no default here.
    return ntpfleet::ctl::RunImport(
        args[1], std::vector<std::string>(args.begin() + 2, args.end()),
        {absl::GetFlag(FLAGS_controller), absl::GetFlag(FLAGS_tls_dir),
         absl::GetFlag(FLAGS_out_file), absl::GetFlag(FLAGS_keys_out),
         absl::GetFlag(FLAGS_root)});
  }
  // Every flag value, whatever the command (as Abseil checks typed flags).
  using ntpfleet::ctl::DurationRange;
  absl::StatusOr<std::optional<absl::Duration>> max_skew =
      OptionalDuration("--max-skew", absl::GetFlag(FLAGS_max_skew), "1ms",
                       DurationRange::kZeroOrMore);
  if (!max_skew.ok()) return Usage(max_skew.status());
  absl::StatusOr<std::optional<absl::Duration>> since = OptionalDuration(
      "--since", absl::GetFlag(FLAGS_since), "24h", DurationRange::kPositive);
  if (!since.ok()) return Usage(since.status());
  absl::StatusOr<absl::Duration> interval = ntpfleet::ctl::ParseDurationFlag(
      "--interval", absl::GetFlag(FLAGS_interval), "5s",
      DurationRange::kZeroOrMore);
  if (!interval.ok()) return Usage(interval.status());
  absl::StatusOr<std::optional<int>> min_nodes =
      OptionalCount("--min-nodes", absl::GetFlag(FLAGS_min_nodes), "3", 1);
  if (!min_nodes.ok()) return Usage(min_nodes.status());
  absl::StatusOr<std::optional<int>> days =
      OptionalCount("--days", absl::GetFlag(FLAGS_days), "825", 1);
  if (!days.ok()) return Usage(days.status());
  absl::StatusOr<bool> color = ntpfleet::ctl::ParseColorFlag(
      absl::GetFlag(FLAGS_color), isatty(STDOUT_FILENO));
  if (!color.ok()) return Usage(color.status());

  ntpfleet::ctl::CommonOptions o;
  o.controller = absl::GetFlag(FLAGS_controller);
  // Where the address came from, for its error message.
  std::string controller_from = "--controller";
  if (o.controller.empty()) {
    const char* env = std::getenv("NTPFLEET_CONTROLLER");
    if (env && *env) controller_from = "$NTPFLEET_CONTROLLER";
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
  absl::StatusOr<ntpfleet::ctl::OutputFormat> output =
      ntpfleet::ctl::ParseOutputFormat(absl::GetFlag(FLAGS_output));
  if (!output.ok()) return Usage(output.status());
  o.output = *output;
  o.json = o.output == ntpfleet::ctl::OutputFormat::kJson;
  o.color = *color;

  if (args.size() < 2) {
    std::fputs(absl::ProgramUsageMessage().data(), stderr);
    return 2;
  }
  const std::string command = args[1];
  const std::vector<std::string> rest(args.begin() + 2, args.end());
  if (absl::Status s = ntpfleet::ctl::CheckArgumentCount(command, rest);
      !s.ok()) {
    return Usage(s);
  }
  if (UsesController(command, rest)) {
    if (absl::Status s =
            ntpfleet::ctl::CheckControllerFlag(o.controller, controller_from);
        !s.ok()) {
      return Usage(s);
    }
  }
  const bool view_command = command == "status" || command == "skew" ||
                            command == "watch" || command == "nodes" ||
                            command == "drift";
  if (!view_command && (o.output == ntpfleet::ctl::OutputFormat::kWide ||
                        o.output == ntpfleet::ctl::OutputFormat::kCsv)) {
    std::fprintf(stderr,
                 "ntpfleetctl: --output wide and csv are for status, watch, "
                 "nodes and drift; `%s` has table and json\n",
                 command.c_str());
    return 2;
  }
  ntpfleet::ctl::ViewOptions view;
  if (view_command) {
    absl::StatusOr<ntpfleet::ctl::NodeFilter> filter =
        ntpfleet::ctl::ParseNodeFilter(labels, states, rest);
    if (!filter.ok()) return Usage(filter.status());
    view.filter = *std::move(filter);
    view.output = o.output;
    if (const std::string sort = absl::GetFlag(FLAGS_sort); !sort.empty()) {
      absl::StatusOr<ntpfleet::ctl::SortKey> key =
          ntpfleet::ctl::ParseSortKey(sort);
      if (!key.ok()) return Usage(key.status());
      view.sort = *key;
    }
  }
  if (command == "certs") {  // --controller is the host list here
    return ntpfleet::ctl::RunCerts(
        rest, {absl::GetFlag(FLAGS_dir), absl::GetFlag(FLAGS_node),
               absl::GetFlag(FLAGS_user), absl::GetFlag(FLAGS_role),
               absl::GetFlag(FLAGS_controller), *days});
  }
  if (command == "status" || command == "skew") {
    ntpfleet::ctl::StatusOptions s;
    s.view = view;
    s.health.max_skew = *max_skew;
    s.health.min_nodes = min_nodes->value_or(1);
    s.check = s.health.max_skew.has_value() || min_nodes->has_value();
    absl::StatusOr<std::vector<ntpfleet::ctl::HealthRule>> allow =
        ntpfleet::ctl::ParseAllowedRules(allowed);
    if (!allow.ok()) return Usage(allow.status());
    if (!allow->empty() && !s.check) {
      std::fprintf(stderr,
                   "ntpfleetctl: --allow tolerates a rule of the health check: "
                   "give --max-skew D (or --min-nodes N) too\n");
      return 2;
    }
    s.health.allow = *std::move(allow);
    return ntpfleet::ctl::RunStatus(o, s);
  }
  if (command == "watch") {
    return ntpfleet::ctl::RunWatch(o, *interval, view);
  }
  if (command == "nodes") return ntpfleet::ctl::RunNodes(o, view);
  if (command == "drift") {
    return ntpfleet::ctl::RunDrift(o, view, absl::GetFlag(FLAGS_by_label));
  }
  if (command == "peers" && rest.size() <= 1) {
    return ntpfleet::ctl::RunPeers(o, rest.empty() ? "" : rest[0]);
  }
  if (command == "resync") {
    if (labels.size() > 1) {
      std::fprintf(stderr,
                   "ntpfleetctl: resync takes one --label KEY=VALUE (it "
                   "selects the nodes with it); run one resync per label\n");
      return 2;
    }
    ntpfleet::ctl::ResyncOptions r;
    r.nodes = rest;
    r.label = absl::GetFlag(FLAGS_label);
    if (!r.label.empty()) {
      if (absl::Status s = ntpfleet::ctl::CheckResyncLabel(r.label); !s.ok()) {
        return Usage(s);
      }
    }
    r.all = absl::GetFlag(FLAGS_all);
    r.step = absl::GetFlag(FLAGS_step);
    r.dry_run = absl::GetFlag(FLAGS_dry_run);
    r.force = absl::GetFlag(FLAGS_force);
    r.yes = absl::GetFlag(FLAGS_yes);
    return ntpfleet::ctl::RunResync(o, r);
  }
  if (command == "history" && rest.size() <= 1) {
    return ntpfleet::ctl::RunHistory(o, rest.empty() ? "" : rest[0],
                                     since->value_or(absl::Hours(1)));
  }
  if (command == "audit" && rest.empty()) {
    return ntpfleet::ctl::RunAudit(o, since->value_or(absl::Hours(24)));
  }
  if (command == "crosscheck" && rest.empty()) {
    return ntpfleet::ctl::RunCrosscheck(o, absl::GetFlag(FLAGS_edges));
  }
  if (command == "forget" && rest.size() == 1) {
    return ntpfleet::ctl::RunForget(o, rest[0]);
  }
  if (command == "now" && rest.empty()) {
    return ntpfleet::ctl::RunNow(absl::GetFlag(FLAGS_shm), o.json);
  }
  if (command == "sim-step" && rest.size() == 1) {
    absl::StatusOr<absl::Duration> step = ntpfleet::ctl::ParseSimStep(rest[0]);
    if (!step.ok()) return Usage(step.status());
    return ntpfleet::ctl::RunSimStep(o, *step);
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
