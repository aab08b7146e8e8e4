// The controller's durable core: what cannot be rebuilt from the agents when
// they reconnect. One embedded SQLite database file holds
// - the node inventory (every node ever seen: its last Hello, first and last
//   seen), so a restarted controller lists silent nodes as DISCONNECTED;
// - the fleet skew history, one point per downsampling bucket
//   (SkewDownsampler below turns fleet snapshots into those points);
// - the audit log of every resync: who asked, when, with which selector,
//   and each node's result.
//
//   absl::StatusOr<std::unique_ptr<Store>> store =
//       Store::Open("/var/lib/ntpfleet/controller.db");
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
// Thread-safety: Store is thread-safe (one connection behind a mutex).
// SkewDownsampler is not: it belongs to one thread.
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
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/ntpfleet.pb.h"

struct sqlite3;

namespace ntpfleet::controller {

class Store {
 public:
  // The schema version this build writes (PRAGMA user_version).
  static constexpr int kSchemaVersion = 1;
  // PRAGMA application_id of an ntpfleet controller database: "NTPF".
  static constexpr int32_t kApplicationId = 0x4e545046;

  // Opens (creating if needed) the database at `path`. The directory must
  // exist. Fails with FailedPrecondition when the file cannot be opened or
  // cannot use WAL mode, or its schema is newer than kSchemaVersion or not
  // ntpfleet's; DataLoss when it is not an SQLite database or is corrupt.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);

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

  // --- Resync audit log -----------------------------------------------------

  // Records one resync request and every node's result in one transaction.
  // Returns the entry's id (increasing with each call).
  absl::StatusOr<int64_t> RecordResync(
      const std::string& requested_by, const v1::NodeSelector& selector,
      bool dry_run, const std::string& request_id, absl::Time when,
      const std::vector<v1::NodeResyncResult>& results);

  struct AuditEntry {
    int64_t id = 0;
    absl::Time when;
    std::string requested_by;
    std::string request_id;
    bool dry_run = false;
    v1::NodeSelector selector;
    std::vector<v1::NodeResyncResult> results;  // in the order recorded
  };

  // The latest `limit` entries (0: all), newest first.
  absl::StatusOr<std::vector<AuditEntry>> ResyncAudit(size_t limit);

 private:
  struct Statements;  // the prepared statements, defined in store.cc

  Store(std::string path, sqlite3* db);
  absl::Status Init();  // pragmas, schema, statements

  const std::string path_;
  absl::Mutex mu_;
  sqlite3* const db_;  // the connection; its use is guarded by mu_
  std::unique_ptr<Statements> stmts_ ABSL_GUARDED_BY(mu_);
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
