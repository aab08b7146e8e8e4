#include "ctl/cmd_doctor.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ctl/doctor.h"
#include "ctl/doctor_gather.h"

namespace ntpfleet::ctl {

const char kDoctorHelp[] =
    R"help(ntpfleetctl doctor: what is wrong with NTP on this node, and how to fix it.

  sudo ntpfleetctl doctor [--config /etc/ntpfleet/agent.conf]
                          [--control-socket /run/ntpfleet/agent.sock] [--output text|json]
                          [--tls-cert F --tls-key F --tls-ca F]

Run it on the node, as root (it reads other users' processes and the agent's control
socket). It only looks: it reads /proc, /etc, crontabs and the kernel clock (adjtimex with
no mode bit: nothing is changed), sends one NTP client packet to each server, and opens one
TLS connection to the controller. It takes a few seconds (2 s per silent server, at once).

Each line is `OK|WARN|FAIL  CHECK: what was found`; under a WARN or FAIL, `fix:` says
what to do.
  config        agent.conf parses (a FAIL here: the agent would not start)
  udp port      who holds the agent's UDP port (123, or `port`): the agent is OK; ntpd,
                chronyd or anything else is a FAIL naming it and its pid (ntpdate's "the
                NTP socket is in use"); nobody while the agent is down is a WARN
  time daemons  ntpd, chronyd, ntpsec, openntpd, systemd-timesyncd running (FAIL: two
                daemons fight over one clock) or enabled at boot, ntpdate/chronyc/sntp in
                a crontab (WARN)
  agent         running; has CAP_SYS_TIME (or runs on a simulated clock, --clock=sim)
  upstream S    one line per server: what the agent says about it (`ntpfleetctl peers`)
                and doctor's own query. "refused by the server (KoD DENY)" is the
                server's restrict; "server answers but is itself unsynchronised" is
                ntpdate's "no server suitable for synchronization found" when the server
                has no time source; "no reply" is a network, firewall or restrict ignore
  controller    reachable; the TLS handshake with this node's tls_cert/tls_key/tls_ca,
                and why it fails (wrong CA, expired certificate, name not in the
                controller's certificate, this node's certificate refused); one or two
                of the three tls_* lines is a FAIL
  drift file    its directory is writable by the agent's user (the running agent's, or
                ntpfleet); the file parses
  kernel clock  adjtimex: STA_UNSYNC, maxerror, esterror, frequency, PLL/FLL, and the
                11-minute RTC mode; WARN when it contradicts the agent
  firewall      NTP dropped on the way. A client cannot tell a firewall from a dead
                server by itself, so doctor looks for evidence that the silent server
                answers others: the controller showing that server node synchronised, or
                other nodes getting replies from it (needs a viewer certificate:
                --tls-cert/--tls-key/--tls-ca, else the agent's, which the controller
                refuses for this). On the server node, doctor queries its own agent on
                127.0.0.1 and on each address it serves: answering on loopback but not
                on the fleet address is a local firewall rule (or a restrict) dropping NTP.

Exit status: 0 nothing FAILed (WARNs allowed), 3 a check FAILed, 1 doctor could not run
(e.g. the config cannot be read), 2 usage. --output json prints
{"checks":[{"level","check","found","fix"}...],"exit_code":N}.
See docs/AGENT.md, "ntpfleetctl doctor".
)help";

int RunDoctor(const DoctorOptions& o) {
  GatherOptions g;
  g.config_path = o.config;
  g.control_socket = o.socket;
  g.tls_cert = o.tls_cert;
  g.tls_key = o.tls_key;
  g.tls_ca = o.tls_ca;
  absl::StatusOr<DoctorFacts> facts = GatherFacts(g);
  if (!facts.ok()) {
    std::fprintf(stderr, "ntpfleetctl doctor: %s\n",
                 std::string(facts.status().message()).c_str());
    return 1;
  }
  const std::vector<CheckLine> lines = Evaluate(*facts);
  std::fputs((o.json ? RenderJson(lines) : RenderText(lines)).c_str(), stdout);
  return DoctorExitCode(lines);
}

}  // namespace ntpfleet::ctl
