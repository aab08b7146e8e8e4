// FleetClient::Crosscheck against real gRPC servers on loopback (port 0): a
// controller older than the crosscheck (the generated service's default,
// UNIMPLEMENTED) and one that answers. What `ntpfleetctl crosscheck
// --controller OLD,NEW` relies on: the old one is named and skipped, the new
// one's answer is shown and named; the old one alone is a clear error.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "ctl/fleet_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "tests/testing/local_grpc_server.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A controller with the crosscheck: a canned solve.
class NewController final : public v1::FleetService::Service {
 public:
  grpc::Status Crosscheck(grpc::ServerContext*, const v1::CrosscheckRequest*,
                          v1::CrosscheckResponse* out) override {
    SetTimestamp(absl::FromUnixSeconds(1'800'000'000), out->mutable_as_of());
    out->set_reference("srv-1");
    v1::NodeCrosscheckRow* row = out->add_nodes();
    row->set_name("liar");
    row->mutable_crosscheck()->set_flagged(true);
    out->set_flagged_count(1);
    return grpc::Status::OK;
  }
};

// A controller from before the crosscheck: every method the default.
class OldController final : public v1::FleetService::Service {};

using Running = ::ntpfleet::testing::LocalGrpcServer;
Running Start(grpc::Service* service) {
  return ::ntpfleet::testing::StartLocalGrpcServer(service);
}

TEST(CrosscheckClientTest, AnOldControllerIsSkippedAndTheAnswerNamed) {
  OldController old_service;
  NewController new_service;
  Running old_one = Start(&old_service);
  Running new_one = Start(&new_service);
  ASSERT_NE(old_one.server, nullptr);
  ASSERT_NE(new_one.server, nullptr);
  absl::StatusOr<std::unique_ptr<FleetClient>> client = FleetClient::Connect(
      absl::StrCat(old_one.address, ",", new_one.address), TlsFiles{});
  ASSERT_THAT(client, IsOk());
  std::vector<std::string> warnings;
  (*client)->set_warn([&](const std::string& w) { warnings.push_back(w); });
  const CrosscheckPick pick = (*client)->Crosscheck(absl::Seconds(10));
  ASSERT_THAT(pick.status, IsOk());
  EXPECT_EQ(pick.address, new_one.address);
  EXPECT_EQ(pick.response.reference(), "srv-1");
  EXPECT_EQ(pick.response.flagged_count(), 1u);
  EXPECT_THAT(pick.without_rpc, ElementsAre(old_one.address));
  // UNIMPLEMENTED is an answer ("too old"), not "did not answer".
  EXPECT_THAT(warnings, ::testing::IsEmpty());
  old_one.server->Shutdown();
  new_one.server->Shutdown();
}

TEST(CrosscheckClientTest, AnOldControllerAloneIsAClearError) {
  OldController old_service;
  Running old_one = Start(&old_service);
  ASSERT_NE(old_one.server, nullptr);
  absl::StatusOr<std::unique_ptr<FleetClient>> client =
      FleetClient::Connect(old_one.address, TlsFiles{});
  ASSERT_THAT(client, IsOk());
  const CrosscheckPick pick = (*client)->Crosscheck(absl::Seconds(10));
  EXPECT_THAT(
      pick.status,
      StatusIs(absl::StatusCode::kUnimplemented,
               HasSubstr(absl::StrCat("the controller at ", old_one.address,
                                      " has no crosscheck"))));
  old_one.server->Shutdown();
}

}  // namespace
}  // namespace ntpfleet::ctl
