// The C library functions that a fully static binary (static_binary.bzl)
// defines itself instead of taking them from glibc's static archive: glibc's
// versions load the host's NSS modules or other shared objects at run time
// ("Using 'getaddrinfo' in statically linked applications requires at runtime
// the shared libraries from the glibc version used for linking"), which in a
// glibc 2.36 program on a glibc 2.17 host (CentOS 7) would load 2.17's modules
// into it.
//
// Our code calls none of them. They are here for the system libraries linked
// in: getaddrinfo and freeaddrinfo for gRPC (blocking lookups: the addresses a
// server listens on) and OpenSSL's BIO_lookup; gethostbyname for OpenSSL's
// BIO_gethostbyname; getservbyname for c-ares' ares_getaddrinfo (a service
// given by name); getservbyport_r for c-ares' ares_getnameinfo; dlopen for
// OpenSSL's DSO (engines and providers from openssl.cnf) and SQLite's
// load_extension.
// Names resolve through //third_party/system:resolver (the hosts file, then
// DNS, via c-ares); services come from /etc/services, read here; dlopen always
// fails: a static program loads no shared object.
//
// Linked only into static binaries (alwayslink, so these definitions come
// before libc.a's and glibc's are never pulled in; a second definition would
// fail the link, not pass silently).
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "third_party/system/resolver.h"

namespace {

// One /etc/services entry: "ntp 123/udp # Network Time Protocol".
struct Service {
  std::string name;
  std::vector<std::string> aliases;
  int port = 0;  // host order
  std::string protocol;
};

// The first entry of the services file matching `name` (or one of its aliases)
// or `port` (when name is null), and `protocol` (any when null).
bool FindService(const char* name, int port, const char* protocol,
                 Service* out) {
  std::ifstream in("/etc/services");
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view text = line;
    if (const size_t hash = text.find('#'); hash != absl::string_view::npos) {
      text = text.substr(0, hash);
    }
    std::vector<absl::string_view> fields =
        absl::StrSplit(text, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.size() < 2) continue;
    std::vector<absl::string_view> port_protocol =
        absl::StrSplit(fields[1], '/');
    int entry_port = 0;
    if (port_protocol.size() != 2 ||
        !absl::SimpleAtoi(port_protocol[0], &entry_port))
      continue;
    if (protocol != nullptr && port_protocol[1] != protocol) continue;
    bool match = false;
    if (name != nullptr) {
      for (size_t i = 0; i < fields.size(); ++i) {
        if (i == 1) continue;
        if (fields[i] == name) match = true;
      }
    } else {
      match = entry_port == port;
    }
    if (!match) continue;
    out->name = std::string(fields[0]);
    out->aliases.clear();
    for (size_t i = 2; i < fields.size(); ++i)
      out->aliases.emplace_back(fields[i]);
    out->port = entry_port;
    out->protocol = std::string(port_protocol[1]);
    return true;
  }
  return false;
}

// Copies `s` into `*buffer` (advancing it); false when `*left` bytes are too
// few.
bool Put(const std::string& s, char** buffer, size_t* left, char** where) {
  if (s.size() + 1 > *left) return false;
  std::memcpy(*buffer, s.c_str(), s.size() + 1);
  *where = *buffer;
  *buffer += s.size() + 1;
  *left -= s.size() + 1;
  return true;
}

// Fills `result` with `service`, its strings in `buffer`. ERANGE when it is too
// small.
int FillServent(const Service& service, servent* result, char* buffer,
                size_t length) {
  // The alias array first (pointer-aligned), then the strings.
  const size_t misalign = reinterpret_cast<uintptr_t>(buffer) % alignof(char*);
  const size_t skip = misalign == 0 ? 0 : alignof(char*) - misalign;
  const size_t array_bytes = (service.aliases.size() + 1) * sizeof(char*);
  if (length < skip + array_bytes) return ERANGE;
  char** aliases = reinterpret_cast<char**>(buffer + skip);
  char* next = buffer + skip + array_bytes;
  size_t left = length - skip - array_bytes;
  for (size_t i = 0; i < service.aliases.size(); ++i) {
    if (!Put(service.aliases[i], &next, &left, &aliases[i])) return ERANGE;
  }
  aliases[service.aliases.size()] = nullptr;
  if (!Put(service.name, &next, &left, &result->s_name)) return ERANGE;
  if (!Put(service.protocol, &next, &left, &result->s_proto)) return ERANGE;
  result->s_aliases = aliases;
  result->s_port = static_cast<int>(htons(static_cast<uint16_t>(service.port)));
  return 0;
}

int EaiFromStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return EAI_NONAME;
    case absl::StatusCode::kUnavailable:
      return EAI_AGAIN;
    case absl::StatusCode::kResourceExhausted:
      return EAI_MEMORY;
    case absl::StatusCode::kInvalidArgument:
      return EAI_NONAME;
    default:
      return EAI_FAIL;
  }
}

// One addrinfo and its address in one allocation (freeaddrinfo frees both at
// once).
struct AddrinfoBlock {
  addrinfo info;
  sockaddr_storage address;
};

addrinfo* NewAddrinfo(const sockaddr_storage& address, socklen_t length,
                      int socktype, int protocol, uint16_t port) {
  auto* block = static_cast<AddrinfoBlock*>(calloc(1, sizeof(AddrinfoBlock)));
  if (block == nullptr) return nullptr;
  std::memcpy(&block->address, &address, length);
  if (address.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&block->address)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&block->address)->sin6_port = htons(port);
  }
  block->info.ai_family = address.ss_family;
  block->info.ai_socktype = socktype;
  block->info.ai_protocol = protocol;
  block->info.ai_addrlen = length;
  block->info.ai_addr = reinterpret_cast<sockaddr*>(&block->address);
  return &block->info;
}

ntpfleet::system::ResolvedAddress Wildcard(int family, bool passive) {
  ntpfleet::system::ResolvedAddress a;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.address);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
    a.length = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.address);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = passive ? in6addr_any : in6addr_loopback;
    a.length = sizeof(sockaddr_in6);
  }
  return a;
}

}  // namespace

extern "C" {

// getaddrinfo(3) as POSIX describes it, for IPv4 and IPv6; names through the
// hosts file and DNS (resolver.h). AI_ADDRCONFIG is accepted and ignored.
int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                addrinfo** res) {
  addrinfo defaults{};
  defaults.ai_family = AF_UNSPEC;
  defaults.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG;
  const addrinfo& h = hints != nullptr ? *hints : defaults;
  constexpr int kKnownFlags = AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST |
                              AI_NUMERICSERV | AI_V4MAPPED | AI_ALL |
                              AI_ADDRCONFIG;
  if ((h.ai_flags & ~kKnownFlags) != 0) return EAI_BADFLAGS;
  if (node == nullptr && service == nullptr) return EAI_NONAME;
  if (h.ai_family != AF_UNSPEC && h.ai_family != AF_INET &&
      h.ai_family != AF_INET6) {
    return EAI_FAMILY;
  }
  // The socket types asked for, each with its protocol (all three when none is
  // named).
  struct Kind {
    int socktype;
    int protocol;
    const char* name;
  };
  std::vector<Kind> kinds;
  for (const Kind& k :
       {Kind{SOCK_STREAM, IPPROTO_TCP, "tcp"},
        Kind{SOCK_DGRAM, IPPROTO_UDP, "udp"}, Kind{SOCK_RAW, 0, nullptr}}) {
    if (h.ai_socktype != 0 && h.ai_socktype != k.socktype) continue;
    if (h.ai_protocol != 0 && k.protocol != 0 && h.ai_protocol != k.protocol)
      continue;
    kinds.push_back(k);
    if (h.ai_protocol != 0) kinds.back().protocol = h.ai_protocol;
  }
  if (kinds.empty()) return h.ai_socktype != 0 ? EAI_SOCKTYPE : EAI_SERVICE;

  // The port: numeric, or by name from /etc/services per protocol (raw sockets
  // have none).
  std::vector<uint16_t> ports(kinds.size(), 0);
  if (service != nullptr && service[0] != '\0') {
    int numeric = 0;
    if (absl::SimpleAtoi(service, &numeric)) {
      if (numeric < 0 || numeric > 65535) return EAI_SERVICE;
      for (uint16_t& p : ports) p = static_cast<uint16_t>(numeric);
    } else {
      if ((h.ai_flags & AI_NUMERICSERV) != 0) return EAI_NONAME;
      std::vector<Kind> named;
      std::vector<uint16_t> named_ports;
      for (const Kind& k : kinds) {
        Service s;
        if (k.name != nullptr && FindService(service, 0, k.name, &s)) {
          named.push_back(k);
          named_ports.push_back(static_cast<uint16_t>(s.port));
        }
      }
      if (named.empty()) return EAI_SERVICE;
      kinds = named;
      ports = named_ports;
    }
  }

  std::vector<ntpfleet::system::ResolvedAddress> addresses;
  if (node == nullptr) {
    // The wildcard (to bind) or loopback address.
    const bool passive = (h.ai_flags & AI_PASSIVE) != 0;
    if (h.ai_family != AF_INET)
      addresses.push_back(Wildcard(AF_INET6, passive));
    if (h.ai_family != AF_INET6)
      addresses.push_back(Wildcard(AF_INET, passive));
  } else {
    absl::StatusOr<std::vector<ntpfleet::system::ResolvedAddress>> resolved =
        ntpfleet::system::ResolveHost(node, h.ai_family,
                                      (h.ai_flags & AI_NUMERICHOST) != 0);
    if (!resolved.ok()) return EaiFromStatus(resolved.status());
    addresses = *std::move(resolved);
  }

  addrinfo* head = nullptr;
  addrinfo** tail = &head;
  for (const ntpfleet::system::ResolvedAddress& a : addresses) {
    for (size_t i = 0; i < kinds.size(); ++i) {
      addrinfo* ai = NewAddrinfo(a.address, a.length, kinds[i].socktype,
                                 kinds[i].protocol, ports[i]);
      if (ai == nullptr) {
        freeaddrinfo(head);
        return EAI_MEMORY;
      }
      *tail = ai;
      tail = &ai->ai_next;
    }
  }
  if (head != nullptr && (h.ai_flags & AI_CANONNAME) != 0 && node != nullptr) {
    head->ai_canonname = strdup(node);
  }
  *res = head;
  return 0;
}

void freeaddrinfo(addrinfo* ai) noexcept {
  while (ai != nullptr) {
    addrinfo* next = ai->ai_next;
    free(ai->ai_canonname);
    // ai is the first member of its AddrinfoBlock.
    free(ai);
    ai = next;
  }
}

// gethostbyname(3): IPv4 addresses of `name`, in storage of this thread.
hostent* gethostbyname(const char* name) {
  thread_local hostent entry;
  thread_local std::string stored_name;
  thread_local std::vector<in_addr> addresses;
  thread_local std::vector<char*> list;
  thread_local char* no_aliases[] = {nullptr};
  if (name == nullptr) {
    h_errno = HOST_NOT_FOUND;
    return nullptr;
  }
  absl::StatusOr<std::vector<ntpfleet::system::ResolvedAddress>> resolved =
      ntpfleet::system::ResolveHost(name, AF_INET);
  if (!resolved.ok()) {
    h_errno = absl::IsUnavailable(resolved.status()) ? TRY_AGAIN
              : absl::IsNotFound(resolved.status())  ? HOST_NOT_FOUND
                                                     : NO_RECOVERY;
    return nullptr;
  }
  stored_name = name;
  addresses.clear();
  for (const ntpfleet::system::ResolvedAddress& a : *resolved) {
    addresses.push_back(
        reinterpret_cast<const sockaddr_in*>(&a.address)->sin_addr);
  }
  list.clear();
  for (in_addr& a : addresses) list.push_back(reinterpret_cast<char*>(&a));
  list.push_back(nullptr);
  entry.h_name = stored_name.data();
  entry.h_aliases = no_aliases;
  entry.h_addrtype = AF_INET;
  entry.h_length = sizeof(in_addr);
  entry.h_addr_list = list.data();
  return &entry;
}

// getservbyname(3) from /etc/services, in storage of this thread.
servent* getservbyname(const char* name, const char* protocol) {
  thread_local servent entry;
  thread_local char buffer[1024];
  Service service;
  if (name == nullptr || !FindService(name, 0, protocol, &service))
    return nullptr;
  if (FillServent(service, &entry, buffer, sizeof(buffer)) != 0) return nullptr;
  return &entry;
}

// getservbyport_r(3) from /etc/services; `port` in network byte order.
int getservbyport_r(int port, const char* protocol, servent* result,
                    char* buffer, size_t length, servent** found) {
  *found = nullptr;
  Service service;
  if (!FindService(nullptr, ntohs(static_cast<uint16_t>(port)), protocol,
                   &service))
    return 0;
  if (const int rc = FillServent(service, result, buffer, length); rc != 0)
    return rc;
  *found = result;
  return 0;
}

// getnameinfo(3) for IPv4 and IPv6: names through the hosts file and DNS
// (resolver.h), services from /etc/services. NI_NOFQDN keeps the name up to its
// first dot (glibc: only for hosts in the local domain).
int getnameinfo(const sockaddr* address, socklen_t length, char* host,
                socklen_t host_length, char* service, socklen_t service_length,
                int flags) {
  constexpr int kKnownFlags = NI_NUMERICHOST | NI_NUMERICSERV | NI_NOFQDN |
                              NI_NAMEREQD | NI_DGRAM | NI_IDN;
  if ((flags & ~kKnownFlags) != 0) return EAI_BADFLAGS;
  if (address == nullptr) return EAI_FAMILY;
  if (host == nullptr && service == nullptr) return EAI_NONAME;
  int port = 0;
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    port = ntohs(reinterpret_cast<const sockaddr_in*>(address)->sin_port);
  } else if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(address)->sin6_port);
  } else {
    return EAI_FAMILY;
  }
  if (host != nullptr && host_length > 0) {
    std::string name;
    if ((flags & NI_NUMERICHOST) == 0) {
      absl::StatusOr<std::string> resolved =
          ntpfleet::system::ResolveAddress(address, length);
      if (resolved.ok()) {
        name = *std::move(resolved);
        if ((flags & NI_NOFQDN) != 0) name = name.substr(0, name.find('.'));
      } else if (absl::IsUnavailable(resolved.status())) {
        return EAI_AGAIN;
      } else if ((flags & NI_NAMEREQD) != 0) {
        return EAI_NONAME;
      }
    }
    if (name.empty()) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* bytes =
          address->sa_family == AF_INET
              ? static_cast<const void*>(
                    &reinterpret_cast<const sockaddr_in*>(address)->sin_addr)
              : static_cast<const void*>(
                    &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr);
      if (inet_ntop(address->sa_family, bytes, text, sizeof(text)) == nullptr)
        return EAI_SYSTEM;
      name = text;
      // A link-local IPv6 address's zone, numerically ("fe80::1%2").
      if (address->sa_family == AF_INET6) {
        const uint32_t scope =
            reinterpret_cast<const sockaddr_in6*>(address)->sin6_scope_id;
        if (scope != 0) name += "%" + std::to_string(scope);
      }
    }
    if (name.size() + 1 > host_length) return EAI_OVERFLOW;
    std::memcpy(host, name.c_str(), name.size() + 1);
  }
  if (service != nullptr && service_length > 0) {
    std::string text = std::to_string(port);
    Service found;
    if ((flags & NI_NUMERICSERV) == 0 &&
        FindService(nullptr, port, (flags & NI_DGRAM) != 0 ? "udp" : "tcp",
                    &found)) {
      text = found.name;
    }
    if (text.size() + 1 > service_length) return EAI_OVERFLOW;
    std::memcpy(service, text.c_str(), text.size() + 1);
  }
  return 0;
}

// A static program loads no shared object: OpenSSL and SQLite report the
// failure they would for a missing file.
void* dlopen(const char* /*file*/, int /*mode*/) noexcept { return nullptr; }

}  // extern "C"
