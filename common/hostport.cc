// Checked ports and host:port addresses (see hostport.h).
#include "common/hostport.h"

#include <arpa/inet.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ntpfleet {
namespace {

std::string Range(bool allow_zero) {
  return allow_zero ? "1..65535, or 0 for any free port" : "1..65535";
}

}  // namespace

absl::StatusOr<int> CheckPort(long long port, absl::string_view what,
                              bool allow_zero) {
  if (port > 65535 || port < 0 || (port == 0 && !allow_zero)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %d is not a port (%s)", what, port, Range(allow_zero)));
  }
  return static_cast<int>(port);
}

absl::StatusOr<int> ParsePort(absl::string_view text, absl::string_view what,
                              bool allow_zero) {
  if (text.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: the port is missing (%s)", what, Range(allow_zero)));
  }
  long long value = 0;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: '%s' is not a port (%s)", what,
                          absl::CEscape(text), Range(allow_zero)));
    }
    // Saturates: "99999999999999999999" is out of range, not wrapped.
    if (value <= 1000000) value = value * 10 + (c - '0');
  }
  return CheckPort(value, what, allow_zero);
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address,
                                       absl::string_view what,
                                       bool allow_zero) {
  absl::string_view rest = address;
  // gRPC's target schemes.
  for (absl::string_view prefix : {"dns:///", "ipv4:", "ipv6:"}) {
    if (absl::StartsWith(rest, prefix)) {
      rest.remove_prefix(prefix.size());
      break;
    }
  }
  HostPort out;
  absl::string_view port_text;
  if (absl::StartsWith(rest, "[")) {
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: '%s' has no ']' after the IPv6 address; write [ADDRESS]:PORT",
          what, absl::CEscape(address)));
    }
    out.host = std::string(rest.substr(1, close - 1));
    absl::string_view after = rest.substr(close + 1);
    if (!absl::StartsWith(after, ":")) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: '%s' has no port; write [%s]:PORT", what,
                          absl::CEscape(address), out.host));
    }
    port_text = after.substr(1);
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: '%s' has no port; write HOST:PORT", what,
                          absl::CEscape(address)));
    }
    if (rest.substr(0, colon).find(':') != absl::string_view::npos) {
      // "::1:123": which colon ends the address?
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: '%s' is ambiguous: write an IPv6 address in brackets, as in "
          "[::1]:123",
          what, absl::CEscape(address)));
    }
    out.host = std::string(rest.substr(0, colon));
    port_text = rest.substr(colon + 1);
  }
  if (out.host.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: '%s' has no host; write HOST:PORT, e.g. 127.0.0.1:7123", what,
        absl::CEscape(address)));
  }
  absl::StatusOr<int> port = ParsePort(port_text, what, allow_zero);
  if (!port.ok()) return port.status();
  out.port = *port;
  return out;
}

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  const std::string h(host);
  in_addr v4;
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // ::ffff:127.x.y.z
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return v6.s6_addr[12] == 127;
  }
  return false;
}

bool IsHostName(absl::string_view s) {
  if (s.empty() || s.size() > 253 || s[0] == '-') return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '.' && c != '_') {
      return false;
    }
  }
  return true;
}

}  // namespace ntpfleet
