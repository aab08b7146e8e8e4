// Checks of the `server`/`pool` lines that the parser (common/config, which
// keeps host names as written and never resolves) cannot make: one server
// written several ways is one source, numeric forms that resolvers read
// differently are refused, and an address that can never answer an NTP client
// is named with the reason.
//
//   absl::Status s = config::MergeSameServers(&cfg);  // at start and in
//   if (!s.ok()) exit 2;                               // --check-config
//   for (const std::string& w : config::UnanswerableServers(cfg, own))
//     print w;  // "agent.conf:3: server 0.0.0.0:123 is never polled: ..."
//
// Pure: no sockets, no name resolution, no file system. The agent's loop
// (agent/net) applies UnanswerableReason() and the same-address rule again to
// what names resolve to, at every (re)resolution.
#ifndef NTPFLEET_AGENT_CONFIG_SERVER_CHECKS_H_
#define NTPFLEET_AGENT_CONFIG_SERVER_CHECKS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/ntp/access.h"
#include "common/config/config.h"

namespace ntpfleet::config {

// What this agent answers on, to spot a `server` line that names the agent
// itself.
struct OwnServer {
  // The UDP port the agent serves on; 0: unknown (any free port) or not
  // serving, and then no address counts as the agent's own.
  int port = 0;
  // The one address it serves on (--listen); nullopt (or an unspecified
  // address, 0.0.0.0 or ::): every address of the host.
  std::optional<ntp::IpAddress> listen;
  // With every address: the host's own addresses (loopback, 127.0.0.0/8 and
  // ::1, always counts without being listed).
  std::vector<ntp::IpAddress> local_addresses;
  // The host's interfaces' broadcast addresses (192.168.1.255 on a /24).
  std::vector<ntp::IpAddress> broadcast_addresses;
};

// The address a `server` line's host names when it is numeric ("192.0.2.1",
// "::1"), as a resolver returns it: an IPv4-mapped IPv6 address
// (::ffff:192.0.2.1) is the IPv4 address. nullopt for a host name, and for
// the non-standard numeric forms MergeSameServers() refuses.
std::optional<ntp::IpAddress> NumericServerAddress(const std::string& host);

// Why an NTP server at ip:port can never answer this agent, in words (without
// the address, which the caller names), or "" when it may: the unspecified
// address (0.0.0.0, ::), the limited broadcast address 255.255.255.255 or an
// interface's broadcast address, a multicast address, or the agent's own
// address and port.
std::string UnanswerableReason(const ntp::IpAddress& ip, int port,
                               const OwnServer& own);

// Settles the numeric `server`/`pool` lines in `config->servers`:
// - InvalidArgument "FILE:LINE: ..." for a numeric form that inet_aton(3)
//   reads but that is not a standard address: "127.1", "127.000.000.001",
//   "0x7f.1", "2130706433". Resolvers read such forms differently (glibc's
//   and c-ares' inet_aton take "010" as octal 8, a reader as ten), so the
//   agent refuses to guess; the message gives the standard form.
// - Lines naming the same address and port (IPv4-mapped IPv6 = IPv4; any
//   spelling of an IPv6 address) become one source: the first line's, with
//   `iburst` and `prefer` if any of the lines has them; its other options
//   (minpoll, maxpoll, burst, version) stay the first line's. A warning
//   "FILE:LINE: ..." per merged line names both lines. Lines that name the
//   same server with different keys are InvalidArgument: one server, one key.
// Host names are left alone (the agent merges what they resolve to at run
// time). Idempotent.
absl::Status MergeSameServers(AgentConfig* config);

// "FILE:LINE: server ADDR:PORT is never polled: REASON" for each numeric
// server line UnanswerableReason() refuses (for --check-config; the running
// agent logs the same when it resolves the line).
std::vector<std::string> UnanswerableServers(const AgentConfig& config,
                                             const OwnServer& own);

// The line's server as written, with its port: "ntp1:123", "[::1]:123".
std::string ServerAsWritten(const ServerEntry& entry);

// "192.0.2.1:123", "[2001:db8::1]:123".
std::string ServerAddressString(const ntp::IpAddress& ip, int port);

}  // namespace ntpfleet::config

#endif  // NTPFLEET_AGENT_CONFIG_SERVER_CHECKS_H_
