#include "agent/clock/drift_file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "agent/clock/clock.h"

namespace ntpfleet::clock {
namespace {

// A drift file is one short line; anything past this is not a drift file, and
// reading it all (say, a path mistakenly pointing at a large file) would be
// pointless.
constexpr size_t kMaxDriftFileBytes = 4096;

std::string ErrnoText(int err) {
  char buf[128];
  // GNU strerror_r (g++ defines _GNU_SOURCE): returns a pointer that may or may
  // not be buf.
  return strerror_r(err, buf, sizeof(buf));
}

// "cannot write drift file PATH: WHAT: strerror", with the code that fits
// errno.
absl::Status WriteError(const std::string& path, absl::string_view what,
                        int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat("cannot write drift file ", path, ": ", what,
                                   ": ", ErrnoText(err)));
}

bool InRange(double ppm) {
  return std::isfinite(ppm) && std::fabs(ppm) <= kMaxFrequencyPpm;
}

// The directory holding `path`, to fsync after the rename.
std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// write(2) all of `data`, retrying short writes and EINTR. Returns 0 or an
// errno value.
int WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

// The parts of WriteDriftFile between creating the temporary file and renaming
// it into place. Closes `fd` in all cases.
absl::Status FillAndClose(int fd, const std::string& path,
                          absl::string_view content) {
  // mkstemp creates 0600; a drift file is not secret and ntpd's is
  // world-readable.
  if (fchmod(fd, 0644) != 0) {
    const int err = errno;
    close(fd);
    return WriteError(path, "cannot set the temporary file's mode", err);
  }
  if (const int err = WriteAll(fd, content); err != 0) {
    close(fd);
    return WriteError(path, "cannot write the temporary file", err);
  }
  if (fsync(fd) != 0) {
    const int err = errno;
    close(fd);
    return WriteError(path, "cannot fsync the temporary file", err);
  }
  // close can report a deferred write error (NFS); after fsync it should not,
  // but check anyway.
  if (close(fd) != 0)
    return WriteError(path, "cannot close the temporary file", errno);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<double> ReadDriftFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("no drift file at ", path,
                       " yet; starting from 0 ppm is fine (the file is written "
                       "once the clock's frequency has "
                       "been learned)"));
    }
    return absl::Status(
        absl::ErrnoToStatusCode(err),
        absl::StrCat("cannot open drift file ", path, ": ", ErrnoText(err)));
  }
  std::string content;
  char buf[512];
  while (content.size() < kMaxDriftFileBytes) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      close(fd);
      return absl::Status(
          absl::ErrnoToStatusCode(err),
          absl::StrCat("cannot read drift file ", path, ": ", ErrnoText(err)));
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
  }
  close(fd);

  const absl::string_view line =
      absl::string_view(content).substr(0, content.find('\n'));
  const std::vector<absl::string_view> fields =
      absl::StrSplit(line, absl::ByAnyChar(" \t\r\f\v"), absl::SkipEmpty());
  if (fields.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ":1: empty drift file; expected the frequency correction "
                     "in ppm, e.g. \"-12.345\" "
                     "(delete the file to start from 0 ppm)"));
  }
  double ppm = 0;
  if (!absl::SimpleAtod(fields[0], &ppm)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":1: \"", absl::CHexEscape(fields[0].substr(0, 32)),
                     "\" is not a number; expected the frequency correction in "
                     "ppm, e.g. \"-12.345\" (delete "
                     "the file to start from 0 ppm)"));
  }
  if (!InRange(ppm)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s:1: drift of %g ppm is out of range (at most %g ppm "
                        "either way); delete the file to "
                        "start from 0 ppm",
                        path, ppm, kMaxFrequencyPpm));
  }
  return ppm;
}

absl::Status WriteDriftFile(const std::string& path, double ppm) {
  if (!InRange(ppm)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot write drift file %s: drift of %g ppm is out of "
                        "range (at most %g "
                        "ppm either way)",
                        path, ppm, kMaxFrequencyPpm));
  }
  const std::string content = absl::StrFormat("%.3f\n", ppm);

  // Same directory as `path`, so that rename(2) is atomic (it cannot cross
  // filesystems).
  std::string temp_path = path + ".tmp.XXXXXX";
  const int fd = mkostemp(temp_path.data(), O_CLOEXEC);
  if (fd < 0)
    return WriteError(path, "cannot create a temporary file next to it", errno);

  if (absl::Status s = FillAndClose(fd, path, content); !s.ok()) {
    unlink(temp_path.c_str());
    return s;
  }
  // The atomic step: a reader opens either the old inode or the new, complete
  // one.
  if (rename(temp_path.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(temp_path.c_str());
    return WriteError(
        path, absl::StrCat("cannot rename ", temp_path, " over it"), err);
  }
  // Make the rename itself durable: without this a power loss can bring back
  // the old directory entry (or, on some filesystems, an empty file).
  const std::string dir = DirectoryOf(path);
  const int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    return WriteError(
        path, absl::StrCat("written, but cannot open ", dir, " to fsync it"),
        errno);
  }
  // EINVAL: the filesystem cannot fsync directories; there is nothing more we
  // can do.
  if (fsync(dir_fd) != 0 && errno != EINVAL) {
    const int err = errno;
    close(dir_fd);
    return WriteError(path, absl::StrCat("written, but cannot fsync ", dir),
                      err);
  }
  close(dir_fd);
  return absl::OkStatus();
}

}  // namespace ntpfleet::clock
