// The controller's gRPC services, as thin adapters over the Registry and the
// Store, on gRPC's callback API (a reactor per RPC, no thread per stream):
//
// - AgentService.Connect: one bidirectional stream per agent (Hello,
// SyncStatus, ResyncResult
//   in; Resync out).
// - FleetService: GetFleet, WatchFleet (server stream), GetNode, Resync
// (parallel fan-out with a
//   deadline; every selected node gets a result: ok/failed/timed out/not
//   connected), History.
//
// Fleet snapshots: GetFleet, GetNode, WatchFleet and /metrics all read one
// shared immutable snapshot (Fleet()), rebuilt only when the registry changed
// or its time-dependent states (STALE) or age (1 s) ran out — and, for a
// large fleet whose agents change it all the time, at most once per ten times
// the cost of the last build, so building full snapshots is held to about a
// tenth of the time however many agents report (more once a build takes over
// 0.1 s: at least one a second). A report is therefore visible after at
// most about that interval (measured by bench/controller_scale.sh). When a
// build costs more than a few milliseconds, only the housekeeper builds and a
// reader is served the latest snapshot at once (never older than 1 s); and
// for a minute after a summary was asked for, the housekeeper derives one with
// every snapshot, so `ntpfleetctl status` on a large fleet waits for neither.
//
// A housekeeping thread, every 100 ms, expires resyncs at their deadline,
// offers a new snapshot to watchers and downsamples skew into the store's
// history.
#ifndef NTPFLEET_CONTROLLER_SERVICE_H_
#define NTPFLEET_CONTROLLER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controller/authz.h"
#include "controller/node_history.h"
#include "controller/registry.h"
#include "controller/store.h"
#include "controller/store_writer.h"
#include "google/protobuf/arena.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::controller {

// What /metrics reports besides the fleet.
struct ResyncCounters {
  uint64_t requests = 0;
  std::map<std::string, uint64_t> node_results;  // outcome name -> count
};

// How resyncs are held in check (issue #10 "Resync safety"; docs/SECURITY.md).
struct ResyncPolicy {
  // The largest step an operator's resync may make (and an admin's without
  // --force): the RFC 5905 step threshold, beyond which ntpd would step.
  absl::Duration operator_max_step = absl::Milliseconds(128);
  // A node resynced less than this ago is not asked again (RATE_LIMITED).
  absl::Duration min_interval = absl::Seconds(5);
  // Nodes asked per second, spread over housekeeping ticks (100 ms). Each
  // resync makes an agent send a burst of 4 requests, 2 s apart, to each of
  // its servers: the fleet's NTP server then sees at most about rate / 10
  // requests at once per tick and 2 x rate requests per second on average,
  // far below the ~60 000 per second that chronyd, NTPsec and ntpfleet
  // answer without loss on one core (docs/BENCHMARKS.md).
  int nodes_per_second = 1000;
};

struct ControllerOptions {
  // TLS on (mutual): callers are identified by their certificates. Off: every
  // caller is trusted (loopback only, or --insecure).
  bool tls = false;
  ResyncPolicy resync;
  // Agent streams open at once beyond which a new one is refused
  // (RESOURCE_EXHAUSTED).
  int max_agent_streams = 20000;
  // The store writer's queue (StoreWriter).
  size_t write_queue = 10000;
  // Per-node history for FleetService.History with a node (null: none kept;
  // not owned).
  const NodeHistory* node_history = nullptr;
};

class ControllerCore {
 public:
  // `store` may be null (tests without persistence). With a store, every write
  // goes through one StoreWriter thread, never a gRPC callback thread.
  ControllerCore(const clock::Clock* clock, Registry* registry, Store* store,
                 ControllerOptions options = {});
  ~ControllerCore();

  void Start();  // the housekeeping thread
  void Stop();

  Registry& registry() { return *registry_; }
  Store* store() { return store_; }
  StoreWriter* writer() { return writer_.get(); }  // null without a store
  Authorizer& authz() { return authz_; }
  const ControllerOptions& options() const { return options_; }
  const clock::Clock& clock() const { return *clock_; }

  // Agent streams: a slot is taken before the Hello is read; false when
  // max_agent_streams are open (the stream is then refused).
  bool TakeStreamSlot();
  void ReleaseStreamSlot();

  // Streams, by connection id.
  class AgentStream;
  void Attach(uint64_t connection, AgentStream* stream);
  void Detach(uint64_t connection);
  void OnResyncResult(uint64_t connection, const v1::ResyncResult& result);

  // Resync fan-out for an authorised `caller` (the service checked the role;
  // this applies the step limit, the per-node rate limit and the waves);
  // records the request in the audit log BEFORE any agent is asked (a request
  // that cannot be recorded is refused), and calls `finish` exactly once,
  // after the results are recorded too.
  void Resync(
      const v1::ResyncRequest& request, const Caller& caller,
      std::function<void(const grpc::Status&, const v1::ResyncResponse&)>
          finish);

  class FleetWatcher;
  void AddWatcher(FleetWatcher* watcher);
  void RemoveWatcher(FleetWatcher* watcher);

  // The fleet as GetFleet serves it (see the top of this file); `summary`:
  // with SummarizeFleet's trimmed peer rows, derived once per snapshot. Never
  // null.
  std::shared_ptr<const v1::Fleet> Fleet(bool summary = false);
  // Fleet(summary) serialized, as GetFleet sends it: once per snapshot, then
  // shared by every caller (a slice is reference-counted, not copied).
  grpc::Slice EncodedFleet(bool summary);
  // The snapshot the housekeeper last offered to watchers (empty before its
  // first turn). Never null.
  std::shared_ptr<const v1::Fleet> LastFleet() const;
  ResyncCounters Counters() const;

 private:
  struct Operation;
  // A finished resync, to be recorded and answered without mu_ held.
  struct Completed;
  void Housekeep();
  // The audit record is on disk: ask the first wave.
  void Launch(std::shared_ptr<Operation> op);
  // Times out `op`'s overdue nodes and asks up to *budget queued ones.
  void Advance(Operation& op, absl::Time now, int* budget)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Completed Complete(Operation& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Deliver(Completed completed);
  void Write(std::function<absl::Status(Store&)> write);

  const clock::Clock* clock_;
  Registry* registry_;
  Store* store_;
  const ControllerOptions options_;
  Authorizer authz_;
  std::unique_ptr<StoreWriter> writer_;
  std::atomic<int> agent_streams_{0};
  std::thread thread_;
  absl::Notification stop_;
  absl::once_flag stop_once_;

  // Snapshots. build_mu_ is held by the one thread building (so concurrent
  // readers build once); snapshot_mu_ only while the pointers are read or
  // swapped, never during a build.
  std::shared_ptr<const v1::Fleet> Snapshot(bool summary, bool housekeeper)
      ABSL_LOCKS_EXCLUDED(snapshot_mu_, build_mu_);
  // Whether `fleet` is younger than `limit` (controller clock; a snapshot
  // from the future, after the clock was stepped back, is not).
  bool Usable(const std::shared_ptr<const v1::Fleet>& fleet, absl::Time now,
              absl::Duration limit) const;
  bool FreshEnough(absl::Time now, absl::Time real_now, bool housekeeper) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(snapshot_mu_);
  absl::Mutex build_mu_ ABSL_ACQUIRED_BEFORE(snapshot_mu_);
  absl::Mutex snapshot_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  Registry::Snapshot snapshot_ ABSL_GUARDED_BY(snapshot_mu_);
  absl::Time last_build_ ABSL_GUARDED_BY(snapshot_mu_) = absl::InfinitePast();
  absl::Duration last_build_cost_ ABSL_GUARDED_BY(snapshot_mu_);
  absl::Duration rebuild_interval_ ABSL_GUARDED_BY(snapshot_mu_);
  // SummarizeFleet(*summary_of_), once asked for; the housekeeper keeps it
  // current until summary_wanted_until_ (real time).
  std::shared_ptr<const v1::Fleet> summary_of_ ABSL_GUARDED_BY(snapshot_mu_);
  std::shared_ptr<const v1::Fleet> summary_ ABSL_GUARDED_BY(snapshot_mu_);
  absl::Time summary_wanted_until_ ABSL_GUARDED_BY(snapshot_mu_) =
      absl::InfinitePast();
  // EncodedFleet's cache: [0] full, [1] summary.
  struct Encoded {
    std::shared_ptr<const v1::Fleet> of;
    grpc::Slice bytes;
  };
  Encoded encoded_[2] ABSL_GUARDED_BY(snapshot_mu_);

  mutable absl::Mutex mu_;
  std::map<uint64_t, AgentStream*> streams_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Operation>> operations_
      ABSL_GUARDED_BY(mu_);
  // When each node was last asked to resync (controller clock), for
  // ResyncPolicy.min_interval.
  std::map<std::string, absl::Time> last_asked_ ABSL_GUARDED_BY(mu_);
  std::set<FleetWatcher*> watchers_ ABSL_GUARDED_BY(mu_);
  int summary_watchers_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<const v1::Fleet> last_fleet_ ABSL_GUARDED_BY(mu_);
  ResyncCounters counters_ ABSL_GUARDED_BY(mu_);
  uint64_t next_request_ ABSL_GUARDED_BY(mu_) = 1;
};

class AgentServiceImpl final : public v1::AgentService::CallbackService {
 public:
  explicit AgentServiceImpl(ControllerCore* core) : core_(core) {}
  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  ControllerCore* core_;
};

// A gRPC message allocator that puts a unary call's request and response on
// one protobuf arena: a response of thousands of nodes is copied from the
// snapshot into arena blocks and freed at once.
template <typename Request, typename Response>
class ArenaMessageAllocator final
    : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override {
    return new Holder;
  }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options()) {
      this->set_request(
          google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(
          google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }

   private:
    static google::protobuf::ArenaOptions Options() {
      google::protobuf::ArenaOptions options;
      options.max_block_size = 4 << 20;
      return options;
    }
    google::protobuf::Arena arena_;
  };
};

// FleetService on the callback API, GetFleet as a raw method: it answers with
// the snapshot's bytes, serialized once (ControllerCore::EncodedFleet).
using FleetServiceBase = v1::FleetService::WithRawCallbackMethod_GetFleet<
    v1::FleetService::WithCallbackMethod_WatchFleet<
        v1::FleetService::WithCallbackMethod_GetNode<
            v1::FleetService::WithCallbackMethod_Resync<
                v1::FleetService::WithCallbackMethod_History<
                    v1::FleetService::WithCallbackMethod_Forget<
                        v1::FleetService::WithCallbackMethod_Audit<
                            v1::FleetService::Service>>>>>>>;

class FleetServiceImpl final : public FleetServiceBase {
 public:
  explicit FleetServiceImpl(ControllerCore* core) : core_(core) {
    SetMessageAllocatorFor_GetNode(&node_allocator_);
  }
  grpc::ServerUnaryReactor* GetFleet(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<v1::Fleet>* WatchFleet(
      grpc::CallbackServerContext* context,
      const v1::WatchFleetRequest* request) override;
  grpc::ServerUnaryReactor* GetNode(grpc::CallbackServerContext* context,
                                    const v1::GetNodeRequest* request,
                                    v1::Node* response) override;
  grpc::ServerUnaryReactor* Resync(grpc::CallbackServerContext* context,
                                   const v1::ResyncRequest* request,
                                   v1::ResyncResponse* response) override;
  grpc::ServerUnaryReactor* History(grpc::CallbackServerContext* context,
                                    const v1::HistoryRequest* request,
                                    v1::HistoryResponse* response) override;
  grpc::ServerUnaryReactor* Forget(grpc::CallbackServerContext* context,
                                   const v1::ForgetRequest* request,
                                   v1::ForgetResponse* response) override;
  grpc::ServerUnaryReactor* Audit(grpc::CallbackServerContext* context,
                                  const v1::AuditRequest* request,
                                  v1::AuditResponse* response) override;

 private:
  ControllerCore* core_;
  ArenaMessageAllocator<v1::GetNodeRequest, v1::Node> node_allocator_;
};

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_SERVICE_H_
