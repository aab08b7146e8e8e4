// The agent's event loop: one thread on poll(2) that carries out what the
// engine asks (send requests, arm timers), answers NTP clients, serves the
// local control socket, retries names that do not resolve, and keeps the drift
// file. With `server_threads` > 1 the server side runs on that many extra
// threads, each with its own SO_REUSEPORT socket and responder; otherwise it is
// part of this loop, and the agent is one thread. That thread waits only in
// poll() on its UDP sockets (and the control socket, if any) and an eventfd
// that wakes it: no pipe, so that LD_PRELOAD clock/network simulators such as
// chrony's clknetsim, which report unknown descriptors readable, can run it.
//
//   absl::StatusOr<std::unique_ptr<AgentLoop>> loop =
//   AgentLoop::Create(options); if (!loop.ok()) { print loop.status(); exit(1);
//   }   // e.g. port 123 in use by ntpd
//   (*loop)->Run();                                      // until RequestStop()
#ifndef NTPFLEET_AGENT_NET_AGENT_LOOP_H_
#define NTPFLEET_AGENT_NET_AGENT_LOOP_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "agent/config/server_checks.h"
#include "agent/net/clockbound_publisher.h"
#include "agent/net/probe_limits.h"
#include "agent/net/udp.h"
#include "agent/ntp/auth.h"
#include "agent/ntp/engine.h"
#include "agent/ntp/leap.h"
#include "agent/ntp/server.h"
#include "common/config/config.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::net {

struct AgentOptions {
  config::AgentConfig config;
  std::string node_name;
  // The UDP port to serve on (0: any free port; -1: do not serve at all, as
  // with --once).
  int port = 123;
  // Local address to serve on; empty: every address (IPv4 and, if available,
  // IPv6).
  std::string listen_address;
  std::string control_socket;  // empty: none
  clock::AdjustableClock* clock = nullptr;
  const clock::MonotonicClock* mono = nullptr;
  // True when `clock` is the machine's CLOCK_REALTIME, so kernel timestamps can
  // be used as they are; otherwise they are converted by their age.
  bool clock_is_system = false;
  // --once: force a resync at start (stepping allowed), exit after the first
  // correction or when `once_timeout` passes.
  bool once = false;
  absl::Duration once_timeout = absl::Seconds(15);
  // How often to retry a name that does not resolve.
  absl::Duration resolve_retry = absl::Seconds(60);
  absl::Duration drift_interval = absl::Hours(1);
  // --sim-report-bias (tests only, --clock=sim): added to SyncStatus.offset in
  // every status this agent reports (controllers, local status), never to the
  // clock, its error bound or what it serves: a lying node.
  absl::Duration report_bias;
  // --clock=sim: the simulated clock's true offset now (true time minus the
  // clock), for LocalStatus.sim_true_offset. Unset: not reported.
  std::function<absl::Duration()> sim_true_offset;
  // The ClockBound shared memory segment to write (docs/CLOCKBOUND.md); empty:
  // none. `clockbound_required`: failing to open it is an error (it was
  // configured), else a warning (the default path).
  std::string clockbound_shm;
  bool clockbound_required = false;
  // How long a reader may trust what was written if the agent stops writing
  // (the segment's void_after - as_of).
  absl::Duration clockbound_validity = absl::Seconds(1000);
};

// Where an agent serving on `listen_address` (empty: every address) and UDP
// `port` (0: unknown) answers, with this host's addresses and broadcast
// addresses (getifaddrs): what server_checks.h needs to tell a `server` line
// that names the agent itself, or a broadcast address.
config::OwnServer ThisAgent(const std::string& listen_address, int port);

class AgentLoop {
 public:
  static absl::StatusOr<std::unique_ptr<AgentLoop>> Create(
      AgentOptions options);
  ~AgentLoop();

  // Runs until RequestStop() (or, with --once, until done). Writes the drift
  // file on the way out.
  absl::Status Run();
  // Async-signal-safe.
  void RequestStop();

  // Outcome of --once.
  const std::optional<v1::ResyncResult>& once_result() const {
    return once_result_;
  }
  // Status as the control socket reports it.
  v1::LocalStatus LocalStatus() const;
  // Called after every engine event that may change the status (for the
  // controller reporter).
  void SetStatusListener(std::function<void(const v1::SyncStatus&)> listener);
  // Adds what the loop does not know to LocalStatus() (the controller
  // streams' state); called on the loop's thread. Set before Run().
  void SetLocalStatusFiller(std::function<void(v1::LocalStatus*)> filler);
  // From any thread (the controller reporter): start a resync the controller
  // asked for; `done` runs on the loop's thread with the result. Such a resync
  // never steps the clock by more than min(request.max_step, or else the step
  // threshold; the config's resync_max_step): beyond that nothing is corrected
  // and the result is FAILED saying why. (The local control socket's resync,
  // root only, and --once are not limited.)
  void PostResync(const v1::Resync& request,
                  std::function<void(const v1::ResyncResult&)> done);

  // From any thread (a controller's reporter): the nodes controller
  // `controller` asks this agent to probe, replacing its earlier assignment
  // (no targets: none). Applied on the loop's thread; the loop probes the
  // union of every controller's targets, one monitor-only source per address
  // (ntp::Engine::AddMonitor). Kept: the first kMaxProbeTargets valid targets
  // (BoundProbeAssignment) that can answer (config::UnanswerableReason: not
  // this agent, not multicast, broadcast or unspecified); what was dropped is
  // said in one log line, when it changes. Whatever the assignments, requests
  // leave through a ProbeSendLimiter (probe_limits.h): at most one per address
  // per 64 s, at most kMaxProbeTargets x (controller lines, at least 1) per
  // 64 s in all; the rest are dropped and counted (server_counters
  // "probe_rate_limited", "probe_budget_exceeded").
  void PostProbes(const std::string& controller,
                  const v1::ProbeAssignment& assignment);
  // Called on the loop's thread whenever a probe measured something new (a
  // sample, or a new reason for having none), once per controller with
  // targets: the latest result for each of ITS targets. Set before Run().
  using ProbeListener = std::function<void(
      const std::string& controller, const std::vector<v1::ProbeResult>&)>;
  void SetProbeListener(ProbeListener listener);

  // The UDP port the server side answers on (0: not serving).
  uint16_t server_port() const { return server_port_; }

 private:
  // Who asked for a resync: the node's root user (control socket, --once) or
  // the controller (PostResync), whose steps are limited.
  enum class ResyncOrigin { kLocal, kController };
  struct SourceSlot;
  struct ControlConn;
  struct PendingResync;
  class ServerWorker;

  explicit AgentLoop(AgentOptions options);
  absl::Status Init();
  static void WarnUnused(const config::AgentConfig& cfg);
  std::optional<ntp::LeapTable> ReadLeapfile(const std::string& path);
  // `now`: the time the engine made them (a probe's request is held to the
  // ProbeSendLimiter at that time).
  void Send(std::vector<ntp::Transmit> transmits, clock::MonoTime now);
  void ResolveDue(clock::MonoTime now);
  void HandleClientSocket();
  // Answers what is waiting on `socket` (one batch); returns how many.
  size_t ServeBatch(UdpSocket& socket, ntp::Responder& responder, Batch& batch);
  void PublishSystemVariables(const ntp::EngineStatus& st);
  void AcceptControl();
  void HandleControl(ControlConn& conn);
  void FinishResyncs(clock::MonoTime now, bool all);
  void StartResync(const v1::Resync& request, ResyncOrigin origin,
                   clock::MonoTime now,
                   std::function<void(const v1::ResyncResult&)> done);
  // The step limit of a resync from the controller.
  ntp::StepLimit ControllerStepLimit(const v1::Resync& request) const;
  // Whether the peer of `conn` may make `request`; if not, the error for it
  // (logged and counted).
  std::optional<std::string> RefuseControl(const ControlConn& conn,
                                           const v1::LocalRequest& request);
  bool RunPostedResyncs();  // true if any
  // Posted probe assignments: validated, then the engine's monitors follow
  // the union of all controllers' targets. True if any.
  bool RunPostedProbes();
  // Logs `line` (a warning if `warn`) about `controller`'s assignment when it
  // differs from the last, at most once per kProbeSpacing per controller.
  void LogProbeAssignment(const std::string& controller,
                          const std::string& line, bool warn,
                          clock::MonoTime now);
  // The latest result of each monitor, keyed by address.
  std::vector<v1::ProbeResult> ProbeResults() const;
  // Tells the probe listener, when a monitor's result changed.
  void ReportProbes();
  // The status as reported (ToProto, with options_.report_bias).
  v1::SyncStatus ReportedStatus(const ntp::EngineStatus& st) const;
  // On every way out of Run(): the clock at its learned frequency with no
  // slew running, and the drift file written.
  void LeaveClock();
  void WriteDrift();
  void LogStateChanges(const ntp::EngineStatus& st);
  // The ClockBound segment: what the engine says now (`as_of`:
  // CLOCK_MONOTONIC_COARSE read before `st` was computed).
  void PublishClockBound(const ntp::EngineStatus& st,
                         const clockbound::Timespec64& as_of);
  // A step of the clock the engine did not make: true if one was seen (the
  // segment's bound grows by it, and a fresh measurement starts).
  bool CheckClockStep(clock::MonoTime now);
  absl::Time ToClockTime(const std::optional<absl::Time>& kernel_rx) const;
  clock::MonoTime MonoNow() const { return options_.mono->Now(); }

  AgentOptions options_;
  ntp::KeyStore keys_;
  std::unique_ptr<ntp::Engine> engine_;
  std::vector<SourceSlot> sources_;
  UdpSocket client_v4_;
  UdpSocket client_v6_;
  std::vector<UdpSocket> server_sockets_;  // served inline
  std::unique_ptr<ntp::Responder> responder_;
  std::vector<std::unique_ptr<ServerWorker>> workers_;
  uint16_t server_port_ = 0;
  int control_fd_ = -1;
  // The `ntpfleet` group, when it exists: it may ask for the status.
  std::optional<gid_t> control_group_;
  // Control requests refused for want of privilege.
  std::atomic<uint64_t> control_refused_{0};
  std::vector<ControlConn> control_conns_;
  std::vector<PendingResync> resyncs_;
  // An eventfd that wakes the poll loop (posted resyncs, stop); the loop
  // drains it. Never a pipe: LD_PRELOAD clock/network simulators (clknetsim)
  // report every descriptor they do not know as readable, and know eventfds.
  int wake_fd_ = -1;
  // An eventfd written once, by RequestStop, and never drained: the server
  // threads watch it (a posted resync must not end them). Only with server
  // threads; -1 otherwise.
  int stop_fd_ = -1;
  std::atomic<bool> stop_{false};
  clock::MonoTime next_drift_write_;
  // Where this agent serves (set once the server side is bound): a source at
  // one of these addresses is never polled.
  config::OwnServer own_;
  // The `leapfile`, re-read daily (tzdata updates it; an expiry is warned
  // about while running, not only at the next start).
  std::string leapfile_;
  clock::MonoTime next_leapfile_read_ = clock::MonoTime::Infinite();
  std::optional<v1::ResyncResult> once_result_;
  ntp::SyncState last_state_ = ntp::SyncState::kUnsynchronized;
  std::vector<std::string> last_reasons_;
  uint64_t logged_attempt_ = 0;
  std::function<void(const v1::SyncStatus&)> status_listener_;
  std::function<void(v1::LocalStatus*)> local_status_filler_;
  std::unique_ptr<ClockBoundPublisher> clockbound_;

  struct Posted {
    v1::Resync request;
    std::function<void(const v1::ResyncResult&)> done;
  };
  absl::Mutex posted_mu_;
  std::vector<Posted> posted_ ABSL_GUARDED_BY(posted_mu_);
  std::vector<std::pair<std::string, v1::ProbeAssignment>> posted_probes_
      ABSL_GUARDED_BY(posted_mu_);

  // The crosscheck probes (loop thread only). Per controller: its valid
  // targets and interval. Per address: the engine's monitor.
  struct ProbeTargetState {
    v1::ProbeTarget target;  // address canonical (Endpoint::ToString)
    Endpoint endpoint;
  };
  struct ProbeAssignmentState {
    std::vector<ProbeTargetState> targets;
    absl::Duration interval;
  };
  std::map<std::string, ProbeAssignmentState> probe_assignments_;
  // Per controller, what its assignments' log line last said, and how many
  // changes were not logged since (at most one line per kProbeSpacing).
  struct ProbeLogState {
    std::string said;
    clock::MonoTime at;
    bool logged = false;
    int unlogged = 0;
  };
  std::map<std::string, ProbeLogState> probe_log_;
  // Where probe requests leave (Send); outlives the monitors.
  ProbeSendLimiter probe_limiter_;
  uint64_t probe_rate_limited_ = 0;     // too soon after the last, or a KoD
  uint64_t probe_budget_exceeded_ = 0;  // beyond the agent-wide budget
  struct Probe {
    Endpoint endpoint;
    int monitor_id = 0;
    absl::Duration interval;
    std::string node;  // the first assignment's name for it
    // What was last told to the listener: samples, and the reason for none.
    uint64_t reported_samples = 0;
    std::string reported_error;
    // KoD DENY/RSTR seen from it (the monitor's counter), remembered in
    // probe_limiter_.
    uint64_t kod_deny = 0;
  };
  std::map<std::string, Probe> probes_;  // by Endpoint::ToString()
  ProbeListener probe_listener_;

  // The system variables the server side answers with, shared with worker
  // threads.
  mutable absl::Mutex system_mu_;
  ntp::SystemVariables system_ ABSL_GUARDED_BY(system_mu_);
};

}  // namespace ntpfleet::net

#endif  // NTPFLEET_AGENT_NET_AGENT_LOOP_H_
