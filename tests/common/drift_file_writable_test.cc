// CheckDriftFileWritable(): the agent learns at start, not an hour later or at
// exit, that its drift file cannot be written, and the message says the fix.
// The cases hold for root too (mode bits do not stop root; a missing
// directory, a file in the way or a directory as the path do); the read-only
// directory case asks the kernel, so it expects what this uid really gets.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/drift_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::clock {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

class DriftFileWritableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr) << "run with `bazel test`";
    dir_ = absl::StrCat(
        tmp, "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    ASSERT_TRUE(std::filesystem::create_directory(dir_, ec)) << ec.message();
  }
  void TearDown() override {
    chmod(dir_.c_str(), 0755);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool Empty(const std::string& dir) const {
    return std::filesystem::is_empty(dir);
  }
  std::string dir_;
};

TEST_F(DriftFileWritableTest, AWritableDirectoryPassesAndIsLeftAsItWas) {
  EXPECT_THAT(CheckDriftFileWritable(dir_ + "/drift"), IsOk());
  EXPECT_TRUE(Empty(dir_));  // the probe file is gone
  // An existing drift file is not touched.
  std::ofstream(dir_ + "/drift") << "1.500\n";
  EXPECT_THAT(CheckDriftFileWritable(dir_ + "/drift"), IsOk());
  EXPECT_EQ(std::filesystem::file_size(dir_ + "/drift"), 6u);
}

TEST_F(DriftFileWritableTest, AMissingDirectoryNamesItAndTheFix) {
  const std::string path = dir_ + "/no/such/drift";
  EXPECT_THAT(CheckDriftFileWritable(path),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("drift file " + path +
                                       ": the directory " + dir_ +
                                       "/no/such does not exist: create it "
                                       "(mkdir -p " +
                                       dir_ + "/no/such"),
                             HasSubstr("written hourly and at exit"))));
}

TEST_F(DriftFileWritableTest, AFileInThePathIsNamed) {
  std::ofstream(dir_ + "/file") << "x";
  EXPECT_THAT(CheckDriftFileWritable(dir_ + "/file/drift"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(dir_ + "/file is not a directory")));
}

TEST_F(DriftFileWritableTest, ADirectoryAsThePathIsNamed) {
  ASSERT_TRUE(std::filesystem::create_directory(dir_ + "/drift"));
  EXPECT_THAT(
      CheckDriftFileWritable(dir_ + "/drift"),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               HasSubstr("drift file " + dir_ + "/drift is a directory")));
}

// Mode 0555: the check is the kernel's answer for this process, so root (whom
// mode bits do not stop) passes — and really can write there — and anyone else
// gets the permissions message.
TEST_F(DriftFileWritableTest, AReadOnlyDirectoryIsWhatTheKernelSays) {
  const std::string ro = dir_ + "/ro";
  ASSERT_TRUE(std::filesystem::create_directory(ro));
  ASSERT_EQ(chmod(ro.c_str(), 0555), 0);
  const absl::Status check = CheckDriftFileWritable(ro + "/drift");
  const absl::Status write = WriteDriftFile(ro + "/drift", 1.0);
  EXPECT_EQ(check.ok(), write.ok()) << check << " / " << write;
  if (geteuid() == 0) {
    EXPECT_THAT(check, IsOk());
  } else {
    EXPECT_THAT(check,
                StatusIs(absl::StatusCode::kPermissionDenied,
                         AllOf(HasSubstr("cannot create a file in " + ro +
                                         " (Permission denied, as uid "),
                               HasSubstr("fix the directory's permissions"))));
  }
  chmod(ro.c_str(), 0755);
}

}  // namespace
}  // namespace ntpfleet::clock
