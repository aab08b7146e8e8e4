#include "common/port_owner.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unordered_set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace ntpfleet::net {
namespace {

// Columns of /proc/net/udp{,6} (net/ipv4/udp.c udp4_format_sock, and
// net/ipv6/datagram.c __ip6_dgram_sock_seq_show):
//   sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid
//   timeout inode ref pointer drops
constexpr size_t kLocalAddressColumn = 1;
constexpr size_t kInodeColumn = 9;

bool IsHex(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isxdigit(static_cast<unsigned char>(c));
  });
}

bool IsDecimal(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

// The local port of "0100007F:007B" (IPv4: 8 hex digits) or
// "00000000000000000000000000000000:007B" (IPv6: 32), printed by the kernel
// in host order as %04X; nullopt if the column looks like anything else.
std::optional<uint16_t> LocalPort(absl::string_view local_address) {
  const size_t colon = local_address.find(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  const absl::string_view ip = local_address.substr(0, colon);
  const absl::string_view port = local_address.substr(colon + 1);
  if ((ip.size() != 8 && ip.size() != 32) || !IsHex(ip)) return std::nullopt;
  if (port.size() > 4 || !IsHex(port)) return std::nullopt;
  uint32_t value = 0;
  if (!absl::SimpleHexAtoi(port, &value)) return std::nullopt;
  return static_cast<uint16_t>(value);
}

// The whole file, or nullopt if it cannot be opened or read (it may belong to
// a process that just exited).
std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return content.str();
}

// The inode of a /proc/PID/fd/N link target "socket:[12345]", or 0.
uint64_t SocketInode(absl::string_view link_target) {
  if (!absl::ConsumePrefix(&link_target, "socket:[") ||
      !absl::ConsumeSuffix(&link_target, "]") || !IsDecimal(link_target)) {
    return 0;
  }
  uint64_t inode = 0;
  if (!absl::SimpleAtoi(link_target, &inode)) return 0;
  return inode;
}

// The numeric entries of `proc_root` (the processes), ascending.
std::vector<int> ListPids(const std::string& proc_root) {
  std::vector<int> pids;
  DIR* dir = opendir(proc_root.c_str());
  if (dir == nullptr) return pids;
  while (const dirent* entry = readdir(dir)) {
    int pid = 0;
    if (IsDecimal(entry->d_name) && absl::SimpleAtoi(entry->d_name, &pid) &&
        pid > 0) {
      pids.push_back(pid);
    }
  }
  closedir(dir);
  std::sort(pids.begin(), pids.end());
  return pids;
}

// Whether one of PROC_ROOT/PID/fd/* links to a socket in `inodes`. False if
// the directory cannot be read (the process exited, or it is not ours to see).
bool HoldsSocket(const std::string& proc_root, int pid,
                 const std::unordered_set<uint64_t>& inodes) {
  const std::string fd_dir = absl::StrCat(proc_root, "/", pid, "/fd");
  DIR* dir = opendir(fd_dir.c_str());
  if (dir == nullptr) return false;
  bool found = false;
  while (const dirent* entry = readdir(dir)) {
    if (!IsDecimal(entry->d_name)) continue;  // ".", ".."
    // "socket:[" + 20 digits + "]" fits; anything longer is not a socket.
    char target[64];
    const ssize_t n =
        readlinkat(dirfd(dir), entry->d_name, target, sizeof(target));
    if (n <= 0 || static_cast<size_t>(n) >= sizeof(target)) continue;
    const uint64_t inode =
        SocketInode(absl::string_view(target, static_cast<size_t>(n)));
    if (inode != 0 && inodes.count(inode) > 0) {
      found = true;
      break;
    }
  }
  closedir(dir);
  return found;
}

// `command` with every byte that is not printable ASCII replaced by '?': comm
// is whatever the process chose (prctl(PR_SET_NAME)), and it goes into logs.
std::string Printable(absl::string_view command) {
  std::string out(command);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) c = '?';
  }
  return out;
}

}  // namespace

std::vector<uint64_t> UdpSocketInodes(std::string_view proc_net_udp_text,
                                      uint16_t port) {
  std::vector<uint64_t> inodes;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(proc_net_udp_text.data(),
                                        proc_net_udp_text.size()),
                      '\n', absl::SkipEmpty())) {
    const std::vector<absl::string_view> columns =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (columns.size() <= kInodeColumn) continue;
    // The header's "local_address" fails here too.
    const std::optional<uint16_t> local_port =
        LocalPort(columns[kLocalAddressColumn]);
    if (!local_port.has_value() || *local_port != port) continue;
    uint64_t inode = 0;
    if (!IsDecimal(columns[kInodeColumn]) ||
        !absl::SimpleAtoi(columns[kInodeColumn], &inode) || inode == 0) {
      continue;
    }
    if (std::find(inodes.begin(), inodes.end(), inode) == inodes.end()) {
      inodes.push_back(inode);
    }
  }
  return inodes;
}

std::optional<PortOwner> FindUdpPortOwner(uint16_t port,
                                          const std::string& proc_root) {
  std::unordered_set<uint64_t> inodes;
  // Either file may be missing (IPv6 disabled); that is not an error.
  for (const char* table : {"/net/udp", "/net/udp6"}) {
    if (std::optional<std::string> text = ReadFile(proc_root + table)) {
      for (uint64_t inode : UdpSocketInodes(*text, port)) inodes.insert(inode);
    }
  }
  if (inodes.empty()) return std::nullopt;

  for (int pid : ListPids(proc_root)) {
    if (!HoldsSocket(proc_root, pid, inodes)) continue;
    std::optional<std::string> comm =
        ReadFile(absl::StrCat(proc_root, "/", pid, "/comm"));
    // Gone since we read its fds: another process may still share the socket.
    if (!comm.has_value()) continue;
    if (!comm->empty() && comm->back() == '\n') comm->pop_back();
    return PortOwner{pid, *std::move(comm)};
  }
  return std::nullopt;
}

std::string PortInUseMessage(uint16_t port,
                             const std::optional<PortOwner>& owner) {
  if (!owner.has_value()) {
    return absl::StrCat(
        "UDP port ", port,
        " is already in use by another process (could not tell which: run "
        "`ss -ulpn 'sport = :",
        port, "'`); stop it or choose another port with --port");
  }
  const std::string pid = absl::StrCat("(pid ", owner->pid, ")");
  if (owner->command == "ntpfleet-agent") {
    return absl::StrCat("UDP port ", port,
                        " is in use: another ntpfleet-agent is running ", pid,
                        "; stop it or choose another port");
  }
  // The systemd unit names of RHEL/CentOS, where ntpd still runs on most of
  // a fleet (Debian calls ntpd's unit ntp or ntpsec).
  std::string stop = "stop it";
  if (owner->command == "ntpd") {
    stop = "stop it (systemctl stop ntpd)";
  } else if (owner->command == "chronyd") {
    stop = "stop it (systemctl stop chronyd)";
  }
  const std::string who = owner->command.empty() ? std::string("a process")
                                                 : Printable(owner->command);
  return absl::StrCat("UDP port ", port, " is in use by ", who, " ", pid, "; ",
                      stop, " or choose another port");
}

}  // namespace ntpfleet::net
