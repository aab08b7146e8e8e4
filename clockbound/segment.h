// The ClockBound shared memory segment, protocol version 2 (aws/clock-bound,
// docs/PROTOCOL.md, "ClockBound Shared Memory Protocol Version 2"), plus
// ntpfleet's extension after the v2 fields (docs/CLOCKBOUND.md).
//
// Byte layout, native endian (what the daemon and every client on the machine
// share), offsets in bytes:
//    0 magic               u64  41 4D 5A 4E 43 42 02 00
//    8 segment size        u32  bytes of the whole segment
//   12 version             u16  2
//   14 generation          u16  odd while written, even when done; 0: never
//                               written; wraps to 2, never to 0
//   16 as_of               i64 tv_sec, i64 tv_nsec  CLOCK_MONOTONIC_COARSE when
//                               the bound was computed
//   32 void_after          i64 tv_sec, i64 tv_nsec  CLOCK_MONOTONIC_COARSE
//   after
//                               which the bound is not to be trusted
//   48 bound               i64  ns: |CLOCK_REALTIME - true time| at as_of
//   56 disruption marker   u64
//   64 max drift           u32  ppb: how fast the bound grows after as_of
//   68 clock status        i32  0 unknown, 1 synchronized, 2 free running,
//                               3 disrupted
//   72 disruption support  u8
//   73 padding to 80
// ntpfleet's extension (a v2 client reads the first 80 bytes and ignores it):
//   80 extension magic     u64  "NTPFLTX1"
//   88 flags               u32  bit 0: the clock is simulated (see below)
//   92 reserved            u32  0
//   96 clock minus mono    i64  ns: with the simulated flag, the clock the
//                               bound describes read at as_of, minus
//                               CLOCK_MONOTONIC at the same instant; a reader
//                               reads "now" as CLOCK_MONOTONIC + this instead
//                               of CLOCK_REALTIME
//  104 end
//
// Every field is read and written with __atomic builtins (the segment is
// shared with other processes); the generation is the seqlock (reader.h,
// writer.h).
#ifndef NTPFLEET_CLOCKBOUND_SEGMENT_H_
#define NTPFLEET_CLOCKBOUND_SEGMENT_H_

#include <cstddef>
#include <cstdint>

namespace ntpfleet::clockbound {

// The default path of ClockBound's daemon (clockbound-d) and clients, v2.
inline constexpr char kDefaultPath[] = "/var/run/clockbound/shm0";

inline constexpr uint16_t kVersion = 2;
// 41 4D 5A 4E 43 42 02 00 in memory: "AMZNCB\2\0" read as a native u64 (on a
// little-endian CPU; the segment is native endian, so the bytes are compared).
inline constexpr unsigned char kMagicBytes[8] = {0x41, 0x4D, 0x5A, 0x4E,
                                                 0x43, 0x42, 0x02, 0x00};
inline constexpr unsigned char kExtensionMagicBytes[8] = {'N', 'T', 'P', 'F',
                                                          'L', 'T', 'X', '1'};
inline constexpr uint32_t kExtensionSimulated = 1u << 0;

// PROTOCOL.md's clock status.
enum class ClockStatus : int32_t {
  kUnknown = 0,
  kSynchronized = 1,
  kFreeRunning = 2,
  kDisrupted = 3,
};
const char* ClockStatusName(ClockStatus status);

struct Timespec64 {
  int64_t sec;
  int64_t nsec;
};

// The v2 fields, as laid out in the segment.
struct SegmentV2 {
  unsigned char magic[8];
  uint32_t segment_size;
  uint16_t version;
  uint16_t generation;
  Timespec64 as_of;
  Timespec64 void_after;
  int64_t bound_ns;
  uint64_t disruption_marker;
  uint32_t max_drift_ppb;
  int32_t clock_status;
  uint8_t disruption_support;
  uint8_t padding[7];
};

// ntpfleet's extension, right after the v2 fields.
struct Extension {
  unsigned char magic[8];
  uint32_t flags;
  uint32_t reserved;
  int64_t clock_minus_monotonic_ns;
};

// What ntpfleet writes: both.
struct Segment {
  SegmentV2 v2;
  Extension ext;
};

static_assert(offsetof(SegmentV2, magic) == 0);
static_assert(offsetof(SegmentV2, segment_size) == 8);
static_assert(offsetof(SegmentV2, version) == 12);
static_assert(offsetof(SegmentV2, generation) == 14);
static_assert(offsetof(SegmentV2, as_of) == 16);
static_assert(offsetof(SegmentV2, void_after) == 32);
static_assert(offsetof(SegmentV2, bound_ns) == 48);
static_assert(offsetof(SegmentV2, disruption_marker) == 56);
static_assert(offsetof(SegmentV2, max_drift_ppb) == 64);
static_assert(offsetof(SegmentV2, clock_status) == 68);
static_assert(offsetof(SegmentV2, disruption_support) == 72);
static_assert(sizeof(SegmentV2) == 80);
static_assert(offsetof(Segment, ext) == 80);
static_assert(offsetof(Segment, ext.flags) == 88);
static_assert(offsetof(Segment, ext.clock_minus_monotonic_ns) == 96);
static_assert(sizeof(Segment) == 104);

inline constexpr size_t kV2Size = sizeof(SegmentV2);
inline constexpr size_t kSegmentSize = sizeof(Segment);

// What one update writes (the generation is the writer's business).
struct Contents {
  Timespec64 as_of{0, 0};
  Timespec64 void_after{0, 0};
  int64_t bound_ns = 0;
  uint64_t disruption_marker = 0;
  uint32_t max_drift_ppb = 0;
  ClockStatus status = ClockStatus::kUnknown;
  bool disruption_support = false;
  // ntpfleet's extension: set when the bound describes a simulated clock, not
  // CLOCK_REALTIME (ntpfleet-agent --clock=sim).
  bool simulated = false;
  int64_t clock_minus_monotonic_ns = 0;
};

}  // namespace ntpfleet::clockbound

#endif  // NTPFLEET_CLOCKBOUND_SEGMENT_H_
