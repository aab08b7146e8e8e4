#include "clockbound/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace ntpfleet::clockbound {
namespace {

std::string Errno(const std::string& what, const std::string& path) {
  return absl::StrFormat("%s %s: %s", what, path, strerror(errno));
}

// mkdir -p of `path`'s directory (mode 0755: readers are any user).
absl::Status MakeParent(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return absl::OkStatus();
  const std::string dir = path.substr(0, slash);
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    const std::string part = dir.substr(0, i);
    if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(
          Errno("cannot create the ClockBound directory", part) +
          " (create it, or set `clockbound_shm` to another path or `none`)");
    }
  }
  return absl::OkStatus();
}

template <typename T>
void Store(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

// A segment of our size and layout at `fd`, fit to be written in place.
bool Reusable(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size != static_cast<off_t>(kSegmentSize))
    return false;
  Segment s{};
  if (pread(fd, &s, sizeof(s), 0) != static_cast<ssize_t>(sizeof(s)))
    return false;
  return std::memcmp(s.v2.magic, kMagicBytes, 8) == 0 &&
         s.v2.version == kVersion && s.v2.segment_size == kSegmentSize &&
         std::memcmp(s.ext.magic, kExtensionMagicBytes, 8) == 0;
}

bool Lock(int fd) { return flock(fd, LOCK_EX | LOCK_NB) == 0; }

absl::Status Locked(const std::string& path) {
  return absl::AlreadyExistsError(absl::StrFormat(
      "ClockBound segment %s is held by another writer (another "
      "ntpfleet-agent?): stop it, or give this agent another `clockbound_shm` "
      "path",
      path));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Writer>> Writer::Open(const std::string& path) {
  if (absl::Status s = MakeParent(path); !s.ok()) return s;
  std::unique_ptr<Writer> w(new Writer());
  w->path_ = path;
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0 && Reusable(fd)) {
    if (!Lock(fd)) {
      close(fd);
      return Locked(path);
    }
    w->reused_ = true;
  } else {
    if (fd >= 0) {
      // Another writer may be mid-creation or running on it: do not replace a
      // segment someone holds.
      if (!Lock(fd)) {
        close(fd);
        return Locked(path);
      }
      close(fd);
    }
    std::string tmp = path + ".XXXXXX";
    fd = mkstemp(tmp.data());
    if (fd < 0) {
      return absl::PermissionDeniedError(
          Errno("cannot create the ClockBound segment in the directory of",
                path) +
          " (run the agent as root, or set `clockbound_shm` to a writable "
          "path or `none`)");
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    Segment init{};
    std::memcpy(init.v2.magic, kMagicBytes, 8);
    init.v2.segment_size = kSegmentSize;
    init.v2.version = kVersion;
    init.v2.generation = 0;  // never written: readers wait for the first
    init.v2.clock_status = static_cast<int32_t>(ClockStatus::kUnknown);
    std::memcpy(init.ext.magic, kExtensionMagicBytes, 8);
    const bool ok = Lock(fd) && fchmod(fd, 0644) == 0 &&
                    ftruncate(fd, kSegmentSize) == 0 &&
                    pwrite(fd, &init, sizeof(init), 0) ==
                        static_cast<ssize_t>(sizeof(init)) &&
                    fsync(fd) == 0 && rename(tmp.c_str(), path.c_str()) == 0;
    if (!ok) {
      const std::string msg = Errno("cannot create ClockBound segment", path);
      close(fd);
      unlink(tmp.c_str());
      return absl::InternalError(msg);
    }
  }
  void* base =
      mmap(nullptr, kSegmentSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    const std::string msg = Errno("mmap", path);
    close(fd);
    return absl::InternalError(msg);
  }
  w->fd_ = fd;
  w->segment_ = static_cast<Segment*>(base);
  return w;
}

Writer::~Writer() {
  if (segment_ != nullptr) munmap(segment_, kSegmentSize);
  if (fd_ >= 0) close(fd_);  // releases the flock
}

uint16_t Writer::generation() const {
  return __atomic_load_n(&segment_->v2.generation, __ATOMIC_ACQUIRE);
}

void Writer::Write(const Contents& c) {
  SegmentV2& v = segment_->v2;
  uint16_t g = __atomic_load_n(&v.generation, __ATOMIC_RELAXED);
  if ((g & 1) == 0) ++g;  // odd: being written (a left-over odd one is reused)
  __atomic_store_n(&v.generation, g, __ATOMIC_RELAXED);
  // The odd generation is visible before any field changes.
  std::atomic_thread_fence(std::memory_order_release);
  Store(&v.as_of.sec, c.as_of.sec);
  Store(&v.as_of.nsec, c.as_of.nsec);
  Store(&v.void_after.sec, c.void_after.sec);
  Store(&v.void_after.nsec, c.void_after.nsec);
  Store(&v.bound_ns, c.bound_ns);
  Store(&v.disruption_marker, c.disruption_marker);
  Store(&v.max_drift_ppb, c.max_drift_ppb);
  Store(&v.clock_status, static_cast<int32_t>(c.status));
  Store(&v.disruption_support, static_cast<uint8_t>(c.disruption_support));
  Extension& e = segment_->ext;
  Store(&e.flags, c.simulated ? kExtensionSimulated : 0u);
  Store(&e.clock_minus_monotonic_ns, c.clock_minus_monotonic_ns);
  ++g;
  if (g == 0) g = 2;  // 0 means "never written"
  // Release: every field above is visible before the even generation.
  __atomic_store_n(&v.generation, g, __ATOMIC_RELEASE);
}

}  // namespace ntpfleet::clockbound
