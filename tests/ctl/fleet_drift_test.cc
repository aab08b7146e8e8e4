// Tests for ctl/fleet_drift.h: cohorts by role or label, the most common
// digest as reference, ties, and the three outputs.
#include "ctl/fleet_drift.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/ctl/test_fleet.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::ctl::testing::AddNode;
using ::ntpfleet::ctl::testing::Digest;
using ::ntpfleet::ctl::testing::kNow;
using ::ntpfleet::ctl::testing::Label;
using ::ntpfleet::ctl::testing::Role;
using ::ntpfleet::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::string kX(64, 'a');  // SHA-256 hex digests
const std::string kY(64, 'b');
const std::string kZ(64, 'c');

std::vector<const v1::Node*> All(const v1::Fleet& f) {
  return SelectNodes(f, NodeFilter{}, SortKey::kName);
}

std::vector<std::string> OddNames(const DriftReport& r) {
  std::vector<std::string> names;
  for (const OddNode& o : r.odd) names.push_back(o.node->name());
  return names;
}

RenderOptions Plain() {
  RenderOptions r;
  r.now = kNow;
  return r;
}

// Clients c1..c3 on X, c4 on Y; the server alone on Z (a cohort of its own).
v1::Fleet RoleFleet() {
  v1::Fleet f;
  Digest(AddNode(&f, "c1"), kX);
  Digest(AddNode(&f, "c2"), kX);
  Digest(AddNode(&f, "c3"), kX);
  Digest(AddNode(&f, "c4"), kY);
  Digest(Role(AddNode(&f, "ntp"), v1::ROLE_SERVER), kZ);
  return f;
}

TEST(DriftTest, TheOddOneOutOfItsRole) {
  const v1::Fleet f = RoleFleet();
  const DriftReport r = FindDrift(All(f), "");
  EXPECT_TRUE(r.drift());
  EXPECT_THAT(OddNames(r), ElementsAre("c4"));
  EXPECT_EQ(r.odd[0].cohort, "client");
  EXPECT_EQ(r.odd[0].reference, kX);
  EXPECT_EQ(r.odd[0].reference_nodes, 3u);
  EXPECT_EQ(r.odd[0].cohort_nodes, 4u);
  // Digests biggest first; the server's Z is not an odd one out.
  ASSERT_EQ(r.digests.size(), 3u);
  EXPECT_EQ(r.digests[0].digest, kX);
  EXPECT_EQ(r.digests[0].nodes.size(), 3u);

  EXPECT_EQ(*RenderDrift(r, OutputFormat::kTable, Plain()),
            "3 configuration digests among 5 nodes, by role\n"
            "\n"
            "DIGEST        NODES  COHORTS     EXAMPLES\n"
            "aaaaaaaaaaaa      3  client (3)  c1, c2, c3\n"
            "bbbbbbbbbbbb      1  client (1)  c4\n"
            "cccccccccccc      1  server (1)  ntp\n"
            "\n"
            "1 odd one out (configuration differs from the most common of its "
            "role):\n"
            "NODE  COHORT  DIGEST        REFERENCE\n"
            "c4    client  bbbbbbbbbbbb  aaaaaaaaaaaa (3 of 4)\n");
}

TEST(DriftTest, SameConfigurationEverywhereIsNoDrift) {
  v1::Fleet f;
  Digest(AddNode(&f, "c1"), kX);
  Digest(AddNode(&f, "c2"), kX);
  Digest(Role(AddNode(&f, "ntp"), v1::ROLE_SERVER), kZ);
  const DriftReport r = FindDrift(All(f), "");
  EXPECT_FALSE(r.drift());
  EXPECT_THAT(*RenderDrift(r, OutputFormat::kTable, Plain()),
              HasSubstr("\nno drift: every node has the most common "
                        "configuration of its role\n"));
}

TEST(DriftTest, ATieHasNoReferenceAndNamesEveryNodeOfTheCohort) {
  v1::Fleet f;
  Digest(AddNode(&f, "c1"), kX);
  Digest(AddNode(&f, "c2"), kY);
  Digest(AddNode(&f, "c3"), kX);
  Digest(AddNode(&f, "c4"), kY);
  const DriftReport r = FindDrift(All(f), "");
  EXPECT_THAT(OddNames(r), ElementsAre("c1", "c2", "c3", "c4"));
  EXPECT_EQ(r.odd[0].reference, "");
  EXPECT_THAT(*RenderDrift(r, OutputFormat::kTable, Plain()),
              HasSubstr("c1    client  aaaaaaaaaaaa  none: the most common "
                        "digests tie\n"));
}

TEST(DriftTest, ByLabelComparesEachNodeWithItsLabelValue) {
  v1::Fleet f;
  // Rack a runs X (one Y); rack b runs Y: Y is only odd in rack a.
  Digest(Label(AddNode(&f, "a1"), "rack", "a"), kX);
  Digest(Label(AddNode(&f, "a2"), "rack", "a"), kX);
  Digest(Label(AddNode(&f, "a3"), "rack", "a"), kY);
  Digest(Label(AddNode(&f, "b1"), "rack", "b"), kY);
  Digest(Label(AddNode(&f, "b2"), "rack", "b"), kY);
  Digest(AddNode(&f, "loose1"), kZ);
  Digest(AddNode(&f, "loose2"), kZ);
  const DriftReport by_rack = FindDrift(All(f), "rack");
  EXPECT_EQ(by_rack.by, "label rack");
  EXPECT_THAT(OddNames(by_rack), ElementsAre("a3"));
  EXPECT_EQ(by_rack.odd[0].cohort, "rack=a");
  ASSERT_EQ(by_rack.cohorts.size(), 3u);
  EXPECT_EQ(by_rack.cohorts[0].name, "rack unset");  // sorted by name
  // By role, all seven are clients: Y (3) is the most common; X and Z odd.
  EXPECT_THAT(OddNames(FindDrift(All(f), "")),
              ElementsAre("a1", "a2", "loose1", "loose2"));
}

TEST(DriftTest, CsvAndJsonNameEveryNode) {
  v1::Fleet f = RoleFleet();
  AddNode(&f, "odd,name");  // no digest: its own digest "", a client
  const DriftReport r = FindDrift(All(f), "");
  const std::string csv = *RenderDrift(r, OutputFormat::kCsv, Plain());
  const std::vector<std::string> lines = absl::StrSplit(csv, '\n');
  ASSERT_EQ(lines.size(), 8u);  // header, 6 nodes, "" after the last '\n'
  EXPECT_EQ(lines[0], "node,cohort,config_digest,reference_digest,odd");
  EXPECT_EQ(lines[1], "c1,client," + kX + "," + kX + ",false");
  EXPECT_EQ(lines[4], "c4,client," + kY + "," + kX + ",true");
  EXPECT_EQ(lines[5], "\"odd,name\",client,," + kX + ",true");
  EXPECT_EQ(lines[6], "ntp,server," + kZ + "," + kZ + ",false");

  absl::StatusOr<std::string> json =
      RenderDrift(r, OutputFormat::kJson, Plain());
  ASSERT_THAT(json, IsOk());
  google::protobuf::Struct back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &back).ok())
      << *json;
  EXPECT_EQ(back.fields().at("by").string_value(), "role");
  EXPECT_EQ(back.fields().at("nodes").number_value(), 6);
  const auto& odd = back.fields().at("odd_ones_out").list_value();
  ASSERT_EQ(odd.values_size(), 2);
  EXPECT_EQ(odd.values(0).struct_value().fields().at("node").string_value(),
            "c4");
  EXPECT_EQ(odd.values(1).struct_value().fields().at("node").string_value(),
            "odd,name");
  EXPECT_EQ(odd.values(1)
                .struct_value()
                .fields()
                .at("reference_digest")
                .string_value(),
            kX);
  const auto& digests = back.fields().at("digests").list_value();
  EXPECT_EQ(digests.values(0)
                .struct_value()
                .fields()
                .at("config_digest")
                .string_value(),
            kX);
}

TEST(DriftTest, NoNodesToCompare) {
  const DriftReport r = FindDrift({}, "");
  EXPECT_FALSE(r.drift());
  EXPECT_EQ(r.nodes, 0u);
  EXPECT_THAT(r.odd, IsEmpty());
  EXPECT_EQ(*RenderDrift(r, OutputFormat::kTable, Plain()),
            "no nodes to compare\n");
}

}  // namespace
}  // namespace ntpfleet::ctl
