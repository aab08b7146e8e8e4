// The controller's view of the fleet: every node's latest status, when it was
// last heard from and the state of its stream; and the fleet's skew computed
// from those. Soft state, rebuilt from the agents as they (re)connect; the
// inventory it starts from comes from the Store (AddKnownNode).
//
// No gRPC and no IO: the AgentService reactor calls Connect / Report /
// ReportResult / Disconnect as its stream's messages arrive, the FleetService
// reads GetFleet / GetNode / Select and calls Forget. Time comes from two
// injected clocks, so tests drive them:
// - the controller's MONOTONIC clock judges staleness and rate limits (a step
//   of the wall clock makes no node stale or fresh);
// - the wall clock only stamps what people read (Node.last_seen,
//   Fleet.as_of).
//
//   clock::SystemClock clock;
//   clock::SystemMonotonicClock mono;
//   Registry registry(&clock, &mono);
//   absl::StatusOr<uint64_t> conn = registry.Connect(hello,
//   "ipv4:10.0.0.7:5123"); absl::Status s = registry.Report(*conn, status);
//   v1::Fleet fleet = registry.GetFleet();
//   registry.Disconnect(*conn);
//
// What agents send is checked (controller/validate.h) before it is kept: a
// Hello that fails is refused (the stream should end), a status or resync
// result that fails is dropped and counted (the stream may go on). Report and
// ReportResult return:
// - OK: kept;
// - NotFound: the connection is not live (ended, or replaced by a reconnect):
//   the caller should end that stream;
// - InvalidArgument: the message was dropped (it does not count as a sign of
//   life either); the stream may continue.
//
// Limits on Connect (RegistryOptions): at most max_nodes names, and NEW names
// (not in the registry, live or not) at most new_names_per_second on average
// with bursts of new_names_burst. Beyond them Connect returns
// ResourceExhausted; a name the registry already has is always accepted.
//
// Connection rules (the AgentService contract in proto/ntpfleet.proto):
// - A Connect with the node_name AND instance_id of a live connection is the
//   same agent reconnecting: the new stream replaces the old one. The old
//   connection id is dead from then on: Report/Touch on it return NotFound and
//   its Disconnect is a no-op, so a late clean-up of the old stream never
//   touches the new one. (Two empty instance_ids count as the same instance.)
// - The same node_name with a DIFFERENT instance_id while the other is live:
//   both are kept, listed separately, and both have Node.duplicate_name set.
//   Nothing is merged. When one of them disconnects, its entry goes away (the
//   name is still covered by the other) and the flag clears.
// - A name with no live connection (known from the inventory, or whose stream
//   ended) is one DISCONNECTED entry; the next Connect of that name takes it
//   over, whatever its instance_id. Forget removes such a name.
//
// Connection states, computed at read time from the monotonic clock:
// - CONNECTED: a live stream that has sent an accepted message (Hello, status
//   or resync result) within stale_intervals report intervals;
// - STALE: a live stream silent for at least stale_intervals x its report
//   interval (Hello.report_interval: validated, so within 100 ms .. 24 h);
// - DISCONNECTED: known, no stream.
// Because STALE depends only on time, a node turning stale does not bump
// version(): Snapshot.valid_until says when a snapshot goes out of date.
//
// Thread-safety: thread-safe; every method may be called from any thread.
#ifndef NTPFLEET_CONTROLLER_REGISTRY_H_
#define NTPFLEET_CONTROLLER_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::controller {

struct RegistryOptions {
  // Nodes whose offset, or deviation from the fleet's median offset, is beyond
  // this are flagged.
  absl::Duration skew_threshold = absl::Milliseconds(1);
  // A live stream silent for this many report intervals is STALE.
  int stale_intervals = 3;
  // At most this many node names (live or not); a Connect of a new name
  // beyond it is refused (controller flag --max-nodes).
  size_t max_nodes = 100000;
  // New names (never seen, or forgotten) are admitted by a token bucket on the
  // monotonic clock: new_names_per_second on average, new_names_burst at
  // once, so a fleet's first start or a controller restart with an empty
  // inventory gets in at once while a flood of made-up names is slowed down
  // (flags --new-names-per-second, --new-names-burst).
  double new_names_per_second = 50;
  double new_names_burst = 2000;
  // Told every accepted status report: the node's name, the status and the
  // wall clock at its arrival (the per-node history, NodeHistory::Record).
  // Called after each accepted report, outside the registry's lock (so it
  // never holds up other streams' reports); one node's reports come from its
  // one stream, one at a time, so they arrive in order. Must be cheap and
  // never block for long.
  std::function<void(const std::string& node, const v1::SyncStatus& status,
                     absl::Time now)>
      on_report;
};

// Messages refused or dropped, for /metrics.
struct RegistryCounters {
  uint64_t rejected_hellos = 0;    // Connect: ValidateHello failed
  uint64_t rejected_statuses = 0;  // Report: ValidateStatus failed
  uint64_t rejected_results = 0;   // ReportResult: ValidateResyncResult failed
  uint64_t refused_new_names = 0;  // Connect: max_nodes or the new-name rate
};

class Registry {
 public:
  // `clock` (the controller's wall clock, for last_seen and as_of) and
  // `monotonic` (for staleness and the new-name rate) must outlive the
  // registry.
  Registry(const clock::Clock* clock, const clock::MonotonicClock* monotonic,
           RegistryOptions options = {});

  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // A stream opened and sent `hello`; `peer` is its address as gRPC reports
  // it. Returns the new connection's id (never 0); InvalidArgument when the
  // Hello fails ValidateHello (counted in rejected_hellos); ResourceExhausted
  // when the name is new and max_nodes or the new-name rate is reached
  // (counted in refused_new_names). Either way the stream should end. Counts
  // as a message for last_seen.
  absl::StatusOr<uint64_t> Connect(const v1::Hello& hello,
                                   const std::string& peer);

  // A SyncStatus arrived on `connection`: once validated (ValidateStatus), it
  // becomes the node's latest status and last_seen is now. OK, NotFound (not
  // live: end the stream) or InvalidArgument (dropped and counted in
  // rejected_statuses; the stream may go on); see the top of this file.
  absl::Status Report(uint64_t connection, const v1::SyncStatus& status);
  // The same, taking a status the caller has already moved into shared
  // ownership: the registry keeps the pointer and copies nothing, so a report
  // holds the lock only for a pointer swap (validation runs before the lock).
  absl::Status Report(uint64_t connection,
                      std::shared_ptr<const v1::SyncStatus> status);

  // A ResyncResult arrived on `connection`: validated (ValidateResyncResult),
  // it refreshes last_seen. OK (the caller passes the result on), NotFound or
  // InvalidArgument (dropped, counted in rejected_results) as for Report.
  absl::Status ReportResult(uint64_t connection,
                            const v1::ResyncResult& result);

  // Any other sign of life on `connection`: refreshes last_seen only. OK, or
  // NotFound when the connection is not live.
  absl::Status Touch(uint64_t connection);

  // The stream ended. A no-op for a connection that is not live, in particular
  // one that a reconnect has replaced. The node keeps its last status and
  // last_seen and shows DISCONNECTED (unless a duplicate of its name is live).
  void Disconnect(uint64_t connection);

  // A node from the inventory (Store::LoadNodes) at start-up: DISCONNECTED
  // with that last_seen until it connects; first_seen is the inventory's
  // (InfinitePast: unknown, then the next Connect's time). Ignored when the
  // name already has an entry (a live stream knows better than the inventory).
  // Known names are not limited by max_nodes or the new-name rate (the
  // inventory was admitted when those nodes first connected).
  void AddKnownNode(const v1::Hello& hello, absl::Time last_seen,
                    absl::Time first_seen = absl::InfinitePast());

  // Removes a decommissioned node: OK (and version() bumps), NotFound when
  // the name is unknown, FailedPrecondition while the name has a live stream
  // (stop its agent first). The name counts as new again afterwards.
  absl::Status Forget(const std::string& name);

  RegistryCounters counters() const;

  // The fleet now. Nodes are sorted by name (duplicates in connection order).
  //
  // Skew is max − min of the offsets of the nodes "counted in skew": CONNECTED
  // (not STALE: their offset is old), with a status, and in state
  // SYNCHRONISED, SYNCING or LOCAL_CLOCK (an unsynchronised or holdover
  // node's offset says nothing about where its clock is now). Exactly those
  // nodes have Node.deviation set (offset − the median of their offsets; the
  // mean of the middle two for an even count) and can be flagged.
  // max_error_bound is the largest error bound among them. With none, skew and
  // max_error_bound are zero.
  //
  // connected_count counts CONNECTED nodes (STALE ones are in stale_count).
  v1::Fleet GetFleet() const;

  // GetFleet as an immutable shared snapshot, with what a cache needs to know
  // when it is out of date. The lock is held only to copy pointers: the
  // protobuf is assembled outside it, so reports are not held up by a reader
  // of a large fleet.
  struct Snapshot {
    std::shared_ptr<const v1::Fleet> fleet;
    uint64_t version = 0;  // version() the snapshot was taken at
    // The snapshot is exact until version() changes or the registry's
    // MONOTONIC clock reaches this time (the first CONNECTED node turning
    // STALE); Infinite when no node can turn stale. Expired() compares.
    clock::MonoTime valid_until = clock::MonoTime::Infinite();
  };
  // `decorate`, when set, is given the fleet after the stats are computed
  // and before it is shared (the controller adds the crosscheck's results).
  Snapshot TakeSnapshot(
      const std::function<void(v1::Fleet*)>& decorate = nullptr) const;
  // Whether the monotonic clock has reached `snapshot.valid_until` (a node of
  // it may have turned STALE since). Does not look at version().
  bool Expired(const Snapshot& snapshot) const;

  // The entry for `name` as it appears in GetFleet (the first one when the
  // name is duplicated; it is flagged duplicate_name), or nullopt if unknown.
  std::optional<v1::Node> GetNode(const std::string& name) const;

  struct Target {
    std::string node;
    uint64_t connection = 0;
  };
  struct Selection {
    // Every live (CONNECTED or STALE) stream selected; a duplicated name gives
    // one target per live stream. Sorted by name.
    std::vector<Target> connected;
    // Selected names with no live stream: known but DISCONNECTED, or (for
    // names given explicitly) unknown. Sorted, no repeats.
    std::vector<std::string> not_connected;
  };

  // Which streams a resync goes to. `all` selects every known node; otherwise
  // the union of `names` and the nodes whose Hello has label "key=value".
  // InvalidArgument when the selector selects nothing by construction (no
  // names, no label, not all) or the label is not "key=value" with a non-empty
  // key.
  absl::StatusOr<Selection> Select(const v1::NodeSelector& selector) const;

  // Bumped on every change (connect, report, touch, disconnect, known node,
  // forget).
  uint64_t version() const;

 private:
  // Hello and status are immutable once stored and shared with snapshots:
  // taking a snapshot copies pointers, not messages.
  struct Entry {
    uint64_t connection = 0;                 // 0: no live stream
    std::shared_ptr<const v1::Hello> hello;  // never null
    std::string peer;
    std::shared_ptr<const v1::SyncStatus> status;  // null: none yet
    // Wall clock at the last accepted message, for people (InfinitePast:
    // never).
    absl::Time last_seen = absl::InfinitePast();
    // Wall clock when the name first connected (Node.first_seen;
    // InfinitePast: unknown).
    absl::Time first_seen = absl::InfinitePast();
    // Monotonic clock at the last accepted message, for staleness; only
    // meaningful while connection != 0.
    clock::MonoTime last_heard;
  };

  // Finds the live entry of `connection`, or nullptr.
  Entry* FindLive(uint64_t connection) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks `connection` as heard from now; NotFound when it is not live.
  absl::Status Heard(uint64_t connection, absl::Time now, clock::MonoTime mono)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a new name may be admitted now (max_nodes, then the token
  // bucket, which it draws from); a ResourceExhausted saying which limit.
  absl::Status AdmitNewName(const std::string& name, clock::MonoTime now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration StaleAfter(const v1::Hello& hello) const;

  const clock::Clock* const clock_;
  const clock::MonotonicClock* const monotonic_;
  const RegistryOptions options_;

  mutable absl::Mutex mu_;
  // Name -> its entries: one (live or not), or several live ones (duplicates).
  std::map<std::string, std::vector<Entry>> nodes_ ABSL_GUARDED_BY(mu_);
  // Live connection id -> node name.
  absl::flat_hash_map<uint64_t, std::string> live_ ABSL_GUARDED_BY(mu_);
  uint64_t next_connection_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  // The new-name token bucket: tokens (at most new_names_burst) as of
  // tokens_at.
  double tokens_ ABSL_GUARDED_BY(mu_);
  clock::MonoTime tokens_at_ ABSL_GUARDED_BY(mu_);
  RegistryCounters counters_ ABSL_GUARDED_BY(mu_);
};

// `full` as a fleet table needs it (GetFleetRequest.summary): each node's peer
// rows trimmed to the one the table shows (SummaryPeer); its Hello without
// addresses, config digest and instance id (labels kept, for filters); no gRPC
// peer address, no first_seen.
// On its own arena, like snapshots.
std::shared_ptr<const v1::Fleet> SummarizeFleet(const v1::Fleet& full);

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_REGISTRY_H_
