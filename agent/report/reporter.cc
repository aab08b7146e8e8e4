#include "agent/report/reporter.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/net/probe_limits.h"
#include "common/log.h"
#include "common/proto_time.h"

namespace ntpfleet::report {
namespace {

// Changes that must reach the controller at once rather than at the next tick.
bool Significant(const v1::SyncStatus& a, const v1::SyncStatus& b) {
  return a.state() != b.state() || a.stratum() != b.stratum() ||
         a.system_peer() != b.system_peer() || a.leap() != b.leap();
}

// The longest wait between attempts to reach the controller. Short, so that
// every agent is back within a few seconds of a controller's restart (at most
// kMaxBackoff after it listens again); each wait is drawn from [1/2, 1] of the
// backoff, so a fleet's attempts spread over that window instead of arriving
// at once. An attempt at a controller that is down costs a refused TCP
// connection.
constexpr absl::Duration kMaxBackoff = absl::Seconds(3);

}  // namespace

Reporter::Reporter(ReporterOptions options, ResyncHandler on_resync)
    : options_(std::move(options)), on_resync_(std::move(on_resync)) {}

Reporter::~Reporter() { Stop(); }

void Reporter::SetProbesHandler(ProbesHandler on_probes) {
  on_probes_ = std::move(on_probes);
}

void Reporter::PublishProbes(const std::vector<v1::ProbeResult>& results) {
  absl::MutexLock lock(&mu_);
  if (!assignment_) return;  // a result of an earlier session's targets
  v1::ProbeReport report;
  for (const v1::ProbeResult& r : results) {
    // Only this assignment's targets (the loop may not have applied it yet),
    // and never more than the controller accepts.
    const bool assigned = std::any_of(
        assignment_->targets().begin(), assignment_->targets().end(),
        [&](const v1::ProbeTarget& t) {
          return t.node() == r.node() && t.address() == r.address();
        });
    if (assigned && report.results_size() < net::kMaxProbeTargets) {
      *report.add_results() = r;
    }
  }
  if (report.results_size() > 0) probe_report_ = std::move(report);
}

void Reporter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Reporter::Stop() {
  stop_ = true;
  {
    absl::MutexLock lock(&mu_);
    if (context_) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void Reporter::Publish(const v1::SyncStatus& status) {
  absl::MutexLock lock(&mu_);
  if (!latest_ || Significant(*latest_, status)) urgent_ = true;
  latest_ = status;
}

v1::ControllerLink Reporter::Link() const {
  v1::ControllerLink link;
  link.set_address(options_.controller);
  absl::MutexLock lock(&mu_);
  link.set_connected(connected_);
  SetTimestamp(since_, link.mutable_since());
  link.set_last_error(last_error_);
  return link;
}

void Reporter::Enqueue(v1::AgentMessage message) {
  absl::MutexLock lock(&mu_);
  outbox_.push_back(std::move(message));
}

void Reporter::Run() {
  std::mt19937 rng(std::random_device{}());
  absl::Duration backoff = absl::Seconds(1);
  while (!stop_) {
    const absl::Time started = absl::Now();
    const bool was_up = Session();
    if (stop_) break;
    // A session that lasted was fine: start the backoff over.
    if (was_up && absl::Now() - started > absl::Seconds(30))
      backoff = absl::Seconds(1);
    const absl::Duration wait =
        backoff * std::uniform_real_distribution<double>(0.5, 1.0)(rng);
    Log(LogLevel::kWarning, "controller %s unreachable, retrying in %s",
        options_.controller,
        absl::FormatDuration(absl::Trunc(wait, absl::Milliseconds(100))));
    // Asleep until the wait is over or Stop() (which takes mu_ after setting
    // stop_, so the condition is looked at again).
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](std::atomic<bool>* stop) { return stop->load(); }, &stop_),
        wait);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

bool Reporter::Session() {
  const std::shared_ptr<grpc::ChannelCredentials> creds =
      options_.credentials != nullptr ? options_.credentials
                                      : grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  // Detect a dead controller within seconds; the controller permits pings this
  // often.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  auto channel = grpc::CreateCustomChannel(options_.controller, creds, args);
  auto stub = v1::AgentService::NewStub(channel);
  auto context = std::make_shared<grpc::ClientContext>();
  {
    absl::MutexLock lock(&mu_);
    context_ = context;
  }
  auto stream = stub->Connect(context.get());
  v1::AgentMessage hello;
  *hello.mutable_hello() = options_.hello;
  if (!stream->Write(hello)) {
    const grpc::Status status = stream->Finish();
    absl::MutexLock lock(&mu_);
    last_error_ = status.error_message().empty() ? "cannot connect"
                                                 : status.error_message();
    context_.reset();
    return false;
  }
  Log(LogLevel::kInfo, "reporting to controller %s", options_.controller);
  {
    absl::MutexLock lock(&mu_);
    connected_ = true;
    since_ = absl::Now();
  }

  // Reader: commands from the controller.
  bool reader_done = false;  // guarded by mu_, so that the sender wakes
  std::thread reader([&] {
    v1::ControllerMessage command;
    while (stream->Read(&command)) {
      if (command.has_probes()) {
        // Bounded before it is stored: the first kMaxProbeTargets valid
        // targets, whatever the controller sent (the loop says what was
        // dropped, once per change).
        v1::ProbeAssignment bounded =
            net::BoundProbeAssignment(command.probes()).assignment;
        {
          absl::MutexLock lock(&mu_);
          assignment_ = bounded;
          probe_report_.reset();
        }
        if (on_probes_) on_probes_(bounded);
      }
      if (command.has_resync()) {
        const std::string id = command.resync().request_id();
        on_resync_(command.resync(),
                   [this, id](const v1::ResyncResult& result) {
                     v1::AgentMessage m;
                     *m.mutable_resync_result() = result;
                     m.mutable_resync_result()->set_request_id(id);
                     Enqueue(std::move(m));
                   });
      }
    }
    absl::MutexLock lock(&mu_);
    reader_done = true;
  });

  // Sender: statuses every report interval (at once when significant), and
  // resync results.
  // The thread sleeps until the next report is due or something arrives: an
  // idle agent wakes once per report interval, not more.
  absl::Time next = absl::Now();
  bool ok = true;
  while (ok && !stop_) {
    std::deque<v1::AgentMessage> batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, &next,
                    &reader_done]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stop_ || reader_done || !outbox_.empty() ||
               (latest_ && (urgent_ || absl::Now() >= next)) ||
               (probe_report_ && absl::Now() >= next_probe_report_);
      };
      // Stop() sets stop_ and then takes mu_, which re-evaluates `ready`;
      // so does Publish() of a first status, and PublishProbes().
      absl::Time deadline = latest_ ? next : absl::InfiniteFuture();
      if (probe_report_) deadline = std::min(deadline, next_probe_report_);
      mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
      if (reader_done) break;
      batch.swap(outbox_);
      if (probe_report_ && absl::Now() >= next_probe_report_) {
        v1::AgentMessage m;
        *m.mutable_probe_report() = *std::move(probe_report_);
        probe_report_.reset();
        batch.push_back(std::move(m));
        next_probe_report_ = absl::Now() + kProbeReportMinInterval;
      }
      if ((urgent_ || absl::Now() >= next) && latest_) {
        v1::AgentMessage m;
        *m.mutable_status() = *latest_;
        batch.push_back(std::move(m));
        urgent_ = false;
        next = absl::Now() + options_.report_interval;
      }
    }
    for (const v1::AgentMessage& m : batch) {
      if (!(ok = stream->Write(m))) break;
    }
  }
  context->TryCancel();
  reader.join();
  const grpc::Status status = stream->Finish();
  // The controller's assignment was for this stream: until it sends a new
  // one, this controller's targets are not probed.
  bool had_assignment;
  {
    absl::MutexLock lock(&mu_);
    had_assignment = assignment_.has_value();
    assignment_.reset();
    probe_report_.reset();
    next_probe_report_ = absl::InfinitePast();
  }
  if (had_assignment && on_probes_) on_probes_(v1::ProbeAssignment());
  if (!stop_) {
    Log(LogLevel::kWarning, "stream to controller %s ended: %s",
        options_.controller,
        status.error_message().empty() ? "closed" : status.error_message());
  }
  {
    absl::MutexLock lock(&mu_);
    context_.reset();
    urgent_ = true;  // the next session starts with a fresh status
    connected_ = false;
    since_ = absl::Now();
    last_error_ =
        status.error_message().empty() ? "closed" : status.error_message();
  }
  return true;
}

}  // namespace ntpfleet::report
