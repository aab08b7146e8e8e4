// The controller's view of the fleet: every node's latest status, when it was
// last heard from and the state of its stream; and the fleet's skew computed
// from those. Soft state, rebuilt from the agents as they (re)connect; the
// inventory it starts from comes from the Store (AddKnownNode).
//
// No gRPC and no IO: the AgentService reactor calls Connect / Report / Touch /
// Disconnect as its stream's messages arrive, the FleetService reads GetFleet /
// GetNode / Select. "Now" comes from an injected wall clock, so tests drive it.
//
//   clock::SystemClock clock;
//   Registry registry(&clock);
//   absl::StatusOr<uint64_t> conn = registry.Connect(hello,
//   "ipv4:10.0.0.7:5123"); registry.Report(*conn, status); v1::Fleet fleet =
//   registry.GetFleet(); registry.Disconnect(*conn);
//
// Connection rules (the AgentService contract in proto/ntpfleet.proto):
// - A Connect with the node_name AND instance_id of a live connection is the
//   same agent reconnecting: the new stream replaces the old one. The old
//   connection id is dead from then on: Report/Touch on it return false and its
//   Disconnect is a no-op, so a late clean-up of the old stream never touches
//   the new one. (Two empty instance_ids count as the same instance.)
// - The same node_name with a DIFFERENT instance_id while the other is live:
//   both are kept, listed separately, and both have Node.duplicate_name set.
//   Nothing is merged. When one of them disconnects, its entry goes away (the
//   name is still covered by the other) and the flag clears.
// - A name with no live connection (known from the inventory, or whose stream
//   ended) is one DISCONNECTED entry; the next Connect of that name takes it
//   over, whatever its instance_id.
//
// Connection states, computed at read time from the injected clock:
// - CONNECTED: a live stream that has sent a message (Hello, status or resync
//   result) within stale_intervals report intervals;
// - STALE: a live stream silent for at least stale_intervals × its report
//   interval (Hello.report_interval, or the default when the Hello has none);
// - DISCONNECTED: known, no stream.
// Because STALE depends only on time, a node turning stale does not bump
// version(): Snapshot.valid_until says when a snapshot goes out of date.
//
// Thread-safety: thread-safe; every method may be called from any thread.
#ifndef NTPFLEET_CONTROLLER_REGISTRY_H_
#define NTPFLEET_CONTROLLER_REGISTRY_H_

#include <cstdint>
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
#include "agent/clock/clock.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::controller {

struct RegistryOptions {
  // Nodes whose offset, or deviation from the fleet's median offset, is beyond
  // this are flagged.
  absl::Duration skew_threshold = absl::Milliseconds(1);
  // A live stream silent for this many report intervals is STALE.
  int stale_intervals = 3;
  // Used when a Hello carries no (or a non-positive) report_interval.
  absl::Duration default_report_interval = absl::Seconds(1);
};

class Registry {
 public:
  // `clock` (the controller's wall clock) must outlive the registry.
  explicit Registry(const clock::Clock* clock, RegistryOptions options = {});

  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // A stream opened and sent `hello`; `peer` is its address as gRPC reports
  // it. Returns the new connection's id (never 0), or InvalidArgument when the
  // Hello has no node_name. Counts as a message for last_seen.
  absl::StatusOr<uint64_t> Connect(const v1::Hello& hello,
                                   const std::string& peer);

  // A SyncStatus arrived on `connection`: it becomes the node's latest status
  // and last_seen is now. Returns false (and changes nothing) when the
  // connection is not live (ended, or replaced by a reconnect) — the caller may
  // then end that stream.
  bool Report(uint64_t connection, const v1::SyncStatus& status);
  // The same, taking a status the caller has already moved into shared
  // ownership: the registry keeps the pointer and copies nothing, so a report
  // holds the lock only for a pointer swap.
  bool Report(uint64_t connection,
              std::shared_ptr<const v1::SyncStatus> status);

  // Any other message arrived on `connection` (e.g. a ResyncResult): refreshes
  // last_seen only. Returns false when the connection is not live.
  bool Touch(uint64_t connection);

  // The stream ended. A no-op for a connection that is not live, in particular
  // one that a reconnect has replaced. The node keeps its last status and
  // last_seen and shows DISCONNECTED (unless a duplicate of its name is live).
  void Disconnect(uint64_t connection);

  // A node from the inventory (Store::LoadNodes) at start-up: DISCONNECTED
  // with that last_seen until it connects. Ignored when the name already has an
  // entry (a live stream knows better than the inventory).
  void AddKnownNode(const v1::Hello& hello, absl::Time last_seen);

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
    // The snapshot is exact until version() changes or the injected clock
    // reaches this time (the first CONNECTED node turning STALE);
    // InfiniteFuture when no node can turn stale.
    absl::Time valid_until = absl::InfiniteFuture();
  };
  Snapshot TakeSnapshot() const;

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

  // Bumped on every change (connect, report, touch, disconnect, known node).
  uint64_t version() const;

 private:
  // Hello and status are immutable once stored and shared with snapshots:
  // taking a snapshot copies pointers, not messages.
  struct Entry {
    uint64_t connection = 0;                 // 0: no live stream
    std::shared_ptr<const v1::Hello> hello;  // never null
    std::string peer;
    std::shared_ptr<const v1::SyncStatus> status;  // null: none yet
    absl::Time last_seen = absl::InfinitePast();   // InfinitePast: never
  };

  // Finds the live entry of `connection`, or nullptr.
  Entry* FindLive(uint64_t connection) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration StaleAfter(const v1::Hello& hello) const;

  const clock::Clock* const clock_;
  const RegistryOptions options_;

  mutable absl::Mutex mu_;
  // Name -> its entries: one (live or not), or several live ones (duplicates).
  std::map<std::string, std::vector<Entry>> nodes_ ABSL_GUARDED_BY(mu_);
  // Live connection id -> node name.
  absl::flat_hash_map<uint64_t, std::string> live_ ABSL_GUARDED_BY(mu_);
  uint64_t next_connection_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
};

// `full` as a fleet table needs it (GetFleetRequest.summary): each node's peer
// rows trimmed to the one the table shows (SummaryPeer); its Hello without
// addresses, config digest, labels and instance id; no gRPC peer address.
// On its own arena, like snapshots.
std::shared_ptr<const v1::Fleet> SummarizeFleet(const v1::Fleet& full);

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_REGISTRY_H_
