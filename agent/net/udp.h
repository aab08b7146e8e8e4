// UDP sockets for NTP with plain libc calls (socket, fcntl, bind, sendto,
// recvmsg, recvmmsg, sendmmsg), so the agent also runs under LD_PRELOAD
// clock/network simulators. Names resolve through c-ares (the hosts file, then
// DNS; third_party/system/resolver.h), not glibc's NSS, in the dynamic and the
// fully static agent alike. Receive timestamps come from the kernel
// (SO_TIMESTAMPING, software RX stamps on CLOCK_REALTIME) when it provides
// them.
#ifndef NTPFLEET_AGENT_NET_UDP_H_
#define NTPFLEET_AGENT_NET_UDP_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "agent/ntp/access.h"

namespace ntpfleet::net {

// An IP address and UDP port.
struct Endpoint {
  ntp::IpAddress ip;
  uint16_t port = 0;

  // "192.0.2.1:123", "[2001:db8::1]:123" — the engine's name for a source's
  // address.
  std::string ToString() const;
  sockaddr_storage ToSockaddr(socklen_t* length) const;
  static Endpoint FromSockaddr(const sockaddr_storage& addr);
  friend bool operator==(const Endpoint& a, const Endpoint& b) {
    return a.ip == b.ip && a.port == b.port;
  }
};

// Resolves `host` (a name or a literal address) to endpoints on `port`, from
// the hosts file, then DNS. Blocks until the answer (or resolv.conf's timeout).
// A name that does not resolve is NotFound "cannot resolve NAME: REASON".
absl::StatusOr<std::vector<Endpoint>> Resolve(const std::string& host,
                                              uint16_t port);

struct Datagram {
  size_t size = 0;
  Endpoint from;
  // The kernel's receive timestamp (CLOCK_REALTIME), if it gave one.
  std::optional<absl::Time> kernel_rx;
};

class UdpSocket {
 public:
  UdpSocket() = default;
  ~UdpSocket();
  UdpSocket(UdpSocket&& other) noexcept;
  UdpSocket& operator=(UdpSocket&& other) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // A non-blocking socket bound to `local` (port 0: any), with kernel RX
  // timestamps on. `reuse_port`: SO_REUSEPORT, for several server threads on
  // one port. `receive_buffer`: bytes of SO_RCVBUF to ask for (0: the system
  // default); bursts overflow small buffers first. EADDRINUSE -> AlreadyExists
  // naming the process that holds the port; EACCES -> PermissionDenied
  // explaining that ports below 1024 need root or CAP_NET_BIND_SERVICE.
  static absl::StatusOr<UdpSocket> Bind(const Endpoint& local,
                                        bool reuse_port = false,
                                        int receive_buffer = 0);

  int fd() const { return fd_; }
  absl::StatusOr<Endpoint> LocalEndpoint() const;
  absl::Status SendTo(absl::Span<const uint8_t> bytes, const Endpoint& to);
  // One datagram into `buffer`, or nullopt when none is waiting.
  std::optional<Datagram> Receive(absl::Span<uint8_t> buffer);

 private:
  explicit UdpSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// The server's batch path: receives up to kBatch datagrams with one recvmmsg(2)
// and sends the replies with one sendmmsg(2).
class Batch {
 public:
  static constexpr size_t kBatch = 64;
  static constexpr size_t kMaxDatagram = 1024;

  Batch();
  // Receives what is waiting (up to kBatch); returns how many.
  size_t Receive(const UdpSocket& socket);
  absl::Span<const uint8_t> request(size_t i) const;
  const Endpoint& from(size_t i) const { return from_[i]; }
  std::optional<absl::Time> kernel_rx(size_t i) const { return rx_[i]; }
  // The reply buffer for request i; set its length with SetReply (0: no reply).
  absl::Span<uint8_t> reply_buffer(size_t i);
  void SetReply(size_t i, size_t length) { reply_length_[i] = length; }
  // Sends every reply set since Receive(); returns how many the kernel took.
  size_t Send(const UdpSocket& socket);

 private:
  size_t received_ = 0;
  std::vector<uint8_t> in_;
  std::vector<uint8_t> out_;
  std::vector<size_t> in_length_;
  std::vector<size_t> reply_length_;
  std::vector<sockaddr_storage> addr_;
  std::vector<Endpoint> from_;
  std::vector<std::optional<absl::Time>> rx_;
  std::vector<std::vector<uint8_t>> control_;
};

}  // namespace ntpfleet::net

#endif  // NTPFLEET_AGENT_NET_UDP_H_
