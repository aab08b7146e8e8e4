#include "agent/config/keys_file.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fifo.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::config {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

class KeysFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr) << "run with `bazel test`";
    dir_ = absl::StrCat(
        tmp, "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    ASSERT_TRUE(std::filesystem::create_directories(dir_ + "/d", ec));
  }
  // Writes `text` to dir_/name with `mode`; returns the path.
  std::string Write(const std::string& name, const std::string& text,
                    mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }
  // The configuration `text` (its `keys` line naming paths under dir_).
  AgentConfig Config(const std::string& text) {
    absl::StatusOr<AgentConfig> c =
        ParseConfig(text, "agent.conf", NoIncludeFiles());
    EXPECT_THAT(c, IsOk());
    return c.ok() ? *c : AgentConfig();
  }
  std::string dir_;
};

TEST_F(KeysFileTest, ReadsKeysWithoutWarningsWhenPrivate) {
  const std::string path = Write("ntp.keys", "1 MD5 secret\n", 0640);
  absl::StatusOr<LoadedKeys> keys =
      LoadKeysFile(Config("server 10.0.0.1 key 1\nkeys " + path + "\n"));
  ASSERT_THAT(keys, IsOk());
  EXPECT_NE(keys->keys.Find(1), nullptr);
  EXPECT_THAT(keys->warnings, IsEmpty());
}

// Mode 0644 or 0666 let every local user read the secrets: said at start
// (and by --check-config), with the fix.
TEST_F(KeysFileTest, WarnsWhenOthersCanReadTheKeys) {
  const std::string path = Write("ntp.keys", "1 MD5 secret\n", 0644);
  absl::StatusOr<LoadedKeys> keys =
      LoadKeysFile(Config("# k\nkeys " + path + "\n"));
  ASSERT_THAT(keys, IsOk());
  EXPECT_THAT(keys->warnings, ElementsAre(absl::StrCat(
                                  "agent.conf:2: keys file ", path,
                                  ": mode 0644: others can read the keys; "
                                  "chmod 600 ",
                                  path, " (or 640 with the agent's group)")));
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  keys = LoadKeysFile(Config("keys " + path + "\n"));
  ASSERT_THAT(keys, IsOk());
  EXPECT_THAT(keys->warnings,
              ElementsAre(HasSubstr("others can read and change the keys")));
}

// "not a regular file" alone did not say which line of which file named it.
TEST_F(KeysFileTest, DirectoryOrFifoNamesTheKeysLine) {
  EXPECT_THAT(LoadKeysFile(Config("server 10.0.0.1\nkeys " + dir_ + "/d\n")),
              StatusIs(kInvalid, HasSubstr("agent.conf:2: keys file " + dir_ +
                                           "/d: cannot read " + dir_ +
                                           "/d: not a regular file (a "
                                           "directory)")));
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const AgentConfig config = Config("keys " + fifo + "\n");
  EXPECT_THAT(::ntpfleet::testing::ReturnsWithoutWaiting(
                  fifo, [&] { return LoadKeysFile(config); }),
              StatusIs(kInvalid, HasSubstr("agent.conf:1: keys file " + fifo +
                                           ": cannot read " + fifo +
                                           ": not a regular file (a FIFO)")));
}

TEST_F(KeysFileTest, MissingFileIsAWarningUnlessAServerNeedsAKey) {
  const std::string missing = dir_ + "/none.keys";
  absl::StatusOr<LoadedKeys> keys =
      LoadKeysFile(Config("keys " + missing + "\n"));
  ASSERT_THAT(keys, IsOk());
  EXPECT_THAT(keys->warnings,
              ElementsAre(AllOf(HasSubstr("agent.conf:1: keys file " + missing),
                                HasSubstr("symmetric keys unavailable"))));
  EXPECT_THAT(
      LoadKeysFile(Config("keys " + missing + "\nserver 10.0.0.1 key 3\n")),
      StatusIs(kInvalid, HasSubstr("agent.conf:2: server 10.0.0.1 uses key 3, "
                                   "which is not in the keys file")));
}

TEST_F(KeysFileTest, MalformedFileErrorsNameTheKeysFileLine) {
  const std::string path =
      Write("ntp.keys", "1 MD5 a\n2 MD5 b\n1 SHA1 c\n", 0600);
  EXPECT_THAT(LoadKeysFile(Config("keys " + path + "\n")),
              StatusIs(kInvalid, HasSubstr(path + ":3: key id 1 given twice")));
  // The keys file's own bytes may be anything: escaped in the message.
  Write("ntp.keys", "1 \x1b[31m abc\n", 0600);
  EXPECT_THAT(
      LoadKeysFile(Config("keys " + path + "\n")),
      StatusIs(kInvalid, HasSubstr("unsupported key type '\\x1b[31m'")));
}

}  // namespace
}  // namespace ntpfleet::config
