#include "common/config/config_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/config/config.h"

namespace ntpfleet::config {
namespace {

std::string ErrnoText(int err) {
  char buf[128];
  // GNU strerror_r: returns a pointer that may or may not be buf.
  return strerror_r(err, buf, sizeof(buf));
}

absl::Status ErrnoError(const std::string& path, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat("cannot read ", path, ": ", ErrnoText(err)));
}

}  // namespace

absl::StatusOr<std::string> ReadConfigText(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoError(path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", path, ": not a regular file"));
  }
  std::string text;
  char buf[8192];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return ErrnoError(path, err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigFileBytes) {
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read ", path, ": larger than ",
                       kMaxConfigFileBytes, " bytes; not a config file?"));
    }
  }
  close(fd);
  return text;
}

absl::StatusOr<AgentConfig> LoadConfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadConfigText(path);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path, DiskIncludeLoader());
}

}  // namespace ntpfleet::config
