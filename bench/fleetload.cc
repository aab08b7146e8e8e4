// bench/fleetload: plays N agents against one ntpfleet-controller over real
// gRPC on loopback, for the controller-scale benchmark (issue #6, part 3;
// driven by bench/controller_scale.sh).
//
// Every fake agent has its own bidirectional AgentService.Connect stream (the
// gRPC callback API: a reactor per stream, no thread per agent), spread over
// --channels separate TCP connections. Each sends a Hello, then a realistic
// SyncStatus (2-3 peer rows) once a second, the agents' phases spread evenly
// over the second, and answers every Resync with a ResyncResult at once.
//
// Phases, one after the other (the reports go on at 1 Hz throughout):
//  1. connect: the streams open at --connect-rate a second; once every Hello
//     is written, GetFleet (once a second: it is heavy) must count them all
//     CONNECTED. A stream the controller drops is counted (stream_error is
//     the first reason) and not reopened; the run goes on with the others;
//  2. steady (--duration): nothing but the reports; the controller's CPU use
//     (--controller-pid) and ours are measured over exactly this window;
//  3. visibility (--probe-duration): a separate client polls GetFleet back to
//     back; for a sample of nodes, each report's sampled_at is its marker, and
//     its delay is from the fake agent's write to the arrival of the first
//     GetFleet response that shows it (or a later report of that node);
//  4. status: runs the real `ntpfleetctl status` (--ctl) --status-runs times
//     and times each run, spawn to exit;
//  5. resync: FleetService.Resync with all=true, --resync-rounds times: the
//     total time of the call and, per node, the delay from the call to the
//     fake agent receiving its Resync and writing its ResyncResult.
//
// Human-readable progress goes to stderr; the results are one line on stdout,
//   RESULT key=value key=value ...
// (times in ms; -1 where not measured). Exits 1 when not every agent connected
// or a stream was dropped (the RESULT line is printed all the same).
//
//   fleetload --controller 127.0.0.1:7123 --agents 10000 --duration 30s
//             --controller-pid 1234 --ctl bazel-bin/ctl/ntpfleetctl
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
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
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/proto_time.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "proto/ntpfleet.pb.h"

ABSL_FLAG(std::string, controller, "127.0.0.1:7123",
          "the controller's gRPC address (loopback only)");
ABSL_FLAG(int, agents, 100, "number of fake agents (streams)");
ABSL_FLAG(int, channels, 64,
          "gRPC channels (TCP connections) the streams are spread over");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(30),
          "steady phase: reports only, CPU measured over it");
ABSL_FLAG(absl::Duration, probe_duration, absl::Seconds(10),
          "visibility phase: GetFleet polled back to back");
ABSL_FLAG(int, probe_nodes, 200,
          "nodes whose reports are followed in the visibility phase");
ABSL_FLAG(int, connect_rate, 1000,
          "streams opened per second at the start; 0: all at once");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(120),
          "give up when not all agents are CONNECTED by then");
ABSL_FLAG(std::string, ctl, "",
          "ntpfleetctl binary for the status phase; empty: phase skipped");
ABSL_FLAG(int, status_runs, 5, "runs of `ntpfleetctl status`");
ABSL_FLAG(int, resync_rounds, 3, "FleetService.Resync(all) rounds; 0: none");
ABSL_FLAG(int, controller_pid, 0,
          "the controller's pid, to measure its CPU use over the steady phase");

namespace {

namespace v1 = ntpfleet::v1;

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

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

// utime + stime of a process, in seconds; -1 when unreadable.
double CpuSeconds(int pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/stat")
                            : absl::StrCat("/proc/", pid, "/stat"));
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

void SetMs(google::protobuf::Duration* d, double ms) {
  ntpfleet::SetDuration(absl::Microseconds(ms * 1000), d);
}

class Load;

// One fake agent: one Connect stream.
class FakeAgent final
    : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  FakeAgent(Load* load, int index) : load_(load), index_(index) {}

  static std::string Name(int index) {
    return absl::StrFormat("node-%05d", index);
  }

  void Start(v1::AgentService::Stub* stub, const v1::Hello& hello) {
    stub->async()->Connect(&context_, this);
    v1::AgentMessage m;
    *m.mutable_hello() = hello;
    Send(std::move(m));
    StartRead(&in_);
    StartCall();
  }

  // Any thread; dropped once the stream is being torn down.
  void Send(v1::AgentMessage message) {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    queue_.push_back(std::move(message));
    if (!writing_) WriteNext();
  }

  // A status report; with `probe`, its sampled_at and write time are kept to
  // find when it becomes visible.
  void Report(std::mt19937_64& rng, bool probe);

  // A GetFleet response that arrived at `at` shows this node's report sampled
  // at `visible_ns`: every probe up to it is visible.
  void ResolveProbes(int64_t visible_ns, int64_t at_ns,
                     std::vector<double>* delays_ms) {
    absl::MutexLock lock(&mu_);
    while (!probes_.empty() && probes_.front().first <= visible_ns) {
      delays_ms->push_back(static_cast<double>(at_ns - probes_.front().second) /
                           1e6);
      probes_.pop_front();
    }
  }
  void ClearProbes() {
    absl::MutexLock lock(&mu_);
    probes_.clear();
  }

  void Close() {
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
      stopped_ = true;
    }
    context_.TryCancel();
  }

  bool hello_written() const { return hello_written_; }

  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  Load* const load_;
  const int index_;
  grpc::ClientContext context_;
  v1::ControllerMessage in_;
  std::atomic<bool> hello_written_{false};
  absl::Mutex mu_;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;  // we are ending the stream
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // no more writes
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::AgentMessage> queue_ ABSL_GUARDED_BY(mu_);
  v1::AgentMessage current_ ABSL_GUARDED_BY(mu_);
  // (sampled_at ns, write time ns) of the probed reports not yet seen.
  std::deque<std::pair<int64_t, int64_t>> probes_ ABSL_GUARDED_BY(mu_);
};

class Load {
 public:
  explicit Load(int n) : n_(n) {}

  std::atomic<int64_t> reports_written{0};
  std::atomic<int64_t> write_failures{0};
  std::atomic<int> done{0};
  std::atomic<int> hellos_written{0};
  std::atomic<int> failed_streams{0};

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

void FakeAgent::Report(std::mt19937_64& rng, bool probe) {
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
  s->set_system_peer("ntp1.fleet.example");
  const int peers = index_ % 2 == 0 ? 3 : 2;
  for (int p = 0; p < peers; ++p) {
    v1::PeerStatus* peer = s->add_peers();
    peer->set_remote(absl::StrCat("ntp", p + 1, ".fleet.example"));
    peer->set_address(absl::StrCat("10.0.0.", p + 1, ":123"));
    peer->set_refid(p == 0 ? "GPS" : absl::StrCat("10.1.0.", p));
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
  if (stopped_) return;
  if (probe) probes_.emplace_back(sampled_ns, NowNs());
  queue_.push_back(std::move(m));
  if (!writing_) WriteNext();
}

void FakeAgent::OnWriteDone(bool ok) {
  if (!ok) {
    load_->write_failures.fetch_add(1, std::memory_order_relaxed);
    absl::MutexLock lock(&mu_);
    writing_ = false;
    stopped_ = true;  // the stream is broken; OnDone follows
    return;
  }
  if (current_.has_status()) {
    load_->reports_written.fetch_add(1, std::memory_order_relaxed);
  } else if (current_.has_hello()) {
    hello_written_ = true;
    load_->hellos_written.fetch_add(1);
  }
  absl::MutexLock lock(&mu_);
  writing_ = false;
  if (!stopped_ && !queue_.empty()) WriteNext();
}

void FakeAgent::OnReadDone(bool ok) {
  if (!ok) {
    // The call is over. Once this reaction returns, the last operation may
    // complete and gRPC frees the call before OnDone runs: nothing may start
    // from another thread from now on.
    absl::MutexLock lock(&mu_);
    stopped_ = true;
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
  StartRead(&in_);
}

void FakeAgent::OnDone(const grpc::Status& status) {
  bool closing;
  {
    absl::MutexLock lock(&mu_);
    closing = closing_;
    stopped_ = true;  // no operation may start on a finished call
  }
  if (!closing) {
    load_->failed_streams.fetch_add(1);
    load_->RecordFailure(status);
  }
  load_->done.fetch_add(1);
}

v1::Hello MakeHello(int index, std::mt19937_64& rng) {
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
  ntpfleet::SetDuration(absl::Seconds(1), h.mutable_report_interval());
  h.set_instance_id(absl::StrFormat("%016x", rng()));
  return h;
}

std::unique_ptr<v1::FleetService::Stub> FleetStub(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return v1::FleetService::NewStub(grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args));
}

struct StatusRun {
  double wall_ms = -1;
  int exit_code = -1;
  std::string error;
};

// Runs `ctl status --controller TARGET --color never`, stdout to /dev/null,
// and times it from spawn to exit.
StatusRun RunCtlStatus(const std::string& ctl, const std::string& target) {
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
  const std::string target = absl::GetFlag(FLAGS_controller);
  const int n = absl::GetFlag(FLAGS_agents);
  const int channels = std::max(1, std::min(absl::GetFlag(FLAGS_channels), n));
  const int controller_pid = absl::GetFlag(FLAGS_controller_pid);
  if (n <= 0) {
    std::fprintf(stderr, "fleetload: --agents must be positive\n");
    return 2;
  }
  auto say = [](const std::string& s) {
    std::fprintf(
        stderr, "[fleetload %s] %s\n",
        absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone())
            .c_str(),
        s.c_str());
  };

  // --- connect -------------------------------------------------------------
  std::vector<std::shared_ptr<grpc::Channel>> chans;
  std::vector<std::unique_ptr<v1::AgentService::Stub>> stubs;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    // A channel of its own per connection: without this, channels with equal
    // arguments share one subchannel (one TCP connection).
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    chans.push_back(grpc::CreateCustomChannel(
        target, grpc::InsecureChannelCredentials(), args));
    stubs.push_back(v1::AgentService::NewStub(chans.back()));
  }
  auto fleet_stub = FleetStub(target);
  Load load(n);
  std::vector<std::unique_ptr<FakeAgent>> agents;
  agents.reserve(n);
  std::mt19937_64 rng(12345);
  const absl::Time connect_start = absl::Now();
  for (int i = 0; i < n; ++i) {
    agents.push_back(std::make_unique<FakeAgent>(&load, i));
  }

  // Reports: the second is cut into kSlots slots; agent i reports in slot
  // i * kSlots / n, so the load is even over the second.
  constexpr int kSlots = 100;
  std::atomic<bool> stop_ticks{false};
  std::atomic<bool> probing{false};
  const int probe_nodes =
      std::min(n, std::max(1, absl::GetFlag(FLAGS_probe_nodes)));
  std::vector<bool> probed(n, false);
  for (int k = 0; k < probe_nodes; ++k) {
    probed[static_cast<size_t>(k) * n / probe_nodes] = true;
  }
  std::vector<std::vector<int>> slots(kSlots);
  for (int i = 0; i < n; ++i)
    slots[static_cast<size_t>(i) * kSlots / n].push_back(i);
  std::thread ticker([&] {
    std::mt19937_64 trng(777);
    const absl::Time t0 = absl::Now();
    for (int64_t tick = 0; !stop_ticks; ++tick) {
      const absl::Time due = t0 + tick * absl::Seconds(1) / kSlots;
      const absl::Duration wait = due - absl::Now();
      if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
      const bool probe = probing;
      for (int i : slots[tick % kSlots]) {
        if (agents[i]->hello_written()) {
          agents[i]->Report(trng, probe && probed[i]);
        }
      }
    }
  });

  const int connect_rate = absl::GetFlag(FLAGS_connect_rate);
  for (int i = 0; i < n; ++i) {
    if (connect_rate > 0) {
      const absl::Time due =
          connect_start + i * absl::Seconds(1) / connect_rate;
      if (due > absl::Now()) absl::SleepFor(due - absl::Now());
    }
    agents[i]->Start(stubs[i % channels].get(), MakeHello(i, rng));
  }
  say(absl::StrFormat("%d streams started over %d connections to %s in %.1f s",
                      n, channels, target,
                      absl::ToDoubleSeconds(absl::Now() - connect_start)));

  bool all_connected = false;
  int connected = 0;
  double connect_s = -1;
  {
    const absl::Time deadline =
        connect_start + absl::GetFlag(FLAGS_connect_timeout);
    uint32_t seen = 0;
    // A GetFleet of thousands of nodes is heavy for the controller: wait for
    // every Hello to be written (or its stream to fail) before asking.
    while (absl::Now() < deadline &&
           load.hellos_written + load.failed_streams < n) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    while (absl::Now() < deadline) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
      v1::Fleet fleet;
      if (fleet_stub->GetFleet(&ctx, v1::GetFleetRequest(), &fleet).ok()) {
        seen = fleet.connected_count();
        if (static_cast<int>(seen) >= n) {
          all_connected = true;
          break;
        }
        // Streams the controller dropped do not come back (a real agent
        // would reconnect): go on with the others.
        if (static_cast<int>(seen) >= n - load.failed_streams) break;
      }
      absl::SleepFor(absl::Seconds(1));
    }
    connected = static_cast<int>(seen);
    connect_s = absl::ToDoubleSeconds(absl::Now() - connect_start);
    say(absl::StrFormat(
        "%d/%d CONNECTED after %.1f s%s", seen, n, connect_s,
        load.failed_streams > 0
            ? absl::StrCat("; a stream failed: ", load.first_error())
            : ""));
  }

  std::vector<std::string> result = {
      absl::StrCat("agents=", n), absl::StrCat("channels=", channels),
      absl::StrCat("connected=", connected),
      absl::StrFormat("connect_s=%.2f", connect_s)};
  auto emit = [&](int rc) {
    result.push_back(
        absl::StrCat("failed_streams=", load.failed_streams.load()));
    if (const std::string e = load.first_error(); !e.empty()) {
      result.push_back(absl::StrCat("stream_error=", Token(e)));
    }
    std::printf("RESULT %s\n", absl::StrJoin(result, " ").c_str());
    std::fflush(stdout);
    stop_ticks = true;
    ticker.join();
    for (auto& a : agents) a->Close();
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (load.done < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (load.done < n) {
      say("not every stream ended; exiting without cleanup");
      std::_Exit(rc);
    }
    return rc;
  };
  if (connected == 0) {
    result.push_back("error=none_connected");
    return emit(1);
  }
  if (!all_connected) {
    say(absl::StrFormat("going on with the %d connected agents", connected));
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
    say(absl::StrFormat(
        "steady %.1f s: %.0f reports/s; controller CPU %.1f %%, fleetload CPU "
        "%.1f %%",
        wall, rate, cpu, self_cpu));
  }

  // --- visibility ----------------------------------------------------------
  {
    for (auto& a : agents) a->ClearProbes();
    probing = true;
    std::vector<double> delays, getfleet_ms;
    const absl::Time end = absl::Now() + absl::GetFlag(FLAGS_probe_duration);
    // Let the first probed reports go out before the first poll counts.
    while (absl::Now() < end) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
      v1::Fleet fleet;
      const int64_t start = NowNs();
      const grpc::Status s =
          fleet_stub->GetFleet(&ctx, v1::GetFleetRequest(), &fleet);
      const int64_t at = NowNs();
      if (!s.ok()) {
        say(absl::StrCat("GetFleet failed: ", s.error_message()));
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
    say(absl::StrFormat(
        "report->visible p50 %.1f ms, p99 %.1f ms (%d samples); GetFleet p50 "
        "%.1f ms (%d calls)",
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
      StatusRun run = RunCtlStatus(ctl, target);
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
    result.push_back(absl::StrFormat(
        "status_max_ms=%.1f",
        walls.empty() ? -1.0 : *std::max_element(walls.begin(), walls.end())));
    result.push_back(absl::StrCat("status_failures=", failures));
    say(
        absl::StrFormat("ntpfleetctl status: p50 %.1f ms over %d ok runs, %d "
                        "failed%s",
                        Percentile(walls, 50), static_cast<int>(walls.size()),
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
      ntpfleet::SetDuration(absl::Seconds(10), request.mutable_deadline());
      v1::ResyncResponse response;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
      const int64_t start = NowNs();
      const grpc::Status s = fleet_stub->Resync(&ctx, request, &response);
      const int64_t end = NowNs();
      if (!s.ok()) {
        say(absl::StrCat("Resync failed: ", s.error_message()));
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
      for (int64_t t : load.TakeAcks()) {
        acks.push_back(static_cast<double>(t - start) / 1e6);
      }
      say(absl::StrFormat("resync all: %.1f ms, %d/%d ok", totals.back(), ok,
                          response.results_size()));
      absl::SleepFor(absl::Seconds(1));
    }
    result.push_back(
        absl::StrFormat("resync_total_ms=%.1f", Percentile(totals, 50)));
    result.push_back(absl::StrFormat(
        "resync_total_max_ms=%.1f",
        totals.empty() ? -1.0
                       : *std::max_element(totals.begin(), totals.end())));
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

  result.push_back(absl::StrCat("write_failures=", load.write_failures.load()));
  return emit(all_connected && load.failed_streams == 0 ? 0 : 1);
}
