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
// A housekeeping thread expires resyncs at their deadline, pushes fleet updates
// to watchers, downsamples skew into the store's history and refreshes the
// metrics snapshot.
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

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "controller/registry.h"
#include "controller/store.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::controller {

// What /metrics reports besides the fleet.
struct ResyncCounters {
  uint64_t requests = 0;
  std::map<std::string, uint64_t> node_results;  // outcome name -> count
};

class ControllerCore {
 public:
  // `store` may be null (tests without persistence).
  ControllerCore(const clock::Clock* clock, Registry* registry, Store* store);
  ~ControllerCore();

  void Start();  // the housekeeping thread
  void Stop();

  Registry& registry() { return *registry_; }
  Store* store() { return store_; }
  const clock::Clock& clock() const { return *clock_; }

  // Streams, by connection id.
  class AgentStream;
  void Attach(uint64_t connection, AgentStream* stream);
  void Detach(uint64_t connection);
  void OnResyncResult(uint64_t connection, const v1::ResyncResult& result);

  // Resync fan-out; calls `finish` exactly once with the response.
  void Resync(
      const v1::ResyncRequest& request,
      std::function<void(const grpc::Status&, const v1::ResyncResponse&)>
          finish);

  class FleetWatcher;
  void AddWatcher(FleetWatcher* watcher);
  void RemoveWatcher(FleetWatcher* watcher);

  // The latest fleet snapshot and resync counters (for /metrics).
  v1::Fleet LastFleet() const;
  ResyncCounters Counters() const;

 private:
  struct Operation;
  void Housekeep();
  void Complete(Operation& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const clock::Clock* clock_;
  Registry* registry_;
  Store* store_;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  mutable absl::Mutex mu_;
  std::map<uint64_t, AgentStream*> streams_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<Operation>> operations_
      ABSL_GUARDED_BY(mu_);
  std::set<FleetWatcher*> watchers_ ABSL_GUARDED_BY(mu_);
  v1::Fleet last_fleet_ ABSL_GUARDED_BY(mu_);
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

class FleetServiceImpl final : public v1::FleetService::CallbackService {
 public:
  explicit FleetServiceImpl(ControllerCore* core) : core_(core) {}
  grpc::ServerUnaryReactor* GetFleet(grpc::CallbackServerContext* context,
                                     const v1::GetFleetRequest* request,
                                     v1::Fleet* response) override;
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

 private:
  ControllerCore* core_;
};

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_SERVICE_H_
