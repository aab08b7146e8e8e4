// Who holds a UDP port: turns ntpd's classic "the NTP socket is in use" into a
// message that names the process and says how to get it out of the way. Call
// it when binding the server's UDP port fails with EADDRINUSE.
//
// The owner is found the way ss(8) and fuser(1) do it: /proc/net/udp and
// /proc/net/udp6 list every UDP socket of our network namespace with its local
// port and inode, and /proc/PID/fd/N of the process holding one is a symlink
// to "socket:[INODE]".
//
// Example:
//   if (bind(fd, addr, len) != 0 && errno == EADDRINUSE) {
//     return absl::UnavailableError(ntpfleet::net::PortInUseMessage(
//         port, ntpfleet::net::FindUdpPortOwner(port)));
//     // "UDP port 123 is in use by ntpd (pid 12010); stop it (systemctl stop
//     // ntpd) or choose another port"
//   }
//
// Thread safety: all functions are stateless and may be called from any
// thread.
#ifndef NTPFLEET_COMMON_PORT_OWNER_H_
#define NTPFLEET_COMMON_PORT_OWNER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ntpfleet::net {

// A process holding a socket.
struct PortOwner {
  int pid = 0;
  // /proc/PID/comm without its trailing newline: the executable's name cut to
  // 15 bytes, or whatever the process set with prctl(PR_SET_NAME). Raw bytes;
  // PortInUseMessage makes it printable.
  std::string command;
};

// Finds a process holding a UDP socket whose local port is `port` (IPv4 or
// IPv6, any local address, bound or connected), by reading
// PROC_ROOT/net/udp and PROC_ROOT/net/udp6 and matching the sockets' inodes
// against the "socket:[INODE]" links in PROC_ROOT/PID/fd/.
//
// If several processes share the socket (a forked daemon, SO_REUSEPORT), the
// lowest pid wins: usually the parent.
//
// Returns nullopt if no owner can be seen: the port is free (again), the owner
// lives in another pid namespace, we may not read its fds (another user's
// process, without CAP_SYS_PTRACE / CAP_DAC_READ_SEARCH), or it exited while we
// looked. Never fails otherwise: unreadable or vanishing entries and malformed
// lines are skipped. It may find the calling process itself if it holds the
// port.
//
// Cost: one readlink per open fd of every process up to the owner; meant for
// the error path, not a loop.
std::optional<PortOwner> FindUdpPortOwner(
    uint16_t port, const std::string& proc_root = "/proc");

// The error message for a UDP `port` that is already in use, e.g.
//   "UDP port 123 is in use by ntpd (pid 12010); stop it (systemctl stop ntpd)
//   or choose another port".
// Well-known owners get their stop command (ntpd, chronyd) or their own
// wording (another ntpfleet-agent); without an owner it says how to find it
// with ss(8).
std::string PortInUseMessage(uint16_t port,
                             const std::optional<PortOwner>& owner);

// Exposed for tests. The inodes of the sockets whose local port is `port` in
// the text of /proc/net/udp or /proc/net/udp6, in order of appearance, without
// duplicates. Skips the header line, malformed lines, and inode 0.
std::vector<uint64_t> UdpSocketInodes(std::string_view proc_net_udp_text,
                                      uint16_t port);

}  // namespace ntpfleet::net

#endif  // NTPFLEET_COMMON_PORT_OWNER_H_
