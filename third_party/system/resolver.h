// Name resolution without glibc's NSS: the hosts file, then DNS as
// /etc/resolv.conf says, through c-ares (the resolver library gRPC already
// links). The agent resolves its upstreams' names with it, and the fully static
// binaries answer every getaddrinfo() call with it (static_libc.cc): glibc's
// own getaddrinfo loads the host's NSS modules at run time, which a statically
// linked program must not do (static_binary.bzl says why).
//
//   absl::StatusOr<std::vector<ntpfleet::system::ResolvedAddress>> addresses =
//       ntpfleet::system::ResolveHost("ntp.example.net", AF_UNSPEC);
//
// Differences from glibc's getaddrinfo with the usual "hosts: files dns": no
// other NSS source (LDAP, mDNS, systemd-resolved's nss module;
// systemd-resolved's stub on 127.0.0.53 from resolv.conf does work), and no
// AI_ADDRCONFIG filtering.
//
// Thread-safe: every call has its own c-ares channel.
#ifndef NTPFLEET_THIRD_PARTY_SYSTEM_RESOLVER_H_
#define NTPFLEET_THIRD_PARTY_SYSTEM_RESOLVER_H_

#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ntpfleet::system {

// One address, port 0.
struct ResolvedAddress {
  sockaddr_storage address{};
  socklen_t length = 0;
  int family() const { return address.ss_family; }
};

// Every address of `host` in `family` (AF_INET, AF_INET6, or AF_UNSPEC for
// both), without repeats, best first (RFC 6724 destination address selection,
// as c-ares sorts them). A literal address is returned as it is, without a
// lookup. `numeric_only`: refuse names (AI_NUMERICHOST). Blocks until the
// answer, or until c-ares gives up (resolv.conf's timeout and attempts). Errors
// carry c-ares' reason: NotFound (no such name, no address in `family`, or a
// name with `numeric_only`), Unavailable (no answer from any name server: try
// again later), InvalidArgument (a family that is not IP), ResourceExhausted,
// Internal.
absl::StatusOr<std::vector<ResolvedAddress>> ResolveHost(
    const std::string& host, int family, bool numeric_only = false);

// The name of `address` (AF_INET or AF_INET6; the port is ignored): the hosts
// file, then a DNS PTR query. Blocks like ResolveHost. NotFound when the
// address has no name; the other errors as ResolveHost's.
absl::StatusOr<std::string> ResolveAddress(const sockaddr* address,
                                           socklen_t length);

}  // namespace ntpfleet::system

#endif  // NTPFLEET_THIRD_PARTY_SYSTEM_RESOLVER_H_
