// common/tls end to end: a real gRPC server on 127.0.0.1 (port 0) with
// ntpfleet's mutual TLS, and clients with good, missing, foreign, expired and
// misnamed certificates; CheckTlsFiles' errors; and a server certificate
// rotated on disk while the server runs (FileWatcherCertificateProvider).
#include "common/tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/certs.h"
#include "common/identity.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::HasSubstr;

// GetNode answers with the caller's identity as PeerIdentity sees it (or
// fails UNAUTHENTICATED with its message).
class WhoAmI final : public v1::FleetService::CallbackService {
  grpc::ServerUnaryReactor* GetNode(grpc::CallbackServerContext* context,
                                    const v1::GetNodeRequest* /*request*/,
                                    v1::Node* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    absl::StatusOr<Identity> who = PeerIdentity(*context->auth_context());
    if (!who.ok()) {
      reactor->Finish(
          grpc::Status(static_cast<grpc::StatusCode>(who.status().code()),
                       std::string(who.status().message())));
    } else {
      response->set_name(who->ToString());
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }
};

class Server {
 public:
  explicit Server(std::shared_ptr<grpc::ServerCredentials> creds) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", std::move(creds), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~Server() {
    if (server_ != nullptr) server_->Shutdown(absl::ToChronoTime(absl::Now()));
  }
  int port() const { return port_; }
  bool started() const { return server_ != nullptr && port_ > 0; }

 private:
  WhoAmI service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

struct CallResult {
  grpc::Status status;
  std::string who;          // the server's view of the client
  std::string server_cert;  // the certificate the server presented
};

// One GetNode over a fresh connection (own subchannel pool: never a
// connection left from an earlier call).
CallResult Call(const std::string& target,
                std::shared_ptr<grpc::ChannelCredentials> creds) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(target, std::move(creds), args);
  std::unique_ptr<v1::FleetService::Stub> stub =
      v1::FleetService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  v1::GetNodeRequest request;
  v1::Node node;
  CallResult result;
  result.status = stub->GetNode(&context, request, &node);
  result.who = node.name();
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr) {
    std::vector<grpc::string_ref> pem =
        auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (!pem.empty()) result.server_cert.assign(pem[0].data(), pem[0].size());
  }
  return result;
}

std::string TestDir(const std::string& name) {
  const char* tmp = getenv("TEST_TMPDIR");
  const std::string dir =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
  mkdir(dir.c_str(), 0700);
  return dir;
}

void WriteFile(const std::string& path, const std::string& data) {
  FILE* f = fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(fwrite(data.data(), 1, data.size(), f), data.size());
  ASSERT_EQ(fclose(f), 0);
}

// Replaces `path` atomically (a temporary file renamed over it).
void ReplaceFile(const std::string& path, const std::string& data) {
  const std::string temp = path + ".new";
  WriteFile(temp, data);
  ASSERT_EQ(rename(temp.c_str(), path.c_str()), 0) << path;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<KeyCert> ca =
        MakeCa("test CA", now_ - absl::Hours(1), now_ + absl::Hours(48));
    ASSERT_THAT(ca, IsOk());
    ca_ = *ca;
    absl::StatusOr<KeyCert> other =
        MakeCa("other CA", now_ - absl::Hours(1), now_ + absl::Hours(48));
    ASSERT_THAT(other, IsOk());
    other_ca_ = *other;
  }
  KeyCert Issue(const KeyCert& ca, Identity::Kind kind, std::string name,
                Role role = Role::kNone, std::vector<std::string> hosts = {},
                absl::Time not_before = absl::InfinitePast(),
                absl::Time not_after = absl::InfinitePast()) {
    CertSpec spec;
    spec.kind = kind;
    spec.name = std::move(name);
    spec.role = role;
    spec.hosts = std::move(hosts);
    spec.not_before =
        not_before == absl::InfinitePast() ? now_ - absl::Hours(1) : not_before;
    spec.not_after =
        not_after == absl::InfinitePast() ? now_ + absl::Hours(24) : not_after;
    absl::StatusOr<KeyCert> kc = IssueCert(ca, spec);
    EXPECT_THAT(kc, IsOk());
    return kc.ok() ? *kc : KeyCert{};
  }
  KeyCert Controller(std::vector<std::string> hosts) {
    return Issue(ca_, Identity::Kind::kController, "", Role::kNone,
                 std::move(hosts));
  }
  KeyCert Node(const std::string& name) {
    return Issue(ca_, Identity::Kind::kNode, name);
  }

  const absl::Time now_ = absl::Now();
  KeyCert ca_;
  KeyCert other_ca_;
};

TEST_F(TlsTest, GoodNodeAndUserCertificatesAreSeenByTheServer) {
  Server server(ServerCredentialsFromPem(
      Controller({"localhost", "127.0.0.1", "::1"}), ca_.cert_pem));
  ASSERT_TRUE(server.started());
  const std::string target = absl::StrCat("127.0.0.1:", server.port());

  CallResult r =
      Call(target, ClientCredentialsFromPem(Node("web-01"), ca_.cert_pem));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.who, "node:web-01");
  absl::StatusOr<Identity> server_id = IdentityFromPem(r.server_cert);
  ASSERT_THAT(server_id, IsOk());
  EXPECT_EQ(server_id->ToString(), "controller:localhost");

  r = Call(target, ClientCredentialsFromPem(Issue(ca_, Identity::Kind::kUser,
                                                  "alice", Role::kOperator),
                                            ca_.cert_pem));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.who, "user:alice (operator)");

  // The DNS name works as well as the IP address.
  r = Call(absl::StrCat("localhost:", server.port()),
           ClientCredentialsFromPem(Node("web-02"), ca_.cert_pem));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.who, "node:web-02");
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  Server server(
      ServerCredentialsFromPem(Controller({"127.0.0.1"}), ca_.cert_pem));
  ASSERT_TRUE(server.started());
  CallResult r = Call(absl::StrCat("127.0.0.1:", server.port()),
                      ClientCredentialsFromPem(KeyCert{}, ca_.cert_pem));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << r.status.error_message();
  EXPECT_EQ(r.who, "");
}

TEST_F(TlsTest, ClientFromAnotherCaIsRefused) {
  Server server(
      ServerCredentialsFromPem(Controller({"127.0.0.1"}), ca_.cert_pem));
  ASSERT_TRUE(server.started());
  // The client trusts the server's CA, but its own certificate is another
  // CA's.
  CallResult r =
      Call(absl::StrCat("127.0.0.1:", server.port()),
           ClientCredentialsFromPem(
               Issue(other_ca_, Identity::Kind::kNode, "evil"), ca_.cert_pem));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << r.status.error_message();
  EXPECT_EQ(r.who, "");
}

TEST_F(TlsTest, ExpiredClientIsRefused) {
  Server server(
      ServerCredentialsFromPem(Controller({"127.0.0.1"}), ca_.cert_pem));
  ASSERT_TRUE(server.started());
  CallResult r =
      Call(absl::StrCat("127.0.0.1:", server.port()),
           ClientCredentialsFromPem(
               Issue(ca_, Identity::Kind::kNode, "old", Role::kNone, {},
                     now_ - absl::Minutes(50), now_ - absl::Minutes(10)),
               ca_.cert_pem));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << r.status.error_message();
  EXPECT_EQ(r.who, "");
}

TEST_F(TlsTest, ServerFromAnotherCaIsRefused) {
  Server server(
      ServerCredentialsFromPem(Issue(other_ca_, Identity::Kind::kController, "",
                                     Role::kNone, {"127.0.0.1"}),
                               ca_.cert_pem));
  ASSERT_TRUE(server.started());
  CallResult r = Call(absl::StrCat("127.0.0.1:", server.port()),
                      ClientCredentialsFromPem(Node("web-01"), ca_.cert_pem));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << r.status.error_message();
  EXPECT_EQ(r.who, "");
}

TEST_F(TlsTest, ControllerCertificateForAnotherHostIsRefusedByTheClient) {
  // Same CA, valid, serverAuth: only the host names are wrong.
  for (const std::vector<std::string>& hosts :
       std::vector<std::vector<std::string>>{{"other.example"},
                                             {"localhost", "127.0.0.2"}}) {
    Server server(ServerCredentialsFromPem(Controller(hosts), ca_.cert_pem));
    ASSERT_TRUE(server.started());
    CallResult r = Call(absl::StrCat("127.0.0.1:", server.port()),
                        ClientCredentialsFromPem(Node("web-01"), ca_.cert_pem));
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << hosts[0] << ": " << r.status.error_message();
    EXPECT_EQ(r.who, "") << hosts[0];
  }
  // The control: the name the client dials is in the certificate.
  Server server(
      ServerCredentialsFromPem(Controller({"127.0.0.1"}), ca_.cert_pem));
  ASSERT_TRUE(server.started());
  CallResult r = Call(absl::StrCat("127.0.0.1:", server.port()),
                      ClientCredentialsFromPem(Node("web-01"), ca_.cert_pem));
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
}

TEST_F(TlsTest, PeerIdentityWithoutTlsIsUnauthenticated) {
  Server server(grpc::InsecureServerCredentials());
  ASSERT_TRUE(server.started());
  CallResult r = Call(absl::StrCat("127.0.0.1:", server.port()),
                      grpc::InsecureChannelCredentials());
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(r.status.error_message(), HasSubstr("no client certificate"));
}

// --- Files -------------------------------------------------------------------

class TlsFilesTest : public TlsTest {
 protected:
  void SetUp() override {
    TlsTest::SetUp();
    dir_ = TestDir("tls-files");
    const KeyCert node = Node("web-01");
    WriteFile(dir_ + "/web-01.pem", node.cert_pem);
    WriteFile(dir_ + "/web-01.key", node.key_pem);
    WriteFile(dir_ + "/ca.pem", ca_.cert_pem);
    WriteFile(dir_ + "/other.key", Node("web-02").key_pem);
    WriteFile(dir_ + "/junk.pem", "not a certificate\n");
    good_ = {dir_ + "/web-01.pem", dir_ + "/web-01.key", dir_ + "/ca.pem"};
  }
  std::string dir_;
  TlsFiles good_;
  const std::string kFlags = "--tls-cert/--tls-key/--tls-ca";
};

TEST_F(TlsFilesTest, AllGoodIsOk) {
  EXPECT_THAT(CheckTlsFiles(good_, kFlags), IsOk());
  EXPECT_THAT(ServerCredentials(good_, kFlags), IsOk());
  EXPECT_THAT(ClientCredentials(good_, kFlags), IsOk());
}

TEST_F(TlsFilesTest, HalfConfigurationsNameWhatIsMissing) {
  const auto kBad = absl::StatusCode::kInvalidArgument;
  TlsFiles f;
  EXPECT_THAT(CheckTlsFiles(f, kFlags),
              StatusIs(kBad, HasSubstr("no TLS files given")));
  f = good_;
  f.ca.clear();
  EXPECT_THAT(
      CheckTlsFiles(f, kFlags),
      StatusIs(kBad,
               HasSubstr("--tls-cert and --tls-key given without --tls-ca: "
                         "mutual TLS needs all three; make them with "
                         "`ntpfleetctl certs`")));
  f = good_;
  f.key.clear();
  f.ca.clear();
  EXPECT_THAT(CheckTlsFiles(f, kFlags),
              StatusIs(kBad, HasSubstr("--tls-cert given without --tls-key and "
                                       "--tls-ca")));
  f = good_;
  f.cert.clear();
  EXPECT_THAT(CheckTlsFiles(f, kFlags),
              StatusIs(kBad, HasSubstr("--tls-key and --tls-ca given without "
                                       "--tls-cert")));
  f = TlsFiles();
  f.ca = good_.ca;
  EXPECT_THAT(
      CheckTlsFiles(f, "agent.conf tls_cert/tls_key/tls_ca"),
      StatusIs(kBad,
               HasSubstr("agent.conf tls_ca given without agent.conf tls_cert "
                         "and agent.conf tls_key")));
  // The credentials check first.
  EXPECT_THAT(ServerCredentials(f, kFlags),
              StatusIs(kBad, HasSubstr("given without")));
  EXPECT_THAT(ClientCredentials(f, kFlags),
              StatusIs(kBad, HasSubstr("given without")));
}

TEST_F(TlsFilesTest, UnreadableFilesAreNamed) {
  TlsFiles f = good_;
  f.ca = dir_ + "/missing.pem";
  EXPECT_THAT(CheckTlsFiles(f, kFlags),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("--tls-ca: cannot read ", dir_,
                                              "/missing.pem: No such file"))));
  f.ca = dir_;  // a directory: unreadable even for root
  EXPECT_THAT(CheckTlsFiles(f, kFlags),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("--tls-ca: cannot read ", dir_,
                                              ": Is a directory"))));
  f = good_;
  f.key = dir_ + "/nope.key";
  EXPECT_THAT(CheckTlsFiles(f, kFlags),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--tls-key: cannot read")));
}

TEST_F(TlsFilesTest, FilesThatDoNotParseAreNamed) {
  TlsFiles f = good_;
  f.cert = dir_ + "/junk.pem";
  EXPECT_THAT(CheckTlsFiles(f, kFlags),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--tls-cert: " + dir_ +
                                 "/junk.pem is not a PEM certificate")));
  f = good_;
  f.ca = dir_ + "/junk.pem";
  EXPECT_THAT(CheckTlsFiles(f, kFlags),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--tls-ca: " + dir_ +
                                 "/junk.pem is not a PEM CA certificate")));
  f = good_;
  f.key = dir_ + "/web-01.pem";  // a certificate is not a key
  EXPECT_THAT(CheckTlsFiles(f, kFlags),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("is not an unencrypted PEM private key")));
}

TEST_F(TlsFilesTest, KeyOfAnotherCertificateIsRefused) {
  TlsFiles f = good_;
  f.key = dir_ + "/other.key";
  EXPECT_THAT(CheckTlsFiles(f, kFlags),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("does not belong to the certificate")));
}

// The server's certificate is replaced on disk (new key, new serial) while it
// runs; new connections get the new one within a few refreshes.
TEST_F(TlsFilesTest, ServerCertificateRotatesWithoutRestart) {
  const std::string dir = TestDir("tls-rotate");
  const KeyCert first = Controller({"127.0.0.1"});
  const KeyCert second = Controller({"127.0.0.1"});
  ASSERT_NE(first.cert_pem, second.cert_pem);
  WriteFile(dir + "/ctl.pem", first.cert_pem);
  WriteFile(dir + "/ctl.key", first.key_pem);
  WriteFile(dir + "/ca.pem", ca_.cert_pem);
  TlsFiles server_files{dir + "/ctl.pem", dir + "/ctl.key", dir + "/ca.pem",
                        absl::Seconds(1)};
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
      ServerCredentials(server_files, kFlags);
  ASSERT_THAT(creds, IsOk());
  Server server(*creds);
  ASSERT_TRUE(server.started());
  const std::string target = absl::StrCat("127.0.0.1:", server.port());
  // The client from files too.
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> client =
      ClientCredentials(good_, kFlags);
  ASSERT_THAT(client, IsOk());

  CallResult r = Call(target, *client);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.who, "node:web-01");
  EXPECT_EQ(r.server_cert, first.cert_pem);

  // Key first, then the certificate: a refresh between the two sees a pair
  // that does not match, which gRPC skips (or which fails that one
  // handshake): the loop below only waits for the new certificate.
  ReplaceFile(dir + "/ctl.key", second.key_pem);
  ReplaceFile(dir + "/ctl.pem", second.cert_pem);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  bool rotated = false;
  int calls = 0;
  while (!rotated && absl::Now() < deadline) {
    r = Call(target, *client);
    ++calls;
    rotated = r.status.ok() && r.server_cert == second.cert_pem;
    if (!rotated) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(rotated) << "after " << calls
                       << " calls: " << r.status.error_message();
  EXPECT_EQ(r.who, "node:web-01");
}

}  // namespace
}  // namespace ntpfleet
