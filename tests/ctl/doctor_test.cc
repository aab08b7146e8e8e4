// `ntpfleetctl doctor`'s checks from hand-made facts: each check's OK, WARN and
// FAIL, the wording an operator acts on (the process and pid, the cause, the
// fix), the report's layout and the exit code. The facts start from a healthy
// node (Healthy(): every check OK) and each test breaks one thing, so a check
// that FAILed for the wrong reason, or not at all, shows here.
#include "ctl/doctor.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet::ctl {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// A client node as it should be: the agent (pid 900, system clock, with
// CAP_SYS_TIME) holds UDP 123, no other daemon, one upstream answering at
// stratum 2, the controller reached over TLS, a drift file, a synchronised
// kernel clock.
DoctorFacts Healthy() {
  DoctorFacts f;
  f.config.path = "/etc/ntpfleet/agent.conf";
  f.port.port = 123;
  f.port.port_from = "the running agent's";
  f.port.in_use = true;
  f.port.owner = ProcessFact{900, "ntpfleet-agent"};
  f.agent.socket = "/run/ntpfleet/agent.sock";
  f.agent.running = true;
  f.agent.pid = 900;
  v1::LocalStatus st;
  st.set_clock("system");
  st.set_pid(900);
  st.set_server_port(123);
  st.mutable_status()->set_state(v1::SYNC_STATE_SYNCHRONISED);
  v1::PeerStatus* peer = st.mutable_status()->add_peers();
  peer->set_remote("192.168.242.51");
  peer->set_address("192.168.242.51:123");
  peer->set_reach(0377);
  peer->set_mark(v1::SELECTION_MARK_SYSTEM_PEER);
  f.agent.status = st;
  f.agent.cap_eff = uint64_t{1} << kCapSysTime | uint64_t{1} << 10;
  f.agent.uid = 998;
  UpstreamFacts u;
  u.name = "192.168.242.51";
  u.probe.outcome = ProbeOutcome::kAnswered;
  u.probe.address = "192.168.242.51:123";
  u.probe.stratum = 2;
  u.probe.refid = "203.107.6.88";
  u.probe.offset = absl::Microseconds(-120);
  u.probe.delay = absl::Microseconds(310);
  u.agent_view = *peer;
  f.upstreams.push_back(u);
  f.controller.address = "ctl.example:7123";
  f.controller.tls = true;
  f.controller.outcome = ControllerOutcome::kOk;
  f.drift.path = "/var/lib/ntpfleet/drift";
  f.drift.user = "ntpfleet (uid 998)";
  f.drift.dir_exists = true;
  f.drift.dir_writable = true;
  f.drift.file = DriftFileState::kValid;
  f.drift.ppm = -12.5;
  f.kernel.read = true;
  f.kernel.status = kStaPll;
  f.kernel.maxerror_us = 1500;
  f.kernel.esterror_us = 40;
  f.kernel.frequency_ppm = -12.5;
  return f;
}

const CheckLine* Find(const std::vector<CheckLine>& lines,
                      const std::string& check) {
  for (const CheckLine& l : lines)
    if (l.check == check) return &l;
  return nullptr;
}

TEST(DoctorTest, HealthyNodeIsAllOkAndExitsZero) {
  const std::vector<CheckLine> lines = Evaluate(Healthy());
  for (const CheckLine& l : lines) {
    EXPECT_EQ(l.level, CheckLevel::kOk) << l.check << ": " << l.found;
  }
  EXPECT_EQ(DoctorExitCode(lines), 0);
  ASSERT_NE(Find(lines, "upstream 192.168.242.51"), nullptr);
  EXPECT_THAT(Find(lines, "upstream 192.168.242.51")->found,
              AllOf(HasSubstr("stratum 2"), HasSubstr("offset -120 µs"),
                    HasSubstr("system peer")));
}

// --- config ------------------------------------------------------------------

TEST(DoctorTest, ConfigErrorFails) {
  DoctorFacts f = Healthy();
  f.config.error = "agent.conf:7: unknown restrict flag 'nomodfy'";
  const CheckLine l = CheckConfig(f);
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, HasSubstr("nomodfy"));
  EXPECT_THAT(l.fix, HasSubstr("--check-config"));
}

TEST(DoctorTest, ConfigWarningsWarn) {
  DoctorFacts f = Healthy();
  f.config.warnings = {"agent.conf:3: `disable monitor` is ignored"};
  EXPECT_EQ(CheckConfig(f).level, CheckLevel::kWarn);
}

// --- 1. udp port -------------------------------------------------------------

TEST(DoctorTest, PortHeldByNtpdFailsNamingItAndItsPid) {
  DoctorFacts f = Healthy();
  f.agent = AgentFacts{};
  f.agent.socket_error = "no ntpfleet-agent is running here";
  f.port.port_from = "from agent.conf";
  f.port.owner = ProcessFact{12010, "ntpd"};
  const CheckLine l = CheckPort(f);
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, AllOf(HasSubstr("UDP port 123"), HasSubstr("ntpd"),
                             HasSubstr("pid 12010"),
                             HasSubstr("the NTP socket is in use")));
  EXPECT_THAT(l.fix, HasSubstr("systemctl disable --now ntpd"));
}

TEST(DoctorTest, PortHeldByAnotherAgentFails) {
  DoctorFacts f = Healthy();
  f.port.owner = ProcessFact{901, "ntpfleet-agent"};
  const CheckLine l = CheckPort(f);
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, AllOf(HasSubstr("pid 901"), HasSubstr("pid 900")));
}

TEST(DoctorTest, PortHeldByTheAgentIsOk) {
  const CheckLine l = CheckPort(Healthy());
  EXPECT_EQ(l.level, CheckLevel::kOk);
  EXPECT_THAT(l.found, HasSubstr("ntpfleet-agent (pid 900)"));
}

TEST(DoctorTest, FreePortWithoutAgentWarns) {
  DoctorFacts f = Healthy();
  f.agent = AgentFacts{};
  f.port.in_use = false;
  f.port.owner.reset();
  const CheckLine l = CheckPort(f);
  EXPECT_EQ(l.level, CheckLevel::kWarn);
  EXPECT_THAT(l.fix, HasSubstr("systemctl start ntpfleet-agent"));
}

TEST(DoctorTest, PortInUseByAnInvisibleOwnerWarns) {
  DoctorFacts f = Healthy();
  f.agent = AgentFacts{};
  f.port.owner.reset();
  const CheckLine l = CheckPort(f);
  EXPECT_EQ(l.level, CheckLevel::kWarn);
  EXPECT_THAT(l.fix, HasSubstr("ss -ulpn 'sport = :123'"));
}

// --- 2. time daemons ---------------------------------------------------------

TEST(DoctorTest, RunningChronydFails) {
  DoctorFacts f = Healthy();
  f.daemons.running = {{845, "chronyd"}};
  const CheckLine l = CheckTimeDaemons(f);
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, HasSubstr("chronyd (pid 845)"));
  EXPECT_THAT(l.fix, HasSubstr("systemctl disable --now chronyd`"));
}

TEST(DoctorTest, EnabledDaemonWarns) {
  DoctorFacts f = Healthy();
  f.daemons.enabled = {"/etc/rc3.d/S58ntpd"};
  const CheckLine l = CheckTimeDaemons(f);
  EXPECT_EQ(l.level, CheckLevel::kWarn);
  EXPECT_THAT(l.found, HasSubstr("/etc/rc3.d/S58ntpd"));
}

TEST(DoctorTest, NtpdateInCronWarns) {
  DoctorFacts f = Healthy();
  f.daemons.cron = {
      "/var/spool/cron/root:2: */10 * * * * /usr/sbin/ntpdate 192.168.242.51"};
  const CheckLine l = CheckTimeDaemons(f);
  EXPECT_EQ(l.level, CheckLevel::kWarn);
  EXPECT_THAT(l.found, HasSubstr("ntpdate 192.168.242.51"));
  EXPECT_THAT(l.fix, HasSubstr("ntpfleetctl sync"));
}

// --- 3. agent ----------------------------------------------------------------

TEST(DoctorTest, AgentWithoutCapSysTimeFails) {
  DoctorFacts f = Healthy();
  f.agent.cap_eff = uint64_t{1} << 10;  // CAP_NET_BIND_SERVICE only
  const CheckLine l = CheckAgent(f);
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, HasSubstr("lacks CAP_SYS_TIME"));
  EXPECT_THAT(l.fix, HasSubstr("AmbientCapabilities=CAP_SYS_TIME"));
}

TEST(DoctorTest, AgentOnSimulatedClockNeedsNoCapability) {
  DoctorFacts f = Healthy();
  f.agent.cap_eff = 0;
  f.agent.status->set_clock("sim");
  const CheckLine l = CheckAgent(f);
  EXPECT_EQ(l.level, CheckLevel::kOk);
  EXPECT_THAT(l.found, HasSubstr("simulated clock"));
}

TEST(DoctorTest, AgentNotRunningWarns) {
  DoctorFacts f = Healthy();
  f.agent = AgentFacts{};
  f.agent.socket_error =
      "no ntpfleet-agent is running here (nothing listens "
      "on /run/ntpfleet/agent.sock: No such file or "
      "directory)";
  EXPECT_EQ(CheckAgent(f).level, CheckLevel::kWarn);
}

TEST(DoctorTest, AgentSocketRefusedWarnsWithTheCapability) {
  DoctorFacts f = Healthy();
  f.agent.status.reset();
  f.agent.socket_error = "permission denied";
  const CheckLine l = CheckAgent(f);
  EXPECT_EQ(l.level, CheckLevel::kWarn);
  EXPECT_THAT(l.found, HasSubstr("has CAP_SYS_TIME"));
  EXPECT_THAT(l.fix, HasSubstr("sudo"));
}

// --- 4. upstreams ------------------------------------------------------------

TEST(DoctorTest, UnsynchronisedServerFailsAsSuchNotAsUnreachable) {
  DoctorFacts f = Healthy();
  UpstreamFacts& u = f.upstreams[0];
  u.probe = ProbeResult{};
  u.probe.outcome = ProbeOutcome::kUnsynchronised;
  u.probe.address = "192.168.242.51:123";
  u.probe.stratum = 16;
  u.probe.leap = 3;
  u.agent_view->set_unusable_reason("unsynchronised (stratum 16, leap alarm)");
  const std::vector<CheckLine> lines = CheckUpstreams(f);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, CheckLevel::kFail);
  EXPECT_THAT(lines[0].found,
              AllOf(HasSubstr("server answers but is itself unsynchronised"),
                    HasSubstr("stratum 16"),
                    HasSubstr("no server suitable for synchronization found"),
                    Not(HasSubstr("no reply"))));
  EXPECT_THAT(lines[0].fix,
              AllOf(HasSubstr("server 127.127.1.0"), HasSubstr("'*'")));
}

TEST(DoctorTest, KissOfDeathDenyFailsAsRefused) {
  DoctorFacts f = Healthy();
  f.upstreams[0].probe = ProbeResult{};
  f.upstreams[0].probe.outcome = ProbeOutcome::kKissOfDeath;
  f.upstreams[0].probe.kiss_code = "DENY";
  const CheckLine l = CheckUpstreams(f)[0];
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, AllOf(HasSubstr("refused by the server"),
                             HasSubstr("KoD DENY"), HasSubstr("restrict")));
}

TEST(DoctorTest, KissOfDeathRstrFailsAsRefused) {
  DoctorFacts f = Healthy();
  f.upstreams[0].probe.outcome = ProbeOutcome::kKissOfDeath;
  f.upstreams[0].probe.kiss_code = "RSTR";
  EXPECT_THAT(CheckUpstreams(f)[0].found, HasSubstr("refused by the server"));
}

TEST(DoctorTest, KissOfDeathRateWarns) {
  DoctorFacts f = Healthy();
  f.upstreams[0].probe.outcome = ProbeOutcome::kKissOfDeath;
  f.upstreams[0].probe.kiss_code = "RATE";
  EXPECT_EQ(CheckUpstreams(f)[0].level, CheckLevel::kWarn);
}

TEST(DoctorTest, NoReplyFailsWithTheAgentsReason) {
  DoctorFacts f = Healthy();
  f.upstreams[0].probe = ProbeResult{};
  f.upstreams[0].probe.outcome = ProbeOutcome::kNoReply;
  f.upstreams[0].probe.timeout = absl::Seconds(2);
  f.upstreams[0].agent_view->set_unusable_reason(
      "no reply (network, firewall, or `restrict ignore` on the server)");
  const CheckLine l = CheckUpstreams(f)[0];
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, AllOf(HasSubstr("no reply"), HasSubstr("2.000 s"),
                             HasSubstr("the agent: no reply")));
}

// A server kisses an address at most once per interval: the agent got the
// DENY, doctor's own query from the same address got silence. Still refused.
TEST(DoctorTest, NoReplyAfterTheAgentWasDeniedFailsAsRefused) {
  DoctorFacts f = Healthy();
  f.upstreams[0].probe = ProbeResult{};
  f.upstreams[0].probe.outcome = ProbeOutcome::kNoReply;
  f.upstreams[0].probe.timeout = absl::Seconds(2);
  f.upstreams[0].agent_view->set_refid("DENY");
  f.upstreams[0].agent_view->set_unusable_reason(
      "KoD DENY: the server refuses to serve us; stopped querying it");
  const CheckLine l = CheckUpstreams(f)[0];
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, AllOf(HasSubstr("refused by the server"),
                             HasSubstr("KoD DENY to the agent")));
  EXPECT_THAT(l.fix, HasSubstr("restrict"));
}

TEST(DoctorTest, UnresolvedNameFails) {
  DoctorFacts f = Healthy();
  f.upstreams[0].probe = ProbeResult{};
  f.upstreams[0].probe.outcome = ProbeOutcome::kUnresolved;
  f.upstreams[0].probe.error = "ntp1.aliyun.com: Name or service not known";
  const CheckLine l = CheckUpstreams(f)[0];
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, HasSubstr("cannot resolve"));
}

TEST(DoctorTest, StratumFifteenIsTooHigh) {
  DoctorFacts f = Healthy();
  f.upstreams[0].probe.stratum = 15;
  EXPECT_EQ(CheckUpstreams(f)[0].level, CheckLevel::kFail);
}

TEST(DoctorTest, AnswersDoctorButNotTheAgentWarns) {
  DoctorFacts f = Healthy();
  f.upstreams[0].agent_view->set_unusable_reason(
      "KoD DENY: the server refuses to serve us; stopped querying it");
  const CheckLine l = CheckUpstreams(f)[0];
  EXPECT_EQ(l.level, CheckLevel::kWarn);
  EXPECT_THAT(l.fix, HasSubstr("restart"));
}

TEST(DoctorTest, NoUpstreamAndNoLocalClockFails) {
  DoctorFacts f = Healthy();
  f.upstreams.clear();
  const std::vector<CheckLine> lines = CheckUpstreams(f);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, CheckLevel::kFail);
}

TEST(DoctorTest, LocalClockOnlyIsOk) {
  DoctorFacts f = Healthy();
  f.upstreams.clear();
  f.local_clock_stratum = 10;
  EXPECT_EQ(CheckUpstreams(f)[0].level, CheckLevel::kOk);
}

// --- 5. controller -----------------------------------------------------------

TEST(DoctorTest, HalfConfiguredTlsFails) {
  DoctorFacts f = Healthy();
  f.controller.outcome = ControllerOutcome::kHalfTls;
  f.controller.detail =
      "agent.conf:9: tls_cert without tls_key and tls_ca: mutual TLS needs "
      "tls_cert, tls_key and tls_ca";
  const CheckLine l = CheckController(f);
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, HasSubstr("half-configured TLS"));
}

TEST(DoctorTest, UnreachableControllerFails) {
  DoctorFacts f = Healthy();
  f.controller.outcome = ControllerOutcome::kUnreachable;
  f.controller.detail = "connection refused: nothing listens there";
  const CheckLine l = CheckController(f);
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, HasSubstr("cannot reach ctl.example:7123"));
}

TEST(DoctorTest, EachTlsFailureHasItsOwnFix) {
  DoctorFacts f = Healthy();
  f.controller.outcome = ControllerOutcome::kTlsFailed;
  f.controller.tls_failure = TlsFailure::kWrongCa;
  EXPECT_THAT(CheckController(f).fix, HasSubstr("ca.pem"));
  f.controller.tls_failure = TlsFailure::kPeerCertExpired;
  EXPECT_THAT(CheckController(f).fix, HasSubstr("new certificate"));
  f.controller.tls_failure = TlsFailure::kNameMismatch;
  EXPECT_THAT(CheckController(f).fix, HasSubstr("--controller HOST"));
  f.controller.tls_failure = TlsFailure::kClientCertRefused;
  EXPECT_THAT(CheckController(f).fix, HasSubstr("--node NAME"));
  EXPECT_EQ(CheckController(f).level, CheckLevel::kFail);
}

TEST(DoctorTest, PlainTextToTlsControllerFails) {
  DoctorFacts f = Healthy();
  f.controller.outcome = ControllerOutcome::kProtocolMismatch;
  EXPECT_EQ(CheckController(f).level, CheckLevel::kFail);
}

TEST(DoctorTest, NoControllerIsOk) {
  DoctorFacts f = Healthy();
  f.controller = ControllerFacts{};
  EXPECT_EQ(CheckController(f).level, CheckLevel::kOk);
}

// --- 6. drift file -----------------------------------------------------------

TEST(DoctorTest, MissingDriftDirectoryFails) {
  DoctorFacts f = Healthy();
  f.drift.path = "/var/lib/ntp/drift";
  f.drift.dir_exists = false;
  const CheckLine l = CheckDriftFile(f);
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, HasSubstr("/var/lib/ntp does not exist"));
}

TEST(DoctorTest, UnwritableDriftDirectoryFails) {
  DoctorFacts f = Healthy();
  f.drift.dir_writable = false;
  f.drift.dir_error = "mode 0755, owner root, group root";
  const CheckLine l = CheckDriftFile(f);
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, AllOf(HasSubstr("not writable by ntpfleet (uid 998)"),
                             HasSubstr("owner root")));
}

TEST(DoctorTest, DriftOutsideTheUnitsStateDirectoryWarns) {
  DoctorFacts f = Healthy();
  f.drift.path = "/var/lib/ntp/drift";
  f.drift.outside_unit_state_dir = true;
  EXPECT_EQ(CheckDriftFile(f).level, CheckLevel::kWarn);
}

TEST(DoctorTest, CorruptDriftFileWarns) {
  DoctorFacts f = Healthy();
  f.drift.file = DriftFileState::kInvalid;
  f.drift.file_error = "/var/lib/ntpfleet/drift:1: 'abc' is not a number";
  const CheckLine l = CheckDriftFile(f);
  EXPECT_EQ(l.level, CheckLevel::kWarn);
  EXPECT_THAT(l.fix, HasSubstr("delete /var/lib/ntpfleet/drift"));
}

TEST(DoctorTest, NoDriftFileLineWarns) {
  DoctorFacts f = Healthy();
  f.drift = DriftFacts{};
  EXPECT_EQ(CheckDriftFile(f).level, CheckLevel::kWarn);
}

// --- 7. kernel clock ---------------------------------------------------------

TEST(DoctorTest, KernelUnsyncWhileAgentSynchronisedWarns) {
  DoctorFacts f = Healthy();
  f.kernel.status = kStaUnsync | kStaPll;
  const CheckLine l = CheckKernelClock(f);
  EXPECT_EQ(l.level, CheckLevel::kWarn);
  EXPECT_THAT(l.found, AllOf(HasSubstr("STA_UNSYNC"),
                             HasSubstr("the agent says it is synchronised")));
}

TEST(DoctorTest, KernelSynchronisedWithoutAgentWarns) {
  DoctorFacts f = Healthy();
  f.agent = AgentFacts{};
  const CheckLine l = CheckKernelClock(f);
  EXPECT_EQ(l.level, CheckLevel::kWarn);
  EXPECT_THAT(l.found, HasSubstr("11-minute RTC mode on"));
}

TEST(DoctorTest, KernelFrequencyNearLimitWarns) {
  DoctorFacts f = Healthy();
  f.kernel.frequency_ppm = 480;
  EXPECT_EQ(CheckKernelClock(f).level, CheckLevel::kWarn);
}

TEST(DoctorTest, KernelReportShowsItsFields) {
  const CheckLine l = CheckKernelClock(Healthy());
  EXPECT_EQ(l.level, CheckLevel::kOk);
  EXPECT_THAT(l.found,
              AllOf(HasSubstr("synchronised"), HasSubstr("maxerror 1.500 ms"),
                    HasSubstr("frequency -12.500 ppm"), HasSubstr("PLL"),
                    HasSubstr("11-minute RTC mode on")));
}

TEST(DoctorTest, KernelUnreadableWarns) {
  DoctorFacts f = Healthy();
  f.kernel = KernelClockFacts{};
  f.kernel.error = "Operation not permitted";
  EXPECT_EQ(CheckKernelClock(f).level, CheckLevel::kWarn);
}

// --- 8. firewall -------------------------------------------------------------

TEST(DoctorTest, ServerAnsweringOthersButNotUsIsAFirewallFail) {
  DoctorFacts f = Healthy();
  f.upstreams[0].probe = ProbeResult{};
  f.upstreams[0].probe.outcome = ProbeOutcome::kNoReply;
  f.upstreams[0].serving_evidence = {
      "the controller shows node server synchronised at stratum 10",
      "node web-02 gets replies from it (reach 377)"};
  const CheckLine l = CheckFirewall(f);
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, AllOf(HasSubstr("although it answers others"),
                             HasSubstr("web-02")));
  EXPECT_THAT(l.fix, HasSubstr("UDP 123"));
}

TEST(DoctorTest, SilentServerWithoutEvidenceWarns) {
  DoctorFacts f = Healthy();
  f.upstreams[0].probe.outcome = ProbeOutcome::kNoReply;
  f.firewall.evidence_error = "the controller did not list the fleet";
  const CheckLine l = CheckFirewall(f);
  EXPECT_EQ(l.level, CheckLevel::kWarn);
  EXPECT_THAT(l.found, HasSubstr("did not list the fleet"));
}

TEST(DoctorTest, ServerNodeAnsweringOnLoopbackOnlyFails) {
  DoctorFacts f = Healthy();
  f.firewall.local = {{"127.0.0.1:123", true, true},
                      {"10.0.0.1:123", false, false}};
  const CheckLine l = CheckFirewall(f);
  EXPECT_EQ(l.level, CheckLevel::kFail);
  EXPECT_THAT(l.found, AllOf(HasSubstr("answers on 127.0.0.1:123"),
                             HasSubstr("but not on 10.0.0.1:123")));
}

TEST(DoctorTest, ServerNodeAnsweringNowhereFails) {
  DoctorFacts f = Healthy();
  f.firewall.local = {{"127.0.0.1:123", true, false}};
  EXPECT_EQ(CheckFirewall(f).level, CheckLevel::kFail);
}

TEST(DoctorTest, ServerNodeAnsweringEverywhereIsOk) {
  DoctorFacts f = Healthy();
  f.firewall.local = {{"127.0.0.1:123", true, true},
                      {"10.0.0.1:123", false, true}};
  EXPECT_EQ(CheckFirewall(f).level, CheckLevel::kOk);
}

// A client's `restrict default ignore` keeps its own fleet address silent by
// design: not a firewall.
TEST(DoctorTest, AddressOurOwnRestrictRefusesIsNotAFirewall) {
  DoctorFacts f = Healthy();
  f.firewall.local = {{"127.0.0.1:123", true, true},
                      {"10.0.0.1:123", false, false, true}};
  const CheckLine l = CheckFirewall(f);
  EXPECT_EQ(l.level, CheckLevel::kOk);
  EXPECT_THAT(l.found, HasSubstr("restrict rules do not serve 10.0.0.1:123"));
}

// A refused upstream is the upstream line's FAIL, not a firewall suspicion.
TEST(DoctorTest, RefusedUpstreamIsNotAFirewallSuspect) {
  DoctorFacts f = Healthy();
  f.upstreams[0].probe = ProbeResult{};
  f.upstreams[0].probe.outcome = ProbeOutcome::kNoReply;
  f.upstreams[0].agent_view->set_refid("DENY");
  f.firewall.evidence_error = "the controller did not list the fleet";
  EXPECT_EQ(CheckFirewall(f).level, CheckLevel::kOk);
}

// --- the report --------------------------------------------------------------

TEST(DoctorTest, TextReportHasFixUnderWarnAndFailOnly) {
  const std::vector<CheckLine> lines = {
      {CheckLevel::kOk, "a", "fine", "unused"},
      {CheckLevel::kFail, "b", "broken", "mend it"}};
  EXPECT_EQ(RenderText(lines),
            "OK    a: fine\n"
            "FAIL  b: broken\n"
            "      fix: mend it\n");
  EXPECT_EQ(DoctorExitCode(lines), 3);
}

TEST(DoctorTest, WarnsAloneExitZero) {
  EXPECT_EQ(DoctorExitCode({{CheckLevel::kWarn, "a", "hm", "x"}}), 0);
}

TEST(DoctorTest, JsonReportEscapes) {
  EXPECT_EQ(RenderJson({{CheckLevel::kWarn, "a", "say \"hi\"\n", "x\\y"}}),
            "{\"checks\":[{\"level\":\"WARN\",\"check\":\"a\",\"found\":"
            "\"say \\\"hi\\\"\\n\",\"fix\":\"x\\\\y\"}],\"exit_code\":0}\n");
}

}  // namespace
}  // namespace ntpfleet::ctl
