// The crosscheck probes' limits where packets leave (docs/AGENT.md "Crosscheck
// probes"): whatever assignments a controller sends, and however often, an
// agent sends a target at most one request per 64 s, all targets together at
// most 16 per 64 s per controller line, and never a request to an address that
// cannot answer (the agent itself, the unspecified address).
//
// The agent runs on a monotonic clock the test moves (a SimClock on it), so
// "64 s" is exact and the test takes about a second of real time. Each step
// is synchronised with the loop by a control-socket status request: the loop
// handles posted assignments before it answers, and fires due timers right
// after, before it takes the next posted assignment.
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/net/agent_loop.h"
#include "agent/net/udp.h"
#include "common/local_control.h"
#include "common/proto_time.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/sim_agent.h"

namespace ntpfleet::net {
namespace {

// An agent serving its local clock on 127.0.0.1 (port 0), no `controller`
// line (so its probe budget is that of one: 16 per 64 s), on the manual clock.
class ProbingAgent {
 public:
  explicit ProbingAgent(const std::string& socket)
      : socket_(socket), agent_(Options(socket, &mono_)) {}
  AgentLoop* loop() { return agent_.loop(); }

  // The status, once the loop has taken every assignment posted before.
  v1::LocalStatus Sync() {
    v1::LocalRequest request;
    request.mutable_status();
    absl::StatusOr<v1::LocalResponse> r =
        local_control::CallAgent(socket_, request, absl::Seconds(20));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->status() : v1::LocalStatus();
  }
  // Posts `assignment`, lets the loop take it, then moves the clock by `step`
  // and lets the loop fire what is due.
  void Step(const v1::ProbeAssignment& assignment, absl::Duration step) {
    loop()->PostProbes("controller", assignment);
    Sync();
    mono_.Advance(step);
    Sync();
  }

 private:
  static testing::SimAgentOptions Options(const std::string& socket,
                                          const clock::MonotonicClock* mono) {
    testing::SimAgentOptions o;
    o.socket = socket;
    o.node_name = "prober";
    o.mono = mono;
    return o;
  }

  const std::string socket_;
  testing::FakeMonotonicClock mono_;  // before agent_, which runs on it
  testing::SimAgent agent_;
};

// A probe target: a UDP socket on loopback that only counts what reaches it.
class Target {
 public:
  Target() {
    absl::StatusOr<UdpSocket> s =
        UdpSocket::Bind(Endpoint{ntp::IpAddress::V4(127, 0, 0, 1), 0});
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return;
    socket_ = *std::move(s);
    absl::StatusOr<Endpoint> local = socket_.LocalEndpoint();
    EXPECT_TRUE(local.ok());
    if (local.ok()) address_ = local->ToString();
  }
  const std::string& address() const { return address_; }
  // Datagrams received so far (reads what is waiting).
  int Count() {
    uint8_t buffer[1024];
    while (socket_.Receive(absl::MakeSpan(buffer))) ++count_;
    return count_;
  }
  // Answers what is waiting with a Kiss-o'-Death DENY (RFC 5905 §7.4: mode
  // 4, stratum 0, refid "DENY", origin = the request's transmit timestamp);
  // returns how many.
  int ReplyDeny() {
    uint8_t buffer[1024];
    int n = 0;
    while (std::optional<Datagram> d =
               socket_.Receive(absl::MakeSpan(buffer))) {
      ++count_;
      if (d->size < 48) continue;
      uint8_t reply[48] = {};
      reply[0] = (3 << 6) | (4 << 3) | 4;  // alarm, version 4, server
      std::memcpy(reply + 12, "DENY", 4);
      std::memcpy(reply + 24, buffer + 40, 8);  // origin
      std::memcpy(reply + 32, buffer + 40, 8);  // receive
      std::memcpy(reply + 40, buffer + 40, 8);  // transmit
      EXPECT_TRUE(socket_.SendTo(reply, d->from).ok());
      ++n;
    }
    return n;
  }

 private:
  UdpSocket socket_;
  std::string address_;
  int count_ = 0;
};

v1::ProbeAssignment Assignment(const std::vector<Target*>& targets,
                               absl::Duration interval) {
  v1::ProbeAssignment a;
  for (size_t i = 0; i < targets.size(); ++i) {
    v1::ProbeTarget* t = a.add_targets();
    t->set_node(absl::StrCat("node-", i));
    t->set_address(targets[i]->address());
  }
  SetDuration(interval, a.mutable_interval());
  return a;
}

class AgentLoopProbesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ntpfleet-probelimits.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string socket() const { return dir_ + "/agent.sock"; }
  std::string dir_;
};

// A controller alternating assignments every second — changing the interval,
// dropping the targets as a broken stream does — recreates the monitors each
// time; each new monitor's first request is due within 0.5 s. Without the
// per-address limit every target receives one request per assignment that
// names it (~100 for X over these 200 s); with it, at most one per 64 s.
TEST_F(AgentLoopProbesTest, AlternatingAssignmentsSendATargetOneRequestPer64s) {
  ProbingAgent agent(socket());
  ASSERT_NE(agent.loop(), nullptr);
  Target x, y, z;
  const v1::ProbeAssignment a = Assignment({&x, &y}, absl::Seconds(64));
  const v1::ProbeAssignment b = Assignment({&x, &z}, absl::Seconds(128));
  const v1::ProbeAssignment none;  // what a broken stream posts
  constexpr int kSeconds = 200;
  for (int s = 0; s < kSeconds; ++s) {
    const int phase = s % 4;
    agent.Step(phase == 0 ? a : phase == 2 ? b : none, absl::Seconds(1));
  }
  // At most one per started 64 s.
  const int most = 1 + kSeconds / 64;
  std::fprintf(stderr, "requests: x %d, y %d, z %d (at most %d each)\n",
               x.Count(), y.Count(), z.Count(), most);
  EXPECT_LE(x.Count(), most);
  EXPECT_LE(y.Count(), most);
  EXPECT_LE(z.Count(), most);
  // Limited, not silenced: X was assigned throughout and was probed.
  EXPECT_GE(x.Count(), 1);
}

// Three sets of 16 targets, one after the other every second: the per-address
// limit alone would let each of the 48 addresses have one request per 64 s
// (48); the agent-wide budget keeps it to 16 per 64 s (no `controller` line:
// the budget of one).
TEST_F(AgentLoopProbesTest, RotatingTargetSetsStayWithinTheAgentBudget) {
  ProbingAgent agent(socket());
  ASSERT_NE(agent.loop(), nullptr);
  std::vector<std::unique_ptr<Target>> targets;
  std::vector<v1::ProbeAssignment> sets;
  for (int set = 0; set < 3; ++set) {
    std::vector<Target*> members;
    for (int i = 0; i < kMaxProbeTargets; ++i) {
      targets.push_back(std::make_unique<Target>());
      members.push_back(targets.back().get());
    }
    sets.push_back(Assignment(members, absl::Seconds(64)));
  }
  auto total = [&targets] {
    int sum = 0;
    for (auto& t : targets) sum += t->Count();
    return sum;
  };
  // The first 63 s: within one 64 s window.
  for (int s = 0; s < 63; ++s) agent.Step(sets[s % 3], absl::Seconds(1));
  const int first_window = total();
  // The next 64 s: a second window.
  for (int s = 63; s < 127; ++s) agent.Step(sets[s % 3], absl::Seconds(1));
  const int both = total();
  std::fprintf(stderr, "requests: %d in the first 63 s, %d in 127 s\n",
               first_window, both);
  EXPECT_LE(first_window, kMaxProbeTargets);
  EXPECT_GE(first_window, 1);
  EXPECT_LE(both, 2 * kMaxProbeTargets);
  for (auto& t : targets) EXPECT_LE(t->Count(), 2) << t->address();
  const v1::LocalStatus st = agent.Sync();
  const auto dropped = st.server_counters().find("probe_budget_exceeded");
  ASSERT_NE(dropped, st.server_counters().end());
  EXPECT_GT(dropped->second, 0u);
}

// Targets that cannot answer are refused: the agent itself (its own server),
// the unspecified address (which Linux delivers to this host), multicast and
// broadcast. Only the real target gets a monitor. (Before the refusal existed
// this test ran with the first two only, so that no request could leave
// loopback: it failed with 3 monitors.)
TEST_F(AgentLoopProbesTest, RefusesTargetsThatCannotAnswer) {
  ProbingAgent agent(socket());
  ASSERT_NE(agent.loop(), nullptr);
  Target real;
  v1::ProbeAssignment a;
  v1::ProbeTarget* t = a.add_targets();
  t->set_node("itself");
  t->set_address(absl::StrCat("127.0.0.1:", agent.loop()->server_port()));
  t = a.add_targets();
  t->set_node("unspecified");
  t->set_address("0.0.0.0:123");
  t = a.add_targets();
  t->set_node("multicast");
  t->set_address("224.0.1.1:123");
  t = a.add_targets();
  t->set_node("broadcast");
  t->set_address("255.255.255.255:123");
  t = a.add_targets();
  t->set_node("real");
  t->set_address(real.address());
  SetDuration(absl::Seconds(64), a.mutable_interval());
  agent.Step(a, absl::Seconds(1));
  const v1::LocalStatus st = agent.Sync();
  ASSERT_EQ(st.probes_size(), 1) << st.DebugString();
  EXPECT_EQ(st.probes(0).node(), "real");
  EXPECT_EQ(real.Count(), 1);
}

// A target that answered KoD DENY is not asked again for an hour, even by a
// monitor made anew when the assignment comes back (without the memory, the
// new monitor polls it 64 s after the first request).
TEST_F(AgentLoopProbesTest, AKodDenyOutlivesTheMonitor) {
  ProbingAgent agent(socket());
  ASSERT_NE(agent.loop(), nullptr);
  Target x;
  const v1::ProbeAssignment a = Assignment({&x}, absl::Seconds(64));
  agent.Step(a, absl::Seconds(1));
  ASSERT_EQ(x.ReplyDeny(), 1);
  bool kissed = false;
  for (int i = 0; i < 200 && !kissed; ++i) {
    const v1::LocalStatus st = agent.Sync();
    kissed = st.probes_size() == 1 &&
             st.probes(0).error().find("KoD") != std::string::npos;
    if (!kissed) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(kissed) << agent.Sync().DebugString();
  const v1::ProbeAssignment none;
  for (int s = 0; s < 600; ++s) {
    agent.Step(s % 2 == 0 ? none : a, absl::Seconds(1));
  }
  EXPECT_EQ(x.Count(), 1);
}

}  // namespace
}  // namespace ntpfleet::net
