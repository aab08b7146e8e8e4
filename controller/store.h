// The controller's durable core: what cannot be rebuilt from the agents when
// they reconnect. One embedded SQLite database file holds
// - the node inventory (every node ever seen: its last Hello, first and last
//   seen), so a restarted controller lists silent nodes as DISCONNECTED;
// - the fleet skew history, one point per downsampling bucket
//   (SkewDownsampler below turns fleet snapshots into those points);
// - each node's history, one row per node per bucket of each tier (1 s,
//   1 min, 1 h): offset min/max/last, largest error bound, highest stratum,
//   worst sync state (controller/node_history.h aggregates the reports);
// - the audit log of every resync: who asked, when, with which selector and
//   options, and each node's result; written before any agent is asked.
//
//   absl::StatusOr<std::unique_ptr<Store>> store =
//       Store::Open("/var/lib/ntpfleet-controller/controller.db");
//   if (!store.ok()) return store.status();  // names the file and the cause
//   (*store)->UpsertNode(hello, clock.Now());
//
// Durability: WAL journal mode with synchronous=NORMAL. Every method that
// writes is one transaction, committed to the WAL file before it returns, so a
// controller killed at any moment (kill -9 included) loses nothing that a call
// reported as written; the next Open replays the WAL. (What NORMAL gives up,
// compared with FULL, is only the last transactions on a power loss or kernel
// crash — not on a process crash.)
//
// Schema: versioned with PRAGMA user_version and tagged with PRAGMA
// application_id. Open creates the schema in an empty file, migrates an
// older ntpfleet database forward, and refuses a newer one or a database that
// is not ntpfleet's.
//
// Times are stored as INTEGER nanoseconds since the Unix epoch (UTC), the
// controller's wall clock; durations as INTEGER nanoseconds. Protobuf messages
// are stored serialized (forward compatible: fields are only ever added),
// beside plain columns for what an operator may want from the sqlite3 shell.
//
// Errors: every failure is an absl::Status whose message names the database
// file and carries SQLite's own message.
//
// Thread-safety: Store is thread-safe (one connection behind a mutex). In the
// controller every write goes through StoreWriter (store_writer.h), one
// thread off the gRPC callback threads; reads may come from any thread.
// SkewDownsampler is not thread-safe: it belongs to one thread.
#ifndef NTPFLEET_CONTROLLER_STORE_H_
#define NTPFLEET_CONTROLLER_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/ntpfleet.pb.h"

struct sqlite3;

namespace ntpfleet::controller {

// One bucket of one node's reports (one row of node_history): what
// NodeHistory (controller/node_history.h) aggregates in memory and the Store
// keeps. Plain integers, so that a report costs no allocation.
struct NodeBucket {
  int64_t start_s = 0;  // Bucket start, seconds since the Unix epoch (UTC,
                        // the controller's clock); a multiple of the width.
  uint32_t reports = 0;
  // Reference minus local, nanoseconds, over the reports that carried an
  // offset (has_offset); offset_last_ns is the latest such report's.
  bool has_offset = false;
  int64_t offset_min_ns = 0;
  int64_t offset_max_ns = 0;
  int64_t offset_last_ns = 0;
  // The largest error bound reported, nanoseconds (has_error_bound: some
  // report of the bucket had one).
  bool has_error_bound = false;
  int64_t error_max_ns = 0;
  uint32_t stratum_max = 0;
  // v1::SyncState: the worst of the bucket (SyncStateSeverity).
  int32_t state_worst = 0;
};
bool operator==(const NodeBucket& a, const NodeBucket& b);
inline bool operator!=(const NodeBucket& a, const NodeBucket& b) {
  return !(a == b);
}

// How bad a sync state is, for NodeBucket.state_worst: 0 SYNCHRONISED,
// 1 LOCAL_CLOCK, 2 SYNCING, 3 HOLDOVER, 4 UNSYNCHRONISED, 5 REFUSED,
// 6 UNSPECIFIED or any value this build does not know.
int SyncStateSeverity(int32_t state);

// Folds `later` (a bucket of the same node, width and start, whose reports
// came after those of `into`) into `into`: reports added, min of minima, max
// of maxima, error bounds and strata, the later last offset, the worse state.
void MergeNodeBucket(const NodeBucket& later, NodeBucket* into);

// A closed bucket on its way to the store.
struct NodeHistoryRow {
  std::string node;
  int64_t width_s = 0;  // The tier: 1, 60 or 3600 (seconds).
  NodeBucket bucket;
};

class Store {
 public:
  // The schema version this build writes (PRAGMA user_version).
  // 1: nodes, skew_history, resync_audit, resync_results.
  // 2: resync_audit gains allow_step, force and finished; resync_asked.
  // 3: history_nodes, node_history (per-node history).
  static constexpr int kSchemaVersion = 3;
  // PRAGMA application_id of an ntpfleet controller database: "NTPF".
  static constexpr int32_t kApplicationId = 0x4e545046;

  // Opens (creating if needed) the database at `path`. The directory must
  // exist. Fails with FailedPrecondition when the file cannot be opened or
  // cannot use WAL mode, or its schema is newer than kSchemaVersion or not
  // ntpfleet's; DataLoss when it is not an SQLite database or is corrupt
  // (Open runs PRAGMA quick_check, a read of every page of the file). Then
  // completes the audit records of resyncs a previous controller began and
  // never finished (see BeginResync; interrupted_on_open() counts them).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);

  // Open, except that a file that is not an SQLite database or is corrupt
  // (Open's DataLoss) is moved aside, with its -wal and -shm files, to
  // PATH.corrupt-YYYYmmddTHHMMSSZ (UTC, now; never over an existing file: a
  // ".2", ".3"... is added if need be) and a new, empty database is created
  // at PATH. Then *recovered_note (if not null) is set to a one-line message
  // naming both files, for the caller to log loudly; otherwise it is cleared.
  // Every other failure is returned as is and the file is left alone: a
  // database that is newer than this controller or not ntpfleet's is the
  // wrong file, not a corrupt one.
  static absl::StatusOr<std::unique_ptr<Store>> OpenOrRecover(
      const std::string& path, std::string* recovered_note);

  // Closes the database (checkpointing the WAL into the main file).
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }

  // --- Node inventory -------------------------------------------------------

  struct NodeRecord {
    v1::Hello hello;  // The latest Hello of that name.
    absl::Time first_seen;
    absl::Time last_seen;
  };

  // Inserts or updates the node named hello.node_name(): the Hello and
  // last_seen are replaced, first_seen is kept from the first insert.
  // InvalidArgument when the Hello has no node_name.
  absl::Status UpsertNode(const v1::Hello& hello, absl::Time seen);

  // Sets last_seen of each named node, in one transaction (for the controller
  // to flush the registry's last_seen times periodically rather than write on
  // every report). Names not in the inventory are skipped.
  absl::Status UpdateLastSeen(
      const std::vector<std::pair<std::string, absl::Time>>& seen);

  // The whole inventory, sorted by name.
  absl::StatusOr<std::vector<NodeRecord>> LoadNodes();

  // --- Skew history ---------------------------------------------------------

  // Appends one point (already downsampled by the caller: SkewDownsampler).
  // Points with equal times are all kept.
  absl::Status AppendSkew(const v1::SkewPoint& point);

  // The points with start <= time <= end, oldest first. When there are more
  // than `max_points` (0: no limit), the rows are cut into max_points runs of
  // consecutive rows of (near-)equal length and each run becomes one point:
  // the time of its first row and, for skew, max_error_bound, nodes and
  // flagged, the maximum over the run — so thinning never hides a spike.
  absl::StatusOr<std::vector<v1::SkewPoint>> History(absl::Time start,
                                                     absl::Time end,
                                                     size_t max_points);

  // Deletes the points older than `older_than`; returns how many.
  absl::StatusOr<int64_t> PruneHistory(absl::Time older_than);

  // Removes the node `name` from the inventory (a decommissioned node). Its
  // skew history and audit records are kept. NotFound (naming the node) when
  // the inventory has no such node.
  absl::Status ForgetNode(const std::string& name);

  // --- Per-node history -----------------------------------------------------
  //
  // One table, node_history, keyed (width_s, start_s, node_id): rows are
  // clustered by tier, then time, so each batch of closed buckets (all of
  // one start) is appended at the end of the B-tree and pruning deletes from
  // its beginning; one node's points are found with one index lookup per
  // bucket of the span (NodeHistory below). Nodes are numbered in
  // history_nodes so a row does not repeat the name.

  // Appends `rows` in one transaction. A row whose (node, width, start) is
  // already stored (a bucket written at a clean stop and reopened after the
  // restart, or after the controller's clock was stepped back) is merged
  // into it (MergeNodeBucket's rules). InvalidArgument for a row without a
  // node name or with a width that is not positive.
  absl::Status AppendNodeHistory(const std::vector<NodeHistoryRow>& rows);

  // The stored buckets of `node` of width `width_s` whose start lies in
  // [start, end], oldest first, looked up bucket by bucket: only the newest
  // `max_points` (0: 10 000; at most 1 000 000) bucket starts of the span
  // are looked at. Empty when the node has none.
  absl::StatusOr<std::vector<NodeBucket>> NodeHistory(const std::string& node,
                                                      int64_t width_s,
                                                      absl::Time start,
                                                      absl::Time end,
                                                      size_t max_points);

  // Whether history_nodes knows `node` (it has, or had, history rows).
  absl::StatusOr<bool> HasNodeHistory(const std::string& node);

  // Deletes at most `max_rows` of the oldest rows of width `width_s` whose
  // bucket starts before `older_than`, in one transaction; returns how many.
  // (A caller repeats while it returns max_rows: batches keep each
  // transaction, and so the writer thread, short.)
  absl::StatusOr<int64_t> PruneNodeHistory(int64_t width_s,
                                           absl::Time older_than,
                                           int64_t max_rows);

  // --- Resync audit log -----------------------------------------------------
  //
  // Audit before action: a resync is recorded in two steps.
  //
  //   absl::StatusOr<int64_t> id = store->BeginResync(
  //       identity, request, request_id, clock.Now(), selected_nodes);
  //   if (!id.ok()) return id.status();  // refuse the resync: not audited
  //   ... send the Resync to the agents, collect their results ...
  //   store->FinishResync(*id, results);
  //
  // BeginResync has committed the request before it returns, so a resync that
  // reached any agent is in the log even when the controller dies before the
  // results come back: the next Open completes every record that was begun and
  // never finished with a RESYNC_OUTCOME_INTERRUPTED result for each node
  // asked that has no result, and marks it finished. After any crash every
  // record is complete, none is lost, none has its results twice.
  //
  // Open assumes it is the only controller on this database file (as it must
  // be): it takes every unfinished record for one whose controller has died.

  // Records the request (who, the selector, dry_run, allow_step, force) and
  // the nodes it selected, whose results FinishResync will record (the nodes
  // to be sent a Resync, and those that will get a DRY_RUN, NOT_CONNECTED or
  // RATE_LIMITED result: all of them, so that an interrupted record shows
  // every node). One transaction, committed when this returns. Returns the
  // record's id (increasing with each call). `request.requested_by` is
  // ignored: `requested_by` is the identity the controller verified.
  absl::StatusOr<int64_t> BeginResync(
      const std::string& requested_by, const v1::ResyncRequest& request,
      const std::string& request_id, absl::Time when,
      const std::vector<std::string>& nodes_asked);

  // Records every node's result of the record `id` and marks it finished, in
  // one transaction. NotFound when there is no record `id`;
  // FailedPrecondition when it is already finished (a second finish, or one
  // after the controller restarted and marked it interrupted): the results
  // are then not recorded again.
  absl::Status FinishResync(int64_t id,
                            const std::vector<v1::NodeResyncResult>& results);

  // The records begun at or after `since` (the controller's clock when each
  // was begun), newest (the highest id) first, at most `limit` of them (0: no
  // limit). A resync in progress is listed with no results yet. Each record's
  // results are in the order recorded.
  absl::StatusOr<std::vector<v1::AuditRecord>> Audit(absl::Time since,
                                                     size_t limit);

  // How many unfinished records the last Open found and completed as
  // interrupted (for the controller to log at start-up).
  int64_t interrupted_on_open() const { return interrupted_on_open_; }

 private:
  struct Statements;  // the prepared statements, defined in store.cc

  Store(std::string path, sqlite3* db);
  absl::Status Init();  // pragmas, checks, schema, statements
  // Completes every unfinished audit record (see BeginResync); sets
  // interrupted_on_open_.
  absl::Status FinishInterruptedResyncs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Inserts `results` as results of record `id`, numbered on from the
  // record's next free seq. Inside a write transaction.
  absl::Status InsertResults(int64_t id, const std::string& request_id,
                             const std::vector<v1::NodeResyncResult>& results)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The id of `node` in history_nodes, inserted if new. Inside a write
  // transaction.
  absl::StatusOr<int64_t> HistoryNodeId(const std::string& node)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  absl::Mutex mu_;
  sqlite3* const db_;  // the connection; its use is guarded by mu_
  std::unique_ptr<Statements> stmts_ ABSL_GUARDED_BY(mu_);
  // history_nodes, cached: name -> id. Cleared when a transaction that may
  // have added to it fails (its ids were rolled back).
  absl::flat_hash_map<std::string, int64_t> history_ids_ ABSL_GUARDED_BY(mu_);
  int64_t interrupted_on_open_ = 0;  // written only by Open
};

// Turns fleet snapshots taken at arbitrary times into one SkewPoint per
// fixed-width bucket (buckets aligned to the Unix epoch), for
// Store::AppendSkew. A point's time is its bucket's start; each of its fields
// (skew, max_error_bound, nodes, flagged) is the maximum over the bucket's
// snapshots, so the worst moment of each bucket is what is kept. `nodes` of a
// snapshot is the number of nodes counted in its skew (the nodes with a
// deviation, see Registry::GetFleet).
//
//   SkewDownsampler downsampler;  // 10 s buckets
//   if (auto point = downsampler.Add(registry.GetFleet())) {
//     store->AppendSkew(*point);
//   }
//
// A pure class: no clock, no IO; the snapshot's as_of is its time.
class SkewDownsampler {
 public:
  explicit SkewDownsampler(absl::Duration bucket = absl::Seconds(10));

  // Adds a snapshot at fleet.as_of. When that falls in another bucket than
  // the one being filled (normally the next; after a clock step possibly an
  // earlier one), returns the finished point of the bucket being filled and
  // starts a new one with this snapshot.
  std::optional<v1::SkewPoint> Add(const v1::Fleet& fleet);

  // Returns the point of the bucket being filled, if any, and forgets it
  // (e.g. at shutdown).
  std::optional<v1::SkewPoint> Flush();

 private:
  absl::Duration bucket_;
  std::optional<absl::Time> bucket_start_;
  v1::SkewPoint current_;
};

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_STORE_H_
