// Reading the configuration from disk: the only IO of common/config.
//
//   absl::StatusOr<AgentConfig> config =
//   LoadConfigFile("/etc/ntpfleet/agent.conf");
//
// Thread safety: safe to call concurrently.
#ifndef NTPFLEET_COMMON_CONFIG_CONFIG_FILE_H_
#define NTPFLEET_COMMON_CONFIG_CONFIG_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/config/config.h"

namespace ntpfleet::config {

// Files larger than this are refused (a config file is a few KiB; a path
// pointing at something else should fail clearly).
inline constexpr size_t kMaxConfigFileBytes = 1 << 20;

// The whole of the file at `path`. NotFound if it does not exist,
// PermissionDenied if it cannot be opened for that reason, InvalidArgument if
// it is not a regular file or is too large; messages name the path.
absl::StatusOr<std::string> ReadConfigText(const std::string& path);

// Reads includefiles with ReadConfigText().
class DiskIncludeLoader : public IncludeLoader {
 public:
  absl::StatusOr<std::string> Load(const std::string& path) const override {
    return ReadConfigText(path);
  }
};

// ParseConfig() on the file at `path`, with `includefile`s read from disk by
// ReadConfigText(). A missing top-level file is an error (NotFound), unlike a
// missing includefile.
absl::StatusOr<AgentConfig> LoadConfigFile(const std::string& path);

}  // namespace ntpfleet::config

#endif  // NTPFLEET_COMMON_CONFIG_CONFIG_FILE_H_
