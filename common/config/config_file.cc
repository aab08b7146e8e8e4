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
#include "common/log.h"

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

const char* FileKind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

absl::StatusOr<std::string> ReadConfigText(const std::string& path,
                                           mode_t* mode) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it would wait
  // forever, saying nothing); it is refused below like every file that is not
  // a regular one. On a regular file the flag changes nothing.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ErrnoError(path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoError(path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", path,
                                                   ": not a regular file (",
                                                   FileKind(st.st_mode), ")"));
  }
  if (mode != nullptr) *mode = st.st_mode;
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
  if (!text.ok()) {
    return absl::Status(
        text.status().code(),
        EscapeForLog(absl::StrCat("--config: ", text.status().message())));
  }
  return ParseConfig(*text, path, DiskIncludeLoader());
}

absl::Status CheckNamedFiles(const AgentConfig& config) {
  const struct {
    const char* directive;
    const std::string& path;
    const Location& location;
  } files[] = {
      {"driftfile", config.driftfile, config.driftfile_location},
      {"leapfile", config.leapfile, config.leapfile_location},
      {"keys", config.keys_file, config.keys_location},
  };
  for (const auto& f : files) {
    struct stat st;
    // stat(2), not open(2): it never waits, whatever the path is.
    if (f.path.empty() || stat(f.path.c_str(), &st) != 0 ||
        S_ISREG(st.st_mode)) {
      continue;
    }
    return absl::InvalidArgumentError(EscapeForLog(
        absl::StrCat(f.location.ToString(), ": ", f.directive, " ", f.path,
                     " is ", FileKind(st.st_mode), ", not a regular file")));
  }
  return absl::OkStatus();
}

}  // namespace ntpfleet::config
