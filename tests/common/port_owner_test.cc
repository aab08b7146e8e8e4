#include "common/port_owner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet::net {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// As the kernel prints them (rows padded to 127 characters on real systems;
// the parser must not care). 0x007B = 123, 0x0044 = 68 (dhclient).
constexpr char kProcNetUdp[] =
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
    "retrnsmt   uid  timeout inode ref pointer drops             \n"
    "  123: 00000000:007B 00000000:0000 07 00000000:00000000 00:00000000 "
    "00000000     0        0 12345 2 0000000000000000 0          \n"
    "  124: 0100007F:007B 00000000:0000 07 00000000:00000000 00:00000000 "
    "00000000     0        0 23456 2 0000000000000000 0          \n"
    "  193: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 "
    "00000000     0        0 34567 2 0000000000000000 0          \n"
    // A connected client socket whose *remote* port is 123.
    " 1012: 0A00020F:D431 0A000201:007B 01 00000000:00000000 00:00000000 "
    "00000000   110        0 45678 2 0000000000000000 0          \n";

constexpr char kProcNetUdp6[] =
    "  sl  local_address                         remote_address            "
    "            st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
    "inode ref pointer drops\n"
    "   52: 00000000000000000000000000000000:007B "
    "00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 "
    "00000000     0        0 56789 2 0000000000000000 0\n"
    "   53: 00000000000000000000000001000000:007B "
    "00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 "
    "00000000     0        0 67890 2 0000000000000000 0\n"
    "  170: 00000000000000000000000000000000:0222 "
    "00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 "
    "00000000     0        0 78901 2 0000000000000000 0\n";

// A row for the fake /proc/net/udp: `hex_port` bound on 0.0.0.0 as `inode`.
std::string UdpRow(const std::string& hex_port, uint64_t inode) {
  return absl::StrCat("    1: 00000000:", hex_port,
                      " 00000000:0000 07 00000000:00000000 00:00000000 "
                      "00000000     0        0 ",
                      inode, " 2 0000000000000000 0\n");
}

// --- UdpSocketInodes

TEST(UdpSocketInodesTest, FindsIpv4SocketsOnAnyLocalAddress) {
  EXPECT_THAT(UdpSocketInodes(kProcNetUdp, 123), ElementsAre(12345, 23456));
  EXPECT_THAT(UdpSocketInodes(kProcNetUdp, 68), ElementsAre(34567));
}

TEST(UdpSocketInodesTest, IgnoresRemotePort) {
  // Row 1012 talks *to* port 123 from local port 0xD431.
  EXPECT_THAT(UdpSocketInodes(kProcNetUdp, 0xD431), ElementsAre(45678));
  EXPECT_THAT(UdpSocketInodes(kProcNetUdp, 123),
              ::testing::Not(::testing::Contains(45678)));
}

TEST(UdpSocketInodesTest, FindsIpv6Sockets) {
  EXPECT_THAT(UdpSocketInodes(kProcNetUdp6, 123), ElementsAre(56789, 67890));
  EXPECT_THAT(UdpSocketInodes(kProcNetUdp6, 0x222), ElementsAre(78901));
}

TEST(UdpSocketInodesTest, EmptyWhenNoSocketHasThePort) {
  EXPECT_THAT(UdpSocketInodes(kProcNetUdp, 124), IsEmpty());
  EXPECT_THAT(UdpSocketInodes("", 123), IsEmpty());
  // The header alone.
  EXPECT_THAT(UdpSocketInodes("   sl  local_address rem_address   st tx_queue "
                              "rx_queue tr tm->when retrnsmt   uid  timeout "
                              "inode ref pointer drops\n",
                              123),
              IsEmpty());
}

TEST(UdpSocketInodesTest, SkipsMalformedLines) {
  const std::string text = absl::StrCat(
      // Cut short before the inode column.
      "    1: 00000000:007B 00000000:0000 07 00000000:00000000\n",
      // Port not hex, port too long, address of a wrong length, no colon.
      "    2: 00000000:00ZB 00000000:0000 07 0:0 0:0 0 0 0 1002 2 0 0\n",
      "    3: 00000000:0007B 00000000:0000 07 0:0 0:0 0 0 0 1003 2 0 0\n",
      "    4: 000000:007B 00000000:0000 07 0:0 0:0 0 0 0 1004 2 0 0\n",
      "    5: 00000000007B 00000000:0000 07 0:0 0:0 0 0 0 1005 2 0 0\n",
      // Inode not a number, negative, zero, or beyond 64 bits.
      "    6: 00000000:007B 00000000:0000 07 0:0 0:0 0 0 0 12a4 2 0 0\n",
      "    7: 00000000:007B 00000000:0000 07 0:0 0:0 0 0 0 -1007 2 0 0\n",
      "    8: 00000000:007B 00000000:0000 07 0:0 0:0 0 0 0 0 2 0 0\n",
      "    9: 00000000:007B 00000000:0000 07 0:0 0:0 0 0 0 "
      "99999999999999999999999 2 0 0\n",
      "garbage\n", "\n", ":\n",
      // The one good row, with tabs, without a trailing newline.
      "   10:\t00000000:007B\t00000000:0000 07 0:0 0:0 0 0 0 1010 2 0 0");
  EXPECT_THAT(UdpSocketInodes(text, 123), ElementsAre(1010));
}

TEST(UdpSocketInodesTest, ReportsEachInodeOnce) {
  const std::string text = UdpRow("007B", 42) + UdpRow("007B", 42);
  EXPECT_THAT(UdpSocketInodes(text, 123), ElementsAre(42));
}

TEST(UdpSocketInodesTest, AcceptsLowercaseHexAndPortZeroAndMax) {
  EXPECT_THAT(UdpSocketInodes(UdpRow("ffff", 7), 65535), ElementsAre(7));
  EXPECT_THAT(UdpSocketInodes(UdpRow("0000", 8), 0), ElementsAre(8));
}

// --- FindUdpPortOwner on a fake /proc tree under $TEST_TMPDIR

class FakeProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr) << "run with `bazel test`";
    root_ = absl::StrCat(
        tmp, "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        "/proc");
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
    ASSERT_TRUE(std::filesystem::create_directories(root_ + "/net", ec))
        << root_ << ": " << ec.message();
  }

  void WriteFile(const std::string& relative, const std::string& content) {
    const std::string path = root_ + "/" + relative;
    std::error_code ec;
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path(), ec);
    ASSERT_FALSE(ec) << path << ": " << ec.message();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good()) << path;
  }

  // A process: PID/comm holds "COMMAND\n" as the kernel writes it; fd N is a
  // symlink to each of `links` in turn ("socket:[123]", "/dev/null", ...).
  void AddProcess(int pid, const std::string& command,
                  const std::vector<std::string>& links) {
    WriteFile(absl::StrCat(pid, "/comm"), command + "\n");
    AddFds(pid, links);
  }

  void AddFds(int pid, const std::vector<std::string>& links) {
    const std::string fd_dir = absl::StrCat(root_, "/", pid, "/fd");
    std::error_code ec;
    std::filesystem::create_directories(fd_dir, ec);
    ASSERT_FALSE(ec) << fd_dir << ": " << ec.message();
    for (size_t i = 0; i < links.size(); ++i) {
      std::filesystem::create_symlink(links[i], absl::StrCat(fd_dir, "/", i),
                                      ec);
      ASSERT_FALSE(ec) << fd_dir << "/" << i << ": " << ec.message();
    }
  }

  std::string root_;
};

MATCHER_P2(IsOwner, pid, command, "") {
  return arg.has_value() && arg->pid == pid && arg->command == command;
}

TEST_F(FakeProcTest, FindsTheProcessHoldingThePort) {
  WriteFile("net/udp", absl::StrCat("  sl  local_address ...\n",
                                    UdpRow("0044", 111), UdpRow("007B", 222)));
  AddProcess(100, "dhclient", {"/dev/null", "socket:[111]", "pipe:[9]"});
  AddProcess(200, "ntpd",
             {"/dev/null", "anon_inode:[eventfd]", "socket:[222]"});

  EXPECT_THAT(FindUdpPortOwner(123, root_), IsOwner(200, "ntpd"));
  EXPECT_THAT(FindUdpPortOwner(68, root_), IsOwner(100, "dhclient"));
}

TEST_F(FakeProcTest, FindsIpv6SocketWithoutIpv4Table) {
  WriteFile("net/udp6", kProcNetUdp6);  // No net/udp at all.
  AddProcess(300, "unrelated", {"socket:[1]"});
  AddProcess(400, "chronyd", {"socket:[67890]"});

  EXPECT_THAT(FindUdpPortOwner(123, root_), IsOwner(400, "chronyd"));
}

TEST_F(FakeProcTest, LowestPidWinsWhenTheSocketIsShared) {
  // Directory order is arbitrary; the answer must not be.
  WriteFile("net/udp", UdpRow("007B", 222));
  AddProcess(9000, "ntpd", {"socket:[222]"});
  AddProcess(12010, "ntpd", {"socket:[222]"});
  AddProcess(900, "ntpd", {"socket:[222]"});

  EXPECT_THAT(FindUdpPortOwner(123, root_), IsOwner(900, "ntpd"));
}

TEST_F(FakeProcTest, SkipsProcessesThatVanishedOrCannotBeRead) {
  WriteFile("net/udp", UdpRow("007B", 222));
  // Exited between reading its fds and its comm.
  AddFds(10, {"socket:[222]"});
  // Its fd directory cannot be listed (another user's process; or exited).
  WriteFile("20/comm", "ntpd\n");
  // Entries of /proc that are not processes.
  WriteFile("self/comm", "impostor\n");
  WriteFile("30x/comm", "impostor\n");
  AddProcess(40, "ntpd", {"socket:[222]"});

  EXPECT_THAT(FindUdpPortOwner(123, root_), IsOwner(40, "ntpd"));
}

TEST_F(FakeProcTest, NulloptWhenNoProcessHoldsTheSocket) {
  // The socket exists but its holder is not visible (another pid namespace).
  WriteFile("net/udp", UdpRow("007B", 222));
  AddProcess(100, "ntpd", {"socket:[2220]", "socket:[22]", "socket:222"});

  EXPECT_EQ(FindUdpPortOwner(123, root_), std::nullopt);
}

TEST_F(FakeProcTest, NulloptWhenNoSocketHasThePort) {
  WriteFile("net/udp", UdpRow("0044", 111));
  AddProcess(100, "dhclient", {"socket:[111]"});

  EXPECT_EQ(FindUdpPortOwner(123, root_), std::nullopt);
}

TEST_F(FakeProcTest, NulloptWithoutAProcTree) {
  EXPECT_EQ(FindUdpPortOwner(123, root_ + "/nonexistent"), std::nullopt);
}

TEST_F(FakeProcTest, KeepsCommandAsWritten) {
  // Only the kernel's trailing newline goes; spaces are part of the name.
  WriteFile("net/udp", UdpRow("007B", 5));
  AddProcess(7, "my daemon", {"socket:[5]"});

  EXPECT_THAT(FindUdpPortOwner(123, root_), IsOwner(7, "my daemon"));
}

// --- FindUdpPortOwner on the real /proc

TEST(LiveProcTest, FindsOwnLoopbackSocket) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0) << "socket: " << errno;
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // Any free port.
  ASSERT_EQ(bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0)
      << "bind: " << errno;
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const uint16_t port = ntohs(addr.sin_port);
  ASSERT_NE(port, 0);

  const std::optional<PortOwner> owner = FindUdpPortOwner(port);
  close(fd);

  ASSERT_TRUE(owner.has_value()) << "port " << port;
  EXPECT_EQ(owner->pid, getpid());
  EXPECT_FALSE(owner->command.empty());
}

// --- PortInUseMessage

TEST(PortInUseMessageTest, NamesNtpdAndHowToStopIt) {
  EXPECT_EQ(PortInUseMessage(123, PortOwner{12010, "ntpd"}),
            "UDP port 123 is in use by ntpd (pid 12010); stop it (systemctl "
            "stop ntpd) or choose another port");
}

TEST(PortInUseMessageTest, NamesChronydAndHowToStopIt) {
  EXPECT_EQ(PortInUseMessage(123, PortOwner{845, "chronyd"}),
            "UDP port 123 is in use by chronyd (pid 845); stop it (systemctl "
            "stop chronyd) or choose another port");
}

TEST(PortInUseMessageTest, SaysAnotherAgentIsRunning) {
  EXPECT_EQ(PortInUseMessage(123, PortOwner{4242, "ntpfleet-agent"}),
            "UDP port 123 is in use: another ntpfleet-agent is running (pid "
            "4242); stop it or choose another port");
}

TEST(PortInUseMessageTest, UnknownOwnerGetsGenericAdvice) {
  EXPECT_EQ(PortInUseMessage(1123, PortOwner{77, "python3"}),
            "UDP port 1123 is in use by python3 (pid 77); stop it or choose "
            "another port");
}

TEST(PortInUseMessageTest, UnknownOwnerTellsHowToFindIt) {
  EXPECT_EQ(PortInUseMessage(123, std::nullopt),
            "UDP port 123 is already in use by another process (could not "
            "tell which: run `ss -ulpn 'sport = :123'`); stop it or choose "
            "another port with --port");
}

TEST(PortInUseMessageTest, MakesCommandPrintable) {
  // comm is whatever the process set with prctl(PR_SET_NAME).
  EXPECT_EQ(PortInUseMessage(123, PortOwner{5, "evil\n\x1b[2Jx\xff"}),
            "UDP port 123 is in use by evil??[2Jx? (pid 5); stop it or choose "
            "another port");
  EXPECT_EQ(PortInUseMessage(123, PortOwner{5, ""}),
            "UDP port 123 is in use by a process (pid 5); stop it or choose "
            "another port");
}

}  // namespace
}  // namespace ntpfleet::net
