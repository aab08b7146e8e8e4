// NodeHistory: see node_history.h.
#include "controller/node_history.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/proto_time.h"

namespace ntpfleet::controller {
namespace {

// The largest multiple of `width` (> 0) at or below `t`.
int64_t FloorTo(int64_t t, int64_t width) {
  const int64_t q = t / width * width;
  return q > t ? q - width : q;
}

int64_t Nanos(const google::protobuf::Duration& d) {
  return absl::ToInt64Nanoseconds(FromProto(d));
}

// One report as a bucket of its own.
NodeBucket BucketOf(const v1::SyncStatus& status) {
  NodeBucket b;
  b.reports = 1;
  if (status.has_offset()) {
    b.has_offset = true;
    b.offset_min_ns = b.offset_max_ns = b.offset_last_ns =
        Nanos(status.offset());
  }
  if (status.has_error_bound()) {
    b.has_error_bound = true;
    b.error_max_ns = Nanos(status.error_bound());
  }
  b.stratum_max = status.stratum();
  b.state_worst = status.state();
  return b;
}

// Queues one prune batch of tier `width_s`; its completion queues the next
// while a batch comes back full. Captures no NodeHistory: the chain may
// outlive a turn of the flush thread.
void QueuePrune(StoreWriter* writer, int64_t width_s, absl::Time cutoff) {
  auto deleted = std::make_shared<int64_t>(0);
  (void)writer->Enqueue(
      [width_s, cutoff, deleted](Store& store) -> absl::Status {
        absl::StatusOr<int64_t> n =
            store.PruneNodeHistory(width_s, cutoff, NodeHistory::kPruneBatch);
        if (!n.ok()) return n.status();
        *deleted = *n;
        return absl::OkStatus();
      },
      [writer, width_s, cutoff, deleted](const absl::Status& status) {
        // Refused once the writer stops: the next start prunes the rest.
        if (status.ok() && *deleted >= NodeHistory::kPruneBatch) {
          QueuePrune(writer, width_s, cutoff);
        }
      });
}

}  // namespace

absl::StatusOr<std::array<absl::Duration, kNodeHistoryTiers>>
ParseNodeHistoryRetention(absl::string_view text) {
  const std::vector<std::string> parts =
      absl::StrSplit(text, ',', absl::SkipWhitespace());
  if (parts.size() != kNodeHistoryTiers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--node-history-retention '", text,
        "': give three durations, for the 1 s, 1 min and 1 h tiers, e.g. "
        "1h,7d,365d (0 turns a tier off)"));
  }
  std::array<absl::Duration, kNodeHistoryTiers> out;
  for (int i = 0; i < kNodeHistoryTiers; ++i) {
    const std::string part(absl::StripAsciiWhitespace(parts[i]));
    double days = 0;
    bool ok;
    if (!part.empty() && part.back() == 'd' &&
        absl::SimpleAtod(part.substr(0, part.size() - 1), &days)) {
      out[i] = absl::Hours(24) * days;
      ok = true;
    } else {
      ok = absl::ParseDuration(part, &out[i]);
    }
    if (!ok || out[i] < absl::ZeroDuration() ||
        out[i] == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--node-history-retention: '", part,
          "' is not a duration (e.g. 90m, 48h, 7d; 0 turns the tier off)"));
    }
  }
  return out;
}

NodeHistory::NodeHistory(NodeHistoryOptions options) : options_(options) {
  absl::MutexLock lock(&prune_mu_);
  last_prune_.fill(absl::InfinitePast());
}

NodeHistory::~NodeHistory() { Stop(); }

NodeHistory::Shard& NodeHistory::ShardOf(const std::string& node) const {
  return shards_[absl::Hash<std::string>()(node) % kShards];
}

void NodeHistory::Record(const std::string& node, const v1::SyncStatus& status,
                         absl::Time now) {
  reports_.fetch_add(1, std::memory_order_relaxed);
  const NodeBucket report = BucketOf(status);
  const int64_t t = absl::ToUnixSeconds(now);  // floor
  Shard& shard = ShardOf(node);
  absl::MutexLock lock(&shard.mu);
  OpenBuckets& open = shard.nodes[node];
  for (int i = 0; i < kNodeHistoryTiers; ++i) {
    if (!enabled(i)) continue;
    const int64_t start = FloorTo(t, kWidths[i]);
    NodeBucket& bucket = open.bucket[i];
    if (open.open[i] && bucket.start_s != start) {
      shard.closed.push_back(NodeHistoryRow{node, kWidths[i], bucket});
      open.open[i] = false;
    }
    if (!open.open[i]) {
      bucket = report;
      bucket.start_s = start;
      open.open[i] = true;
    } else {
      MergeNodeBucket(report, &bucket);
    }
  }
}

std::vector<NodeHistoryRow> NodeHistory::Take(absl::Time now, bool all) {
  const int64_t t = absl::ToUnixSeconds(now);
  std::vector<NodeHistoryRow> rows;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    if (rows.empty()) {
      rows.swap(shard.closed);
    } else {
      rows.insert(rows.end(), std::make_move_iterator(shard.closed.begin()),
                  std::make_move_iterator(shard.closed.end()));
      shard.closed.clear();
    }
    for (auto it = shard.nodes.begin(); it != shard.nodes.end();) {
      OpenBuckets& open = it->second;
      bool any_open = false;
      for (int i = 0; i < kNodeHistoryTiers; ++i) {
        if (!open.open[i]) continue;
        // Ended: its end (start + width) is at or before now.
        if (all || open.bucket[i].start_s <= t - kWidths[i]) {
          rows.push_back(NodeHistoryRow{it->first, kWidths[i], open.bucket[i]});
          open.open[i] = false;
        } else {
          any_open = true;
        }
      }
      if (any_open) {
        ++it;
      } else {
        shard.nodes.erase(it++);  // other iterators stay valid
      }
    }
  }
  return rows;
}

std::vector<NodeHistoryRow> NodeHistory::TakeClosed(absl::Time now) {
  return Take(now, /*all=*/false);
}

std::vector<NodeHistoryRow> NodeHistory::TakeAll() {
  return Take(absl::InfinitePast(), /*all=*/true);
}

std::optional<NodeBucket> NodeHistory::OpenBucket(const std::string& node,
                                                  int64_t width_s) const {
  int tier = -1;
  for (int i = 0; i < kNodeHistoryTiers; ++i) {
    if (kWidths[i] == width_s) tier = i;
  }
  if (tier < 0) return std::nullopt;
  Shard& shard = ShardOf(node);
  absl::MutexLock lock(&shard.mu);
  const auto it = shard.nodes.find(node);
  if (it == shard.nodes.end() || !it->second.open[tier]) return std::nullopt;
  return it->second.bucket[tier];
}

void NodeHistory::Hand(std::vector<NodeHistoryRow> rows, StoreWriter* writer) {
  for (size_t first = 0; first < rows.size(); first += kMaxRowsPerWrite) {
    const size_t last = std::min(rows.size(), first + kMaxRowsPerWrite);
    std::vector<NodeHistoryRow> batch(
        std::make_move_iterator(rows.begin() + first),
        std::make_move_iterator(rows.begin() + last));
    const size_t n = batch.size();
    absl::Status queued =
        writer->Enqueue([batch = std::move(batch)](Store& store) {
          return store.AppendNodeHistory(batch);
        });
    (queued.ok() ? rows_written_ : rows_dropped_)
        .fetch_add(n, std::memory_order_relaxed);
  }
}

absl::Duration NodeHistory::PruneInterval(int tier) const {
  return std::clamp(options_.retention[tier] / 12, absl::Seconds(1),
                    absl::Hours(1));
}

void NodeHistory::Flush(absl::Time now, StoreWriter* writer) {
  Hand(TakeClosed(now), writer);
  absl::MutexLock lock(&prune_mu_);
  for (int i = 0; i < kNodeHistoryTiers; ++i) {
    if (!enabled(i) || now - last_prune_[i] < PruneInterval(i)) continue;
    last_prune_[i] = now;
    QueuePrune(writer, kWidths[i], now - options_.retention[i]);
  }
}

int64_t NodeHistory::ChooseWidth(absl::Time start, absl::Time end,
                                 absl::Time now,
                                 absl::Duration resolution) const {
  int64_t coarsest = 0;
  int64_t coarsest_wide_enough = 0;
  for (int i = 0; i < kNodeHistoryTiers; ++i) {
    if (!enabled(i)) continue;
    const absl::Duration width = absl::Seconds(kWidths[i]);
    coarsest = kWidths[i];
    if (width < resolution) continue;
    coarsest_wide_enough = kWidths[i];
    // A client's "an hour ago" is a moment older than ours by the time it
    // arrives: a little slack before calling a tier too short.
    const absl::Duration slack = absl::Minutes(1) + options_.retention[i] / 100;
    if (start < now - options_.retention[i] - slack) continue;
    if ((end - start) / width > static_cast<double>(kMaxPoints)) continue;
    return kWidths[i];
  }
  return coarsest_wide_enough != 0 ? coarsest_wide_enough : coarsest;
}

void NodeHistory::Start(const clock::Clock* clock, StoreWriter* writer) {
  absl::MutexLock lock(&thread_mu_);
  if (thread_.joinable() || writer == nullptr) return;
  writer_ = writer;
  thread_ = std::thread([this, clock, writer] {
    while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      Flush(clock->Now(), writer);
    }
  });
}

void NodeHistory::Stop() {
  absl::MutexLock lock(&thread_mu_);
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  if (writer_ != nullptr) {
    Hand(TakeAll(), writer_);
    writer_ = nullptr;
  }
}

NodeHistory::Counters NodeHistory::counters() const {
  Counters c;
  c.reports = reports_.load(std::memory_order_relaxed);
  c.rows_written = rows_written_.load(std::memory_order_relaxed);
  c.rows_dropped = rows_dropped_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace ntpfleet::controller
