#include "common/files.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace ntpfleet {
namespace {

absl::Status ReadError(const std::string& path, int err) {
  const std::string message =
      absl::StrFormat("cannot read %s: %s", path, strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) {
    return absl::PermissionDeniedError(message);
  }
  return absl::InternalError(message);
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     size_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ReadError(path, errno);
  std::string data;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {  // EISDIR for a directory
      const int err = errno;
      close(fd);
      return ReadError(path, err);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > max_bytes) {
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrFormat("%s is larger than %d bytes", path, max_bytes));
    }
  }
  close(fd);
  return data;
}

}  // namespace ntpfleet
