// Reading a small file whole (certificates, keys, CA bundles), with an error
// that names the file and the cause.
//
//   absl::StatusOr<std::string> pem = ReadFile("/etc/ntpfleet/tls/ca.pem");
//   // NotFound "cannot read /etc/ntpfleet/tls/ca.pem: No such file or
//   // directory"
#ifndef NTPFLEET_COMMON_FILES_H_
#define NTPFLEET_COMMON_FILES_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace ntpfleet {

// The file's bytes. NotFound (no such file), PermissionDenied, Internal (any
// other read error, a directory included: "Is a directory") with "cannot read
// PATH: REASON"; InvalidArgument "PATH is larger than N bytes" beyond
// `max_bytes` (1 MiB by default: no PEM file is that large).
absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     size_t max_bytes = size_t{1} << 20);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_FILES_H_
