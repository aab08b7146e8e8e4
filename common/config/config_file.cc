#include "common/config/config_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/files.h"
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

absl::StatusOr<std::string> ReadConfigText(const std::string& path,
                                           mode_t* mode) {
  RegularFileRead r = ReadRegularFile(path, kMaxConfigFileBytes);
  if (r.error != 0) return ErrnoError(path, r.error);
  if (r.not_regular) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read ", path, ": not a regular file (", FileKind(r.mode), ")"));
  }
  if (r.too_large) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", path, ": larger than ",
                     kMaxConfigFileBytes, " bytes; not a config file?"));
  }
  if (mode != nullptr) *mode = r.mode;
  return std::move(r.data);
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
