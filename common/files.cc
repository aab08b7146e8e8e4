#include "common/files.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ntpfleet {
namespace {

absl::Status ReadError(const std::string& path, int err) {
  const std::string message =
      absl::StrFormat("cannot read %s: %s", path, strerror(err));
  if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) {
    return absl::PermissionDeniedError(message);
  }
  return absl::InternalError(message);
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

RegularFileRead ReadRegularFile(const std::string& path, size_t max_bytes) {
  RegularFileRead r;
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it would wait
  // forever, saying nothing); it is refused below with every other file that
  // is not a regular one. On a regular file the flag changes nothing.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    r.error = errno;
    return r;
  }
  struct stat st = {};
  if (fstat(fd, &st) != 0) {
    r.error = errno;
  } else if (r.mode = st.st_mode; !S_ISREG(st.st_mode)) {
    r.not_regular = true;
  } else {
    char buf[8192];
    for (;;) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        r.error = errno;
        break;
      }
      if (n == 0) break;
      r.data.append(buf, static_cast<size_t>(n));
      if (r.data.size() > max_bytes) {
        r.too_large = true;
        break;
      }
    }
  }
  close(fd);
  return r;
}

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     size_t max_bytes) {
  RegularFileRead r = ReadRegularFile(path, max_bytes);
  if (r.error != 0) return ReadError(path, r.error);
  if (r.not_regular) {
    if (S_ISDIR(r.mode)) return ReadError(path, EISDIR);
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot read %s: not a regular file (%s)", path, FileKind(r.mode)));
  }
  if (r.too_large) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s is larger than %d bytes", path, max_bytes));
  }
  return std::move(r.data);
}

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& data, mode_t mode) {
  auto error = [](int err, const std::string& what) {
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat(what, ": ", strerror(err)));
  };
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  // Same directory as `path`, so that rename(2) is atomic (it cannot cross
  // filesystems).
  std::string temp = path + ".tmp.XXXXXX";
  const int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) {
    return error(errno, absl::StrCat("cannot create a temporary file in ", dir,
                                     " to replace ", path));
  }
  auto fail = [&](const std::string& what) {
    const int err = errno;
    close(fd);
    unlink(temp.c_str());
    return error(err, absl::StrCat(what, " ", temp));
  };
  if (fchmod(fd, mode) != 0) return fail("cannot set the mode of");
  for (size_t done = 0; done < data.size();) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("cannot fsync");
  // close can report a deferred write error (NFS).
  if (close(fd) != 0) {
    const int err = errno;
    unlink(temp.c_str());
    return error(err, absl::StrCat("cannot close ", temp));
  }
  // The atomic step: a reader opens either the old inode or the new one.
  if (rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(temp.c_str());
    return error(err, absl::StrCat("cannot rename ", temp, " over ", path));
  }
  // Make the rename itself durable: without this a power loss can bring back
  // the old directory entry (or, on some filesystems, an empty file).
  const int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    return error(errno, absl::StrCat(path, " written, but cannot open ", dir,
                                     " to fsync it"));
  }
  if (fsync(dir_fd) != 0 && errno != EINVAL) {
    const int err = errno;
    close(dir_fd);
    return error(err, absl::StrCat(path, " written, but cannot fsync ", dir));
  }
  close(dir_fd);
  return absl::OkStatus();
}

}  // namespace ntpfleet
