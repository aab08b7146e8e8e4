// The `keys` file a configuration names, read and checked the way the agent's
// start reads it, so that `ntpfleet-agent --check-config` passes exactly what
// the start accepts.
//
//   absl::StatusOr<config::LoadedKeys> keys = config::LoadKeysFile(cfg);
//   if (!keys.ok()) return keys.status();  // "agent.conf:3: keys ...: ..."
//   for (const std::string& w : keys->warnings) Log(kWarning, "%s", w);
//
// Thread safety: safe to call concurrently.
#ifndef NTPFLEET_AGENT_CONFIG_KEYS_FILE_H_
#define NTPFLEET_AGENT_CONFIG_KEYS_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/ntp/auth.h"
#include "common/config/config.h"

namespace ntpfleet::config {

struct LoadedKeys {
  ntp::KeyStore keys;  // empty without a `keys` line or a readable file
  // "FILE:LINE: ..." each: a missing or unreadable file (no keys then), a
  // file others may read ("chmod 600"), a key's unsupported address list.
  std::vector<std::string> warnings;
};

// The keys of `config.keys_file`. Errors (InvalidArgument), each naming the
// config line of `keys` or the keys file's line: the path is a directory, FIFO
// or device; the file is malformed, gives a key id twice or has extra tokens;
// a `server ... key N` whose key N is not in it. A missing or unreadable file
// is only a warning, as in ntpd (unless a server needs one of its keys).
absl::StatusOr<LoadedKeys> LoadKeysFile(const AgentConfig& config);

}  // namespace ntpfleet::config

#endif  // NTPFLEET_AGENT_CONFIG_KEYS_FILE_H_
