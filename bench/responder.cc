// bench/responder: the bare NTP responder of the server throughput benchmark
// (bench/throughput.sh) — the ceiling the kernel allows on this machine. One
// thread; requests are read with recvmmsg(2) in batches of up to 64 and
// answered with one sendmmsg(2). Per request it only copies the client's
// transmit timestamp into the origin field and stamps the receive and transmit
// timestamps from CLOCK_REALTIME (read once per batch each): stratum 1,
// reference id LOCL. No access control, no rate limiting, no statistics, no
// kernel timestamps. Anything that is not a 48-octet-or-longer NTP client
// (mode 3) request is dropped.
//
//   responder --listen 10.123.0.1 --port 123
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"

ABSL_FLAG(std::string, listen, "127.0.0.1", "IPv4 address to serve on");
ABSL_FLAG(int, port, 123, "UDP port to serve on");
ABSL_FLAG(int, rcvbuf, 4 << 20, "SO_RCVBUF bytes to ask for");

namespace {

constexpr size_t kBatch = 64;
constexpr size_t kPacket = 48;
constexpr int64_t kNtpEpochOffset = 2208988800LL;

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

uint64_t NtpNow() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (static_cast<uint64_t>(ts.tv_sec + kNtpEpochOffset) << 32) |
         ((static_cast<uint64_t>(ts.tv_nsec) << 32) / 1000000000);
}

void StoreBe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "bare NTP responder (one thread, recvmmsg/sendmmsg): the kernel's "
      "ceiling for bench/throughput.sh");
  absl::ParseCommandLine(argc, argv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(absl::GetFlag(FLAGS_port)));
  if (inet_pton(AF_INET, absl::GetFlag(FLAGS_listen).c_str(), &addr.sin_addr) !=
      1) {
    std::fprintf(stderr, "responder: --listen must be an IPv4 address\n");
    return 2;
  }
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  const int rcvbuf = absl::GetFlag(FLAGS_rcvbuf);
  if (rcvbuf > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    std::fprintf(stderr, "responder: bind %s:%d: %s\n",
                 absl::GetFlag(FLAGS_listen).c_str(), absl::GetFlag(FLAGS_port),
                 strerror(errno));
    return 1;
  }
  int effective = 0;
  socklen_t len = sizeof(effective);
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &effective, &len);
  std::fprintf(stderr, "responder: serving %s:%d, SO_RCVBUF %d bytes\n",
               absl::GetFlag(FLAGS_listen).c_str(), absl::GetFlag(FLAGS_port),
               effective);

  struct sigaction sa = {};
  sa.sa_handler = OnSignal;  // no SA_RESTART: recvmmsg returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  static uint8_t in[kBatch][1024];
  static uint8_t out[kBatch][kPacket];
  sockaddr_in from[kBatch];
  mmsghdr rx[kBatch], tx[kBatch];
  iovec rx_iov[kBatch], tx_iov[kBatch];
  uint64_t answered = 0;
  while (!g_stop) {
    for (size_t i = 0; i < kBatch; ++i) {
      rx_iov[i] = {in[i], sizeof(in[i])};
      rx[i] = {};
      rx[i].msg_hdr.msg_name = &from[i];
      rx[i].msg_hdr.msg_namelen = sizeof(from[i]);
      rx[i].msg_hdr.msg_iov = &rx_iov[i];
      rx[i].msg_hdr.msg_iovlen = 1;
    }
    // Blocks for the first datagram, then takes what else is waiting.
    const int n = recvmmsg(fd, rx, kBatch, MSG_WAITFORONE, nullptr);
    if (n <= 0) continue;
    const uint64_t t2 = NtpNow();
    size_t count = 0;
    for (int i = 0; i < n; ++i) {
      const uint8_t* q = in[i];
      if (rx[i].msg_len < kPacket || (q[0] & 7) != 3) continue;
      uint8_t* p = out[count];
      std::memset(p, 0, kPacket);
      p[0] = static_cast<uint8_t>((q[0] & 0x38) | 4);  // LI 0, client's VN
      p[1] = 1;                                        // stratum 1
      p[2] = q[2];                                     // poll
      p[3] = static_cast<uint8_t>(-20);                // precision ~1 us
      std::memcpy(p + 12, "LOCL", 4);
      StoreBe64(p + 16, t2);           // reference time
      std::memcpy(p + 24, q + 40, 8);  // origin = client's transmit
      StoreBe64(p + 32, t2);           // receive
      tx_iov[count] = {p, kPacket};
      tx[count] = {};
      tx[count].msg_hdr.msg_name = &from[i];
      tx[count].msg_hdr.msg_namelen = rx[i].msg_hdr.msg_namelen;
      tx[count].msg_hdr.msg_iov = &tx_iov[count];
      tx[count].msg_hdr.msg_iovlen = 1;
      ++count;
    }
    const uint64_t t3 = NtpNow();
    for (size_t i = 0; i < count; ++i) StoreBe64(out[i] + 40, t3);
    size_t sent = 0;
    while (sent < count) {
      const int m = sendmmsg(fd, tx + sent, count - sent, 0);
      if (m <= 0) break;
      sent += static_cast<size_t>(m);
    }
    answered += sent;
  }
  std::fprintf(stderr, "responder: answered %llu requests\n",
               static_cast<unsigned long long>(answered));
  close(fd);
  return 0;
}
