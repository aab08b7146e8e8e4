// The agent's link to one controller: one long-lived bidirectional gRPC stream
// (AgentService. Connect) carrying a Hello, then a SyncStatus every report
// interval and at once on any state change, and carrying Resync commands back
// (nodes need no inbound port). Reconnects with exponential backoff (1 s to 3
// s, with jitter) whenever the stream breaks; the NTP side never waits for it —
// if the controller is down, the clock keeps being disciplined.
//
// Threads: one sender and one reader while connected (only when a `controller`
// is configured).
//
// An agent with several `controller` lines runs one Reporter per controller:
// each has its own stream, threads, backoff and latest status, so a slow or
// dead controller never delays the reports to the others (Publish only takes
// each Reporter's lock for a copy; a stream's Write blocks only its own
// sender).
//
//   Reporter reporter(options, [&](const v1::Resync& r, auto done) {
//   loop.PostResync(r, done); }); reporter.Start();
//   loop.SetStatusListener([&](const v1::SyncStatus& s) { reporter.Publish(s);
//   });
//
// The crosscheck (docs/CROSSCHECK.md): the controller's ProbeAssignment,
// bounded first (net::BoundProbeAssignment: the first 16 valid targets, node
// names and addresses of bounded length), is stored and goes to the probes
// handler (the loop's PostProbes); a broken stream hands it an
// empty assignment, so a reconnect drops this controller's targets until it
// sends them again. PublishProbes takes the loop's results for this
// controller's targets; they leave as a ProbeReport, at most one per
// kProbeReportMinInterval.
#ifndef NTPFLEET_AGENT_REPORT_REPORTER_H_
#define NTPFLEET_AGENT_REPORT_REPORTER_H_

#include <grpcpp/security/credentials.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::report {

struct ReporterOptions {
  std::string controller;  // "host:port"
  v1::Hello
      hello;  // node_name, addresses, version, role, labels, report_interval
  absl::Duration report_interval = absl::Seconds(1);
  // Mutual TLS (common/tls.h: the node's certificate, verified controller,
  // files re-read when rotated). Null: plain text, which only a controller on
  // loopback or started with --insecure accepts.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// The shortest time between two ProbeReports on one stream.
inline constexpr absl::Duration kProbeReportMinInterval = absl::Seconds(10);

class Reporter {
 public:
  using ResyncHandler = std::function<void(
      const v1::Resync&, std::function<void(const v1::ResyncResult&)>)>;

  using ProbesHandler = std::function<void(const v1::ProbeAssignment&)>;

  Reporter(ReporterOptions options, ResyncHandler on_resync);
  // Before Start(): where the controller's probe assignments go (called on
  // the stream's reader thread; an empty one when the stream breaks).
  void SetProbesHandler(ProbesHandler on_probes);
  ~Reporter();

  void Start();
  void Stop();
  // The latest status (any thread, cheap). Sent at the next report tick, or at
  // once when the sync state, stratum or system peer changed.
  void Publish(const v1::SyncStatus& status);
  // The latest probe results for this controller's targets (any thread):
  // sent as a ProbeReport, coalesced to one per kProbeReportMinInterval, and
  // only those for targets of the assignment this stream received.
  void PublishProbes(const std::vector<v1::ProbeResult>& results);
  // The stream's state now, for the local status (any thread).
  v1::ControllerLink Link() const;

 private:
  void Run();
  bool Session();  // one connection; returns when it breaks
  void Enqueue(v1::AgentMessage message);

  ReporterOptions options_;
  ResyncHandler on_resync_;
  ProbesHandler on_probes_;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  mutable absl::Mutex mu_;
  std::optional<v1::SyncStatus> latest_ ABSL_GUARDED_BY(mu_);
  bool urgent_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::AgentMessage> outbox_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<grpc::ClientContext> context_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time since_ ABSL_GUARDED_BY(mu_) = absl::Now();
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  // This session's probe assignment (none until the controller sends one),
  // the results waiting to be sent, and when the next report may leave.
  std::optional<v1::ProbeAssignment> assignment_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::ProbeReport> probe_report_ ABSL_GUARDED_BY(mu_);
  absl::Time next_probe_report_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace ntpfleet::report

#endif  // NTPFLEET_AGENT_REPORT_REPORTER_H_
