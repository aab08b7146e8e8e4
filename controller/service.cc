#include "controller/service.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "controller/crosscheck.h"

namespace ntpfleet::controller {
namespace {

constexpr absl::Duration kDefaultResyncDeadline = absl::Seconds(10);
// The step limit of an admin's forced resync: none but the agent's own
// resync_max_step (a century fits a protobuf Duration).
constexpr absl::Duration kForcedMaxStep = absl::Hours(24 * 365 * 100);
constexpr absl::Duration kHistoryRetention = absl::Hours(24 * 30);
constexpr size_t kHistoryPoints = 500;
// The most buckets of one node's history in one answer (the newest).
constexpr size_t kMaxNodePoints = 10000;
// Housekeeping turn: resync deadlines, watchers and history.
constexpr absl::Duration kHousekeepingTick = absl::Milliseconds(100);
// A snapshot older than this (controller clock) is out of date even if nothing
// changed, so that as_of and the history keep moving.
constexpr absl::Duration kMaxSnapshotAge = absl::Seconds(1);
// How long AgentServiceImpl::Shutdown waits for the streams the server ended.
constexpr absl::Duration kShutdownWait = absl::Seconds(10);

}  // namespace

// --------------------------------------------------------------------------------------------
// One agent's stream, on the async API.
//
// Every operation it starts names one of its tags; the queue's thread hands
// the completion back to Proceed(). All of a stream's completions come from
// one queue, served by one thread, so they never run at once; only Send()
// comes from elsewhere (the housekeeper's resync waves), hence mu_. The
// stream deletes itself once the call is over (the done tag) and none of its
// operations is outstanding, after leaving the core and the registry.

class ControllerCore::AgentStream {
 public:
  enum class Op { kAccepted, kRead, kWrite, kFinish, kDone };
  struct Tag {
    AgentStream* stream;
    Op op;
  };

  // Waits for the next Connect call on `cq` (AgentServiceImpl::Await).
  AgentStream(ControllerCore* core, AgentServiceImpl* owner,
              v1::AgentService::AsyncService* service,
              grpc::ServerCompletionQueue* cq)
      : core_(core), owner_(owner), stream_(&context_) {
    context_.AsyncNotifyWhenDone(&done_tag_);
    service->RequestConnect(&context_, &stream_, cq, cq, &accepted_tag_);
  }
  ~AgentStream() { owner_->Gone(); }

  // The queue's thread: `op` completed, `ok` as the queue said. Returns
  // false when the stream deleted itself.
  bool Proceed(Op op, bool ok, grpc::ServerCompletionQueue* cq) {
    switch (op) {
      case Op::kAccepted:
        if (!ok) {  // the server is shutting down: there never was a call
          delete this;
          return false;
        }
        // The next stream may arrive while this one is served.
        owner_->Await(cq);
        OnAccepted();
        break;
      case Op::kRead: {
        absl::MutexLock lock(&mu_);
        reading_ = false;
      }
        OnRead(ok);
        break;
      case Op::kWrite:
        OnWriteDone(ok);
        break;
      case Op::kFinish: {
        absl::MutexLock lock(&mu_);
        finishing_ = false;
        break;
      }
      case Op::kDone: {
        absl::MutexLock lock(&mu_);
        done_ = true;
        break;
      }
    }
    return MaybeDelete();
  }

  // Any thread. Dropped once the stream is finishing.
  void Send(const v1::ControllerMessage& message) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    queue_.push_back(message);
    if (!writing_) WriteNext();
  }

 private:
  void OnAccepted() {
    peer_ = context_.peer();
    if (!core_->TakeStreamSlot()) {
      FinishOnce(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrFormat("this controller already holds %d agent streams "
                          "(--max-agent-streams)",
                          core_->options().max_agent_streams)));
      return;
    }
    slot_ = true;
    absl::StatusOr<Caller> caller = core_->authz().Identify(
        context_.auth_context().get(), peer_, "Connect");
    if (!caller.ok()) {
      FinishOnce(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *std::move(caller);
    StartRead();
  }

  void StartRead() {
    absl::MutexLock lock(&mu_);
    if (finished_) return;  // the call ended while this message was handled
    reading_ = true;
    stream_.Read(&in_, &read_tag_);
  }

  void OnRead(bool ok) {
    if (!ok) {  // the agent closed its side, or the call ended
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
      // A node reports only as the node its certificate names.
      if (absl::Status s =
              core_->authz().AllowReportAs(caller_, in_.hello().node_name());
          !s.ok()) {
        FinishOnce(ToGrpcStatus(s));
        return;
      }
      absl::StatusOr<uint64_t> c =
          core_->registry().Connect(in_.hello(), peer_);
      if (!c.ok()) {
        Log(LogLevel::kWarning, "refused a Hello from %s: %s",
            caller_.ToString(), c.status().message());
        FinishOnce(ToGrpcStatus(c.status()));
        return;
      }
      connection_ = *c;
      node_ = in_.hello().node_name();
      core_->Attach(connection_, this);
      core_->OnAgentHello(connection_, node_);
      const absl::Time now = core_->clock().Now();
      core_->Write([hello = in_.hello(), now](Store& store) {
        return store.UpsertNode(hello, now);
      });
      Log(LogLevel::kInfo, "%s connected from %s", in_.hello().node_name(),
          caller_.ToString());
    } else if (in_.has_status()) {
      // Moved, not copied: the registry keeps this message as it is.
      auto status = std::make_shared<v1::SyncStatus>();
      status->Swap(in_.mutable_status());
      if (!Accepted(core_->registry().Report(connection_, std::move(status)))) {
        return;
      }
      // Anything else refused was dropped and counted by the registry; the
      // stream goes on (the node turns STALE if it keeps sending nonsense).
    } else if (in_.has_resync_result()) {
      absl::Status s =
          core_->registry().ReportResult(connection_, in_.resync_result());
      if (s.ok()) core_->OnResyncResult(connection_, in_.resync_result());
      if (!Accepted(s)) return;
    } else if (in_.has_probe_report()) {
      // A sign of life first (a dead stream is ended), then the results.
      absl::Status s = core_->registry().Touch(connection_);
      if (s.ok()) s = core_->OnProbeReport(node_, in_.probe_report());
      if (!Accepted(s)) return;
    }
    StartRead();
  }

  void OnWriteDone(bool ok) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      // The call is broken: nothing more goes out (the read fails too).
      queue_.clear();
    } else if (!queue_.empty() && !finish_pending_) {
      WriteNext();
      return;
    }
    if (finish_pending_) StartFinishLocked();
  }

  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    stream_.Write(current_, &write_tag_);
  }

  // What a Report/ReportResult status means for the stream (see
  // controller/registry.h): false when the stream was ended (not live); a
  // dropped message is logged (the first on this stream only: the registry
  // counts them all) and the stream goes on.
  bool Accepted(const absl::Status& s) {
    if (absl::IsNotFound(s)) {
      FinishOnce(
          grpc::Status(grpc::StatusCode::ABORTED,
                       "replaced by a newer stream from the same agent"));
      return false;
    }
    if (!s.ok() && !warned_) {
      warned_ = true;
      Log(LogLevel::kWarning,
          "%s (agent at %s; further invalid messages on this stream are only "
          "counted)",
          s.message(), peer_);
    }
    return true;
  }

  // Ends the call with `status` once: now, or after the write in flight (one
  // write at a time, and the status goes after it).
  void FinishOnce(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    queue_.clear();
    finish_status_ = status;
    finish_pending_ = true;
    if (!writing_) StartFinishLocked();
  }

  void StartFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finish_pending_ = false;
    finishing_ = true;
    stream_.Finish(finish_status_, &finish_tag_);
  }

  // Once the call is over and nothing of it is outstanding: leaves the core
  // (no Send can come after Detach, which takes the core's lock that Send is
  // called under) and the registry, and deletes itself.
  bool MaybeDelete() {
    {
      absl::MutexLock lock(&mu_);
      if (!done_) return true;
      finished_ = true;  // no new writes
      if (reading_ || writing_ || finishing_ || finish_pending_) return true;
    }
    if (connection_ != 0) {
      core_->Detach(connection_);
      core_->registry().Disconnect(connection_);
    }
    if (slot_) core_->ReleaseStreamSlot();
    delete this;
    return false;
  }

  ControllerCore* const core_;
  AgentServiceImpl* const owner_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<v1::ControllerMessage, v1::AgentMessage>
      stream_;
  Tag accepted_tag_{this, Op::kAccepted};
  Tag read_tag_{this, Op::kRead};
  Tag write_tag_{this, Op::kWrite};
  Tag finish_tag_{this, Op::kFinish};
  Tag done_tag_{this, Op::kDone};

  // The queue's thread only.
  std::string peer_;
  Caller caller_;
  bool slot_ = false;
  v1::AgentMessage in_;
  uint64_t connection_ = 0;
  std::string node_;     // Hello.node_name once connected
  bool warned_ = false;  // a dropped message was logged

  absl::Mutex mu_;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;   // a Read outstanding
  bool done_ ABSL_GUARDED_BY(mu_) = false;      // the call is over
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // no more writes
  bool writing_ ABSL_GUARDED_BY(mu_) = false;   // a Write outstanding
  // Finish is due once the write in flight completes.
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;  // a Finish outstanding
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::ControllerMessage> queue_ ABSL_GUARDED_BY(mu_);
  v1::ControllerMessage current_ ABSL_GUARDED_BY(mu_);
};

// --------------------------------------------------------------------------------------------
// A WatchFleet stream.

class ControllerCore::FleetWatcher
    : public grpc::ServerWriteReactor<v1::Fleet> {
 public:
  FleetWatcher(ControllerCore* core, absl::Duration min_interval, bool summary)
      : core_(core), min_interval_(min_interval), summary_(summary) {
    core_->AddWatcher(this);
    Push(core_->Fleet(summary_), absl::Now());
  }

  bool summary() const { return summary_; }

  // The housekeeping thread offers every new snapshot; at most one per
  // min_interval is written, and one held back is written as soon as it may
  // be (after the write in flight, or by Flush()).
  void Push(std::shared_ptr<const v1::Fleet> fleet, absl::Time now) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    pending_ = std::move(fleet);
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
    current_ = std::move(pending_);
    writing_ = true;
    last_write_ = now;
    StartWrite(current_.get());
  }

  void FinishLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  ControllerCore* core_;
  const absl::Duration min_interval_;
  const bool summary_;
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_write_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // The snapshot being written, and the newest one offered since (null:
  // none). Shared with the controller: nothing is copied per watcher.
  std::shared_ptr<const v1::Fleet> current_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const v1::Fleet> pending_ ABSL_GUARDED_BY(mu_);
};

// --------------------------------------------------------------------------------------------
// Resync operations.

struct ControllerCore::Operation {
  v1::ResyncRequest request;  // requested_by: the verified caller
  std::string request_id;
  absl::Time started;
  absl::Duration deadline;  // for each node, from when it is asked
  int64_t audit_id = 0;     // the store's record (0: no store)
  struct Pending {
    std::string node;
    absl::Time deadline;
  };
  std::map<uint64_t, Pending> pending;  // asked, by connection
  std::deque<Registry::Target> queued;  // not asked yet (later waves)
  v1::Resync command;                   // what each node is sent
  std::vector<v1::NodeResyncResult> results;
  std::function<void(const grpc::Status&, const v1::ResyncResponse&)> finish;
};

struct ControllerCore::Completed {
  std::function<void(const grpc::Status&, const v1::ResyncResponse&)> finish;
  v1::ResyncResponse response;
  int64_t audit_id = 0;
  std::vector<v1::NodeResyncResult> results;
};

ControllerCore::ControllerCore(const clock::Clock* clock, Registry* registry,
                               Store* store, ControllerOptions options)
    : clock_(clock),
      registry_(registry),
      store_(store),
      options_(options),
      authz_(options.tls),
      writer_(store != nullptr
                  ? std::make_unique<StoreWriter>(store, options.write_queue)
                  : nullptr),
      crosscheck_(options.crosscheck),
      snapshot_(Build()),
      last_fleet_(std::make_shared<const v1::Fleet>()) {}

ControllerCore::~ControllerCore() { Stop(); }

bool ControllerCore::TakeStreamSlot() {
  if (agent_streams_.fetch_add(1) < options_.max_agent_streams) return true;
  agent_streams_.fetch_sub(1);
  return false;
}

void ControllerCore::ReleaseStreamSlot() { agent_streams_.fetch_sub(1); }

void ControllerCore::Write(std::function<absl::Status(Store&)> write) {
  if (writer_ == nullptr) return;
  // A full queue is counted by the writer (/metrics); the data it would have
  // written (a Hello, last-seen times, a history point) comes again.
  (void)writer_->Enqueue(std::move(write));
}

void ControllerCore::Start() {
  thread_ = std::thread([this] { Housekeep(); });
  if (crosscheck_.enabled()) {
    crosscheck_thread_ = std::thread([this] { CrosscheckLoop(); });
  }
}

void ControllerCore::Stop() {
  absl::call_once(stop_once_, [this] { stop_.Notify(); });
  if (thread_.joinable()) thread_.join();
  if (crosscheck_thread_.joinable()) crosscheck_thread_.join();
  // Resyncs still open are answered and recorded now (nodes not heard from:
  // TIMED_OUT; not yet asked: NOT_CONNECTED), not left to INTERRUPTED.
  auto answer_open = [this] {
    std::vector<Completed> open;
    {
      absl::MutexLock lock(&mu_);
      while (!operations_.empty()) {
        open.push_back(Complete(*operations_.begin()->second));
      }
    }
    for (Completed& c : open) Deliver(std::move(c));
  };
  answer_open();
  // What is queued is written before the store closes.
  if (writer_ != nullptr) writer_->Stop();
  // A resync whose audit record the writer committed while stopping was
  // launched since: answered too (its results can no longer be recorded; the
  // next start marks them INTERRUPTED).
  answer_open();
}

std::shared_ptr<const v1::Fleet> ControllerCore::Fleet(bool summary) {
  const std::shared_ptr<const FleetSnapshot> s = Snapshot(/*builder=*/false);
  return summary ? s->summary : s->taken.fleet;
}

grpc::Slice ControllerCore::EncodedFleet(bool summary) {
  const std::shared_ptr<const FleetSnapshot> s = Snapshot(/*builder=*/false);
  return summary ? s->summary_bytes : s->fleet_bytes;
}

bool ControllerCore::OutOfDate(const FleetSnapshot& s) const {
  const absl::Duration age = clock_->Now() - FromProto(s.taken.fleet->as_of());
  return s.taken.version != registry_->version() ||
         s.crosscheck_version != crosscheck_.version() ||
         registry_->Expired(s.taken) || age < absl::ZeroDuration() ||
         age >= kMaxSnapshotAge;
}

std::shared_ptr<const FleetSnapshot> ControllerCore::Snapshot(bool builder) {
  std::shared_ptr<const FleetSnapshot> current = std::atomic_load(&snapshot_);
  if (!builder && options_.snapshot_interval > absl::ZeroDuration()) {
    return current;
  }
  absl::MutexLock lock(&build_mu_);
  current =
      std::atomic_load(&snapshot_);  // another builder may have been first
  if (absl::Now() - current->built < options_.snapshot_interval ||
      !OutOfDate(*current)) {
    return current;
  }
  current = Build();
  std::atomic_store(&snapshot_, current);
  return current;
}

std::shared_ptr<const FleetSnapshot> ControllerCore::Build() const {
  auto s = std::make_shared<FleetSnapshot>();
  // The version first: a solve finishing meanwhile makes this snapshot out
  // of date at once rather than never shown.
  s->crosscheck_version = crosscheck_.version();
  const std::shared_ptr<const crosscheck::Solution> solution =
      crosscheck_.Latest();
  s->taken = registry_->TakeSnapshot([&solution](v1::Fleet* fleet) {
    if (solution != nullptr) ApplyCrosscheck(*solution, fleet);
  });
  s->summary = SummarizeFleet(*s->taken.fleet);
  s->fleet_bytes = grpc::Slice(s->taken.fleet->SerializeAsString());
  s->summary_bytes = grpc::Slice(s->summary->SerializeAsString());
  s->built = absl::Now();
  return s;
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

std::shared_ptr<const v1::Fleet> ControllerCore::LastFleet() const {
  absl::MutexLock lock(&mu_);
  return last_fleet_;
}

ResyncCounters ControllerCore::Counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

void ControllerCore::Resync(
    const v1::ResyncRequest& request, const Caller& caller,
    std::function<void(const grpc::Status&, const v1::ResyncResponse&)>
        finish) {
  absl::StatusOr<Registry::Selection> selection =
      registry_->Select(request.selector());
  if (!selection.ok()) {
    finish(ToGrpcStatus(selection.status()), {});
    return;
  }
  auto op = std::make_shared<Operation>();
  op->request = request;
  op->request.set_requested_by(caller.ToString());
  op->started = clock_->Now();
  op->deadline = FromProto(request.deadline());
  if (op->deadline <= absl::ZeroDuration()) {
    op->deadline = kDefaultResyncDeadline;
  }
  op->finish = std::move(finish);
  v1::Resync& command = op->command;
  command.set_burst(true);  // a resync is always a burst: fresh samples, fast
  command.set_allow_step(request.allow_step());
  SetDuration(op->deadline, command.mutable_deadline());
  // The step limit: an admin's --force lifts the operator limit (the agent's
  // own resync_max_step still holds).
  SetDuration(
      request.force() ? kForcedMaxStep : options_.resync.operator_max_step,
      command.mutable_max_step());

  auto result = [&op](const std::string& node, v1::ResyncOutcome outcome,
                      std::string error) {
    v1::NodeResyncResult& r = op->results.emplace_back();
    r.set_node(node);
    r.mutable_result()->set_outcome(outcome);
    r.mutable_result()->set_error(std::move(error));
  };
  for (const std::string& name : selection->not_connected) {
    result(name, v1::RESYNC_OUTCOME_NOT_CONNECTED,
           "not connected to the controller");
  }
  std::vector<std::string> asked;
  {
    absl::MutexLock lock(&mu_);
    // Unique across controller restarts too: the time to the millisecond.
    op->request_id = absl::StrFormat(
        "resync-%d-%d", absl::ToUnixMillis(op->started), next_request_++);
    // Judged per name before any is recorded: every live stream of a
    // duplicated name is asked in the same request.
    std::set<std::string> limited;
    for (const Registry::Target& t : selection->connected) {
      auto last = last_asked_.find(t.node);
      if (!request.dry_run() && last != last_asked_.end() &&
          op->started >= last->second &&
          op->started - last->second < options_.resync.min_interval) {
        limited.insert(t.node);
      }
    }
    for (const Registry::Target& t : selection->connected) {
      if (request.dry_run()) {
        result(t.node, v1::RESYNC_OUTCOME_DRY_RUN, "");
        continue;
      }
      if (limited.count(t.node) > 0) {
        const absl::Duration ago = op->started - last_asked_[t.node];
        result(
            t.node, v1::RESYNC_OUTCOME_RATE_LIMITED,
            absl::StrFormat(
                "asked %s ago; at most one resync per node every %s "
                "(--resync-min-interval)",
                absl::FormatDuration(absl::Trunc(ago, absl::Milliseconds(100))),
                absl::FormatDuration(options_.resync.min_interval)));
        continue;
      }
      op->queued.push_back(t);
      asked.push_back(t.node);
    }
    for (const std::string& node : asked) last_asked_[node] = op->started;
  }
  command.set_request_id(op->request_id);
  for (v1::NodeResyncResult& r : op->results) {
    r.mutable_result()->set_request_id(op->request_id);
  }
  Log(LogLevel::kInfo, "%s by %s: %d nodes to ask%s", op->request_id,
      op->request.requested_by(), op->queued.size(),
      request.dry_run() ? " (dry run)" : "");
  if (writer_ == nullptr) {
    Launch(std::move(op));
    return;
  }
  // The audit record goes to disk first; only then is any agent asked. A
  // request that cannot be recorded is refused: nothing unaudited moves a
  // clock.
  auto refuse = [op](const absl::Status& why) {
    Log(LogLevel::kError, "%s refused: the audit log cannot be written: %s",
        op->request_id, why.message());
    op->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            absl::StrCat("the resync audit log cannot be "
                                         "written, so no node was asked: ",
                                         why.message())),
               {});
  };
  absl::Status queued = writer_->Enqueue(
      [op, asked](Store& store) -> absl::Status {
        absl::StatusOr<int64_t> id =
            store.BeginResync(op->request.requested_by(), op->request,
                              op->request_id, op->started, asked);
        if (!id.ok()) return id.status();
        op->audit_id = *id;
        return absl::OkStatus();
      },
      [this, op, refuse](const absl::Status& written) {
        if (!written.ok()) {
          refuse(written);
          return;
        }
        Launch(op);
      });
  if (!queued.ok()) refuse(queued);
}

void ControllerCore::Launch(std::shared_ptr<Operation> op) {
  absl::ReleasableMutexLock lock(&mu_);
  int budget = std::max(1, options_.resync.nodes_per_second / 10);
  Advance(*op, clock_->Now(), &budget);
  if (!op->request.dry_run()) {
    Log(LogLevel::kInfo, "%s: on record; %d nodes asked, %d in later waves",
        op->request_id, op->pending.size(), op->queued.size());
  }
  if (!op->pending.empty() || !op->queued.empty()) {
    operations_[op->request_id] = std::move(op);
    return;
  }
  Completed completed = Complete(*op);
  lock.Release();
  Deliver(std::move(completed));
}

void ControllerCore::Advance(Operation& op, absl::Time now, int* budget) {
  for (auto it = op.pending.begin(); it != op.pending.end();) {
    if (now < it->second.deadline) {
      ++it;
      continue;
    }
    v1::NodeResyncResult& r = op.results.emplace_back();
    r.set_node(it->second.node);
    r.mutable_result()->set_request_id(op.request_id);
    r.mutable_result()->set_outcome(v1::RESYNC_OUTCOME_TIMED_OUT);
    r.mutable_result()->set_error(absl::StrFormat(
        "no answer within %s", absl::FormatDuration(op.deadline)));
    it = op.pending.erase(it);
  }
  v1::ControllerMessage m;
  *m.mutable_resync() = op.command;
  while (!op.queued.empty() && *budget > 0) {
    const Registry::Target t = std::move(op.queued.front());
    op.queued.pop_front();
    auto stream = streams_.find(t.connection);
    if (stream == streams_.end()) {
      v1::NodeResyncResult& r = op.results.emplace_back();
      r.set_node(t.node);
      r.mutable_result()->set_request_id(op.request_id);
      r.mutable_result()->set_outcome(v1::RESYNC_OUTCOME_NOT_CONNECTED);
      r.mutable_result()->set_error("its stream ended before it was asked");
      continue;
    }
    --*budget;
    op.pending[t.connection] = {t.node, now + op.deadline};
    stream->second->Send(m);
  }
}

void ControllerCore::OnResyncResult(uint64_t connection,
                                    const v1::ResyncResult& result) {
  absl::ReleasableMutexLock lock(&mu_);
  auto it = operations_.find(result.request_id());
  if (it == operations_.end()) return;  // late: the operation already timed out
  Operation& op = *it->second;
  auto p = op.pending.find(connection);
  if (p == op.pending.end()) return;
  v1::NodeResyncResult r;
  r.set_node(p->second.node);
  *r.mutable_result() = result;
  op.results.push_back(std::move(r));
  op.pending.erase(p);
  if (!op.pending.empty() || !op.queued.empty()) return;
  Completed completed = Complete(op);
  lock.Release();
  Deliver(std::move(completed));
}

ControllerCore::Completed ControllerCore::Complete(Operation& op) {
  // Whatever is left (at shutdown) did not answer in time.
  for (const auto& [connection, pending] : op.pending) {
    v1::NodeResyncResult& r = op.results.emplace_back();
    r.set_node(pending.node);
    r.mutable_result()->set_request_id(op.request_id);
    r.mutable_result()->set_outcome(v1::RESYNC_OUTCOME_TIMED_OUT);
    r.mutable_result()->set_error(absl::StrFormat(
        "no answer within %s", absl::FormatDuration(op.deadline)));
  }
  op.pending.clear();
  for (const Registry::Target& t : op.queued) {
    v1::NodeResyncResult& r = op.results.emplace_back();
    r.set_node(t.node);
    r.mutable_result()->set_request_id(op.request_id);
    r.mutable_result()->set_outcome(v1::RESYNC_OUTCOME_NOT_CONNECTED);
    r.mutable_result()->set_error("the controller stopped before asking it");
  }
  op.queued.clear();
  for (const v1::NodeResyncResult& r : op.results) {
    ++counters_.node_results[v1::ResyncOutcome_Name(r.result().outcome())];
  }
  ++counters_.requests;
  Completed completed;
  completed.finish = std::move(op.finish);
  completed.response.set_request_id(op.request_id);
  completed.audit_id = op.audit_id;
  completed.results = std::move(op.results);
  operations_.erase(op.request_id);  // `op` may be gone after this line
  return completed;
}

void ControllerCore::Deliver(Completed completed) {
  std::vector<v1::NodeResyncResult>& results = completed.results;
  std::sort(results.begin(), results.end(),
            [](const v1::NodeResyncResult& a, const v1::NodeResyncResult& b) {
              return a.node() < b.node();
            });
  completed.response.mutable_results()->Reserve(
      static_cast<int>(results.size()));
  for (const v1::NodeResyncResult& r : results) {
    *completed.response.add_results() = r;
  }
  if (writer_ == nullptr || completed.audit_id == 0) {
    completed.finish(grpc::Status::OK, completed.response);
    return;
  }
  // Recorded before the caller hears of it: an answered resync is audited.
  auto shared = std::make_shared<Completed>(std::move(completed));
  absl::Status queued = writer_->Enqueue(
      [shared](Store& store) {
        return store.FinishResync(shared->audit_id, shared->results);
      },
      [shared](const absl::Status& written) {
        if (!written.ok()) {
          Log(LogLevel::kError, "%s: results not recorded: %s",
              shared->response.request_id(), written.message());
        }
        shared->finish(grpc::Status::OK, shared->response);
      });
  if (!queued.ok()) {
    // The request itself is on disk; its results will read INTERRUPTED.
    Log(LogLevel::kError, "%s: results not recorded: %s",
        shared->response.request_id(), queued.message());
    shared->finish(grpc::Status::OK, shared->response);
  }
}

void ControllerCore::UpdateCrosscheckMesh(const v1::Fleet& fleet) {
  if (!crosscheck_.enabled()) return;
  std::vector<crosscheck::MeshNode> eligible;
  for (const v1::Node& n : fleet.nodes()) {
    // A name two agents claim is left out: which of them a probe reaches
    // is anyone's guess.
    if (n.connection() != v1::CONNECTION_STATE_CONNECTED ||
        n.duplicate_name() || n.hello().ntp_port() == 0) {
      continue;
    }
    std::optional<std::string> address =
        options_.probe_address
            ? options_.probe_address(n)
            : crosscheck::ProbeAddress(n.peer(), n.hello().ntp_port());
    if (address.has_value()) eligible.push_back({n.name(), *address});
  }
  const size_t count = eligible.size();
  const std::vector<std::pair<std::string, v1::ProbeAssignment>> changed =
      crosscheck_.UpdateMesh(std::move(eligible), clock_->Now());
  if (changed.empty()) return;
  Log(LogLevel::kInfo,
      "crosscheck: mesh of %d nodes, %d probes each; %d assignments sent",
      count, options_.crosscheck.probes, changed.size());
  // Every live stream of every changed name, found in one pass.
  v1::NodeSelector selector;
  for (const auto& [node, assignment] : changed) selector.add_names(node);
  absl::StatusOr<Registry::Selection> selection = registry_->Select(selector);
  if (!selection.ok()) return;
  std::map<std::string, const v1::ProbeAssignment*> by_name;
  for (const auto& [node, assignment] : changed) by_name[node] = &assignment;
  absl::MutexLock lock(&mu_);
  for (const Registry::Target& t : selection->connected) {
    const auto stream = streams_.find(t.connection);
    if (stream == streams_.end()) continue;
    v1::ControllerMessage m;
    *m.mutable_probes() = *by_name[t.node];
    stream->second->Send(m);
  }
}

void ControllerCore::OnAgentHello(uint64_t connection,
                                  const std::string& node) {
  // Read under mu_, which the housekeeper holds to send a new mesh's
  // assignments (after the hub has it): read outside it, an old assignment
  // could reach this agent after the new one and stay.
  absl::MutexLock lock(&mu_);
  std::optional<v1::ProbeAssignment> assignment =
      crosscheck_.AssignmentFor(node);
  if (!assignment.has_value()) return;
  v1::ControllerMessage m;
  *m.mutable_probes() = *std::move(assignment);
  const auto stream = streams_.find(connection);
  if (stream != streams_.end()) stream->second->Send(m);
}

absl::Status ControllerCore::OnProbeReport(const std::string& node,
                                           const v1::ProbeReport& report) {
  return crosscheck_.Accept(node, report, clock_->Now());
}

bool ControllerCore::SolveCrosscheck(bool force) {
  if (!crosscheck_.enabled()) return false;
  const absl::Time now = clock_->Now();
  const std::shared_ptr<const v1::Fleet> fleet = Fleet();
  // Every call (each second), solve or not: when each node entered its sync
  // state, so that a solve leaves out probes that predate it.
  std::vector<absl::Time> state_since(fleet->nodes_size());
  for (int i = 0; i < fleet->nodes_size(); ++i) {
    const v1::Node& n = fleet->nodes(i);
    state_since[i] = crosscheck_.StateSince(
        n.name(),
        n.has_status() ? n.status().state() : v1::SYNC_STATE_UNSPECIFIED, now);
  }
  if (!force && !crosscheck_.SolveDue(now)) return false;
  // Forgotten names' states are dropped at a solve, not every second.
  absl::flat_hash_set<std::string> names;
  names.reserve(fleet->nodes_size());
  for (const v1::Node& n : fleet->nodes()) names.insert(n.name());
  crosscheck_.ForgetStatesExcept(names);
  std::vector<crosscheck::NodeInput> nodes;
  nodes.reserve(fleet->nodes_size());
  for (int i = 0; i < fleet->nodes_size(); ++i) {
    const v1::Node& n = fleet->nodes(i);
    // Sorted by name: a duplicated name's entries are adjacent; the first
    // stands for the name.
    if (!nodes.empty() && nodes.back().name == n.name()) continue;
    crosscheck::NodeInput& in = nodes.emplace_back();
    in.name = n.name();
    in.server = n.hello().role() == v1::ROLE_SERVER;
    in.state_since = state_since[i];
    if (!n.has_status()) continue;
    in.state = n.status().state();
    // A STALE or DISCONNECTED node's report is old: not compared.
    if (n.connection() != v1::CONNECTION_STATE_CONNECTED) continue;
    in.reported = absl::ToDoubleSeconds(FromProto(n.status().offset()));
    if (n.status().has_error_bound()) {
      in.bound = absl::ToDoubleSeconds(FromProto(n.status().error_bound()));
    }
  }
  const std::shared_ptr<const crosscheck::Solution> before =
      crosscheck_.Latest();
  crosscheck_.Solve(std::move(nodes), now);
  const std::shared_ptr<const crosscheck::Solution> after =
      crosscheck_.Latest();
  // The flagged set, logged when it changes.
  auto flagged = [](const std::shared_ptr<const crosscheck::Solution>& s) {
    std::vector<std::string> names;
    if (s == nullptr) return names;
    for (const crosscheck::NodeResult& r : s->nodes) {
      if (r.flagged) names.push_back(r.name);
    }
    return names;
  };
  const std::vector<std::string> now_flagged = flagged(after);
  if (now_flagged != flagged(before)) {
    Log(now_flagged.empty() ? LogLevel::kInfo : LogLevel::kWarning,
        "crosscheck: %d node(s) flagged (report and the mesh's measurement "
        "disagree beyond the node's bound)%s%s",
        now_flagged.size(), now_flagged.empty() ? "" : ": ",
        absl::StrJoin(
            now_flagged.begin(),
            now_flagged.begin() + std::min<size_t>(now_flagged.size(), 20),
            ", "));
  }
  return true;
}

void ControllerCore::CrosscheckLoop() {
  while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
    SolveCrosscheck();
  }
}

void ControllerCore::ApplyCrosscheck(const crosscheck::Solution& s,
                                     v1::Fleet* fleet) {
  absl::flat_hash_map<absl::string_view, const crosscheck::NodeResult*> found;
  found.reserve(s.measured_count);
  for (const crosscheck::NodeResult& r : s.nodes) {
    if (r.measured) found.emplace(r.name, &r);
  }
  uint32_t flagged = 0;
  for (v1::Node& n : *fleet->mutable_nodes()) {
    const auto it = found.find(n.name());
    if (it == found.end()) continue;
    *n.mutable_crosscheck() = crosscheck::ToProto(*it->second, s.as_of);
    if (it->second->flagged) ++flagged;
  }
  if (s.p50.has_value()) {
    SetDuration(absl::Seconds(*s.p50), fleet->mutable_mesh_skew_p50());
    SetDuration(absl::Seconds(*s.p99), fleet->mutable_mesh_skew_p99());
    SetDuration(absl::Seconds(*s.max), fleet->mutable_mesh_skew_max());
  }
  fleet->set_crosscheck_flagged_count(flagged);
}

v1::CrosscheckResponse ControllerCore::CrosscheckAnswer() const {
  v1::CrosscheckResponse r;
  if (const std::shared_ptr<const crosscheck::Solution> s =
          crosscheck_.Latest()) {
    r = crosscheck::ToProto(*s);
  }
  SetDuration(options_.crosscheck.interval, r.mutable_interval());
  r.set_probes_per_node(
      static_cast<uint32_t>(std::max(0, options_.crosscheck.probes)));
  return r;
}

void ControllerCore::Housekeep() {
  SkewDownsampler downsampler;
  absl::Time last_seen_flush = clock_->Now();
  absl::Time last_prune = absl::InfinitePast();
  absl::Time last_mesh_check = absl::InfinitePast();  // real time
  while (!stop_.WaitForNotificationWithTimeout(kHousekeepingTick)) {
    const absl::Time now = clock_->Now();
    // Resyncs: overdue nodes time out, the next wave is asked.
    std::vector<Completed> done;
    {
      absl::MutexLock lock(&mu_);
      int budget = std::max(1, options_.resync.nodes_per_second / 10);
      std::vector<Operation*> finished;
      for (auto& [id, op] : operations_) {
        Advance(*op, now, &budget);
        if (op->pending.empty() && op->queued.empty()) {
          finished.push_back(op.get());
        }
      }
      for (Operation* op : finished) done.push_back(Complete(*op));
    }
    for (Completed& c : done) Deliver(std::move(c));

    // Outside mu_: Snapshot() may build, and watchers' reactors take mu_ (via
    // RemoveWatcher) on their own threads.
    const std::shared_ptr<const FleetSnapshot> snapshot =
        Snapshot(/*builder=*/true);
    const std::shared_ptr<const v1::Fleet>& fleet = snapshot->taken.fleet;
    bool fresh;
    {
      absl::MutexLock lock(&mu_);
      fresh = fleet != last_fleet_;
      if (fresh) last_fleet_ = fleet;
      for (FleetWatcher* w : watchers_) {
        if (!fresh) {
          w->Flush(absl::Now());
        } else {
          w->Push(w->summary() ? snapshot->summary : fleet, absl::Now());
        }
      }
    }
    // The crosscheck's mesh follows the fleet, checked once a second (it is
    // recomputed at most once per CrosscheckOptions.mesh_debounce).
    if (crosscheck_.enabled() &&
        absl::Now() - last_mesh_check >= absl::Seconds(1)) {
      last_mesh_check = absl::Now();
      UpdateCrosscheckMesh(*fleet);
    }
    if (store_ == nullptr || !fresh) continue;
    if (std::optional<v1::SkewPoint> point = downsampler.Add(*fleet)) {
      Write([point = *point](Store& store) { return store.AppendSkew(point); });
    }
    if (now - last_seen_flush >= absl::Seconds(10)) {
      std::vector<std::pair<std::string, absl::Time>> seen;
      for (const v1::Node& n : fleet->nodes()) {
        if (n.connection() == v1::CONNECTION_STATE_CONNECTED) {
          seen.emplace_back(n.name(), FromProto(n.last_seen()));
        }
      }
      Write([seen = std::move(seen)](Store& store) {
        return store.UpdateLastSeen(seen);
      });
      last_seen_flush = now;
    }
    if (now - last_prune >= absl::Hours(1)) {
      Write([cutoff = now - kHistoryRetention](Store& store) {
        return store.PruneHistory(cutoff).status();
      });
      last_prune = now;
    }
  }
}

// --------------------------------------------------------------------------------------------
// Services.

AgentServiceImpl::AgentServiceImpl(ControllerCore* core, int queues)
    : core_(core), queue_count_(std::max(1, queues)) {}

AgentServiceImpl::~AgentServiceImpl() { Shutdown(); }

void AgentServiceImpl::AddTo(grpc::ServerBuilder& builder) {
  builder.RegisterService(&service_);
  for (int i = 0; i < queue_count_; ++i) {
    queues_.push_back(builder.AddCompletionQueue());
  }
}

void AgentServiceImpl::Start() {
  {
    absl::MutexLock lock(&mu_);
    accepting_ = true;
  }
  for (const auto& cq : queues_) {
    // A few calls waiting per queue, so that a fleet connecting at once is
    // taken in without waiting for each accept to be handled.
    for (int i = 0; i < 4; ++i) Await(cq.get());
    threads_.emplace_back([this, cq = cq.get()] { Serve(cq); });
  }
}

bool AgentServiceImpl::Await(grpc::ServerCompletionQueue* cq) {
  absl::MutexLock lock(&mu_);
  if (!accepting_) return false;
  ++streams_;
  new ControllerCore::AgentStream(core_, this, &service_,
                                  cq);  // deletes itself
  return true;
}

void AgentServiceImpl::Gone() {
  absl::MutexLock lock(&mu_);
  --streams_;
}

void AgentServiceImpl::Serve(grpc::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    auto* t = static_cast<ControllerCore::AgentStream::Tag*>(tag);
    t->stream->Proceed(t->op, ok, cq);
  }
}

void AgentServiceImpl::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  {
    absl::MutexLock lock(&mu_);
    accepting_ = false;
    // The server has ended every call: each stream's operations complete and
    // it deletes itself (a waiting one is told the server is gone). Only then
    // are the queues shut down: a handler may still start an operation (a
    // Finish after a failed read), and a shut-down queue takes none.
    if (!threads_.empty() &&
        !mu_.AwaitWithTimeout(absl::Condition(
                                  +[](int* n) { return *n == 0; }, &streams_),
                              kShutdownWait)) {
      Log(LogLevel::kError,
          "%d agent streams still open %s after the server stopped; not "
          "waiting for them",
          streams_, absl::FormatDuration(kShutdownWait));
      // Left running, as are their queues (destroying a queue with work on
      // it aborts): the process is about to end.
      for (std::thread& t : threads_) t.detach();
      threads_.clear();
      for (auto& cq : queues_) (void)cq.release();
      return;
    }
  }
  // Nothing is outstanding any more: Next() returns false at once.
  for (const auto& cq : queues_) cq->Shutdown();
  if (threads_.empty()) {  // never started: drained here
    for (const auto& cq : queues_) Serve(cq.get());
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

namespace {

// The caller of a FleetService call, if it may do `p`; otherwise finishes the
// call with the refusal and returns nullopt.
std::optional<Caller> Admit(ControllerCore* core,
                            grpc::CallbackServerContext* context,
                            grpc::ServerUnaryReactor* reactor, Permission p,
                            const char* method) {
  absl::StatusOr<Caller> caller = core->authz().Identify(
      context->auth_context().get(), context->peer(), method);
  absl::Status allowed =
      caller.ok() ? core->authz().Allow(*caller, p, method) : caller.status();
  if (!allowed.ok()) {
    reactor->Finish(ToGrpcStatus(allowed));
    return std::nullopt;
  }
  return *std::move(caller);
}

void SetNanos(int64_t ns, google::protobuf::Duration* out) {
  SetDuration(absl::Nanoseconds(ns), out);
}

void SetPoint(const NodeBucket& b, v1::NodePoint* p) {
  SetTimestamp(absl::FromUnixSeconds(b.start_s), p->mutable_time());
  if (b.has_offset) {
    SetNanos(b.offset_min_ns, p->mutable_offset_min());
    SetNanos(b.offset_max_ns, p->mutable_offset_max());
    SetNanos(b.offset_last_ns, p->mutable_offset_last());
  }
  if (b.has_error_bound) SetNanos(b.error_max_ns, p->mutable_max_error_bound());
  p->set_max_stratum(b.stratum_max);
  p->set_worst_state(static_cast<v1::SyncState>(b.state_worst));
  p->set_reports(b.reports);
}

// History of request.node() over [start, end]: the stored buckets of the
// tier NodeHistory::ChooseWidth picks, then the bucket still filling in
// memory (merged into the last stored one when a clean restart wrote part
// of it).
grpc::Status NodeHistoryInto(ControllerCore& core,
                             const v1::HistoryRequest& request,
                             absl::Time start, absl::Time end,
                             v1::HistoryResponse* response) {
  const NodeHistory* history = core.options().node_history;
  if (core.store() == nullptr || history == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "this controller keeps no per-node history (no "
                        "store, or --node-history-retention=0,0,0)");
  }
  const std::string& node = request.node();
  // Known: in the fleet now (the shared snapshot, sorted by name), or in the
  // history store (a node forgotten since).
  const std::shared_ptr<const v1::Fleet> fleet = core.Fleet();
  const auto& nodes = fleet->nodes();
  const auto found =
      std::lower_bound(nodes.begin(), nodes.end(), node,
                       [](const v1::Node& n, const std::string& name) {
                         return n.name() < name;
                       });
  if (found == nodes.end() || found->name() != node) {
    absl::StatusOr<bool> stored = core.store()->HasNodeHistory(node);
    if (!stored.ok()) return ToGrpcStatus(stored.status());
    if (!*stored) {
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrFormat("no node named '%s' has ever reported to this "
                          "controller (ntpfleetctl status lists the nodes)",
                          node));
    }
  }
  const absl::Time now = core.clock().Now();
  const int64_t width =
      history->ChooseWidth(start, end, now, FromProto(request.resolution()));
  if (width == 0) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "every tier of the per-node history is turned off "
                        "(--node-history-retention=0,0,0)");
  }
  absl::StatusOr<std::vector<NodeBucket>> buckets =
      core.store()->NodeHistory(node, width, start, end, kMaxNodePoints);
  if (!buckets.ok()) return ToGrpcStatus(buckets.status());
  std::optional<NodeBucket> open = history->OpenBucket(node, width);
  if (open.has_value() && absl::FromUnixSeconds(open->start_s) >= start &&
      absl::FromUnixSeconds(open->start_s) <= end) {
    if (!buckets->empty() && buckets->back().start_s == open->start_s) {
      MergeNodeBucket(*open, &buckets->back());
    } else {
      if (buckets->size() == kMaxNodePoints) buckets->erase(buckets->begin());
      buckets->push_back(*open);
    }
  } else {
    open.reset();
  }
  for (const NodeBucket& b : *buckets) SetPoint(b, response->add_node_points());
  if (open.has_value()) {
    response->mutable_node_points()->rbegin()->set_open(true);
  }
  SetDuration(absl::Seconds(width), response->mutable_resolution());
  return grpc::Status::OK;
}

}  // namespace

grpc::ServerUnaryReactor* FleetServiceImpl::GetFleet(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  auto* reactor = context->DefaultReactor();
  if (!Admit(core_, context, reactor, Permission::kView, "GetFleet")) {
    return reactor;
  }
  std::vector<grpc::Slice> slices;
  v1::GetFleetRequest parsed;
  std::string bytes;
  if (request->Dump(&slices).ok()) {
    for (const grpc::Slice& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  if (!parsed.ParseFromString(bytes)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "GetFleetRequest does not parse"));
    return reactor;
  }
  grpc::Slice encoded = core_->EncodedFleet(parsed.summary());
  grpc::ByteBuffer buffer(&encoded, 1);
  response->Swap(&buffer);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<v1::Fleet>* FleetServiceImpl::WatchFleet(
    grpc::CallbackServerContext* context,
    const v1::WatchFleetRequest* request) {
  absl::StatusOr<Caller> caller = core_->authz().Identify(
      context->auth_context().get(), context->peer(), "WatchFleet");
  absl::Status allowed =
      caller.ok()
          ? core_->authz().Allow(*caller, Permission::kView, "WatchFleet")
          : caller.status();
  if (!allowed.ok()) {
    // A write reactor that only says no.
    class Refusal final : public grpc::ServerWriteReactor<v1::Fleet> {
     public:
      explicit Refusal(const grpc::Status& status) { Finish(status); }
      void OnDone() override { delete this; }
    };
    return new Refusal(ToGrpcStatus(allowed));
  }
  absl::Duration interval = FromProto(request->min_interval());
  if (interval <= absl::ZeroDuration()) interval = absl::Seconds(1);
  return new ControllerCore::FleetWatcher(core_, interval, request->summary());
}

grpc::ServerUnaryReactor* FleetServiceImpl::GetNode(
    grpc::CallbackServerContext* context, const v1::GetNodeRequest* request,
    v1::Node* response) {
  auto* reactor = context->DefaultReactor();
  if (!Admit(core_, context, reactor, Permission::kView, "GetNode")) {
    return reactor;
  }
  // The node as the fleet shows it (deviation and the flag need the whole
  // fleet): found in the shared snapshot, sorted by name.
  const std::shared_ptr<const v1::Fleet> fleet = core_->Fleet();
  const auto& nodes = fleet->nodes();
  const auto node =
      std::lower_bound(nodes.begin(), nodes.end(), request->name(),
                       [](const v1::Node& n, const std::string& name) {
                         return n.name() < name;
                       });
  if (node == nodes.end() || node->name() != request->name()) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrFormat("no node named '%s' has ever reported to this "
                        "controller",
                        request->name())));
    return reactor;
  }
  *response = *node;
  // Never out: with it, a Hello could pass for this agent's own reconnect.
  response->mutable_hello()->clear_instance_id();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* FleetServiceImpl::Resync(
    grpc::CallbackServerContext* context, const v1::ResyncRequest* request,
    v1::ResyncResponse* response) {
  auto* reactor = context->DefaultReactor();
  std::optional<Caller> caller = Admit(
      core_, context, reactor,
      request->selector().all() ? Permission::kResyncAll : Permission::kResync,
      "Resync");
  if (!caller) return reactor;
  if (request->force()) {
    if (absl::Status s =
            core_->authz().Allow(*caller, Permission::kForce, "Resync");
        !s.ok()) {
      reactor->Finish(ToGrpcStatus(s));
      return reactor;
    }
  }
  core_->Resync(*request, *caller,
                [reactor, response](const grpc::Status& status,
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
  if (!Admit(core_, context, reactor, Permission::kView, "History")) {
    return reactor;
  }
  if (core_->store() == nullptr) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "no history store"));
    return reactor;
  }
  const absl::Time now = core_->clock().Now();
  const absl::Time end = request->has_end() ? FromProto(request->end()) : now;
  const absl::Time start =
      request->has_start() ? FromProto(request->start()) : end - absl::Hours(1);
  if (!request->node().empty()) {
    reactor->Finish(NodeHistoryInto(*core_, *request, start, end, response));
    return reactor;
  }
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

grpc::ServerUnaryReactor* FleetServiceImpl::Forget(
    grpc::CallbackServerContext* context, const v1::ForgetRequest* request,
    v1::ForgetResponse*) {
  auto* reactor = context->DefaultReactor();
  std::optional<Caller> caller =
      Admit(core_, context, reactor, Permission::kForget, "Forget");
  if (!caller) return reactor;
  if (absl::Status s = core_->registry().Forget(request->name()); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  Log(LogLevel::kInfo, "%s forgot node %s", caller->ToString(),
      request->name());
  if (core_->writer() == nullptr) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  // Answered once the inventory no longer has it (or could not be written).
  absl::Status queued = core_->writer()->Enqueue(
      [name = request->name()](Store& store) {
        absl::Status s = store.ForgetNode(name);
        return absl::IsNotFound(s) ? absl::OkStatus() : s;
      },
      [reactor](const absl::Status& written) {
        reactor->Finish(ToGrpcStatus(written));
      });
  if (!queued.ok()) reactor->Finish(ToGrpcStatus(queued));
  return reactor;
}

grpc::ServerUnaryReactor* FleetServiceImpl::Audit(
    grpc::CallbackServerContext* context, const v1::AuditRequest* request,
    v1::AuditResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!Admit(core_, context, reactor, Permission::kView, "Audit")) {
    return reactor;
  }
  if (core_->store() == nullptr) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "no audit store"));
    return reactor;
  }
  const absl::Time since = request->has_since()
                               ? FromProto(request->since())
                               : core_->clock().Now() - absl::Hours(24);
  const size_t limit =
      request->limit() == 0 ? 100 : std::min<size_t>(request->limit(), 10000);
  absl::StatusOr<std::vector<v1::AuditRecord>> records =
      core_->store()->Audit(since, limit);
  if (!records.ok()) {
    reactor->Finish(ToGrpcStatus(records.status()));
    return reactor;
  }
  for (v1::AuditRecord& r : *records) *response->add_records() = std::move(r);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* FleetServiceImpl::Crosscheck(
    grpc::CallbackServerContext* context, const v1::CrosscheckRequest*,
    v1::CrosscheckResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!Admit(core_, context, reactor, Permission::kView, "Crosscheck")) {
    return reactor;
  }
  *response = core_->CrosscheckAnswer();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace ntpfleet::controller
