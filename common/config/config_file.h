// Reading the configuration from disk: the only IO of common/config.
//
//   absl::StatusOr<AgentConfig> config =
//   LoadConfigFile("/etc/ntpfleet/agent.conf");
//
// Thread safety: safe to call concurrently.
#ifndef NTPFLEET_COMMON_CONFIG_CONFIG_FILE_H_
#define NTPFLEET_COMMON_CONFIG_CONFIG_FILE_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config/config.h"

namespace ntpfleet::config {

// Files larger than this are refused (a config file is a few KiB; a path
// pointing at something else should fail clearly).
inline constexpr size_t kMaxConfigFileBytes = 1 << 20;

// The whole of the file at `path`. NotFound if it does not exist,
// PermissionDenied if it cannot be opened for that reason, InvalidArgument if
// it is not a regular file ("cannot read PATH: not a regular file (a FIFO)";
// never waits on a FIFO for a writer) or is too large; messages name the path.
// `mode`, if given, receives the file's st_mode (type and permission bits).
absl::StatusOr<std::string> ReadConfigText(const std::string& path,
                                           mode_t* mode = nullptr);

// Reads includefiles with ReadConfigText().
class DiskIncludeLoader : public IncludeLoader {
 public:
  absl::StatusOr<std::string> Load(const std::string& path) const override {
    return ReadConfigText(path);
  }
};

// ParseConfig() on the file at `path`, with `includefile`s read from disk by
// ReadConfigText(). A missing top-level file is an error (NotFound), unlike a
// missing includefile; an error reading it starts with "--config: ".
absl::StatusOr<AgentConfig> LoadConfigFile(const std::string& path);

// The files `driftfile`, `leapfile` and `keys` name, checked without opening
// them: one that exists and is not a regular file (a FIFO, a directory, a
// device) is InvalidArgument "FILE:LINE: driftfile PATH is a FIFO, not a
// regular file: ...". A missing one is fine here (the agent warns, or creates
// the drift file). --check-config and the agent's start both call it.
absl::Status CheckNamedFiles(const AgentConfig& config);

}  // namespace ntpfleet::config

#endif  // NTPFLEET_COMMON_CONFIG_CONFIG_FILE_H_
