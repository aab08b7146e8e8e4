// The writer: creates the directory and the segment atomically, reuses a valid
// segment in place across restarts (a reader that mapped it keeps reading),
// replaces anything else, refuses a second writer, and keeps the generation
// protocol (odd while writing, never 0 after a wrap).
#include "clockbound/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "clockbound/reader.h"
#include "clockbound/segment.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::clockbound {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::HasSubstr;

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

Segment ReadFile(const std::string& path) {
  Segment s{};
  const int fd = open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(pread(fd, &s, sizeof(s), 0), static_cast<ssize_t>(sizeof(s)));
  close(fd);
  return s;
}

Contents WithBound(int64_t bound) {
  Contents c;
  c.as_of = {10, 0};
  c.void_after = {1010, 0};
  c.bound_ns = bound;
  c.max_drift_ppb = 15'000;
  c.status = ClockStatus::kSynchronized;
  return c;
}

TEST(WriterTest, CreatesDirectoryAndSegment) {
  const std::string path = TempDir() + "/a/b/shm0";
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  EXPECT_FALSE((*w)->reused());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(kSegmentSize));
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  Segment s = ReadFile(path);
  EXPECT_EQ(std::memcmp(s.v2.magic, kMagicBytes, 8), 0);
  EXPECT_EQ(s.v2.version, 2);
  EXPECT_EQ(s.v2.segment_size, kSegmentSize);
  EXPECT_EQ(s.v2.generation, 0);  // not yet written
  (*w)->Write(WithBound(1234));
  s = ReadFile(path);
  EXPECT_EQ(s.v2.generation, 2);
  EXPECT_EQ(s.v2.bound_ns, 1234);
  EXPECT_EQ(s.v2.max_drift_ppb, 15'000u);
  EXPECT_EQ(s.v2.clock_status, 1);
  EXPECT_EQ(std::memcmp(s.ext.magic, kExtensionMagicBytes, 8), 0);
  EXPECT_EQ(s.ext.flags, 0u);
}

TEST(WriterTest, ReusesAValidSegmentInPlaceAcrossRestarts) {
  const std::string path = TempDir() + "/reuse";
  auto first = Writer::Open(path);
  ASSERT_THAT(first.status(), IsOk());
  (*first)->Write(WithBound(1));
  struct stat before {};
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  auto reader = Reader::Open(path);  // mapped before the "restart"
  ASSERT_THAT(reader.status(), IsOk());
  first->reset();  // the agent stops

  auto second = Writer::Open(path);
  ASSERT_THAT(second.status(), IsOk());
  EXPECT_TRUE((*second)->reused());
  struct stat after {};
  ASSERT_EQ(stat(path.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);  // the same file, not a new one
  (*second)->Write(WithBound(2));
  Segment s;
  ASSERT_TRUE(reader->TryRead(&s, 10));
  EXPECT_EQ(s.v2.bound_ns, 2);    // the old mapping sees the new writer
  EXPECT_EQ(s.v2.generation, 4);  // continued, not restarted
}

TEST(WriterTest, ReplacesAnInvalidFile) {
  const std::string path = TempDir() + "/garbage";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "foobarbaz", 9), 9);
  close(fd);
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  EXPECT_FALSE((*w)->reused());
  (*w)->Write(WithBound(5));
  auto r = Reader::Open(path);
  ASSERT_THAT(r.status(), IsOk());
  Segment s;
  ASSERT_TRUE(r->TryRead(&s, 10));
  EXPECT_EQ(s.v2.bound_ns, 5);
}

TEST(WriterTest, RefusesASecondWriter) {
  const std::string path = TempDir() + "/twice";
  auto first = Writer::Open(path);
  ASSERT_THAT(first.status(), IsOk());
  EXPECT_THAT(
      Writer::Open(path).status(),
      StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("another writer")));
}

TEST(WriterTest, FailsWithTheFixWhenTheDirectoryCannotBeMade) {
  if (geteuid() == 0) GTEST_SKIP() << "root may write anywhere";
  EXPECT_THAT(Writer::Open("/proc/no/such/shm0").status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("clockbound_shm")));
}

TEST(WriterTest, GenerationWrapsToTwoNeverZero) {
  const std::string path = TempDir() + "/wrap";
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  // 32767 writes take the generation from 0 to 65534; the next one wraps.
  for (int i = 0; i < 32767; ++i) (*w)->Write(WithBound(i));
  EXPECT_EQ((*w)->generation(), 65534);
  (*w)->Write(WithBound(1));
  EXPECT_EQ((*w)->generation(), 2);
}

TEST(WriterTest, CompletesAGenerationLeftOddByADeadWriter) {
  const std::string path = TempDir() + "/odd";
  {
    auto w = Writer::Open(path);
    ASSERT_THAT(w.status(), IsOk());
    (*w)->Write(WithBound(1));  // generation 2
  }
  // A writer killed mid-update left generation 3.
  const int fd = open(path.c_str(), O_WRONLY);
  const uint16_t odd = 3;
  ASSERT_EQ(pwrite(fd, &odd, 2, 14), 2);
  close(fd);
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  EXPECT_TRUE((*w)->reused());
  (*w)->Write(WithBound(2));
  EXPECT_EQ((*w)->generation(), 4);
}

}  // namespace
}  // namespace ntpfleet::clockbound
