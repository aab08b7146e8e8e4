#include "controller/listen_address.h"

#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace ntpfleet::controller {
namespace {

// "--listen takes HOST:PORT or [IPV6]:PORT of this machine, e.g. ..." for
// `spec`.
std::string ExpectedForm(const ListenSpec& spec) {
  const int p = spec.default_port;
  if (spec.ipv4_literal_only) {
    return absl::StrFormat(
        "%s takes IPV4:PORT of this machine, e.g. 0.0.0.0:%d (every IPv4 "
        "address) or 127.0.0.1:%d (this machine only); port 0 picks a free "
        "port",
        spec.flag, p, p);
  }
  return absl::StrFormat(
      "%s takes HOST:PORT or [IPV6]:PORT of this machine, e.g. 0.0.0.0:%d "
      "(every IPv4 address), [::]:%d (every address) or 127.0.0.1:%d (this "
      "machine only); port 0 picks a free port",
      spec.flag, p, p, p);
}

// Binds a TCP socket to `ai` as a server would, and closes it. Returns the
// errno of the failing call, 0 when the bind succeeded.
int TryBind(const addrinfo& ai) {
  const int fd =
      socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return errno;
  // gRPC and libmicrohttpd set it: a port whose old connections linger in
  // TIME_WAIT is free for them, so it is free here.
  const int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int error = 0;
  if (bind(fd, ai.ai_addr, ai.ai_addrlen) != 0) error = errno;
  close(fd);
  return error;
}

}  // namespace

absl::StatusOr<HostPort> CheckListenAddress(absl::string_view address,
                                            const ListenSpec& spec) {
  absl::StatusOr<HostPort> at =
      ParseHostPort(address, spec.flag, /*allow_zero=*/true);
  if (!at.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s (%s)", at.status().message(), ExpectedForm(spec)));
  }
  const std::string quoted = absl::CEscape(address);
  addrinfo hints{};
  hints.ai_family = spec.ipv4_literal_only ? AF_INET : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV |
                   (spec.ipv4_literal_only ? AI_NUMERICHOST : 0);
  addrinfo* found = nullptr;
  const std::string port = std::to_string(at->port);
  const int gai = getaddrinfo(at->host.c_str(), port.c_str(), &hints, &found);
  if (gai != 0) {
    if (spec.ipv4_literal_only) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s %s: '%s' is not an IPv4 address; %s", spec.flag,
                          quoted, absl::CEscape(at->host), ExpectedForm(spec)));
    }
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s %s: cannot resolve '%s' (%s); %s", spec.flag, quoted,
        absl::CEscape(at->host),
        gai == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(gai),
        ExpectedForm(spec)));
  }
  // As gRPC does: listening succeeds when at least one of the resolved
  // addresses binds ("localhost" is 127.0.0.1 and ::1, and IPv6 may be off).
  bool bound = false;
  int error = 0;
  for (const addrinfo* ai = found; ai != nullptr && !bound; ai = ai->ai_next) {
    const int e = TryBind(*ai);
    if (e == 0) {
      bound = true;
    } else if (error == 0 || e == EADDRINUSE) {
      error = e;
    }
  }
  freeaddrinfo(found);
  if (bound) return at;
  switch (error) {
    case EADDRINUSE:
      return absl::UnavailableError(absl::StrFormat(
          "%s %s: TCP port %d is in use (another ntpfleet-controller? `ss "
          "-ltnp 'sport = :%d'` shows who holds it); stop it or choose "
          "another port with %s",
          spec.flag, quoted, at->port, at->port, spec.flag));
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s %s: '%s' is not an address of this machine (%s); %s", spec.flag,
          quoted, absl::CEscape(at->host), std::strerror(error),
          ExpectedForm(spec)));
    case EACCES:
      return absl::PermissionDeniedError(absl::StrFormat(
          "%s %s: port %d is below 1024 and needs CAP_NET_BIND_SERVICE (%s); "
          "choose a port from 1024 up with %s",
          spec.flag, quoted, at->port, std::strerror(error), spec.flag));
    default:
      return absl::UnavailableError(
          absl::StrFormat("%s %s: cannot bind it (%s)", spec.flag, quoted,
                          std::strerror(error)));
  }
}

}  // namespace ntpfleet::controller
