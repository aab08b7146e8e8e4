#include "common/log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

// What LogLine writes to stderr (fd 2), captured in a temporary file.
std::string Logged(LogLevel level, absl::string_view message) {
  char path[] = "/tmp/ntpfleet-log-test.XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  unlink(path);
  const int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  LogLine(level, message);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, n);
  close(fd);
  return out;
}

// A file name or a config token with ESC or NUL in it used to reach the
// terminal raw: ESC [ 3 1 m turned the terminal red, a NUL hid the rest of
// the line, a newline forged a log line. Each is written \xNN.
TEST(LogTest, EscapesControlCharactersAndInvalidUtf8) {
  static constexpr char kMessage[] =
      "a\x1b[31mb\0c\nERROR forged\x7f\xff\xc2\x9b";
  const std::string line =
      Logged(LogLevel::kWarning, std::string(kMessage, sizeof(kMessage) - 1));
  EXPECT_THAT(line, HasSubstr("WARN  ntpfleet: "
                              "a\\x1b[31mb\\x00c\\x0aERROR forged\\x7f\\xff"
                              "\\xc2\\x9b\n"));
  EXPECT_EQ(line.find('\x1b'), std::string::npos);
  EXPECT_EQ(line.find('\0'), std::string::npos);
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
}

TEST(LogTest, KeepsTabsAndUtf8) {
  EXPECT_THAT(
      Logged(LogLevel::kInfo, "caf\xc3\xa9\t\xe2\x82\xac \xf0\x9f\x95\x92"),
      EndsWith("caf\xc3\xa9\t\xe2\x82\xac \xf0\x9f\x95\x92\n"));
}

}  // namespace
}  // namespace ntpfleet
