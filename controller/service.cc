#include "controller/service.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/report/status_proto.h"
#include "common/grpc_status.h"
#include "common/log.h"

namespace ntpfleet::controller {
namespace {

constexpr absl::Duration kDefaultResyncDeadline = absl::Seconds(10);
constexpr absl::Duration kHistoryRetention = absl::Hours(24 * 30);
constexpr size_t kHistoryPoints = 500;

}  // namespace

// --------------------------------------------------------------------------------------------
// One agent's stream.

class ControllerCore::AgentStream
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  AgentStream(ControllerCore* core, grpc::CallbackServerContext* context)
      : core_(core), peer_(context->peer()) {
    StartRead(&in_);
  }

  // Any thread. Dropped once the stream is finishing.
  void Send(const v1::ControllerMessage& message) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    queue_.push_back(message);
    if (!writing_) WriteNext();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (ok && !finished_ && !queue_.empty()) WriteNext();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      FinishOnce(grpc::Status::OK);
      return;
    }
    if (connection_ == 0) {
      if (!in_.has_hello()) {
        FinishOnce(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         "the first message on the stream must be a Hello"));
        return;
      }
      absl::StatusOr<uint64_t> c =
          core_->registry().Connect(in_.hello(), peer_);
      if (!c.ok()) {
        FinishOnce(ToGrpcStatus(c.status()));
        return;
      }
      connection_ = *c;
      core_->Attach(connection_, this);
      if (core_->store() != nullptr) {
        if (absl::Status s =
                core_->store()->UpsertNode(in_.hello(), core_->clock().Now());
            !s.ok()) {
          Log(LogLevel::kError, "%s", s.message());
        }
      }
      Log(LogLevel::kInfo, "%s connected from %s", in_.hello().node_name(),
          peer_);
    } else if (in_.has_status()) {
      if (!core_->registry().Report(connection_, in_.status())) {
        FinishOnce(
            grpc::Status(grpc::StatusCode::ABORTED,
                         "replaced by a newer stream from the same agent"));
        return;
      }
    } else if (in_.has_resync_result()) {
      core_->registry().Touch(connection_);
      core_->OnResyncResult(connection_, in_.resync_result());
    }
    StartRead(&in_);
  }

  void OnDone() override {
    if (connection_ != 0) {
      core_->Detach(connection_);
      core_->registry().Disconnect(connection_);
    }
    delete this;
  }

 private:
  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }
  void FinishOnce(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(status);
  }

  ControllerCore* core_;
  const std::string peer_;
  v1::AgentMessage in_;
  uint64_t connection_ = 0;
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::ControllerMessage> queue_ ABSL_GUARDED_BY(mu_);
  v1::ControllerMessage current_ ABSL_GUARDED_BY(mu_);
};

// --------------------------------------------------------------------------------------------
// A WatchFleet stream.

class ControllerCore::FleetWatcher
    : public grpc::ServerWriteReactor<v1::Fleet> {
 public:
  FleetWatcher(ControllerCore* core, absl::Duration min_interval)
      : core_(core), min_interval_(min_interval) {
    core_->AddWatcher(this);
    Push(core_->registry().GetFleet(), absl::Now());
  }

  // The housekeeping thread offers every new snapshot; at most one per
  // min_interval is written, and one held back is written as soon as it may
  // be (after the write in flight, or by Flush()).
  void Push(const v1::Fleet& fleet, absl::Time now) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    pending_ = fleet;
    WritePendingLocked(now);
  }

  // Housekeeper, every turn: writes a snapshot held back by min_interval.
  void Flush(absl::Time now) {
    absl::MutexLock lock(&mu_);
    WritePendingLocked(now);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status::OK);
      return;
    }
    WritePendingLocked(absl::Now());  // offered while this write was in flight
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    core_->RemoveWatcher(this);
    delete this;
  }

 private:
  void WritePendingLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_ || !pending_ ||
        now - last_write_ < min_interval_) {
      return;
    }
    current_ = *std::move(pending_);
    pending_.reset();
    writing_ = true;
    last_write_ = now;
    StartWrite(&current_);
  }

  void FinishLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  ControllerCore* core_;
  const absl::Duration min_interval_;
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_write_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  v1::Fleet current_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::Fleet> pending_ ABSL_GUARDED_BY(mu_);
};

// --------------------------------------------------------------------------------------------
// Resync operations.

struct ControllerCore::Operation {
  v1::ResyncRequest request;
  std::string request_id;
  absl::Time deadline;
  absl::Time started;
  std::map<uint64_t, std::string> pending;  // connection -> node
  std::vector<v1::NodeResyncResult> results;
  std::function<void(const grpc::Status&, const v1::ResyncResponse&)> finish;
};

ControllerCore::ControllerCore(const clock::Clock* clock, Registry* registry,
                               Store* store)
    : clock_(clock), registry_(registry), store_(store) {}

ControllerCore::~ControllerCore() { Stop(); }

void ControllerCore::Start() {
  thread_ = std::thread([this] { Housekeep(); });
}

void ControllerCore::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ControllerCore::Attach(uint64_t connection, AgentStream* stream) {
  absl::MutexLock lock(&mu_);
  streams_[connection] = stream;
}

void ControllerCore::Detach(uint64_t connection) {
  absl::MutexLock lock(&mu_);
  streams_.erase(connection);
}

void ControllerCore::AddWatcher(FleetWatcher* watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.insert(watcher);
}

void ControllerCore::RemoveWatcher(FleetWatcher* watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(watcher);
}

v1::Fleet ControllerCore::LastFleet() const {
  absl::MutexLock lock(&mu_);
  return last_fleet_;
}

ResyncCounters ControllerCore::Counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

void ControllerCore::Resync(
    const v1::ResyncRequest& request,
    std::function<void(const grpc::Status&, const v1::ResyncResponse&)>
        finish) {
  absl::StatusOr<Registry::Selection> selection =
      registry_->Select(request.selector());
  if (!selection.ok()) {
    finish(ToGrpcStatus(selection.status()), {});
    return;
  }
  auto op = std::make_unique<Operation>();
  op->request = request;
  op->started = clock_->Now();
  absl::Duration deadline = report::FromProto(request.deadline());
  if (deadline <= absl::ZeroDuration()) deadline = kDefaultResyncDeadline;
  op->deadline = op->started + deadline;
  op->finish = std::move(finish);
  for (const std::string& name : selection->not_connected) {
    v1::NodeResyncResult r;
    r.set_node(name);
    r.mutable_result()->set_outcome(v1::RESYNC_OUTCOME_NOT_CONNECTED);
    r.mutable_result()->set_error("not connected to the controller");
    op->results.push_back(std::move(r));
  }
  absl::MutexLock lock(&mu_);
  // Unique across controller restarts too: the time to the millisecond.
  op->request_id = absl::StrFormat(
      "resync-%d-%d", absl::ToUnixMillis(op->started), next_request_++);
  for (v1::NodeResyncResult& r : op->results) {
    r.mutable_result()->set_request_id(op->request_id);
  }
  for (const Registry::Target& t : selection->connected) {
    auto stream = streams_.find(t.connection);
    if (request.dry_run() || stream == streams_.end()) {
      v1::NodeResyncResult r;
      r.set_node(t.node);
      r.mutable_result()->set_request_id(op->request_id);
      r.mutable_result()->set_outcome(request.dry_run()
                                          ? v1::RESYNC_OUTCOME_DRY_RUN
                                          : v1::RESYNC_OUTCOME_NOT_CONNECTED);
      op->results.push_back(std::move(r));
      continue;
    }
    v1::ControllerMessage m;
    v1::Resync* resync = m.mutable_resync();
    resync->set_request_id(op->request_id);
    resync->set_burst(true);  // a resync is always a burst: fresh samples, fast
    resync->set_allow_step(request.allow_step());
    report::SetDuration(deadline, resync->mutable_deadline());
    op->pending[t.connection] = t.node;
    stream->second->Send(m);
  }
  Log(LogLevel::kInfo, "%s by %s: %d nodes asked%s", op->request_id,
      request.requested_by().empty() ? "unknown" : request.requested_by(),
      op->pending.size(), request.dry_run() ? " (dry run)" : "");
  Operation& ref = *op;
  operations_[op->request_id] = std::move(op);
  if (ref.pending.empty()) Complete(ref);
}

void ControllerCore::OnResyncResult(uint64_t connection,
                                    const v1::ResyncResult& result) {
  absl::MutexLock lock(&mu_);
  auto it = operations_.find(result.request_id());
  if (it == operations_.end()) return;  // late: the operation already timed out
  Operation& op = *it->second;
  auto p = op.pending.find(connection);
  if (p == op.pending.end()) return;
  v1::NodeResyncResult r;
  r.set_node(p->second);
  *r.mutable_result() = result;
  op.results.push_back(std::move(r));
  op.pending.erase(p);
  if (op.pending.empty()) Complete(op);
}

void ControllerCore::Complete(Operation& op) {
  for (const auto& [connection, node] : op.pending) {
    v1::NodeResyncResult r;
    r.set_node(node);
    r.mutable_result()->set_request_id(op.request_id);
    r.mutable_result()->set_outcome(v1::RESYNC_OUTCOME_TIMED_OUT);
    r.mutable_result()->set_error(absl::StrFormat(
        "no answer within %s", absl::FormatDuration(op.deadline - op.started)));
    op.results.push_back(std::move(r));
  }
  op.pending.clear();
  std::sort(op.results.begin(), op.results.end(),
            [](const v1::NodeResyncResult& a, const v1::NodeResyncResult& b) {
              return a.node() < b.node();
            });
  v1::ResyncResponse response;
  response.set_request_id(op.request_id);
  for (const v1::NodeResyncResult& r : op.results) {
    *response.add_results() = r;
    ++counters_.node_results[v1::ResyncOutcome_Name(r.result().outcome())];
  }
  ++counters_.requests;
  if (store_ != nullptr) {
    absl::StatusOr<int64_t> id = store_->RecordResync(
        op.request.requested_by(), op.request.selector(), op.request.dry_run(),
        op.request_id, op.started, op.results);
    if (!id.ok()) Log(LogLevel::kError, "%s", id.status().message());
  }
  auto finish = std::move(op.finish);
  operations_.erase(op.request_id);  // `op` is gone after this line
  // gRPC's Finish() may be called with our lock held: it only schedules work.
  finish(grpc::Status::OK, response);
}

void ControllerCore::Housekeep() {
  SkewDownsampler downsampler;
  uint64_t seen_version = 0;
  absl::Time last_snapshot = absl::InfinitePast();
  absl::Time last_seen_flush = clock_->Now();
  absl::Time last_prune = absl::InfinitePast();
  while (!stop_) {
    registry_->WaitForChange(seen_version, absl::Milliseconds(100));
    const absl::Time now = clock_->Now();
    {
      absl::MutexLock lock(&mu_);
      std::vector<Operation*> expired;
      for (auto& [id, op] : operations_) {
        if (now >= op->deadline) expired.push_back(op.get());
      }
      for (Operation* op : expired) Complete(*op);
      for (FleetWatcher* w : watchers_) w->Flush(absl::Now());
    }
    const uint64_t version = registry_->version();
    if (version == seen_version && now - last_snapshot < absl::Seconds(1))
      continue;
    seen_version = version;
    last_snapshot = now;
    const v1::Fleet fleet = registry_->GetFleet();
    {
      absl::MutexLock lock(&mu_);
      last_fleet_ = fleet;
      for (FleetWatcher* w : watchers_) w->Push(fleet, absl::Now());
    }
    if (store_ == nullptr) continue;
    if (std::optional<v1::SkewPoint> point = downsampler.Add(fleet)) {
      if (absl::Status s = store_->AppendSkew(*point); !s.ok()) {
        Log(LogLevel::kError, "%s", s.message());
      }
    }
    if (now - last_seen_flush >= absl::Seconds(10)) {
      std::vector<std::pair<std::string, absl::Time>> seen;
      for (const v1::Node& n : fleet.nodes()) {
        if (n.connection() == v1::CONNECTION_STATE_CONNECTED) {
          seen.emplace_back(n.name(), report::FromProto(n.last_seen()));
        }
      }
      (void)store_->UpdateLastSeen(seen);
      last_seen_flush = now;
    }
    if (now - last_prune >= absl::Hours(1)) {
      (void)store_->PruneHistory(now - kHistoryRetention);
      last_prune = now;
    }
  }
}

// --------------------------------------------------------------------------------------------
// Services.

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>*
AgentServiceImpl::Connect(grpc::CallbackServerContext* context) {
  return new ControllerCore::AgentStream(core_, context);
}

grpc::ServerUnaryReactor* FleetServiceImpl::GetFleet(
    grpc::CallbackServerContext* context, const v1::GetFleetRequest*,
    v1::Fleet* response) {
  *response = core_->registry().GetFleet();
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<v1::Fleet>* FleetServiceImpl::WatchFleet(
    grpc::CallbackServerContext*, const v1::WatchFleetRequest* request) {
  absl::Duration interval = report::FromProto(request->min_interval());
  if (interval <= absl::ZeroDuration()) interval = absl::Seconds(1);
  return new ControllerCore::FleetWatcher(core_, interval);
}

grpc::ServerUnaryReactor* FleetServiceImpl::GetNode(
    grpc::CallbackServerContext* context, const v1::GetNodeRequest* request,
    v1::Node* response) {
  auto* reactor = context->DefaultReactor();
  std::optional<v1::Node> node = core_->registry().GetNode(request->name());
  if (!node) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrFormat("no node named '%s' has ever reported to this "
                        "controller",
                        request->name())));
    return reactor;
  }
  *response = *node;
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* FleetServiceImpl::Resync(
    grpc::CallbackServerContext* context, const v1::ResyncRequest* request,
    v1::ResyncResponse* response) {
  auto* reactor = context->DefaultReactor();
  v1::ResyncRequest r = *request;
  if (r.requested_by().empty()) r.set_requested_by(context->peer());
  core_->Resync(r, [reactor, response](const grpc::Status& status,
                                       const v1::ResyncResponse& result) {
    if (status.ok()) *response = result;
    reactor->Finish(status);
  });
  return reactor;
}

grpc::ServerUnaryReactor* FleetServiceImpl::History(
    grpc::CallbackServerContext* context, const v1::HistoryRequest* request,
    v1::HistoryResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (core_->store() == nullptr) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "no history store"));
    return reactor;
  }
  const absl::Time now = core_->clock().Now();
  const absl::Time end =
      request->has_end() ? report::FromProto(request->end()) : now;
  const absl::Time start = request->has_start()
                               ? report::FromProto(request->start())
                               : end - absl::Hours(1);
  absl::StatusOr<std::vector<v1::SkewPoint>> points =
      core_->store()->History(start, end, kHistoryPoints);
  if (!points.ok()) {
    reactor->Finish(ToGrpcStatus(points.status()));
    return reactor;
  }
  for (const v1::SkewPoint& p : *points) *response->add_points() = p;
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace ntpfleet::controller
