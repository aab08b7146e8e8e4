// The reader: ClockBound's client arithmetic (drift growth, the restart grace,
// void_after), the header checks, and the seqlock under a concurrent writer.
#include "clockbound/reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clockbound/segment.h"
#include "clockbound/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::clockbound {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int64_t kSec = 1'000'000'000;

class FakeTime : public TimeSource {
 public:
  int64_t RealtimeNs() const override { return real; }
  int64_t MonotonicNs() const override { return mono; }
  int64_t MonotonicCoarseNs() const override { return mono; }
  int64_t real = 1'700'000'000 * kSec;
  int64_t mono = 100 * kSec;
};

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

Contents Synced(int64_t as_of_s, int64_t bound_ns, uint32_t ppb) {
  Contents c;
  c.as_of = {as_of_s, 0};
  c.void_after = {as_of_s + 1000, 0};
  c.bound_ns = bound_ns;
  c.max_drift_ppb = ppb;
  c.status = ClockStatus::kSynchronized;
  return c;
}

TEST(ReaderTest, BoundGrowsWithMaxDriftSinceAsOf) {
  const std::string path = TempPath("grow");
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  (*w)->Write(Synced(100, 10'000, 1000));  // 10 µs, 1 ppm
  FakeTime t;
  t.mono = 102 * kSec;  // 2 s later: +2 µs
  auto r = Reader::Open(path, &t);
  ASSERT_THAT(r.status(), IsOk());
  auto now = r->Now();
  ASSERT_THAT(now.status(), IsOk());
  EXPECT_EQ(now->bound, absl::Nanoseconds(12'000));
  EXPECT_EQ(now->earliest, absl::FromUnixNanos(t.real - 12'000));
  EXPECT_EQ(now->latest, absl::FromUnixNanos(t.real + 12'000));
  EXPECT_EQ(now->status, ClockStatus::kSynchronized);
  EXPECT_EQ(now->as_of_age, absl::Seconds(2));
  EXPECT_FALSE(now->simulated);
}

TEST(ReaderTest, StatusFreeRunningAfterGraceAndUnknownPastVoidAfter) {
  const std::string path = TempPath("void");
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  Contents c = Synced(100, 1000, 15'000);
  c.void_after = {110, 0};
  (*w)->Write(c);
  FakeTime t;
  auto r = Reader::Open(path, &t);
  ASSERT_THAT(r.status(), IsOk());
  t.mono = 104 * kSec + 999'999'999;  // within ClockBound's 5 s grace
  EXPECT_EQ(r->Now()->status, ClockStatus::kSynchronized);
  t.mono = 105 * kSec;  // no update for 5 s: the writer may be gone
  EXPECT_EQ(r->Now()->status, ClockStatus::kFreeRunning);
  t.mono = 109 * kSec + 999'999'999;
  EXPECT_EQ(r->Now()->status, ClockStatus::kFreeRunning);
  t.mono = 110 * kSec;  // void
  auto now = r->Now();
  EXPECT_EQ(now->status, ClockStatus::kUnknown);
  EXPECT_LE(now->void_in, absl::ZeroDuration());
  // Written unknown stays unknown, whatever the age.
  c.status = ClockStatus::kUnknown;
  (*w)->Write(c);
  t.mono = 100 * kSec;
  EXPECT_EQ(r->Now()->status, ClockStatus::kUnknown);
}

TEST(ReaderTest, RejectsAsOfInTheFutureBeyondTheBlur) {
  const std::string path = TempPath("future");
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  (*w)->Write(Synced(100, 1000, 1000));
  FakeTime t;
  t.mono = 100 * kSec - 500'000;  // 0.5 ms early: coarse clock lag, tolerated
  auto r = Reader::Open(path, &t);
  ASSERT_THAT(r.status(), IsOk());
  auto now = r->Now();
  ASSERT_THAT(now.status(), IsOk());
  EXPECT_EQ(now->bound, absl::Nanoseconds(1000));
  t.mono = 99 * kSec;
  EXPECT_THAT(r->Now().status(), StatusIs(absl::StatusCode::kDataLoss,
                                          HasSubstr("ahead of this machine")));
}

TEST(ReaderTest, RejectsMalformedMaxDrift) {
  const std::string path = TempPath("drift");
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  (*w)->Write(Synced(100, 1000, 1'000'000'000));
  FakeTime t;
  auto r = Reader::Open(path, &t);
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_THAT(r->Now().status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("max drift")));
}

TEST(ReaderTest, SimulatedExtensionReadsMonotonicPlusOffset) {
  const std::string path = TempPath("sim");
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  Contents c = Synced(100, 5000, 0);
  c.simulated = true;
  c.clock_minus_monotonic_ns = 1'600'000'000 * kSec;
  (*w)->Write(c);
  FakeTime t;
  t.mono = 100 * kSec;
  auto r = Reader::Open(path, &t);
  ASSERT_THAT(r.status(), IsOk());
  auto now = r->Now();
  ASSERT_THAT(now.status(), IsOk());
  EXPECT_TRUE(now->simulated);
  EXPECT_EQ(now->clock, absl::FromUnixNanos(1'600'000'100 * kSec));
  EXPECT_EQ(now->earliest, absl::FromUnixNanos(1'600'000'100 * kSec - 5000));
}

void WriteRaw(const std::string& path, const void* data, size_t n) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, data, n), static_cast<ssize_t>(n));
  close(fd);
}

TEST(ReaderTest, RejectsBadMagicVersionAndSize) {
  Segment s{};
  std::memcpy(s.v2.magic, kMagicBytes, 8);
  s.v2.version = 2;
  s.v2.segment_size = kV2Size;
  s.v2.generation = 2;
  const std::string path = TempPath("bad");

  Segment bad_magic = s;
  bad_magic.v2.magic[0] = 'X';
  WriteRaw(path, &bad_magic, kV2Size);
  EXPECT_THAT(Reader::Open(path).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("magic")));

  Segment v1 = s;
  v1.v2.version = 1;
  WriteRaw(path, &v1, kV2Size);
  EXPECT_THAT(
      Reader::Open(path).status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("version 1")));

  Segment big = s;
  big.v2.segment_size = 4096;  // beyond the file
  WriteRaw(path, &big, kV2Size);
  EXPECT_THAT(Reader::Open(path).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("segment size")));

  WriteRaw(path, &s, 40);  // truncated
  EXPECT_THAT(Reader::Open(path).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("40 bytes")));

  EXPECT_THAT(Reader::Open(TempPath("none")).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("none")));

  // A plain v2 segment (80 bytes, as ClockBound's daemon writes) reads, with
  // no extension.
  s.v2.as_of = {100, 0};
  s.v2.void_after = {200, 0};
  s.v2.bound_ns = 7;
  s.v2.clock_status = 1;
  WriteRaw(path, &s, kV2Size);
  FakeTime t;
  auto r = Reader::Open(path, &t);
  ASSERT_THAT(r.status(), IsOk());
  auto now = r->Now();
  ASSERT_THAT(now.status(), IsOk());
  EXPECT_EQ(now->bound, absl::Nanoseconds(7));
  EXPECT_FALSE(now->simulated);
}

TEST(ReaderTest, NeverWrittenSegmentIsAnError) {
  const std::string path = TempPath("fresh");
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  auto r = Reader::Open(path);
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_THAT(r->Now().status(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                          HasSubstr("generation 0")));
}

// A writer updates as fast as it can while the reader reads: every snapshot
// the reader accepts is one the writer wrote whole. Each update writes one
// value k into every field (bound = k, as_of.sec = k, ...), so a torn read
// shows as fields that disagree. A reader with no generation check fails this
// within a few thousand reads.
TEST(ReaderTest, SeqlockNeverReturnsATornSnapshot) {
  const std::string path = TempPath("race");
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  Contents c;
  c.as_of = {1, 1};
  c.void_after = {1, 1};
  c.bound_ns = 1;
  c.disruption_marker = 1;
  c.max_drift_ppb = 1;
  (*w)->Write(c);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int64_t k = 2; !stop.load(std::memory_order_relaxed); ++k) {
      c.as_of = {k, k % 1'000'000'000};
      c.void_after = {k, k % 1'000'000'000};
      c.bound_ns = k;
      c.disruption_marker = static_cast<uint64_t>(k);
      c.max_drift_ppb = static_cast<uint32_t>(k);
      (*w)->Write(c);
    }
  });
  auto r = Reader::Open(path);
  ASSERT_THAT(r.status(), IsOk());
  int read = 0, generations_seen = 0;
  uint16_t last_gen = 0;
  // At least 200 000 reads, and on until the writer has been seen to run
  // (a loaded machine may schedule it late), for at most 60 s.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (int i = 0; i < 200'000 || ((read <= 1000 || generations_seen <= 10) &&
                                  absl::Now() < deadline);
       ++i) {
    Segment s;
    if (!r->TryRead(&s, 1000)) continue;
    ++read;
    if (s.v2.generation != last_gen) ++generations_seen;
    last_gen = s.v2.generation;
    const int64_t k = s.v2.bound_ns;
    ASSERT_EQ(s.v2.as_of.sec, k);
    ASSERT_EQ(s.v2.as_of.nsec, k % 1'000'000'000);
    ASSERT_EQ(s.v2.void_after.sec, k);
    ASSERT_EQ(s.v2.disruption_marker, static_cast<uint64_t>(k));
    ASSERT_EQ(s.v2.max_drift_ppb, static_cast<uint32_t>(k));
    ASSERT_EQ(s.v2.generation % 2, 0);
  }
  stop = true;
  writer.join();
  EXPECT_GT(read, 1000);
  // The writer really ran concurrently (else the test proves nothing).
  EXPECT_GT(generations_seen, 10);
}

TEST(ReaderTest, NowReadsTheRealClocks) {
  const std::string path = TempPath("real");
  auto w = Writer::Open(path);
  ASSERT_THAT(w.status(), IsOk());
  timespec mono;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &mono);
  Contents c = Synced(mono.tv_sec, 1'000'000, 15'000);
  c.as_of = {mono.tv_sec, mono.tv_nsec};
  c.void_after = {mono.tv_sec + 1000, mono.tv_nsec};
  (*w)->Write(c);
  auto r = Reader::Open(path);
  ASSERT_THAT(r.status(), IsOk());
  const absl::Time before = absl::Now();
  auto now = r->Now();
  const absl::Time after = absl::Now();
  ASSERT_THAT(now.status(), IsOk());
  EXPECT_GE(now->clock, before);
  EXPECT_LE(now->clock, after);
  EXPECT_GE(now->bound, absl::Milliseconds(1));
  EXPECT_LT(now->bound, absl::Milliseconds(2));
}

}  // namespace
}  // namespace ntpfleet::clockbound
