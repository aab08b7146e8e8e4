// Reading a small file whole (certificates, keys, CA bundles, configurations),
// and replacing one crash-safely, with errors that name the file and the cause.
//
//   absl::StatusOr<std::string> pem = ReadFile("/etc/ntpfleet/tls/ca.pem");
//   // NotFound "cannot read /etc/ntpfleet/tls/ca.pem: No such file or
//   // directory"
#ifndef NTPFLEET_COMMON_FILES_H_
#define NTPFLEET_COMMON_FILES_H_

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace ntpfleet {

// "a FIFO", "a directory", "a socket", "a character device", ...: what a path
// that is not a regular file is, for messages.
const char* FileKind(mode_t mode);

// The one way a whole small file is read here (ReadFile, the configuration's
// and the drift file's readers word their errors from it): opened with
// O_NONBLOCK, so that a FIFO never makes the caller wait for a writer, and
// read only if fstat says it is a regular file, up to `max_bytes`.
struct RegularFileRead {
  std::string data;  // up to max_bytes (and one read beyond, if too_large)
  mode_t mode = 0;   // st_mode, once fstat succeeded
  int error = 0;     // errno of open, fstat or read; 0: none
  bool not_regular = false;  // `mode` says what it is instead (FileKind)
  bool too_large = false;    // more than max_bytes
  bool ok() const { return error == 0 && !not_regular && !too_large; }
};
RegularFileRead ReadRegularFile(const std::string& path, size_t max_bytes);

// The file's bytes. NotFound (no such file), PermissionDenied, Internal (any
// other read error, a directory included: "Is a directory") with "cannot read
// PATH: REASON"; InvalidArgument "cannot read PATH: not a regular file (a
// FIFO)" for a FIFO, socket or device (never waits on one), and "PATH is
// larger than N bytes" beyond `max_bytes` (1 MiB by default: no PEM file is
// that large).
absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     size_t max_bytes = size_t{1} << 20);

// Replaces `path` with `data` so that a reader, or the file after a crash or a
// power loss, is the old file or the new one, never half of one: a temporary
// file beside it (PATH.tmp.XXXXXX, same filesystem), fchmod `mode`, write,
// fsync, rename over `path`, fsync of the directory. On an error the
// temporary file is removed and the message says which step failed on which
// file ("cannot rename /x/f.tmp.AbC123 over /x/f: ..."), with the errno's
// status code. A directory that cannot be fsynced (EINVAL) is not an error.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& data, mode_t mode);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_FILES_H_
