// `ntpfleetctl doctor`: what is wrong with NTP on this node, each finding with
// its fix. This header is the pure half: the facts a gatherer collected
// (ctl/doctor_gather.h reads /proc, /etc, sockets and adjtimex) go in, the
// report's lines come out. Nothing here does IO, so every check's OK, WARN and
// FAIL is unit-tested from hand-made facts (tests/ctl/doctor_test.cc).
//
//   DoctorFacts facts = ...;                  // GatherFacts(), or by hand
//   std::vector<CheckLine> lines = Evaluate(facts);
//   std::fputs(RenderText(lines).c_str(), stdout);
//   return DoctorExitCode(lines);             // 0, or 3 when a check FAILs
//
// Each line is `OK|WARN|FAIL  <check>: <what was found>`, and a WARN or FAIL
// has a `fix: <what to do>` under it. The checks (docs/AGENT.md, "ntpfleetctl
// doctor"):
//   config         the agent's configuration parses
//   udp port       who holds the agent's UDP port (ntpdate's "the NTP socket
//                  is in use")
//   time daemons   ntpd, chronyd, openntpd, systemd-timesyncd running or
//                  enabled; ntpdate/chronyc/sntp in crontabs
//   agent          running; CAP_SYS_TIME unless on a simulated clock
//   upstream HOST  one line per server: what the agent says, and doctor's own
//                  NTP query (ntpdate's "no server suitable for
//                  synchronization found", with its real cause)
//   controller     reachable; TLS handshake and its failure's reason
//   drift file     its directory writable by the agent's user; it parses
//   kernel clock   adjtimex (read only): STA_UNSYNC, maxerror, frequency,
//                  PLL/FLL, the 11-minute RTC mode
//   firewall       NTP dropped on the way: a server that answers others (or
//                  itself on loopback) but not this node
//
// Thread safety: pure functions, safe to call concurrently.
#ifndef NTPFLEET_CTL_DOCTOR_H_
#define NTPFLEET_CTL_DOCTOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {

enum class CheckLevel { kOk, kWarn, kFail };
const char* CheckLevelName(CheckLevel level);  // "OK", "WARN", "FAIL"

struct CheckLine {
  CheckLevel level = CheckLevel::kOk;
  std::string check;  // "udp port", "upstream 192.168.242.51"
  std::string found;  // what was found, one line
  std::string fix;    // what to do; empty for OK
};

struct ProcessFact {
  int pid = 0;
  std::string comm;  // /proc/PID/comm, printable
};

// --- 0. config ---------------------------------------------------------------
struct ConfigFacts {
  std::string path;
  // The parser's error ("agent.conf:7: ..."); empty when it parsed. Doctor
  // then carries on with what it could read (see GatherFacts).
  std::string error;
  // The error concerns one setting only (a partial tls_* set), and the rest
  // of the file was read: the other checks use it.
  bool rest_read = false;
  std::vector<std::string> warnings;  // "FILE:LINE: ..."
  bool known() const { return error.empty() || rest_read; }
};

// --- 1. who holds the UDP port -----------------------------------------------
struct PortFacts {
  int port = 123;
  std::string
      port_from;  // "the running agent's", "from agent.conf", "the default"
  bool in_use = false;  // some socket is bound to it (/proc/net/udp{,6})
  // Who holds it, when that can be seen (see net::FindUdpPortOwner).
  std::optional<ProcessFact> owner;
};

// --- 2. other time daemons ---------------------------------------------------
struct TimeDaemonFacts {
  std::vector<ProcessFact> running;  // comm ntpd, chronyd, openntpd, ...
  // How each enabled one was found: "chronyd.service (systemctl is-enabled:
  // enabled)", "/etc/rc3.d/S58ntpd".
  std::vector<std::string> enabled;
  // "FILE:LINE: the line" of crontab entries running ntpdate, chronyc, sntp.
  std::vector<std::string> cron;
};

// --- 3. the agent ------------------------------------------------------------
struct AgentFacts {
  std::string socket;  // the control socket asked
  bool running = false;
  int pid = 0;
  // Why the control socket did not answer (empty when it did): "permission
  // denied ...", "no ntpfleet-agent is running here ...".
  std::string socket_error;
  std::optional<v1::LocalStatus> status;  // when the socket answered
  // CapEff of /proc/PID/status; nullopt when it could not be read.
  std::optional<uint64_t> cap_eff;
  std::optional<uint32_t> uid;  // effective uid of the agent's process
};
inline constexpr int kCapSysTime = 25;  // linux/capability.h CAP_SYS_TIME

// --- 4. each upstream --------------------------------------------------------
enum class ProbeOutcome {
  kNotProbed,       // (tests; or no address to probe)
  kUnresolved,      // the name did not resolve (error says why)
  kSendFailed,      // socket/sendto failed (error)
  kNoReply,         // nothing valid before the timeout
  kKissOfDeath,     // stratum 0 with a kiss code (kiss_code)
  kUnsynchronised,  // leap 3, or stratum 0 (no kiss) or >= 16
  kAnswered,        // a synchronised answer
};

// Doctor's own client request (one mode-3 packet from an ephemeral port).
struct ProbeResult {
  ProbeOutcome outcome = ProbeOutcome::kNotProbed;
  std::string address;    // what was asked: "127.0.0.1:123"
  std::string error;      // kUnresolved, kSendFailed
  std::string kiss_code;  // kKissOfDeath: "DENY", "RSTR", "RATE", ...
  int stratum = 0;
  int leap = 0;  // RFC 5905 §7.3 LI: 3 = unsynchronised (alarm)
  std::string refid;
  absl::Duration offset;   // reference minus local (RFC 5905 §8 theta)
  absl::Duration delay;    // round trip (RFC 5905 §8 delta)
  absl::Duration timeout;  // kNoReply: how long doctor waited
};

struct UpstreamFacts {
  std::string name;  // as configured: "ntp1.aliyun.com", "127.0.0.1:12300"
  bool is_pool = false;
  ProbeResult probe;
  // The running agent's view of this source, matched by `remote`.
  std::optional<v1::PeerStatus> agent_view;
  // For the firewall check: signs that this server answers others,
  // "the controller shows node `server` (10.0.0.1) synchronised, stratum 10",
  // "web-02 gets replies from it (reach 377)". Empty: none found.
  std::vector<std::string> serving_evidence;
};

// --- 5. the controller -------------------------------------------------------
enum class ControllerOutcome {
  kNotConfigured,     // no `controller` line
  kHalfTls,           // one or two of tls_cert/tls_key/tls_ca
  kBadTlsFiles,       // unreadable, not PEM, key not matching, own cert expired
  kBadAddress,        // the line does not parse or the name does not resolve
  kUnreachable,       // TCP connect refused or timed out
  kTlsFailed,         // handshake failed (detail: why)
  kProtocolMismatch,  // TLS to a plain-text controller or the reverse
  kOk,
};
// Why a TLS handshake failed, when it can be told.
enum class TlsFailure {
  kOther,
  kWrongCa,          // the controller's certificate is not from tls_ca
  kPeerCertExpired,  // the controller's certificate expired (or not yet valid)
  kNameMismatch,     // the `controller` name is not in its certificate
  kClientCertRefused,  // the controller refused this node's certificate
};
struct ControllerFacts {
  std::string address;  // the `controller` line
  bool tls = false;     // all three tls_* lines given
  ControllerOutcome outcome = ControllerOutcome::kNotConfigured;
  TlsFailure tls_failure = TlsFailure::kOther;  // kTlsFailed
  // Why (kHalfTls: the parser's message; kTlsFailed: the verify error or the
  // controller's alert, worded; kOk: e.g. the controller's certificate).
  std::string detail;
};

// --- 6. the drift file -------------------------------------------------------
enum class DriftFileState { kMissing, kValid, kInvalid, kUnreadable };
struct DriftFacts {
  std::string path;  // empty: no `driftfile` line
  std::string user;  // whose write access was checked: "ntpfleet (uid 998)"
  bool dir_exists = false;
  bool dir_writable = false;
  std::string dir_error;  // why not writable / stat error
  // The agent runs as user ntpfleet (the shipped unit) and the directory is not
  // under /var/lib/ntpfleet, the unit's only writable state directory.
  bool outside_unit_state_dir = false;
  DriftFileState file = DriftFileState::kMissing;
  double ppm = 0;          // kValid
  std::string file_error;  // kInvalid, kUnreadable: the reader's message
};

// --- 7. the kernel clock -----------------------------------------------------
struct KernelClockFacts {
  bool read = false;  // ntp_adjtime(modes = 0) succeeded
  std::string error;
  int state = 0;             // its return value: TIME_OK .. TIME_ERROR (5)
  int status = 0;            // STA_* bits
  int64_t maxerror_us = 0;   // µs
  int64_t esterror_us = 0;   // µs
  double frequency_ppm = 0;  // + = the kernel speeds the clock up
};
// linux/timex.h, so that the pure code needs no kernel header.
inline constexpr int kStaPll = 0x0001;
inline constexpr int kStaFll = 0x0008;
inline constexpr int kStaUnsync = 0x0040;

// --- 8. the firewall ---------------------------------------------------------
// On a node whose agent serves: doctor's query to its own server port on each
// address it serves on.
struct LocalServeProbe {
  std::string address;  // "127.0.0.1:123", "10.0.0.1:123"
  bool loopback = false;
  bool answered = false;
  // This node's own `restrict` rules ignore or refuse to serve the address
  // (a client's `restrict default ignore`): its silence is by design, not a
  // firewall.
  bool refused_by_restrict = false;
};
struct FirewallFacts {
  std::vector<LocalServeProbe> local;
  // Why the controller could not be asked for evidence (empty if it was, or
  // no upstream went unanswered).
  std::string evidence_error;
};

struct DoctorFacts {
  ConfigFacts config;
  PortFacts port;
  TimeDaemonFacts daemons;
  AgentFacts agent;
  std::vector<UpstreamFacts> upstreams;
  int local_clock_stratum = 0;  // `server 127.127.1.0` at this stratum; 0 none
  ControllerFacts controller;
  DriftFacts drift;
  KernelClockFacts kernel;
  FirewallFacts firewall;
};

// One check each; CheckUpstreams has one line per upstream.
CheckLine CheckConfig(const DoctorFacts& f);
CheckLine CheckPort(const DoctorFacts& f);
CheckLine CheckTimeDaemons(const DoctorFacts& f);
CheckLine CheckAgent(const DoctorFacts& f);
std::vector<CheckLine> CheckUpstreams(const DoctorFacts& f);
CheckLine CheckController(const DoctorFacts& f);
CheckLine CheckDriftFile(const DoctorFacts& f);
CheckLine CheckKernelClock(const DoctorFacts& f);
CheckLine CheckFirewall(const DoctorFacts& f);

// All of them, in the order above.
std::vector<CheckLine> Evaluate(const DoctorFacts& f);

// "FAIL  udp port: ...\n      fix: ...\n" per line.
std::string RenderText(const std::vector<CheckLine>& lines);
// {"checks":[{"level":"FAIL","check":"udp port","found":"...","fix":"..."}],
//  "exit_code":3}
std::string RenderJson(const std::vector<CheckLine>& lines);
// 3 when any line FAILs, else 0.
int DoctorExitCode(const std::vector<CheckLine>& lines);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_DOCTOR_H_
