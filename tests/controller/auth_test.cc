// The controller's trust rules over real mutual TLS (issue #10): a gRPC server
// on 127.0.0.1 port 0 with the controller's certificate, and clients holding
// certificates made here by common/certs (a CA, another CA, nodes, users of
// each role, an expired one). Each refusal the issue lists is one test:
// no client certificate, a certificate from another CA, an expired
// certificate, node A saying Hello as node B, a viewer calling Resync, an
// operator asking for --force or --all; and what an accepted caller leaves in
// the audit (its verified identity, never what it claims).
//
// The agents here are fake streams: what a real agent does with the step
// limit (Resync.max_step) is tested in tests/agent and end to end in
// tests/integration/trust_test.sh.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/certs.h"
#include "common/identity.h"
#include "common/proto_time.h"
#include "common/tls.h"
#include "controller/node_history.h"
#include "controller/registry.h"
#include "controller/service.h"
#include "controller/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_files.h"

namespace ntpfleet::controller {
namespace {

using ::ntpfleet::testing::FakeClock;
using ::ntpfleet::testing::FakeMonotonicClock;
using ::ntpfleet::testing::IsOk;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);

std::chrono::system_clock::time_point Deadline(absl::Duration d) {
  return std::chrono::system_clock::now() +
         std::chrono::nanoseconds(absl::ToInt64Nanoseconds(d));
}

bool WaitFor(const std::function<bool()>& condition) {
  const absl::Time until = absl::Now() + kWait;
  while (!condition()) {
    if (absl::Now() >= until) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

v1::Hello MakeHello(const std::string& name) {
  v1::Hello hello;
  hello.set_node_name(name);
  hello.set_instance_id(name + "-secret-instance");
  hello.set_agent_version("test");
  hello.set_role(v1::ROLE_CLIENT);
  SetDuration(absl::Seconds(1), hello.mutable_report_interval());
  return hello;
}

// Certificates for every case, made once: EC keys are quick, but not free.
struct Pki {
  KeyCert ca, other_ca, controller;
  KeyCert node_a, node_b, viewer, operator_, admin, expired, foreign;
};

const Pki& Certificates() {
  static const Pki* pki = [] {
    const absl::Time now = absl::Now();
    const absl::Time from = now - absl::Hours(1);
    const absl::Time to = now + absl::Hours(24);
    auto issue = [&](const KeyCert& ca, Identity::Kind kind,
                     const std::string& name, Role role = Role::kNone,
                     absl::Time not_before = absl::InfinitePast(),
                     absl::Time not_after = absl::InfinitePast()) {
      CertSpec spec;
      spec.kind = kind;
      spec.name = name;
      spec.role = role;
      if (kind == Identity::Kind::kController) spec.hosts = {"127.0.0.1"};
      spec.not_before = not_before == absl::InfinitePast() ? from : not_before;
      spec.not_after = not_after == absl::InfinitePast() ? to : not_after;
      absl::StatusOr<KeyCert> c = IssueCert(ca, spec);
      EXPECT_THAT(c, IsOk()) << name;
      return c.value_or(KeyCert{});
    };
    auto* p = new Pki;
    p->ca = MakeCa("ntpfleet test CA", from, to).value();
    p->other_ca = MakeCa("another CA", from, to).value();
    p->controller = issue(p->ca, Identity::Kind::kController, "127.0.0.1");
    p->node_a = issue(p->ca, Identity::Kind::kNode, "web-1");
    p->node_b = issue(p->ca, Identity::Kind::kNode, "web-2");
    p->viewer = issue(p->ca, Identity::Kind::kUser, "vera", Role::kViewer);
    p->operator_ = issue(p->ca, Identity::Kind::kUser, "olga", Role::kOperator);
    p->admin = issue(p->ca, Identity::Kind::kUser, "adam", Role::kAdmin);
    // Valid yesterday, expired an hour ago.
    p->expired = issue(p->ca, Identity::Kind::kUser, "old", Role::kAdmin,
                       now - absl::Hours(48), now - absl::Hours(1));
    // Says admin, signed by a CA this controller does not trust.
    p->foreign = issue(p->other_ca, Identity::Kind::kUser, "eve", Role::kAdmin);
    return p;
  }();
  return *pki;
}

// An agent's stream: sends a Hello, collects the commands.
class StreamAgent {
 public:
  StreamAgent(const std::shared_ptr<grpc::Channel>& channel,
              const v1::Hello& hello)
      : stub_(v1::AgentService::NewStub(channel)) {
    context_.set_deadline(Deadline(absl::Seconds(60)));
    stream_ = stub_->Connect(&context_);
    v1::AgentMessage m;
    *m.mutable_hello() = hello;
    stream_->Write(m);
    reader_ = std::thread([this] {
      v1::ControllerMessage c;
      while (stream_->Read(&c)) {
        absl::MutexLock lock(&mu_);
        commands_.push_back(c);
      }
      absl::MutexLock lock(&mu_);
      ended_ = true;
    });
  }
  ~StreamAgent() { End(); }

  grpc::Status End() {
    if (!finished_) {
      context_.TryCancel();
      reader_.join();
      status_ = stream_->Finish();
      finished_ = true;
    }
    return status_;
  }

  // How the controller ended the stream (it must end it within kWait).
  grpc::Status AwaitEnd() {
    {
      absl::MutexLock lock(&mu_);
      auto ended = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ended_; };
      mu_.AwaitWithTimeout(absl::Condition(&ended), kWait);
      if (!ended_) return grpc::Status(grpc::StatusCode::CANCELLED, "hung");
    }
    reader_.join();
    status_ = stream_->Finish();
    finished_ = true;
    return status_;
  }

  std::optional<v1::Resync> NextResync(absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !commands_.empty() || ended_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (commands_.empty()) return std::nullopt;
    v1::Resync r = commands_.front().resync();
    commands_.erase(commands_.begin());
    return r;
  }

  bool Answer(const v1::ResyncResult& result) {
    v1::AgentMessage m;
    *m.mutable_resync_result() = result;
    return stream_->Write(m);
  }

 private:
  std::unique_ptr<v1::AgentService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>>
      stream_;
  std::thread reader_;
  bool finished_ = false;
  grpc::Status status_;
  absl::Mutex mu_;
  std::vector<v1::ControllerMessage> commands_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ =
        ntpfleet::testing::MustOpen(ntpfleet::testing::FreshDb(absl::StrCat(
            "auth-",
            ::testing::UnitTest::GetInstance()->current_test_info()->name(),
            ".db")));
    ASSERT_NE(store_, nullptr);
    RegistryOptions registry_options;
    registry_options.on_report =
        [this](const std::string& node, const v1::SyncStatus& status,
               absl::Time now) { node_history_.Record(node, status, now); };
    registry_ = std::make_unique<Registry>(&clock_, &mono_, registry_options);
    ControllerOptions options;
    options.tls = true;
    options.node_history = &node_history_;
    options.snapshot_interval = absl::ZeroDuration();  // every change shows
    core_ = std::make_unique<ControllerCore>(&clock_, registry_.get(),
                                             store_.get(), options);
    core_->Start();
    agents_ = std::make_unique<AgentServiceImpl>(core_.get());
    fleet_ = std::make_unique<FleetServiceImpl>(core_.get());
    const Pki& pki = Certificates();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(
        "127.0.0.1:0",
        ServerCredentialsFromPem(pki.controller, pki.ca.cert_pem), &port_);
    agents_->AddTo(builder);
    builder.RegisterService(fleet_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    agents_->Start();
    ASSERT_NE(port_, 0);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(Deadline(absl::Seconds(1)));
    if (agents_) agents_->Shutdown();
    if (core_) core_->Stop();
  }

  // A channel presenting `who` (and trusting only the fleet's CA).
  std::shared_ptr<grpc::Channel> As(const KeyCert& who) {
    return grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port_),
        ClientCredentialsFromPem(who, Certificates().ca.cert_pem));
  }

  grpc::Status GetFleet(const std::shared_ptr<grpc::Channel>& channel,
                        v1::Fleet* fleet = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(Deadline(kWait));
    v1::Fleet out;
    return v1::FleetService::NewStub(channel)->GetFleet(
        &context, v1::GetFleetRequest(), fleet ? fleet : &out);
  }

  grpc::Status Resync(const std::shared_ptr<grpc::Channel>& channel,
                      const v1::ResyncRequest& request,
                      v1::ResyncResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(Deadline(kWait));
    return v1::FleetService::NewStub(channel)->Resync(&context, request,
                                                      response);
  }

  // Node `who` connected as `name`, seen in the fleet.
  std::unique_ptr<StreamAgent> Connected(const KeyCert& who,
                                         const std::string& name) {
    auto agent = std::make_unique<StreamAgent>(As(who), MakeHello(name));
    EXPECT_TRUE(WaitFor([&] {
      v1::Fleet fleet;
      if (!GetFleet(As(Certificates().viewer), &fleet).ok()) return false;
      for (const v1::Node& n : fleet.nodes()) {
        if (n.name() == name &&
            n.connection() == v1::CONNECTION_STATE_CONNECTED) {
          return true;
        }
      }
      return false;
    })) << name;
    return agent;
  }

  static v1::ResyncRequest ResyncOf(const std::string& node) {
    v1::ResyncRequest r;
    r.mutable_selector()->add_names(node);
    SetDuration(absl::Seconds(5), r.mutable_deadline());
    return r;
  }

  FakeClock clock_{absl::Now()};
  FakeMonotonicClock mono_;
  std::unique_ptr<Store> store_;
  NodeHistory node_history_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<ControllerCore> core_;
  std::unique_ptr<AgentServiceImpl> agents_;
  std::unique_ptr<FleetServiceImpl> fleet_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(AuthTest, ViewerReadsTheFleet) {
  EXPECT_TRUE(GetFleet(As(Certificates().viewer)).ok());
}

TEST_F(AuthTest, ViewerReadsANodesHistoryANodeCertificateDoesNot) {
  auto web = Connected(Certificates().node_a, "web-1");
  auto history = [&](const KeyCert& who, const std::string& node) {
    grpc::ClientContext context;
    context.set_deadline(Deadline(kWait));
    v1::HistoryRequest request;
    request.set_node(node);
    v1::HistoryResponse response;
    return v1::FleetService::NewStub(As(who))->History(&context, request,
                                                       &response);
  };
  grpc::Status s = history(Certificates().viewer, "web-1");
  EXPECT_TRUE(s.ok()) << s.error_message();
  s = history(Certificates().viewer, "web-9");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("'web-9'"));
  // A node's certificate only reports; it reads no one's history.
  s = history(Certificates().node_b, "web-1");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AuthTest, ViewerReadsTheCrosscheckANodeCertificateDoesNot) {
  auto crosscheck = [&](const KeyCert& who) {
    grpc::ClientContext context;
    context.set_deadline(Deadline(kWait));
    v1::CrosscheckResponse response;
    return v1::FleetService::NewStub(As(who))->Crosscheck(
        &context, v1::CrosscheckRequest(), &response);
  };
  grpc::Status s = crosscheck(Certificates().viewer);
  EXPECT_TRUE(s.ok()) << s.error_message();
  s = crosscheck(Certificates().node_a);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AuthTest, RefusesClientWithoutCertificate) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = Certificates().ca.cert_pem;  // trusts, shows nothing
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                     grpc::SslCredentials(ssl));
  const grpc::Status s = GetFleet(channel);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(AuthTest, RefusesPlainTextClient) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                     grpc::InsecureChannelCredentials());
  EXPECT_FALSE(GetFleet(channel).ok());
}

TEST_F(AuthTest, RefusesCertificateFromAnotherCa) {
  const grpc::Status s = GetFleet(As(Certificates().foreign));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(AuthTest, RefusesExpiredCertificate) {
  const grpc::Status s = GetFleet(As(Certificates().expired));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(AuthTest, NodeReportsAsItself) {
  auto agent = Connected(Certificates().node_a, "web-1");
  // GetNode and GetFleet never hand out an agent's instance id.
  grpc::ClientContext context;
  context.set_deadline(Deadline(kWait));
  v1::GetNodeRequest request;
  request.set_name("web-1");
  v1::Node node;
  ASSERT_TRUE(v1::FleetService::NewStub(As(Certificates().viewer))
                  ->GetNode(&context, request, &node)
                  .ok());
  EXPECT_EQ(node.hello().instance_id(), "");
  v1::Fleet fleet;
  ASSERT_TRUE(GetFleet(As(Certificates().admin), &fleet).ok());
  for (const v1::Node& n : fleet.nodes()) {
    EXPECT_EQ(n.hello().instance_id(), "") << n.name();
  }
}

TEST_F(AuthTest, RefusesNodeSayingHelloAsAnotherNode) {
  auto victim = Connected(Certificates().node_b, "web-2");
  StreamAgent impostor(As(Certificates().node_a), MakeHello("web-2"));
  const grpc::Status s = impostor.AwaitEnd();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(),
              HasSubstr("the certificate of node web-1 cannot report as "
                        "node web-2"));
  // The real web-2 is still the one connected, and was not replaced.
  v1::Fleet fleet;
  ASSERT_TRUE(GetFleet(As(Certificates().viewer), &fleet).ok());
  int web2 = 0;
  for (const v1::Node& n : fleet.nodes()) {
    if (n.name() != "web-2") continue;
    ++web2;
    EXPECT_EQ(n.connection(), v1::CONNECTION_STATE_CONNECTED);
    EXPECT_FALSE(n.duplicate_name());
  }
  EXPECT_EQ(web2, 1);
  EXPECT_GE(core_->authz().Counters()["Connect/permission_denied"], 1u);
}

TEST_F(AuthTest, RefusesUserCertificateSayingHello) {
  StreamAgent agent(As(Certificates().admin), MakeHello("web-1"));
  EXPECT_EQ(agent.AwaitEnd().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AuthTest, RefusesNodeCertificateReadingTheFleet) {
  const grpc::Status s = GetFleet(As(Certificates().node_a));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("is a node certificate"));
}

TEST_F(AuthTest, RefusesViewerCallingResync) {
  auto agent = Connected(Certificates().node_a, "web-1");
  v1::ResyncResponse response;
  const grpc::Status s =
      Resync(As(Certificates().viewer), ResyncOf("web-1"), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("resync needs role operator"));
  EXPECT_THAT(s.error_message(), HasSubstr("user:vera (viewer)"));
  // Nothing reached the agent (a command would have been sent before the
  // call returned; the short wait only lets a wrong one arrive).
  EXPECT_FALSE(agent->NextResync(absl::Milliseconds(200)).has_value());
  EXPECT_GE(core_->authz().Counters()["Resync/permission_denied"], 1u);
}

TEST_F(AuthTest, OperatorResyncIsLimitedToTheOperatorStep) {
  auto agent = Connected(Certificates().node_a, "web-1");
  v1::ResyncRequest request = ResyncOf("web-1");
  request.set_allow_step(true);
  request.set_requested_by("mallory@elsewhere");  // ignored
  v1::ResyncResponse response;
  grpc::Status status;
  std::thread call([&] {
    status = Resync(As(Certificates().operator_), request, &response);
  });
  std::optional<v1::Resync> sent = agent->NextResync();
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(FromProto(sent->max_step()), absl::Milliseconds(128));
  EXPECT_TRUE(sent->allow_step());
  v1::ResyncResult result;
  result.set_request_id(sent->request_id());
  result.set_outcome(v1::RESYNC_OUTCOME_FAILED);
  result.set_error("offset +800 ms is beyond this request's step limit");
  ASSERT_TRUE(agent->Answer(result));
  call.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).result().outcome(), v1::RESYNC_OUTCOME_FAILED);

  // The audit names the certificate's identity, not what the client said.
  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store_->Audit(absl::InfinitePast(), 10);
  ASSERT_THAT(audit, IsOk());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].requested_by(), "user:olga (operator)");
  ASSERT_EQ((*audit)[0].results_size(), 1);
  EXPECT_EQ((*audit)[0].results(0).result().outcome(),
            v1::RESYNC_OUTCOME_FAILED);
}

TEST_F(AuthTest, RefusesForceWithoutAdmin) {
  auto agent = Connected(Certificates().node_a, "web-1");
  v1::ResyncRequest request = ResyncOf("web-1");
  request.set_allow_step(true);
  request.set_force(true);
  v1::ResyncResponse response;
  const grpc::Status s =
      Resync(As(Certificates().operator_), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("--force"));
  EXPECT_THAT(s.error_message(), HasSubstr("needs role admin"));
  // Refused before the audit: nothing was asked, nothing recorded.
  EXPECT_FALSE(agent->NextResync(absl::Milliseconds(200)).has_value());
  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store_->Audit(absl::InfinitePast(), 10);
  ASSERT_THAT(audit, IsOk());
  EXPECT_TRUE(audit->empty());
}

TEST_F(AuthTest, RefusesResyncAllWithoutAdmin) {
  v1::ResyncRequest request;
  request.mutable_selector()->set_all(true);
  v1::ResyncResponse response;
  const grpc::Status s =
      Resync(As(Certificates().operator_), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("resync --all needs role admin"));
}

TEST_F(AuthTest, AdminForceLiftsTheOperatorLimit) {
  auto agent = Connected(Certificates().node_a, "web-1");
  v1::ResyncRequest request = ResyncOf("web-1");
  request.set_allow_step(true);
  request.set_force(true);
  v1::ResyncResponse response;
  grpc::Status status;
  std::thread call(
      [&] { status = Resync(As(Certificates().admin), request, &response); });
  std::optional<v1::Resync> sent = agent->NextResync();
  ASSERT_TRUE(sent.has_value());
  EXPECT_GT(FromProto(sent->max_step()), absl::Hours(24 * 365));
  v1::ResyncResult result;
  result.set_request_id(sent->request_id());
  result.set_outcome(v1::RESYNC_OUTCOME_OK);
  result.set_stepped(true);
  ASSERT_TRUE(agent->Answer(result));
  call.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store_->Audit(absl::InfinitePast(), 10);
  ASSERT_THAT(audit, IsOk());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].requested_by(), "user:adam (admin)");
  EXPECT_TRUE((*audit)[0].force());
}

TEST_F(AuthTest, OnlyAdminForgets) {
  { auto agent = Connected(Certificates().node_a, "web-1"); }
  ASSERT_TRUE(WaitFor([&] {
    v1::Fleet fleet;
    GetFleet(As(Certificates().viewer), &fleet);
    return fleet.nodes_size() == 1 &&
           fleet.nodes(0).connection() == v1::CONNECTION_STATE_DISCONNECTED;
  }));
  v1::ForgetRequest request;
  request.set_name("web-1");
  v1::ForgetResponse response;
  {
    grpc::ClientContext context;
    context.set_deadline(Deadline(kWait));
    EXPECT_EQ(v1::FleetService::NewStub(As(Certificates().operator_))
                  ->Forget(&context, request, &response)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  grpc::ClientContext context;
  context.set_deadline(Deadline(kWait));
  const grpc::Status s = v1::FleetService::NewStub(As(Certificates().admin))
                             ->Forget(&context, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::Fleet fleet;
  ASSERT_TRUE(GetFleet(As(Certificates().viewer), &fleet).ok());
  EXPECT_EQ(fleet.nodes_size(), 0);
  absl::StatusOr<std::vector<Store::NodeRecord>> known = store_->LoadNodes();
  ASSERT_THAT(known, IsOk());
  EXPECT_TRUE(known->empty());
}

}  // namespace
}  // namespace ntpfleet::controller
