// The configured `restrict` rules (common/config) as the NTP server's access
// list (agent/ntp/access): what the agent serves, and what it answers
// `ntpfleetctl doctor`'s serve check with (LocalRequest.serve_check) before
// doctor blames a firewall.
//
// Example:
//   ntp::AccessList access = config::ToAccessList(cfg.restrictions);
//   bool served = !(access.Lookup(client) & (ntp::kIgnore | ntp::kNoServe));
#ifndef NTPFLEET_AGENT_CONFIG_ACCESS_LIST_H_
#define NTPFLEET_AGENT_CONFIG_ACCESS_LIST_H_

#include <vector>

#include "agent/ntp/access.h"
#include "common/config/config.h"

namespace ntpfleet::config {

// Each rule with family kAny becomes one IPv4 and one IPv6 rule; masks become
// prefix lengths (the parser accepts only contiguous masks).
ntp::AccessList ToAccessList(const std::vector<RestrictRule>& rules);

}  // namespace ntpfleet::config

#endif  // NTPFLEET_AGENT_CONFIG_ACCESS_LIST_H_
