// bench/loadgen: an NTP load generator for the server throughput benchmark
// (bench/throughput.sh). It offers NTP client (mode 3) requests at a paced rate
// for a number of steps of increasing rate and, per step, counts what was sent,
// what was answered, the loss, the reply latency seen by the client (kernel
// receive stamp minus the time just before sendmmsg) and the server-side
// latency T3 - T2 read from the replies.
//
// Every request carries a unique transmit timestamp (the step's base + the
// request's sequence number), which the server echoes as the origin timestamp:
// that is how replies are matched to requests, duplicates found and late
// replies told apart.
//
// Clients: requests leave from --sockets UDP sockets (one source port each)
// and, with --src_net, from many source addresses: every request picks the next
// address of the network (IP_PKTINFO), which must be local to the generator's
// network namespace (`ip route add local 10.128.0.0/12 dev lo`) and routed back
// to it from the server's. Servers that rate-limit per address (ntpd's and
// ntpfleet's `restrict ... limited`) then see what a public server sees: many
// clients, each sending rarely.
//
// The search: steps through --rates until a step fails (loss >= --max_loss_pct
// or the generator could not send --min_sent_pct of the offered rate; a
// failing step is run again --retries times first), then tries --refine rates
// between the last pass and the failure, then --extra_steps more rates for the
// answered rate at saturation.
//
// Output: one line per step, a summary line and (with --agent_socket) the
// agent's server counters, `key=value` separated by spaces:
//   step server=X rate=20000 ... sent=60000 answered=59998 ... loss_pct=0.003
//       rtt_p50_us=25.1 ... server_p50_us=17.3 ... server_cpu_pct=54.5 ...
//       passed=1
//   summary server=X max_ok_rate=140000 sat_rate=151234 ... stop_reason=loss
//   counters server=X answered=... rate_limited=... kod_sent=...
//
//   loadgen --server 10.123.0.1 --src_net 10.128.0.0/12
//       --rates 20000,40000,60000 --step 3s --label chronyd
//   loadgen --server 10.123.0.1 --probe 10s   # exit 0 once the server answers
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/local_control.h"
#include "proto/ntpfleet.pb.h"

ABSL_FLAG(std::string, server, "10.123.0.1", "the server's IPv4 address");
ABSL_FLAG(int, port, 123, "the server's UDP port");
ABSL_FLAG(std::string, rates,
          "20000,40000,60000,80000,100000,120000,140000,160000,180000,200000",
          "offered rates to step through, requests/s, ascending");
ABSL_FLAG(absl::Duration, step, absl::Seconds(3), "duration of each step");
ABSL_FLAG(absl::Duration, drain, absl::Milliseconds(300),
          "after a step, how long to wait for its last replies");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1),
          "before the first step: load at the first rate, not counted");
ABSL_FLAG(double, max_loss_pct, 1.0,
          "a step passes with less loss than this (see also --min_sent_pct); "
          "stepping up stops at the first step that does not (see --retries, "
          "--refine, --extra_steps)");
ABSL_FLAG(int, refine, 2,
          "after the first failing step, try this many rates evenly between "
          "the last passing rate and it");
ABSL_FLAG(int, extra_steps, 2,
          "after the first failing step, run this many more of --rates (to "
          "find the answered rate at saturation)");
ABSL_FLAG(double, min_sent_pct, 95,
          "a step passes only if the generator sent at least this % of the "
          "offered requests (it may fall behind when it shares a core with "
          "the server)");
ABSL_FLAG(int, retries, 1,
          "run a failing step again up to this many times before taking it "
          "as the first failure");
ABSL_FLAG(bool, all_steps, false,
          "run every rate of --rates whatever the loss");
ABSL_FLAG(absl::Duration, max_lag, absl::Milliseconds(2),
          "the generator sends at most this much of its schedule (and at "
          "least 64 requests) late, after being preempted, and skips older "
          "requests (counted as skipped, not sent)");
ABSL_FLAG(int, sockets, 64, "client sockets (source ports)");
ABSL_FLAG(std::string, bind, "0.0.0.0", "local address to bind the sockets to");
ABSL_FLAG(std::string, src_net, "",
          "IPv4 network (CIDR) of local source addresses to spread requests "
          "over, round-robin, with IP_PKTINFO; empty: the kernel's choice");
ABSL_FLAG(int, clients, 0,
          "with --src_net: how many of its addresses to use (0: all)");
ABSL_FLAG(std::string, label, "server", "name of the server in the output");
ABSL_FLAG(absl::Duration, probe, absl::ZeroDuration(),
          "only check that the server answers: retry for up to this long, "
          "exit 0 on the first reply, 1 if none");
ABSL_FLAG(int, server_pid, 0,
          "the server's pid: report its CPU use and its network namespace's "
          "UDP receive-buffer drops per step (from /proc/PID)");
ABSL_FLAG(std::string, cpus, "",
          "comma-separated CPU numbers whose busy % per step to report "
          "(/proc/stat)");
ABSL_FLAG(std::string, agent_socket, "",
          "an ntpfleet-agent's control socket: print its server counters "
          "after the steps");

namespace {

constexpr size_t kBatch = 64;
constexpr size_t kPacket = 48;
constexpr int64_t kNtpEpochOffset = 2208988800LL;  // 1900 -> 1970, seconds

int64_t Now(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

uint64_t NtpRaw(int64_t realtime_ns) {
  const int64_t sec = realtime_ns / 1000000000;
  const int64_t ns = realtime_ns % 1000000000;
  return (static_cast<uint64_t>(sec + kNtpEpochOffset) << 32) |
         ((static_cast<uint64_t>(ns) << 32) / 1000000000);
}

uint64_t LoadBe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}
void StoreBe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}

double Percentile(std::vector<int64_t>* v, double q) {
  if (v->empty()) return 0;
  const size_t k = std::min(v->size() - 1, static_cast<size_t>(q * v->size()));
  std::nth_element(v->begin(), v->begin() + k, v->end());
  return static_cast<double>((*v)[k]);
}

// Counters from /proc (all optional: missing files read as zero).
struct ProcSample {
  uint64_t server_ticks = 0;  // utime + stime of --server_pid
  uint64_t server_ns_rcvbuf_errors = 0;
  uint64_t own_ns_rcvbuf_errors = 0;
  std::vector<std::pair<uint64_t, uint64_t>> cpu;  // busy, total jiffies
};

uint64_t UdpRcvbufErrors(const std::string& path) {
  std::ifstream in(path);
  std::string header, values, line;
  while (std::getline(in, line)) {
    if (line.rfind("Udp: ", 0) != 0) continue;
    if (header.empty()) {
      header = line;
    } else {
      values = line;
      break;
    }
  }
  const std::vector<std::string> h = absl::StrSplit(header, ' ');
  const std::vector<std::string> v = absl::StrSplit(values, ' ');
  for (size_t i = 0; i < h.size() && i < v.size(); ++i) {
    uint64_t n = 0;
    if (h[i] == "RcvbufErrors" && absl::SimpleAtoi(v[i], &n)) return n;
  }
  return 0;
}

ProcSample SampleProc(int server_pid, const std::vector<int>& cpus) {
  ProcSample s;
  if (server_pid > 0) {
    std::ifstream in(absl::StrCat("/proc/", server_pid, "/stat"));
    std::string text((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    const size_t paren = text.rfind(')');
    if (paren != std::string::npos) {
      // Fields after the command: state is field 3; utime 14, stime 15.
      std::vector<std::string> f =
          absl::StrSplit(text.substr(paren + 2), ' ', absl::SkipEmpty());
      uint64_t u = 0, st = 0;
      if (f.size() > 12 && absl::SimpleAtoi(f[11], &u) &&
          absl::SimpleAtoi(f[12], &st)) {
        s.server_ticks = u + st;
      }
    }
    s.server_ns_rcvbuf_errors =
        UdpRcvbufErrors(absl::StrCat("/proc/", server_pid, "/net/snmp"));
  }
  s.own_ns_rcvbuf_errors = UdpRcvbufErrors("/proc/self/net/snmp");
  if (!cpus.empty()) {
    std::ifstream in("/proc/stat");
    std::map<int, std::pair<uint64_t, uint64_t>> per_cpu;
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("cpu", 0) != 0 || line.size() < 4 || !isdigit(line[3]))
        continue;
      std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      int id = 0;
      if (!absl::SimpleAtoi(f[0].substr(3), &id)) continue;
      uint64_t total = 0, idle = 0;
      for (size_t i = 1; i < f.size() && i <= 8; ++i) {  // up to steal
        uint64_t x = 0;
        absl::SimpleAtoi(f[i], &x);
        total += x;
        if (i == 4 || i == 5) idle += x;  // idle, iowait
      }
      per_cpu[id] = {total - idle, total};
    }
    for (int c : cpus) s.cpu.push_back(per_cpu[c]);
  }
  return s;
}

struct StepResult {
  double rate = 0;
  double seconds = 0;
  uint64_t sent = 0;
  uint64_t answered = 0;        // first reply to a request we sent, not a KoD
  uint64_t kod = 0;             // Kiss-o'-Death (RATE, DENY, RSTR) replies
  uint64_t unsynchronized = 0;  // answered, but stratum 0 (unsynchronized)
  uint64_t duplicates = 0;
  uint64_t stray = 0;  // not matching any request of this step (late, junk)
  uint64_t send_errors = 0;
  uint64_t skipped = 0;  // due but never sent: the generator fell behind
  double send_rate = 0;  // what the generator managed to send
  double answered_rate = 0;
  double loss_pct = 0;
  double rtt_p50_us = 0, rtt_p99_us = 0;
  double server_p50_us = 0, server_p99_us = 0;
  // From /proc (see ProcSample), per step.
  double server_cpu_pct = 0;
  uint64_t server_rcvbuf_drops = 0;
  uint64_t generator_rcvbuf_drops = 0;
  std::vector<double> cpu_busy_pct;
};

class Generator {
 public:
  bool Init(std::string* error) {
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(absl::GetFlag(FLAGS_port)));
    if (inet_pton(AF_INET, absl::GetFlag(FLAGS_server).c_str(),
                  &dst.sin_addr) != 1) {
      *error = "--server must be an IPv4 address";
      return false;
    }
    server_ = dst;
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (inet_pton(AF_INET, absl::GetFlag(FLAGS_bind).c_str(),
                  &local.sin_addr) != 1) {
      *error = "--bind must be an IPv4 address";
      return false;
    }
    if (!ParseSources(error)) return false;
    epoll_ = epoll_create1(0);
    const int n = std::max(1, absl::GetFlag(FLAGS_sockets));
    for (int i = 0; i < n; ++i) {
      const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      if (fd < 0) {
        *error = absl::StrCat("socket: ", strerror(errno));
        return false;
      }
      // Replies must never be lost here: they would count as the server's
      // loss.
      const int buf = 4 << 20;
      if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
      const int on = 1;
      setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
      // DF set: the kernel then skips the per-packet IP ID generation, a few %
      // of the generator's CPU (48-octet datagrams never fragment).
      const int pmtu = IP_PMTUDISC_DO;
      setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
      if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0) {
        *error = absl::StrCat("bind: ", strerror(errno));
        return false;
      }
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(i);
      epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
      fds_.push_back(fd);
    }
    return true;
  }

  // Sends one request every 100 ms until a reply comes or `timeout` passes.
  bool Probe(absl::Duration timeout) {
    const int64_t end =
        Now(CLOCK_MONOTONIC) + absl::ToInt64Nanoseconds(timeout);
    while (Now(CLOCK_MONOTONIC) < end) {
      StepResult r = RunStep(10, 0.1, absl::Milliseconds(100), false);
      if (r.answered > 0 || r.kod > 0) return true;
    }
    return false;
  }

  // Offers `rate` requests/s for `seconds`, then waits `drain` for replies.
  StepResult RunStep(double rate, double seconds, absl::Duration drain,
                     bool sample_proc) {
    StepResult r;
    r.rate = rate;
    r.seconds = seconds;
    const uint64_t total = static_cast<uint64_t>(std::llround(rate * seconds));
    send_ns_.assign(total, 0);
    replied_.assign(total, 0);
    rtt_ns_.clear();
    server_ns_.clear();
    rtt_ns_.reserve(total);
    server_ns_.reserve(total);
    base_ = NtpRaw(Now(CLOCK_REALTIME));
    const std::vector<int> cpus = Cpus();
    ProcSample before;
    if (sample_proc) before = SampleProc(absl::GetFlag(FLAGS_server_pid), cpus);

    const int64_t t0 = Now(CLOCK_MONOTONIC);
    const int64_t step_ns = static_cast<int64_t>(seconds * 1e9);
    const int64_t end = t0 + step_ns + absl::ToInt64Nanoseconds(drain);
    // Request slots: slot k is due at t0 + k / rate. A generator that fell
    // behind (preempted) sends at most max_lag slots late, back to back, and
    // skips the older ones: bursts would overflow the server's buffer for
    // reasons that are not the server's.
    const uint64_t max_lag = std::max<uint64_t>(
        kBatch,
        static_cast<uint64_t>(
            rate * absl::ToDoubleSeconds(absl::GetFlag(FLAGS_max_lag))));
    uint64_t slots_done = 0;  // sent or skipped
    uint64_t next = 0;        // sequence number of the next request
    size_t socket = 0;
    while (true) {
      const int64_t now = Now(CLOCK_MONOTONIC);
      const bool sending = next < total && now - t0 < step_ns;
      bool busy = false;
      if (sending) {
        const uint64_t due = static_cast<uint64_t>(rate * (now - t0) / 1e9) + 1;
        if (due > slots_done + max_lag) {
          r.skipped += due - max_lag - slots_done;
          slots_done = due - max_lag;
        }
        if (due > slots_done) {
          const size_t count =
              std::min<uint64_t>({due - slots_done, kBatch, total - next});
          next += Send(fds_[socket], next, count, &r);
          slots_done += count;
          socket = (socket + 1) % fds_.size();
          busy = true;
        }
      } else if (now >= end) {
        break;
      }
      busy |= Receive(total, &r);
      if (!busy) {
        // Sleep until the next request is due (or a reply comes).
        int64_t wait =
            sending ? static_cast<int64_t>(slots_done * 1e9 / rate) - (now - t0)
                    : end - now;
        wait = std::clamp<int64_t>(wait, 0, 1000000);
        if (wait > 2000) {
          timespec ts{0, static_cast<long>(wait)};
          epoll_event ev[8];
          epoll_pwait2(epoll_, ev, 8, &ts, nullptr);
        }
      }
    }
    r.send_rate = r.sent / seconds;
    r.answered_rate = r.answered / seconds;
    r.loss_pct = r.sent ? 100.0 * (r.sent - r.answered) / r.sent : 0;
    r.rtt_p50_us = Percentile(&rtt_ns_, 0.5) / 1e3;
    r.rtt_p99_us = Percentile(&rtt_ns_, 0.99) / 1e3;
    r.server_p50_us = Percentile(&server_ns_, 0.5) / 1e3;
    r.server_p99_us = Percentile(&server_ns_, 0.99) / 1e3;
    if (sample_proc) {
      const double elapsed = (Now(CLOCK_MONOTONIC) - t0) / 1e9;
      const ProcSample after =
          SampleProc(absl::GetFlag(FLAGS_server_pid), cpus);
      const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
      r.server_cpu_pct =
          100.0 * (after.server_ticks - before.server_ticks) / hz / elapsed;
      r.server_rcvbuf_drops =
          after.server_ns_rcvbuf_errors - before.server_ns_rcvbuf_errors;
      r.generator_rcvbuf_drops =
          after.own_ns_rcvbuf_errors - before.own_ns_rcvbuf_errors;
      for (size_t i = 0; i < cpus.size(); ++i) {
        const uint64_t busy = after.cpu[i].first - before.cpu[i].first;
        const uint64_t all = after.cpu[i].second - before.cpu[i].second;
        r.cpu_busy_pct.push_back(all ? 100.0 * busy / all : 0);
      }
    }
    return r;
  }

 private:
  static std::vector<int> Cpus() {
    std::vector<int> out;
    for (absl::string_view s :
         absl::StrSplit(absl::GetFlag(FLAGS_cpus), ',', absl::SkipEmpty())) {
      int c = 0;
      if (absl::SimpleAtoi(s, &c)) out.push_back(c);
    }
    return out;
  }

  bool ParseSources(std::string* error) {
    const std::string net = absl::GetFlag(FLAGS_src_net);
    if (net.empty()) return true;
    const std::vector<std::string> parts = absl::StrSplit(net, '/');
    in_addr base{};
    int bits = 0;
    if (parts.size() != 2 || inet_pton(AF_INET, parts[0].c_str(), &base) != 1 ||
        !absl::SimpleAtoi(parts[1], &bits) || bits < 8 || bits > 30) {
      *error = "--src_net must be an IPv4 network a.b.c.d/8..30";
      return false;
    }
    const uint32_t first = ntohl(base.s_addr) & ~((1u << (32 - bits)) - 1);
    const uint64_t size = uint64_t{1} << (32 - bits);
    const uint64_t want =
        absl::GetFlag(FLAGS_clients) > 0
            ? static_cast<uint64_t>(absl::GetFlag(FLAGS_clients))
            : size;
    for (uint64_t i = 0; i < size && sources_.size() < want; ++i) {
      const uint32_t a = first + static_cast<uint32_t>(i);
      const uint8_t last = a & 0xff;
      if (last == 0 || last == 255) continue;  // never look like a broadcast
      sources_.push_back(htonl(a));
    }
    return true;
  }

  // Sends requests first..first+count-1 on `fd` with one sendmmsg; returns how
  // many the kernel took.
  size_t Send(int fd, uint64_t first, size_t count, StepResult* r) {
    mmsghdr msgs[kBatch] = {};
    iovec iov[kBatch];
    alignas(cmsghdr) uint8_t control[kBatch][CMSG_SPACE(sizeof(in_pktinfo))];
    const int64_t t = Now(CLOCK_REALTIME);
    for (size_t i = 0; i < count; ++i) {
      uint8_t* p = out_[i];
      std::memset(p, 0, kPacket);
      p[0] = (0 << 6) | (4 << 3) | 3;  // no leap warning, NTPv4, client
      p[2] = 6;                        // poll 64 s
      p[3] = static_cast<uint8_t>(-20);
      StoreBe64(p + 40, base_ + first + i);
      iov[i] = {p, kPacket};
      msgs[i].msg_hdr.msg_name = &server_;
      msgs[i].msg_hdr.msg_namelen = sizeof(server_);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      if (!sources_.empty()) {
        msgs[i].msg_hdr.msg_control = control[i];
        msgs[i].msg_hdr.msg_controllen = sizeof(control[i]);
        cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
        in_pktinfo info{};
        info.ipi_spec_dst.s_addr = sources_[next_source_];
        std::memcpy(CMSG_DATA(c), &info, sizeof(info));
        next_source_ = (next_source_ + 1) % sources_.size();
      }
      send_ns_[first + i] = t;
    }
    const int n = sendmmsg(fd, msgs, static_cast<unsigned>(count), 0);
    if (n < 0) {
      ++r->send_errors;
      if (errno != EAGAIN && errno != ENOBUFS && !warned_) {
        std::fprintf(stderr, "loadgen: sendmmsg: %s\n", strerror(errno));
        warned_ = true;
      }
      for (size_t i = 0; i < count; ++i) send_ns_[first + i] = 0;
      // Skip them rather than retry: the rate stays paced.
      return count;
    }
    for (size_t i = static_cast<size_t>(n); i < count; ++i)
      send_ns_[first + i] = 0;
    r->sent += static_cast<uint64_t>(n);
    return count;
  }

  // Reads the replies waiting on ready sockets; true if there were any.
  bool Receive(uint64_t total, StepResult* r) {
    epoll_event ev[64];
    const int ready = epoll_wait(epoll_, ev, 64, 0);
    bool any = false;
    for (int e = 0; e < ready; ++e) {
      const int fd = fds_[ev[e].data.u32];
      mmsghdr msgs[kBatch] = {};
      iovec iov[kBatch];
      for (size_t i = 0; i < kBatch; ++i) {
        iov[i] = {in_[i], sizeof(in_[i])};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = in_control_[i];
        msgs[i].msg_hdr.msg_controllen = sizeof(in_control_[i]);
      }
      const int n = recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) continue;
      any = true;
      const int64_t fallback = Now(CLOCK_REALTIME);
      for (int i = 0; i < n; ++i) {
        const uint8_t* p = in_[i];
        if (msgs[i].msg_len < kPacket || (p[0] & 7) != 4) {
          ++r->stray;
          continue;
        }
        const uint64_t seq = LoadBe64(p + 24) - base_;
        if (seq >= total || send_ns_[seq] == 0) {
          ++r->stray;
          continue;
        }
        if (replied_[seq]) {
          ++r->duplicates;
          continue;
        }
        replied_[seq] = 1;
        if (p[1] == 0) {
          // Stratum 0: a Kiss-o'-Death, or an unsynchronized server (16 is
          // sent as 0), which still answered.
          if (std::memcmp(p + 12, "RATE", 4) == 0 ||
              std::memcmp(p + 12, "DENY", 4) == 0 ||
              std::memcmp(p + 12, "RSTR", 4) == 0) {
            ++r->kod;
            continue;
          }
          ++r->unsynchronized;
        }
        ++r->answered;
        int64_t rx = fallback;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != nullptr;
             c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
            timespec ts;
            std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            rx = int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
          }
        }
        rtt_ns_.push_back(rx - send_ns_[seq]);
        const int64_t t2_t3 =
            static_cast<int64_t>(LoadBe64(p + 40) - LoadBe64(p + 32));
        server_ns_.push_back(static_cast<int64_t>(static_cast<double>(t2_t3) *
                                                  1e9 / 4294967296.0));
      }
    }
    return any;
  }

  sockaddr_in server_{};
  std::vector<int> fds_;
  int epoll_ = -1;
  std::vector<uint32_t> sources_;  // network byte order
  size_t next_source_ = 0;
  uint64_t base_ = 0;
  std::vector<int64_t> send_ns_;  // CLOCK_REALTIME; 0: not sent
  std::vector<uint8_t> replied_;
  std::vector<int64_t> rtt_ns_;
  std::vector<int64_t> server_ns_;
  uint8_t out_[kBatch][kPacket];
  uint8_t in_[kBatch][256];
  alignas(cmsghdr) uint8_t in_control_[kBatch][64];
  bool warned_ = false;
};

// The generator kept to its schedule (else the step measured the generator).
bool SentEnough(const StepResult& r) {
  return r.send_rate >= absl::GetFlag(FLAGS_min_sent_pct) / 100 * r.rate;
}
bool Passed(const StepResult& r, double max_loss) {
  return r.loss_pct < max_loss && SentEnough(r);
}

std::string Line(const std::string& label, const StepResult& r) {
  std::string s = absl::StrFormat(
      "step server=%s rate=%.0f seconds=%.2f sent=%d answered=%d unsync=%d "
      "kod=%d "
      "dup=%d stray=%d send_errors=%d skipped=%d send_rate=%.0f "
      "answered_rate=%.0f "
      "loss_pct=%.3f rtt_p50_us=%.1f rtt_p99_us=%.1f server_p50_us=%.2f "
      "server_p99_us=%.2f server_cpu_pct=%.1f server_rcvbuf_drops=%d "
      "loadgen_rcvbuf_drops=%d",
      label, r.rate, r.seconds, r.sent, r.answered, r.unsynchronized, r.kod,
      r.duplicates, r.stray, r.send_errors, r.skipped, r.send_rate,
      r.answered_rate, r.loss_pct, r.rtt_p50_us, r.rtt_p99_us, r.server_p50_us,
      r.server_p99_us, r.server_cpu_pct, r.server_rcvbuf_drops,
      r.generator_rcvbuf_drops);
  std::vector<std::string> cpus =
      absl::StrSplit(absl::GetFlag(FLAGS_cpus), ',', absl::SkipEmpty());
  for (size_t i = 0; i < r.cpu_busy_pct.size() && i < cpus.size(); ++i)
    absl::StrAppendFormat(&s, " cpu%s_busy_pct=%.1f", cpus[i],
                          r.cpu_busy_pct[i]);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "NTP load generator for bench/throughput.sh: paced mode-3 requests from "
      "many source ports/addresses, counting answers, loss and latency.");
  absl::ParseCommandLine(argc, argv);
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // pace to the microsecond
  Generator gen;
  std::string error;
  if (!gen.Init(&error)) {
    std::fprintf(stderr, "loadgen: %s\n", error.c_str());
    return 2;
  }
  const std::string label = absl::GetFlag(FLAGS_label);
  if (absl::GetFlag(FLAGS_probe) > absl::ZeroDuration()) {
    if (gen.Probe(absl::GetFlag(FLAGS_probe))) return 0;
    std::fprintf(stderr, "loadgen: no reply from %s:%d within %s\n",
                 absl::GetFlag(FLAGS_server).c_str(), absl::GetFlag(FLAGS_port),
                 absl::FormatDuration(absl::GetFlag(FLAGS_probe)).c_str());
    return 1;
  }
  std::vector<double> rates;
  for (absl::string_view s :
       absl::StrSplit(absl::GetFlag(FLAGS_rates), ',', absl::SkipEmpty())) {
    double r = 0;
    if (!absl::SimpleAtod(s, &r) || r <= 0) {
      std::fprintf(stderr, "loadgen: bad rate '%s' in --rates\n",
                   std::string(s).c_str());
      return 2;
    }
    rates.push_back(r);
  }
  if (rates.empty()) {
    std::fprintf(stderr, "loadgen: --rates is empty\n");
    return 2;
  }
  const double seconds = absl::ToDoubleSeconds(absl::GetFlag(FLAGS_step));
  const absl::Duration drain = absl::GetFlag(FLAGS_drain);
  const double max_loss = absl::GetFlag(FLAGS_max_loss_pct);
  if (absl::GetFlag(FLAGS_warmup) > absl::ZeroDuration()) {
    gen.RunStep(rates[0], absl::ToDoubleSeconds(absl::GetFlag(FLAGS_warmup)),
                drain, false);
  }

  std::vector<StepResult> results;
  const int retries = absl::GetFlag(FLAGS_retries);
  // Runs a step (again, up to --retries times, while it fails: a neighbour's
  // burst on a shared machine should not end the search); returns the index of
  // its last run, or -1 if that failed too.
  auto run = [&](double rate) -> int {
    for (int attempt = 0;; ++attempt) {
      results.push_back(gen.RunStep(rate, seconds, drain, true));
      std::printf("%s passed=%d%s\n", Line(label, results.back()).c_str(),
                  Passed(results.back(), max_loss) ? 1 : 0,
                  attempt > 0 ? " retry=1" : "");
      std::fflush(stdout);
      if (Passed(results.back(), max_loss))
        return static_cast<int>(results.size()) - 1;
      if (attempt >= retries) return -1;
    }
  };
  // Step up; at the first failing step refine between it and the last pass,
  // then a few more steps for the saturation rate.
  const bool all_steps = absl::GetFlag(FLAGS_all_steps);
  double max_ok = 0;
  int max_ok_index = -1;
  size_t i = 0;
  bool failed = false;
  const char* stop_reason = "none";
  for (; i < rates.size(); ++i) {
    if (const int ok = run(rates[i]); ok >= 0) {
      if (!failed) {
        max_ok = rates[i];
        max_ok_index = ok;
      }
      continue;
    }
    if (!failed) {
      failed = true;
      // Why the search stopped: the server lost requests, or the generator
      // could not send them (it shares the machine with the server).
      stop_reason = SentEnough(results.back()) ? "loss" : "generator";
      const double lo = i > 0 ? rates[i - 1] : 0;
      const int refine = absl::GetFlag(FLAGS_refine);
      for (int k = 1; k <= refine && !all_steps; ++k) {
        const double r =
            std::round((lo + (rates[i] - lo) * k / (refine + 1)) / 1000) * 1000;
        if (r <= lo || r >= rates[i]) continue;
        const int ok = run(r);
        if (ok < 0) break;
        max_ok = r;
        max_ok_index = ok;
      }
    }
    if (!all_steps) break;
  }
  for (int extra = 0; !all_steps && extra < absl::GetFlag(FLAGS_extra_steps) &&
                      i + 1 < rates.size();
       ++extra) {
    results.push_back(gen.RunStep(rates[++i], seconds, drain, true));
    std::printf("%s passed=%d\n", Line(label, results.back()).c_str(),
                Passed(results.back(), max_loss) ? 1 : 0);
    std::fflush(stdout);
  }

  // Summary.
  double sat = 0, sat_offered = 0;
  double gen_limited = 0;
  for (const StepResult& r : results) {
    if (r.answered_rate > sat) {
      sat = r.answered_rate;
      sat_offered = r.rate;
    }
    if (gen_limited == 0 && !SentEnough(r)) gen_limited = r.rate;
  }
  const StepResult* at_max_ok =
      max_ok_index >= 0 ? &results[static_cast<size_t>(max_ok_index)] : nullptr;
  const StepResult& first = results.front();
  // "-" where no step passed.
  auto at_max = [&](double StepResult::*field, int decimals) {
    return at_max_ok ? absl::StrFormat("%.*f", decimals, at_max_ok->*field)
                     : std::string("-");
  };
  std::printf(
      "summary server=%s max_ok_rate=%.0f sat_rate=%.0f sat_offered=%.0f "
      "server_p50_us_light=%.2f rtt_p50_us_light=%.1f rtt_p99_us_light=%.1f "
      "server_p50_us_max_ok=%s rtt_p50_us_max_ok=%s rtt_p99_us_max_ok=%s "
      "server_cpu_pct_max_ok=%s loadgen_limited_at=%.0f stop_reason=%s\n",
      label.c_str(), max_ok, sat, sat_offered, first.server_p50_us,
      first.rtt_p50_us, first.rtt_p99_us,
      at_max(&StepResult::server_p50_us, 2).c_str(),
      at_max(&StepResult::rtt_p50_us, 1).c_str(),
      at_max(&StepResult::rtt_p99_us, 1).c_str(),
      at_max(&StepResult::server_cpu_pct, 1).c_str(), gen_limited, stop_reason);

  if (const std::string path = absl::GetFlag(FLAGS_agent_socket);
      !path.empty()) {
    ntpfleet::v1::LocalRequest request;
    request.mutable_status();
    absl::StatusOr<ntpfleet::v1::LocalResponse> response =
        ntpfleet::local_control::CallAgent(path, request, absl::Seconds(5));
    if (!response.ok()) {
      std::fprintf(stderr, "loadgen: agent counters: %s\n",
                   std::string(response.status().message()).c_str());
    } else {
      std::string line = absl::StrCat("counters server=", label);
      std::map<std::string, uint64_t> sorted(
          response->status().server_counters().begin(),
          response->status().server_counters().end());
      for (const auto& [k, v] : sorted) absl::StrAppend(&line, " ", k, "=", v);
      std::printf("%s\n", line.c_str());
    }
  }
  return 0;
}
