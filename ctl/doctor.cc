#include "ctl/doctor.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace ntpfleet::ctl {
namespace {

constexpr char kAgentUnit[] = "ntpfleet-agent";

// "+1.234 ms"; microseconds below 1 ms, seconds from 1 s.
std::string Ms(absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  if (std::fabs(s) >= 1) return absl::StrFormat("%+.3f s", s);
  if (std::fabs(s) < 1e-3) return absl::StrFormat("%+.0f µs", s * 1e6);
  return absl::StrFormat("%+.3f ms", s * 1e3);
}
std::string Unsigned(absl::Duration d) {
  std::string s = Ms(d);
  if (!s.empty() && s[0] == '+') s.erase(0, 1);
  return s;
}

std::string Processes(const std::vector<ProcessFact>& ps) {
  std::vector<std::string> out;
  for (const ProcessFact& p : ps)
    out.push_back(absl::StrFormat("%s (pid %d)", p.comm, p.pid));
  return absl::StrJoin(out, ", ");
}

// The systemd unit of a daemon's process name (RHEL's names: the seed's fleet
// is CentOS 7), and what other distributions call it.
std::string UnitOf(const std::string& comm) {
  if (comm == "systemd-timesyn") return "systemd-timesyncd";
  return comm;
}
std::string UnitAliases(const std::string& comm) {
  if (comm == "ntpd") return " (Debian: ntp or ntpsec; OpenNTPD: openntpd)";
  if (comm == "chronyd") return " (Debian: chrony)";
  return "";
}

std::string StateName(v1::SyncState s) {
  switch (s) {
    case v1::SYNC_STATE_UNSYNCHRONISED:
      return "unsynchronised";
    case v1::SYNC_STATE_SYNCING:
      return "syncing";
    case v1::SYNC_STATE_SYNCHRONISED:
      return "synchronised";
    case v1::SYNC_STATE_HOLDOVER:
      return "holdover";
    case v1::SYNC_STATE_LOCAL_CLOCK:
      return "serving its local clock";
    case v1::SYNC_STATE_REFUSED:
      return "refused by its servers";
    default:
      return "state unknown";
  }
}

bool AgentSaysSynchronised(const AgentFacts& a) {
  if (!a.status.has_value()) return false;
  const v1::SyncState s = a.status->status().state();
  return s == v1::SYNC_STATE_SYNCHRONISED || s == v1::SYNC_STATE_LOCAL_CLOCK;
}

// The agent disciplines this machine's clock (as far as doctor can tell: an
// agent whose status could not be read is assumed to, as the packaged one
// does).
bool AgentOnSystemClock(const AgentFacts& a) {
  if (!a.running) return false;
  return !a.status.has_value() || a.status->clock() != "sim";
}

// What the running agent says about one source, or "".
std::string AgentView(const UpstreamFacts& u) {
  if (!u.agent_view.has_value()) return "";
  const v1::PeerStatus& p = *u.agent_view;
  if (!p.unusable_reason().empty())
    return absl::StrCat("the agent: ", p.unusable_reason());
  switch (p.mark()) {
    case v1::SELECTION_MARK_SYSTEM_PEER:
      return absl::StrFormat("the agent: system peer (*), reach %o", p.reach());
    case v1::SELECTION_MARK_CANDIDATE:
      return absl::StrFormat("the agent: combined (+), reach %o", p.reach());
    case v1::SELECTION_MARK_FALSETICKER:
      return "the agent: falseticker (x): its time disagrees with the others";
    case v1::SELECTION_MARK_OUTLIER:
      return "the agent: outlier (-)";
    default:
      return absl::StrFormat("the agent: reach %o", p.reach());
  }
}

std::string WithAgentView(std::string found, const UpstreamFacts& u) {
  const std::string view = AgentView(u);
  if (!view.empty()) absl::StrAppend(&found, "; ", view);
  return found;
}

CheckLine Line(CheckLevel level, std::string check, std::string found,
               std::string fix = "") {
  return CheckLine{level, std::move(check), std::move(found), std::move(fix)};
}

// The agent got KoD DENY or RSTR from this upstream (`peers` refid .DENY.).
bool AgentWasRefused(const UpstreamFacts& u) {
  if (!u.agent_view.has_value()) return false;
  const std::string& r = u.agent_view->refid();
  return r == "DENY" || r == "RSTR" || r == ".DENY." || r == ".RSTR.";
}

constexpr char kRefusedFix[] =
    "on the server, allow this node's address before any catch-all, "
    "without `ignore`, `noserve` or `notrust`: e.g. `restrict "
    "192.168.0.0 mask 255.255.0.0 nomodify notrap nopeer noquery`; "
    "then restart this node's agent (it stops asking a server that "
    "sent DENY)";

CheckLine CheckOneUpstream(const UpstreamFacts& u) {
  const std::string check = absl::StrCat("upstream ", u.name);
  const ProbeResult& p = u.probe;
  const std::string at = p.address.empty() || p.address == u.name
                             ? ""
                             : absl::StrCat(" (", p.address, ")");
  switch (p.outcome) {
    case ProbeOutcome::kAnswered: {
      if (p.stratum >= 15) {
        return Line(
            CheckLevel::kFail, check,
            WithAgentView(absl::StrFormat("answers%s at stratum %d: too high "
                                          "to synchronise from (this node "
                                          "would be at %d, unsynchronised)",
                                          at, p.stratum, p.stratum + 1),
                          u),
            "the server is too far from a reference clock: point it "
            "at better upstreams, or use a server closer to one");
      }
      const std::string found = WithAgentView(
          absl::StrFormat("answers%s: stratum %d, refid %s, offset %s, "
                          "delay %s",
                          at, p.stratum, p.refid, Ms(p.offset),
                          Unsigned(p.delay)),
          u);
      // The agent cannot use a server that answers doctor: say why it may
      // differ.
      if (u.agent_view.has_value() &&
          !u.agent_view->unusable_reason().empty()) {
        return Line(
            CheckLevel::kWarn, check, found,
            "it answers doctor's query (from an ephemeral port) but not the "
            "agent's: a server that sent KoD DENY before is not asked again "
            "until the agent restarts (systemctl restart ntpfleet-agent); a "
            "firewall may pass only replies to ephemeral ports (the agent "
            "sends from its server port); or it just came back: wait a poll "
            "interval");
      }
      return Line(CheckLevel::kOk, check, found);
    }
    case ProbeOutcome::kKissOfDeath:
      if (p.kiss_code == "DENY" || p.kiss_code == "RSTR") {
        return Line(
            CheckLevel::kFail, check,
            WithAgentView(
                absl::StrFormat(
                    "refused by the server%s (KoD %s): its `restrict` rules "
                    "deny this node (the server is up; this is not "
                    "\"unsynchronised\" or \"unreachable\")",
                    at, p.kiss_code),
                u),
            kRefusedFix);
      }
      if (p.kiss_code == "RATE") {
        return Line(
            CheckLevel::kWarn, check,
            WithAgentView(absl::StrFormat("rate-limited by the server%s (KoD "
                                          "RATE)",
                                          at),
                          u),
            "poll it less often (a higher minpoll), or exempt the "
            "fleet's subnet from `limited` on the server");
      }
      return Line(CheckLevel::kWarn, check,
                  WithAgentView(absl::StrFormat("answers%s with kiss code %s",
                                                at, p.kiss_code),
                                u),
                  "see the server's log for why it sends this code");
    case ProbeOutcome::kUnsynchronised:
      return Line(
          CheckLevel::kFail, check,
          WithAgentView(
              absl::StrFormat(
                  "server answers but is itself unsynchronised (stratum "
                  "%d%s%s): it has no time to give — ntpdate's \"no server "
                  "suitable for synchronization found\"",
                  p.stratum, p.leap == 3 ? ", leap 3 alarm" : "",
                  at.empty() ? "" : absl::StrCat("; asked ", p.address)),
              u),
          "the server itself has no time source: give it upstreams (`server` "
          "lines it can reach) or a local clock (`server 127.127.1.0` and "
          "`fudge 127.127.1.0 stratum 10`), and wait until `ntpfleetctl "
          "peers` on it shows '*' (or `ntpq -p` on an ntpd server)");
    case ProbeOutcome::kNoReply:
      // The agent was refused (KoD DENY/RSTR; `peers` shows refid .DENY.)
      // and the server kisses an address at most once per interval (8 s for
      // ntpfleet, ntpd's `discard` interval), so doctor's own query from the
      // same address may meet silence: the agent's kiss is the answer.
      if (AgentWasRefused(u)) {
        return Line(
            CheckLevel::kFail, check,
            WithAgentView(
                absl::StrFormat(
                    "refused by the server%s (KoD %s to the agent; doctor's "
                    "own query got no reply, as a server kisses an address "
                    "at most once per interval): its `restrict` rules deny "
                    "this node (the server is up; this is not "
                    "\"unsynchronised\" or \"unreachable\")",
                    at,
                    absl::StrContains(u.agent_view->refid(), "RSTR") ? "RSTR"
                                                                     : "DENY"),
                u),
            kRefusedFix);
      }
      return Line(
          CheckLevel::kFail, check,
          WithAgentView(absl::StrFormat("no reply%s to doctor's query in %s",
                                        at, Unsigned(p.timeout)),
                        u),
          "check that an NTP server runs there, the network path and "
          "firewalls (UDP 123 both ways; see the firewall line), and the "
          "server's `restrict` lines for this node (`ignore` and `noserve` "
          "drop requests without a word)");
    case ProbeOutcome::kUnresolved:
      return Line(CheckLevel::kFail, check,
                  WithAgentView(absl::StrCat("cannot resolve: ", p.error), u),
                  "fix this node's DNS (/etc/resolv.conf), or write the "
                  "server's address in agent.conf");
    case ProbeOutcome::kSendFailed:
      return Line(CheckLevel::kFail, check,
                  WithAgentView(
                      absl::StrCat("cannot send to it", at, ": ", p.error), u),
                  "this node has no route to it: check its addresses and "
                  "routes (ip route get ADDRESS)");
    case ProbeOutcome::kNotProbed:
      break;
  }
  if (u.agent_view.has_value()) {
    const bool usable = u.agent_view->unusable_reason().empty();
    return Line(usable ? CheckLevel::kOk : CheckLevel::kWarn, check,
                AgentView(u),
                usable ? "" : "see the reason; docs/AGENT.md lists them all");
  }
  return Line(CheckLevel::kWarn, check, "not checked",
              "run doctor again; `ntpfleetctl peers` shows the agent's view");
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20) {
          out += absl::StrFormat("\\u%04x", u);
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace

const char* CheckLevelName(CheckLevel level) {
  switch (level) {
    case CheckLevel::kOk:
      return "OK";
    case CheckLevel::kWarn:
      return "WARN";
    case CheckLevel::kFail:
      return "FAIL";
  }
  return "?";
}

CheckLine CheckConfig(const DoctorFacts& f) {
  if (!f.config.error.empty()) {
    return Line(CheckLevel::kFail, "config",
                absl::StrCat(f.config.error,
                             " (the agent does not start with it; the "
                             "checks below use what could be read)"),
                absl::StrCat("correct the line, then `ntpfleet-agent --config ",
                             f.config.path, " --check-config`"));
  }
  if (!f.config.warnings.empty()) {
    return Line(CheckLevel::kWarn, "config",
                absl::StrCat(f.config.path, " parses, with warnings: ",
                             absl::StrJoin(f.config.warnings, "; ")),
                "each warning is a line the agent accepts but does not act on; "
                "remove or change it");
  }
  return Line(CheckLevel::kOk, "config",
              absl::StrCat(f.config.path, " parses"));
}

CheckLine CheckPort(const DoctorFacts& f) {
  const PortFacts& p = f.port;
  const std::string check = "udp port";
  const std::string port =
      absl::StrCat("UDP port ", p.port, " (", p.port_from, ")");
  const AgentFacts& a = f.agent;
  if (!p.in_use) {
    if (a.running && a.status.has_value() && a.status->server_port() == 0) {
      return Line(CheckLevel::kOk, check,
                  absl::StrCat(port, " is free; the agent does not serve NTP"));
    }
    if (a.running) {
      return Line(CheckLevel::kWarn, check,
                  absl::StrCat(port, " is free although the agent runs"),
                  "the agent may serve another port (--port); see "
                  "`journalctl -u ntpfleet-agent` for \"serving NTP on\"");
    }
    return Line(CheckLevel::kWarn, check,
                absl::StrCat(port,
                             " is free: nobody serves NTP here, and "
                             "ntpfleet-agent is not running"),
                "start it: systemctl start ntpfleet-agent (if it stops again, "
                "`journalctl -u ntpfleet-agent -n 20` says why)");
  }
  if (!p.owner.has_value()) {
    if (a.running && a.status.has_value() &&
        static_cast<int>(a.status->server_port()) == p.port) {
      return Line(CheckLevel::kOk, check,
                  absl::StrFormat("%s is held by ntpfleet-agent (pid %d, per "
                                  "its control socket)",
                                  port, a.pid));
    }
    return Line(CheckLevel::kWarn, check,
                absl::StrCat(port,
                             " is in use by a process doctor may not "
                             "see (another user's)"),
                absl::StrFormat("run doctor as root (sudo ntpfleetctl doctor), "
                                "or look: ss -ulpn 'sport = :%d'",
                                p.port));
  }
  const ProcessFact& o = *p.owner;
  if (o.comm == kAgentUnit) {
    if (a.pid != 0 && a.pid != o.pid) {
      return Line(CheckLevel::kFail, check,
                  absl::StrFormat("%s is held by another ntpfleet-agent (pid "
                                  "%d), not the one on %s (pid %d)",
                                  port, o.pid, a.socket, a.pid),
                  absl::StrFormat("stop one of them (kill %d, or the unit "
                                  "that started it): two agents fight over "
                                  "one clock",
                                  o.pid));
    }
    return Line(
        CheckLevel::kOk, check,
        absl::StrFormat("%s is held by ntpfleet-agent (pid %d)", port, o.pid));
  }
  std::string fix;
  if (o.comm == "ntpd" || o.comm == "chronyd") {
    fix = absl::StrFormat(
        "stop it and keep it stopped: `systemctl disable --now %s`%s, or "
        "`kill %d` if no unit runs it; or give the agent another `port`",
        UnitOf(o.comm), UnitAliases(o.comm), o.pid);
  } else if (o.comm == "ntpdate" || o.comm == "sntp") {
    fix = absl::StrFormat(
        "%s holds it for a few seconds at a time: take it out of cron (see "
        "time daemons); `ntpfleetctl sync` does its job without stopping the "
        "agent",
        o.comm);
  } else {
    fix = absl::StrFormat(
        "stop it (kill %d, or the unit that starts it), or give the agent "
        "another `port`",
        o.pid);
  }
  return Line(
      CheckLevel::kFail, check,
      absl::StrFormat("%s is held by %s (pid %d): the agent cannot "
                      "serve (ntpdate says \"the NTP socket is in "
                      "use\")",
                      port, o.comm.empty() ? "a process" : o.comm, o.pid),
      fix);
}

CheckLine CheckTimeDaemons(const DoctorFacts& f) {
  const TimeDaemonFacts& d = f.daemons;
  const std::string check = "time daemons";
  if (!d.running.empty()) {
    std::vector<std::string> units;
    std::string aliases;
    for (const ProcessFact& p : d.running) {
      if (std::find(units.begin(), units.end(), UnitOf(p.comm)) != units.end())
        continue;
      units.push_back(UnitOf(p.comm));
      aliases += UnitAliases(p.comm);
    }
    std::string found =
        absl::StrCat("running: ", Processes(d.running),
                     ": two programs would fight over one clock");
    if (!d.enabled.empty())
      absl::StrAppend(&found, "; enabled: ", absl::StrJoin(d.enabled, ", "));
    if (!d.cron.empty())
      absl::StrAppend(&found, "; in cron: ", absl::StrJoin(d.cron, "; "));
    return Line(
        CheckLevel::kFail, check, found,
        absl::StrCat("`systemctl disable --now ", absl::StrJoin(units, " "),
                     "`", aliases,
                     "; the agent's unit Conflicts= with them, but one "
                     "started by hand or by SysV init stays (kill it)"));
  }
  if (!d.enabled.empty() || !d.cron.empty()) {
    std::vector<std::string> found;
    if (!d.enabled.empty())
      found.push_back(absl::StrCat("not running but enabled at boot: ",
                                   absl::StrJoin(d.enabled, ", ")));
    if (!d.cron.empty())
      found.push_back(absl::StrCat("in cron: ", absl::StrJoin(d.cron, "; ")));
    return Line(
        CheckLevel::kWarn, check, absl::StrJoin(found, "; "),
        "systemctl disable the units (chkconfig NAME off, or remove the "
        "rc?.d links, without systemd); delete the cron lines: the agent "
        "keeps the clock right, and `ntpfleetctl sync` does what ntpdate did "
        "without stopping it");
  }
  return Line(CheckLevel::kOk, check,
              "no ntpd, chronyd, openntpd or systemd-timesyncd running or "
              "enabled; no ntpdate, chronyc or sntp in crontabs");
}

CheckLine CheckAgent(const DoctorFacts& f) {
  const AgentFacts& a = f.agent;
  const std::string check = "agent";
  if (!a.running) {
    return Line(CheckLevel::kWarn, check,
                absl::StrCat(
                    a.socket_error.empty() ? "no ntpfleet-agent is running here"
                                           : a.socket_error,
                    "; no ntpfleet-agent holds UDP port ", f.port.port),
                "start it: systemctl start ntpfleet-agent; if it stops, "
                "`journalctl -u ntpfleet-agent -n 20` says why (and the other "
                "lines here)");
  }
  const std::string pid = absl::StrFormat("pid %d", a.pid);
  if (a.status.has_value()) {
    const std::string state = StateName(a.status->status().state());
    if (a.status->clock() == "sim") {
      return Line(CheckLevel::kOk, check,
                  absl::StrFormat("%s, %s, simulated clock (--clock=sim): "
                                  "it needs no CAP_SYS_TIME and never moves "
                                  "this machine's clock",
                                  pid, state));
    }
    if (!a.cap_eff.has_value()) {
      return Line(CheckLevel::kWarn, check,
                  absl::StrFormat("%s, %s; cannot read its capabilities from "
                                  "/proc/%d/status",
                                  pid, state, a.pid),
                  "run doctor as root (sudo ntpfleetctl doctor)");
    }
    if ((*a.cap_eff >> kCapSysTime) & 1) {
      return Line(CheckLevel::kOk, check,
                  absl::StrFormat("%s, %s, has CAP_SYS_TIME (it may adjust "
                                  "the clock)",
                                  pid, state));
    }
    return Line(CheckLevel::kFail, check,
                absl::StrFormat("%s, %s, lacks CAP_SYS_TIME: it cannot adjust "
                                "the system clock",
                                pid, state),
                "run it under the shipped unit (AmbientCapabilities="
                "CAP_SYS_TIME CAP_NET_BIND_SERVICE) or as root; in a "
                "container, --cap-add SYS_TIME; drop ProtectClock=yes");
  }
  // Running, but its control socket refused doctor.
  std::string found = absl::StrFormat(
      "%s runs, but its control socket did not answer doctor "
      "(%s)",
      pid, a.socket_error);
  if (a.cap_eff.has_value()) {
    absl::StrAppend(&found, ((*a.cap_eff >> kCapSysTime) & 1)
                                ? "; it has CAP_SYS_TIME"
                                : "; it lacks CAP_SYS_TIME (fine only with "
                                  "--clock=sim)");
  }
  return Line(
      CheckLevel::kWarn, check, found,
      "run doctor as root or in group ntpfleet (sudo ntpfleetctl "
      "doctor), with --control-socket PATH if the agent uses another control "
      "socket");
}

std::vector<CheckLine> CheckUpstreams(const DoctorFacts& f) {
  std::vector<CheckLine> out;
  if (f.upstreams.empty()) {
    if (!f.config.known()) return out;  // unknown: the config line says
    if (f.local_clock_stratum > 0) {
      out.push_back(Line(
          CheckLevel::kOk, "upstreams",
          absl::StrFormat("none: this node serves its local clock at stratum "
                          "%d (the fleet's reference)",
                          f.local_clock_stratum)));
    } else {
      out.push_back(Line(CheckLevel::kFail, "upstreams",
                         "no `server` or `pool` line and no local clock: this "
                         "node has nothing to synchronise to",
                         "add `server ADDRESS iburst` (the fleet's NTP server) "
                         "to agent.conf; on the fleet's server, a local clock: "
                         "`server 127.127.1.0` + `fudge 127.127.1.0 stratum "
                         "10`"));
    }
    return out;
  }
  for (const UpstreamFacts& u : f.upstreams) out.push_back(CheckOneUpstream(u));
  return out;
}

CheckLine CheckController(const DoctorFacts& f) {
  const ControllerFacts& c = f.controller;
  const std::string check = "controller";
  switch (c.outcome) {
    case ControllerOutcome::kNotConfigured:
      return Line(CheckLevel::kOk, check,
                  "none configured (no `controller` line): NTP works without "
                  "it; the fleet's view does not include this node");
    case ControllerOutcome::kHalfTls:
      return Line(CheckLevel::kFail, check,
                  absl::StrCat("half-configured TLS: ", c.detail,
                               " (the agent refuses to start rather than fall "
                               "back to plain text)"),
                  "give all three of tls_cert, tls_key and tls_ca "
                  "(`ntpfleetctl certs issue --dir DIR --node NAME` makes the "
                  "first two; tls_ca is DIR/ca.pem), or none of them for plain "
                  "text to a controller on loopback");
    case ControllerOutcome::kBadTlsFiles:
      return Line(CheckLevel::kFail, check,
                  absl::StrCat("TLS files: ", c.detail),
                  "replace the file named: `ntpfleetctl certs issue --dir DIR "
                  "--node NAME` issues a new certificate and key from the "
                  "fleet's CA");
    case ControllerOutcome::kBadAddress:
      return Line(CheckLevel::kFail, check,
                  absl::StrCat("`controller ", c.address, "`: ", c.detail),
                  "write `controller HOST:PORT` with a name that resolves, or "
                  "the controller's address");
    case ControllerOutcome::kUnreachable:
      return Line(CheckLevel::kFail, check,
                  absl::StrCat("cannot reach ", c.address, ": ", c.detail),
                  "is ntpfleet-controller running there (systemctl status "
                  "ntpfleet-controller)? Is its TCP port open from this node? "
                  "(Time keeps being kept without it; only the fleet's view "
                  "and resyncs pause)");
    case ControllerOutcome::kTlsFailed: {
      std::string fix;
      switch (c.tls_failure) {
        case TlsFailure::kWrongCa:
          fix =
              "tls_ca must be the CA that signed the controller's "
              "certificate: the fleet's ca.pem (from `ntpfleetctl certs "
              "init`), the same file the controller's --tls-ca names";
          break;
        case TlsFailure::kPeerCertExpired:
          fix =
              "issue the controller a new certificate (`ntpfleetctl certs "
              "issue --dir DIR --controller HOST[,HOST...]`); it re-reads "
              "its files within 30 s";
          break;
        case TlsFailure::kNameMismatch:
          fix =
              "the `controller` line must name a host or address that is in "
              "the controller's certificate (`ntpfleetctl certs issue "
              "--controller HOST[,HOST...]` lists them); or reissue it with "
              "this name";
          break;
        case TlsFailure::kClientCertRefused:
          fix =
              "the controller does not accept this node's certificate: "
              "issue it from the controller's CA (`ntpfleetctl certs issue "
              "--dir DIR --node NAME`), and check it has not expired";
          break;
        case TlsFailure::kOther:
          fix =
              "see the error; docs/SECURITY.md describes the certificates "
              "each side needs";
          break;
      }
      return Line(
          CheckLevel::kFail, check,
          absl::StrCat("TLS handshake with ", c.address, " failed: ", c.detail),
          fix);
    }
    case ControllerOutcome::kProtocolMismatch:
      return Line(CheckLevel::kFail, check,
                  absl::StrCat(c.address, ": ", c.detail),
                  "configure both ends alike: tls_cert/tls_key/tls_ca here "
                  "and --tls-cert/--tls-key/--tls-ca on the controller, or "
                  "neither (plain text, which a controller accepts only on "
                  "loopback or with --insecure)");
    case ControllerOutcome::kOk:
      return Line(
          CheckLevel::kOk, check,
          absl::StrCat("reachable at ", c.address,
                       c.tls ? ", mutual TLS verified" : " (plain text)",
                       c.detail.empty() ? "" : ": ", c.detail));
  }
  return Line(CheckLevel::kWarn, check, "not checked", "run doctor again");
}

CheckLine CheckDriftFile(const DoctorFacts& f) {
  const DriftFacts& d = f.drift;
  const std::string check = "drift file";
  if (!f.config.known() && d.path.empty()) {
    return Line(CheckLevel::kWarn, check, "unknown (the config did not parse)",
                "fix the config line first");
  }
  if (d.path.empty()) {
    return Line(CheckLevel::kWarn, check,
                "no `driftfile` line: the clock's learned frequency is lost at "
                "every restart, and the agent relearns it for hours",
                "add `driftfile /var/lib/ntpfleet/drift` to agent.conf");
  }
  const size_t slash = d.path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : d.path.substr(0, slash);
  if (!d.dir_exists) {
    return Line(
        CheckLevel::kFail, check,
        absl::StrCat(dir, " does not exist (the directory of ", d.path, ")",
                     d.dir_error.empty() ? "" : ": ", d.dir_error),
        absl::StrCat("create it for the agent's user (mkdir -p ", dir,
                     "; chown ", d.user.empty() ? "ntpfleet" : d.user, " ", dir,
                     "), or point driftfile into /var/lib/ntpfleet"));
  }
  if (!d.dir_writable) {
    return Line(CheckLevel::kFail, check,
                absl::StrCat(dir, " is not writable by ", d.user,
                             d.dir_error.empty() ? "" : ": ", d.dir_error,
                             " (the agent cannot save what it learned)"),
                absl::StrCat("chown the directory to the agent's user, or use "
                             "`driftfile /var/lib/ntpfleet/drift` (the shipped "
                             "unit's state directory)"));
  }
  if (d.outside_unit_state_dir) {
    return Line(CheckLevel::kWarn, check,
                absl::StrCat(d.path,
                             ": the shipped unit (ProtectSystem=strict) lets "
                             "the agent write only /var/lib/ntpfleet"),
                "use `driftfile /var/lib/ntpfleet/drift`");
  }
  switch (d.file) {
    case DriftFileState::kMissing:
      return Line(CheckLevel::kOk, check,
                  absl::StrCat(dir, " is writable by ", d.user, "; no ", d.path,
                               " yet (written after the first correction: "
                               "hourly and when the agent stops)"));
    case DriftFileState::kValid:
      return Line(CheckLevel::kOk, check,
                  absl::StrFormat("%s: %+.3f ppm; %s is writable by %s", d.path,
                                  d.ppm, dir, d.user));
    case DriftFileState::kInvalid:
      return Line(CheckLevel::kWarn, check,
                  absl::StrCat(d.file_error, " (the agent ignores it)"),
                  absl::StrCat("delete ", d.path,
                               ": the agent starts from the kernel's frequency "
                               "and writes a new one"));
    case DriftFileState::kUnreadable:
      return Line(CheckLevel::kWarn, check,
                  absl::StrCat(d.path, " cannot be read: ", d.file_error),
                  absl::StrCat("chown ", d.user, " ", d.path));
  }
  return Line(CheckLevel::kWarn, check, "not checked", "run doctor again");
}

CheckLine CheckKernelClock(const DoctorFacts& f) {
  const KernelClockFacts& k = f.kernel;
  const std::string check = "kernel clock";
  if (!k.read) {
    return Line(CheckLevel::kWarn, check,
                absl::StrCat("cannot read it (adjtimex): ", k.error),
                "run doctor on the node itself, not in a restricted sandbox");
  }
  const bool unsync = (k.status & kStaUnsync) != 0;
  std::string mode = "no kernel discipline";
  if (k.status & kStaFll) {
    mode = "FLL";
  } else if (k.status & kStaPll) {
    mode = "PLL";
  }
  const std::string found = absl::StrFormat(
      "%s, maxerror %s, esterror %s, frequency %+.3f ppm, %s, 11-minute RTC "
      "mode %s",
      unsync ? "unsynchronised (STA_UNSYNC)" : "synchronised",
      Unsigned(absl::Microseconds(k.maxerror_us)),
      Unsigned(absl::Microseconds(k.esterror_us)), k.frequency_ppm, mode,
      unsync ? "off" : "on (the kernel copies this time to the RTC)");
  const AgentFacts& a = f.agent;
  if (AgentOnSystemClock(a) && AgentSaysSynchronised(a) && unsync) {
    return Line(CheckLevel::kWarn, check,
                absl::StrCat(found, "; but the agent says it is synchronised"),
                "something else resets the kernel's state (ntpdate, hwclock "
                "--hctosys, another daemon: see time daemons); if it persists "
                "with none, restart the agent");
  }
  if (!unsync && !AgentOnSystemClock(a)) {
    return Line(
        CheckLevel::kWarn, check,
        absl::StrCat(found, "; but no ntpfleet-agent disciplines this clock"),
        "another program does (see time daemons), and its time goes "
        "to the RTC every 11 minutes: stop it and start the agent");
  }
  if (std::fabs(k.frequency_ppm) > 450) {
    return Line(CheckLevel::kWarn, check,
                absl::StrCat(found,
                             "; the frequency is near the kernel's "
                             "500 ppm limit"),
                "the oscillator is far off, or another program sets the "
                "frequency (see time daemons); a virtual machine may need its "
                "clocksource fixed (kvm-clock, tsc)");
  }
  if (AgentOnSystemClock(a) && !AgentSaysSynchronised(a) && !unsync) {
    return Line(CheckLevel::kWarn, check,
                absl::StrCat(found, "; the agent is not synchronised"),
                "see the upstream lines: the kernel's flag clears itself as "
                "maxerror grows to 16 s");
  }
  if (a.running && !AgentOnSystemClock(a)) {
    return Line(CheckLevel::kOk, check,
                absl::StrCat(found,
                             " (the agent runs on a simulated clock "
                             "and leaves this one alone)"));
  }
  return Line(CheckLevel::kOk, check, found);
}

CheckLine CheckFirewall(const DoctorFacts& f) {
  const std::string check = "firewall";
  // On the serving node: loopback answers, a fleet address does not.
  bool loopback_answers = false;
  std::vector<std::string> silent_local;
  std::vector<std::string> answered_local;
  std::vector<std::string> by_design;
  for (const LocalServeProbe& p : f.firewall.local) {
    if (!p.answered && p.refused_by_restrict) {
      by_design.push_back(p.address);
    } else if (p.answered) {
      answered_local.push_back(p.address);
      if (p.loopback) loopback_answers = true;
    } else {
      silent_local.push_back(p.address);
    }
  }
  if (!silent_local.empty() && loopback_answers) {
    return Line(CheckLevel::kFail, check,
                absl::StrCat("this agent answers on ",
                             absl::StrJoin(answered_local, ", "),
                             " but not on ", absl::StrJoin(silent_local, ", "),
                             ": something drops NTP to that address (a "
                             "firewall rule on this node, or a `restrict` "
                             "covering it)"),
                "let UDP 123 in: `firewall-cmd --permanent --add-service=ntp "
                "&& firewall-cmd --reload`, or `iptables -I INPUT -p udp "
                "--dport 123 -j ACCEPT` (nft: `nft add rule inet filter input "
                "udp dport 123 accept`); and check the restrict lines");
  }
  if (!silent_local.empty() && answered_local.empty()) {
    return Line(CheckLevel::kFail, check,
                absl::StrCat("this agent does not answer doctor on ",
                             absl::StrJoin(silent_local, ", ")),
                "a `restrict` line refusing these addresses (add `restrict "
                "127.0.0.1`), a firewall rule, or a stuck agent (systemctl "
                "restart ntpfleet-agent)");
  }
  // On a client: a server that does not answer us but answers others.
  std::vector<std::string> dropped;
  std::vector<std::string> unknown;
  for (const UpstreamFacts& u : f.upstreams) {
    if (u.probe.outcome != ProbeOutcome::kNoReply || AgentWasRefused(u))
      continue;  // a refusal is the upstream line's FAIL, not a firewall
    if (!u.serving_evidence.empty()) {
      dropped.push_back(absl::StrCat(
          u.name, " (", absl::StrJoin(u.serving_evidence, "; "), ")"));
    } else {
      unknown.push_back(u.name);
    }
  }
  if (!dropped.empty()) {
    return Line(CheckLevel::kFail, check,
                absl::StrCat("no reply from ", absl::StrJoin(dropped, ", "),
                             " although it answers others: NTP between this "
                             "node and it is dropped (a firewall on either "
                             "side, or the server's `restrict ignore` or "
                             "`noserve` for this node's address)"),
                "open UDP 123 from this node to the server and back "
                "(firewall-cmd --add-service=ntp on the server, security "
                "groups, ACLs on the way), and check the server's restrict "
                "lines for this node's address");
  }
  if (!unknown.empty()) {
    return Line(CheckLevel::kWarn, check,
                absl::StrCat("no reply from ", absl::StrJoin(unknown, ", "),
                             ", and nothing shows it answers anyone else: a "
                             "firewall cannot be told from a server that is "
                             "down",
                             f.firewall.evidence_error.empty() ? "" : " (",
                             f.firewall.evidence_error,
                             f.firewall.evidence_error.empty() ? "" : ")"),
                "run `ntpfleetctl doctor` on the server node: it checks that "
                "it answers on its own addresses; or give doctor a viewer "
                "certificate (--tls-cert/--tls-key/--tls-ca) so that it can "
                "ask the controller which nodes get replies");
  }
  std::string found = "no sign of NTP being dropped";
  if (!answered_local.empty()) {
    absl::StrAppend(&found, ": this agent answers on ",
                    absl::StrJoin(answered_local, ", "));
  }
  if (!by_design.empty()) {
    absl::StrAppend(&found, answered_local.empty() ? ": " : "; ",
                    "its restrict rules do not serve ",
                    absl::StrJoin(by_design, ", "));
  }
  return Line(CheckLevel::kOk, check, found);
}

std::vector<CheckLine> Evaluate(const DoctorFacts& f) {
  std::vector<CheckLine> out;
  out.push_back(CheckConfig(f));
  out.push_back(CheckPort(f));
  out.push_back(CheckTimeDaemons(f));
  out.push_back(CheckAgent(f));
  for (CheckLine& l : CheckUpstreams(f)) out.push_back(std::move(l));
  out.push_back(CheckController(f));
  out.push_back(CheckDriftFile(f));
  out.push_back(CheckKernelClock(f));
  out.push_back(CheckFirewall(f));
  return out;
}

std::string RenderText(const std::vector<CheckLine>& lines) {
  std::string out;
  for (const CheckLine& l : lines) {
    absl::StrAppendFormat(&out, "%-4s  %s: %s\n", CheckLevelName(l.level),
                          l.check, l.found);
    if (l.level != CheckLevel::kOk && !l.fix.empty())
      absl::StrAppend(&out, "      fix: ", l.fix, "\n");
  }
  return out;
}

std::string RenderJson(const std::vector<CheckLine>& lines) {
  std::vector<std::string> items;
  for (const CheckLine& l : lines) {
    items.push_back(absl::StrFormat(
        "{\"level\":\"%s\",\"check\":\"%s\",\"found\":\"%s\",\"fix\":\"%s\"}",
        CheckLevelName(l.level), JsonEscape(l.check), JsonEscape(l.found),
        JsonEscape(l.fix)));
  }
  return absl::StrCat("{\"checks\":[", absl::StrJoin(items, ","),
                      "],\"exit_code\":", DoctorExitCode(lines), "}\n");
}

int DoctorExitCode(const std::vector<CheckLine>& lines) {
  for (const CheckLine& l : lines)
    if (l.level == CheckLevel::kFail) return 3;
  return 0;
}

}  // namespace ntpfleet::ctl
