#include "common/files.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet {
namespace {

using ::testing::HasSubstr;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/files_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
  }
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    DIR* d = opendir(dir_.c_str());
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    closedir(d);
    return out;
  }
  std::string dir_;
};

TEST_F(FilesTest, ReadsARegularFile) {
  std::ofstream(dir_ + "/a") << "hello\n";
  absl::StatusOr<std::string> text = ReadFile(dir_ + "/a");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "hello\n");
}

// A FIFO with no writer would block open(2) and read(2) forever: refused at
// once instead (were it not, this test would hang until Bazel's timeout).
TEST_F(FilesTest, RefusesAFifoWithoutWaiting) {
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  absl::StatusOr<std::string> text = ReadFile(fifo);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(text.status().message(),
              HasSubstr("cannot read " + fifo + ": not a regular file"));
}

TEST_F(FilesTest, NamesADirectoryAndAMissingFile) {
  EXPECT_THAT(ReadFile(dir_).status().message(), HasSubstr("Is a directory"));
  EXPECT_EQ(ReadFile(dir_ + "/missing").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadFile(dir_ + "/missing/below").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(FilesTest, RefusesAFileLargerThanTheLimit) {
  std::ofstream(dir_ + "/big") << std::string(100, 'x');
  EXPECT_THAT(ReadFile(dir_ + "/big", 99).status().message(),
              HasSubstr("larger than 99 bytes"));
  EXPECT_TRUE(ReadFile(dir_ + "/big", 100).ok());
}

TEST_F(FilesTest, WritesAtomicallyWithTheModeAndNoTemporaryLeft) {
  const std::string path = dir_ + "/out.conf";
  std::ofstream(path) << "old\n";
  ASSERT_TRUE(WriteFileAtomically(path, "new contents\n", 0640).ok());
  EXPECT_EQ(*ReadFile(path), "new contents\n");
  struct stat st = {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_THAT(Entries(), ::testing::ElementsAre("out.conf"));
}

TEST_F(FilesTest, WriteIntoAMissingDirectoryNamesIt) {
  const absl::Status s =
      WriteFileAtomically(dir_ + "/nowhere/out.conf", "x", 0644);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(dir_ + "/nowhere"));
}

// rename(2) over a directory fails: the old entry stays and the temporary
// file is removed.
TEST_F(FilesTest, AFailedRenameLeavesNoTemporaryFile) {
  ASSERT_EQ(mkdir((dir_ + "/target").c_str(), 0755), 0);
  const absl::Status s = WriteFileAtomically(dir_ + "/target", "x", 0644);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("cannot rename"));
  EXPECT_THAT(Entries(), ::testing::ElementsAre("target"));
}

}  // namespace
}  // namespace ntpfleet
