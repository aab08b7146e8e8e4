#include "controller/db_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace ntpfleet::controller {
namespace {

// The pid the holder wrote in the lock file, or 0 if it has not yet (it locks
// first, then writes) or the content is not a pid.
int ReadPid(int fd) {
  char buffer[32] = {};
  const ssize_t n = pread(fd, buffer, sizeof(buffer) - 1, 0);
  if (n <= 0) return 0;
  int pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(
                            absl::string_view(buffer, static_cast<size_t>(n))),
                        &pid) ||
      pid <= 0) {
    return 0;
  }
  return pid;
}

}  // namespace

absl::StatusOr<DbLock> DbLock::Acquire(const std::string& db_path) {
  std::string lock_path = db_path + ".lock";
  const int fd =
      open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    const int e = errno;
    return absl::Status(
        e == ENOENT ? absl::StatusCode::kNotFound
                    : absl::StatusCode::kPermissionDenied,
        absl::StrFormat("--db %s: cannot open its lock file %s (%s); the "
                        "directory must exist and be writable by the "
                        "controller",
                        db_path, lock_path, std::strerror(e)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    const int pid = e == EWOULDBLOCK ? ReadPid(fd) : 0;
    close(fd);
    if (e != EWOULDBLOCK) {
      return absl::UnavailableError(
          absl::StrFormat("--db %s: cannot lock %s (%s)", db_path, lock_path,
                          std::strerror(e)));
    }
    const std::string holder =
        pid > 0 ? absl::StrFormat("ntpfleet-controller pid %d", pid)
                : std::string(
                      "another ntpfleet-controller (pid not yet "
                      "written)");
    return absl::FailedPreconditionError(absl::StrFormat(
        "database %s is in use by %s (lock file %s); stop it or use another "
        "--db",
        db_path, holder, lock_path));
  }
  // Ours: replace whatever an earlier holder wrote with our pid.
  const std::string pid = absl::StrFormat("%d\n", getpid());
  // Not fatal if it fails: the lock holds, a second controller just names no
  // pid.
  const bool written =
      ftruncate(fd, 0) == 0 &&
      pwrite(fd, pid.data(), pid.size(), 0) == static_cast<ssize_t>(pid.size());
  (void)written;
  return DbLock(fd, std::move(lock_path));
}

DbLock::DbLock(DbLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      lock_path_(std::move(other.lock_path_)) {}

DbLock& DbLock::operator=(DbLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    lock_path_ = std::move(other.lock_path_);
  }
  return *this;
}

DbLock::~DbLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace ntpfleet::controller
