// ctl/cmd_now.h: `ntpfleetctl now --output json` stays JSON whatever the
// segment's path holds (a quote, a backslash, a newline): parsed back with
// protobuf's JSON parser. Before the path was escaped, the output here did not
// parse.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <string>

#include "absl/time/time.h"
#include "clockbound/reader.h"
#include "ctl/cmd_now.h"
#include "gtest/gtest.h"

namespace ntpfleet::ctl {
namespace {

TEST(RenderNowTest, JsonEscapesThePath) {
  clockbound::BoundedTime t;
  t.clock = absl::FromUnixSeconds(1'795'650'070);
  t.bound = absl::Microseconds(150);
  t.earliest = t.clock - t.bound;
  t.latest = t.clock + t.bound;
  t.status = clockbound::ClockStatus::kSynchronized;
  const std::string path = "/tmp/a\"b\\c\nd";
  const std::string json = RenderNow(t, path, /*json=*/true);
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok())
      << json;
  EXPECT_EQ(parsed.fields().at("path").string_value(), path);
  EXPECT_EQ(parsed.fields().at("status").string_value(), "synchronized");
}

}  // namespace
}  // namespace ntpfleet::ctl
