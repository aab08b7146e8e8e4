// The controller's listen addresses (--listen for gRPC, --metrics-listen for
// HTTP), checked before anything is started, so a wrong one is a usage error
// that names the expected form instead of a late "port in use?":
//
//   absl::StatusOr<HostPort> at = CheckListenAddress(
//       "banana:7123", {"--listen", 7123});
//   // InvalidArgument: "--listen banana:7123: cannot resolve 'banana' (Name
//   // or service not known); --listen takes HOST:PORT or [IPV6]:PORT of this
//   // machine, e.g. 0.0.0.0:7123 (every IPv4 address), [::]:7123 (every
//   // address) or 127.0.0.1:7123 (this machine only); port 0 picks a free
//   // port"
//
// The check resolves the host and binds a TCP socket to its addresses and the
// port (with SO_REUSEADDR, as gRPC and libmicrohttpd do), then closes it: what
// bind(2) says then is what the server would meet. Like gRPC, one address of
// several that binds is enough.
//
// Status codes, so main can pick the exit status (docs/CONTROLLER.md):
//   InvalidArgument   not an address, does not resolve, not an address of
//                     this machine (EADDRNOTAVAIL)             -> usage, exit 2
//   Unavailable       the port is in use (EADDRINUSE), or another bind error
//   PermissionDenied  a port below 1024 without CAP_NET_BIND_SERVICE
//
// Thread safety: stateless.
#ifndef NTPFLEET_CONTROLLER_LISTEN_ADDRESS_H_
#define NTPFLEET_CONTROLLER_LISTEN_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/hostport.h"

namespace ntpfleet::controller {

struct ListenSpec {
  std::string flag;      // "--listen", named in every message
  int default_port = 0;  // for the examples in messages
  // Only an IPv4 address literal (libmicrohttpd is given a sockaddr_in).
  bool ipv4_literal_only = false;
};

absl::StatusOr<HostPort> CheckListenAddress(absl::string_view address,
                                            const ListenSpec& spec);

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_LISTEN_ADDRESS_H_
