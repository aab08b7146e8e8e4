// Per-node history: each node's offset, error bound, stratum and sync state
// over time, downsampled in memory into fixed buckets of three tiers and
// handed to the store (Store::AppendNodeHistory) in batches, on the store's
// one writer thread.
//
//   NodeHistory history(options);              // retention per tier
//   registry_options.on_report = [&history](const std::string& node,
//       const v1::SyncStatus& status, absl::Time now) {
//     history.Record(node, status, now);       // O(1), no IO
//   };
//   ...
//   history.Start(&clock, core.writer());      // a flush every second
//   ...
//   history.Stop();                            // before the writer stops
//
// Tiers (kWidths): 1 s, 1 min and 1 h buckets, aligned to the Unix epoch on
// the controller's wall clock (the time a report arrived, not the node's own
// clock, which may be the thing that is wrong). Each report is folded into
// the node's open bucket of every kept tier: offset min/max/last, largest
// error bound, highest stratum, worst state (SyncStateSeverity), report count.
// A bucket closes when a report of the node falls into a later (or, after the
// controller's clock was stepped back, an earlier) bucket, or when the flush
// finds its end has passed; closed buckets are written at the next flush, at
// most kMaxRowsPerWrite rows per transaction. A node with no open bucket left
// (silent for an hour) is forgotten, so memory follows the nodes heard in the
// last hour: about 300 bytes each.
//
// Retention (NodeHistoryOptions, flag --node-history-retention): each tier's
// rows older than its retention are deleted every PruneInterval(tier), at
// most kPruneBatch rows per transaction, the next batch queued behind the
// writes that came meanwhile, so the writer is never held long. A retention
// of zero turns the tier off.
//
// What a crash loses: the open buckets (the current second, minute and hour
// of every node) and the closed ones not yet flushed (at most the last
// second's) or still queued for the writer. The database is never torn:
// every batch is one SQLite transaction (WAL). After a restart the hour tier
// holds for that hour only what came after the restart; the minute tier
// still has the minutes before the crash. A clean Stop writes the open
// buckets too; when they reopen after the restart, the store merges the two
// parts of each bucket.
//
// Thread-safety: thread-safe. Record is called on gRPC threads (under the
// registry's lock: it takes one of kShards mutexes, never blocks on IO);
// TakeClosed/Flush from the flush thread or a test.
#ifndef NTPFLEET_CONTROLLER_NODE_HISTORY_H_
#define NTPFLEET_CONTROLLER_NODE_HISTORY_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controller/store.h"
#include "controller/store_writer.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::controller {

inline constexpr int kNodeHistoryTiers = 3;

struct NodeHistoryOptions {
  // How long each tier (1 s, 1 min, 1 h buckets) is kept; zero: the tier is
  // not kept at all. docs/CONTROLLER.md "The store" gives the disk each
  // costs per node.
  std::array<absl::Duration, kNodeHistoryTiers> retention = {
      absl::Hours(1), absl::Hours(24 * 7), absl::Hours(24 * 365)};
};

// "1h,7d,365d": one duration per tier (absl's units, plus "d" for days);
// "0" turns a tier off. InvalidArgument naming the flag and the bad part.
absl::StatusOr<std::array<absl::Duration, kNodeHistoryTiers>>
ParseNodeHistoryRetention(absl::string_view text);

class NodeHistory {
 public:
  // Bucket widths of the tiers, finest first (seconds).
  static constexpr std::array<int64_t, kNodeHistoryTiers> kWidths = {1, 60,
                                                                     3600};
  // Rows per write transaction, and rows deleted per prune transaction.
  static constexpr size_t kMaxRowsPerWrite = 10000;
  static constexpr int64_t kPruneBatch = 10000;
  // The most buckets a span may take in the tier ChooseWidth picks (a 1 h
  // span at 1 s is 3600).
  static constexpr int64_t kMaxPoints = 4000;
  static constexpr int kShards = 16;

  explicit NodeHistory(NodeHistoryOptions options = {});
  ~NodeHistory();  // Stop()
  NodeHistory(const NodeHistory&) = delete;
  NodeHistory& operator=(const NodeHistory&) = delete;

  const NodeHistoryOptions& options() const { return options_; }
  bool enabled(int tier) const {
    return options_.retention[tier] > absl::ZeroDuration();
  }

  // Folds one accepted report of `node`, arrived at `now` (controller wall
  // clock), into the node's open bucket of every kept tier. O(1): one
  // hash lookup under one shard's mutex, no allocation once the node is
  // known, no IO.
  void Record(const std::string& node, const v1::SyncStatus& status,
              absl::Time now);

  // The buckets closed by reports since the last call, and those whose end
  // is at or before `now`; forgets nodes left with no open bucket.
  std::vector<NodeHistoryRow> TakeClosed(absl::Time now);
  // Every bucket, the open ones too (and forgets every node): a clean stop.
  std::vector<NodeHistoryRow> TakeAll();

  // The bucket of `node` of width `width_s` still filling, if any.
  std::optional<NodeBucket> OpenBucket(const std::string& node,
                                       int64_t width_s) const;

  // Hands TakeClosed(now) to `writer` (kMaxRowsPerWrite rows per write) and
  // queues the prunes that are due at `now`. What the writer refuses (a full
  // queue) is counted in rows_dropped. The flush thread's turn.
  void Flush(absl::Time now, StoreWriter* writer);

  // How often each tier is pruned: its retention / 12, at least 1 s, at
  // most an hour (so at most retention + 1 h of rows are on disk; the 1 s
  // tier's hour, retention + 5 min).
  absl::Duration PruneInterval(int tier) const;

  // The tier (its width, seconds) that answers a span [start, end] asked at
  // `now`: the finest kept tier at least `resolution` wide whose retention
  // reaches back to start and that covers the span in at most kMaxPoints
  // buckets; else the coarsest kept tier at least `resolution` wide (else
  // the coarsest kept). 0 when no tier is kept.
  int64_t ChooseWidth(absl::Time start, absl::Time end, absl::Time now,
                      absl::Duration resolution) const;

  // Starts the flush thread: Flush(clock->Now(), writer) every second.
  // `clock` and `writer` must outlive Stop().
  void Start(const clock::Clock* clock, StoreWriter* writer);
  // Stops the thread and hands TakeAll() to the writer. Idempotent. Call it
  // before the writer stops.
  void Stop();

  struct Counters {
    uint64_t reports = 0;       // Record calls
    uint64_t rows_written = 0;  // rows handed to the writer and accepted
    uint64_t rows_dropped = 0;  // rows the writer's full queue refused
  };
  Counters counters() const;

 private:
  struct OpenBuckets {
    std::array<NodeBucket, kNodeHistoryTiers> bucket;
    std::array<bool, kNodeHistoryTiers> open = {};
  };
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, OpenBuckets> nodes ABSL_GUARDED_BY(mu);
    std::vector<NodeHistoryRow> closed ABSL_GUARDED_BY(mu);
  };

  Shard& ShardOf(const std::string& node) const;
  std::vector<NodeHistoryRow> Take(absl::Time now, bool all);
  void Hand(std::vector<NodeHistoryRow> rows, StoreWriter* writer);

  const NodeHistoryOptions options_;
  mutable std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> reports_{0};
  std::atomic<uint64_t> rows_written_{0};
  std::atomic<uint64_t> rows_dropped_{0};

  absl::Mutex prune_mu_;  // Flush may be called by a test and the thread
  std::array<absl::Time, kNodeHistoryTiers> last_prune_
      ABSL_GUARDED_BY(prune_mu_);

  absl::Mutex thread_mu_;
  std::thread thread_ ABSL_GUARDED_BY(thread_mu_);
  StoreWriter* writer_ ABSL_GUARDED_BY(thread_mu_) = nullptr;
  absl::Notification stop_;
};

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_NODE_HISTORY_H_
