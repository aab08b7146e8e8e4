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

// The file's bytes. NotFound (no such file), PermissionDenied, Internal (any
// other read error, a directory included: "Is a directory") with "cannot read
// PATH: REASON"; InvalidArgument "cannot read PATH: not a regular file" for a
// FIFO, socket or device (never waits on one), and "PATH is larger than N
// bytes" beyond `max_bytes` (1 MiB by default: no PEM file is that large).
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
