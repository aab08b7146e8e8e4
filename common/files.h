// Reading a small file whole (certificates, keys), with an error that names the
// file.
#ifndef NTPFLEET_COMMON_FILES_H_
#define NTPFLEET_COMMON_FILES_H_

#include <string>

#include "absl/status/statusor.h"

namespace ntpfleet {

// NotFound / PermissionDenied / Internal "cannot read PATH: REASON".
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_FILES_H_
