// The controller's gRPC services, as thin adapters over the Registry and the
// Store:
//
// - AgentService.Connect: one bidirectional stream per agent (Hello,
//   SyncStatus, ResyncResult in; Resync out), on gRPC's ASYNC API over several
//   completion queues, one thread each (AgentServiceImpl; why: "Serving
//   design" in docs/CONTROLLER.md).
// - FleetService: GetFleet, WatchFleet (server stream), GetNode, Resync
//   (fan-out in waves with a deadline; every selected node gets a result:
//   ok/failed/timed out/not connected), History, Forget, Audit — on the
//   callback API (a reactor per RPC): a handful of calls from people.
//
// Fleet snapshots (FleetSnapshot): GetFleet, GetNode, WatchFleet and /metrics
// all read one immutable snapshot, built whole (the fleet, its summary, both
// serialized) and then only shared, never changed. The housekeeper, every
// 100 ms, replaces it when it is out of date — the registry changed, a node
// may have turned STALE, or it is older than 1 s — and the last build ended at
// least ControllerOptions.snapshot_interval ago. Readers take the current one
// and never wait for a build. So a report is visible after at most
// snapshot_interval + one tick + one build, and building costs at most build /
// (build + snapshot_interval) of a core however many agents report and people
// read. With a zero interval (the tests) every reader rebuilds first what is
// out of date, so every read sees every change.
//
// A housekeeping thread, every 100 ms, expires resyncs at their deadline,
// asks the next wave, offers the snapshot to watchers and downsamples skew
// into the store's history.
#ifndef NTPFLEET_CONTROLLER_SERVICE_H_
#define NTPFLEET_CONTROLLER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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
#include "controller/crosscheck_hub.h"
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
  // Nodes asked per second, spread over housekeeping ticks (100 ms): a
  // fleet-wide resync of N nodes is asked within N / nodes_per_second seconds.
  // Each resync makes an agent send a burst of 4 requests, 2 s apart, to each
  // of its servers, so at this rate R the fleet's NTP server receives about R
  // requests per second (R / 10 at each tick), and at most 4 R once a fan-out
  // lasts longer than a burst (6 s). At the default 25 000: 100 000 nodes
  // asked in 4 s, the server sees at most 50 000 requests/s from them (two
  // bursts overlap), any larger fleet at most 100 000/s — under half of the
  // 240 000/s one ntpfleet server thread answers with < 1 % loss, and of
  // chronyd's and NTPsec's ~190 000–200 000/s (docs/BENCHMARKS.md, "NTP
  // server throughput"). Lower it (--resync-rate) for a slower server.
  int nodes_per_second = 25000;
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
  // A fleet snapshot is rebuilt no sooner than this (real time) after the last
  // build ended, so fleet views cost at most build / (build + interval) of a
  // core however many agents report and people read; a change shows after at
  // most this plus a housekeeping tick plus one build. Zero: every read that
  // finds the snapshot out of date rebuilds it first (every read sees every
  // change; the tests).
  absl::Duration snapshot_interval = absl::Seconds(1);
  // The crosscheck (docs/CROSSCHECK.md): probes per node, interval.
  CrosscheckOptions crosscheck;
  // Where a node's NTP server is probed (null: crosscheck::ProbeAddress of
  // the stream's peer and Hello.ntp_port). A seam for in-process tests, whose
  // streams have no IP address.
  std::function<std::optional<std::string>(const v1::Node&)> probe_address;
};

// One immutable view of the fleet, built whole and then only shared.
struct FleetSnapshot {
  Registry::Snapshot taken;                  // the fleet, as GetFleet answers
  std::shared_ptr<const v1::Fleet> summary;  // SummarizeFleet(*taken.fleet)
  grpc::Slice fleet_bytes;                   // serialized, as GetFleet sends
  grpc::Slice summary_bytes;
  absl::Time built = absl::InfinitePast();  // real time the build ended
  uint64_t crosscheck_version = 0;          // the solution it shows
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
  CrosscheckHub& crosscheck_hub() { return crosscheck_; }

  // The crosscheck's mesh from the current fleet (the housekeeper, once a
  // second): sends each agent whose targets changed its new assignment.
  void UpdateCrosscheckMesh(const v1::Fleet& fleet);
  // Solves the probe graph with the current fleet's reports when a solve is
  // due (CrosscheckHub::SolveDue), or at once with `force`; the crosscheck's
  // thread, off every lock of the report path. True when it solved.
  bool SolveCrosscheck(bool force = false);
  // A stream's Hello was accepted: the node's current probe assignment, if
  // it has one, goes out on it.
  void OnAgentHello(uint64_t connection, const std::string& node);
  // A ProbeReport from `node`'s stream (CrosscheckHub::Accept).
  absl::Status OnProbeReport(const std::string& node,
                             const v1::ProbeReport& report);
  // The Crosscheck RPC's answer from the latest solution.
  v1::CrosscheckResponse CrosscheckAnswer() const;

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

  // The fleet as GetFleet serves it, from the current snapshot (see the top
  // of this file); `summary`: with SummarizeFleet's trimmed peer rows. Never
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
  // The crosscheck's results on `fleet` (a snapshot being built).
  static void ApplyCrosscheck(const crosscheck::Solution& s, v1::Fleet* fleet);
  void CrosscheckLoop();

  const clock::Clock* clock_;
  Registry* registry_;
  Store* store_;
  const ControllerOptions options_;
  Authorizer authz_;
  std::unique_ptr<StoreWriter> writer_;
  CrosscheckHub crosscheck_;
  std::atomic<int> agent_streams_{0};
  std::thread thread_;
  std::thread crosscheck_thread_;
  absl::Notification stop_;
  absl::once_flag stop_once_;

  // The current snapshot (see the top of this file). A `builder` (the
  // housekeeper; and every reader when snapshot_interval is zero) first
  // rebuilds it if it is out of date and the last build ended at least
  // snapshot_interval ago; anyone else takes it as it is, at once.
  std::shared_ptr<const FleetSnapshot> Snapshot(bool builder)
      ABSL_LOCKS_EXCLUDED(build_mu_);
  // Whether `s` no longer shows the registry: it changed, a node of `s` may
  // have turned STALE, or `s` is older than kMaxSnapshotAge on the controller
  // clock (so that as_of and the history keep moving; a snapshot from the
  // future, after the clock was stepped back, is out of date too).
  bool OutOfDate(const FleetSnapshot& s) const;
  std::shared_ptr<const FleetSnapshot> Build() const;
  // Held by the one thread building; never by a reader that does not build.
  absl::Mutex build_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Never null. Read and replaced whole with std::atomic_load/atomic_store.
  std::shared_ptr<const FleetSnapshot> snapshot_;

  mutable absl::Mutex mu_;
  std::map<uint64_t, AgentStream*> streams_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Operation>> operations_
      ABSL_GUARDED_BY(mu_);
  // When each node was last asked to resync (controller clock), for
  // ResyncPolicy.min_interval.
  std::map<std::string, absl::Time> last_asked_ ABSL_GUARDED_BY(mu_);
  std::set<FleetWatcher*> watchers_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const v1::Fleet> last_fleet_ ABSL_GUARDED_BY(mu_);
  ResyncCounters counters_ ABSL_GUARDED_BY(mu_);
  uint64_t next_request_ ABSL_GUARDED_BY(mu_) = 1;
};

// AgentService.Connect on gRPC's async API, over `queues` completion queues
// with one thread each. Debian's libgrpc (built without NDEBUG) checks every
// completion against a list of all operations outstanding on its queue, by
// linear search; an agent stream keeps two outstanding (its next read, and the
// call's end), so with one queue that list holds two entries per agent. With
// several, each holds its share: the search costs 1/queues as much.
// Why this design: "Serving design" in docs/CONTROLLER.md.
//
//   AgentServiceImpl agents(&core, /*queues=*/4);
//   grpc::ServerBuilder builder;
//   agents.AddTo(builder);  // registers the service, takes its queues
//   std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
//   agents.Start();         // the threads; accepts streams
//   ...
//   server->Shutdown(deadline);
//   agents.Shutdown();      // drains the queues, joins the threads
//
// Thread-safety: AddTo, Start and Shutdown from one thread, in that order.
class AgentServiceImpl final {
 public:
  static constexpr int kDefaultQueues = 4;
  explicit AgentServiceImpl(ControllerCore* core, int queues = kDefaultQueues);
  ~AgentServiceImpl();  // Shutdown()

  AgentServiceImpl(const AgentServiceImpl&) = delete;
  AgentServiceImpl& operator=(const AgentServiceImpl&) = delete;

  // Before builder.BuildAndStart().
  void AddTo(grpc::ServerBuilder& builder);
  // After BuildAndStart(): one thread per queue, each waiting for streams.
  void Start();
  // After the server's Shutdown() (which ends every stream): stops the queues,
  // lets their threads finish what is left, joins them. Idempotent.
  void Shutdown();

  // The queue's thread: waits for a new stream on `cq`. False once shutting
  // down (a shut-down queue takes no new operation).
  bool Await(grpc::ServerCompletionQueue* cq);
  // A stream deleted itself.
  void Gone();

 private:
  void Serve(grpc::ServerCompletionQueue* cq);

  ControllerCore* const core_;
  const int queue_count_;
  v1::AgentService::AsyncService service_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  bool accepting_ ABSL_GUARDED_BY(mu_) = false;
  int streams_ ABSL_GUARDED_BY(mu_) = 0;  // AgentStream objects alive
  bool shut_down_ = false;
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
                            v1::FleetService::WithCallbackMethod_Crosscheck<
                                v1::FleetService::Service>>>>>>>>;

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
  grpc::ServerUnaryReactor* Crosscheck(
      grpc::CallbackServerContext* context,
      const v1::CrosscheckRequest* request,
      v1::CrosscheckResponse* response) override;

 private:
  ControllerCore* core_;
  ArenaMessageAllocator<v1::GetNodeRequest, v1::Node> node_allocator_;
};

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_SERVICE_H_
