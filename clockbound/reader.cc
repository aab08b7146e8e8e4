#include "clockbound/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace ntpfleet::clockbound {
namespace {

// ClockBound's client: a status written less than this long ago is trusted as
// written (the daemon may be restarting); older, a synchronized clock is
// reported free running until void_after.
constexpr int64_t kRestartGraceNs = 5'000'000'000;
// CLOCK_MONOTONIC_COARSE read on another CPU may lag as_of slightly; up to
// this much is taken as no time elapsed (ClockBound's "causality blur"),
// beyond it the segment is inconsistent with this machine's clock.
constexpr int64_t kCausalityBlurNs = 1'000'000;
constexpr int kMaxTries = 1000;

int64_t Read(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

class SystemSource final : public TimeSource {
 public:
  int64_t RealtimeNs() const override { return Read(CLOCK_REALTIME); }
  int64_t MonotonicNs() const override { return Read(CLOCK_MONOTONIC); }
  int64_t MonotonicCoarseNs() const override {
    return Read(CLOCK_MONOTONIC_COARSE);
  }
};

int64_t ToNs(const Timespec64& t) { return t.sec * 1'000'000'000 + t.nsec; }

template <typename T>
T Load(const T* p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}

// Copies the fields one atomic load each (no data race with the writer).
void CopyFields(const Segment* from, Segment* to, bool ext) {
  const SegmentV2& a = from->v2;
  SegmentV2& b = to->v2;
  b.as_of.sec = Load(&a.as_of.sec);
  b.as_of.nsec = Load(&a.as_of.nsec);
  b.void_after.sec = Load(&a.void_after.sec);
  b.void_after.nsec = Load(&a.void_after.nsec);
  b.bound_ns = Load(&a.bound_ns);
  b.disruption_marker = Load(&a.disruption_marker);
  b.max_drift_ppb = Load(&a.max_drift_ppb);
  b.clock_status = Load(&a.clock_status);
  b.disruption_support = Load(&a.disruption_support);
  if (ext) {
    for (int i = 0; i < 8; ++i) to->ext.magic[i] = Load(&from->ext.magic[i]);
    to->ext.flags = Load(&from->ext.flags);
    to->ext.clock_minus_monotonic_ns =
        Load(&from->ext.clock_minus_monotonic_ns);
  }
}

bool HeaderOk(const Segment* s) {
  for (int i = 0; i < 8; ++i) {
    if (Load(&s->v2.magic[i]) != kMagicBytes[i]) return false;
  }
  return Load(&s->v2.version) == kVersion;
}

bool Simulated(const Segment& s, bool has_extension) {
  return has_extension &&
         std::memcmp(s.ext.magic, kExtensionMagicBytes, 8) == 0 &&
         (s.ext.flags & kExtensionSimulated) != 0;
}

}  // namespace

const TimeSource& SystemTimeSource() {
  static const SystemSource* source = new SystemSource();
  return *source;
}

absl::StatusOr<Reader> Reader::Open(const std::string& path,
                                    const TimeSource* time) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    const std::string msg = absl::StrFormat(
        "cannot open ClockBound segment %s: %s", path, strerror(e));
    return e == ENOENT ? absl::NotFoundError(msg)
                       : absl::PermissionDeniedError(msg);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(kV2Size)) {
    close(fd);
    return absl::DataLossError(absl::StrFormat(
        "%s is not a ClockBound segment: %d bytes, a v2 segment has at least "
        "%d",
        path, static_cast<int64_t>(st.st_size), kV2Size));
  }
  SegmentV2 header{};
  if (pread(fd, &header, kV2Size, 0) != static_cast<ssize_t>(kV2Size)) {
    close(fd);
    return absl::DataLossError(absl::StrFormat("cannot read %s", path));
  }
  if (std::memcmp(header.magic, kMagicBytes, 8) != 0) {
    close(fd);
    return absl::DataLossError(absl::StrFormat(
        "%s is not a ClockBound segment (bad magic number)", path));
  }
  if (header.version != kVersion) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is ClockBound shared memory version %d; this reader reads version "
        "%d (version 0: the writer has not finished creating it)",
        path, header.version, kVersion));
  }
  if (header.segment_size < kV2Size ||
      header.segment_size > static_cast<uint64_t>(st.st_size)) {
    close(fd);
    return absl::DataLossError(absl::StrFormat(
        "%s: segment size %d does not fit (file %d bytes, v2 needs %d)", path,
        header.segment_size, static_cast<int64_t>(st.st_size), kV2Size));
  }
  const size_t size = header.segment_size;
  void* base = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) {
    return absl::InternalError(
        absl::StrFormat("mmap %s: %s", path, strerror(errno)));
  }
  Reader r;
  r.path_ = path;
  r.time_ = time != nullptr ? time : &SystemTimeSource();
  r.base_ = static_cast<const unsigned char*>(base);
  r.mapped_ = size;
  r.has_extension_ = size >= kSegmentSize;
  return r;
}

Reader::Reader(Reader&& other) noexcept { *this = std::move(other); }

Reader& Reader::operator=(Reader&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(const_cast<unsigned char*>(base_), mapped_);
    path_ = std::move(other.path_);
    time_ = other.time_;
    base_ = std::exchange(other.base_, nullptr);
    mapped_ = std::exchange(other.mapped_, 0);
    has_extension_ = other.has_extension_;
    have_snapshot_ = other.have_snapshot_;
    snapshot_ = other.snapshot_;
  }
  return *this;
}

Reader::~Reader() {
  if (base_ != nullptr) munmap(const_cast<unsigned char*>(base_), mapped_);
}

bool Reader::TryRead(Segment* out, int max_tries) {
  const Segment* s = reinterpret_cast<const Segment*>(base_);
  for (int i = 0; i < max_tries; ++i) {
    // Seqlock read: the generation (acquire), the fields, an acquire fence,
    // the generation again; the same even, non-zero value twice means no
    // write overlapped the copy.
    const uint16_t g1 = __atomic_load_n(&s->v2.generation, __ATOMIC_ACQUIRE);
    if (g1 == 0) return false;
    if (g1 & 1) continue;
    CopyFields(s, out, has_extension_);
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint16_t g2 = __atomic_load_n(&s->v2.generation, __ATOMIC_RELAXED);
    if (g1 == g2) {
      out->v2.generation = g1;
      return true;
    }
  }
  return false;
}

absl::StatusOr<BoundedTime> Reader::Now() {
  const Segment* s = reinterpret_cast<const Segment*>(base_);
  if (!HeaderOk(s)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s no longer holds a ClockBound v2 segment (rewritten?): open it "
        "again",
        path_));
  }
  Segment snap;
  if (TryRead(&snap, kMaxTries)) {
    snapshot_ = snap;
    have_snapshot_ = true;
  } else if (!have_snapshot_) {
    if (__atomic_load_n(&s->v2.generation, __ATOMIC_RELAXED) == 0) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s has not been written yet (generation 0)", path_));
    }
    return absl::UnavailableError(absl::StrFormat(
        "%s: no consistent read in %d tries (a writer stopped mid-update?)",
        path_, kMaxTries));
  }
  // As ClockBound's client: the clock first (closest to the caller's event),
  // then the monotonic clock; a late monotonic read only widens the bound.
  const bool sim = Simulated(snapshot_, has_extension_);
  const int64_t clock_ns =
      sim ? time_->MonotonicNs() + snapshot_.ext.clock_minus_monotonic_ns
          : time_->RealtimeNs();
  const int64_t mono_ns = time_->MonotonicCoarseNs();
  return Compute(snapshot_, has_extension_, clock_ns, mono_ns);
}

absl::StatusOr<BoundedTime> Compute(const Segment& s, bool has_extension,
                                    int64_t clock_ns, int64_t mono_coarse_ns) {
  const SegmentV2& v = s.v2;
  if (v.max_drift_ppb >= 1'000'000'000u) {
    return absl::DataLossError(absl::StrFormat(
        "malformed ClockBound segment: max drift %d ppb", v.max_drift_ppb));
  }
  if (v.bound_ns < 0) {
    return absl::DataLossError(absl::StrFormat(
        "malformed ClockBound segment: negative bound %d ns", v.bound_ns));
  }
  const int64_t as_of = ToNs(v.as_of);
  const int64_t void_after = ToNs(v.void_after);
  int64_t elapsed = mono_coarse_ns - as_of;
  if (elapsed < 0) {
    if (elapsed < -kCausalityBlurNs) {
      return absl::DataLossError(absl::StrFormat(
          "ClockBound segment's as_of is %d ns ahead of this machine's "
          "CLOCK_MONOTONIC_COARSE (written on another boot or machine?)",
          -elapsed));
    }
    elapsed = 0;
  }
  BoundedTime out;
  out.written_status = static_cast<ClockStatus>(v.clock_status);
  switch (out.written_status) {
    case ClockStatus::kSynchronized:
    case ClockStatus::kFreeRunning:
      if (elapsed < kRestartGraceNs) {
        out.status = out.written_status;
      } else if (mono_coarse_ns < void_after) {
        out.status = ClockStatus::kFreeRunning;
      } else {
        out.status = ClockStatus::kUnknown;
      }
      break;
    case ClockStatus::kDisrupted:
      out.status = ClockStatus::kDisrupted;
      break;
    default:
      out.status = ClockStatus::kUnknown;
      break;
  }
  // bound + elapsed * ppb / 1e9, in 128 bits (1000 s at 1e9 ppb overflows 64)
  // and rounded up, saturating.
  const __int128 growth =
      (static_cast<__int128>(elapsed) * v.max_drift_ppb + 999'999'999) /
      1'000'000'000;
  __int128 bound = static_cast<__int128>(v.bound_ns) + growth;
  constexpr int64_t kMax = int64_t{1} << 62;
  if (bound > kMax) bound = kMax;
  const int64_t b = static_cast<int64_t>(bound);
  out.clock = absl::FromUnixNanos(clock_ns);
  out.bound = absl::Nanoseconds(b);
  out.earliest = out.clock - out.bound;
  out.latest = out.clock + out.bound;
  out.written_bound = absl::Nanoseconds(v.bound_ns);
  out.max_drift_ppb = v.max_drift_ppb;
  out.as_of_age = absl::Nanoseconds(mono_coarse_ns - as_of);
  out.void_in = absl::Nanoseconds(void_after - mono_coarse_ns);
  out.simulated = Simulated(s, has_extension);
  out.generation = v.generation;
  return out;
}

}  // namespace ntpfleet::clockbound
