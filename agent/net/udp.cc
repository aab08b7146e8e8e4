#include "agent/net/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/port_owner.h"
#include "third_party/system/resolver.h"

namespace ntpfleet::net {
namespace {

std::string Errno(int err) { return strerror(err); }

// The SCM_TIMESTAMPING software stamp from a received message's control data.
std::optional<absl::Time> KernelTimestamp(msghdr* msg) {
  for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING) {
      timespec ts[3];
      std::memcpy(ts, CMSG_DATA(c), sizeof(ts));
      if (ts[0].tv_sec != 0 || ts[0].tv_nsec != 0)
        return absl::TimeFromTimespec(ts[0]);
    }
  }
  return std::nullopt;
}

constexpr size_t kControlSize = 256;

}  // namespace

std::string Endpoint::ToString() const {
  return ip.v6 ? absl::StrFormat("[%s]:%d", ip.ToString(), port)
               : absl::StrFormat("%s:%d", ip.ToString(), port);
}

sockaddr_storage Endpoint::ToSockaddr(socklen_t* length) const {
  sockaddr_storage ss{};
  if (ip.v6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    std::memcpy(&sin6->sin6_addr, ip.octets.data(), 16);
    *length = sizeof(sockaddr_in6);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, ip.octets.data(), 4);
    *length = sizeof(sockaddr_in);
  }
  return ss;
}

Endpoint Endpoint::FromSockaddr(const sockaddr_storage& addr) {
  Endpoint e;
  if (addr.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    e.ip.v6 = true;
    std::memcpy(e.ip.octets.data(), &sin6->sin6_addr, 16);
    e.port = ntohs(sin6->sin6_port);
    // IPv4-mapped (dual-stack socket): the IPv4 client it is.
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                            0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped, kMapped + 12, e.ip.octets.begin())) {
      e.ip = ntp::IpAddress::V4(e.ip.octets[12], e.ip.octets[13],
                                e.ip.octets[14], e.ip.octets[15]);
    }
  } else {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&addr);
    std::memcpy(e.ip.octets.data(), &sin->sin_addr, 4);
    e.port = ntohs(sin->sin_port);
  }
  return e;
}

absl::StatusOr<std::vector<Endpoint>> Resolve(const std::string& host,
                                              uint16_t port) {
  absl::StatusOr<std::vector<system::ResolvedAddress>> addresses =
      system::ResolveHost(host, AF_UNSPEC);
  if (!addresses.ok()) {
    return absl::NotFoundError(absl::StrFormat("cannot resolve %s: %s", host,
                                               addresses.status().message()));
  }
  std::vector<Endpoint> out;
  for (const system::ResolvedAddress& a : *addresses) {
    Endpoint e = Endpoint::FromSockaddr(a.address);
    e.port = port;
    if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
  }
  return out;
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) close(fd_);
}

UdpSocket::UdpSocket(UdpSocket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)) {}

UdpSocket& UdpSocket::operator=(UdpSocket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

absl::StatusOr<UdpSocket> UdpSocket::Bind(const Endpoint& local,
                                          bool reuse_port, int receive_buffer) {
  // Plain socket() then fcntl(O_NONBLOCK), not SOCK_NONBLOCK: LD_PRELOAD
  // simulators intercept these calls (ARCHITECTURE.md principle 4).
  const int fd = socket(local.ip.v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return absl::InternalError("socket: " + Errno(errno));
  UdpSocket sock(fd);
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return absl::InternalError("fcntl O_NONBLOCK: " + Errno(errno));
  }
  const int one = 1;
  if (local.ip.v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (reuse_port &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
    return absl::InternalError("SO_REUSEPORT: " + Errno(errno));
  }
  if (receive_buffer > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer,
               sizeof(receive_buffer));
  }
  // Software receive timestamps; without them the caller reads the clock after
  // recvmsg.
  const int ts = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &ts, sizeof(ts));
  socklen_t len = 0;
  const sockaddr_storage addr = local.ToSockaddr(&len);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) < 0) {
    const int err = errno;
    if (err == EADDRINUSE) {
      return absl::AlreadyExistsError(
          PortInUseMessage(local.port, FindUdpPortOwner(local.port)));
    }
    if (err == EACCES) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "cannot bind UDP port %d: permission denied (ports below 1024 need "
          "root or "
          "CAP_NET_BIND_SERVICE; or choose another port with --port)",
          local.port));
    }
    if (err == EADDRNOTAVAIL) {
      return absl::InvalidArgumentError(
          absl::StrFormat("cannot bind %s: no such local address on this host",
                          local.ToString()));
    }
    return absl::InternalError(
        absl::StrFormat("cannot bind %s: %s", local.ToString(), Errno(err)));
  }
  return sock;
}

absl::StatusOr<Endpoint> UdpSocket::LocalEndpoint() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
    return absl::InternalError("getsockname: " + Errno(errno));
  }
  return Endpoint::FromSockaddr(ss);
}

absl::Status UdpSocket::SendTo(absl::Span<const uint8_t> bytes,
                               const Endpoint& to) {
  socklen_t len = 0;
  const sockaddr_storage addr = to.ToSockaddr(&len);
  if (sendto(fd_, bytes.data(), bytes.size(), 0,
             reinterpret_cast<const sockaddr*>(&addr), len) < 0) {
    return absl::UnavailableError(
        absl::StrFormat("sendto %s: %s", to.ToString(), Errno(errno)));
  }
  return absl::OkStatus();
}

std::optional<Datagram> UdpSocket::Receive(absl::Span<uint8_t> buffer) {
  sockaddr_storage from{};
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[kControlSize];
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof(from);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(fd_, &msg, 0);
  if (n < 0) return std::nullopt;
  Datagram d;
  d.size = static_cast<size_t>(n);
  d.from = Endpoint::FromSockaddr(from);
  d.kernel_rx = KernelTimestamp(&msg);
  return d;
}

Batch::Batch()
    : in_(kBatch * kMaxDatagram),
      out_(kBatch * kMaxDatagram),
      in_length_(kBatch),
      reply_length_(kBatch),
      addr_(kBatch),
      from_(kBatch),
      rx_(kBatch),
      control_(kBatch, std::vector<uint8_t>(kControlSize)) {}

size_t Batch::Receive(const UdpSocket& socket) {
  mmsghdr msgs[kBatch] = {};
  iovec iov[kBatch];
  for (size_t i = 0; i < kBatch; ++i) {
    iov[i] = {in_.data() + i * kMaxDatagram, kMaxDatagram};
    msgs[i].msg_hdr.msg_name = &addr_[i];
    msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_control = control_[i].data();
    msgs[i].msg_hdr.msg_controllen = kControlSize;
  }
  const int n = recvmmsg(socket.fd(), msgs, kBatch, MSG_DONTWAIT, nullptr);
  received_ = n > 0 ? static_cast<size_t>(n) : 0;
  for (size_t i = 0; i < received_; ++i) {
    in_length_[i] = msgs[i].msg_len;
    reply_length_[i] = 0;
    from_[i] = Endpoint::FromSockaddr(addr_[i]);
    rx_[i] = KernelTimestamp(&msgs[i].msg_hdr);
  }
  return received_;
}

absl::Span<const uint8_t> Batch::request(size_t i) const {
  return absl::MakeConstSpan(in_.data() + i * kMaxDatagram, in_length_[i]);
}

absl::Span<uint8_t> Batch::reply_buffer(size_t i) {
  return absl::MakeSpan(out_.data() + i * kMaxDatagram, kMaxDatagram);
}

size_t Batch::Send(const UdpSocket& socket) {
  mmsghdr msgs[kBatch] = {};
  iovec iov[kBatch];
  size_t count = 0;
  for (size_t i = 0; i < received_; ++i) {
    if (reply_length_[i] == 0) continue;
    iov[count] = {out_.data() + i * kMaxDatagram, reply_length_[i]};
    msgs[count].msg_hdr.msg_name = &addr_[i];
    msgs[count].msg_hdr.msg_namelen = addr_[i].ss_family == AF_INET6
                                          ? sizeof(sockaddr_in6)
                                          : sizeof(sockaddr_in);
    msgs[count].msg_hdr.msg_iov = &iov[count];
    msgs[count].msg_hdr.msg_iovlen = 1;
    ++count;
  }
  size_t sent = 0;
  size_t next = 0;
  while (next < count) {
    const int n = sendmmsg(socket.fd(), msgs + next, count - next, 0);
    if (n > 0) {
      next += static_cast<size_t>(n);
      sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;  // buffer full
    // sendmmsg failed on msgs[next]: send that one alone and go on. An
    // LD_PRELOAD network simulator (clknetsim) intercepts sendmsg but not
    // sendmmsg, which then fails on the simulator's descriptor; on a real
    // socket, one bad destination no longer drops the rest of the batch.
    if (sendmsg(socket.fd(), &msgs[next].msg_hdr, 0) >= 0) ++sent;
    ++next;
  }
  return sent;
}

}  // namespace ntpfleet::net
