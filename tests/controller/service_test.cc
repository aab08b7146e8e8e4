// ControllerCore with the AgentService and FleetService, in-process: fake
// agents speak the real bidirectional stream and the tests call the real
// FleetService, both over server->InProcessChannel() (no port at all). The
// controller's wall clock is a fake the test moves; the store is SQLite in
// $TEST_TMPDIR.
//
// Waits are bounded polls (every 10 ms, up to 5 s) on something observable,
// never fixed sleeps. Whatever depends on the controller's clock (staleness,
// resync deadlines, history buckets) moves only when the test advances the
// fake clock, so those steps are deterministic.
#include "controller/service.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "controller/node_history.h"
#include "controller/registry.h"
#include "controller/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_files.h"

namespace ntpfleet::controller {
namespace {

using ::ntpfleet::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

// How long any wait for the controller to act may take before the test fails.
constexpr absl::Duration kWait = absl::Seconds(5);

// 2023-11-14T22:13:20Z: on a 10 s boundary, so the first history bucket
// starts at the fake clock's start.
const absl::Time kStart = absl::FromUnixSeconds(1700000000);

using ::ntpfleet::testing::FakeClock;
using ::ntpfleet::testing::FakeMonotonicClock;

// Polls `condition` every 10 ms; true as soon as it holds, false after
// `timeout`.
bool WaitFor(const std::function<bool()>& condition,
             absl::Duration timeout = kWait) {
  const absl::Time until = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= until) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

std::chrono::system_clock::time_point Deadline(absl::Duration d) {
  return std::chrono::system_clock::now() +
         std::chrono::nanoseconds(absl::ToInt64Nanoseconds(d));
}

v1::Hello MakeHello(const std::string& name, const std::string& instance,
                    absl::Duration report_interval = absl::Seconds(1),
                    std::map<std::string, std::string> labels = {}) {
  v1::Hello hello;
  hello.set_node_name(name);
  hello.set_instance_id(instance);
  // The instance id never leaves the controller: tests tell instances apart
  // by their version string instead.
  hello.set_agent_version("agent-" + instance);
  hello.set_role(v1::ROLE_CLIENT);
  SetDuration(report_interval, hello.mutable_report_interval());
  for (const auto& [k, v] : labels) (*hello.mutable_labels())[k] = v;
  return hello;
}

v1::SyncStatus MakeStatus(absl::Duration offset,
                          absl::Duration error_bound = absl::Microseconds(100),
                          v1::SyncState state = v1::SYNC_STATE_SYNCHRONISED) {
  v1::SyncStatus status;
  status.set_state(state);
  SetDuration(offset, status.mutable_offset());
  SetDuration(error_bound, status.mutable_error_bound());
  status.set_stratum(11);
  status.set_refid("127.0.0.1");
  status.set_system_peer("127.0.0.1:12300");
  v1::PeerStatus* peer = status.add_peers();
  peer->set_remote("127.0.0.1:12300");
  peer->set_stratum(10);
  peer->set_reach(0377);
  peer->set_mark(v1::SELECTION_MARK_SYSTEM_PEER);
  SetDuration(offset, peer->mutable_offset());
  return status;
}

// The entries named `name`, in fleet order.
std::vector<v1::Node> NodesNamed(const v1::Fleet& fleet,
                                 const std::string& name) {
  std::vector<v1::Node> out;
  for (const v1::Node& n : fleet.nodes()) {
    if (n.name() == name) out.push_back(n);
  }
  return out;
}

// The single entry named `name`, or nullopt when there are none or several.
std::optional<v1::Node> OnlyNode(const v1::Fleet& fleet,
                                 const std::string& name) {
  std::vector<v1::Node> found = NodesNamed(fleet, name);
  if (found.size() != 1) return std::nullopt;
  return found.front();
}

bool HasOffset(const std::optional<v1::Node>& node, absl::Duration offset) {
  return node && node->has_status() &&
         FromProto(node->status().offset()) == offset;
}

// An agent on one AgentService.Connect stream: it sends a Hello at once, then
// whatever the test makes it send; a thread collects what the controller
// sends.
class FakeAgent {
 public:
  FakeAgent(const std::shared_ptr<grpc::Channel>& channel,
            const v1::Hello& hello)
      : stub_(v1::AgentService::NewStub(channel)) {
    context_.set_deadline(Deadline(absl::Seconds(120)));  // a hang guard
    stream_ = stub_->Connect(&context_);
    v1::AgentMessage m;
    *m.mutable_hello() = hello;
    hello_sent_ = stream_->Write(m);
    reader_ = std::thread([this] { ReadLoop(); });
  }
  ~FakeAgent() { Close(); }

  FakeAgent(const FakeAgent&) = delete;
  FakeAgent& operator=(const FakeAgent&) = delete;

  bool hello_sent() const { return hello_sent_; }

  bool Report(const v1::SyncStatus& status) {
    v1::AgentMessage m;
    *m.mutable_status() = status;
    return stream_->Write(m);
  }

  bool Probed(const v1::ProbeReport& report) {
    v1::AgentMessage m;
    *m.mutable_probe_report() = report;
    return stream_->Write(m);
  }

  bool Answer(const v1::ResyncResult& result) {
    v1::AgentMessage m;
    *m.mutable_resync_result() = result;
    return stream_->Write(m);
  }

  // The next message from the controller; nullopt when none came within
  // `timeout` or the stream ended.
  std::optional<v1::ControllerMessage> NextCommand(
      absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !inbox_.empty() || ended_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (inbox_.empty()) return std::nullopt;
    v1::ControllerMessage m = std::move(inbox_.front());
    inbox_.erase(inbox_.begin());
    return m;
  }

  // Waits (up to kWait) for the controller to end the stream on its own, and
  // returns the status it ended it with; CANCELLED if it did not.
  grpc::Status AwaitEnd() {
    {
      absl::MutexLock lock(&mu_);
      auto ended = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ended_; };
      if (!mu_.AwaitWithTimeout(absl::Condition(&ended), kWait)) {
        context_.TryCancel();
      }
    }
    return Finish();
  }

  // Half-closes the stream, as an agent shutting down cleanly does, and
  // returns how the controller ended it.
  grpc::Status Close() {
    if (!finished_ && !writes_done_) {
      writes_done_ = true;
      stream_->WritesDone();
    }
    return AwaitEnd();
  }

  // Breaks the stream off (a crashed agent, a cut connection).
  void Drop() {
    context_.TryCancel();
    Finish();
  }

 private:
  void ReadLoop() {
    v1::ControllerMessage m;
    while (stream_->Read(&m)) {
      absl::MutexLock lock(&mu_);
      inbox_.push_back(m);
    }
    absl::MutexLock lock(&mu_);
    ended_ = true;
  }

  grpc::Status Finish() {
    if (!finished_) {
      finished_ = true;
      reader_.join();
      status_ = stream_->Finish();
    }
    return status_;
  }

  std::unique_ptr<v1::AgentService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>>
      stream_;
  bool hello_sent_ = false;
  bool writes_done_ = false;
  bool finished_ = false;
  grpc::Status status_;
  std::thread reader_;

  absl::Mutex mu_;
  std::vector<v1::ControllerMessage> inbox_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

// One FleetService.Resync call in flight (the call only returns once every
// node has answered or the deadline, on the fake clock, has passed).
struct PendingResync {
  // A call still in flight (a test that failed early) is cancelled, not
  // left to write into freed memory.
  ~PendingResync() {
    context.TryCancel();
    done.WaitForNotification();
  }
  grpc::ClientContext context;
  v1::ResyncResponse response;
  grpc::Status status;
  absl::Notification done;
};

// A WatchFleet stream; a thread collects what it delivers.
class FleetWatch {
 public:
  // With `read_now` false, nothing is read (so the controller's writes stay
  // in flight) until StartReading().
  FleetWatch(v1::FleetService::Stub* stub, absl::Duration min_interval,
             bool read_now = true) {
    context_.set_deadline(Deadline(absl::Seconds(60)));  // a hang guard
    v1::WatchFleetRequest request;
    SetDuration(min_interval, request.mutable_min_interval());
    reader_ = stub->WatchFleet(&context_, request);
    thread_ = std::thread([this] {
      gate_.WaitForNotification();
      v1::Fleet fleet;
      while (reader_->Read(&fleet)) {
        absl::MutexLock lock(&mu_);
        received_.push_back(fleet);
      }
    });
    if (read_now) StartReading();
  }
  void StartReading() {
    if (!gate_.HasBeenNotified()) gate_.Notify();
  }
  ~FleetWatch() {
    context_.TryCancel();
    StartReading();
    thread_.join();
    reader_->Finish();
  }

  std::vector<v1::Fleet> Received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

  // Polls until a fleet received so far satisfies `pred`, running
  // `between_polls` (if any) before each new poll.
  bool WaitForFleet(const std::function<bool(const v1::Fleet&)>& pred,
                    const std::function<void()>& between_polls = nullptr) {
    return WaitFor([&] {
      for (const v1::Fleet& f : Received()) {
        if (pred(f)) return true;
      }
      if (between_polls) between_polls();
      return false;
    });
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::Fleet>> reader_;
  absl::Notification gate_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<v1::Fleet> received_ ABSL_GUARDED_BY(mu_);
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_path_ = ntpfleet::testing::FreshDb(absl::StrCat(
        ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        ".db"));
    store_ = ntpfleet::testing::MustOpen(db_path_);
    ASSERT_NE(store_, nullptr);
    // Per-node history as main.cc wires it; its flushes are the test's.
    RegistryOptions registry_options;
    registry_options.on_report =
        [this](const std::string& node, const v1::SyncStatus& status,
               absl::Time now) { node_history_.Record(node, status, now); };
    registry_ = std::make_unique<Registry>(&clock_, &mono_, registry_options);
    ControllerOptions options = Options();
    options.node_history = &node_history_;
    core_ = std::make_unique<ControllerCore>(&clock_, registry_.get(),
                                             store_.get(), options);
    core_->Start();
    agent_service_ = std::make_unique<AgentServiceImpl>(core_.get());
    fleet_service_ = std::make_unique<FleetServiceImpl>(core_.get());
    grpc::ServerBuilder builder;  // no listening port: in-process only
    agent_service_->AddTo(builder);
    builder.RegisterService(fleet_service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    agent_service_->Start();
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
    fleet_ = v1::FleetService::NewStub(channel_);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(Deadline(absl::Seconds(1)));
    if (agent_service_) agent_service_->Shutdown();
    if (core_) core_->Stop();
  }

  // The controller's options for this fixture: the defaults of main.cc, but
  // with exact snapshots (every read sees every change; see
  // ExactSnapshots()).
  virtual ControllerOptions Options() { return ExactSnapshots(); }

  static ControllerOptions ExactSnapshots() {
    ControllerOptions o;
    o.snapshot_interval = absl::ZeroDuration();
    return o;
  }

  std::unique_ptr<FakeAgent> Agent(const v1::Hello& hello) {
    auto agent = std::make_unique<FakeAgent>(channel_, hello);
    EXPECT_TRUE(agent->hello_sent()) << hello.node_name();
    return agent;
  }

  // An agent that has connected and reported `offset`, once the controller
  // shows that report.
  std::unique_ptr<FakeAgent> ReportingAgent(
      const std::string& name, absl::Duration offset,
      absl::Duration error_bound = absl::Microseconds(100)) {
    auto agent = Agent(MakeHello(name, name + "-instance"));
    EXPECT_TRUE(agent->Report(MakeStatus(offset, error_bound)));
    EXPECT_TRUE(WaitForFleet([&](const v1::Fleet& f) {
      return HasOffset(OnlyNode(f, name), offset);
    })) << name
        << " never showed its report";
    return agent;
  }

  v1::Fleet GetFleet() {
    grpc::ClientContext context;
    context.set_deadline(Deadline(kWait));
    v1::Fleet fleet;
    const grpc::Status s =
        fleet_->GetFleet(&context, v1::GetFleetRequest(), &fleet);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return fleet;
  }

  // Returns once every store write queued so far has committed: the store
  // writer applies writes in order, so a marker queued now is done after
  // them. (An agent's Hello is written to the inventory on the writer
  // thread, after the fleet already shows the node.)
  bool AwaitStoreWrites() {
    auto done = std::make_shared<absl::Notification>();
    const absl::Status queued = core_->writer()->Enqueue(
        [](Store&) { return absl::OkStatus(); },
        [done](const absl::Status&) { done->Notify(); });
    return queued.ok() && done->WaitForNotificationWithTimeout(kWait);
  }

  // Polls GetFleet until `pred` holds; `last` (if given) gets the last fleet
  // read.
  bool WaitForFleet(const std::function<bool(const v1::Fleet&)>& pred,
                    v1::Fleet* last = nullptr) {
    v1::Fleet fleet;
    const bool ok = WaitFor([&] {
      fleet = GetFleet();
      return pred(fleet);
    });
    if (last != nullptr) *last = fleet;
    return ok;
  }

  std::unique_ptr<PendingResync> StartResync(const v1::ResyncRequest& request) {
    auto call = std::make_unique<PendingResync>();
    call->context.set_deadline(Deadline(absl::Seconds(30)));
    PendingResync* c = call.get();
    fleet_->async()->Resync(&c->context, &request, &c->response,
                            [c](grpc::Status s) {
                              c->status = std::move(s);
                              c->done.Notify();
                            });
    return call;
  }

  static v1::ResyncRequest ResyncOf(std::vector<std::string> names,
                                    absl::Duration deadline) {
    v1::ResyncRequest request;
    for (const std::string& n : names) request.mutable_selector()->add_names(n);
    SetDuration(deadline, request.mutable_deadline());
    request.set_requested_by("alice@ops");
    return request;
  }

  FakeClock clock_{kStart};
  FakeMonotonicClock mono_;  // the registry's: staleness
  std::string db_path_;
  std::unique_ptr<Store> store_;
  NodeHistory node_history_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<ControllerCore> core_;
  std::unique_ptr<AgentServiceImpl> agent_service_;
  std::unique_ptr<FleetServiceImpl> fleet_service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::FleetService::Stub> fleet_;
};

// --- Connection states ------------------------------------------------------

TEST_F(ServiceTest, ConnectAndReportShowsNodeConnectedWithItsStatus) {
  auto agent =
      Agent(MakeHello("db-1", "i1", absl::Seconds(1), {{"rack", "a1"}}));
  ASSERT_TRUE(agent->Report(
      MakeStatus(absl::Microseconds(250), absl::Microseconds(400))));

  v1::Fleet fleet;
  ASSERT_TRUE(WaitForFleet(
      [](const v1::Fleet& f) {
        return HasOffset(OnlyNode(f, "db-1"), absl::Microseconds(250));
      },
      &fleet));
  const v1::Node node = *OnlyNode(fleet, "db-1");
  EXPECT_EQ(node.connection(), v1::CONNECTION_STATE_CONNECTED);
  EXPECT_EQ(node.hello().agent_version(), "agent-i1");
  EXPECT_EQ(node.hello().labels().at("rack"), "a1");
  EXPECT_EQ(node.status().state(), v1::SYNC_STATE_SYNCHRONISED);
  EXPECT_EQ(node.status().stratum(), 11u);
  EXPECT_EQ(FromProto(node.status().error_bound()), absl::Microseconds(400));
  EXPECT_FALSE(node.peer().empty());
  EXPECT_FALSE(node.duplicate_name());
  // Times are the controller's (fake) clock.
  EXPECT_EQ(FromProto(node.last_seen()), kStart);
  EXPECT_EQ(FromProto(fleet.as_of()), kStart);
  EXPECT_EQ(fleet.connected_count(), 1u);
  EXPECT_EQ(fleet.stale_count(), 0u);

  // GetNode: the same node, with its peers.
  grpc::ClientContext context;
  v1::GetNodeRequest request;
  request.set_name("db-1");
  v1::Node got;
  ASSERT_TRUE(fleet_->GetNode(&context, request, &got).ok());
  EXPECT_EQ(got.connection(), v1::CONNECTION_STATE_CONNECTED);
  ASSERT_EQ(got.status().peers_size(), 1);
  EXPECT_EQ(got.status().peers(0).mark(), v1::SELECTION_MARK_SYSTEM_PEER);

  // The Hello went into the durable inventory at connect time.
  ASSERT_TRUE(AwaitStoreWrites());
  absl::StatusOr<std::vector<Store::NodeRecord>> inventory =
      store_->LoadNodes();
  ASSERT_THAT(inventory, IsOk());
  ASSERT_THAT(*inventory, SizeIs(1));
  EXPECT_EQ((*inventory)[0].hello.node_name(), "db-1");
  EXPECT_EQ((*inventory)[0].hello.instance_id(), "i1");
}

TEST_F(ServiceTest, SilentNodeTurnsStaleAfterThreeReportIntervals) {
  auto agent = ReportingAgent("web-1", absl::Microseconds(30));

  // GetFleet computes the state when it is called, from the fake clock.
  clock_.Advance(absl::Seconds(3) - absl::Nanoseconds(1));
  mono_.Advance(absl::Seconds(3) - absl::Nanoseconds(1));
  EXPECT_EQ(OnlyNode(GetFleet(), "web-1")->connection(),
            v1::CONNECTION_STATE_CONNECTED);

  clock_.Advance(absl::Nanoseconds(1));  // silent for 3 × 1 s
  mono_.Advance(absl::Nanoseconds(1));
  v1::Fleet fleet = GetFleet();
  EXPECT_EQ(OnlyNode(fleet, "web-1")->connection(), v1::CONNECTION_STATE_STALE);
  EXPECT_FALSE(OnlyNode(fleet, "web-1")->has_deviation());  // not in skew
  EXPECT_EQ(fleet.stale_count(), 1u);
  EXPECT_EQ(fleet.connected_count(), 0u);

  // The next report brings it back.
  ASSERT_TRUE(agent->Report(MakeStatus(absl::Microseconds(31))));
  ASSERT_TRUE(WaitForFleet(
      [](const v1::Fleet& f) {
        const std::optional<v1::Node> n = OnlyNode(f, "web-1");
        return HasOffset(n, absl::Microseconds(31)) &&
               n->connection() == v1::CONNECTION_STATE_CONNECTED;
      },
      &fleet));
  EXPECT_EQ(fleet.stale_count(), 0u);
}

TEST_F(ServiceTest, ClosedStreamLeavesNodeDisconnectedWithItsLastStatus) {
  auto agent = ReportingAgent("web-1", absl::Microseconds(30));
  EXPECT_TRUE(agent->Close().ok());
  v1::Fleet fleet;
  ASSERT_TRUE(WaitForFleet(
      [](const v1::Fleet& f) {
        const std::optional<v1::Node> n = OnlyNode(f, "web-1");
        return n && n->connection() == v1::CONNECTION_STATE_DISCONNECTED;
      },
      &fleet));
  EXPECT_TRUE(HasOffset(OnlyNode(fleet, "web-1"), absl::Microseconds(30)));
  EXPECT_EQ(fleet.connected_count(), 0u);
}

TEST_F(ServiceTest, ReconnectWithSameInstanceReplacesTheOldStream) {
  auto old_stream = ReportingAgent("web-1", absl::Microseconds(10));
  auto new_stream = Agent(MakeHello("web-1", "web-1-instance"));
  ASSERT_TRUE(new_stream->Report(MakeStatus(absl::Microseconds(20))));
  ASSERT_TRUE(WaitForFleet([](const v1::Fleet& f) {
    return HasOffset(OnlyNode(f, "web-1"), absl::Microseconds(20));
  }));

  // The old stream is dead to the controller: its next report is refused
  // and the stream ended with ABORTED.
  old_stream->Report(MakeStatus(absl::Seconds(9)));
  const grpc::Status ended = old_stream->AwaitEnd();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::ABORTED)
      << ended.error_message();

  // One entry, the new stream's, still connected after the old one's
  // clean-up, and still the one a resync goes to.
  v1::Fleet fleet = GetFleet();
  ASSERT_THAT(NodesNamed(fleet, "web-1"), SizeIs(1));
  const v1::Node node = *OnlyNode(fleet, "web-1");
  EXPECT_EQ(node.connection(), v1::CONNECTION_STATE_CONNECTED);
  EXPECT_EQ(FromProto(node.status().offset()), absl::Microseconds(20));
  EXPECT_FALSE(node.duplicate_name());

  auto call = StartResync(ResyncOf({"web-1"}, absl::Seconds(5)));
  std::optional<v1::ControllerMessage> command = new_stream->NextCommand();
  ASSERT_TRUE(command && command->has_resync());
  v1::ResyncResult result;
  result.set_request_id(command->resync().request_id());
  result.set_outcome(v1::RESYNC_OUTCOME_OK);
  ASSERT_TRUE(new_stream->Answer(result));
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  ASSERT_THAT(call->response.results(), SizeIs(1));
  EXPECT_EQ(call->response.results(0).result().outcome(),
            v1::RESYNC_OUTCOME_OK);
}

TEST_F(ServiceTest, SameNameFromTwoInstancesIsListedTwiceAsDuplicate) {
  auto first = Agent(MakeHello("web-1", "i1"));
  auto second = Agent(MakeHello("web-1", "i2"));
  ASSERT_TRUE(first->Report(MakeStatus(absl::Microseconds(10))));
  ASSERT_TRUE(second->Report(MakeStatus(absl::Microseconds(-70))));

  v1::Fleet fleet;
  ASSERT_TRUE(WaitForFleet(
      [](const v1::Fleet& f) {
        const std::vector<v1::Node> nodes = NodesNamed(f, "web-1");
        return nodes.size() == 2 && nodes[0].has_status() &&
               nodes[1].has_status();
      },
      &fleet));
  const std::vector<v1::Node> nodes = NodesNamed(fleet, "web-1");
  for (const v1::Node& n : nodes) {
    EXPECT_TRUE(n.duplicate_name()) << n.hello().instance_id();
    EXPECT_EQ(n.connection(), v1::CONNECTION_STATE_CONNECTED);
  }
  EXPECT_EQ(nodes[0].hello().agent_version(),
            "agent-i1");  // in connection order
  EXPECT_EQ(nodes[1].hello().agent_version(), "agent-i2");
  EXPECT_EQ(fleet.connected_count(), 2u);
  EXPECT_EQ(FromProto(fleet.skew()), absl::Microseconds(80));

  // A resync of that name goes to both streams, one result each.
  auto call = StartResync(ResyncOf({"web-1"}, absl::Seconds(5)));
  for (FakeAgent* agent : {first.get(), second.get()}) {
    std::optional<v1::ControllerMessage> command = agent->NextCommand();
    ASSERT_TRUE(command && command->has_resync());
    v1::ResyncResult result;
    result.set_request_id(command->resync().request_id());
    result.set_outcome(v1::RESYNC_OUTCOME_OK);
    ASSERT_TRUE(agent->Answer(result));
  }
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  ASSERT_THAT(call->response.results(), SizeIs(2));
  for (const v1::NodeResyncResult& r : call->response.results()) {
    EXPECT_EQ(r.node(), "web-1");
    EXPECT_EQ(r.result().outcome(), v1::RESYNC_OUTCOME_OK);
  }

  // When one goes, the other is all that is left of the name, unflagged.
  EXPECT_TRUE(second->Close().ok());
  ASSERT_TRUE(WaitForFleet(
      [](const v1::Fleet& f) { return NodesNamed(f, "web-1").size() == 1; },
      &fleet));
  const v1::Node left = *OnlyNode(fleet, "web-1");
  EXPECT_EQ(left.hello().agent_version(), "agent-i1");
  EXPECT_FALSE(left.duplicate_name());
  EXPECT_EQ(left.connection(), v1::CONNECTION_STATE_CONNECTED);
}

TEST_F(ServiceTest, HelloWithoutNodeNameIsRefused) {
  auto agent = Agent(MakeHello("", "i1"));
  const grpc::Status ended = agent->AwaitEnd();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ended.error_message(), HasSubstr("node_name"));
  EXPECT_EQ(GetFleet().nodes_size(), 0);
}

// --- Skew maths
// ---------------------------------------------------------------

TEST_F(ServiceTest, FleetSkewDeviationsAndFlagsOverThreeAgents) {
  // Offsets +300 µs, -200 µs, +1.5 ms (threshold 1 ms):
  //   skew = 1.5 ms - (-200 µs) = 1.7 ms; median = +300 µs;
  //   deviations 0, -500 µs, +1.2 ms; only c is beyond the threshold.
  auto a =
      ReportingAgent("a", absl::Microseconds(300), absl::Microseconds(350));
  auto b =
      ReportingAgent("b", absl::Microseconds(-200), absl::Microseconds(900));
  auto c =
      ReportingAgent("c", absl::Microseconds(1500), absl::Microseconds(1600));
  // An unsynchronised node's offset says nothing: not counted.
  auto d = Agent(MakeHello("d", "d1"));
  ASSERT_TRUE(d->Report(MakeStatus(absl::Seconds(5), absl::Seconds(16),
                                   v1::SYNC_STATE_UNSYNCHRONISED)));
  v1::Fleet fleet;
  ASSERT_TRUE(WaitForFleet(
      [](const v1::Fleet& f) {
        const std::optional<v1::Node> n = OnlyNode(f, "d");
        return n && n->has_status();
      },
      &fleet));

  EXPECT_EQ(FromProto(fleet.skew()), absl::Microseconds(1700));
  EXPECT_EQ(FromProto(fleet.max_error_bound()), absl::Microseconds(1600));
  EXPECT_EQ(FromProto(fleet.threshold()), absl::Milliseconds(1));
  EXPECT_EQ(fleet.connected_count(), 4u);
  EXPECT_EQ(fleet.flagged_count(), 1u);

  const std::map<std::string, absl::Duration> deviation = {
      {"a", absl::ZeroDuration()},
      {"b", absl::Microseconds(-500)},
      {"c", absl::Microseconds(1200)}};
  for (const auto& [name, want] : deviation) {
    const v1::Node n = *OnlyNode(fleet, name);
    ASSERT_TRUE(n.has_deviation()) << name;
    EXPECT_EQ(FromProto(n.deviation()), want) << name;
    EXPECT_EQ(n.flagged(), name == "c") << name;
  }
  const v1::Node unsynced = *OnlyNode(fleet, "d");
  EXPECT_FALSE(unsynced.has_deviation());
  EXPECT_FALSE(unsynced.flagged());
}

// --- Resync -----------------------------------------------------------------

// A resync answered by `agent` with OK; returns the command it got.
std::optional<v1::Resync> AnswerOk(FakeAgent& agent) {
  std::optional<v1::ControllerMessage> command = agent.NextCommand();
  if (!command || !command->has_resync()) return std::nullopt;
  v1::ResyncResult answer;
  answer.set_request_id(command->resync().request_id());
  answer.set_outcome(v1::RESYNC_OUTCOME_OK);
  if (!agent.Answer(answer)) return std::nullopt;
  return command->resync();
}

TEST_F(ServiceTest, NodeResyncedMomentsAgoIsRateLimitedNotAsked) {
  auto a = ReportingAgent("a", absl::Microseconds(3));
  auto first = StartResync(ResyncOf({"a"}, absl::Seconds(5)));
  std::optional<v1::Resync> sent = AnswerOk(*a);
  ASSERT_TRUE(sent.has_value());
  // The operator limit travels with every command an admin did not force.
  EXPECT_EQ(FromProto(sent->max_step()), absl::Milliseconds(128));
  ASSERT_TRUE(first->done.WaitForNotificationWithTimeout(kWait));

  clock_.Advance(absl::Seconds(4));
  auto again = StartResync(ResyncOf({"a"}, absl::Seconds(5)));
  ASSERT_TRUE(again->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(again->status.ok()) << again->status.error_message();
  ASSERT_THAT(again->response.results(), SizeIs(1));
  EXPECT_EQ(again->response.results(0).result().outcome(),
            v1::RESYNC_OUTCOME_RATE_LIMITED);
  EXPECT_THAT(again->response.results(0).result().error(),
              HasSubstr("--resync-min-interval"));

  // 5 s after the first, it is asked again.
  clock_.Advance(absl::Seconds(1));
  auto later = StartResync(ResyncOf({"a"}, absl::Seconds(5)));
  ASSERT_TRUE(AnswerOk(*a).has_value());
  ASSERT_TRUE(later->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(later->response.results(0).result().outcome(),
            v1::RESYNC_OUTCOME_OK);
}

TEST_F(ServiceTest, StopAnswersAndRecordsTheResyncsStillOpen) {
  auto a = ReportingAgent("a", absl::Microseconds(3));
  auto call = StartResync(ResyncOf({"a"}, absl::Seconds(30)));
  ASSERT_TRUE(a->NextCommand().has_value());  // asked; it never answers
  core_->Stop();
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  ASSERT_THAT(call->response.results(), SizeIs(1));
  EXPECT_EQ(call->response.results(0).result().outcome(),
            v1::RESYNC_OUTCOME_TIMED_OUT);
  // Recorded complete, not left for the next start to call INTERRUPTED.
  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store_->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(1));
  ASSERT_THAT((*audit)[0].results(), SizeIs(1));
  EXPECT_EQ((*audit)[0].results(0).result().outcome(),
            v1::RESYNC_OUTCOME_TIMED_OUT);
}

TEST_F(ServiceTest, ResyncOfOneNodeReturnsItsResultAndIsAudited) {
  auto a = ReportingAgent("a", absl::Milliseconds(3));
  auto b = ReportingAgent("b", absl::Microseconds(5));

  v1::ResyncRequest request = ResyncOf({"a"}, absl::Seconds(7));
  request.set_allow_step(true);
  auto call = StartResync(request);

  std::optional<v1::ControllerMessage> command = a->NextCommand();
  ASSERT_TRUE(command && command->has_resync());
  const v1::Resync& resync = command->resync();
  EXPECT_FALSE(resync.request_id().empty());
  EXPECT_TRUE(resync.burst());
  EXPECT_TRUE(resync.allow_step());
  EXPECT_EQ(FromProto(resync.deadline()), absl::Seconds(7));

  v1::ResyncResult answer;
  answer.set_request_id(resync.request_id());
  answer.set_outcome(v1::RESYNC_OUTCOME_OK);
  SetDuration(absl::Milliseconds(3), answer.mutable_offset_before());
  SetDuration(absl::Microseconds(2), answer.mutable_offset_after());
  answer.set_stepped(true);
  ASSERT_TRUE(a->Answer(answer));

  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  const v1::ResyncResponse& response = call->response;
  EXPECT_EQ(response.request_id(), resync.request_id());
  ASSERT_THAT(response.results(), SizeIs(1));
  EXPECT_EQ(response.results(0).node(), "a");
  const v1::ResyncResult& r = response.results(0).result();
  EXPECT_EQ(r.outcome(), v1::RESYNC_OUTCOME_OK);
  EXPECT_EQ(FromProto(r.offset_before()), absl::Milliseconds(3));
  EXPECT_EQ(FromProto(r.offset_after()), absl::Microseconds(2));
  EXPECT_TRUE(r.stepped());
  EXPECT_EQ(r.request_id(), resync.request_id());

  // The audit log has who asked, what, and the result.
  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store_->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(1));
  const v1::AuditRecord& entry = (*audit)[0];
  // Without TLS nobody is identified: the audit says so, and never records
  // what the client claimed to be (requested_by "alice@ops").
  EXPECT_THAT(entry.requested_by(), HasSubstr("unauthenticated"));
  EXPECT_THAT(entry.requested_by(), Not(HasSubstr("alice")));
  EXPECT_EQ(entry.request_id(), resync.request_id());
  EXPECT_FALSE(entry.dry_run());
  EXPECT_EQ(FromProto(entry.time()), kStart);
  EXPECT_THAT(entry.selector().names(), ElementsAre("a"));
  ASSERT_THAT(entry.results(), SizeIs(1));
  EXPECT_EQ(entry.results(0).node(), "a");
  EXPECT_EQ(entry.results(0).result().outcome(), v1::RESYNC_OUTCOME_OK);

  const ResyncCounters counters = core_->Counters();
  EXPECT_EQ(counters.requests, 1u);
  EXPECT_EQ(counters.node_results.at("RESYNC_OUTCOME_OK"), 1u);
}

TEST_F(ServiceTest,
       ResyncAllGivesEveryNodeAResultTimedOutAndNotConnectedIncluded) {
  auto answering = ReportingAgent("a", absl::Microseconds(40));
  auto silent = ReportingAgent("b", absl::Microseconds(-40));
  // c: connected once, then gone. d: only known from the inventory.
  auto gone = ReportingAgent("c", absl::Microseconds(1));
  gone->Drop();
  ASSERT_TRUE(WaitForFleet([](const v1::Fleet& f) {
    const std::optional<v1::Node> n = OnlyNode(f, "c");
    return n && n->connection() == v1::CONNECTION_STATE_DISCONNECTED;
  }));
  registry_->AddKnownNode(MakeHello("d", "d-old"), kStart - absl::Hours(2));

  v1::ResyncRequest request;
  request.mutable_selector()->set_all(true);
  SetDuration(absl::Milliseconds(300), request.mutable_deadline());
  auto call = StartResync(request);

  std::optional<v1::ControllerMessage> to_a = answering->NextCommand();
  ASSERT_TRUE(to_a && to_a->has_resync());
  std::optional<v1::ControllerMessage> to_b = silent->NextCommand();
  ASSERT_TRUE(to_b && to_b->has_resync());
  EXPECT_EQ(to_a->resync().request_id(), to_b->resync().request_id());

  v1::ResyncResult ok;
  ok.set_request_id(to_a->resync().request_id());
  ok.set_outcome(v1::RESYNC_OUTCOME_OK);
  SetDuration(absl::Microseconds(40), ok.mutable_offset_before());
  ASSERT_TRUE(answering->Answer(ok));
  // A stream's messages are handled in order: once this report shows, the
  // answer before it has been taken.
  ASSERT_TRUE(answering->Report(MakeStatus(absl::Microseconds(41))));
  ASSERT_TRUE(WaitForFleet([](const v1::Fleet& f) {
    return HasOffset(OnlyNode(f, "a"), absl::Microseconds(41));
  }));
  // b has not answered and the (fake) deadline has not passed.
  EXPECT_FALSE(call->done.HasBeenNotified());

  clock_.Advance(absl::Milliseconds(300));  // the housekeeper expires it
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();

  const v1::ResyncResponse& response = call->response;
  ASSERT_THAT(response.results(), SizeIs(4));  // sorted by node
  EXPECT_EQ(response.results(0).node(), "a");
  EXPECT_EQ(response.results(0).result().outcome(), v1::RESYNC_OUTCOME_OK);
  EXPECT_EQ(response.results(1).node(), "b");
  EXPECT_EQ(response.results(1).result().outcome(),
            v1::RESYNC_OUTCOME_TIMED_OUT);
  EXPECT_THAT(response.results(1).result().error(), HasSubstr("300ms"));
  EXPECT_EQ(response.results(2).node(), "c");
  EXPECT_EQ(response.results(2).result().outcome(),
            v1::RESYNC_OUTCOME_NOT_CONNECTED);
  EXPECT_EQ(response.results(3).node(), "d");
  EXPECT_EQ(response.results(3).result().outcome(),
            v1::RESYNC_OUTCOME_NOT_CONNECTED);

  // b's late answer is dropped quietly; its stream stays up.
  v1::ResyncResult late = ok;
  late.set_request_id(to_b->resync().request_id());
  ASSERT_TRUE(silent->Answer(late));
  ASSERT_TRUE(silent->Report(MakeStatus(absl::Microseconds(-41))));
  ASSERT_TRUE(WaitForFleet([](const v1::Fleet& f) {
    return HasOffset(OnlyNode(f, "b"), absl::Microseconds(-41));
  }));

  const ResyncCounters counters = core_->Counters();
  EXPECT_EQ(counters.requests, 1u);
  EXPECT_EQ(counters.node_results.at("RESYNC_OUTCOME_OK"), 1u);
  EXPECT_EQ(counters.node_results.at("RESYNC_OUTCOME_TIMED_OUT"), 1u);
  EXPECT_EQ(counters.node_results.at("RESYNC_OUTCOME_NOT_CONNECTED"), 2u);

  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store_->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(1));
  EXPECT_TRUE((*audit)[0].selector().all());
  EXPECT_THAT((*audit)[0].results(), SizeIs(4));
}

TEST_F(ServiceTest, ResyncByLabelSelectsOnlyMatchingNodes) {
  auto a1 = Agent(MakeHello("a1", "i", absl::Seconds(1), {{"rack", "a"}}));
  auto b1 = Agent(MakeHello("b1", "i", absl::Seconds(1), {{"rack", "b"}}));
  ASSERT_TRUE(WaitForFleet(
      [](const v1::Fleet& f) { return f.connected_count() == 2; }));
  v1::ResyncRequest request;
  request.mutable_selector()->set_label("rack=b");
  request.set_dry_run(true);
  auto call = StartResync(request);
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  ASSERT_THAT(call->response.results(), SizeIs(1));
  EXPECT_EQ(call->response.results(0).node(), "b1");
  EXPECT_EQ(call->response.results(0).result().outcome(),
            v1::RESYNC_OUTCOME_DRY_RUN);
}

TEST_F(ServiceTest, DryRunAsksNoAgentButReportsEachSelectedNode) {
  auto a = ReportingAgent("a", absl::Microseconds(1));
  auto gone = ReportingAgent("z", absl::Microseconds(1));
  gone->Drop();
  ASSERT_TRUE(WaitForFleet([](const v1::Fleet& f) {
    const std::optional<v1::Node> n = OnlyNode(f, "z");
    return n && n->connection() == v1::CONNECTION_STATE_DISCONNECTED;
  }));

  v1::ResyncRequest dry;
  dry.mutable_selector()->set_all(true);
  dry.set_dry_run(true);
  auto call = StartResync(dry);
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  ASSERT_THAT(call->response.results(), SizeIs(2));
  EXPECT_EQ(call->response.results(0).node(), "a");
  EXPECT_EQ(call->response.results(0).result().outcome(),
            v1::RESYNC_OUTCOME_DRY_RUN);
  EXPECT_EQ(call->response.results(1).node(), "z");
  EXPECT_EQ(call->response.results(1).result().outcome(),
            v1::RESYNC_OUTCOME_NOT_CONNECTED);

  // The first command `a` ever receives is the real resync that follows:
  // the dry run sent nothing.
  auto real = StartResync(ResyncOf({"a"}, absl::Seconds(5)));
  std::optional<v1::ControllerMessage> command = a->NextCommand();
  ASSERT_TRUE(command && command->has_resync());
  v1::ResyncResult answer;
  answer.set_request_id(command->resync().request_id());
  answer.set_outcome(v1::RESYNC_OUTCOME_OK);
  ASSERT_TRUE(a->Answer(answer));
  ASSERT_TRUE(real->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(real->response.request_id(), command->resync().request_id());
  EXPECT_NE(real->response.request_id(), call->response.request_id());

  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store_->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(2));
  EXPECT_FALSE((*audit)[0].dry_run());  // newest first
  EXPECT_TRUE((*audit)[1].dry_run());
}

TEST_F(ServiceTest, ResyncOfUnknownNameIsNotConnectedAndEmptySelectorFails) {
  auto call = StartResync(ResyncOf({"ghost"}, absl::Seconds(1)));
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(call->status.ok()) << call->status.error_message();
  ASSERT_THAT(call->response.results(), SizeIs(1));
  EXPECT_EQ(call->response.results(0).node(), "ghost");
  EXPECT_EQ(call->response.results(0).result().outcome(),
            v1::RESYNC_OUTCOME_NOT_CONNECTED);

  auto empty = StartResync(v1::ResyncRequest());
  ASSERT_TRUE(empty->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(empty->status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// --- Queries ----------------------------------------------------------------

TEST_F(ServiceTest, SummaryFleetHasOnePeerRowPerNodeAndGetNodeHasAll) {
  auto agent = Agent(MakeHello("a", "i1"));
  v1::SyncStatus status = MakeStatus(absl::Microseconds(7));
  status.add_peers()->set_remote("127.0.0.1:12301");  // a second row
  ASSERT_TRUE(agent->Report(status));
  ASSERT_TRUE(WaitForFleet([](const v1::Fleet& f) {
    return HasOffset(OnlyNode(f, "a"), absl::Microseconds(7));
  }));
  EXPECT_EQ(OnlyNode(GetFleet(), "a")->status().peers_size(), 2);

  grpc::ClientContext context;
  v1::GetFleetRequest request;
  request.set_summary(true);
  v1::Fleet summary;
  ASSERT_TRUE(fleet_->GetFleet(&context, request, &summary).ok());
  const std::optional<v1::Node> node = OnlyNode(summary, "a");
  ASSERT_TRUE(node.has_value());
  ASSERT_EQ(node->status().peers_size(), 1);
  EXPECT_EQ(node->status().peers(0).remote(), "127.0.0.1:12300");  // '*' row
  EXPECT_EQ(FromProto(node->status().offset()), absl::Microseconds(7));

  grpc::ClientContext node_context;
  v1::GetNodeRequest node_request;
  node_request.set_name("a");
  v1::Node got;
  ASSERT_TRUE(fleet_->GetNode(&node_context, node_request, &got).ok());
  EXPECT_EQ(got.status().peers_size(), 2);
}

TEST_F(ServiceTest, GetNodeOfUnknownNameIsNotFound) {
  grpc::ClientContext context;
  v1::GetNodeRequest request;
  request.set_name("ghost");
  v1::Node node;
  const grpc::Status s = fleet_->GetNode(&context, request, &node);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("ghost"));
}

TEST_F(ServiceTest, HistoryHasThePointOfABucketOnceTheClockLeavesIt) {
  auto a =
      ReportingAgent("a", absl::Microseconds(100), absl::Microseconds(300));
  auto b =
      ReportingAgent("b", absl::Microseconds(-400), absl::Microseconds(700));
  // The housekeeper has taken a snapshot with both reports in the first
  // bucket [kStart, kStart + 10 s).
  ASSERT_TRUE(WaitFor([&] {
    const v1::Fleet f = *core_->LastFleet();
    return f.connected_count() == 2 &&
           FromProto(f.skew()) == absl::Microseconds(500);
  }));

  auto history = [&] {
    grpc::ClientContext context;
    v1::HistoryResponse response;
    EXPECT_TRUE(
        fleet_->History(&context, v1::HistoryRequest(), &response).ok());
    return response;
  };
  EXPECT_EQ(history().points_size(), 0);  // the bucket is still open

  clock_.Advance(absl::Seconds(10));  // into the next bucket
  v1::HistoryResponse response;
  ASSERT_TRUE(WaitFor([&] {
    response = history();
    return response.points_size() > 0;
  }));
  ASSERT_EQ(response.points_size(), 1);
  const v1::SkewPoint& p = response.points(0);
  EXPECT_EQ(FromProto(p.time()), kStart);
  EXPECT_EQ(FromProto(p.skew()), absl::Microseconds(500));
  EXPECT_EQ(FromProto(p.max_error_bound()), absl::Microseconds(700));
  EXPECT_EQ(p.nodes(), 2u);
  EXPECT_EQ(p.flagged(), 0u);
}

TEST_F(ServiceTest, NodeHistoryHasStoredBucketsThenTheOpenOne) {
  auto a = ReportingAgent("a", absl::Microseconds(100));  // at kStart
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(
      a->Report(MakeStatus(absl::Microseconds(-50), absl::Microseconds(400),
                           v1::SYNC_STATE_HOLDOVER)));
  ASSERT_TRUE(WaitForFleet([&](const v1::Fleet& f) {
    return HasOffset(OnlyNode(f, "a"), absl::Microseconds(-50));
  }));
  // The first second's bucket is closed (by the second report): written.
  node_history_.Flush(clock_.Now(), core_->writer());

  auto history = [&](absl::Duration span, v1::HistoryResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(Deadline(kWait));
    v1::HistoryRequest request;
    request.set_node("a");
    SetTimestamp(clock_.Now() - span, request.mutable_start());
    return fleet_->History(&context, request, response);
  };
  v1::HistoryResponse seconds;
  ASSERT_TRUE(WaitFor([&] {
    seconds.Clear();
    return history(absl::Minutes(10), &seconds).ok() &&
           seconds.node_points_size() == 2;
  })) << seconds.ShortDebugString();
  EXPECT_EQ(FromProto(seconds.resolution()), absl::Seconds(1));
  EXPECT_EQ(seconds.points_size(), 0);  // not the fleet's skew
  const v1::NodePoint& stored = seconds.node_points(0);
  EXPECT_EQ(FromProto(stored.time()), kStart);
  EXPECT_EQ(FromProto(stored.offset_last()), absl::Microseconds(100));
  EXPECT_EQ(FromProto(stored.max_error_bound()), absl::Microseconds(100));
  EXPECT_EQ(stored.worst_state(), v1::SYNC_STATE_SYNCHRONISED);
  EXPECT_EQ(stored.max_stratum(), 11u);
  EXPECT_FALSE(stored.open());
  const v1::NodePoint& open = seconds.node_points(1);
  EXPECT_EQ(FromProto(open.time()), kStart + absl::Seconds(1));
  EXPECT_EQ(FromProto(open.offset_last()), absl::Microseconds(-50));
  EXPECT_EQ(open.worst_state(), v1::SYNC_STATE_HOLDOVER);
  EXPECT_TRUE(open.open());

  // A day: the minute tier, whose bucket (both reports) is still open.
  v1::HistoryResponse day;
  ASSERT_TRUE(history(absl::Hours(24), &day).ok());
  EXPECT_EQ(FromProto(day.resolution()), absl::Minutes(1));
  ASSERT_EQ(day.node_points_size(), 1);
  EXPECT_EQ(day.node_points(0).reports(), 2u);
  EXPECT_EQ(FromProto(day.node_points(0).offset_min()),
            absl::Microseconds(-50));
  EXPECT_EQ(FromProto(day.node_points(0).offset_max()),
            absl::Microseconds(100));
  EXPECT_EQ(FromProto(day.node_points(0).max_error_bound()),
            absl::Microseconds(400));
  EXPECT_EQ(day.node_points(0).worst_state(), v1::SYNC_STATE_HOLDOVER);
  EXPECT_TRUE(day.node_points(0).open());
}

TEST_F(ServiceTest, NodeHistoryOfAnUnknownNodeIsNotFoundNamingIt) {
  grpc::ClientContext context;
  context.set_deadline(Deadline(kWait));
  v1::HistoryRequest request;
  request.set_node("no-such-node");
  v1::HistoryResponse response;
  const grpc::Status s = fleet_->History(&context, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("'no-such-node'"));
}

TEST_F(ServiceTest, WatchFleetSendsTheFleetThenAnUpdateWhenANodeReports) {
  FleetWatch watch(fleet_.get(), absl::Milliseconds(1));
  ASSERT_TRUE(watch.WaitForFleet([](const v1::Fleet&) { return true; }));
  EXPECT_EQ(watch.Received().front().nodes_size(), 0);  // the fleet now

  // Report interval 1 h: the clock moves below, the node must not go stale.
  auto agent = Agent(MakeHello("a", "i1", absl::Hours(1)));
  ASSERT_TRUE(agent->Report(MakeStatus(absl::Microseconds(42))));
  // The controller re-offers the fleet to watchers at least once a second of
  // its clock: let that time pass as it would in production (see the next
  // test for delivery without it).
  EXPECT_TRUE(watch.WaitForFleet(
      [](const v1::Fleet& f) {
        return HasOffset(OnlyNode(f, "a"), absl::Microseconds(42));
      },
      [&] { clock_.Advance(absl::Seconds(1)); }))
      << "the report never reached the watcher";
}

// A change offered to a watcher while its previous write is still in flight
// is delivered once that write completes, with no help from the clock (the
// contract: "then again on every change, at most once per min_interval"):
// OnWriteDone() writes what Push() parked in pending_ meanwhile.
TEST_F(ServiceTest, WatchFleetDeliversAChangeOfferedWhileAWriteWasInFlight) {
  // The watcher reads nothing yet: the controller's writes to it stay in
  // flight (a fleet of over 256 KiB cannot be buffered by the transport).
  FleetWatch watch(fleet_.get(), absl::Milliseconds(1), /*read_now=*/false);
  // Over 256 KiB within the limits on a Hello (controller/validate.h): 20
  // known nodes of 64 labels of 253 bytes each.
  std::map<std::string, std::string> labels;
  for (int i = 0; i < 64; ++i) {
    labels[absl::StrCat("blob", i)] = std::string(253, 'x');
  }
  for (int i = 0; i < 20; ++i) {
    registry_->AddKnownNode(
        MakeHello(absl::StrCat("filler-", i), "i", absl::Hours(1), labels),
        kStart);
  }
  auto agent = Agent(MakeHello("a", "i1", absl::Hours(1), labels));
  ASSERT_TRUE(agent->Report(MakeStatus(absl::Microseconds(42))));
  // The housekeeper has offered the fleet with the report to every watcher
  // (it offers under the same lock that guards LastFleet()).
  ASSERT_TRUE(WaitFor([&] {
    return HasOffset(OnlyNode(*core_->LastFleet(), "a"),
                     absl::Microseconds(42));
  }));

  watch.StartReading();
  // No further change, and the fake clock stands still.
  EXPECT_TRUE(watch.WaitForFleet([](const v1::Fleet& f) {
    return HasOffset(OnlyNode(f, "a"), absl::Microseconds(42));
  })) << "the watcher never got the report ("
      << watch.Received().size() << " fleets received)";
}

// A fleet-wide resync at 10 nodes a second: one node per 100 ms
// housekeeping tick, so the NTP server never sees the whole fleet's bursts at
// once.
class WavesTest : public ServiceTest {
 protected:
  ControllerOptions Options() override {
    ControllerOptions o = ExactSnapshots();
    o.resync.nodes_per_second = 10;
    return o;
  }
};

TEST_F(WavesTest, FleetWideResyncGoesOutInWaves) {
  std::vector<std::unique_ptr<FakeAgent>> agents;
  for (const char* name : {"a", "b", "c", "d"}) {
    agents.push_back(ReportingAgent(name, absl::Microseconds(1)));
  }
  v1::ResyncRequest request;
  request.mutable_selector()->set_all(true);
  SetDuration(absl::Seconds(30), request.mutable_deadline());
  const absl::Time start = absl::Now();
  auto call = StartResync(request);
  std::vector<absl::Time> asked;
  for (auto& agent : agents) {
    ASSERT_TRUE(AnswerOk(*agent).has_value());
    asked.push_back(absl::Now());
  }
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(call->response.results_size(), 4);
  // Four nodes, one per tick: the last is asked at least three ticks after
  // the first (a loaded machine only spreads them further).
  EXPECT_GE(asked.back() - start, absl::Milliseconds(190));
}

// Snapshots at the production cadence: rebuilt at most once per
// snapshot_interval, however much changed. An interval of an hour, so that
// no rebuild can come due while the test runs.
class SnapshotIntervalTest : public ServiceTest {
 protected:
  ControllerOptions Options() override {
    ControllerOptions o;
    o.snapshot_interval = absl::Hours(1);
    return o;
  }
};

TEST_F(SnapshotIntervalTest, ChangeWaitsForTheNextBuild) {
  // The first read finds (or makes) the first snapshot: an empty fleet.
  EXPECT_EQ(GetFleet().nodes_size(), 0);
  auto agent = Agent(MakeHello("web-1", "i1"));
  ASSERT_TRUE(agent->Report(MakeStatus(absl::Microseconds(30))));
  // Accepted by the registry (the version moves) ...
  ASSERT_TRUE(WaitFor([&] {
    return core_->registry().GetNode("web-1").has_value() &&
           core_->registry().GetNode("web-1")->has_status();
  }));
  // ... and not shown: a snapshot rebuilt on every change (the old cache, or
  // none) would show it here. Summary, encoded and watched views alike.
  EXPECT_EQ(GetFleet().nodes_size(), 0);
  EXPECT_EQ(core_->Fleet(/*summary=*/true)->nodes_size(), 0);
  EXPECT_EQ(core_->LastFleet()->nodes_size(), 0);
}

// The crosscheck end to end over the real streams: in-process streams have no
// IP address, so each node is probed at "127.0.0.1:<its ntp_port>" (the
// ControllerOptions seam).
class CrosscheckTest : public ServiceTest {
 protected:
  ControllerOptions Options() override {
    ControllerOptions o = ExactSnapshots();
    o.probe_address = [](const v1::Node& n) -> std::optional<std::string> {
      return absl::StrCat("127.0.0.1:", n.hello().ntp_port());
    };
    return o;
  }

  // An agent serving NTP on `port`, reporting `offset` (bound 100 us).
  std::unique_ptr<FakeAgent> Prober(const std::string& name, uint32_t port,
                                    absl::Duration offset,
                                    v1::Role role = v1::ROLE_CLIENT) {
    v1::Hello hello = MakeHello(name, name + "-i");
    hello.set_ntp_port(port);
    hello.set_role(role);
    auto agent = Agent(hello);
    EXPECT_TRUE(agent->Report(MakeStatus(offset)));
    EXPECT_TRUE(WaitForFleet([&](const v1::Fleet& f) {
      return HasOffset(OnlyNode(f, name), offset);
    })) << name;
    return agent;
  }

  // The next ProbeAssignment with `targets` targets the agent receives.
  static std::optional<v1::ProbeAssignment> AssignmentOf(FakeAgent& agent,
                                                         int targets) {
    while (std::optional<v1::ControllerMessage> m = agent.NextCommand()) {
      if (m->has_probes() && m->probes().targets_size() == targets) {
        return m->probes();
      }
    }
    return std::nullopt;
  }

  v1::CrosscheckResponse Crosscheck() {
    grpc::ClientContext context;
    context.set_deadline(Deadline(kWait));
    v1::CrosscheckResponse r;
    const grpc::Status s =
        fleet_->Crosscheck(&context, v1::CrosscheckRequest(), &r);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return r;
  }
};

TEST_F(CrosscheckTest, MeshAssignedProbesSolvedAndALiarFlagged) {
  // True clocks (reference minus local): a is the server (0), b +100 us,
  // c -200 us, d +50 us. d reports 5 ms more than its clock is.
  const std::map<std::string, absl::Duration> truth = {
      {"a", absl::ZeroDuration()},
      {"b", absl::Microseconds(100)},
      {"c", absl::Microseconds(-200)},
      {"d", absl::Microseconds(50)}};
  std::map<std::string, std::unique_ptr<FakeAgent>> agents;
  uint32_t port = 12301;
  for (const auto& [name, y] : truth) {
    agents[name] =
        Prober(name, port++, name == "d" ? y + absl::Milliseconds(5) : y,
               name == "a" ? v1::ROLE_SERVER : v1::ROLE_CLIENT);
  }
  // Past the mesh's debounce (the housekeeper may have made a mesh of the
  // first nodes to connect): the four nodes' mesh, each probing the three
  // others (n <= K + 1).
  clock_.Advance(absl::Seconds(31));
  core_->UpdateCrosscheckMesh(*core_->Fleet());
  std::map<std::string, v1::ProbeAssignment> assigned;
  for (auto& [name, agent] : agents) {
    std::optional<v1::ProbeAssignment> a = AssignmentOf(*agent, 3);
    ASSERT_TRUE(a.has_value()) << name << " got no assignment of 3 targets";
    EXPECT_EQ(FromProto(a->interval()), absl::Seconds(64));
    for (const v1::ProbeTarget& t : a->targets()) {
      EXPECT_NE(t.node(), name);
      EXPECT_EQ(t.address(),
                absl::StrCat("127.0.0.1:", 12301 + (t.node()[0] - 'a')));
    }
    assigned[name] = *a;
  }
  // The controller sees each node's sync state (it solves, or at least looks,
  // every second); probes count only once a report's delay has passed since
  // (crosscheck::NodeInput.state_since).
  core_->SolveCrosscheck(/*force=*/true);
  clock_.Advance(crosscheck::kProbeReportDelay);

  // Each agent measures its targets: theta = y_from - y_to, 200 us delay.
  for (auto& [name, agent] : agents) {
    v1::ProbeReport report;
    for (const v1::ProbeTarget& t : assigned[name].targets()) {
      v1::ProbeResult* r = report.add_results();
      r->set_node(t.node());
      r->set_address(t.address());
      SetDuration(truth.at(name) - truth.at(t.node()), r->mutable_offset());
      SetDuration(absl::Microseconds(200), r->mutable_delay());
      SetTimestamp(clock_.Now(), r->mutable_measured_at());
      r->set_samples(1);
    }
    if (name == "b") {
      // Not assigned to b: dropped, the rest of the report kept.
      v1::ProbeResult* r = report.add_results();
      r->set_node("zz");
      r->set_address("127.0.0.1:9");
      SetDuration(absl::Microseconds(1), r->mutable_offset());
      SetDuration(absl::Microseconds(200), r->mutable_delay());
    }
    ASSERT_TRUE(agent->Probed(report));
  }
  // 17 results: the whole report dropped (and the stream goes on).
  v1::ProbeReport oversized;
  for (int i = 0; i < 17; ++i) *oversized.add_results() = v1::ProbeResult();
  ASSERT_TRUE(agents["c"]->Probed(oversized));
  CrosscheckHub& hub = core_->crosscheck_hub();
  ASSERT_TRUE(WaitFor([&] {
    const auto drops = hub.drops();
    return hub.edge_count() == 12 &&
           drops[static_cast<int>(ProbeDrop::kUnassigned)] == 1 &&
           drops[static_cast<int>(ProbeDrop::kTooManyResults)] == 1;
  })) << hub.edge_count()
      << " edges";

  ASSERT_TRUE(core_->SolveCrosscheck(/*force=*/true));
  const v1::Fleet fleet = GetFleet();
  EXPECT_EQ(fleet.crosscheck_flagged_count(), 1u);
  for (const v1::Node& n : fleet.nodes()) {
    ASSERT_TRUE(n.has_crosscheck()) << n.name();
    // Noise-free probes: measured exactly (to the nanosecond rounding).
    EXPECT_LE(absl::AbsDuration(FromProto(n.crosscheck().measured_offset()) -
                                truth.at(n.name())),
              absl::Nanoseconds(2))
        << n.name();
    EXPECT_EQ(n.crosscheck().flagged(), n.name() == "d") << n.name();
    EXPECT_EQ(n.crosscheck().probed_by(), 3u);
  }
  // Pairwise |Ci - Cj|: the largest is b - c = 300 us.
  EXPECT_EQ(FromProto(fleet.mesh_skew_max()), absl::Microseconds(300));
  // Two largest error bounds (100 us each), added.
  EXPECT_EQ(FromProto(fleet.fleet_bound()), absl::Microseconds(200));

  const v1::CrosscheckResponse r = Crosscheck();
  EXPECT_EQ(r.reference(), "a");
  EXPECT_EQ(r.flagged_count(), 1u);
  EXPECT_EQ(r.probes_per_node(), 3u);
  EXPECT_EQ(FromProto(r.interval()), absl::Seconds(64));
  EXPECT_EQ(r.nodes_size(), 4);
  EXPECT_EQ(r.edges_size(), 12);
  EXPECT_LT(FromProto(r.closure_rms()), absl::Nanoseconds(2));

  // A reconnecting agent is sent its assignment at once, on its new stream.
  agents["b"]->Close();
  v1::Hello hello = MakeHello("b", "b-i");
  hello.set_ntp_port(12302);
  auto again = Agent(hello);
  std::optional<v1::ProbeAssignment> a = AssignmentOf(*again, 3);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->SerializeAsString(), assigned["b"].SerializeAsString());
}

class CrosscheckOffTest : public CrosscheckTest {
 protected:
  ControllerOptions Options() override {
    ControllerOptions o = CrosscheckTest::Options();
    o.crosscheck.probes = 0;
    return o;
  }
};

TEST_F(CrosscheckOffTest, NoAssignmentsAndAnEmptyAnswer) {
  auto a = Prober("a", 12301, absl::ZeroDuration());
  auto b = Prober("b", 12302, absl::ZeroDuration());
  clock_.Advance(absl::Seconds(31));
  core_->UpdateCrosscheckMesh(*core_->Fleet());
  // Nothing comes (a resync would; no probes).
  EXPECT_EQ(a->NextCommand(absl::Milliseconds(300)), std::nullopt);
  EXPECT_FALSE(core_->SolveCrosscheck(/*force=*/true));
  const v1::CrosscheckResponse r = Crosscheck();
  EXPECT_EQ(r.probes_per_node(), 0u);
  EXPECT_EQ(r.nodes_size(), 0);
}

}  // namespace
}  // namespace ntpfleet::controller
