// AgentLoop's resync plumbing and control socket, on loopback with simulated
// clocks: a resync from the controller (PostResync) steps only within its
// limit (the request's max_step, else the step threshold; never beyond the
// agent's resync_max_step) and otherwise corrects nothing; the node's own
// resync (control socket) is not limited; a refused control request is
// counted in server_counters["control_refused"].
#include "agent/net/agent_loop.h"

#include <grp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/clock/sim_clock.h"
#include "agent/clock/system_clock.h"
#include "common/config/config.h"
#include "common/drift_file.h"
#include "common/local_control.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/sim_agent.h"

namespace ntpfleet::net {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

// One agent on a simulated clock, its loop on a thread of its own.
class RunningAgent : public testing::SimAgent {
 public:
  RunningAgent(const std::string& config_text, const std::string& socket,
               absl::Duration initial_offset = absl::ZeroDuration())
      : SimAgent(Options(config_text, socket, initial_offset)) {}

  // PostResync as the controller's reporter does; waits for the result.
  v1::ResyncResult ControllerResync(bool allow_step,
                                    std::optional<absl::Duration> max_step) {
    v1::Resync r;
    r.set_request_id("r1");
    r.set_burst(true);
    r.set_allow_step(allow_step);
    r.mutable_deadline()->set_seconds(30);
    if (max_step) SetDuration(*max_step, r.mutable_max_step());
    absl::Notification done;
    v1::ResyncResult result;
    loop()->PostResync(r, [&](const v1::ResyncResult& res) {
      result = res;
      done.Notify();
    });
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(60)));
    return result;
  }

 private:
  static testing::SimAgentOptions Options(const std::string& config_text,
                                          const std::string& socket,
                                          absl::Duration initial_offset) {
    testing::SimAgentOptions o;
    o.config_text = config_text;
    o.socket = socket;
    o.initial_offset = initial_offset;
    return o;
  }
};

absl::StatusOr<v1::LocalResponse> Call(const std::string& socket,
                                       const v1::LocalRequest& request) {
  return local_control::CallAgent(socket, request, absl::Seconds(40));
}

absl::StatusOr<v1::LocalStatus> Status(const std::string& socket) {
  v1::LocalRequest request;
  request.mutable_status();
  absl::StatusOr<v1::LocalResponse> r = Call(socket, request);
  if (!r.ok()) return r.status();
  return r->status();
}

class AgentLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Unix socket paths are short: not under TEST_TMPDIR.
    char dir[] = "/tmp/ntpfleet-loop.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    chmod(dir, 0711);
    socket_ = dir_ + "/agent.sock";
  }
  // The whole directory: the drift file a test writes there too.
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string dir_;
  std::string socket_;
};

double Seconds(const google::protobuf::Duration& d) {
  return absl::ToDoubleSeconds(FromProto(d));
}

// Waits until every request the agent at `socket` sent has had its datagram
// back (answered or dropped: each counted once in its source's counters), so
// that the test's next step of its clock cannot fall inside an exchange. (The
// engine voids exchanges across its own steps, not across a step the test
// makes behind its back; the next request of a burst is 2 s away.)
void WaitQuiet(const std::string& socket) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (absl::Now() < give_up) {
    absl::StatusOr<v1::LocalStatus> st = Status(socket);
    if (st.ok()) {
      bool quiet = true;
      for (const v1::PeerStatus& p : st->status().peers()) {
        uint64_t sent = 0, back = 0;
        for (const auto& [name, count] : p.counters()) {
          (name == "requests" ? sent : back) += count;
        }
        quiet = quiet && back >= sent;
      }
      if (quiet) return;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  ADD_FAILURE() << "requests still unanswered after 30 s";
}

// A server agent on its local clock and a client of it (`tinker step 0`: the
// normal discipline only slews, at most 500 ppm, so between the resyncs of a
// test nothing else corrects the clock noticeably; `resync_max_step 2`),
// once the client is synchronised (iburst: within a few seconds).
struct SyncedPair {
  std::unique_ptr<RunningAgent> server;
  std::unique_ptr<RunningAgent> client;
};
SyncedPair StartSyncedPair(const std::string& socket) {
  SyncedPair p;
  p.server = std::make_unique<RunningAgent>(
      "server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n", "");
  if (p.server->loop() == nullptr || p.server->loop()->server_port() == 0) {
    ADD_FAILURE() << "the server agent did not start";
    return p;
  }
  p.client = std::make_unique<RunningAgent>(
      absl::StrCat("server 127.0.0.1:", p.server->loop()->server_port(),
                   " iburst\ntinker step 0\n"
                   "resync_max_step 2\n"),
      socket);
  if (p.client->loop() == nullptr) {
    ADD_FAILURE() << "the client agent did not start";
    return p;
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (absl::Now() < give_up) {
    absl::StatusOr<v1::LocalStatus> st = Status(socket);
    if (st.ok() && !st->status().system_peer().empty()) return p;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ADD_FAILURE() << "never synchronised";
  return p;
}

TEST_F(AgentLoopTest, ControllerResyncsStepOnlyWithinTheirLimit) {
  SyncedPair pair = StartSyncedPair(socket_);
  ASSERT_FALSE(HasFailure());
  RunningAgent& client = *pair.client;

  // The clock jumps 800 ms ahead.
  WaitQuiet(socket_);
  ASSERT_TRUE(client.clock().Step(absl::Milliseconds(800)).ok());
  const int steps = client.clock().steps();

  // The request's own limit (an operator's 128 ms): nothing corrected.
  v1::ResyncResult r =
      client.ControllerResync(/*allow_step=*/true, absl::Milliseconds(128));
  EXPECT_EQ(r.outcome(), v1::RESYNC_OUTCOME_FAILED) << r.DebugString();
  EXPECT_NEAR(Seconds(r.offset_before()), -0.8, 0.2);
  EXPECT_FALSE(r.stepped());
  EXPECT_THAT(r.error(),
              MatchesRegex("offset -[0-9]+\\.[0-9] ms is beyond this "
                           "request's step limit \\(128 ms\\): an admin can "
                           "lift it with `ntpfleetctl resync --force`"));
  EXPECT_EQ(client.clock().steps(), steps);
  EXPECT_GT(absl::ToDoubleSeconds(client.clock().Phase()), 0.75);

  // Without max_step, the step threshold is the limit (0 here: never).
  r = client.ControllerResync(/*allow_step=*/true, std::nullopt);
  EXPECT_EQ(r.outcome(), v1::RESYNC_OUTCOME_FAILED) << r.DebugString();
  EXPECT_THAT(r.error(), HasSubstr("beyond this request's step limit (0 s)"));
  EXPECT_EQ(client.clock().steps(), steps);

  // Within the limit (10 s asked; the agent's own 2 s): stepped.
  r = client.ControllerResync(/*allow_step=*/true, absl::Seconds(10));
  EXPECT_EQ(r.outcome(), v1::RESYNC_OUTCOME_OK) << r.DebugString();
  EXPECT_TRUE(r.stepped());
  EXPECT_NEAR(Seconds(r.offset_before()), -0.8, 0.2);
  EXPECT_EQ(client.clock().steps(), steps + 1);
  EXPECT_LT(std::fabs(absl::ToDoubleSeconds(client.clock().Phase())), 0.2);
}

// Beyond the agent's own resync_max_step, whatever the request says; the
// node's root (the control socket) is not limited. A fresh pair: its filter
// holds no samples of an earlier correction.
TEST_F(AgentLoopTest, AgentsOwnLimitHoldsWhateverTheRequestSays) {
  SyncedPair pair = StartSyncedPair(socket_);
  ASSERT_FALSE(HasFailure());
  RunningAgent& client = *pair.client;
  WaitQuiet(socket_);
  ASSERT_TRUE(client.clock().Step(absl::Seconds(3)).ok());
  const int steps = client.clock().steps();
  v1::ResyncResult r =
      client.ControllerResync(/*allow_step=*/true, absl::Seconds(10));
  EXPECT_EQ(r.outcome(), v1::RESYNC_OUTCOME_FAILED) << r.DebugString();
  EXPECT_THAT(r.error(),
              HasSubstr("beyond this agent's resync_max_step (2 s)"));
  EXPECT_LT(Seconds(r.offset_before()), -2.0);
  EXPECT_EQ(client.clock().steps(), steps);
  EXPECT_GT(absl::ToDoubleSeconds(client.clock().Phase()), 2.9);

  v1::LocalRequest local;
  local.mutable_resync()->set_allow_step(true);
  local.mutable_resync()->set_burst(true);
  local.mutable_resync()->mutable_deadline()->set_seconds(30);
  absl::StatusOr<v1::LocalResponse> lr = Call(socket_, local);
  ASSERT_TRUE(lr.ok()) << lr.status();
  EXPECT_EQ(lr->resync_result().outcome(), v1::RESYNC_OUTCOME_OK)
      << lr->DebugString();
  EXPECT_TRUE(lr->resync_result().stepped());
  EXPECT_LT(Seconds(lr->resync_result().offset_before()), -2.0);
  EXPECT_EQ(client.clock().steps(), steps + 1);
  // Most of the 3 s corrected at once (a limited agent would still be 3 s
  // off; what remains of an estimate that mixes older samples is slewed).
  EXPECT_LT(std::fabs(absl::ToDoubleSeconds(client.clock().Phase())), 1.0);
}

// Stopped mid-slew, the agent leaves the clock at its learned frequency (the
// drift file's), not at the slew's extra rate: the kernel would keep running
// the clock up to 500 ppm off after the agent is gone (issue #11).
TEST_F(AgentLoopTest, StoppedMidSlewLeavesTheClockAtItsLearnedFrequency) {
  const std::string drift = dir_ + "/ntp.drift";
  RunningAgent server("server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n", "");
  ASSERT_NE(server.loop(), nullptr);
  RunningAgent client(
      absl::StrCat("server 127.0.0.1:", server.loop()->server_port(),
                   " iburst\ndriftfile ", drift, "\n"),
      socket_);
  ASSERT_NE(client.loop(), nullptr);
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (true) {
    absl::StatusOr<v1::LocalStatus> st = Status(socket_);
    ASSERT_TRUE(st.ok()) << st.status();
    if (!st->status().system_peer().empty()) break;
    ASSERT_LT(absl::Now(), give_up) << "never synchronised";
    absl::SleepFor(absl::Milliseconds(50));
  }
  // 20 ms off, below the step threshold: a resync slews it away at up to
  // 500 ppm over tens of seconds; the agent is stopped once the slew runs.
  WaitQuiet(socket_);
  const double before = client.clock().FrequencyAdjustment();
  ASSERT_TRUE(client.clock().Step(absl::Milliseconds(20)).ok());
  v1::Resync resync;
  resync.set_request_id("r1");
  resync.set_burst(true);
  resync.mutable_deadline()->set_seconds(30);
  client.loop()->PostResync(resync, [](const v1::ResyncResult&) {});
  const absl::Time slew_by = absl::Now() + absl::Seconds(30);
  while (std::fabs(client.clock().FrequencyAdjustment() - before) < 100) {
    ASSERT_LT(absl::Now(), slew_by) << "no slew started";
    absl::SleepFor(absl::Milliseconds(5));
  }
  const double slewing_at = client.clock().FrequencyAdjustment();

  client.Stop();
  absl::StatusOr<double> learned = clock::ReadDriftFile(drift);
  ASSERT_TRUE(learned.ok()) << learned.status();
  // Now the clock runs at what the drift file says (written to 0.001 ppm),
  // not at the slew's rate.
  EXPECT_NEAR(client.clock().FrequencyAdjustment(), *learned, 0.001)
      << "slewing at " << slewing_at;
}

TEST_F(AgentLoopTest, RefusedControlRequestsAreCounted) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to ask as another uid";
  RunningAgent agent("server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n",
                     socket_);
  ASSERT_NE(agent.loop(), nullptr);
  absl::StatusOr<v1::LocalStatus> st = Status(socket_);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->server_counters().at("control_refused"), 0u);
  chmod(socket_.c_str(), 0666);  // past the file mode: the agent's own check

  // A child as uid/gid 65534 asks for a sim-step; exit 0 if refused so.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0) {
      _exit(3);
    }
    v1::LocalRequest request;
    SetDuration(absl::Seconds(5), request.mutable_sim_step()->mutable_step());
    absl::StatusOr<v1::LocalResponse> r = Call(socket_, request);
    _exit(!r.ok() && absl::IsPermissionDenied(r.status()) &&
                  r.status().message() ==
                      "permission denied: `sim-step` needs root (you are uid "
                      "65534)"
              ? 0
              : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 3) {
    GTEST_SKIP() << "cannot become uid 65534 here";
  }
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
      << "the unprivileged sim-step was not refused as expected";
  st = Status(socket_);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->server_counters().at("control_refused"), 1u);
  EXPECT_EQ(agent.clock().steps(), 0);
}

// The serve check answers from the restrict rules the agent runs: the longest
// matching prefix wins (ntpd), `ignore` and `noserve` refuse, `nomodify` and
// `limited` do not, no rule means served, and a non-address is an error for
// that address only. An agent that answered its status instead (or ignored
// the rules) fails the has_serve_check / refused expectations.
TEST_F(AgentLoopTest, ServeCheckAnswersFromTheRestrictRulesItRuns) {
  RunningAgent agent(
      "server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n"
      "restrict default ignore\n"
      "restrict 127.0.0.1\n"
      "restrict 192.0.2.0 mask 255.255.255.0 nomodify limited\n"
      "restrict 192.0.2.7 noserve\n",
      socket_);
  ASSERT_NE(agent.loop(), nullptr);
  v1::LocalRequest request;
  for (const char* a :
       {"127.0.0.1", "192.0.2.1", "192.0.2.7", "198.51.100.1", "::1", "nope"}) {
    request.mutable_serve_check()->add_address(a);
  }
  absl::StatusOr<v1::LocalResponse> r = Call(socket_, request);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->has_serve_check()) << r->DebugString();
  const auto& v = r->serve_check().verdict();
  ASSERT_EQ(v.size(), 6);
  EXPECT_EQ(v[0].address(), "127.0.0.1");
  EXPECT_FALSE(v[0].refused());  // its own rule, no flags
  EXPECT_FALSE(v[1].refused());  // nomodify limited: still served
  EXPECT_TRUE(v[2].refused());   // noserve, longer prefix than the /24
  EXPECT_TRUE(v[3].refused());   // default ignore
  EXPECT_TRUE(v[4].refused());   // `restrict default` covers IPv6 too
  EXPECT_TRUE(v[0].error().empty() && v[4].error().empty());
  EXPECT_THAT(v[5].error(), ::testing::Not(::testing::IsEmpty()));
}

// sim-step moves the simulated clock by at most 2^31 s either way (half an
// NTP era): one second more is refused with the limit named and the clock
// untouched; the limit itself is applied. An agent without the check steps the
// clock twice.
TEST_F(AgentLoopTest, SimStepBeyondHalfAnEraIsRefused) {
  RunningAgent agent("server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n",
                     socket_);
  ASSERT_NE(agent.loop(), nullptr);
  const absl::Duration limit = absl::Seconds(local_control::kMaxSimStepSeconds);
  v1::LocalRequest request;
  SetDuration(-limit - absl::Seconds(1),
              request.mutable_sim_step()->mutable_step());
  absl::StatusOr<v1::LocalResponse> r = Call(socket_, request);
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_THAT(r.status().message(),
              HasSubstr("at most 2147483648 s (68 years) either way"));
  EXPECT_EQ(agent.clock().steps(), 0);

  SetDuration(-limit, request.mutable_sim_step()->mutable_step());
  r = Call(socket_, request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(agent.clock().steps(), 1);
  EXPECT_TRUE(r->has_status());  // the agent answers with its status
  // The clock minus true time (its own drift since the start is far below a
  // second).
  EXPECT_NEAR(absl::ToDoubleSeconds(agent.clock().Phase()), -2147483648.0, 0.5);
}

// A leapfile the agent cannot use is a warning naming the file and the
// fallback, never a reason not to start.
TEST_F(AgentLoopTest, AMissingMalformedOrExpiredLeapfileIsAWarning) {
  const std::string malformed = dir_ + "/malformed.list";
  const std::string expired = dir_ + "/expired.list";
  {
    FILE* f = fopen(malformed.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("#@ 3786912000\n3692217600 37 extra\n", f);
    fclose(f);
    f = fopen(expired.c_str(), "w");  // expired 2000-01-01
    ASSERT_NE(f, nullptr);
    fputs("#@ 3155673600\n2272060800 10\n", f);
    fclose(f);
  }
  const struct {
    std::string path;
    std::string warning;
  } kCases[] = {
      {dir_ + "/none.list",
       "leapfile not used: cannot read " + dir_ +
           "/none.list: No such file or directory; leap seconds are "
           "taken from the servers' majority at the end of June or December "
           "only"},
      {malformed, "leapfile not used: " + malformed +
                      ":2: expected 'NTP-SECONDS TAI-UTC', got '3692217600 "
                      "37 extra'; leap seconds are taken"},
      {expired, "leapfile " + expired +
                    " expired on 2000-01-01: update it (Debian: the tzdata "
                    "package); until then leap seconds are taken"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.path);
    absl::StatusOr<config::AgentConfig> cfg =
        config::ParseConfig("leapfile " + c.path + "\nleapsecmode slew\n",
                            "test.conf", config::NoIncludeFiles());
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    clock::SystemMonotonicClock mono;
    clock::SimClock sim(&mono, absl::Now(), {});
    AgentOptions options;
    options.config = *cfg;
    options.node_name = "test";
    options.port = -1;  // no server side
    options.clock = &sim;
    options.mono = &mono;
    ::testing::internal::CaptureStderr();
    absl::StatusOr<std::unique_ptr<AgentLoop>> loop =
        AgentLoop::Create(std::move(options));
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_TRUE(loop.ok()) << loop.status();
    EXPECT_THAT(log, HasSubstr("WARN"));
    EXPECT_THAT(log, HasSubstr(c.warning));
  }
  unlink(malformed.c_str());
  unlink(expired.c_str());
}

// An agent created (Init ran: sources resolved, server bound) but not run, on
// a simulated clock; the log of its start in `log`.
struct CreatedAgent {
  clock::SystemMonotonicClock mono;
  std::unique_ptr<clock::SimClock> sim;
  std::unique_ptr<AgentLoop> loop;
  std::string log;
};
std::unique_ptr<CreatedAgent> CreateAgent(const std::string& config_text,
                                          int port) {
  auto a = std::make_unique<CreatedAgent>();
  absl::StatusOr<config::AgentConfig> cfg =
      config::ParseConfig(config_text, "test.conf", config::NoIncludeFiles());
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  if (!cfg.ok()) return a;
  a->sim = std::make_unique<clock::SimClock>(
      &a->mono, clock::AnchorToRealtime(a->mono), clock::SimClockParams{});
  AgentOptions options;
  options.config = *cfg;
  options.node_name = "test";
  options.port = port;
  options.listen_address = "127.0.0.1";
  options.clock = a->sim.get();
  options.mono = &a->mono;
  ::testing::internal::CaptureStderr();
  absl::StatusOr<std::unique_ptr<AgentLoop>> loop =
      AgentLoop::Create(std::move(options));
  a->log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(loop.ok()) << loop.status();
  if (loop.ok()) a->loop = *std::move(loop);
  return a;
}

// A UDP port free on 127.0.0.1 a moment ago (for a test that must know the
// agent's port before it starts).
int FreePort() {
  absl::StatusOr<UdpSocket> s =
      UdpSocket::Bind(Endpoint{ntp::IpAddress::V4(127, 0, 0, 1), 0});
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return 0;
  absl::StatusOr<Endpoint> local = s->LocalEndpoint();
  return local.ok() ? local->port : 0;
}

// Issue #15 item 13: a server line that can never answer says why, in the log
// at start and as the peer's reason, instead of "no reply yet" for ever.
TEST_F(AgentLoopTest, ServersThatCanNeverAnswerSayWhy) {
  const int port = FreePort();
  ASSERT_NE(port, 0);
  std::unique_ptr<CreatedAgent> a =
      CreateAgent(absl::StrCat("server 0.0.0.0:18200\nserver 255.255.255.255\n"
                               "server 224.0.1.1\nserver 127.0.0.1:",
                               port, "\nserver 127.0.0.1:9\n"),
                  port);
  ASSERT_NE(a->loop, nullptr);
  ASSERT_EQ(a->loop->server_port(), port);
  EXPECT_THAT(a->log,
              HasSubstr("test.conf:1: server 0.0.0.0:18200 is 0.0.0.0:18200, "
                        "which is never polled: the unspecified (\"any\") "
                        "address belongs to no server"));
  EXPECT_THAT(a->log, HasSubstr("test.conf:2: server 255.255.255.255:123 is "
                                "255.255.255.255:123, which is never polled: "
                                "the limited broadcast address"));
  EXPECT_THAT(a->log, HasSubstr("test.conf:3: server 224.0.1.1:123 is "
                                "224.0.1.1:123, which is never polled: a "
                                "multicast address"));
  EXPECT_THAT(a->log, HasSubstr(absl::StrCat(
                          "test.conf:4: server 127.0.0.1:", port,
                          " is 127.0.0.1:", port,
                          ", which is never polled: it is this agent's own "
                          "NTP server (it serves on UDP port ",
                          port, ")")));
  const v1::SyncStatus st = a->loop->LocalStatus().status();
  ASSERT_EQ(st.peers_size(), 5);
  EXPECT_THAT(st.peers(0).unusable_reason(),
              HasSubstr("never polled: the unspecified"));
  EXPECT_THAT(st.peers(1).unusable_reason(),
              HasSubstr("never polled: the limited broadcast address"));
  EXPECT_THAT(st.peers(2).unusable_reason(),
              HasSubstr("never polled: a multicast address"));
  EXPECT_THAT(st.peers(3).unusable_reason(),
              HasSubstr("never polled: it is this agent's own NTP server"));
  EXPECT_EQ(st.peers(4).unusable_reason(), "");  // another port: may answer
  EXPECT_EQ(st.peers(4).address(), "127.0.0.1:9");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(st.peers(i).address(), "") << i;
}

// Issue #15 item 10: a drift file that cannot be written is said at start,
// with the fix (a missing directory: true for root as well).
TEST_F(AgentLoopTest, AnUnwritableDriftFileIsAWarningAtStart) {
  const std::string path = dir_ + "/missing/drift";
  std::unique_ptr<CreatedAgent> a = CreateAgent("driftfile " + path + "\n", 0);
  ASSERT_NE(a->loop, nullptr);
  EXPECT_THAT(a->log, HasSubstr("WARN"));
  EXPECT_THAT(a->log, HasSubstr("drift file " + path + ": the directory " +
                                dir_ + "/missing does not exist: create it"));
  EXPECT_THAT(a->log, HasSubstr("written hourly and at exit"));
}

// Issue #15 item 3: two lines naming one server (here [::ffff:127.0.0.1]:P
// and 127.0.0.1:P, as a name resolving to an address another line polls would)
// are one source: the second says so instead of "no reply yet" for ever.
// (main.cc merges numeric lines before the loop sees them; this is the loop's
// own check, the one names get when they resolve.)
TEST_F(AgentLoopTest, TheSameServerTwiceIsPolledOnce) {
  RunningAgent server("server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n", "");
  ASSERT_NE(server.loop(), nullptr);
  const int port = server.loop()->server_port();
  ::testing::internal::CaptureStderr();
  RunningAgent client(
      absl::StrCat("server 127.0.0.1:", port,
                   " iburst\nserver [::ffff:127.0.0.1]:", port, " iburst\n"),
      socket_);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_NE(client.loop(), nullptr);
  EXPECT_THAT(log,
              HasSubstr(absl::StrCat(
                  "test.conf:2: server [::ffff:127.0.0.1]:", port,
                  " is 127.0.0.1:", port,
                  ", the same server as test.conf:1 (server 127.0.0.1:", port,
                  "): polled once, with the options of test.conf:1")));
  // The one source answers; the other is not "no reply yet".
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  v1::SyncStatus st;
  while (absl::Now() < give_up) {
    absl::StatusOr<v1::LocalStatus> local = Status(socket_);
    if (local.ok()) st = local->status();
    if (!st.system_peer().empty()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(st.peers_size(), 2);
  EXPECT_NE(st.peers(0).reach(), 0u);
  EXPECT_EQ(st.peers(0).address(), absl::StrCat("127.0.0.1:", port));
  EXPECT_EQ(st.peers(1).address(), "");
  EXPECT_EQ(st.peers(1).unusable_reason(),
            absl::StrCat("the same server as test.conf:1 (127.0.0.1:", port,
                         "), which is polled instead"));
}

// Issue #15 item 15: the first "syncing" line said "stratum 16" (the node's
// own, unknown until its clock is set) though the node then ran at 11; it
// now names the system peer's stratum, and the "synchronized" line the node's.
TEST_F(AgentLoopTest, TheSyncingLineSaysTheStratumThatIsKnown) {
  RunningAgent server("server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n", "");
  ASSERT_NE(server.loop(), nullptr);
  const int port = server.loop()->server_port();
  ::testing::internal::CaptureStderr();
  std::string log;
  {
    // A system peer is chosen before the first correction: "syncing" comes
    // first, then "synchronised".
    RunningAgent client(absl::StrCat("server 127.0.0.1:", port, " iburst\n"),
                        socket_);
    ASSERT_NE(client.loop(), nullptr);
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    while (absl::Now() < give_up) {
      absl::StatusOr<v1::LocalStatus> local = Status(socket_);
      if (local.ok() &&
          local->status().state() == v1::SYNC_STATE_SYNCHRONISED) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    client.Stop();
    log = ::testing::internal::GetCapturedStderr();
  }
  const std::string peer = absl::StrCat("127.0.0.1:", port);
  const size_t at = log.find("syncing: system peer");
  ASSERT_NE(at, std::string::npos) << log;
  const std::string syncing = log.substr(at, log.find('\n', at) - at);
  EXPECT_THAT(syncing,
              HasSubstr(absl::StrCat("syncing: system peer 127.0.0.1 (", peer,
                                     ", stratum 10), offset ")));
  EXPECT_THAT(syncing, Not(HasSubstr("stratum 16")));
  EXPECT_THAT(
      log, HasSubstr(absl::StrCat("synchronised: system peer 127.0.0.1 (", peer,
                                  "), stratum 11, offset ")));
}

}  // namespace
}  // namespace ntpfleet::net
