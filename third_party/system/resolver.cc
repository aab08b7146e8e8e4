#include "third_party/system/resolver.h"

#include <ares.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/base/call_once.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace ntpfleet::system {
namespace {

struct Pending {
  bool done = false;
  int status = ARES_SUCCESS;
  ares_addrinfo* result = nullptr;  // ResolveHost's answer
  std::string name;                 // ResolveAddress's answer
};

void OnResult(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  auto* pending = static_cast<Pending*>(arg);
  pending->done = true;
  pending->status = status;
  pending->result = result;
}

void OnHost(void* arg, int status, int /*timeouts*/, hostent* host) {
  auto* pending = static_cast<Pending*>(arg);
  pending->done = true;
  pending->status = status;
  if (status == ARES_SUCCESS && host != nullptr && host->h_name != nullptr) {
    pending->name = host->h_name;
  }
}

// resolv.conf's `options timeout:N attempts:N` as glibc reads them (defaults 5
// s and 2, at most 30 s and 5; resolv.conf(5)). c-ares 1.18 knows only the BSD
// names (retrans:, retry:) and would otherwise wait 5+10+20+40 s for a silent
// server; both double the timeout each round, so the waits then match glibc's.
struct Timeouts {
  int timeout_ms = 5000;
  int tries = 2;
};

Timeouts ReadTimeouts(const char* path) {
  Timeouts t;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view text = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&text, "options")) continue;
    for (absl::string_view option :
         absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
      int n = 0;
      if (absl::ConsumePrefix(&option, "timeout:") &&
          absl::SimpleAtoi(option, &n) && n >= 1) {
        t.timeout_ms = std::min(n, 30) * 1000;
      } else if (absl::ConsumePrefix(&option, "attempts:") &&
                 absl::SimpleAtoi(option, &n) && n >= 1) {
        t.tries = std::min(n, 5);
      }
    }
  }
  return t;
}

// A c-ares channel set up from resolv.conf, destroyed with the object.
class Channel {
 public:
  Channel() {
    // c-ares asks for this once per process; on Linux it only counts (gRPC
    // calls it too).
    static absl::once_flag library_once;
    absl::call_once(library_once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
    // Reads resolv.conf (name servers, search, ndots, rotate) and the hosts
    // file's path now.
    const Timeouts t = ReadTimeouts("/etc/resolv.conf");
    ares_options options{};
    options.timeout = t.timeout_ms;
    options.tries = t.tries;
    status_ = ares_init_options(&channel_, &options,
                                ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (status_ != ARES_SUCCESS) channel_ = nullptr;
  }
  ~Channel() {
    if (channel_ != nullptr) ares_destroy(channel_);
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ares_channel get() const { return channel_; }
  int status() const { return status_; }

 private:
  ares_channel channel_ = nullptr;
  int status_ = ARES_SUCCESS;
};

absl::Status AresError(int status, const std::string& host) {
  const std::string reason = ares_strerror(status);
  switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
    case ARES_ENODATA:
      return absl::NotFoundError(reason);
    case ARES_ETIMEOUT:
    case ARES_ECONNREFUSED:
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
      return absl::UnavailableError(reason);
    case ARES_EBADFAMILY:
    case ARES_EBADNAME:
    case ARES_EBADFLAGS:
      return absl::InvalidArgumentError(absl::StrCat(reason, ": ", host));
    case ARES_ENOMEM:
      return absl::ResourceExhaustedError(reason);
    default:
      return absl::InternalError(reason);
  }
}

// Runs `channel` until `pending` is answered: c-ares' sockets are polled here,
// on the calling thread (no thread of c-ares' own), with c-ares' own timeouts.
void Wait(ares_channel channel, const Pending& pending) {
  while (!pending.done) {
    ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
    const int bits = ares_getsock(channel, sockets, ARES_GETSOCK_MAXNUM);
    pollfd fds[ARES_GETSOCK_MAXNUM];
    nfds_t n = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      const bool readable = ARES_GETSOCK_READABLE(bits, i);
      const bool writable = ARES_GETSOCK_WRITABLE(bits, i);
      if (!readable && !writable) break;
      fds[n].fd = sockets[i];
      fds[n].events = static_cast<short>((readable ? POLLIN : 0) |
                                         (writable ? POLLOUT : 0));
      fds[n].revents = 0;
      ++n;
    }
    timeval tv{};
    const timeval* timeout = ares_timeout(channel, nullptr, &tv);
    if (n == 0 && timeout == nullptr) {
      // Nothing to wait for and no answer: cannot happen with c-ares; do not
      // block forever.
      ares_cancel(channel);
      return;
    }
    const int ms = timeout == nullptr
                       ? -1
                       : static_cast<int>(timeout->tv_sec * 1000 +
                                          (timeout->tv_usec + 999) / 1000);
    const int ready = poll(fds, n, ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      ares_cancel(channel);
      return;
    }
    if (ready == 0) {
      // Timeouts only: retransmits, or the next server.
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      continue;
    }
    for (nfds_t i = 0; i < n; ++i) {
      const bool r = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0;
      const bool w = (fds[i].revents & POLLOUT) != 0;
      ares_process_fd(channel, r ? fds[i].fd : ARES_SOCKET_BAD,
                      w ? fds[i].fd : ARES_SOCKET_BAD);
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<ResolvedAddress>> ResolveHost(
    const std::string& host, int family, bool numeric_only) {
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) {
    return absl::InvalidArgumentError(
        absl::StrCat("address family ", family, " is not IP"));
  }
  Channel channel;
  if (channel.status() != ARES_SUCCESS)
    return AresError(channel.status(), host);
  ares_addrinfo_hints hints{};
  hints.ai_family = family;
  hints.ai_flags = numeric_only ? ARES_AI_NUMERICHOST : 0;
  Pending pending;
  ares_getaddrinfo(channel.get(), host.c_str(), /*service=*/nullptr, &hints,
                   OnResult, &pending);
  // Answered, or cancelled (ARES_ECANCELLED) if waiting failed.
  Wait(channel.get(), pending);
  if (pending.status != ARES_SUCCESS) {
    if (pending.result != nullptr) ares_freeaddrinfo(pending.result);
    return AresError(pending.status, host);
  }

  std::vector<ResolvedAddress> out;
  for (const ares_addrinfo_node* node = pending.result->nodes; node != nullptr;
       node = node->ai_next) {
    if (node->ai_addr == nullptr) continue;
    if (node->ai_family != AF_INET && node->ai_family != AF_INET6) continue;
    ResolvedAddress a;
    a.length = std::min<socklen_t>(node->ai_addrlen, sizeof(a.address));
    std::memcpy(&a.address, node->ai_addr, a.length);
    // Port 0 whatever c-ares put there (we asked for no service).
    if (a.family() == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&a.address)->sin_port = 0;
    } else {
      reinterpret_cast<sockaddr_in6*>(&a.address)->sin6_port = 0;
    }
    const bool seen =
        std::any_of(out.begin(), out.end(), [&](const ResolvedAddress& b) {
          return b.length == a.length &&
                 std::memcmp(&b.address, &a.address, a.length) == 0;
        });
    if (!seen) out.push_back(a);
  }
  ares_freeaddrinfo(pending.result);
  if (out.empty()) return absl::NotFoundError(ares_strerror(ARES_ENODATA));
  return out;
}

absl::StatusOr<std::string> ResolveAddress(const sockaddr* address,
                                           socklen_t length) {
  const void* bytes = nullptr;
  int size = 0;
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    bytes = &reinterpret_cast<const sockaddr_in*>(address)->sin_addr;
    size = sizeof(in_addr);
  } else if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    bytes = &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr;
    size = sizeof(in6_addr);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("address family ", address->sa_family, " is not IP"));
  }
  Channel channel;
  if (channel.status() != ARES_SUCCESS) return AresError(channel.status(), "");
  Pending pending;
  ares_gethostbyaddr(channel.get(), bytes, size, address->sa_family, OnHost,
                     &pending);
  Wait(channel.get(), pending);
  if (pending.status != ARES_SUCCESS) return AresError(pending.status, "");
  if (pending.name.empty())
    return absl::NotFoundError(ares_strerror(ARES_ENOTFOUND));
  return pending.name;
}

}  // namespace ntpfleet::system
