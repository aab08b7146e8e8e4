// The crosscheck's agent side end to end on loopback: a fake controller (an
// in-process AgentService on port 0, plain text) assigns a probe target; the
// agent (AgentLoop + Reporter wired as agent/main.cc wires them) measures a
// real responder — another agent on a simulated clock 30 ms ahead — and
// sends a ProbeReport with its offset. Also: Hello.ntp_port, the reported
// offset carries --sim-report-bias while sim_true_offset does not, invalid
// targets are ignored, and a reconnect drops the controller's assignment.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/net/agent_loop.h"
#include "agent/report/reporter.h"
#include "common/local_control.h"
#include "common/proto_time.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/local_grpc_server.h"
#include "tests/testing/sim_agent.h"

namespace ntpfleet::report {
namespace {

// A controller that sends `assignment` on the first stream only, and records
// what the agent sends. After the first ProbeReport with a measurement it
// ends that stream when `hang_up` is set.
class FakeController final : public v1::AgentService::Service {
 public:
  explicit FakeController(v1::ProbeAssignment assignment)
      : assignment_(std::move(assignment)) {}

  grpc::Status Connect(
      grpc::ServerContext* /*context*/,
      grpc::ServerReaderWriter<v1::ControllerMessage, v1::AgentMessage>* stream)
      override {
    bool first;
    {
      absl::MutexLock lock(&mu_);
      first = sessions_++ == 0;
    }
    v1::AgentMessage m;
    if (!stream->Read(&m) || !m.has_hello()) return grpc::Status::CANCELLED;
    {
      absl::MutexLock lock(&mu_);
      hello_ = m.hello();
    }
    if (first) {
      v1::ControllerMessage c;
      *c.mutable_probes() = assignment_;
      stream->Write(c);
    }
    while (stream->Read(&m)) {
      absl::MutexLock lock(&mu_);
      if (m.has_status()) statuses_.push_back(m.status());
      if (m.has_probe_report()) {
        reports_.push_back(m.probe_report());
        const bool measured = m.probe_report().results_size() > 0 &&
                              m.probe_report().results(0).has_offset();
        if (hang_up_ && first && measured) return grpc::Status::OK;
      }
    }
    return grpc::Status::OK;
  }

  void HangUpAfterReport() {
    absl::MutexLock lock(&mu_);
    hang_up_ = true;
  }
  // The first ProbeReport whose results include a measurement.
  std::optional<v1::ProbeReport> AwaitMeasured(absl::Duration timeout) {
    const absl::Time give_up = absl::Now() + timeout;
    while (absl::Now() < give_up) {
      {
        absl::MutexLock lock(&mu_);
        for (const v1::ProbeReport& r : reports_) {
          for (const v1::ProbeResult& x : r.results()) {
            if (x.has_offset()) return r;
          }
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return std::nullopt;
  }
  std::optional<v1::Hello> hello() {
    absl::MutexLock lock(&mu_);
    return hello_;
  }
  std::vector<v1::SyncStatus> statuses() {
    absl::MutexLock lock(&mu_);
    return statuses_;
  }
  int sessions() {
    absl::MutexLock lock(&mu_);
    return sessions_;
  }

 private:
  const v1::ProbeAssignment assignment_;
  absl::Mutex mu_;
  int sessions_ ABSL_GUARDED_BY(mu_) = 0;
  bool hang_up_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<v1::Hello> hello_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::SyncStatus> statuses_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ProbeReport> reports_ ABSL_GUARDED_BY(mu_);
};

// An agent on a simulated clock serving its local clock (stratum 10) on
// 127.0.0.1, port 0; started by the test (Start) once its listeners are set.
::ntpfleet::testing::SimAgentOptions ProbeAgentOptions(
    absl::Duration initial_offset, const std::string& socket,
    absl::Duration report_bias) {
  ::ntpfleet::testing::SimAgentOptions o;
  o.socket = socket;
  o.node_name = "prober";
  o.initial_offset = initial_offset;
  o.report_bias = report_bias;
  o.start = false;
  return o;
}

absl::StatusOr<v1::LocalStatus> Status(const std::string& socket) {
  v1::LocalRequest request;
  request.mutable_status();
  absl::StatusOr<v1::LocalResponse> r =
      local_control::CallAgent(socket, request, absl::Seconds(20));
  if (!r.ok()) return r.status();
  return r->status();
}

TEST(ReporterProbesTest, AnAssignmentLeadsToProbesAndAProbeReport) {
  char dir[] = "/tmp/ntpfleet-probes.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string socket = std::string(dir) + "/agent.sock";

  // The target: its clock 30 ms ahead of true time.
  ::ntpfleet::testing::SimAgent target(
      ProbeAgentOptions(absl::Milliseconds(30), "", absl::ZeroDuration()));
  ASSERT_NE(target.loop(), nullptr);
  ASSERT_NE(target.loop()->server_port(), 0);
  target.Start();
  const std::string target_address =
      absl::StrCat("127.0.0.1:", target.loop()->server_port());

  v1::ProbeAssignment assignment;
  v1::ProbeTarget* t = assignment.add_targets();
  t->set_node("target");
  t->set_address(target_address);
  // Names are not probed (no DNS on the controller's word).
  t = assignment.add_targets();
  t->set_node("named");
  t->set_address("target.example:123");
  SetDuration(absl::Seconds(64), assignment.mutable_interval());
  FakeController controller(assignment);
  controller.HangUpAfterReport();
  const ::ntpfleet::testing::LocalGrpcServer server =
      ::ntpfleet::testing::StartLocalGrpcServer(&controller);
  const int controller_port = server.port;
  ASSERT_NE(controller_port, 0);

  // The prober: its clock on true time, reporting 5 ms off the truth.
  ::ntpfleet::testing::SimAgent prober(
      ProbeAgentOptions(absl::ZeroDuration(), socket, absl::Milliseconds(5)));
  ASSERT_NE(prober.loop(), nullptr);
  ReporterOptions ro;
  ro.controller = absl::StrCat("127.0.0.1:", controller_port);
  ro.hello = prober.loop()->LocalStatus().node();
  Reporter reporter(ro, [](const v1::Resync&, auto) {});
  net::AgentLoop* l = prober.loop();
  reporter.SetProbesHandler(
      [l, c = ro.controller](const v1::ProbeAssignment& a) {
        l->PostProbes(c, a);
      });
  l->SetProbeListener(
      [&reporter](const std::string&, const std::vector<v1::ProbeResult>& r) {
        reporter.PublishProbes(r);
      });
  l->SetStatusListener(
      [&reporter](const v1::SyncStatus& s) { reporter.Publish(s); });
  prober.Start();
  reporter.Start();

  const std::optional<v1::ProbeReport> report =
      controller.AwaitMeasured(absl::Seconds(30));
  ASSERT_TRUE(report.has_value()) << "no ProbeReport with a measurement";
  ASSERT_EQ(report->results_size(), 1) << report->DebugString();
  const v1::ProbeResult& r = report->results(0);
  EXPECT_EQ(r.node(), "target");
  EXPECT_EQ(r.address(), target_address);
  EXPECT_EQ(r.error(), "");
  EXPECT_GE(r.samples(), 1u);
  EXPECT_EQ(r.target_stratum(), 10u);
  EXPECT_TRUE(r.has_measured_at());
  // The truth: the target's clock minus the prober's. A sign error measures
  // -30 ms; loopback delays are well under a millisecond.
  const absl::Duration truth = target.clock().Phase() - prober.clock().Phase();
  const absl::Duration offset = FromProto(r.offset());
  const absl::Duration delay = FromProto(r.delay());
  EXPECT_GT(delay, absl::ZeroDuration());
  EXPECT_LT(delay, absl::Milliseconds(50));
  EXPECT_LE(absl::AbsDuration(offset - truth),
            delay / 2 + absl::Microseconds(100))
      << "offset " << offset << " truth " << truth << " delay " << delay;
  EXPECT_GT(offset, absl::Milliseconds(25));
  std::fprintf(stderr, "probe: offset %s, truth %s, delay %s\n",
               absl::FormatDuration(offset).c_str(),
               absl::FormatDuration(truth).c_str(),
               absl::FormatDuration(delay).c_str());

  // The Hello says where this node's NTP server answers.
  ASSERT_TRUE(controller.hello().has_value());
  EXPECT_EQ(controller.hello()->ntp_port(), prober.loop()->server_port());

  // --sim-report-bias: the controller hears the local clock's offset (0: it
  // is its own reference) plus 5 ms; the clock itself was not moved.
  const std::vector<v1::SyncStatus> statuses = controller.statuses();
  ASSERT_FALSE(statuses.empty());
  EXPECT_EQ(FromProto(statuses.back().offset()), absl::Milliseconds(5));
  EXPECT_LT(absl::AbsDuration(prober.clock().Phase()), absl::Milliseconds(1));

  // The local status: the same biased offset, the truth unbiased, the probe.
  absl::StatusOr<v1::LocalStatus> st = Status(socket);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(FromProto(st->status().offset()), absl::Milliseconds(5));
  ASSERT_TRUE(st->has_sim_true_offset());
  EXPECT_LT(absl::AbsDuration(FromProto(st->sim_true_offset())),
            absl::Milliseconds(1));
  EXPECT_EQ(st->node().ntp_port(), prober.loop()->server_port());

  // The controller hung up after that report and assigns nothing on the next
  // stream: the assignment is dropped, the probe stops.
  bool dropped = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!dropped && absl::Now() < give_up) {
    absl::StatusOr<v1::LocalStatus> s = Status(socket);
    dropped = s.ok() && s->probes_size() == 0 && controller.sessions() >= 2;
    if (!dropped) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(dropped) << "the probe outlived its controller's stream";

  reporter.Stop();
  server.server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

// What the reporter stores and hands on from the controller is bounded: the
// first kMaxProbeTargets valid targets (a node name as node names are, an
// "IP:port" literal of at most 64 bytes), however many the controller sends
// and however long their strings. Without the bound the handler sees all 40.
TEST(ReporterProbesTest, AnOversizedAssignmentIsCappedBeforeItIsStored) {
  v1::ProbeAssignment assignment;
  v1::ProbeTarget* t = assignment.add_targets();
  t->set_node(std::string(1000, 'n'));  // longer than any node name
  t->set_address("127.0.0.1:123");
  t = assignment.add_targets();
  t->set_node("long-address");
  t->set_address(std::string(100, '1') + ":123");
  t = assignment.add_targets();
  t->set_node("named");
  t->set_address("target.example:123");
  t = assignment.add_targets();
  t->set_node("bad\nname");
  t->set_address("127.0.0.1:124");
  for (int i = 0; i < 36; ++i) {
    t = assignment.add_targets();
    t->set_node(absl::StrCat("node-", i));
    t->set_address(absl::StrCat("127.0.0.1:", 1000 + i));
  }
  SetDuration(absl::Seconds(64), assignment.mutable_interval());
  FakeController controller(assignment);
  const ::ntpfleet::testing::LocalGrpcServer server =
      ::ntpfleet::testing::StartLocalGrpcServer(&controller);
  const int controller_port = server.port;
  ASSERT_NE(controller_port, 0);

  ReporterOptions ro;
  ro.controller = absl::StrCat("127.0.0.1:", controller_port);
  ro.hello.set_node_name("prober");
  Reporter reporter(ro, [](const v1::Resync&, auto) {});
  absl::Mutex mu;
  std::optional<v1::ProbeAssignment> received;
  reporter.SetProbesHandler([&](const v1::ProbeAssignment& a) {
    absl::MutexLock lock(&mu);
    if (!received) received = a;
  });
  reporter.Start();
  {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(
                            +[](std::optional<v1::ProbeAssignment>* r) {
                              return r->has_value();
                            },
                            &received),
                        absl::Seconds(20));
  }
  reporter.Stop();
  server.server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  absl::MutexLock lock(&mu);
  ASSERT_TRUE(received.has_value()) << "no assignment reached the handler";
  ASSERT_EQ(received->targets_size(), net::kMaxProbeTargets)
      << received->DebugString();
  // The invalid ones were skipped, not counted among the 16.
  EXPECT_EQ(received->targets(0).node(), "node-0");
  EXPECT_EQ(received->targets(15).node(), "node-15");
  EXPECT_EQ(received->targets(15).address(), "127.0.0.1:1015");
  EXPECT_EQ(FromProto(received->interval()), absl::Seconds(64));
}

}  // namespace
}  // namespace ntpfleet::report
