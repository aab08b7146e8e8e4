#include "agent/net/agent_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/config/access_list.h"
#include "agent/config/keys_file.h"
#include "agent/ntp/access.h"
#include "agent/report/status_proto.h"
#include "common/config/config_file.h"
#include "common/drift_file.h"
#include "common/local_control.h"
#include "common/local_users.h"
#include "common/log.h"
#include "common/ntp/timestamp.h"
#include "common/version.h"

namespace ntpfleet::net {
namespace {

constexpr int kReceiveBuffer =
    4 << 20;  // bursts overflow small buffers before the CPU is busy

absl::Time RealNow() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return absl::TimeFromTimespec(ts);
}

// log2 of the smallest step the clock is read in (RFC 5905 precision), at least
// -30.
int8_t MeasurePrecision(const clock::Clock& clock) {
  absl::Duration best = absl::Seconds(1);
  for (int i = 0; i < 64; ++i) {
    const absl::Time a = clock.Now();
    absl::Time b = clock.Now();
    for (int j = 0; j < 1000 && b == a; ++j) b = clock.Now();
    if (b > a) best = std::min(best, b - a);
  }
  const double log2 = std::floor(std::log2(absl::ToDoubleSeconds(best)));
  return static_cast<int8_t>(std::clamp(log2, -30.0, 0.0));
}

// Adds 1 to eventfd `fd` (if open). Async-signal-safe: a write(2) of 8 bytes.
void Notify(int fd) {
  if (fd < 0) return;
  const uint64_t one = 1;
  (void)!write(fd, &one, sizeof(one));
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The probes' spacing is the monitors' shortest interval: a monitor polling
// at its interval is never refused.
static_assert(kProbeSpacing == ntp::kMinMonitorInterval);

// One monitor's latest result, as the controller reads it (ProbeResult).
v1::ProbeResult ToProbeResult(const ntp::MonitorStatus& m,
                              const std::string& node) {
  v1::ProbeResult r;
  r.set_node(node);
  r.set_address(m.address);
  if (m.offset && m.measured_at) {
    report::SetTimestamp(*m.measured_at, r.mutable_measured_at());
    report::SetDuration(*m.offset, r.mutable_offset());
    report::SetDuration(m.delay, r.mutable_delay());
    report::SetDuration(m.jitter, r.mutable_jitter());
  } else {
    r.set_error(m.error.empty() ? "no measurement yet" : m.error);
  }
  r.set_samples(static_cast<uint32_t>(m.samples));
  if (m.counters.responses > 0) {
    r.set_target_stratum(static_cast<uint32_t>(m.stratum));
  }
  return r;
}

}  // namespace

config::OwnServer ThisAgent(const std::string& listen_address, int port) {
  config::OwnServer own;
  own.port = port;
  if (!listen_address.empty()) {
    if (absl::StatusOr<ntp::IpAddress> ip =
            ntp::IpAddress::Parse(listen_address);
        ip.ok()) {
      own.listen = *ip;
    }
  }
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return own;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    const int family = a->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    const size_t length =
        family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    sockaddr_storage ss{};
    std::memcpy(&ss, a->ifa_addr, length);
    const ntp::IpAddress local = Endpoint::FromSockaddr(ss).ip;
    own.local_addresses.push_back(local);
    if (family == AF_INET && (a->ifa_flags & IFF_BROADCAST) &&
        a->ifa_broadaddr != nullptr) {
      sockaddr_storage b{};
      std::memcpy(&b, a->ifa_broadaddr, sizeof(sockaddr_in));
      const ntp::IpAddress broadcast = Endpoint::FromSockaddr(b).ip;
      // An address added without a broadcast (`ip addr add 10.0.0.1/24`, no
      // `brd`) has none; glibc then fills ifa_broadaddr with the address
      // itself (its IFA_ADDRESS), or it is 0.0.0.0. Neither is a broadcast
      // address: the address itself must stay a server others can name.
      const sockaddr_in* b4 = reinterpret_cast<const sockaddr_in*>(&b);
      if (!(broadcast == local) && b4->sin_addr.s_addr != 0) {
        own.broadcast_addresses.push_back(broadcast);
      }
    }
  }
  freeifaddrs(list);
  return own;
}

struct AgentLoop::SourceSlot {
  int id = 0;
  config::ServerEntry entry;
  std::optional<Endpoint> endpoint;
  clock::MonoTime next_resolve;
  absl::Duration backoff;
  // Why none of the addresses it resolved to is polled, as last logged
  // (empty: none logged).
  std::string problem;
};

struct AgentLoop::ControlConn {
  int fd = -1;
  std::string in;
  bool waiting = false;  // a resync is pending for it
  // The peer, as the kernel saw it connect (SO_PEERCRED); uid -1: unknown.
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

struct AgentLoop::PendingResync {
  std::function<void(const v1::ResyncResult&)> done;
  std::string request_id;
  clock::MonoTime deadline;
  uint64_t corrections_before = 0;
  uint64_t attempts_before = 0;
};

// A server thread: its own SO_REUSEPORT socket and responder (the kernel hashes
// a client to one socket, so each thread's rate-limit table sees all of that
// client's packets).
class AgentLoop::ServerWorker {
 public:
  ServerWorker(AgentLoop* loop, UdpSocket socket,
               std::unique_ptr<ntp::Responder> responder)
      : loop_(loop),
        socket_(std::move(socket)),
        responder_(std::move(responder)) {}
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  const ntp::ServerCounters& counters() const { return responder_->counters(); }

 private:
  void Loop() {
    Batch batch;
    pollfd fds[2] = {{socket_.fd(), POLLIN, 0}, {loop_->stop_fd_, POLLIN, 0}};
    while (!loop_->stop_.load(std::memory_order_relaxed)) {
      if (poll(fds, 2, 1000) <= 0) continue;
      if (fds[1].revents) break;
      if (!(fds[0].revents & POLLIN)) continue;
      // Under load, full batches follow one another: no poll() between them.
      while (loop_->ServeBatch(socket_, *responder_, batch) == Batch::kBatch &&
             !loop_->stop_.load(std::memory_order_relaxed)) {
      }
    }
  }
  AgentLoop* loop_;
  UdpSocket socket_;
  std::unique_ptr<ntp::Responder> responder_;
  std::thread thread_;
};

AgentLoop::AgentLoop(AgentOptions options)
    : options_(std::move(options)),
      probe_limiter_(
          kMaxProbeTargets *
          std::max<int>(
              1, static_cast<int>(options_.config.controllers.size()))) {}

AgentLoop::~AgentLoop() {
  RequestStop();
  for (auto& w : workers_) w->Join();
  for (ControlConn& c : control_conns_) close(c.fd);
  if (control_fd_ >= 0) {
    close(control_fd_);
    unlink(options_.control_socket.c_str());
  }
  for (int fd : {wake_fd_, stop_fd_}) {
    if (fd >= 0) close(fd);
  }
}

absl::StatusOr<std::unique_ptr<AgentLoop>> AgentLoop::Create(
    AgentOptions options) {
  std::unique_ptr<AgentLoop> loop(new AgentLoop(std::move(options)));
  if (absl::Status s = loop->Init(); !s.ok()) return s;
  return loop;
}

void AgentLoop::RequestStop() {
  stop_.store(true);
  Notify(wake_fd_);
  Notify(stop_fd_);
}

// `leapfile`: the table, or nullopt with a warning. Never fatal: without it a
// leap second the servers' majority announces is taken at the end of June or
// December only (agent/ntp/leap.h).
std::optional<ntp::LeapTable> AgentLoop::ReadLeapfile(const std::string& path) {
  constexpr char kFallback[] =
      "leap seconds are taken from the servers' majority at the end of June or "
      "December only";
  absl::StatusOr<std::string> text = config::ReadConfigText(path);
  absl::StatusOr<ntp::LeapTable> table =
      text.ok() ? ntp::LeapTable::Parse(*text, path)
                : absl::StatusOr<ntp::LeapTable>(text.status());
  if (!table.ok()) {
    // The message names the file (and the line, for a malformed one).
    Log(LogLevel::kWarning, "leapfile not used: %s; %s",
        table.status().message(), kFallback);
    return std::nullopt;
  }
  const std::string expires =
      absl::FormatTime("%Y-%m-%d", table->expires(), absl::UTCTimeZone());
  if (table->ExpiredAt(options_.clock->Now())) {
    Log(LogLevel::kWarning,
        "leapfile %s expired on %s: update it (Debian: the tzdata package); "
        "until then %s",
        path, expires, kFallback);
  } else {
    Log(LogLevel::kInfo, "leapfile %s: %d entries, expires %s, %s", path,
        static_cast<int>(table->entries().size()), expires,
        table->hash_verified() ? "hash verified" : "no hash line to verify");
  }
  return *std::move(table);
}

// Settings the parser records but the agent does not act on: said once at
// start, never silently different behaviour.
void AgentLoop::WarnUnused(const config::AgentConfig& cfg) {
  auto warn = [](const std::string& what) {
    Log(LogLevel::kWarning, "%s", what);
  };
  if (!cfg.flags.ntp) {
    warn(
        "`disable ntp` has no effect: ntpfleet-agent always disciplines its "
        "clock (--clock=sim runs it on a simulated one)");
  }
  if (!cfg.statistics.empty() || !cfg.statsdir.empty()) {
    warn(
        "statistics/statsdir: no files are written; the controller keeps "
        "the history (ntpfleetctl history, /metrics)");
  }
  if (cfg.orphan_stratum) {
    warn(
        "tos orphan: orphan mode is not implemented; a local clock "
        "(server 127.127.1.0 + fudge ... stratum N) serves the same purpose");
  }
  if (cfg.min_clock) warn("tos minclock: not implemented (3 survivors kept)");
  if (cfg.request_key || cfg.control_key) {
    warn(
        "requestkey/controlkey: unused, ntpfleet answers no mode 6/7 "
        "requests");
  }
  if (cfg.rtcsync) {
    warn(
        "rtcsync: nothing to do, the kernel copies the time to the RTC "
        "whenever the agent reports the clock synchronised");
  }
  for (const config::ServerEntry& e : cfg.servers) {
    if (e.is_pool) {
      warn(e.location.ToString() + ": pool " + e.host +
           ": only the first address the name resolves to is used");
    }
    if (e.family != config::AddressFamily::kAny) {
      warn(e.location.ToString() + ": -4/-6 on " + e.host +
           " is not applied: the first address of either family is used");
    }
  }
  for (const config::RestrictRule& r : cfg.restrictions) {
    for (config::RestrictFlag f :
         {config::RestrictFlag::kVersion, config::RestrictFlag::kNtpPort,
          config::RestrictFlag::kLowPrioTrap,
          config::RestrictFlag::kNoMruList}) {
      if (r.Has(f)) {
        warn(r.location.ToString() + ": restrict flag " +
             config::RestrictFlagName(f) + " has no effect in ntpfleet");
      }
    }
  }
}

absl::Status AgentLoop::Init() {
  const config::AgentConfig& cfg = options_.config;
  // The loop's wake-up: an eventfd, never a pipe (see wake_fd_).
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0)
    return absl::InternalError("eventfd: " + std::string(strerror(errno)));

  // Keys: read and checked as --check-config does (the same function).
  absl::StatusOr<config::LoadedKeys> keys = config::LoadKeysFile(cfg);
  if (!keys.ok()) return keys.status();
  for (const std::string& w : keys->warnings) Log(LogLevel::kWarning, "%s", w);
  keys_ = std::move(keys->keys);
  for (uint32_t id : cfg.trusted_keys) keys_.Trust(id);
  WarnUnused(cfg);

  // The engine.
  ntp::EngineOptions eo;
  if (cfg.panic_threshold) eo.discipline.panic_threshold = *cfg.panic_threshold;
  if (cfg.step_threshold) eo.discipline.step_threshold = *cfg.step_threshold;
  if (cfg.min_sane) eo.selection.min_sane = static_cast<size_t>(*cfg.min_sane);
  if (cfg.local_clock) eo.local_clock_stratum = cfg.local_clock->stratum;
  if (!cfg.driftfile.empty()) {
    absl::StatusOr<double> drift = clock::ReadDriftFile(cfg.driftfile);
    if (drift.ok()) {
      eo.initial_frequency_ppm = *drift;
      Log(LogLevel::kInfo, "frequency %+.3f ppm from %s", *drift,
          cfg.driftfile);
    } else if (absl::IsNotFound(drift.status())) {
      Log(LogLevel::kInfo, "%s", drift.status().message());
    } else {
      Log(LogLevel::kWarning, "%s; starting from the clock's current frequency",
          drift.status().message());
    }
    // Now, not at the first hourly write or at exit (#15): a warning, not a
    // refusal to start, since the clock is disciplined just the same.
    if (absl::Status s = clock::CheckDriftFileWritable(cfg.driftfile);
        !s.ok()) {
      Log(LogLevel::kWarning, "%s", s.message());
    }
  }
  eo.leap_mode = cfg.leap_sec_mode == config::LeapSecMode::kSlew
                     ? ntp::LeapMode::kSlew
                     : ntp::LeapMode::kSystem;
  if (!cfg.leapfile.empty()) eo.leap_table = ReadLeapfile(cfg.leapfile);
  std::random_device random;
  eo.seed = (uint64_t{random()} << 32) | random();
  const clock::MonoTime now = MonoNow();
  engine_ = std::make_unique<ntp::Engine>(options_.clock, eo, now);

  // Sources. The clock's reading precision first: it is the floor of every
  // measured delay (and what the server side announces).
  const int8_t precision = MeasurePrecision(*options_.clock);
  for (const config::ServerEntry& entry : cfg.servers) {
    ntp::SourceConfig sc;
    sc.precision = precision;
    sc.name = entry.host;
    sc.minpoll = entry.minpoll;
    sc.maxpoll = entry.maxpoll;
    sc.iburst = entry.iburst;
    sc.burst = entry.burst;
    sc.prefer = entry.prefer;
    sc.version = entry.version;
    if (cfg.max_distance) sc.max_distance = *cfg.max_distance;
    if (entry.key_id) {
      const ntp::Key* key = keys_.Find(*entry.key_id);
      if (key == nullptr) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: server %s uses key %d, which is not in the keys file%s",
            entry.location.ToString(), entry.host, *entry.key_id,
            cfg.keys_file.empty() ? " (no `keys` line)" : " " + cfg.keys_file));
      }
      sc.key = *key;
    }
    SourceSlot slot;
    slot.entry = entry;
    slot.backoff = options_.resolve_retry;
    slot.next_resolve = now;
    slot.id = engine_->AddSource(sc);
    sources_.push_back(std::move(slot));
  }

  // Client sockets: requests leave from ephemeral ports.
  absl::StatusOr<UdpSocket> v4 =
      UdpSocket::Bind(Endpoint{ntp::IpAddress::V4(0, 0, 0, 0), 0});
  if (!v4.ok()) return v4.status();
  client_v4_ = *std::move(v4);
  Endpoint any6;
  any6.ip.v6 = true;
  if (absl::StatusOr<UdpSocket> v6 = UdpSocket::Bind(any6); v6.ok())
    client_v6_ = *std::move(v6);

  // The server side.
  if (options_.port >= 0 && !options_.once) {
    std::vector<Endpoint> listen;
    if (!options_.listen_address.empty()) {
      absl::StatusOr<ntp::IpAddress> ip =
          ntp::IpAddress::Parse(options_.listen_address);
      if (!ip.ok()) return ip.status();
      listen.push_back(Endpoint{*ip, static_cast<uint16_t>(options_.port)});
    } else {
      listen.push_back(Endpoint{ntp::IpAddress::V4(0, 0, 0, 0),
                                static_cast<uint16_t>(options_.port)});
      Endpoint v6;
      v6.ip.v6 = true;
      v6.port = static_cast<uint16_t>(options_.port);
      listen.push_back(v6);
    }
    const int threads = std::max(1, cfg.server_threads);
    const ntp::AccessList access = config::ToAccessList(cfg.restrictions);
    for (size_t i = 0; i < listen.size(); ++i) {
      Endpoint at = listen[i];
      if (server_port_ != 0)
        at.port = server_port_;  // port 0: the same one for IPv6
      if (threads > 1 && at.port != 0) {
        // SO_REUSEPORT would let us share a port another process (even another
        // agent) holds with the same option: make sure it is free first.
        absl::StatusOr<UdpSocket> probe = UdpSocket::Bind(at);
        if (!probe.ok() && !(at.ip.v6 && i > 0)) return probe.status();
      }
      for (int t = 0; t < threads; ++t) {
        absl::StatusOr<UdpSocket> s =
            UdpSocket::Bind(at, threads > 1, kReceiveBuffer);
        if (!s.ok()) {
          if (at.ip.v6 && i > 0) {  // no IPv6 here: serve IPv4 only
            Log(LogLevel::kWarning, "not serving IPv6: %s",
                s.status().message());
            break;
          }
          return s.status();
        }
        if (server_port_ == 0) {
          absl::StatusOr<Endpoint> local = s->LocalEndpoint();
          if (local.ok()) server_port_ = local->port;
        }
        auto responder = std::make_unique<ntp::Responder>(
            access, ntp::RateLimitOptions{}, &keys_);
        if (threads == 1) {
          server_sockets_.push_back(*std::move(s));
          if (!responder_) responder_ = std::move(responder);
        } else {
          workers_.push_back(std::make_unique<ServerWorker>(
              this, *std::move(s), std::move(responder)));
        }
      }
    }
    Log(LogLevel::kInfo, "serving NTP on UDP port %d%s", server_port_,
        threads > 1 ? absl::StrFormat(" with %d threads", threads) : "");
  }
  // The sources' addresses once the port served is known: a `server` line
  // naming this agent itself is never polled.
  own_ = ThisAgent(options_.listen_address, server_port_);
  ResolveDue(now);

  // The local control socket.
  if (!options_.control_socket.empty() && !options_.once) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (options_.control_socket.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError("control socket path too long: " +
                                        options_.control_socket);
    }
    strncpy(addr.sun_path, options_.control_socket.c_str(),
            sizeof(addr.sun_path) - 1);
    // A live agent answering on the path is another instance: refuse rather
    // than steal it.
    const int probe = socket(AF_UNIX, SOCK_STREAM, 0);
    if (probe >= 0 &&
        connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      close(probe);
      return absl::AlreadyExistsError(
          absl::StrFormat("another ntpfleet-agent is already running (its "
                          "control socket %s answers); stop it "
                          "or use another --control-socket",
                          options_.control_socket));
    }
    if (probe >= 0) close(probe);
    unlink(options_.control_socket.c_str());
    // Mode 0660 group ntpfleet when that group exists (its members may ask
    // for the status), else 0600; never wider, not even between bind() and
    // chmod(). Every request is checked against the peer's credentials too.
    // /etc/group read directly (common/local_users): no NSS in the static
    // agent.
    control_group_ = LocalUsers::Read().GroupId("ntpfleet");
    control_fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    const mode_t old_umask = umask(0177);
    const int bound =
        control_fd_ < 0 ? -1
                        : bind(control_fd_, reinterpret_cast<sockaddr*>(&addr),
                               sizeof(addr));
    const int bind_errno = errno;
    umask(old_umask);
    errno = bind_errno;
    mode_t mode = 0600;
    if (bound == 0 && control_group_) {
      if (chown(options_.control_socket.c_str(), static_cast<uid_t>(-1),
                *control_group_) == 0) {
        mode = 0660;
      } else {
        Log(LogLevel::kWarning,
            "control socket %s: cannot give it to group ntpfleet (%s); only "
            "root (and this agent's user) can use it",
            options_.control_socket, strerror(errno));
      }
    }
    if (bound < 0 || chmod(options_.control_socket.c_str(), mode) < 0 ||
        listen(control_fd_, 16) < 0) {
      return absl::InternalError(absl::StrFormat(
          "control socket %s: %s", options_.control_socket, strerror(errno)));
    }
    fcntl(control_fd_, F_SETFL, fcntl(control_fd_, F_GETFL) | O_NONBLOCK);
  }

  if (!options_.clockbound_shm.empty() && !options_.once) {
    absl::StatusOr<std::unique_ptr<ClockBoundPublisher>> cb =
        ClockBoundPublisher::Open(options_.clockbound_shm,
                                  options_.clockbound_validity);
    if (cb.ok()) {
      clockbound_ = *std::move(cb);
      Log(LogLevel::kInfo, "ClockBound segment %s%s", clockbound_->path(),
          options_.clock_is_system ? "" : " (simulated clock)");
    } else if (options_.clockbound_required) {
      return cb.status();
    } else {
      Log(LogLevel::kWarning, "no ClockBound segment: %s",
          cb.status().message());
    }
  }
  {
    absl::MutexLock lock(&system_mu_);
    system_.precision = precision;
  }
  PublishSystemVariables(engine_->Status(MonoNow()));
  next_drift_write_ = now + options_.drift_interval;
  if (!cfg.leapfile.empty()) {
    leapfile_ = cfg.leapfile;
    next_leapfile_read_ = now + absl::Hours(24);
  }
  Send(engine_->Start(now), now);
  if (options_.once) {
    v1::Resync r;
    r.set_allow_step(true);
    r.set_burst(true);
    r.mutable_deadline()->set_seconds(
        absl::ToInt64Seconds(options_.once_timeout));
    StartResync(
        r, ResyncOrigin::kLocal, now,
        [this](const v1::ResyncResult& result) { once_result_ = result; });
  }
  if (!workers_.empty()) {
    stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stop_fd_ < 0)
      return absl::InternalError("eventfd: " + std::string(strerror(errno)));
  }
  for (auto& w : workers_) w->Start();
  return absl::OkStatus();
}

void AgentLoop::ResolveDue(clock::MonoTime now) {
  for (SourceSlot& slot : sources_) {
    if (slot.endpoint || now < slot.next_resolve) continue;
    absl::StatusOr<std::vector<Endpoint>> found =
        Resolve(slot.entry.host, static_cast<uint16_t>(slot.entry.port));
    if (!found.ok()) {
      Log(LogLevel::kWarning, "%s, retrying in %s", found.status().message(),
          absl::FormatDuration(slot.backoff));
      slot.next_resolve = now + slot.backoff;
      slot.backoff = std::min(slot.backoff * 2, absl::Minutes(10));
      continue;
    }
    // The first address that can answer and that no other source polls: one
    // server is one source, however many lines name it (#15).
    const bool literal =
        config::NumericServerAddress(slot.entry.host).has_value();
    const std::string line =
        absl::StrFormat("%s: %s %s", slot.entry.location.ToString(),
                        slot.entry.is_pool ? "pool" : "server",
                        config::ServerAsWritten(slot.entry));
    std::string problem;
    std::string why_none;
    for (const Endpoint& e : *found) {
      const std::string is = literal
                                 ? absl::StrCat(" is ", e.ToString())
                                 : absl::StrCat(" resolves to ", e.ToString());
      if (const std::string why =
              config::UnanswerableReason(e.ip, e.port, own_);
          !why.empty()) {
        if (problem.empty()) {
          problem = absl::StrCat(line, is, ", which is never polled: ", why);
          why_none = absl::StrCat("never polled: ", why);
        }
        continue;
      }
      const SourceSlot* other = nullptr;
      for (const SourceSlot& s : sources_) {
        if (&s != &slot && s.endpoint && *s.endpoint == e) other = &s;
      }
      if (other != nullptr) {
        if (problem.empty()) {
          problem = absl::StrFormat(
              "%s%s, the same server as %s (%s %s): polled once, with the "
              "options of %s",
              line, is, other->entry.location.ToString(),
              other->entry.is_pool ? "pool" : "server",
              config::ServerAsWritten(other->entry),
              other->entry.location.ToString());
          why_none = absl::StrFormat(
              "the same server as %s (%s), which is polled instead",
              other->entry.location.ToString(), e.ToString());
        }
        continue;
      }
      slot.endpoint = e;
      break;
    }
    if (!slot.endpoint) {
      if (problem != slot.problem) {
        Log(LogLevel::kWarning, "%s%s", problem,
            literal ? ""
                    : absl::StrCat("; the name is looked up again in ",
                                   absl::FormatDuration(slot.backoff)));
      }
      slot.problem = problem;
      if (literal) {
        slot.next_resolve = clock::MonoTime::Infinite();
      } else {  // the name may move
        slot.next_resolve = now + slot.backoff;
        slot.backoff = std::min(slot.backoff * 2, absl::Minutes(10));
      }
      Send(engine_->SetSourceAddress(slot.id, "", now, why_none), now);
      continue;
    }
    slot.problem.clear();
    Log(LogLevel::kInfo, "%s is %s", slot.entry.host,
        slot.endpoint->ToString());
    Send(engine_->SetSourceAddress(slot.id, slot.endpoint->ToString(), now),
         now);
  }
}

absl::Time AgentLoop::ToClockTime(
    const std::optional<absl::Time>& kernel_rx) const {
  if (!kernel_rx) return options_.clock->Now();
  if (options_.clock_is_system) return *kernel_rx;
  // A simulated clock: move the kernel's stamp by its age, read before the
  // simulated clock so that a delay between the two reads makes T4 late (the
  // measured delay grows by it; an early T4 would hide it).
  const absl::Duration age =
      std::max(absl::ZeroDuration(), RealNow() - *kernel_rx);
  return options_.clock->Now() - age;
}

void AgentLoop::Send(std::vector<ntp::Transmit> transmits,
                     clock::MonoTime now) {
  for (ntp::Transmit& t : transmits) {
    const Endpoint* endpoint = nullptr;
    if (t.source >= ntp::Engine::kFirstMonitorId) {  // a crosscheck probe
      for (const auto& [address, probe] : probes_) {
        if (probe.monitor_id != t.source) continue;
        // Here, where it leaves, whatever the assignments did to the
        // monitors: one request per address per 64 s, and the budget.
        switch (probe_limiter_.Admit(address, now)) {
          case ProbeSendLimiter::kSend:
            endpoint = &probe.endpoint;
            break;
          case ProbeSendLimiter::kTooSoon:
            ++probe_rate_limited_;
            break;
          case ProbeSendLimiter::kOverBudget:
            ++probe_budget_exceeded_;
            break;
        }
      }
    } else if (const SourceSlot& slot = sources_[static_cast<size_t>(t.source)];
               slot.endpoint) {
      endpoint = &*slot.endpoint;
    }
    if (endpoint == nullptr) continue;
    UdpSocket& socket = endpoint->ip.v6 ? client_v6_ : client_v4_;
    if (socket.fd() < 0) continue;
    // The transmit timestamp, as late as possible.
    engine_->OnTransmit(t.source, options_.clock->Now(), MonoNow());
    if (absl::Status s = socket.SendTo(t.bytes, *endpoint); !s.ok()) {
      Log(LogLevel::kDebug, "%s", s.message());
    }
  }
}

void AgentLoop::HandleClientSocket() {
  uint8_t buffer[Batch::kMaxDatagram];
  for (UdpSocket* socket : {&client_v4_, &client_v6_}) {
    if (socket->fd() < 0) continue;
    while (std::optional<Datagram> d =
               socket->Receive(absl::MakeSpan(buffer))) {
      const absl::Time t4 = ToClockTime(d->kernel_rx);
      const clock::MonoTime now = MonoNow();
      Send(engine_->HandleResponse(d->from.ToString(),
                                   absl::MakeConstSpan(buffer, d->size), t4,
                                   now),
           now);
    }
  }
}

size_t AgentLoop::ServeBatch(UdpSocket& socket, ntp::Responder& responder,
                             Batch& batch) {
  const size_t n = batch.Receive(socket);
  if (n == 0) return 0;
  ntp::SystemVariables system;
  {
    absl::MutexLock lock(&system_mu_);
    system = system_;
  }
  const clock::MonoTime now = MonoNow();
  ntp::Responder::Prepared prepared[Batch::kBatch];
  // Kernel receive stamps are CLOCK_REALTIME; on a simulated clock they are
  // moved by the two clocks' difference, read once for the whole batch:
  // CLOCK_REALTIME first, in its own statement (the operands of `-` may be
  // evaluated in either order). A delay between the two reads then makes T2
  // late, which lengthens the delay the client measures and so stays within
  // the delay/2 its offset error is bounded by; read the other way round it
  // made T2 early, an error the measured delay hides (a probe off by 0.36 ms
  // with a 0.09 ms delay, seen under load).
  absl::Duration to_clock;
  if (!options_.clock_is_system) {
    const absl::Time real = RealNow();
    to_clock = options_.clock->Now() - real;
  }
  for (size_t i = 0; i < n; ++i) {
    const std::optional<absl::Time> rx = batch.kernel_rx(i);
    const ntp::NtpTimestamp t2 = ntp::NtpTimestamp::FromTime(
        rx ? *rx + to_clock : options_.clock->Now());
    prepared[i] = responder.Prepare(batch.request(i), batch.from(i).ip, t2,
                                    system, now, batch.reply_buffer(i));
  }
  // The transmit timestamp as late as possible: once for the batch, right
  // before sending.
  const ntp::NtpTimestamp t3 =
      ntp::NtpTimestamp::FromTime(options_.clock->Now());
  for (size_t i = 0; i < n; ++i) {
    batch.SetReply(
        i, prepared[i].length
               ? responder.Finish(prepared[i], t3, batch.reply_buffer(i))
               : 0);
  }
  batch.Send(socket);
  return n;
}

void AgentLoop::PublishSystemVariables(const ntp::EngineStatus& st) {
  const absl::Time now = options_.clock->Now();
  absl::MutexLock lock(&system_mu_);
  ntp::ApplyStatus(st, now, &system_);
}

void AgentLoop::LogStateChanges(const ntp::EngineStatus& st) {
  if (st.state != last_state_) {
    if (st.system_peer && st.state == ntp::SyncState::kSyncing) {
      // The node's own stratum is not known until its clock is set (it
      // serves 16 until then): say the peer's, which is (#15).
      const ntp::PeerStatus& p = st.peers[static_cast<size_t>(*st.system_peer)];
      Log(LogLevel::kInfo,
          "%s: system peer %s (%s, stratum %d), offset %+.6f s",
          ntp::SyncStateName(st.state), p.name, p.address, p.stratum,
          absl::ToDoubleSeconds(st.offset));
    } else if (st.system_peer) {
      const ntp::PeerStatus& p = st.peers[static_cast<size_t>(*st.system_peer)];
      Log(LogLevel::kInfo,
          "%s: system peer %s (%s), stratum %d, offset %+.6f s",
          ntp::SyncStateName(st.state), p.name, p.address, st.stratum,
          absl::ToDoubleSeconds(st.last_offset));
    } else {
      Log(LogLevel::kInfo, "%s (stratum %d)", ntp::SyncStateName(st.state),
          st.stratum);
    }
    last_state_ = st.state;
  }
  last_reasons_.resize(st.peers.size());
  for (size_t i = 0; i < st.peers.size(); ++i) {
    if (st.peers[i].reason != last_reasons_[i]) {
      if (!st.peers[i].reason.empty()) {
        Log(LogLevel::kWarning, "%s: %s", st.peers[i].name, st.peers[i].reason);
      }
      last_reasons_[i] = st.peers[i].reason;
    }
  }
  if (const auto& c = engine_->last_correction();
      c &&
      (c->kind == ntp::CorrectionKind::kPanic ||
       c->kind == ntp::CorrectionKind::kError) &&
      engine_->attempts() != logged_attempt_) {
    logged_attempt_ = engine_->attempts();
    Log(LogLevel::kError, "%s", c->message);
  }
}

void AgentLoop::AcceptControl() {
  while (true) {
    const int fd = accept(control_fd_, nullptr, nullptr);
    if (fd < 0) return;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    ControlConn conn;
    conn.fd = fd;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      conn.pid = cred.pid;
      conn.uid = cred.uid;
      conn.gid = cred.gid;
    }
    control_conns_.push_back(std::move(conn));
  }
}

void AgentLoop::HandleControl(ControlConn& conn) {
  char buf[4096];
  while (true) {
    const ssize_t n = recv(conn.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      conn.in.append(buf, static_cast<size_t>(n));
      if (conn.in.size() > local_control::kMaxMessage) break;
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      close(conn.fd);
      conn.fd = -1;
      return;
    }
    break;
  }
  if (conn.waiting || conn.in.size() < 4) return;
  const uint32_t len = *local_control::FrameLength(conn.in);
  if (len > local_control::kMaxMessage) {
    close(conn.fd);
    conn.fd = -1;
    return;
  }
  if (conn.in.size() < 4 + len) return;
  v1::LocalRequest request;
  v1::LocalResponse response;
  if (!request.ParseFromString(conn.in.substr(4, len))) {
    response.set_error("malformed request");
  } else if (std::optional<std::string> refused =
                 RefuseControl(conn, request)) {
    response.set_error(*refused);
  } else if (request.has_resync()) {
    conn.waiting = true;
    const int fd = conn.fd;
    StartResync(request.resync(), ResyncOrigin::kLocal, MonoNow(),
                [this, fd](const v1::ResyncResult& result) {
                  v1::LocalResponse response;
                  *response.mutable_resync_result() = result;
                  WriteAll(fd, local_control::Frame(response));
                  for (ControlConn& c : control_conns_) {
                    if (c.fd == fd) {
                      close(c.fd);
                      c.fd = -1;
                    }
                  }
                });
    return;
  } else if (request.has_sim_step()) {
    if (options_.clock_is_system) {
      response.set_error(
          "sim-step only moves a simulated clock (--clock=sim); use `date` for "
          "a real one");
    } else if (const absl::Duration step =
                   report::FromProto(request.sim_step().step());
               absl::AbsDuration(step) >
               absl::Seconds(local_control::kMaxSimStepSeconds)) {
      response.set_error(absl::StrFormat(
          "sim-step of %s refused: a simulated clock is moved by at most %d s "
          "(68 years) either way, half an NTP era (RFC 5905 section 6)",
          absl::FormatDuration(step), local_control::kMaxSimStepSeconds));
    } else {
      (void)options_.clock->Step(step);
      Log(LogLevel::kWarning, "simulated clock moved by %s (sim-step)",
          absl::FormatDuration(step));
      // ClockBound readers see the step before `sim-step` returns.
      if (clockbound_ && CheckClockStep(MonoNow())) {
        const clockbound::Timespec64 as_of = MonotonicCoarseNow();
        PublishClockBound(engine_->Status(MonoNow()), as_of);
      }
      *response.mutable_status() = LocalStatus();
    }
  } else if (request.has_serve_check()) {
    // The same list the server was built with (Setup): the rules it runs.
    const ntp::AccessList access =
        config::ToAccessList(options_.config.restrictions);
    v1::ServeCheckResult* result = response.mutable_serve_check();
    for (const std::string& address : request.serve_check().address()) {
      v1::ServeVerdict* v = result->add_verdict();
      v->set_address(address);
      absl::StatusOr<ntp::IpAddress> ip = ntp::IpAddress::Parse(address);
      if (!ip.ok()) {
        v->set_error(std::string(ip.status().message()));
        continue;
      }
      v->set_refused((access.Lookup(*ip) & (ntp::kIgnore | ntp::kNoServe)) !=
                     0);
    }
  } else {
    *response.mutable_status() = LocalStatus();
  }
  WriteAll(conn.fd, local_control::Frame(response));
  close(conn.fd);
  conn.fd = -1;
}

namespace {

// Supplementary groups of process `pid` ("Groups:" in /proc/PID/status).
std::vector<gid_t> ProcessGroups(pid_t pid) {
  std::vector<gid_t> out;
  if (pid <= 0) return out;
  std::string text;
  const int fd = open(absl::StrCat("/proc/", pid, "/status").c_str(),
                      O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0 && text.size() < 65536;)
    text.append(buf, static_cast<size_t>(n));
  close(fd);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, "Groups:")) continue;
    for (absl::string_view g : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      uint32_t id = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(g), &id))
        out.push_back(static_cast<gid_t>(id));
    }
  }
  return out;
}

// A limit for a message: "128 ms", "1 s".
std::string LimitText(absl::Duration d) {
  if (d > absl::ZeroDuration() && d < absl::Seconds(1)) {
    return absl::StrFormat("%g ms", absl::ToDoubleMilliseconds(d));
  }
  return absl::StrFormat("%g s", absl::ToDoubleSeconds(d));
}

}  // namespace

// Resync and sim-step move the clock: root only (not even the agent's own
// user: the agent may hold CAP_SYS_TIME that its user's other processes do
// not). The status and the serve check: root, or the ntpfleet group.
std::optional<std::string> AgentLoop::RefuseControl(
    const ControlConn& conn, const v1::LocalRequest& request) {
  const bool privileged = conn.uid == 0;
  std::string what;
  std::string needs = "root";
  if (request.has_resync()) {
    what = "`resync`";
  } else if (request.has_sim_step()) {
    what = "`sim-step`";
  } else {
    what = request.has_serve_check() ? "serve-check" : "status";
    needs = "root or the ntpfleet group";
    if (privileged) return std::nullopt;
    if (control_group_) {
      if (conn.gid == *control_group_) return std::nullopt;
      for (gid_t g : ProcessGroups(conn.pid)) {
        if (g == *control_group_) return std::nullopt;
      }
    }
  }
  if (privileged) return std::nullopt;
  ++control_refused_;
  const std::string who =
      conn.uid == static_cast<uid_t>(-1)
          ? "your credentials are unknown"
          : absl::StrFormat("you are uid %d", static_cast<int64_t>(conn.uid));
  Log(LogLevel::kWarning,
      "control socket: refused %s from uid %d (pid %d): needs %s", what,
      static_cast<int64_t>(conn.uid), static_cast<int64_t>(conn.pid), needs);
  return absl::StrFormat("permission denied: %s needs %s (%s)", what, needs,
                         who);
}

ntp::StepLimit AgentLoop::ControllerStepLimit(const v1::Resync& request) const {
  const absl::Duration request_limit =
      request.has_max_step() ? std::max(report::FromProto(request.max_step()),
                                        absl::ZeroDuration())
                             : engine_->discipline().options().step_threshold;
  const absl::Duration agent_limit = options_.config.resync_max_step;
  if (request_limit <= agent_limit) {
    return ntp::StepLimit{
        request_limit, "this request's step limit",
        "an admin can lift it with `ntpfleetctl resync --force`"};
  }
  return ntp::StepLimit{
      agent_limit, "this agent's resync_max_step",
      absl::StrFormat("raise resync_max_step in the agent's configuration, "
                      "or correct the clock on the node as root with "
                      "`ntpfleetctl sync` (limit %s)",
                      LimitText(agent_limit))};
}

void AgentLoop::StartResync(const v1::Resync& request, ResyncOrigin origin,
                            clock::MonoTime now,
                            std::function<void(const v1::ResyncResult&)> done) {
  PendingResync p;
  p.done = std::move(done);
  p.request_id = request.request_id();
  absl::Duration deadline = report::FromProto(request.deadline());
  if (deadline <= absl::ZeroDuration()) deadline = absl::Seconds(10);
  // Answer before whoever asked gives up (the controller waits `deadline`).
  p.deadline = now + std::max(deadline - absl::Seconds(1), deadline / 2);
  p.corrections_before = engine_->corrections();
  p.attempts_before = engine_->attempts();
  resyncs_.push_back(std::move(p));
  if (sources_.empty()) {
    // The server on its local clock: it is the fleet's reference, nothing to
    // correct against.
    v1::ResyncResult result;
    result.set_request_id(request.request_id());
    result.set_outcome(v1::RESYNC_OUTCOME_OK);
    report::SetDuration(absl::ZeroDuration(), result.mutable_offset_before());
    report::SetDuration(absl::ZeroDuration(), result.mutable_offset_after());
    result.set_error(
        "no upstream servers: this node serves its own clock, nothing to "
        "correct");
    resyncs_.back().done(result);
    resyncs_.pop_back();
    return;
  }
  std::optional<ntp::StepLimit> limit;
  if (origin == ResyncOrigin::kController) limit = ControllerStepLimit(request);
  Log(LogLevel::kInfo, "resync requested by %s%s%s",
      origin == ResyncOrigin::kController ? "the controller" : "this node",
      request.allow_step() ? " (stepping allowed)" : "",
      limit ? absl::StrCat(", steps up to ", LimitText(limit->max_step)) : "");
  Send(engine_->StartResync(now, request.allow_step(), std::move(limit)), now);
}

void AgentLoop::PostResync(const v1::Resync& request,
                           std::function<void(const v1::ResyncResult&)> done) {
  {
    absl::MutexLock lock(&posted_mu_);
    posted_.push_back({request, std::move(done)});
  }
  Notify(wake_fd_);
}

bool AgentLoop::RunPostedResyncs() {
  std::vector<Posted> posted;
  {
    absl::MutexLock lock(&posted_mu_);
    posted.swap(posted_);
  }
  for (Posted& p : posted) {
    StartResync(p.request, ResyncOrigin::kController, MonoNow(),
                std::move(p.done));
  }
  return !posted.empty();
}

void AgentLoop::PostProbes(const std::string& controller,
                           const v1::ProbeAssignment& assignment) {
  {
    absl::MutexLock lock(&posted_mu_);
    // Only the latest per controller matters (each replaces the last): the
    // queue holds at most one per controller, however fast they come.
    const auto same =
        std::find_if(posted_probes_.begin(), posted_probes_.end(),
                     [&](const auto& p) { return p.first == controller; });
    if (same != posted_probes_.end()) {
      same->second = assignment;
    } else {
      posted_probes_.emplace_back(controller, assignment);
    }
  }
  Notify(wake_fd_);
}

void AgentLoop::SetProbeListener(ProbeListener listener) {
  probe_listener_ = std::move(listener);
}

bool AgentLoop::RunPostedProbes() {
  std::vector<std::pair<std::string, v1::ProbeAssignment>> posted;
  {
    absl::MutexLock lock(&posted_mu_);
    posted.swap(posted_probes_);
  }
  if (posted.empty()) return false;
  const clock::MonoTime now = MonoNow();
  for (const auto& [controller, assignment] : posted) {
    // Bounded here too (PostProbes is public; the reporter already did).
    const BoundedAssignment bounded = BoundProbeAssignment(assignment);
    ProbeAssignmentState state;
    state.interval = std::max(assignment.has_interval()
                                  ? report::FromProto(assignment.interval())
                                  : ntp::kMinMonitorInterval,
                              ntp::kMinMonitorInterval);
    int refused = 0;
    int duplicates = 0;
    std::string first_refused;
    for (const v1::ProbeTarget& target : bounded.assignment.targets()) {
      absl::StatusOr<Endpoint> endpoint = ParseProbeAddress(target.address());
      if (!endpoint.ok()) continue;  // BoundProbeAssignment kept valid ones
      // What a `server` line may not name, a probe may not either: this
      // agent itself, multicast, broadcast, the unspecified address.
      if (const std::string why =
              config::UnanswerableReason(endpoint->ip, endpoint->port, own_);
          !why.empty()) {
        if (refused++ == 0) {
          first_refused = absl::StrCat(target.node(), " at ",
                                       endpoint->ToString(), ": ", why);
        }
        continue;
      }
      ProbeTargetState valid;
      valid.target = target;
      valid.target.set_address(endpoint->ToString());
      valid.endpoint = *endpoint;
      if (std::any_of(state.targets.begin(), state.targets.end(),
                      [&](const ProbeTargetState& t) {
                        return t.endpoint == valid.endpoint;
                      })) {
        ++duplicates;
        continue;
      }
      state.targets.push_back(std::move(valid));
    }
    std::vector<std::string> ignored;
    if (bounded.invalid > 0) {
      ignored.push_back(absl::StrFormat("%d malformed (the first: %s)",
                                        bounded.invalid,
                                        bounded.first_invalid));
    }
    if (bounded.excess > 0) {
      ignored.push_back(absl::StrFormat("%d beyond the first %d",
                                        bounded.excess, kMaxProbeTargets));
    }
    if (refused > 0) {
      ignored.push_back(absl::StrFormat("%d that cannot answer (the first: %s)",
                                        refused, first_refused));
    }
    if (duplicates > 0) {
      ignored.push_back(absl::StrFormat("%d duplicates", duplicates));
    }
    LogProbeAssignment(
        controller,
        absl::StrFormat(
            "controller %s: probing %d nodes every %s%s", controller,
            static_cast<int>(state.targets.size()),
            absl::FormatDuration(state.interval),
            ignored.empty() ? "" : "; ignored " + absl::StrJoin(ignored, ", ")),
        !ignored.empty(), now);
    if (state.targets.empty()) {
      probe_assignments_.erase(controller);
    } else {
      probe_assignments_[controller] = std::move(state);
    }
  }
  // The union over all controllers, one monitor per address, at the shortest
  // interval any of them asked for.
  struct Wanted {
    std::string node;
    Endpoint endpoint;
    absl::Duration interval;
  };
  std::map<std::string, Wanted> wanted;
  for (const auto& [controller, state] : probe_assignments_) {
    for (const ProbeTargetState& t : state.targets) {
      auto [it, added] =
          wanted.emplace(t.target.address(),
                         Wanted{t.target.node(), t.endpoint, state.interval});
      if (!added)
        it->second.interval = std::min(it->second.interval, state.interval);
    }
  }
  for (auto it = probes_.begin(); it != probes_.end();) {
    const auto w = wanted.find(it->first);
    if (w == wanted.end() || w->second.interval != it->second.interval) {
      engine_->RemoveMonitor(it->second.monitor_id);
      it = probes_.erase(it);
    } else {
      ++it;
    }
  }
  int precision;
  {
    absl::MutexLock lock(&system_mu_);
    precision = system_.precision;
  }
  for (const auto& [address, w] : wanted) {
    if (probes_.count(address) > 0) continue;
    Probe probe;
    probe.endpoint = w.endpoint;
    probe.interval = w.interval;
    probe.node = w.node;
    ntp::MonitorConfig mc;
    mc.name = w.node;
    mc.address = address;
    mc.interval = w.interval;
    mc.precision = precision;
    // A monitor made anew (the assignment changed, the stream came back)
    // polls first when its address may be sent to again (64 s after the last
    // request, an hour after a KoD DENY), not into the limiter.
    probe.monitor_id = engine_->AddMonitor(
        mc, std::max(now, probe_limiter_.NotBefore(address)));
    probes_.emplace(address, std::move(probe));
  }
  return true;
}

void AgentLoop::LogProbeAssignment(const std::string& controller,
                                   const std::string& line, bool warn,
                                   clock::MonoTime now) {
  ProbeLogState& st = probe_log_[controller];
  if (st.logged && line == st.said) return;
  st.said = line;
  // However often the assignments change: one line per kProbeSpacing.
  if (st.logged && now - st.at < kProbeSpacing) {
    ++st.unlogged;
    return;
  }
  Log(warn ? LogLevel::kWarning : LogLevel::kInfo, "%s%s", line,
      st.unlogged > 0
          ? absl::StrFormat(" (%d earlier changes not logged)", st.unlogged)
          : "");
  st.logged = true;
  st.at = now;
  st.unlogged = 0;
}

std::vector<v1::ProbeResult> AgentLoop::ProbeResults() const {
  std::vector<v1::ProbeResult> out;
  for (const ntp::MonitorStatus& m : engine_->Monitors()) {
    const auto probe = probes_.find(m.address);
    out.push_back(
        ToProbeResult(m, probe != probes_.end() ? probe->second.node : m.name));
  }
  return out;
}

void AgentLoop::ReportProbes() {
  if (probes_.empty()) return;
  bool changed = false;
  std::map<std::string, ntp::MonitorStatus> by_address;
  for (ntp::MonitorStatus& m : engine_->Monitors()) {
    const auto probe = probes_.find(m.address);
    if (probe == probes_.end()) continue;
    // A KoD DENY (or RSTR) outlives the monitor: a monitor made anew for the
    // address does not poll it for kProbeDenyHold.
    if (m.counters.kod_deny > probe->second.kod_deny) {
      probe->second.kod_deny = m.counters.kod_deny;
      probe_limiter_.HoldUntil(m.address, MonoNow() + kProbeDenyHold);
    }
    // A new sample, or a new reason for having none — but not the passing
    // "no reply yet" of a request still in flight.
    const std::string error =
        m.health == ntp::SourceHealth::kNew ? "" : m.error;
    if (m.samples != probe->second.reported_samples ||
        error != probe->second.reported_error) {
      changed = true;
      probe->second.reported_samples = m.samples;
      probe->second.reported_error = error;
    }
    by_address.emplace(m.address, std::move(m));
  }
  if (!changed || !probe_listener_) return;
  for (const auto& [controller, state] : probe_assignments_) {
    std::vector<v1::ProbeResult> results;
    for (const ProbeTargetState& t : state.targets) {
      const auto m = by_address.find(t.target.address());
      if (m != by_address.end()) {
        results.push_back(ToProbeResult(m->second, t.target.node()));
      }
    }
    probe_listener_(controller, results);
  }
}

v1::SyncStatus AgentLoop::ReportedStatus(const ntp::EngineStatus& st) const {
  v1::SyncStatus out = report::ToProto(st, options_.clock->Now());
  if (options_.report_bias != absl::ZeroDuration()) {
    report::SetDuration(report::FromProto(out.offset()) + options_.report_bias,
                        out.mutable_offset());
  }
  return out;
}

void AgentLoop::FinishResyncs(clock::MonoTime now, bool all) {
  for (auto it = resyncs_.begin(); it != resyncs_.end();) {
    v1::ResyncResult result;
    result.set_request_id(it->request_id);
    const auto& c = engine_->last_correction();
    const bool corrected = engine_->corrections() > it->corrections_before;
    const bool attempted = engine_->attempts() > it->attempts_before;
    if (corrected && c && c->kind == ntp::CorrectionKind::kSlew &&
        engine_->discipline().slewing() && now < it->deadline && !all) {
      // Report "after" once the slew is done (at 500 ppm: 2 ms per 4 s).
      ++it;
      continue;
    }
    if (corrected && c) {
      result.set_outcome(v1::RESYNC_OUTCOME_OK);
      report::SetDuration(absl::Seconds(c->offset),
                          result.mutable_offset_before());
      report::SetDuration(engine_->Status(now).offset,
                          result.mutable_offset_after());
      result.set_stepped(c->kind == ntp::CorrectionKind::kStep);
    } else if (attempted && c) {
      result.set_outcome(v1::RESYNC_OUTCOME_FAILED);
      report::SetDuration(absl::Seconds(c->offset),
                          result.mutable_offset_before());
      result.set_error(c->message);
    } else if (now >= it->deadline || all) {
      result.set_outcome(v1::RESYNC_OUTCOME_TIMED_OUT);
      std::vector<std::string> reasons;
      for (const ntp::PeerStatus& p : engine_->Status(now).peers) {
        reasons.push_back(absl::StrCat(
            p.name, ": ", p.reason.empty() ? "no usable reply" : p.reason));
      }
      result.set_error(
          absl::StrCat("no correction before the deadline",
                       reasons.empty() ? " (no servers configured)" : ": ",
                       absl::StrJoin(reasons, "; ")));
    } else {
      ++it;
      continue;
    }
    Log(LogLevel::kInfo, "resync: %s%s",
        v1::ResyncOutcome_Name(result.outcome()),
        result.error().empty() ? "" : ": " + result.error());
    auto done = std::move(it->done);
    it = resyncs_.erase(it);
    done(result);
  }
}

void AgentLoop::LeaveClock() {
  // No slew left running in the kernel, and the drift file says the rate the
  // clock is left at.
  if (absl::Status s = engine_->Shutdown(MonoNow()); !s.ok()) {
    Log(LogLevel::kWarning, "leaving the clock at its learned frequency: %s",
        s.message());
  }
  WriteDrift();
}

void AgentLoop::WriteDrift() {
  const std::string& path = options_.config.driftfile;
  if (path.empty() || engine_->corrections() == 0) return;
  const double ppm = engine_->discipline().base_frequency_ppm();
  if (absl::Status s = clock::WriteDriftFile(path, ppm); !s.ok()) {
    Log(LogLevel::kWarning, "%s", s.message());
  }
}

v1::LocalStatus AgentLoop::LocalStatus() const {
  v1::LocalStatus out;
  v1::Hello* node = out.mutable_node();
  node->set_node_name(options_.node_name);
  node->set_agent_version(NTPFLEET_VERSION);
  node->set_role(options_.config.local_clock ? v1::ROLE_SERVER
                                             : v1::ROLE_CLIENT);
  for (const auto& [k, v] : options_.config.labels)
    (*node->mutable_labels())[k] = v;
  node->set_ntp_port(server_port_);
  *out.mutable_status() = ReportedStatus(engine_->Status(MonoNow()));
  if (options_.sim_true_offset) {
    report::SetDuration(options_.sim_true_offset(),
                        out.mutable_sim_true_offset());
  }
  for (v1::ProbeResult& r : ProbeResults()) *out.add_probes() = std::move(r);
  ntp::ServerCounters total;
  auto add = [&total](const ntp::ServerCounters& c) {
    total.answered += c.answered;
    total.malformed += c.malformed;
    total.ignored += c.ignored;
    total.refused_noserve += c.refused_noserve;
    total.rate_limited += c.rate_limited;
    total.kod_sent += c.kod_sent;
    total.control_dropped += c.control_dropped;
    total.private_dropped += c.private_dropped;
    total.not_client_mode += c.not_client_mode;
    total.auth_failed += c.auth_failed;
    total.crypto_nak_sent += c.crypto_nak_sent;
  };
  if (responder_) add(responder_->counters());
  for (const auto& w : workers_) add(w->counters());
  auto& m = *out.mutable_server_counters();
  m["answered"] = total.answered;
  m["malformed"] = total.malformed;
  m["ignored"] = total.ignored;
  m["refused_noserve"] = total.refused_noserve;
  m["rate_limited"] = total.rate_limited;
  m["kod_sent"] = total.kod_sent;
  m["control_dropped"] = total.control_dropped;
  m["private_dropped"] = total.private_dropped;
  m["not_client_mode"] = total.not_client_mode;
  m["auth_failed"] = total.auth_failed;
  m["crypto_nak_sent"] = total.crypto_nak_sent;
  m["unknown_sender"] = engine_->unknown_sender_drops();
  m["control_refused"] = control_refused_.load();
  m["probe_rate_limited"] = probe_rate_limited_;
  m["probe_budget_exceeded"] = probe_budget_exceeded_;
  out.set_clock(options_.clock_is_system ? "system" : "sim");
  out.set_pid(static_cast<uint32_t>(getpid()));
  out.set_server_port(server_port_);
  if (local_status_filler_) local_status_filler_(&out);
  return out;
}

void AgentLoop::SetLocalStatusFiller(
    std::function<void(v1::LocalStatus*)> filler) {
  local_status_filler_ = std::move(filler);
}

void AgentLoop::SetStatusListener(
    std::function<void(const v1::SyncStatus&)> listener) {
  status_listener_ = std::move(listener);
}

void AgentLoop::PublishClockBound(const ntp::EngineStatus& st,
                                  const clockbound::Timespec64& as_of) {
  ClockBoundSnapshot s;
  s.state = st.state;
  s.error_bound = st.error_bound;
  s.reference = st.error_bound_reference;
  s.leap = st.leap;
  s.as_of = as_of;
  s.clock_now = options_.clock->Now();
  s.slew_ppm = options_.clock->FrequencyAdjustment() -
               engine_->discipline().base_frequency_ppm();
  s.corrections = engine_->corrections();
  if (!options_.clock_is_system) {
    // The simulated clock against CLOCK_MONOTONIC, read between two
    // CLOCK_MONOTONIC readings: the tightest pair of up to 20 tries (one
    // under 2 µs ends them), and half its gap added to the bound, so that a
    // thread preempted between the reads cannot misplace the reader's clock
    // by more than the bound says.
    int64_t best_gap = std::numeric_limits<int64_t>::max();
    for (int i = 0; i < 20 && best_gap > 2000; ++i) {
      timespec a, b;
      clock_gettime(CLOCK_MONOTONIC, &a);
      const absl::Time c = options_.clock->Now();
      clock_gettime(CLOCK_MONOTONIC, &b);
      const int64_t before =
          absl::ToInt64Nanoseconds(absl::DurationFromTimespec(a));
      const int64_t after =
          absl::ToInt64Nanoseconds(absl::DurationFromTimespec(b));
      if (after - before < best_gap) {
        best_gap = after - before;
        s.clock_minus_monotonic_ns =
            absl::ToUnixNanos(c) - (before + (after - before) / 2);
      }
    }
    s.error_bound += absl::Nanoseconds((best_gap + 1) / 2);
  }
  clockbound_->Publish(s);
}

bool AgentLoop::CheckClockStep(clock::MonoTime now) {
  const std::optional<absl::Duration> step = clockbound_->model().ObserveClock(
      options_.clock->Now(), now, engine_->discipline().steps());
  if (!step) return false;
  Log(LogLevel::kWarning,
      "the clock was stepped by %s, not by this agent: the ClockBound bound "
      "grows by it until measured again; measuring now",
      absl::FormatDuration(*step));
  clockbound_->model().AddStep(*step, engine_->corrections());
  Send(engine_->StartResync(now, /*allow_step=*/false), now);
  return true;
}

absl::Status AgentLoop::Run() {
  Batch batch;
  std::vector<pollfd> fds;
  bool touched = true;
  clock::MonoTime next_refresh = MonoNow();
  while (!stop_.load()) {
    clock::MonoTime now = MonoNow();
    clock::MonoTime deadline = std::min(
        {engine_->next_timer(), next_drift_write_, next_leapfile_read_});
    for (const SourceSlot& s : sources_) {
      if (!s.endpoint) deadline = std::min(deadline, s.next_resolve);
    }
    for (const PendingResync& r : resyncs_)
      deadline = std::min(deadline, r.deadline);
    deadline = std::min(deadline, next_refresh);
    int timeout_ms = 60000;
    if (deadline != clock::MonoTime::Infinite()) {
      const absl::Duration wait = deadline - now;
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))), 0,
          60000));
    }
    fds.clear();  // reused: no allocation per turn
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({client_v4_.fd(), POLLIN, 0});
    fds.push_back({client_v6_.fd(), POLLIN, 0});
    const size_t server_base = fds.size();
    for (const UdpSocket& s : server_sockets_)
      fds.push_back({s.fd(), POLLIN, 0});
    const size_t control_base = fds.size();
    fds.push_back({control_fd_, POLLIN, 0});
    for (const ControlConn& c : control_conns_)
      fds.push_back({c.fd, POLLIN, 0});
    const int ready = poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) {
      const absl::Status failed =
          absl::InternalError(absl::StrCat("poll: ", strerror(errno)));
      FinishResyncs(MonoNow(), true);
      LeaveClock();
      if (clockbound_) clockbound_->PublishStopped(MonotonicCoarseNow());
      return failed;
    }
    if (stop_.load()) break;
    if (ready > 0 && fds[0].revents) {
      uint64_t count;  // reading an eventfd resets it to 0
      (void)!read(wake_fd_, &count, sizeof(count));
    }
    touched |= RunPostedResyncs();
    touched |= RunPostedProbes();
    if (ready > 0) {
      if (fds[1].revents || fds[2].revents) {
        HandleClientSocket();
        touched = true;
      }
      for (size_t i = 0; i < server_sockets_.size(); ++i) {
        if (!(fds[server_base + i].revents & POLLIN)) continue;
        // Full batches follow one another under load: up to 16 of them
        // without a poll(), then the client side gets its turn.
        for (int k = 0; k < 16 && ServeBatch(server_sockets_[i], *responder_,
                                             batch) == Batch::kBatch;
             ++k) {
        }
      }
      if (fds[control_base].revents & POLLIN) AcceptControl();
      for (size_t i = 0;
           i < control_conns_.size() && control_base + 1 + i < fds.size();
           ++i) {
        if (fds[control_base + 1 + i].revents) HandleControl(control_conns_[i]);
      }
      control_conns_.erase(
          std::remove_if(control_conns_.begin(), control_conns_.end(),
                         [](const ControlConn& c) { return c.fd < 0; }),
          control_conns_.end());
    }
    now = MonoNow();
    if (clockbound_ && CheckClockStep(now)) touched = true;
    if (engine_->next_timer() <= now) {
      Send(engine_->HandleTimer(now), now);
      touched = true;
    }
    ResolveDue(now);
    FinishResyncs(now, false);
    if (now >= next_drift_write_) {
      WriteDrift();
      next_drift_write_ = now + options_.drift_interval;
    }
    if (now >= next_leapfile_read_) {
      engine_->SetLeapTable(ReadLeapfile(leapfile_));
      next_leapfile_read_ = now + absl::Hours(24);
    }
    // The status is rebuilt when the engine saw something, and once a second
    // (dispersion grows with time) — not for every batch the server answers.
    if (touched || now >= next_refresh) {
      // Before the status: a ClockBound reader's drift growth starts no
      // later than the bound was computed.
      const clockbound::Timespec64 as_of = MonotonicCoarseNow();
      // One status for all four.
      const ntp::EngineStatus st = engine_->Status(now);
      if (clockbound_) PublishClockBound(st, as_of);
      PublishSystemVariables(st);
      LogStateChanges(st);
      if (status_listener_) status_listener_(ReportedStatus(st));
      ReportProbes();
      next_refresh = now + absl::Seconds(1);
      touched = false;
    }
    if (options_.once && once_result_) break;
  }
  FinishResyncs(MonoNow(), true);
  LeaveClock();
  // Readers see at once that nobody vouches for the clock any more.
  if (clockbound_) clockbound_->PublishStopped(MonotonicCoarseNow());
  return absl::OkStatus();
}

}  // namespace ntpfleet::net
