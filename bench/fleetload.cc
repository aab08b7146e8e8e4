// bench/fleetload: plays N agents against one ntpfleet-controller over real
// gRPC on loopback, for the controller-scale benchmark (issues #6 and #13;
// driven by bench/controller_scale.sh).
//
// Every fake agent is what a real one is to the controller: a TCP connection
// of its own (its own gRPC channel, never a shared subchannel), with mutual
// TLS and a node certificate naming it (issued here, in-process, from the
// fleet CA given by --tls-ca/--tls-ca-key), one AgentService.Connect stream
// on it, a Hello, then a realistic SyncStatus (2-3 peer rows) every
// --report-interval, the agents' phases spread evenly over the interval, and a
// ResyncResult at once for every Resync.
//
// The streams use gRPC's completion-queue API over --cqs queues, each drained
// by a thread of its own. Not the callback API: Debian's libgrpc is built
// without NDEBUG, and then every completion-queue event is checked against a
// list of all operations outstanding on that queue by a linear scan; the
// callback API puts every stream of the process on one queue, so at 100 000
// streams each event would scan ~100 000 entries. With --cqs queues the scan
// is N/cqs long.
//
// Phases, one after the other (the reports go on throughout):
//  1. certificates: one node certificate per agent (EC P-256, in-process,
//     over all cores), timed;
//  2. connect: the streams open at --connect-rate a second, each on its own
//     connection (spread over the --controller addresses: each destination
//     address is another set of ~28 000-64 000 source ports); once every Hello
//     is written, GetFleet (summary) must count them all CONNECTED. A stream
//     the controller drops is counted (stream_error is the first reason) and
//     not reopened; the run goes on with the others. The CPU time of both
//     processes over this phase, per connection, is the cost of a connection
//     (TLS handshake, HTTP/2 setup, Hello); their RSS and descriptors before
//     and after it give the memory and descriptors per connection;
//  3. steady (--duration): nothing but the reports; the controller's CPU use
//     (--controller-pid) and ours are measured over exactly this window;
//  4. visibility (--probe-duration): a separate client polls GetFleet back to
//     back; for a sample of nodes, each report's sampled_at is its marker, and
//     its delay is from the fake agent's write to the arrival of the first
//     GetFleet response that shows it (or a later report of that node);
//  5. status: runs the real `ntpfleetctl status` (--ctl) --status-runs times
//     and times each run, spawn to exit;
//  6. resync: FleetService.Resync with all=true, --resync-rounds times: the
//     total time of the call and, per node, the delay from the call to the
//     fake agent receiving its Resync and writing its ResyncResult.
// With --metrics, /metrics is scraped every --metrics-every from start to end
// (every failure and the slowest answer are counted).
//
// Human-readable progress goes to stderr; the results are one line on stdout,
//   RESULT key=value key=value ...
// (times in ms; -1 where not measured). Exits 1 when not every agent connected
// or a stream was dropped (the RESULT line is printed all the same).
//
//   fleetload --controller 127.0.0.1:7123,127.0.0.2:7123 --agents 10000
//             --tls-ca ca.pem --tls-ca-key ca.key --tls-cert admin.pem
//             --tls-key admin.key --controller-pid 1234 --ctl ntpfleetctl
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/certs.h"
#include "common/files.h"
#include "common/flags.h"
#include "common/identity.h"
#include "common/proto_time.h"
#include "common/tls.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "proto/ntpfleet.pb.h"

ABSL_FLAG(std::string, controller, "127.0.0.1:7123",
          "the controller's gRPC address (loopback only); several, "
          "comma-separated, spread the agents' connections over them");
ABSL_FLAG(int, agents, 100, "number of fake agents (one connection each)");
ABSL_FLAG(int, connections, 0,
          "TCP connections the agents' streams are spread over; 0: one per "
          "agent, as real agents (and the only choice with TLS: a "
          "connection carries one node's certificate)");
ABSL_FLAG(absl::Duration, idle_duration, absl::Seconds(10),
          "idle phase after the steady one: no reports, CPU measured (the "
          "cost of idle connections: keepalive pings, timers); 0: none");
ABSL_FLAG(absl::Duration, report_interval, absl::Seconds(1),
          "each agent's SyncStatus interval");
ABSL_FLAG(int, cqs, 0,
          "completion queues (one thread each) the streams are spread over; "
          "0: one per 256 agents, at least 2, at most 64");
ABSL_FLAG(std::string, tls_ca, "",
          "fleet CA certificate (PEM); with --tls-ca-key every fake agent "
          "connects with mutual TLS and a node certificate of its own; "
          "empty: plain text");
ABSL_FLAG(std::string, tls_ca_key, "",
          "the CA's key: node certificates are issued with it in-process");
ABSL_FLAG(std::string, cert_cache, "",
          "directory where issued node certificates are kept for the next "
          "run with the same CA (OpenSSL 3 takes ~2 ms of CPU per issuance, "
          "mostly parsing the CA key); empty: issue every time");
ABSL_FLAG(std::string, tls_cert, "",
          "an admin user's certificate, for GetFleet, Resync and ntpfleetctl");
ABSL_FLAG(std::string, tls_key, "", "the key of --tls-cert");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(30),
          "steady phase: reports only, CPU measured over it");
ABSL_FLAG(absl::Duration, probe_duration, absl::Seconds(10),
          "visibility phase: GetFleet polled back to back");
ABSL_FLAG(int, probe_nodes, 200,
          "nodes whose reports are followed in the visibility phase");
ABSL_FLAG(int, connect_rate, 1000,
          "connections (streams) opened per second; 0: all at once");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(180),
          "give up when not all agents are CONNECTED by then");
ABSL_FLAG(std::string, ctl, "",
          "ntpfleetctl binary for the status phase; empty: phase skipped");
ABSL_FLAG(int, status_runs, 5, "runs of `ntpfleetctl status`");
ABSL_FLAG(int, resync_rounds, 3, "FleetService.Resync(all) rounds; 0: none");
ABSL_FLAG(int, controller_pid, 0,
          "the controller's pid: its CPU, RSS and descriptors are measured");
ABSL_FLAG(std::string, metrics, "",
          "the controller's /metrics HOST:PORT (IPv4), scraped throughout; "
          "empty: not scraped");
ABSL_FLAG(absl::Duration, metrics_every, absl::Seconds(2),
          "interval of the /metrics scrapes");

namespace {

namespace v1 = ntpfleet::v1;

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

void Say(const std::string& s) {
  std::fprintf(
      stderr, "[fleetload %s] %s\n",
      absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone())
          .c_str(),
      s.c_str());
}

// A value for the RESULT line: no spaces, no '='.
std::string Token(std::string text) {
  for (char& ch : text) {
    if (ch == ' ' || ch == '=' || ch == '\n') ch = '_';
  }
  return text.substr(0, 120);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

double Max(const std::vector<double>& v) {
  return v.empty() ? -1.0 : *std::max_element(v.begin(), v.end());
}

std::string ProcPath(int pid, const std::string& leaf) {
  return pid == 0 ? absl::StrCat("/proc/self/", leaf)
                  : absl::StrCat("/proc/", pid, "/", leaf);
}

// utime + stime of a process, in seconds; -1 when unreadable.
double CpuSeconds(int pid) {
  std::ifstream in(ProcPath(pid, "stat"));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces: fields are counted after ')'.
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(paren + 2));
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::atof(f.c_str());
    if (i == 15) stime = std::atof(f.c_str());
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A "Key:   123 kB" line of /proc/PID/status, in KiB; -1 when unreadable.
int64_t StatusKib(int pid, const std::string& key) {
  std::ifstream in(ProcPath(pid, "status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      return std::atoll(line.c_str() + key.size() + 1);
    }
  }
  return -1;
}

// Open descriptors of a process; -1 when unreadable.
int Descriptors(int pid) {
  DIR* dir = opendir(ProcPath(pid, "fd").c_str());
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

// One process's use of resources at one moment.
struct Usage {
  double cpu_s = -1;
  int64_t rss_kib = -1;
  int fds = -1;
};
Usage Measure(int pid) {
  return {CpuSeconds(pid), StatusKib(pid, "VmRSS"), Descriptors(pid)};
}

void SetMs(google::protobuf::Duration* d, double ms) {
  ntpfleet::SetDuration(absl::Microseconds(ms * 1000), d);
}

// The gRPC target for `host:port`: "ipv4:" skips the resolver for a literal
// address (100 000 channels would otherwise each resolve it).
std::string Target(const std::string& hostport) {
  const std::string host = hostport.substr(0, hostport.rfind(':'));
  in_addr a;
  if (inet_pton(AF_INET, host.c_str(), &a) == 1) {
    return absl::StrCat("ipv4:", hostport);
  }
  return hostport;
}

class Load;

// One fake agent: one channel (TCP connection), one Connect stream on it. As
// agent/report/reporter.cc: when the stream ends, it waits (1 s, doubling to
// 3 s, drawn from [1/2, 1] of that) and opens a new channel and stream. Its
// completion-queue events come to On(); Start, Report and Close come from
// other threads.
class FakeAgent {
 public:
  enum class Op : uint8_t { kStart, kRead, kWrite, kFinish, kRestart };
  struct Tag {
    FakeAgent* agent;
    Op op;
  };
  using ChannelFactory = std::function<std::shared_ptr<grpc::Channel>()>;

  FakeAgent(Load* load, int index) : load_(load), index_(index) {}

  static std::string Name(int index) {
    return absl::StrFormat("node-%05d", index);
  }

  // Opens the first stream, on a channel from `channel` (called again for
  // every reconnection), its events on `cq`.
  void Start(ChannelFactory channel, grpc::CompletionQueue* cq,
             v1::Hello hello);

  // A status report; with `probe`, its sampled_at and write time are kept to
  // find when it becomes visible.
  void Report(std::mt19937_64& rng, bool probe);

  // A GetFleet response that arrived at `at` shows this node's report sampled
  // at `visible_ns`: every probe up to it is visible.
  void ResolveProbes(int64_t visible_ns, int64_t at_ns,
                     std::vector<double>* delays_ms) {
    absl::MutexLock lock(&mu_);
    size_t k = 0;
    while (k < probes_.size() && probes_[k].first <= visible_ns) {
      delays_ms->push_back(static_cast<double>(at_ns - probes_[k].second) /
                           1e6);
      ++k;
    }
    probes_.erase(probes_.begin(), probes_.begin() + k);
  }
  void ClearProbes() {
    absl::MutexLock lock(&mu_);
    probes_.clear();
  }

  // Ends the stream for good; Load::done counts the agent once nothing of it
  // is left in flight.
  void Close();

  bool hello_written() const { return hello_written_; }

  // A completion-queue event for this agent.
  void On(Op op, bool ok);

 private:
  // A new channel, context and stream, the Hello first in the queue.
  void Open() ABSL_LOCKS_EXCLUDED(mu_);
  // Queues `message` and writes it when no write is in flight.
  void Send(v1::AgentMessage message);
  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    current_ = std::move(queue_.front());
    queue_.erase(queue_.begin());
    writing_ = true;
    stream_->Write(current_, &write_tag_);
  }
  // Asks for the final status (once the call can make no more progress).
  void FinishOnce() ABSL_LOCKS_EXCLUDED(mu_);
  // After a stream ended and its last write completed: counts the agent done
  // when closing, else sets the reconnection alarm.
  void AfterStream() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Load* const load_;
  const int index_;
  ChannelFactory make_channel_;
  grpc::CompletionQueue* cq_ = nullptr;
  v1::Hello hello_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::ClientContext> context_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<
      grpc::ClientAsyncReaderWriter<v1::AgentMessage, v1::ControllerMessage>>
      stream_;
  v1::ControllerMessage in_;
  grpc::Status status_;
  grpc::Alarm alarm_;
  Tag start_tag_{this, Op::kStart}, read_tag_{this, Op::kRead},
      write_tag_{this, Op::kWrite}, finish_tag_{this, Op::kFinish},
      restart_tag_{this, Op::kRestart};
  std::atomic<bool> hello_written_{false};
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;    // StartCall completed ok
  bool closing_ ABSL_GUARDED_BY(mu_) = false;    // we are ending the stream
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;    // no more writes
  bool writing_ ABSL_GUARDED_BY(mu_) = false;    // a write is in flight
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;  // Finish was called
  bool ended_ ABSL_GUARDED_BY(mu_) = false;      // Finish completed
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;    // the alarm is set
  bool counted_ ABSL_GUARDED_BY(mu_) = false;    // in Load::done
  absl::Time opened_ ABSL_GUARDED_BY(mu_);
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_) = absl::Seconds(1);
  std::vector<v1::AgentMessage> queue_ ABSL_GUARDED_BY(mu_);
  v1::AgentMessage current_ ABSL_GUARDED_BY(mu_);
  // (sampled_at ns, write time ns) of the probed reports not yet seen.
  std::vector<std::pair<int64_t, int64_t>> probes_ ABSL_GUARDED_BY(mu_);
};

class Load {
 public:
  explicit Load(int n) : n_(n) {}

  std::atomic<int64_t> reports_written{0};
  std::atomic<int64_t> write_failures{0};
  std::atomic<int> done{0};
  std::atomic<int> hellos_written{0};
  std::atomic<int> failed_streams{0};  // streams that ended, not by us
  std::atomic<int> reopened{0};        // streams opened again after that

  // Resync acks: the fake agents' receive times in this round.
  void RecordAck(int64_t ns) {
    absl::MutexLock lock(&mu_);
    acks_.push_back(ns);
  }
  std::vector<int64_t> TakeAcks() {
    absl::MutexLock lock(&mu_);
    return std::exchange(acks_, {});
  }
  void RecordFailure(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (first_error_.empty()) {
      first_error_ =
          absl::StrCat(status.error_code(), " ", status.error_message());
    }
  }
  std::string first_error() {
    absl::MutexLock lock(&mu_);
    return first_error_;
  }
  int n() const { return n_; }

 private:
  const int n_;
  absl::Mutex mu_;
  std::vector<int64_t> acks_ ABSL_GUARDED_BY(mu_);
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

void FakeAgent::Start(ChannelFactory channel, grpc::CompletionQueue* cq,
                      v1::Hello hello) {
  make_channel_ = std::move(channel);
  cq_ = cq;
  hello_ = std::move(hello);
  Open();
}

void FakeAgent::Open() {
  v1::AgentMessage m;
  *m.mutable_hello() = hello_;
  grpc::ClientContext* context;
  {
    absl::MutexLock lock(&mu_);
    if (closing_) {  // closed while waiting to reconnect
      ended_ = true;
      AfterStream();
      return;
    }
    hello_written_ = false;
    started_ = stopped_ = writing_ = finishing_ = ended_ = false;
    queue_.clear();
    queue_.push_back(std::move(m));
    opened_ = absl::Now();
    // The stream lives in its call's arena, which the context owns: the old
    // stream goes first.
    stream_.reset();
    channel_ = make_channel_();
    context_ = std::make_unique<grpc::ClientContext>();
    context = context_.get();
    stream_ =
        v1::AgentService::NewStub(channel_)->PrepareAsyncConnect(context, cq_);
  }
  stream_->StartCall(&start_tag_);
}

void FakeAgent::Send(v1::AgentMessage message) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  queue_.push_back(std::move(message));
  if (started_ && !writing_) WriteNext();
}

void FakeAgent::FinishOnce() {
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    if (finishing_) return;
    finishing_ = true;
  }
  stream_->Finish(&status_, &finish_tag_);
}

void FakeAgent::AfterStream() {
  if (!ended_ || writing_ || waiting_) return;
  if (closing_) {
    if (!counted_) {
      counted_ = true;
      load_->done.fetch_add(1);
    }
    return;
  }
  // As the agent: a session that lasted starts the backoff over.
  if (absl::Now() - opened_ > absl::Seconds(30)) backoff_ = absl::Seconds(1);
  const double jitter =
      0.5 +
      0.5 *
          static_cast<double>(
              (index_ * 2654435761u + static_cast<uint32_t>(NowNs())) % 1000) /
          1000;
  const absl::Duration wait = backoff_ * jitter;
  backoff_ = std::min(backoff_ * 2, absl::Seconds(3));
  waiting_ = true;
  alarm_.Set(cq_, absl::ToChronoTime(absl::Now() + wait), &restart_tag_);
}

void FakeAgent::Close() {
  absl::MutexLock lock(&mu_);
  closing_ = true;
  stopped_ = true;
  if (context_ == nullptr) {  // never opened
    counted_ = true;
    load_->done.fetch_add(1);
  } else if (waiting_) {
    alarm_.Cancel();  // kRestart follows, and counts it
  } else if (!ended_) {
    context_->TryCancel();  // kFinish follows
  } else {
    AfterStream();
  }
}

void FakeAgent::On(Op op, bool ok) {
  switch (op) {
    case Op::kStart: {
      if (!ok) {
        FinishOnce();
        return;
      }
      {
        absl::MutexLock lock(&mu_);
        started_ = true;
        if (!stopped_ && !writing_ && !queue_.empty()) WriteNext();
      }
      stream_->Read(&in_, &read_tag_);
      return;
    }
    case Op::kWrite: {
      if (ok && current_.has_status()) {
        load_->reports_written.fetch_add(1, std::memory_order_relaxed);
      } else if (ok && current_.has_hello()) {
        hello_written_ = true;
        load_->hellos_written.fetch_add(1);
      } else if (!ok) {
        load_->write_failures.fetch_add(1, std::memory_order_relaxed);
      }
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) stopped_ = true;  // the stream is broken: the read fails too
      if (!stopped_ && !queue_.empty()) WriteNext();
      AfterStream();  // when the stream had ended with this write in flight
      return;
    }
    case Op::kRead: {
      if (!ok) {
        FinishOnce();  // the server ended the call (or we cancelled it)
        return;
      }
      if (in_.has_resync()) {
        load_->RecordAck(NowNs());
        v1::AgentMessage m;
        v1::ResyncResult* r = m.mutable_resync_result();
        r->set_request_id(in_.resync().request_id());
        r->set_outcome(v1::RESYNC_OUTCOME_OK);
        SetMs(r->mutable_offset_before(), 0.05);
        SetMs(r->mutable_offset_after(), 0.001);
        r->set_stepped(false);
        Send(std::move(m));
      }
      stream_->Read(&in_, &read_tag_);
      return;
    }
    case Op::kFinish: {
      absl::MutexLock lock(&mu_);
      ended_ = true;
      if (!closing_) {
        load_->failed_streams.fetch_add(1);
        load_->RecordFailure(status_);
      }
      AfterStream();
      return;
    }
    case Op::kRestart: {
      bool reopen;
      {
        absl::MutexLock lock(&mu_);
        waiting_ = false;
        reopen = !closing_;
        if (!reopen) AfterStream();
      }
      if (reopen) {
        load_->reopened.fetch_add(1);
        Open();
      }
      return;
    }
  }
}

void FakeAgent::Report(std::mt19937_64& rng, bool probe) {
  static const std::string kRemote[3] = {
      "ntp1.fleet.example", "ntp2.fleet.example", "ntp3.fleet.example"};
  static const std::string kAddress[3] = {"10.0.0.1:123", "10.0.0.2:123",
                                          "10.0.0.3:123"};
  static const std::string kRefid[3] = {"GPS", "10.1.0.1", "10.1.0.2"};
  std::normal_distribution<double> offset_us(0, 80);
  std::uniform_real_distribution<double> u(0, 1);
  const int64_t sampled_ns = NowNs();
  v1::AgentMessage m;
  v1::SyncStatus* s = m.mutable_status();
  ntpfleet::SetTimestamp(absl::FromUnixNanos(sampled_ns),
                         s->mutable_sampled_at());
  s->set_state(v1::SYNC_STATE_SYNCHRONISED);
  const double offset_ms = offset_us(rng) / 1000;
  SetMs(s->mutable_offset(), offset_ms);
  SetMs(s->mutable_delay(), 0.15 + 0.1 * u(rng));
  SetMs(s->mutable_jitter(), 0.02 + 0.03 * u(rng));
  s->set_frequency_ppm(-12.5 + 25 * u(rng));
  s->set_stratum(3);
  s->set_refid("10.0.0.1");
  s->set_leap(v1::LEAP_NONE);
  SetMs(s->mutable_root_delay(), 1.2);
  SetMs(s->mutable_root_dispersion(), 0.9 + 0.2 * u(rng));
  SetMs(s->mutable_error_bound(), std::abs(offset_ms) + 1.5 + 0.2 * u(rng));
  SetMs(s->mutable_poll(), 64000);
  s->set_system_peer(kRemote[0]);
  const int peers = index_ % 2 == 0 ? 3 : 2;
  for (int p = 0; p < peers; ++p) {
    v1::PeerStatus* peer = s->add_peers();
    peer->set_remote(kRemote[p]);
    peer->set_address(kAddress[p]);
    peer->set_refid(kRefid[p]);
    peer->set_stratum(p == 0 ? 2 : 3);
    peer->set_type(v1::PEER_TYPE_UNICAST);
    SetMs(peer->mutable_when(), 1000 * (1 + 63 * u(rng)));
    SetMs(peer->mutable_poll(), 64000);
    peer->set_reach(0377);
    SetMs(peer->mutable_delay(), 0.15 + 0.1 * u(rng));
    SetMs(peer->mutable_offset(), offset_ms + 0.01 * (u(rng) - 0.5));
    SetMs(peer->mutable_jitter(), 0.02 + 0.03 * u(rng));
    peer->set_mark(p == 0 ? v1::SELECTION_MARK_SYSTEM_PEER
                          : v1::SELECTION_MARK_CANDIDATE);
    SetMs(peer->mutable_root_distance(), 1.0 + u(rng));
  }
  absl::MutexLock lock(&mu_);
  if (stopped_ || !started_) return;
  if (probe) probes_.emplace_back(sampled_ns, NowNs());
  queue_.push_back(std::move(m));
  if (!writing_) WriteNext();
}

v1::Hello MakeHello(int index, std::mt19937_64& rng,
                    absl::Duration report_interval) {
  v1::Hello h;
  h.set_node_name(FakeAgent::Name(index));
  h.add_addresses(absl::StrFormat("10.%d.%d.%d", 20 + index / 65536,
                                  (index / 256) % 256, index % 256));
  h.set_agent_version("0.1.0");
  h.set_role(v1::ROLE_CLIENT);
  std::string digest;
  for (int i = 0; i < 4; ++i) digest += absl::StrFormat("%016x", rng());
  h.set_config_digest(digest);
  (*h.mutable_labels())["rack"] = absl::StrFormat("r%02d", index % 40);
  (*h.mutable_labels())["zone"] = index % 2 ? "a" : "b";
  ntpfleet::SetDuration(report_interval, h.mutable_report_interval());
  h.set_instance_id(absl::StrFormat("%016x", rng()));
  return h;
}

// Node certificates for agents certs->size() .. n-1, issued from the CA over
// `threads` threads and appended.
absl::Status IssueNodeCerts(const ntpfleet::KeyCert& ca, int n, int threads,
                            std::vector<ntpfleet::KeyCert>* have) {
  const int from = static_cast<int>(have->size());
  std::vector<ntpfleet::KeyCert>& certs = *have;
  certs.resize(n);
  std::atomic<int> next{from};
  absl::Mutex mu;
  absl::Status first_error;
  const absl::Time now = absl::Now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < n; i = next++) {
        ntpfleet::CertSpec spec;
        spec.kind = ntpfleet::Identity::Kind::kNode;
        spec.name = FakeAgent::Name(i);
        spec.not_before = now - absl::Hours(1);
        spec.not_after = now + absl::Hours(24 * 30);
        absl::StatusOr<ntpfleet::KeyCert> kc = ntpfleet::IssueCert(ca, spec);
        if (!kc.ok()) {
          absl::MutexLock lock(&mu);
          if (first_error.ok()) first_error = kc.status();
          next = n;
          return;
        }
        certs[i] = *std::move(kc);
      }
    });
  }
  for (std::thread& w : workers) w.join();
  return first_error;
}

// The cache file of node certificates for a CA: named by a hash of the CA
// certificate, so another CA never finds them. Each record is the key PEM
// followed by the certificate PEM of node i, in order.
std::string CacheFile(const std::string& dir, const std::string& ca_pem) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : ca_pem) h = (h ^ c) * 1099511628211ull;
  return absl::StrFormat("%s/nodes-%016x.pem", dir, h);
}

// The first n records of the cache, or fewer when it has fewer (or none).
std::vector<ntpfleet::KeyCert> ReadCache(const std::string& path, int n) {
  std::vector<ntpfleet::KeyCert> certs;
  absl::StatusOr<std::string> text = ntpfleet::ReadFile(path, 1 << 30);
  if (!text.ok()) return certs;
  static const std::string kEndKey = "-----END PRIVATE KEY-----\n";
  static const std::string kEndCert = "-----END CERTIFICATE-----\n";
  size_t at = 0;
  while (static_cast<int>(certs.size()) < n) {
    const size_t key_end = text->find(kEndKey, at);
    if (key_end == std::string::npos) break;
    const size_t cert_end = text->find(kEndCert, key_end);
    if (cert_end == std::string::npos) break;
    const size_t k = key_end + kEndKey.size();
    const size_t c = cert_end + kEndCert.size();
    certs.push_back({text->substr(at, k - at), text->substr(k, c - k)});
    at = c;
  }
  return certs;
}

void WriteCache(const std::string& path,
                const std::vector<ntpfleet::KeyCert>& certs) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const ntpfleet::KeyCert& kc : certs) out << kc.key_pem << kc.cert_pem;
    if (!out) {
      Say(absl::StrCat("cannot write the certificate cache ", tmp));
      unlink(tmp.c_str());
      return;
    }
  }
  chmod(tmp.c_str(), 0600);
  if (rename(tmp.c_str(), path.c_str()) != 0) unlink(tmp.c_str());
}

std::unique_ptr<v1::FleetService::Stub> FleetStub(
    const std::string& target,
    std::shared_ptr<grpc::ChannelCredentials> creds) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return v1::FleetService::NewStub(
      grpc::CreateCustomChannel(target, std::move(creds), args));
}

// Scrapes http://HOST:PORT/metrics every `every` until stopped: counts the
// answers that were not a complete "200" within 10 s.
class MetricsScraper {
 public:
  MetricsScraper(const std::string& hostport, absl::Duration every)
      : hostport_(hostport), every_(every) {
    thread_ = std::thread([this] { Run(); });
  }
  ~MetricsScraper() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int scrapes() const { return scrapes_; }
  int failures() const { return failures_; }
  double max_ms() const { return max_ms_; }
  std::string first_error() {
    absl::MutexLock lock(&mu_);
    return first_error_;
  }

 private:
  // One GET; empty on success, else what went wrong.
  std::string Scrape() {
    const size_t colon = hostport_.rfind(':');
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    int port = 0;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(hostport_.substr(colon + 1), &port) ||
        inet_pton(AF_INET, hostport_.substr(0, colon).c_str(), &sa.sin_addr) !=
            1) {
      return "bad --metrics address";
    }
    sa.sin_port = htons(static_cast<uint16_t>(port));
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::StrCat("socket: ", strerror(errno));
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    std::string out;
    std::string error;
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      error = absl::StrCat("connect: ", strerror(errno));
    } else {
      const std::string req = absl::StrCat(
          "GET /metrics HTTP/1.0\r\nHost: ", hostport_, "\r\n\r\n");
      if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(req.size())) {
        error = "send failed";
      }
      char buf[65536];
      while (error.empty()) {
        const int left =
            static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
        if (left <= 0) {
          error = "no complete answer within 10 s";
          break;
        }
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, left) <= 0) continue;
        const ssize_t got = read(fd, buf, sizeof(buf));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) error = absl::StrCat("read: ", strerror(errno));
        if (got <= 0) break;
        out.append(buf, static_cast<size_t>(got));
      }
    }
    close(fd);
    if (error.empty() && out.rfind("HTTP/1.", 0) != 0) error = "not HTTP";
    if (error.empty() && out.find(" 200 ") == std::string::npos) {
      error = out.substr(0, out.find('\r'));
    }
    return error;
  }

  void Run() {
    while (!stop_) {
      const absl::Time start = absl::Now();
      const std::string error = Scrape();
      const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
      ++scrapes_;
      if (ms > max_ms_) max_ms_ = ms;
      if (!error.empty()) {
        ++failures_;
        absl::MutexLock lock(&mu_);
        if (first_error_.empty()) first_error_ = error;
      }
      const absl::Time next = start + every_;
      while (!stop_ && absl::Now() < next) {
        absl::SleepFor(absl::Milliseconds(50));
      }
    }
  }

  const std::string hostport_;
  const absl::Duration every_;
  std::atomic<bool> stop_{false};
  std::atomic<int> scrapes_{0};
  std::atomic<int> failures_{0};
  std::atomic<double> max_ms_{0};
  absl::Mutex mu_;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

struct StatusRun {
  double wall_ms = -1;
  int exit_code = -1;
  std::string error;
};

// Runs `ctl status --controller TARGET --color never [TLS flags]`, stdout to
// /dev/null, and times it from spawn to exit.
StatusRun RunCtlStatus(const std::string& ctl, const std::string& target,
                       const std::vector<std::string>& extra) {
  StatusRun run;
  int err[2];
  if (pipe(err) != 0) {
    run.error = "pipe failed";
    return run;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawn_file_actions_addclose(&actions, err[0]);
  posix_spawn_file_actions_addclose(&actions, err[1]);
  std::vector<std::string> argv_s = {ctl,    "status",  "--controller",
                                     target, "--color", "never"};
  argv_s.insert(argv_s.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const absl::Time start = absl::Now();
  pid_t pid = 0;
  const int rc =
      posix_spawn(&pid, ctl.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(err[1]);
  if (rc != 0) {
    close(err[0]);
    run.error = absl::StrCat("cannot run ", ctl, ": ", strerror(rc));
    return run;
  }
  std::string out;
  char buf[4096];
  ssize_t got;
  while ((got = read(err[0], buf, sizeof(buf))) > 0 ||
         (got < 0 && errno == EINTR)) {
    if (got > 0) out.append(buf, static_cast<size_t>(got));
  }
  close(err[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  run.wall_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  if (run.exit_code != 0) {
    run.error = out.substr(0, out.find('\n'));
  }
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "plays N ntpfleet agents against one controller on loopback and "
      "measures it (bench/controller_scale.sh drives it)");
  ntpfleet::DashedFlags flags(argc, argv);
  absl::ParseCommandLine(flags.argc(), flags.argv());
  // Abseil's lock-order graph costs every lock; the tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  signal(SIGPIPE, SIG_IGN);
  const std::vector<std::string> targets =
      absl::StrSplit(absl::GetFlag(FLAGS_controller), ',', absl::SkipEmpty());
  const int n = absl::GetFlag(FLAGS_agents);
  const int controller_pid = absl::GetFlag(FLAGS_controller_pid);
  const absl::Duration interval = absl::GetFlag(FLAGS_report_interval);
  if (n <= 0 || targets.empty() || interval <= absl::ZeroDuration()) {
    std::fprintf(stderr,
                 "fleetload: --agents, --controller and --report-interval "
                 "must be given and positive\n");
    return 2;
  }
  const int cqs = absl::GetFlag(FLAGS_cqs) > 0 ? absl::GetFlag(FLAGS_cqs)
                                               : std::clamp(n / 256, 2, 64);
  const int conns = absl::GetFlag(FLAGS_connections) > 0
                        ? std::min(n, absl::GetFlag(FLAGS_connections))
                        : n;
  if (conns != n && !absl::GetFlag(FLAGS_tls_ca).empty()) {
    std::fprintf(stderr,
                 "fleetload: with TLS every agent needs a connection of its "
                 "own (it carries the node's certificate): --connections "
                 "must be 0 or --agents\n");
    return 2;
  }
  std::vector<std::string> result = {
      absl::StrCat("agents=", n), absl::StrCat("connections=", conns),
      absl::StrCat("addresses=", targets.size()), absl::StrCat("cqs=", cqs),
      absl::StrFormat("interval_s=%g", absl::ToDoubleSeconds(interval))};

  // --- credentials ---------------------------------------------------------
  const std::string ca_path = absl::GetFlag(FLAGS_tls_ca);
  const bool tls = !ca_path.empty();
  std::shared_ptr<grpc::ChannelCredentials> admin_creds =
      grpc::InsecureChannelCredentials();
  std::vector<std::string> ctl_tls;
  std::string ca_pem;
  std::vector<ntpfleet::KeyCert> node_certs;
  result.push_back(absl::StrCat("tls=", tls ? 1 : 0));
  if (tls) {
    ntpfleet::TlsFiles admin{absl::GetFlag(FLAGS_tls_cert),
                             absl::GetFlag(FLAGS_tls_key), ca_path};
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> c =
        ntpfleet::ClientCredentials(admin, "--tls-cert/--tls-key/--tls-ca");
    absl::StatusOr<std::string> ca = ntpfleet::ReadFile(ca_path, 1 << 20);
    absl::StatusOr<std::string> ca_key =
        ntpfleet::ReadFile(absl::GetFlag(FLAGS_tls_ca_key), 1 << 20);
    if (!c.ok() || !ca.ok() || !ca_key.ok()) {
      std::fprintf(stderr, "fleetload: %s\n",
                   std::string(!c.ok()    ? c.status().message()
                               : !ca.ok() ? ca.status().message()
                                          : ca_key.status().message())
                       .c_str());
      return 2;
    }
    admin_creds = *c;
    ca_pem = *ca;
    ctl_tls = {"--tls-cert", admin.cert, "--tls-key",
               admin.key,    "--tls-ca", admin.ca};
    const int threads =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    const std::string cache_dir = absl::GetFlag(FLAGS_cert_cache);
    const std::string cache =
        cache_dir.empty() ? "" : CacheFile(cache_dir, ca_pem);
    if (!cache.empty()) node_certs = ReadCache(cache, n);
    if (static_cast<int>(node_certs.size()) == n) {
      Say(absl::StrFormat("%d node certificates from the cache %s", n, cache));
    } else {
      const int cached = static_cast<int>(node_certs.size());
      const double cpu0 = CpuSeconds(0);
      const absl::Time t0 = absl::Now();
      if (absl::Status s =
              IssueNodeCerts({*ca_key, ca_pem}, n, threads, &node_certs);
          !s.ok()) {
        std::fprintf(stderr, "fleetload: issuing node certificates: %s\n",
                     std::string(s.message()).c_str());
        return 2;
      }
      const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
      const double cpu_us = (CpuSeconds(0) - cpu0) * 1e6 / (n - cached);
      result.push_back(absl::StrFormat("cert_issue_s=%.2f", wall));
      result.push_back(absl::StrFormat("cert_issue_cpu_us=%.0f", cpu_us));
      Say(absl::StrFormat(
          "%d node certificates (EC P-256) issued in %.2f s over %d threads, "
          "%.0f µs of CPU each (%d more from the cache)",
          n - cached, wall, threads, cpu_us, cached));
      if (!cache.empty()) WriteCache(cache, node_certs);
    }
  }
  const std::string fleet_target = targets[0];
  auto fleet_stub = FleetStub(Target(fleet_target), admin_creds);

  std::unique_ptr<MetricsScraper> scraper;
  if (const std::string m = absl::GetFlag(FLAGS_metrics); !m.empty()) {
    scraper =
        std::make_unique<MetricsScraper>(m, absl::GetFlag(FLAGS_metrics_every));
  }

  // --- connect -------------------------------------------------------------
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues;
  std::vector<std::thread> pollers;
  for (int q = 0; q < cqs; ++q) {
    queues.push_back(std::make_unique<grpc::CompletionQueue>());
    grpc::CompletionQueue* cq = queues.back().get();
    pollers.emplace_back([cq] {
      void* tag;
      bool ok;
      while (cq->Next(&tag, &ok)) {
        auto* t = static_cast<FakeAgent::Tag*>(tag);
        t->agent->On(t->op, ok);
      }
    });
  }
  Load load(n);
  std::vector<std::unique_ptr<FakeAgent>> agents;
  agents.reserve(n);
  std::mt19937_64 rng(12345);
  std::vector<v1::Hello> hellos;
  hellos.reserve(n);
  for (int i = 0; i < n; ++i) {
    agents.push_back(std::make_unique<FakeAgent>(&load, i));
    hellos.push_back(MakeHello(i, rng, interval));
  }

  // Reports: the interval is cut into kSlots slots; agent i reports in slot
  // i * kSlots / n, so the load is even over the interval. Two ticker threads
  // (even and odd agents) build and write them.
  constexpr int kSlots = 100;
  constexpr int kTickers = 2;
  std::atomic<bool> stop_ticks{false};
  std::atomic<bool> probing{false};
  std::atomic<bool> paused{false};
  const int probe_nodes =
      std::min(n, std::max(1, absl::GetFlag(FLAGS_probe_nodes)));
  std::vector<bool> probed(n, false);
  for (int k = 0; k < probe_nodes; ++k) {
    probed[static_cast<size_t>(k) * n / probe_nodes] = true;
  }
  std::vector<std::thread> tickers;
  for (int t = 0; t < kTickers; ++t) {
    tickers.emplace_back([&, t] {
      std::vector<std::vector<int>> slots(kSlots);
      for (int i = t; i < n; i += kTickers) {
        slots[static_cast<size_t>(i) * kSlots / n].push_back(i);
      }
      std::mt19937_64 trng(777 + t);
      const absl::Time t0 = absl::Now();
      for (int64_t tick = 0; !stop_ticks; ++tick) {
        const absl::Time due = t0 + tick * interval / kSlots;
        const absl::Duration wait = due - absl::Now();
        if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
        const bool probe = probing;
        if (paused) continue;
        for (int i : slots[tick % kSlots]) {
          if (agents[i]->hello_written()) {
            agents[i]->Report(trng, probe && probed[i]);
          }
        }
      }
    });
  }

  const Usage self0 = Measure(0);
  const Usage ctl0 = controller_pid > 0 ? Measure(controller_pid) : Usage{};
  const absl::Time connect_start = absl::Now();
  const int connect_rate = absl::GetFlag(FLAGS_connect_rate);
  std::vector<std::string> agent_targets;
  for (const std::string& t : targets) agent_targets.push_back(Target(t));
  std::vector<std::shared_ptr<grpc::Channel>> shared(conns < n ? conns : 0);
  grpc::ChannelArguments args;
  // A connection of its own: without this, channels with equal arguments
  // and credentials share one subchannel (one TCP connection).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // As agent/report/reporter.cc.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  for (int i = 0; i < n; ++i) {
    if (connect_rate > 0) {
      const absl::Time due =
          connect_start + i * absl::Seconds(1) / connect_rate;
      if (due > absl::Now()) absl::SleepFor(due - absl::Now());
    }
    const int c = i % conns;
    const std::string& target = agent_targets[c % agent_targets.size()];
    FakeAgent::ChannelFactory factory;
    if (conns == n) {
      // One connection per agent, a new one for every session, as the agent.
      std::shared_ptr<grpc::ChannelCredentials> creds =
          tls ? ntpfleet::ClientCredentialsFromPem(node_certs[i], ca_pem)
              : grpc::InsecureChannelCredentials();
      if (tls) node_certs[i] = {};  // the provider holds its own copy
      factory = [creds, &target, &args] {
        return grpc::CreateCustomChannel(target, creds, args);
      };
    } else {
      // Plain text only: the agents share `conns` connections.
      if (shared[c] == nullptr) {
        shared[c] = grpc::CreateCustomChannel(
            target, grpc::InsecureChannelCredentials(), args);
      }
      factory = [channel = shared[c]] { return channel; };
    }
    agents[i]->Start(std::move(factory), queues[i % cqs].get(),
                     std::move(hellos[i]));
  }
  hellos = {};
  node_certs = {};
  Say(absl::StrFormat(
      "%d streams over %d connections started to %s in %.1f s (%s), %d "
      "completion queues",
      n, conns, absl::StrJoin(targets, ","),
      absl::ToDoubleSeconds(absl::Now() - connect_start),
      tls ? "mutual TLS" : "plain text", cqs));

  bool all_connected = false;
  int connected = 0;
  double connect_s = -1;
  {
    const absl::Time deadline =
        connect_start + absl::GetFlag(FLAGS_connect_timeout);
    uint32_t seen = 0;
    // A GetFleet of thousands of nodes is heavy for the controller: wait for
    // every Hello to be written (or for 10 s without progress: streams being
    // reopened) before asking.
    int last = -1;
    absl::Time progress = absl::Now();
    while (absl::Now() < deadline && load.hellos_written < n &&
           absl::Now() - progress < absl::Seconds(10)) {
      if (load.hellos_written != last) {
        last = load.hellos_written;
        progress = absl::Now();
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    while (absl::Now() < deadline) {
      grpc::ClientContext ctx;
      ctx.set_wait_for_ready(true);
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
      v1::GetFleetRequest request;
      request.set_summary(true);
      v1::Fleet fleet;
      if (const grpc::Status s = fleet_stub->GetFleet(&ctx, request, &fleet);
          s.ok()) {
        seen = fleet.connected_count();
        if (static_cast<int>(seen) >= n) {
          all_connected = true;
          break;
        }
      } else {
        Say(absl::StrCat("GetFleet: ", s.error_message()));
      }
      absl::SleepFor(absl::Seconds(1));
    }
    connected = static_cast<int>(seen);
    connect_s = absl::ToDoubleSeconds(absl::Now() - connect_start);
    Say(absl::StrFormat(
        "%d/%d CONNECTED after %.1f s%s", seen, n, connect_s,
        load.failed_streams > 0
            ? absl::StrCat("; ", load.failed_streams.load(),
                           " streams ended and were reopened, the first: ",
                           load.first_error())
            : ""));
  }
  // Per connection: CPU over the connect phase (handshakes, HTTP/2 set-up,
  // Hello, plus the reports of the agents already connected), and RSS and
  // descriptors after it minus before.
  {
    const Usage self1 = Measure(0);
    const Usage ctl1 = controller_pid > 0 ? Measure(controller_pid) : Usage{};
    // Connections in use: all of them when every agent connected.
    const double k =
        std::max(1.0, static_cast<double>(conns) * std::max(1, connected) / n);
    // Not measured when GetFleet never counted a connected agent.
    auto per = [&](double a, double b, double scale) {
      return a < 0 || b < 0 || connected == 0 ? -1.0 : (b - a) * scale / k;
    };
    result.push_back(absl::StrFormat("connect_cpu_us_controller=%.0f",
                                     per(ctl0.cpu_s, ctl1.cpu_s, 1e6)));
    result.push_back(absl::StrFormat("connect_cpu_us_fleetload=%.0f",
                                     per(self0.cpu_s, self1.cpu_s, 1e6)));
    result.push_back(absl::StrFormat("controller_rss_idle_kib=%d",
                                     static_cast<int>(ctl0.rss_kib)));
    result.push_back(absl::StrFormat("controller_rss_connected_kib=%d",
                                     static_cast<int>(ctl1.rss_kib)));
    result.push_back(
        absl::StrFormat("controller_kib_per_conn=%.1f",
                        per(static_cast<double>(ctl0.rss_kib),
                            static_cast<double>(ctl1.rss_kib), 1)));
    result.push_back(
        absl::StrFormat("fleetload_kib_per_conn=%.1f",
                        per(static_cast<double>(self0.rss_kib),
                            static_cast<double>(self1.rss_kib), 1)));
    result.push_back(absl::StrFormat("fleetload_rss_kib=%d",
                                     static_cast<int>(self1.rss_kib)));
    result.push_back(absl::StrCat("controller_fds=", ctl1.fds));
    result.push_back(absl::StrCat("fleetload_fds=", self1.fds));
    Say(absl::StrFormat(
        "per connection: controller %.0f µs CPU, %.1f KiB RSS; fleetload %.0f "
        "µs CPU, %.1f KiB RSS; descriptors: controller %d, fleetload %d",
        per(ctl0.cpu_s, ctl1.cpu_s, 1e6),
        per(static_cast<double>(ctl0.rss_kib),
            static_cast<double>(ctl1.rss_kib), 1),
        per(self0.cpu_s, self1.cpu_s, 1e6),
        per(static_cast<double>(self0.rss_kib),
            static_cast<double>(self1.rss_kib), 1),
        ctl1.fds, self1.fds));
  }
  const int failed_at_connect = load.failed_streams;
  result.push_back(absl::StrCat("connected=", connected));
  result.push_back(absl::StrFormat("connect_s=%.2f", connect_s));

  auto emit = [&](int rc) {
    if (scraper != nullptr) {
      scraper->Stop();
      result.push_back(absl::StrCat("metrics_scrapes=", scraper->scrapes()));
      result.push_back(absl::StrCat("metrics_failures=", scraper->failures()));
      result.push_back(
          absl::StrFormat("metrics_max_ms=%.1f", scraper->max_ms()));
      if (const std::string e = scraper->first_error(); !e.empty()) {
        result.push_back(absl::StrCat("metrics_error=", Token(e)));
      }
    }
    result.push_back(
        absl::StrCat("failed_streams=", load.failed_streams.load()));
    result.push_back(absl::StrCat("reopened=", load.reopened.load()));
    result.push_back(absl::StrCat("failed_after_connect=",
                                  load.failed_streams - failed_at_connect));
    if (const std::string e = load.first_error(); !e.empty()) {
      result.push_back(absl::StrCat("stream_error=", Token(e)));
    }
    std::printf("RESULT %s\n", absl::StrJoin(result, " ").c_str());
    std::fflush(stdout);
    stop_ticks = true;
    for (std::thread& t : tickers) t.join();
    for (auto& a : agents) a->Close();
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (load.done < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (load.done < n) {
      Say("not every stream ended; exiting without cleanup");
      std::_Exit(rc);
    }
    for (auto& q : queues) q->Shutdown();
    for (std::thread& p : pollers) p.join();
    // Tearing down 100 000 channels takes long and measures nothing.
    std::_Exit(rc);
    return rc;
  };
  if (connected == 0) {
    result.push_back("error=none_connected");
    return emit(1);
  }
  if (!all_connected) {
    Say(absl::StrFormat("going on with the %d connected agents", connected));
  }

  // --- steady --------------------------------------------------------------
  const absl::Duration steady = absl::GetFlag(FLAGS_duration);
  {
    const double c0 = controller_pid > 0 ? CpuSeconds(controller_pid) : -1;
    const double s0 = CpuSeconds(0);
    const int64_t r0 = load.reports_written;
    const absl::Time t0 = absl::Now();
    absl::SleepFor(steady);
    const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
    const double c1 = controller_pid > 0 ? CpuSeconds(controller_pid) : -1;
    const double s1 = CpuSeconds(0);
    const double rate = static_cast<double>(load.reports_written - r0) / wall;
    const double cpu = c0 >= 0 && c1 >= 0 ? 100 * (c1 - c0) / wall : -1;
    const double self_cpu = 100 * (s1 - s0) / wall;
    result.push_back(absl::StrFormat("steady_s=%.1f", wall));
    result.push_back(absl::StrFormat("report_rate=%.1f", rate));
    result.push_back(absl::StrFormat("controller_cpu_pct=%.1f", cpu));
    result.push_back(absl::StrFormat("fleetload_cpu_pct=%.1f", self_cpu));
    Say(absl::StrFormat(
        "steady %.1f s: %.0f reports/s; controller CPU %.1f %%, fleetload CPU "
        "%.1f %%",
        wall, rate, cpu, self_cpu));
  }

  // --- idle --------------------------------------------------------------
  // No reports: what is left is the cost of holding the connections
  // (keepalive pings every 10 s from both sides, timers).
  if (const absl::Duration idle = absl::GetFlag(FLAGS_idle_duration);
      idle > absl::ZeroDuration()) {
    paused = true;
    absl::SleepFor(absl::Seconds(1));  // writes in flight drain
    const double c0 = controller_pid > 0 ? CpuSeconds(controller_pid) : -1;
    const double s0 = CpuSeconds(0);
    const absl::Time t0 = absl::Now();
    absl::SleepFor(idle);
    const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
    const double c1 = controller_pid > 0 ? CpuSeconds(controller_pid) : -1;
    const double s1 = CpuSeconds(0);
    paused = false;
    const double cpu = c0 >= 0 && c1 >= 0 ? 100 * (c1 - c0) / wall : -1;
    result.push_back(absl::StrFormat("idle_controller_cpu_pct=%.2f", cpu));
    result.push_back(
        absl::StrFormat("idle_fleetload_cpu_pct=%.2f", 100 * (s1 - s0) / wall));
    Say(absl::StrFormat(
        "idle %.1f s (no reports): controller CPU %.2f %%, fleetload %.2f %%",
        wall, cpu, 100 * (s1 - s0) / wall));
    // Reports resume: wait a whole interval so every node is fresh again.
    absl::SleepFor(interval + absl::Seconds(1));
  }

  // --- visibility ----------------------------------------------------------
  {
    for (auto& a : agents) a->ClearProbes();
    probing = true;
    std::vector<double> delays, getfleet_ms;
    const absl::Time end = absl::Now() + absl::GetFlag(FLAGS_probe_duration);
    while (absl::Now() < end) {
      grpc::ClientContext ctx;
      ctx.set_wait_for_ready(true);
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
      v1::GetFleetRequest request;
      request.set_summary(true);
      v1::Fleet fleet;
      const int64_t start = NowNs();
      const grpc::Status s = fleet_stub->GetFleet(&ctx, request, &fleet);
      const int64_t at = NowNs();
      if (!s.ok()) {
        Say(absl::StrCat("GetFleet failed: ", s.error_message()));
        break;
      }
      getfleet_ms.push_back(static_cast<double>(at - start) / 1e6);
      for (const v1::Node& node : fleet.nodes()) {
        if (node.name().size() != 10 || !node.has_status()) continue;
        const int i = std::atoi(node.name().c_str() + 5);
        if (i < 0 || i >= n || !probed[i]) continue;
        agents[i]->ResolveProbes(
            absl::ToUnixNanos(ntpfleet::FromProto(node.status().sampled_at())),
            at, &delays);
      }
    }
    probing = false;
    result.push_back(
        absl::StrFormat("visible_p50_ms=%.1f", Percentile(delays, 50)));
    result.push_back(
        absl::StrFormat("visible_p99_ms=%.1f", Percentile(delays, 99)));
    result.push_back(absl::StrCat("visible_samples=", delays.size()));
    result.push_back(
        absl::StrFormat("getfleet_p50_ms=%.1f", Percentile(getfleet_ms, 50)));
    result.push_back(
        absl::StrFormat("getfleet_p99_ms=%.1f", Percentile(getfleet_ms, 99)));
    Say(absl::StrFormat(
        "report->visible p50 %.1f ms, p99 %.1f ms (%d samples); GetFleet "
        "(summary) p50 %.1f ms (%d calls)",
        Percentile(delays, 50), Percentile(delays, 99),
        static_cast<int>(delays.size()), Percentile(getfleet_ms, 50),
        static_cast<int>(getfleet_ms.size())));
  }

  // --- ntpfleetctl status --------------------------------------------------
  if (const std::string ctl = absl::GetFlag(FLAGS_ctl); !ctl.empty()) {
    std::vector<double> walls;
    int failures = 0;
    std::string error;
    for (int r = 0; r < absl::GetFlag(FLAGS_status_runs); ++r) {
      StatusRun run = RunCtlStatus(ctl, fleet_target, ctl_tls);
      if (run.exit_code == 0) {
        walls.push_back(run.wall_ms);
      } else {
        ++failures;
        if (error.empty()) error = run.error;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    result.push_back(
        absl::StrFormat("status_p50_ms=%.1f", Percentile(walls, 50)));
    result.push_back(absl::StrFormat("status_max_ms=%.1f", Max(walls)));
    result.push_back(absl::StrCat("status_runs=", walls.size()));
    result.push_back(absl::StrCat("status_failures=", failures));
    Say(absl::StrFormat(
        "ntpfleetctl status: p50 %.1f ms, max %.1f ms over %d ok runs, %d "
        "failed%s",
        Percentile(walls, 50), Max(walls), static_cast<int>(walls.size()),
        failures, error.empty() ? "" : ": " + error));
    if (!error.empty()) {
      result.push_back(absl::StrCat("status_error=", Token(error)));
    }
  }

  // --- resync fan-out ------------------------------------------------------
  if (const int rounds = absl::GetFlag(FLAGS_resync_rounds); rounds > 0) {
    std::vector<double> totals, acks;
    int min_ok = n;
    int resync_failures = 0;
    std::string resync_error;
    load.TakeAcks();
    for (int r = 0; r < rounds; ++r) {
      v1::ResyncRequest request;
      request.mutable_selector()->set_all(true);
      request.set_requested_by("bench/fleetload");
      ntpfleet::SetDuration(absl::Seconds(30), request.mutable_deadline());
      v1::ResyncResponse response;
      grpc::ClientContext ctx;
      ctx.set_wait_for_ready(true);
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(120));
      const int64_t start = NowNs();
      const grpc::Status s = fleet_stub->Resync(&ctx, request, &response);
      const int64_t end = NowNs();
      if (!s.ok()) {
        Say(absl::StrCat("Resync failed: ", s.error_message()));
        if (resync_error.empty()) resync_error = s.error_message();
        ++resync_failures;
        absl::SleepFor(absl::Seconds(1));
        continue;
      }
      int ok = 0;
      for (const v1::NodeResyncResult& res : response.results()) {
        if (res.result().outcome() == v1::RESYNC_OUTCOME_OK) ++ok;
      }
      min_ok = std::min(min_ok, ok);
      totals.push_back(static_cast<double>(end - start) / 1e6);
      absl::SleepFor(absl::Milliseconds(500));  // late acks, if any
      std::vector<double> round_acks;
      for (int64_t t : load.TakeAcks()) {
        round_acks.push_back(static_cast<double>(t - start) / 1e6);
      }
      Say(absl::StrFormat(
          "resync all: %.1f ms, %d/%d ok; acks p50 %.1f ms, p99 %.1f ms",
          totals.back(), ok, response.results_size(),
          Percentile(round_acks, 50), Percentile(round_acks, 99)));
      acks.insert(acks.end(), round_acks.begin(), round_acks.end());
      absl::SleepFor(absl::Seconds(1));
    }
    result.push_back(
        absl::StrFormat("resync_total_ms=%.1f", Percentile(totals, 50)));
    result.push_back(absl::StrFormat("resync_total_max_ms=%.1f", Max(totals)));
    result.push_back(
        absl::StrFormat("resync_ack_p50_ms=%.1f", Percentile(acks, 50)));
    result.push_back(
        absl::StrFormat("resync_ack_p99_ms=%.1f", Percentile(acks, 99)));
    result.push_back(
        absl::StrCat("resync_ok_min=", totals.empty() ? -1 : min_ok));
    result.push_back(absl::StrCat("resync_failures=", resync_failures));
    if (!resync_error.empty()) {
      result.push_back(absl::StrCat("resync_error=", Token(resync_error)));
    }
  }

  {
    const Usage self2 = Measure(0);
    const Usage ctl2 = controller_pid > 0 ? Measure(controller_pid) : Usage{};
    result.push_back(absl::StrCat("controller_fds_end=", ctl2.fds));
    result.push_back(absl::StrCat("fleetload_fds_end=", self2.fds));
    result.push_back(absl::StrFormat("fleetload_hwm_kib=%d",
                                     static_cast<int>(StatusKib(0, "VmHWM"))));
  }
  result.push_back(absl::StrCat("write_failures=", load.write_failures.load()));
  return emit(all_connected && load.failed_streams == 0 ? 0 : 1);
}
