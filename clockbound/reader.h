// Reads a ClockBound shared memory segment (protocol v2, segment.h): "now is
// between earliest and latest", with the clock's status, as ClockBound's own
// client computes it:
//   bound(now) = bound + (now_mono_coarse - as_of) * max_drift
//   [earliest, latest] = CLOCK_REALTIME -/+ bound(now)
// and the status as written while as_of is less than 5 s old (the daemon's
// restart grace), free running after that while void_after is ahead, unknown
// past void_after. With ntpfleet's extension's simulated flag (segment.h) the
// clock read is CLOCK_MONOTONIC + clock_minus_monotonic instead of
// CLOCK_REALTIME.
//
// Any writer of the protocol works: ntpfleet-agent (`clockbound_shm`) or
// ClockBound's daemon.
//
//   absl::StatusOr<clockbound::Reader> reader =
//       clockbound::Reader::Open("/var/run/clockbound/shm0");
//   if (!reader.ok()) ...;   // missing file, not a v2 segment: the message
//   says absl::StatusOr<clockbound::BoundedTime> now = reader->Now(); if
//   (now.ok() && now->status == clockbound::ClockStatus::kSynchronized)
//     ... now->earliest ... now->latest ...
//
// Now() allocates nothing and makes no system call but clock_gettime (vDSO).
// Thread-compatible: one Reader per thread (it keeps the last consistent
// snapshot, as ClockBound's reader does, to answer while a write is under way).
#ifndef NTPFLEET_CLOCKBOUND_READER_H_
#define NTPFLEET_CLOCKBOUND_READER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clockbound/segment.h"

namespace ntpfleet::clockbound {

// The clocks a reader reads, in ns (injectable for tests).
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual int64_t RealtimeNs() const = 0;         // CLOCK_REALTIME
  virtual int64_t MonotonicNs() const = 0;        // CLOCK_MONOTONIC
  virtual int64_t MonotonicCoarseNs() const = 0;  // CLOCK_MONOTONIC_COARSE
};
// The machine's clocks.
const TimeSource& SystemTimeSource();

struct BoundedTime {
  absl::Time earliest;   // true time is no earlier than this...
  absl::Time latest;     // ...and no later than this
  absl::Time clock;      // the clock read (the middle)
  absl::Duration bound;  // (latest - earliest) / 2, drift growth included
  ClockStatus status = ClockStatus::kUnknown;
  // The segment as written.
  ClockStatus written_status = ClockStatus::kUnknown;
  absl::Duration written_bound;
  uint32_t max_drift_ppb = 0;
  absl::Duration as_of_age;  // CLOCK_MONOTONIC_COARSE now - as_of
  absl::Duration void_in;    // void_after - now (negative: void)
  bool simulated = false;    // ntpfleet's extension: a simulated clock
  uint16_t generation = 0;
};

class Reader {
 public:
  // Opens and maps `path` read-only and checks the header: the magic, version
  // 2 and a segment size that covers the v2 fields and fits the file.
  static absl::StatusOr<Reader> Open(const std::string& path,
                                     const TimeSource* time = nullptr);
  Reader(Reader&& other) noexcept;
  Reader& operator=(Reader&& other) noexcept;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader();

  // Now, bounded. Errors: FailedPrecondition when the segment was never
  // written (generation 0) or its header changed (magic, version); DataLoss
  // when it is malformed (max drift >= 1e9 ppb) or as_of is in the future
  // (more than 1 ms, ClockBound's causality check); Unavailable when no
  // consistent snapshot could be read (a writer that died mid-update, and no
  // earlier one).
  absl::StatusOr<BoundedTime> Now();

  const std::string& path() const { return path_; }

  // The consistent-snapshot loop, exposed for tests: copies the segment into
  // `out` if it reads the same even generation before and after.
  bool TryRead(Segment* out, int max_tries);

 private:
  Reader() = default;

  std::string path_;
  const TimeSource* time_ = nullptr;
  const unsigned char* base_ = nullptr;
  size_t mapped_ = 0;
  bool has_extension_ = false;
  bool have_snapshot_ = false;
  Segment snapshot_{};
};

// The ClockBound client's arithmetic on one snapshot (exposed for tests):
// `real_ns`, `mono_ns`: the clock the bound describes (CLOCK_REALTIME, or with
// the extension CLOCK_MONOTONIC) and CLOCK_MONOTONIC_COARSE, read together.
absl::StatusOr<BoundedTime> Compute(const Segment& s, bool has_extension,
                                    int64_t clock_ns, int64_t mono_coarse_ns);

}  // namespace ntpfleet::clockbound

#endif  // NTPFLEET_CLOCKBOUND_READER_H_
