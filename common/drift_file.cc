#include "common/drift_file.h"

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
#include "common/clock.h"
#include "common/files.h"

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
bool InRange(double ppm) {
  return std::isfinite(ppm) && std::fabs(ppm) <= kMaxFrequencyPpm;
}

}  // namespace

absl::StatusOr<double> ReadDriftFile(const std::string& path) {
  // A longer file is read only this far: the frequency is on its first line.
  RegularFileRead r = ReadRegularFile(path, kMaxDriftFileBytes);
  if (r.error == ENOENT) {
    return absl::NotFoundError(
        absl::StrCat("no drift file at ", path,
                     " yet; starting from 0 ppm is fine (the file is written "
                     "once the clock's frequency has "
                     "been learned)"));
  }
  if (r.error != 0) {
    return absl::Status(absl::ErrnoToStatusCode(r.error),
                        absl::StrCat("cannot read drift file ", path, ": ",
                                     ErrnoText(r.error)));
  }
  if (r.not_regular) {
    return absl::InvalidArgumentError(absl::StrCat("drift file ", path,
                                                   " is not a regular file (",
                                                   FileKind(r.mode), ")"));
  }
  const std::string& content = r.data;

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
  // Crash-safe (common/files); 0644: a drift file is not secret and ntpd's is
  // world-readable.
  if (absl::Status st = WriteFileAtomically(path, content, 0644); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("cannot write drift file ",
                                                path, ": ", st.message()));
  }
  return absl::OkStatus();
}

absl::Status CheckDriftFileWritable(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  constexpr char kWhy[] =
      "the drift file is written hourly and at exit; without it every start "
      "relearns the clock's frequency";
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "drift file %s is a directory: remove it or change `driftfile` (%s)",
        path, kWhy));
  }
  std::string temp = path + ".tmp.XXXXXX";
  const int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    unlink(temp.c_str());
    return absl::OkStatus();
  }
  const int err = errno;
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(absl::StrFormat(
          "drift file %s: the directory %s does not exist: create it "
          "(mkdir -p %s, writable by the agent's user) or change `driftfile` "
          "(%s)",
          path, dir, dir, kWhy));
    case ENOTDIR:
      return absl::FailedPreconditionError(absl::StrFormat(
          "drift file %s: %s is not a directory (part of it is a file): "
          "change `driftfile` (%s)",
          path, dir, kWhy));
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::Status(
          absl::ErrnoToStatusCode(err),
          absl::StrFormat("drift file %s: cannot create a file in %s (%s, as "
                          "uid %d): fix the directory's permissions (the "
                          "agent's user must be able to write there) or "
                          "change `driftfile` (%s)",
                          path, dir, ErrnoText(err), geteuid(), kWhy));
    default:
      return absl::Status(
          absl::ErrnoToStatusCode(err),
          absl::StrFormat("drift file %s: cannot create a temporary file in "
                          "%s (%s): fix the directory or change `driftfile` "
                          "(%s)",
                          path, dir, ErrnoText(err), kWhy));
  }
}

}  // namespace ntpfleet::clock
