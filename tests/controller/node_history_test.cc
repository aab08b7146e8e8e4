// NodeHistory: bucket boundaries on each tier, what a bucket keeps (offset
// min/max/last, largest error bound, highest stratum, worst state), buckets
// closed by a later report, by their end passing, and after a clock step
// back; tiers turned off; silent nodes forgotten; the tier chosen for a span;
// the flush and a clean stop into a real store; retention and pruning in
// batches; the retention flag.
#include "controller/node_history.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "controller/store.h"
#include "controller/store_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_files.h"

namespace ntpfleet::controller {
namespace {

using ::ntpfleet::testing::FreshDb;
using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::MustOpen;
using ::ntpfleet::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// A whole hour (1700002800 = 472223 * 3600): every tier's bucket starts here.
const absl::Time kT0 = absl::FromUnixSeconds(1700002800);
constexpr int64_t kT0s = 1700002800;

v1::SyncStatus Status(absl::Duration offset,
                      v1::SyncState state = v1::SYNC_STATE_SYNCHRONISED,
                      absl::Duration error = absl::Microseconds(100),
                      uint32_t stratum = 2) {
  v1::SyncStatus s;
  s.set_state(state);
  SetDuration(offset, s.mutable_offset());
  if (error > absl::ZeroDuration()) SetDuration(error, s.mutable_error_bound());
  s.set_stratum(stratum);
  return s;
}

std::vector<NodeHistoryRow> OfWidth(const std::vector<NodeHistoryRow>& rows,
                                    int64_t width) {
  std::vector<NodeHistoryRow> out;
  for (const NodeHistoryRow& r : rows) {
    if (r.width_s == width) out.push_back(r);
  }
  return out;
}

std::vector<int64_t> Starts(const std::vector<NodeHistoryRow>& rows) {
  std::vector<int64_t> out;
  for (const NodeHistoryRow& r : rows) out.push_back(r.bucket.start_s);
  return out;
}

TEST(NodeHistoryTest, ReportsOfOneSecondShareABucketTheNextSecondStartsOne) {
  NodeHistory history;
  history.Record("a", Status(absl::Microseconds(1)), kT0);
  history.Record("a", Status(absl::Microseconds(2)),
                 kT0 + absl::Milliseconds(999));
  // Nothing has ended yet at kT0 + 999 ms.
  EXPECT_THAT(history.TakeClosed(kT0 + absl::Milliseconds(999)), IsEmpty());
  // The next second's report closes the first 1 s bucket by itself.
  history.Record("a", Status(absl::Microseconds(3)), kT0 + absl::Seconds(1));
  std::vector<NodeHistoryRow> rows =
      history.TakeClosed(kT0 + absl::Seconds(1) + absl::Milliseconds(500));
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].node, "a");
  EXPECT_EQ(rows[0].width_s, 1);
  EXPECT_EQ(rows[0].bucket.start_s, kT0s);
  EXPECT_EQ(rows[0].bucket.reports, 2u);
  EXPECT_EQ(rows[0].bucket.offset_last_ns, 2000);
  std::optional<NodeBucket> open = history.OpenBucket("a", 1);
  ASSERT_TRUE(open.has_value());
  EXPECT_EQ(open->start_s, kT0s + 1);
  EXPECT_EQ(open->reports, 1u);
}

TEST(NodeHistoryTest, BucketKeepsExtremesLastAndWorstState) {
  NodeHistory history;
  const absl::Time t = kT0 + absl::Seconds(10);
  history.Record("a",
                 Status(absl::Microseconds(-40), v1::SYNC_STATE_SYNCHRONISED,
                        absl::Microseconds(300), 2),
                 t);
  history.Record("a",
                 Status(absl::Microseconds(90), v1::SYNC_STATE_HOLDOVER,
                        absl::Microseconds(900), 3),
                 t + absl::Seconds(1));
  history.Record("a",
                 Status(absl::Microseconds(5), v1::SYNC_STATE_SYNCING,
                        absl::Microseconds(200), 2),
                 t + absl::Seconds(2));
  // No offset and no error bound: counted, changes no extreme.
  v1::SyncStatus bare;
  bare.set_state(v1::SYNC_STATE_SYNCHRONISED);
  bare.set_stratum(1);
  history.Record("a", bare, t + absl::Seconds(3));

  std::optional<NodeBucket> minute = history.OpenBucket("a", 60);
  ASSERT_TRUE(minute.has_value());
  EXPECT_EQ(minute->start_s, kT0s);
  EXPECT_EQ(minute->reports, 4u);
  EXPECT_TRUE(minute->has_offset);
  EXPECT_EQ(minute->offset_min_ns, -40000);
  EXPECT_EQ(minute->offset_max_ns, 90000);
  EXPECT_EQ(minute->offset_last_ns, 5000);  // the bare report has none
  EXPECT_TRUE(minute->has_error_bound);
  EXPECT_EQ(minute->error_max_ns, 900000);
  EXPECT_EQ(minute->stratum_max, 3u);
  // HOLDOVER is worse than SYNCING, which came later: the worst is kept.
  EXPECT_EQ(minute->state_worst, v1::SYNC_STATE_HOLDOVER);
}

TEST(NodeHistoryTest, StateSeverityOrdersBestToWorst) {
  const v1::SyncState best_first[] = {
      v1::SYNC_STATE_SYNCHRONISED,   v1::SYNC_STATE_LOCAL_CLOCK,
      v1::SYNC_STATE_SYNCING,        v1::SYNC_STATE_HOLDOVER,
      v1::SYNC_STATE_UNSYNCHRONISED, v1::SYNC_STATE_REFUSED,
      v1::SYNC_STATE_UNSPECIFIED};
  for (size_t i = 1; i < std::size(best_first); ++i) {
    EXPECT_LT(SyncStateSeverity(best_first[i - 1]),
              SyncStateSeverity(best_first[i]))
        << best_first[i - 1] << " vs " << best_first[i];
  }
  EXPECT_EQ(SyncStateSeverity(99), SyncStateSeverity(0));  // unknown: worst
}

TEST(NodeHistoryTest, ABucketWithoutBoundOrOffsetSaysSo) {
  NodeHistory history;
  v1::SyncStatus unsynced;
  unsynced.set_state(v1::SYNC_STATE_UNSYNCHRONISED);
  unsynced.set_stratum(16);
  history.Record("a", unsynced, kT0);
  std::optional<NodeBucket> b = history.OpenBucket("a", 1);
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(b->has_offset);
  EXPECT_FALSE(b->has_error_bound);
  EXPECT_EQ(b->stratum_max, 16u);
}

TEST(NodeHistoryTest, EachTierClosesAtItsOwnEnd) {
  NodeHistory history;
  // One report a second for 2 minutes and 1 second.
  for (int s = 0; s <= 120; ++s) {
    history.Record("a", Status(absl::Microseconds(s)), kT0 + absl::Seconds(s));
  }
  std::vector<NodeHistoryRow> rows =
      history.TakeClosed(kT0 + absl::Seconds(120) + absl::Milliseconds(10));
  EXPECT_THAT(OfWidth(rows, 1), SizeIs(120));  // 0..119; 120 is open
  std::vector<NodeHistoryRow> minutes = OfWidth(rows, 60);
  ASSERT_THAT(minutes, SizeIs(2));
  EXPECT_THAT(Starts(minutes), ElementsAre(kT0s, kT0s + 60));
  EXPECT_EQ(minutes[0].bucket.reports, 60u);
  EXPECT_EQ(minutes[0].bucket.offset_min_ns, 0);
  EXPECT_EQ(minutes[0].bucket.offset_max_ns, 59000);
  EXPECT_EQ(minutes[1].bucket.offset_last_ns, 119000);
  EXPECT_THAT(OfWidth(rows, 3600), IsEmpty());  // the hour is still open

  // The node falls silent: its 1 s bucket ends at kT0 + 121 s exactly.
  EXPECT_THAT(
      history.TakeClosed(kT0 + absl::Seconds(121) - absl::Nanoseconds(1)),
      IsEmpty());
  rows = history.TakeClosed(kT0 + absl::Seconds(121));
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].width_s, 1);
  EXPECT_EQ(rows[0].bucket.start_s, kT0s + 120);
  rows = history.TakeClosed(kT0 + absl::Seconds(180));
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].width_s, 60);
  // The hour, at its end; then the node is forgotten (nothing open).
  EXPECT_TRUE(history.OpenBucket("a", 3600).has_value());
  rows = history.TakeClosed(kT0 + absl::Hours(1));
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].width_s, 3600);
  EXPECT_EQ(rows[0].bucket.reports, 121u);
  EXPECT_FALSE(history.OpenBucket("a", 3600).has_value());
  EXPECT_THAT(history.TakeAll(), IsEmpty());
}

TEST(NodeHistoryTest, ClockSteppedBackClosesTheBucketAndStartsAnEarlierOne) {
  NodeHistory history;
  history.Record("a", Status(absl::Microseconds(1)), kT0 + absl::Seconds(10));
  history.Record("a", Status(absl::Microseconds(2)), kT0 + absl::Seconds(5));
  std::vector<NodeHistoryRow> rows = OfWidth(history.TakeAll(), 1);
  EXPECT_THAT(Starts(rows), ElementsAre(kT0s + 10, kT0s + 5));
}

TEST(NodeHistoryTest, NodesAreKeptApart) {
  NodeHistory history;
  history.Record("a", Status(absl::Microseconds(1)), kT0);
  history.Record("b", Status(absl::Microseconds(-7)), kT0);
  std::vector<NodeHistoryRow> rows = OfWidth(history.TakeAll(), 1);
  ASSERT_THAT(rows, SizeIs(2));
  for (const NodeHistoryRow& r : rows) {
    EXPECT_EQ(r.bucket.offset_last_ns, r.node == "a" ? 1000 : -7000) << r.node;
  }
}

TEST(NodeHistoryTest, ATierWithZeroRetentionIsNotKept) {
  NodeHistoryOptions options;
  options.retention[0] = absl::ZeroDuration();
  NodeHistory history(options);
  history.Record("a", Status(absl::Microseconds(1)), kT0);
  EXPECT_FALSE(history.OpenBucket("a", 1).has_value());
  std::vector<NodeHistoryRow> rows = history.TakeAll();
  EXPECT_THAT(OfWidth(rows, 1), IsEmpty());
  EXPECT_THAT(OfWidth(rows, 60), SizeIs(1));
  EXPECT_THAT(OfWidth(rows, 3600), SizeIs(1));
}

TEST(NodeHistoryTest, ChoosesTheFinestTierThatHoldsTheSpan) {
  NodeHistory history;  // 1 h, 7 d, 365 d
  const absl::Time now = kT0;
  auto width = [&](absl::Duration span,
                   absl::Duration resolution = absl::ZeroDuration()) {
    return history.ChooseWidth(now - span, now, now, resolution);
  };
  EXPECT_EQ(width(absl::Minutes(10)), 1);
  // A client's "1 h ago" reaches us a moment later: still the 1 s tier.
  EXPECT_EQ(width(absl::Hours(1) + absl::Seconds(1)), 1);
  EXPECT_EQ(width(absl::Hours(2)), 60);  // older than the 1 s tier keeps
  EXPECT_EQ(width(absl::Hours(24)), 60);
  EXPECT_EQ(width(absl::Hours(24 * 7)), 3600);    // 10 080 minutes: too many
  EXPECT_EQ(width(absl::Hours(24 * 400)), 3600);  // beyond all: the coarsest
  EXPECT_EQ(width(absl::Minutes(10), absl::Seconds(30)), 60);
  EXPECT_EQ(width(absl::Minutes(10), absl::Hours(2)), 3600);
  // A span in the past, short but older than the 1 s tier's hour.
  EXPECT_EQ(history.ChooseWidth(now - absl::Hours(3),
                                now - absl::Hours(2) - absl::Minutes(50), now,
                                absl::ZeroDuration()),
            60);

  NodeHistoryOptions off;
  off.retention = {absl::ZeroDuration(), absl::ZeroDuration(),
                   absl::ZeroDuration()};
  EXPECT_EQ(NodeHistory(off).ChooseWidth(now - absl::Hours(1), now, now,
                                         absl::ZeroDuration()),
            0);
}

TEST(NodeHistoryTest, PruneIntervalIsATwelfthOfRetentionWithinBounds) {
  NodeHistory history;
  EXPECT_EQ(history.PruneInterval(0), absl::Minutes(5));
  EXPECT_EQ(history.PruneInterval(1), absl::Hours(1));
  EXPECT_EQ(history.PruneInterval(2), absl::Hours(1));
}

TEST(NodeHistoryTest, ParsesTheRetentionFlag) {
  absl::StatusOr<std::array<absl::Duration, kNodeHistoryTiers>> r =
      ParseNodeHistoryRetention("1h, 7d,365d");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ((*r)[0], absl::Hours(1));
  EXPECT_EQ((*r)[1], absl::Hours(24 * 7));
  EXPECT_EQ((*r)[2], absl::Hours(24 * 365));
  r = ParseNodeHistoryRetention("0,48h,90d");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ((*r)[0], absl::ZeroDuration());
  EXPECT_THAT(ParseNodeHistoryRetention("1h,7d"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("three durations")));
  EXPECT_THAT(ParseNodeHistoryRetention("1h,7x,1d"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'7x'")));
  EXPECT_THAT(ParseNodeHistoryRetention("1h,-1h,1d"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-1h")));
}

// Waits until `writer` has nothing queued: a marker write reports whether the
// queue was empty when it ran (a prune batch's completion queues the next
// batch before the marker runs, so an empty queue there means all done).
void Drain(StoreWriter& writer) {
  for (;;) {
    absl::Notification ran;
    bool empty = false;
    ASSERT_THAT(writer.Enqueue(
                    [&](Store&) {
                      empty = writer.counters().queued == 0;
                      return absl::OkStatus();
                    },
                    [&](const absl::Status&) { ran.Notify(); }),
                IsOk());
    ran.WaitForNotification();
    if (empty) return;
  }
}

TEST(NodeHistoryTest, FlushWritesClosedBucketsAndStopWritesOpenOnes) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("node_history_flush.db"));
  ASSERT_NE(store, nullptr);
  StoreWriter writer(store.get());
  NodeHistory history;
  for (int s = 0; s < 3; ++s) {
    history.Record("a", Status(absl::Microseconds(10 * s)),
                   kT0 + absl::Seconds(s));
  }
  history.Flush(kT0 + absl::Seconds(3), &writer);
  Drain(writer);
  absl::StatusOr<std::vector<NodeBucket>> seconds =
      store->NodeHistory("a", 1, kT0, kT0 + absl::Minutes(1), 0);
  ASSERT_THAT(seconds, IsOk());
  ASSERT_THAT(*seconds, SizeIs(3));
  EXPECT_EQ((*seconds)[2].offset_last_ns, 20000);
  absl::StatusOr<std::vector<NodeBucket>> minutes =
      store->NodeHistory("a", 60, kT0, kT0 + absl::Minutes(1), 0);
  ASSERT_THAT(minutes, IsOk());
  EXPECT_THAT(*minutes, IsEmpty());  // still open

  // A clean stop writes the open minute and hour too.
  ntpfleet::testing::FakeClock clock(kT0 + absl::Seconds(3));
  history.Start(&clock, &writer);
  history.Stop();
  writer.Stop();
  minutes = store->NodeHistory("a", 60, kT0, kT0 + absl::Minutes(1), 0);
  ASSERT_THAT(minutes, IsOk());
  ASSERT_THAT(*minutes, SizeIs(1));
  EXPECT_EQ((*minutes)[0].reports, 3u);
  EXPECT_EQ(history.counters().reports, 3u);
  EXPECT_EQ(history.counters().rows_written, 5u);  // 3 s, 1 min, 1 h
  EXPECT_EQ(history.counters().rows_dropped, 0u);
}

// Rows of width 1 for nodes n0..n(count-1), one per node, at `start`.
std::vector<NodeHistoryRow> Rows(int count, int64_t start) {
  std::vector<NodeHistoryRow> rows;
  for (int i = 0; i < count; ++i) {
    NodeHistoryRow& r = rows.emplace_back();
    r.node = absl::StrCat("n", i);
    r.width_s = 1;
    r.bucket.start_s = start;
    r.bucket.reports = 1;
    r.bucket.state_worst = v1::SYNC_STATE_SYNCHRONISED;
  }
  return rows;
}

TEST(NodeHistoryTest, PrunesEachTierPastItsRetentionInBatchesWhenDue) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("node_history_prune.db"));
  ASSERT_NE(store, nullptr);
  StoreWriter writer(store.get());
  NodeHistory history;  // the 1 s tier: 1 h, pruned every 5 min
  const absl::Time now = kT0 + absl::Hours(3);
  // 2.5 batches of rows beyond the hour, and one row within it.
  const int64_t old_start = kT0s;
  const int count = static_cast<int>(NodeHistory::kPruneBatch * 5 / 2);
  ASSERT_THAT(store->AppendNodeHistory(Rows(count, old_start)), IsOk());
  ASSERT_THAT(store->AppendNodeHistory(Rows(1, kT0s + 3 * 3600 - 10)), IsOk());
  // Minute rows as old are within their week: kept.
  std::vector<NodeHistoryRow> minute = Rows(1, old_start);
  minute[0].width_s = 60;
  ASSERT_THAT(store->AppendNodeHistory(minute), IsOk());

  history.Flush(now, &writer);
  Drain(writer);
  // Every old 1 s row is gone (a chain that stopped after its first batch
  // would leave 15 000), the recent one and the minute row are kept.
  EXPECT_THAT(store->PruneNodeHistory(1, now - absl::Hours(1), 1 << 30),
              ::ntpfleet::testing::IsOkAndHolds(0));
  absl::StatusOr<std::vector<NodeBucket>> kept =
      store->NodeHistory("n0", 1, kT0, now, 0);
  ASSERT_THAT(kept, IsOk());
  EXPECT_THAT(*kept, SizeIs(1));
  kept = store->NodeHistory("n0", 60, kT0, now, 0);
  ASSERT_THAT(kept, IsOk());
  EXPECT_THAT(*kept, SizeIs(1));

  // Not due again before its interval: old rows written now stay...
  ASSERT_THAT(store->AppendNodeHistory(Rows(3, old_start)), IsOk());
  history.Flush(now + absl::Minutes(4), &writer);
  Drain(writer);
  kept = store->NodeHistory("n2", 1, kT0, kT0 + absl::Minutes(1), 0);
  ASSERT_THAT(kept, IsOk());
  EXPECT_THAT(*kept, SizeIs(1));
  // ...until it is.
  history.Flush(now + absl::Minutes(5), &writer);
  Drain(writer);
  kept = store->NodeHistory("n2", 1, kT0, kT0 + absl::Minutes(1), 0);
  ASSERT_THAT(kept, IsOk());
  EXPECT_THAT(*kept, IsEmpty());
}

}  // namespace
}  // namespace ntpfleet::controller
