// Guards the project's first rule: no test may be able to move this machine's
// clock. Every test runs through //tools:no_sys_time (see .bazelrc); this test
// fails if that ever stops working.
#include <cstdint>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace ntpfleet {
namespace {

constexpr int kCapSysTime = 25;  // linux/capability.h

// A field of /proc/self/status, e.g. "CapBnd" -> "000001ffffffffff".
std::string StatusField(absl::string_view name) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    if (kv.first == name)
      return std::string(absl::StripAsciiWhitespace(kv.second));
  }
  ADD_FAILURE() << name << " not found in /proc/self/status";
  return "";
}

bool HasCap(absl::string_view hex_mask, int cap) {
  uint64_t mask = 0;
  EXPECT_TRUE(absl::SimpleHexAtoi(hex_mask, &mask)) << hex_mask;
  return (mask >> cap) & 1;
}

TEST(NoSysTimeTest, TestProcessCannotSetTheClock) {
  EXPECT_FALSE(HasCap(StatusField("CapEff"), kCapSysTime))
      << "CAP_SYS_TIME is effective";
  EXPECT_FALSE(HasCap(StatusField("CapPrm"), kCapSysTime))
      << "CAP_SYS_TIME is permitted";
  EXPECT_FALSE(HasCap(StatusField("CapInh"), kCapSysTime))
      << "CAP_SYS_TIME is inheritable";
  // Nothing this process runs may gain it: either it is gone from the bounding
  // set (root), or no_new_privs blocks file capabilities (non-root).
  EXPECT_TRUE(!HasCap(StatusField("CapBnd"), kCapSysTime) ||
              StatusField("NoNewPrivs") == "1")
      << "a child could regain CAP_SYS_TIME";
}

}  // namespace
}  // namespace ntpfleet
