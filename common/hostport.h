// Addresses and ports from flags and config files, checked: a port outside
// 1..65535 is an error naming the setting, never silently wrapped (gRPC and
// the kernel would take 99999 as 34463, and -5 as 0 or 123).
//
//   absl::StatusOr<HostPort> a = ParseHostPort("127.0.0.1:7123", "--listen");
//   absl::StatusOr<int> p = ParsePort("70000", "--port", /*allow_zero=*/true);
//   // -> InvalidArgument "--port: 70000 is not a port (1..65535, or 0 for
//   //    any free port)"
#ifndef NTPFLEET_COMMON_HOSTPORT_H_
#define NTPFLEET_COMMON_HOSTPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ntpfleet {

struct HostPort {
  std::string host;  // a name, an IPv4 address, or an IPv6 address without []
  int port = 0;
};

// A port number in `text`: decimal digits only, 1..65535 (0 too when
// `allow_zero`: "any free port"). InvalidArgument naming `what` otherwise.
absl::StatusOr<int> ParsePort(absl::string_view text, absl::string_view what,
                              bool allow_zero = false);
// The same check for a number already parsed (e.g. an int flag).
absl::StatusOr<int> CheckPort(long long port, absl::string_view what,
                              bool allow_zero = false);

// "host:port", "[v6]:port" (the form gRPC dials and listens on). The host may
// not be empty; the port as ParsePort. Also accepts gRPC's "dns:///host:port"
// and "ipv4:"/"ipv6:" prefixes by checking the part after them.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address,
                                       absl::string_view what,
                                       bool allow_zero = false);

// Whether `host` (as in HostPort) is a loopback address or "localhost":
// 127.0.0.0/8, ::1.
bool IsLoopbackHost(absl::string_view host);

// A host name as DNS allows it (letters, digits, '-', '.', and '_' which some
// private zones use), at most 253 bytes, not starting with '-' (that would
// read as an option). Says nothing of whether it resolves.
bool IsHostName(absl::string_view s);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_HOSTPORT_H_
