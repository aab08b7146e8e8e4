#include "agent/config/keys_file.h"

#include <sys/stat.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/config/config_file.h"
#include "common/log.h"

namespace ntpfleet::config {

absl::StatusOr<LoadedKeys> LoadKeysFile(const AgentConfig& config) {
  LoadedKeys out;
  const std::string& path = config.keys_file;
  // "agent.conf:3: keys file /etc/ntp/keys"
  const std::string where =
      absl::StrCat(config.keys_location.ToString(), ": keys file ", path);
  if (!path.empty()) {
    mode_t mode = 0;
    absl::StatusOr<std::string> text = ReadConfigText(path, &mode);
    if (absl::IsNotFound(text.status()) ||
        absl::IsPermissionDenied(text.status())) {
      out.warnings.push_back(absl::StrCat(where, ": ", text.status().message(),
                                          "; symmetric keys unavailable"));
    } else if (!text.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", text.status().message()));
    } else {
      // Group read is the documented set-up (root:ntpfleet 0640); others
      // reading the secrets is not.
      if ((mode & (S_IROTH | S_IWOTH)) != 0) {
        out.warnings.push_back(absl::StrFormat(
            "%s: mode %04o: others can %s the keys; chmod 600 %s (or 640 "
            "with the agent's group)",
            where, mode & 07777,
            (mode & S_IWOTH) != 0 ? "read and change" : "read", path));
      }
      absl::StatusOr<ntp::KeyStore> keys =
          ntp::KeyStore::Parse(*text, path, &out.warnings);
      // The keys file's own text may be anything: escaped like a log line.
      for (std::string& w : out.warnings) w = EscapeForLog(w);
      if (!keys.ok()) {
        return absl::InvalidArgumentError(
            EscapeForLog(keys.status().message()));
      }
      out.keys = *std::move(keys);
    }
  }
  for (const ServerEntry& entry : config.servers) {
    if (entry.key_id && out.keys.Find(*entry.key_id) == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: server %s uses key %d, which is not in the keys file%s",
          entry.location.ToString(), entry.host, *entry.key_id,
          path.empty() ? " (no `keys` line)" : " " + path));
    }
  }
  return out;
}

}  // namespace ntpfleet::config
