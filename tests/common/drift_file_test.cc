#include "common/drift_file.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fifo.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::clock {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::IsOkAndHolds;
using ::ntpfleet::testing::StatusIs;
using ::testing::AllOf;
using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// Each test gets its own empty directory under $TEST_TMPDIR.
class DriftFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr) << "run with `bazel test`";
    dir_ = absl::StrCat(
        tmp, "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    ASSERT_TRUE(std::filesystem::create_directory(dir_, ec))
        << dir_ << ": " << ec.message();
    path_ = dir_ + "/drift";
  }

  // The names in dir_, sorted.
  std::vector<std::string> ListDir() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir_, ec), end;
         !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    EXPECT_FALSE(ec) << ec.message();
    std::sort(names.begin(), names.end());
    return names;
  }

  void WriteRaw(const std::string& path, const std::string& content) const {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good()) << path;
  }

  std::string ReadRaw(const std::string& path) const {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
  }

  std::string dir_;
  std::string path_;
};

TEST_F(DriftFileTest, RoundTripsPositiveAndNegativeValues) {
  for (double ppm : {12.345, -12.345, 0.0, 0.001, -499.999, 500.0, -500.0}) {
    ASSERT_THAT(WriteDriftFile(path_, ppm), IsOk()) << ppm;
    EXPECT_THAT(ReadDriftFile(path_), IsOkAndHolds(DoubleEq(ppm)));
  }
}

TEST_F(DriftFileTest, WritesOneNumberWithThreeDecimalsLikeNtpd) {
  ASSERT_THAT(WriteDriftFile(path_, 12.345), IsOk());
  EXPECT_EQ(ReadRaw(path_), "12.345\n");
  ASSERT_THAT(WriteDriftFile(path_, -1.23456), IsOk());
  EXPECT_EQ(ReadRaw(path_), "-1.235\n");
}

TEST_F(DriftFileTest, WritesAWorldReadableFile) {
  ASSERT_THAT(WriteDriftFile(path_, 1), IsOk());
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(DriftFileTest, MissingFileIsNotFoundAndSaysStartingFromZeroIsFine) {
  EXPECT_THAT(ReadDriftFile(path_),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr(path_), HasSubstr("0 ppm is fine"))));
}

TEST_F(DriftFileTest, ReadsNtpdFileWithoutTrailingNewline) {
  WriteRaw(path_, "-3.250");
  EXPECT_THAT(ReadDriftFile(path_), IsOkAndHolds(DoubleEq(-3.25)));
}

TEST_F(DriftFileTest, IgnoresTrailingFieldsAsChronyWritesThem) {
  WriteRaw(path_, "12.3 0.05\n");
  EXPECT_THAT(ReadDriftFile(path_), IsOkAndHolds(DoubleEq(12.3)));
  // chrony's own "%20.6f %20.6f\n".
  WriteRaw(path_, "           -7.654321             0.012345\n");
  EXPECT_THAT(ReadDriftFile(path_), IsOkAndHolds(DoubleEq(-7.654321)));
}

// A FIFO would block open(2) until a writer came: the start hung forever.
TEST_F(DriftFileTest, FifoIsRefusedWithoutWaiting) {
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(::ntpfleet::testing::ReturnsWithoutWaiting(
                  fifo, [&] { return ReadDriftFile(fifo); }),
              StatusIs(kInvalid, HasSubstr(fifo + " is not a regular file")));
}

TEST_F(DriftFileTest, GarbageIsInvalidArgumentNamingPathAndLine) {
  for (const char* content :
       {"hello\n", "12,5\n", "0x\n", "12.3abc 1\n", "\n12.3\n", "", " \t\n"}) {
    WriteRaw(path_, content);
    EXPECT_THAT(ReadDriftFile(path_),
                StatusIs(kInvalid, HasSubstr(path_ + ":1:")))
        << "content: \"" << content << "\"";
  }
}

TEST_F(DriftFileTest, OutOfRangeIsInvalidArgument) {
  for (const char* content :
       {"600\n", "-500.001\n", "1e9\n", "nan\n", "inf\n", "-inf\n"}) {
    WriteRaw(path_, content);
    EXPECT_THAT(ReadDriftFile(path_),
                StatusIs(kInvalid, HasSubstr(path_ + ":1:")))
        << "content: \"" << content << "\"";
  }
  WriteRaw(path_, "600\n");
  EXPECT_THAT(ReadDriftFile(path_),
              StatusIs(kInvalid, HasSubstr("out of range")));
}

TEST_F(DriftFileTest, RefusesToWriteOutOfRangeValues) {
  EXPECT_THAT(WriteDriftFile(path_, 500.5),
              StatusIs(kInvalid, HasSubstr(path_)));
  EXPECT_THAT(WriteDriftFile(path_, std::numeric_limits<double>::infinity()),
              StatusIs(kInvalid, HasSubstr("out of range")));
  EXPECT_THAT(ListDir(), IsEmpty());
}

TEST_F(DriftFileTest, LeavesNoTemporaryFilesAfterSuccess) {
  for (double ppm : {1.0, 2.0, -3.0})
    ASSERT_THAT(WriteDriftFile(path_, ppm), IsOk());
  EXPECT_THAT(ListDir(), ElementsAre("drift"));
}

// A crash between writing the temporary file and renaming it leaves a partial
// PATH.tmp.XXXXXX next to the drift file. The reader must still see the old
// value, and the next write must work.
TEST_F(DriftFileTest, CrashWhileWritingLeavesOldValueReadable) {
  ASSERT_THAT(WriteDriftFile(path_, 12.345), IsOk());
  const std::string torn = path_ + ".tmp.Ab3dE9";
  WriteRaw(torn, "-4");  // the first bytes of "-42.500\n"

  EXPECT_THAT(ReadDriftFile(path_), IsOkAndHolds(DoubleEq(12.345)));

  ASSERT_THAT(WriteDriftFile(path_, -42.5), IsOk());
  EXPECT_THAT(ReadDriftFile(path_), IsOkAndHolds(DoubleEq(-42.5)));
  // Another writer's (or a dead one's) temporary file is not ours to delete.
  EXPECT_THAT(ListDir(), ElementsAre("drift", "drift.tmp.Ab3dE9"));
}

// A real failure in the middle of writing: the file-size limit lets the first 3
// bytes of the temporary file through and then fails the write with EFBIG,
// leaving it torn.
TEST_F(DriftFileTest, FailedWriteKeepsOldValueAndRemovesTemporaryFile) {
  ASSERT_THAT(WriteDriftFile(path_, 12.345), IsOk());

  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct rlimit limited = saved;
  limited.rlim_cur = 3;
  // Past the limit the kernel sends SIGXFSZ (default: terminate) before
  // returning EFBIG.
  struct sigaction ignore = {}, saved_action;
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &saved_action), 0);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  // Nothing else may write a file between these lines (not even a failing
  // EXPECT).
  const absl::Status failed = WriteDriftFile(path_, -123.456);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_EQ(sigaction(SIGXFSZ, &saved_action, nullptr), 0);

  EXPECT_THAT(failed,
              StatusIs(absl::StatusCode::kOutOfRange,
                       AllOf(HasSubstr(path_), HasSubstr("File too large"))));
  EXPECT_THAT(ReadDriftFile(path_), IsOkAndHolds(DoubleEq(12.345)));
  EXPECT_THAT(ListDir(), ElementsAre("drift"));

  ASSERT_THAT(WriteDriftFile(path_, -123.456), IsOk());
  EXPECT_THAT(ReadDriftFile(path_), IsOkAndHolds(DoubleEq(-123.456)));
}

TEST_F(DriftFileTest, FailedRenameRemovesTemporaryFile) {
  // A non-empty directory where the drift file should be: rename(2) over it
  // fails.
  ASSERT_TRUE(std::filesystem::create_directory(path_));
  WriteRaw(path_ + "/keep", "x");
  EXPECT_THAT(WriteDriftFile(path_, 1.5),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path_), HasSubstr("rename"))));
  EXPECT_THAT(ListDir(), ElementsAre("drift"));
}

TEST_F(DriftFileTest, WritingIntoMissingDirectoryNamesThePath) {
  const std::string path = dir_ + "/no/such/dir/drift";
  EXPECT_THAT(
      WriteDriftFile(path, 1.5),
      StatusIs(absl::StatusCode::kNotFound,
               AllOf(HasSubstr(path), HasSubstr("No such file or directory"))));
  EXPECT_THAT(ListDir(), IsEmpty());
}

}  // namespace
}  // namespace ntpfleet::clock
