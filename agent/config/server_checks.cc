#include "agent/config/server_checks.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace ntpfleet::config {
namespace {

bool IsMappedV4(const ntp::IpAddress& ip) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                          0, 0, 0, 0, 0xff, 0xff};
  return ip.v6 && std::equal(kMapped, kMapped + 12, ip.octets.begin());
}

// ::ffff:a.b.c.d as a.b.c.d (what a resolver returns for it, and where the
// datagrams go).
ntp::IpAddress Canonical(ntp::IpAddress ip) {
  if (!IsMappedV4(ip)) return ip;
  return ntp::IpAddress::V4(ip.octets[12], ip.octets[13], ip.octets[14],
                            ip.octets[15]);
}

bool IsUnspecified(const ntp::IpAddress& ip) {
  const size_t n = ip.v6 ? 16 : 4;
  return std::all_of(ip.octets.begin(), ip.octets.begin() + n,
                     [](uint8_t b) { return b == 0; });
}

bool IsLoopback(const ntp::IpAddress& ip) {
  if (!ip.v6) return ip.octets[0] == 127;
  static constexpr uint8_t kOne[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                       0, 0, 0, 0, 0, 0, 0, 1};
  return std::equal(kOne, kOne + 16, ip.octets.begin());
}

bool Contains(const std::vector<ntp::IpAddress>& list,
              const ntp::IpAddress& ip) {
  for (const ntp::IpAddress& a : list) {
    if (Canonical(a) == ip) return true;
  }
  return false;
}

// Whether ip:port is where this agent itself answers.
bool IsOwn(const ntp::IpAddress& ip, int port, const OwnServer& own) {
  if (own.port <= 0 || port != own.port) return false;
  if (own.listen && !IsUnspecified(*own.listen)) {
    return Canonical(*own.listen) == ip;
  }
  return IsLoopback(ip) || Contains(own.local_addresses, ip);
}

std::string KeyName(const std::optional<uint32_t>& key) {
  return key ? absl::StrCat("key ", *key) : "no key";
}

}  // namespace

std::string ServerAsWritten(const ServerEntry& entry) {
  return entry.host.find(':') != std::string::npos
             ? absl::StrFormat("[%s]:%d", entry.host, entry.port)
             : absl::StrFormat("%s:%d", entry.host, entry.port);
}

std::string ServerAddressString(const ntp::IpAddress& ip, int port) {
  return ip.v6 ? absl::StrFormat("[%s]:%d", ip.ToString(), port)
               : absl::StrFormat("%s:%d", ip.ToString(), port);
}

std::optional<ntp::IpAddress> NumericServerAddress(const std::string& host) {
  absl::StatusOr<ntp::IpAddress> ip = ntp::IpAddress::Parse(host);
  if (!ip.ok()) return std::nullopt;
  return Canonical(*ip);
}

std::string UnanswerableReason(const ntp::IpAddress& address, int port,
                               const OwnServer& own) {
  const ntp::IpAddress ip = Canonical(address);
  if (IsUnspecified(ip)) {
    return "the unspecified (\"any\") address belongs to no server: a request "
           "to it reaches this host itself and any reply comes from another "
           "address, which is dropped; write the server's own address";
  }
  if (!ip.v6 && ip.octets[0] == 0) {
    return "0.0.0.0/8 means \"this network\" (RFC 1122 §3.2.1.3) and is no "
           "destination; write the server's own address";
  }
  if (!ip.v6 && ip == ntp::IpAddress::V4(255, 255, 255, 255)) {
    return "the limited broadcast address is no server's: the kernel refuses "
           "to send to it (no SO_BROADCAST), and servers would answer from "
           "their own addresses, which are dropped; write one server's "
           "address";
  }
  if (Contains(own.broadcast_addresses, ip)) {
    return "it is the broadcast address of one of this host's networks: "
           "servers would answer from their own addresses, which are dropped; "
           "write one server's address";
  }
  if ((!ip.v6 && (ip.octets[0] & 0xf0) == 0xe0) ||
      (ip.v6 && ip.octets[0] == 0xff)) {
    return "a multicast address is no server's: servers answer from their "
           "own unicast addresses, which are dropped (multicast client mode is "
           "not supported); write one server's address";
  }
  if (IsOwn(ip, port, own)) {
    return absl::StrFormat(
        "it is this agent's own NTP server (it serves on UDP port %d): the "
        "agent would measure its own clock; to serve this node's clock with "
        "no upstream, write `server 127.127.1.0` and `fudge 127.127.1.0 "
        "stratum 10`",
        own.port);
  }
  return "";
}

absl::Status MergeSameServers(AgentConfig* config) {
  std::vector<ServerEntry> kept;
  // The address of each kept entry, when numeric.
  std::vector<std::optional<ntp::IpAddress>> kept_ip;
  for (ServerEntry& entry : config->servers) {
    in_addr aton{};
    if (!ntp::IpAddress::Parse(entry.host).ok() &&
        inet_aton(entry.host.c_str(), &aton) == 1) {
      char standard[INET_ADDRSTRLEN] = {};
      inet_ntop(AF_INET, &aton, standard, sizeof(standard));
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: '%s' is not a standard IPv4 address: resolvers read shortened "
          "forms (127.1), leading zeros (010: octal 8, or ten?) and hex "
          "differently, so the agent does not guess; write four decimal "
          "numbers without leading zeros (inet_aton reads this one as %s)",
          entry.location.ToString(), entry.host, standard));
    }
    const std::optional<ntp::IpAddress> ip = NumericServerAddress(entry.host);
    bool merged = false;
    for (size_t i = 0; ip && i < kept.size() && !merged; ++i) {
      if (!kept_ip[i] || !(*kept_ip[i] == *ip) || kept[i].port != entry.port) {
        continue;
      }
      ServerEntry& first = kept[i];
      if (first.key_id != entry.key_id) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: %s is the same server as %s, but with %s (there: %s): one "
            "server has one key; remove one of the lines",
            entry.location.ToString(), ServerAddressString(*ip, entry.port),
            first.location.ToString(), KeyName(entry.key_id),
            KeyName(first.key_id)));
      }
      std::vector<std::string> added;
      if (entry.iburst && !first.iburst) added.push_back("iburst");
      if (entry.prefer && !first.prefer) added.push_back("prefer");
      first.iburst = first.iburst || entry.iburst;
      first.prefer = first.prefer || entry.prefer;
      config->warnings.push_back(absl::StrFormat(
          "%s: %s %s is %s, the same server as %s (%s %s): polled once, with "
          "the options of %s%s",
          entry.location.ToString(), entry.is_pool ? "pool" : "server",
          ServerAsWritten(entry), ServerAddressString(*ip, entry.port),
          first.location.ToString(), first.is_pool ? "pool" : "server",
          ServerAsWritten(first), first.location.ToString(),
          added.empty() ? ""
                        : absl::StrCat(" and this line's ",
                                       absl::StrJoin(added, " and "))));
      merged = true;
    }
    if (merged) continue;
    kept.push_back(std::move(entry));
    kept_ip.push_back(ip);
  }
  config->servers = std::move(kept);
  return absl::OkStatus();
}

std::vector<std::string> UnanswerableServers(const AgentConfig& config,
                                             const OwnServer& own) {
  std::vector<std::string> out;
  for (const ServerEntry& entry : config.servers) {
    const std::optional<ntp::IpAddress> ip = NumericServerAddress(entry.host);
    if (!ip) continue;
    const std::string why = UnanswerableReason(*ip, entry.port, own);
    if (why.empty()) continue;
    out.push_back(absl::StrFormat("%s: server %s is never polled: %s",
                                  entry.location.ToString(),
                                  ServerAddressString(*ip, entry.port), why));
  }
  return out;
}

}  // namespace ntpfleet::config
