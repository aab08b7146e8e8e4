#include "common/flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(bool, test_step, true, "a yes/no flag");
ABSL_FLAG(int, test_port, 123, "a number");
ABSL_FLAG(std::string, test_config, "/etc/x.conf", "a path");
ABSL_FLAG(std::string, test_empty, "", "no default");

namespace ntpfleet {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string Check(std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  return FlagUsageError(args);
}

TEST(FlagUsageErrorTest, AcceptsWhatAbseilAccepts) {
  EXPECT_THAT(Check({}), IsEmpty());
  EXPECT_THAT(Check({"--test_step", "--notest_step", "--test_step=false",
                     "-test_port=7", "--test_port", "8", "--test_config", "/a",
                     "positional", "-", "--test_empty="}),
              IsEmpty());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_port), 8);
  // A yes/no flag takes no following argument: "maybe" is positional.
  EXPECT_THAT(Check({"--test_step", "maybe"}), IsEmpty());
}

TEST(FlagUsageErrorTest, AbseilsHelpAndVersionFlagsAreKnown) {
  // Not registered flags: Abseil's parser knows them by name.
  for (const char* arg : {"--help", "--helpfull", "--helpshort",
                          "--helppackage", "--version", "--only_check_args",
                          "--helpon=flags", "--helpmatch=port", "-version"}) {
    EXPECT_THAT(Check({arg}), IsEmpty()) << arg;
  }
  EXPECT_EQ(Check({"--helpme"}), "unknown flag --helpme; did you mean --help?");
}

TEST(FlagUsageErrorTest, NothingAfterDoubleDashIsAFlag) {
  EXPECT_THAT(Check({"--", "--bogus", "-5s"}), IsEmpty());
}

TEST(FlagUsageErrorTest, UnknownFlagIsNamedAsTheUserWritesIt) {
  EXPECT_EQ(Check({"--no_such_flag=1"}), "unknown flag --no-such-flag");
  EXPECT_EQ(Check({"-bogus"}), "unknown flag --bogus");
  // "--no" only negates yes/no flags.
  EXPECT_EQ(Check({"--notest_port"}), "unknown flag --notest-port");
  EXPECT_EQ(Check({"--notest_step=true"}), "unknown flag --notest-step");
  // A negative number where a flag may stand is read as a flag, as Abseil
  // reads it: the error says so rather than Abseil's exit 1.
  EXPECT_EQ(Check({"-5s"}),
            "unknown flag --5s; a negative value goes after --, e.g. -- -5s");
}

TEST(FlagUsageErrorTest, BadValueShowsAValidExample) {
  EXPECT_EQ(Check({"--test_step=maybe"}),
            "--test-step=maybe: not a value this flag takes, e.g. "
            "--test-step=true");
  EXPECT_EQ(Check({"--test_port", "banana"}),
            "--test-port=banana: not a value this flag takes, e.g. "
            "--test-port=123");
  EXPECT_EQ(Check({"--test_port=99999999999"}),
            "--test-port=99999999999: not a value this flag takes, e.g. "
            "--test-port=123");
}

TEST(FlagUsageErrorTest, MissingValueIsNamed) {
  EXPECT_EQ(Check({"--test_config"}),
            "--test-config needs a value, e.g. --test-config=/etc/x.conf");
  EXPECT_EQ(Check({"--test_empty"}), "--test-empty needs a value");
}

TEST(FlagUsageErrorTest, UndefokLeavesUnknownNamesToAbseil) {
  EXPECT_THAT(Check({"--undefok=bogus", "--bogus"}), IsEmpty());
}

TEST(FlagUsageErrorTest, FlagfileIsLeftToAbseil) {
  EXPECT_THAT(Check({"--flagfile", "/nonexistent", "--test_step"}), IsEmpty());
}

}  // namespace
}  // namespace ntpfleet
