// Store: inventory (and forgetting a node), skew history (with thinning),
// resync audit log (begun before the action, finished after; records of a
// controller killed mid-resync completed as interrupted on the next open);
// reopening after a clean close and after the writing process was killed with
// SIGKILL; migration from schema 1; WAL mode and schema version checked on the
// file itself; corrupt files moved aside by OpenOrRecover, foreign ones never;
// clear errors. Also SkewDownsampler.
#include "controller/store.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_files.h"

namespace ntpfleet::controller {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::IsOkAndHolds;
using ::ntpfleet::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

v1::Hello MakeHello(const std::string& name, const std::string& version) {
  v1::Hello hello;
  hello.set_node_name(name);
  hello.set_agent_version(version);
  hello.add_addresses("10.0.0.1");
  (*hello.mutable_labels())["rack"] = "r1";
  return hello;
}

v1::SkewPoint MakePoint(absl::Time t, absl::Duration skew,
                        absl::Duration error = absl::Microseconds(10),
                        uint32_t nodes = 3, uint32_t flagged = 0) {
  v1::SkewPoint p;
  SetTimestamp(t, p.mutable_time());
  SetDuration(skew, p.mutable_skew());
  SetDuration(error, p.mutable_max_error_bound());
  p.set_nodes(nodes);
  p.set_flagged(flagged);
  return p;
}

v1::NodeResyncResult MakeResult(const std::string& node,
                                v1::ResyncOutcome outcome,
                                absl::Duration before = absl::ZeroDuration(),
                                const std::string& error = "") {
  v1::NodeResyncResult r;
  r.set_node(node);
  r.mutable_result()->set_request_id("req");
  r.mutable_result()->set_outcome(outcome);
  SetDuration(before, r.mutable_result()->mutable_offset_before());
  r.mutable_result()->set_error(error);
  return r;
}

using ::ntpfleet::testing::FreshDb;
using ::ntpfleet::testing::MustOpen;
using ::ntpfleet::testing::TmpPath;

// Runs one SQL statement on its own connection (creating the file if need
// be); returns the first column of
// the first row as text ("" if none).
std::string RawQuery(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
      SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string out;
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  } else {
    EXPECT_TRUE(rc == SQLITE_ROW || rc == SQLITE_DONE) << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

std::vector<absl::Duration> Skews(const std::vector<v1::SkewPoint>& points) {
  std::vector<absl::Duration> out;
  for (const v1::SkewPoint& p : points) out.push_back(FromProto(p.skew()));
  return out;
}

v1::ResyncRequest MakeRequest(std::vector<std::string> names,
                              bool dry_run = false, bool allow_step = false,
                              bool force = false) {
  v1::ResyncRequest request;
  for (const std::string& name : names) {
    request.mutable_selector()->add_names(name);
  }
  request.set_dry_run(dry_run);
  request.set_allow_step(allow_step);
  request.set_force(force);
  request.set_requested_by("ignored: not verified");
  return request;
}

// BeginResync then FinishResync; the record's id.
absl::StatusOr<int64_t> Resync(
    Store& store, const std::string& who, const v1::ResyncRequest& request,
    const std::string& request_id, absl::Time when,
    const std::vector<v1::NodeResyncResult>& results) {
  std::vector<std::string> asked;
  for (const v1::NodeResyncResult& r : results) asked.push_back(r.node());
  absl::StatusOr<int64_t> id =
      store.BeginResync(who, request, request_id, when, asked);
  if (!id.ok()) return id.status();
  if (absl::Status s = store.FinishResync(*id, results); !s.ok()) return s;
  return id;
}

std::vector<v1::ResyncOutcome> Outcomes(const v1::AuditRecord& record) {
  std::vector<v1::ResyncOutcome> out;
  for (const v1::NodeResyncResult& r : record.results()) {
    out.push_back(r.result().outcome());
  }
  return out;
}

std::vector<std::string> Nodes(const v1::AuditRecord& record) {
  std::vector<std::string> out;
  for (const v1::NodeResyncResult& r : record.results()) {
    out.push_back(r.node());
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

// The files in path's directory whose names start with path's name + prefix.
std::vector<std::string> Siblings(const std::string& path,
                                  const std::string& prefix) {
  const std::filesystem::path p(path);
  const std::string start = p.filename().string() + prefix;
  std::vector<std::string> out;
  for (const auto& entry :
       std::filesystem::directory_iterator(p.parent_path())) {
    const std::string name = entry.path().filename().string();
    if (name.compare(0, start.size(), start) == 0) {
      out.push_back(entry.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A bucket of `reports` reports starting at `start_s`, with every field set.
NodeBucket MakeBucket(int64_t start_s, uint32_t reports,
                      int64_t offset_ns = 1000) {
  NodeBucket b;
  b.start_s = start_s;
  b.reports = reports;
  b.has_offset = true;
  b.offset_min_ns = offset_ns - 500;
  b.offset_max_ns = offset_ns + 500;
  b.offset_last_ns = offset_ns;
  b.has_error_bound = true;
  b.error_max_ns = 200000;
  b.stratum_max = 2;
  b.state_worst = v1::SYNC_STATE_SYNCHRONISED;
  return b;
}

NodeHistoryRow MakeRow(const std::string& node, int64_t width_s,
                       const NodeBucket& bucket) {
  NodeHistoryRow r;
  r.node = node;
  r.width_s = width_s;
  r.bucket = bucket;
  return r;
}

// Column `col` of every row of `sql`, joined by "|".
std::string RawQueryAll(const std::string& path, const std::string& sql,
                        int col) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr),
            SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string out;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, col);
    absl::StrAppend(&out, out.empty() ? "" : "|",
                    text != nullptr ? reinterpret_cast<const char*>(text) : "");
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

TEST(StoreTest, NodeHistoryRoundTripKeepsNodesAndTiersApart) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("node_history.db"));
  ASSERT_NE(store, nullptr);
  const int64_t t0 = absl::ToUnixSeconds(kT0);
  NodeBucket bare;  // no offset, no error bound: NULLs in the file
  bare.start_s = t0 + 2;
  bare.reports = 1;
  bare.stratum_max = 16;
  bare.state_worst = v1::SYNC_STATE_UNSYNCHRONISED;
  ASSERT_THAT(store->AppendNodeHistory({
                  MakeRow("a", 1, MakeBucket(t0, 1, 10)),
                  MakeRow("a", 1, MakeBucket(t0 + 1, 1, -20)),
                  MakeRow("a", 1, bare),
                  MakeRow("b", 1, MakeBucket(t0 + 1, 1, 99)),
                  MakeRow("a", 60, MakeBucket(t0 - t0 % 60, 3, 7)),
              }),
              IsOk());
  absl::StatusOr<std::vector<NodeBucket>> a =
      store->NodeHistory("a", 1, kT0, kT0 + absl::Seconds(10), 0);
  ASSERT_THAT(a, IsOk());
  EXPECT_THAT(
      *a, ElementsAre(MakeBucket(t0, 1, 10), MakeBucket(t0 + 1, 1, -20), bare));
  // [start, end] is inclusive on both ends, and a start with a fraction of a
  // second leaves out the bucket that began before it.
  EXPECT_THAT(store->NodeHistory("a", 1, kT0 + absl::Milliseconds(1),
                                 kT0 + absl::Seconds(1), 0),
              IsOkAndHolds(ElementsAre(MakeBucket(t0 + 1, 1, -20))));
  EXPECT_THAT(store->NodeHistory("b", 1, kT0, kT0 + absl::Seconds(10), 0),
              IsOkAndHolds(ElementsAre(MakeBucket(t0 + 1, 1, 99))));
  EXPECT_THAT(store->NodeHistory("a", 60, kT0 - absl::Minutes(1),
                                 kT0 + absl::Minutes(1), 0),
              IsOkAndHolds(ElementsAre(MakeBucket(t0 - t0 % 60, 3, 7))));
  EXPECT_THAT(store->NodeHistory("nobody", 1, kT0, kT0 + absl::Seconds(10), 0),
              IsOkAndHolds(SizeIs(0)));
  EXPECT_THAT(store->HasNodeHistory("a"), IsOkAndHolds(true));
  EXPECT_THAT(store->HasNodeHistory("nobody"), IsOkAndHolds(false));
  // Only the newest max_points bucket starts are looked at.
  EXPECT_THAT(store->NodeHistory("a", 1, kT0, kT0 + absl::Seconds(2), 2),
              IsOkAndHolds(ElementsAre(MakeBucket(t0 + 1, 1, -20), bare)));
  EXPECT_THAT(
      store->AppendNodeHistory({MakeRow("", 1, bare)}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("node name")));
}

TEST(StoreTest, NodeHistoryMergesABucketWrittenTwice) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("node_history_merge.db"));
  ASSERT_NE(store, nullptr);
  const int64_t t0 = absl::ToUnixSeconds(kT0) / 3600 * 3600;
  NodeBucket first = MakeBucket(t0, 10, 1000);  // offsets 500..1500
  NodeBucket later = MakeBucket(t0, 5, 4000);   // offsets 3500..4500
  later.error_max_ns = 100;                     // smaller: the first's stays
  later.stratum_max = 3;
  later.state_worst = v1::SYNC_STATE_HOLDOVER;
  ASSERT_THAT(store->AppendNodeHistory({MakeRow("a", 3600, first)}), IsOk());
  ASSERT_THAT(store->AppendNodeHistory({MakeRow("a", 3600, later)}), IsOk());
  NodeBucket merged = first;
  MergeNodeBucket(later, &merged);
  EXPECT_EQ(merged.reports, 15u);
  EXPECT_EQ(merged.offset_min_ns, 500);
  EXPECT_EQ(merged.offset_max_ns, 4500);
  EXPECT_EQ(merged.offset_last_ns, 4000);
  EXPECT_EQ(merged.error_max_ns, 200000);
  EXPECT_EQ(merged.stratum_max, 3u);
  EXPECT_EQ(merged.state_worst, v1::SYNC_STATE_HOLDOVER);
  // SQLite's merge agrees with MergeNodeBucket, and a later better state does
  // not hide the worse one; a bucket without offset keeps the stored one.
  NodeBucket bare;
  bare.start_s = t0;
  bare.reports = 1;
  bare.state_worst = v1::SYNC_STATE_SYNCHRONISED;
  ASSERT_THAT(store->AppendNodeHistory({MakeRow("a", 3600, bare)}), IsOk());
  MergeNodeBucket(bare, &merged);
  EXPECT_EQ(merged.offset_last_ns, 4000);
  EXPECT_THAT(store->NodeHistory("a", 3600, absl::FromUnixSeconds(t0),
                                 absl::FromUnixSeconds(t0), 0),
              IsOkAndHolds(ElementsAre(merged)));
}

TEST(StoreTest, PruneNodeHistoryDeletesTheOldestInBatches) {
  const std::string path = FreshDb("node_history_prune.db");
  std::unique_ptr<Store> store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  const int64_t t0 = absl::ToUnixSeconds(kT0);
  std::vector<NodeHistoryRow> rows;
  for (int s = 0; s < 25; ++s)
    rows.push_back(MakeRow("a", 1, MakeBucket(t0 + s, 1)));
  rows.push_back(MakeRow("a", 60, MakeBucket(t0 - t0 % 60, 1)));
  ASSERT_THAT(store->AppendNodeHistory(rows), IsOk());
  const absl::Time cutoff = kT0 + absl::Seconds(25);
  EXPECT_THAT(store->PruneNodeHistory(1, cutoff, 10), IsOkAndHolds(10));
  // The oldest went first.
  EXPECT_THAT(store->NodeHistory("a", 1, kT0, cutoff, 0),
              IsOkAndHolds(SizeIs(15)));
  EXPECT_THAT(store->NodeHistory("a", 1, kT0, kT0 + absl::Seconds(9), 0),
              IsOkAndHolds(SizeIs(0)));
  EXPECT_THAT(store->PruneNodeHistory(1, cutoff, 10), IsOkAndHolds(10));
  EXPECT_THAT(store->PruneNodeHistory(1, cutoff, 10), IsOkAndHolds(5));
  EXPECT_THAT(store->PruneNodeHistory(1, cutoff, 10), IsOkAndHolds(0));
  // Another tier is left alone.
  EXPECT_EQ(RawQuery(path, "SELECT count(*) FROM node_history"), "1");
}

TEST(StoreTest, NodeHistoryLooksUpEachBucketByPrimaryKey) {
  const std::string path = FreshDb("node_history_plan.db");
  ASSERT_NE(MustOpen(path), nullptr);
  // The statement Store prepares, as the planner sees it: the generated
  // starts outside, one primary-key search of node_history per start. A plan
  // that scans node_history (every node's rows in the span) reads "SCAN h".
  const std::string plan = RawQueryAll(
      path,
      "EXPLAIN QUERY PLAN WITH RECURSIVE t(s) AS (SELECT ?2 UNION ALL "
      "SELECT s + ?4 FROM t WHERE s + ?4 <= ?3) "
      "SELECT h.start_s FROM t CROSS JOIN node_history AS h "
      "ON h.width_s = ?4 AND h.start_s = t.s AND h.node_id = ?1 "
      "ORDER BY h.start_s",
      3);
  EXPECT_THAT(plan, HasSubstr("SEARCH h USING PRIMARY KEY (width_s=? AND "
                              "start_s=? AND node_id=?)"));
  EXPECT_THAT(plan, ::testing::Not(HasSubstr("SCAN h")));
}

// Writes one of everything.
void WriteSample(Store& store) {
  ASSERT_THAT(store.UpsertNode(MakeHello("a", "1.0"), kT0), IsOk());
  ASSERT_THAT(store.AppendSkew(MakePoint(kT0, absl::Microseconds(250))),
              IsOk());
  ASSERT_THAT(Resync(store, "alice", MakeRequest({"a"}), "req-1", kT0,
                     {MakeResult("a", v1::RESYNC_OUTCOME_OK)}),
              IsOk());
}

// Checks WriteSample's data is all there.
void ExpectSample(Store& store) {
  absl::StatusOr<std::vector<Store::NodeRecord>> nodes = store.LoadNodes();
  ASSERT_THAT(nodes, IsOk());
  ASSERT_THAT(*nodes, SizeIs(1));
  EXPECT_EQ((*nodes)[0].hello.agent_version(), "1.0");
  EXPECT_EQ((*nodes)[0].last_seen, kT0);

  absl::StatusOr<std::vector<v1::SkewPoint>> history =
      store.History(absl::InfinitePast(), absl::InfiniteFuture(), 0);
  ASSERT_THAT(history, IsOk());
  EXPECT_THAT(Skews(*history), ElementsAre(absl::Microseconds(250)));

  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store.Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(1));
  EXPECT_EQ((*audit)[0].requested_by(), "alice");
  EXPECT_THAT(Outcomes((*audit)[0]), ElementsAre(v1::RESYNC_OUTCOME_OK));
}

TEST(StoreTest, NewDatabaseIsInWalModeWithTheCurrentSchemaVersion) {
  const std::string path = FreshDb("wal.db");
  std::unique_ptr<Store> store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->path(), path);
  // Checked on the file, through a separate connection.
  EXPECT_EQ(RawQuery(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(RawQuery(path, "PRAGMA user_version"),
            std::to_string(Store::kSchemaVersion));
  EXPECT_EQ(RawQuery(path, "PRAGMA application_id"),
            std::to_string(Store::kApplicationId));
}

TEST(StoreTest, NodeInventoryRoundTripKeepsFirstSeen) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("nodes.db"));
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->UpsertNode(MakeHello("b", "1.0"), kT0), IsOk());
  ASSERT_THAT(store->UpsertNode(MakeHello("a", "1.0"), kT0 + absl::Seconds(1)),
              IsOk());
  v1::Hello newer = MakeHello("b", "1.1");
  newer.set_instance_id("i2");
  ASSERT_THAT(store->UpsertNode(newer, kT0 + absl::Minutes(5)), IsOk());
  ASSERT_THAT(store->UpdateLastSeen(
                  {{"a", kT0 + absl::Minutes(7)}, {"not-in-inventory", kT0}}),
              IsOk());

  absl::StatusOr<std::vector<Store::NodeRecord>> nodes = store->LoadNodes();
  ASSERT_THAT(nodes, IsOk());
  ASSERT_THAT(*nodes, SizeIs(2));  // sorted by name
  const Store::NodeRecord& a = (*nodes)[0];
  const Store::NodeRecord& b = (*nodes)[1];
  EXPECT_EQ(a.hello.node_name(), "a");
  EXPECT_EQ(a.first_seen, kT0 + absl::Seconds(1));
  EXPECT_EQ(a.last_seen, kT0 + absl::Minutes(7));
  EXPECT_EQ(b.hello.node_name(), "b");
  EXPECT_EQ(b.hello.agent_version(), "1.1");  // the latest Hello
  EXPECT_EQ(b.hello.instance_id(), "i2");
  EXPECT_EQ(b.hello.labels().at("rack"), "r1");
  EXPECT_EQ(b.first_seen, kT0);  // kept
  EXPECT_EQ(b.last_seen, kT0 + absl::Minutes(5));
}

TEST(StoreTest, RejectsNodeWithoutName) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("noname.db"));
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->UpsertNode(v1::Hello(), kT0),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("without a name")));
}

TEST(StoreTest, SkewHistoryRangeAndRoundTrip) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("history.db"));
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(store->AppendSkew(MakePoint(
                    kT0 + absl::Seconds(10 * i), absl::Microseconds(100 + i),
                    absl::Nanoseconds(-1), 7, static_cast<uint32_t>(i))),
                IsOk());
  }
  // [10 s, 30 s], both ends included.
  absl::StatusOr<std::vector<v1::SkewPoint>> points = store->History(
      kT0 + absl::Seconds(10), kT0 + absl::Seconds(30), /*max_points=*/100);
  ASSERT_THAT(points, IsOk());
  EXPECT_THAT(Skews(*points),
              ElementsAre(absl::Microseconds(101), absl::Microseconds(102),
                          absl::Microseconds(103)));
  const v1::SkewPoint& p = (*points)[0];
  EXPECT_EQ(FromProto(p.time()), kT0 + absl::Seconds(10));
  EXPECT_EQ(FromProto(p.max_error_bound()), absl::Nanoseconds(-1));
  EXPECT_EQ(p.nodes(), 7u);
  EXPECT_EQ(p.flagged(), 1u);
}

// Ten points, skews 1..10 µs except a 50 µs spike at index 6, thinned to 3:
// runs [0,3) [3,6) [6,10) -> times 0, 30, 60 s; skews max(1,2,3)=3,
// max(4,5,6)=6, max(50,8,9,10)=50: the spike survives.
TEST(StoreTest, HistoryThinsToMaxPointsKeepingTheMaximumOfEachRun) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("thin.db"));
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 10; ++i) {
    const absl::Duration skew = absl::Microseconds(i == 6 ? 50 : i + 1);
    ASSERT_THAT(
        store->AppendSkew(MakePoint(kT0 + absl::Seconds(10 * i), skew,
                                    absl::Microseconds(i), 3, i == 4 ? 2 : 0)),
        IsOk());
  }
  absl::StatusOr<std::vector<v1::SkewPoint>> points =
      store->History(kT0, kT0 + absl::Hours(1), 3);
  ASSERT_THAT(points, IsOk());
  EXPECT_THAT(Skews(*points),
              ElementsAre(absl::Microseconds(3), absl::Microseconds(6),
                          absl::Microseconds(50)));
  ASSERT_THAT(*points, SizeIs(3));
  EXPECT_EQ(FromProto((*points)[0].time()), kT0);
  EXPECT_EQ(FromProto((*points)[1].time()), kT0 + absl::Seconds(30));
  EXPECT_EQ(FromProto((*points)[2].time()), kT0 + absl::Seconds(60));
  EXPECT_EQ(FromProto((*points)[2].max_error_bound()), absl::Microseconds(9));
  EXPECT_EQ((*points)[1].flagged(), 2u);
  EXPECT_EQ((*points)[0].flagged(), 0u);

  // No limit, or a limit above the count: every row.
  EXPECT_THAT(store->History(kT0, kT0 + absl::Hours(1), 0),
              IsOkAndHolds(SizeIs(10)));
  EXPECT_THAT(store->History(kT0, kT0 + absl::Hours(1), 10),
              IsOkAndHolds(SizeIs(10)));
}

TEST(StoreTest, PruneHistoryDeletesOnlyOlderPoints) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("prune.db"));
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 4; ++i) {
    ASSERT_THAT(store->AppendSkew(
                    MakePoint(kT0 + absl::Hours(i), absl::Microseconds(i))),
                IsOk());
  }
  EXPECT_THAT(store->PruneHistory(kT0 + absl::Hours(2)), IsOkAndHolds(2));
  absl::StatusOr<std::vector<v1::SkewPoint>> points =
      store->History(absl::InfinitePast(), absl::InfiniteFuture(), 0);
  ASSERT_THAT(points, IsOk());
  EXPECT_THAT(Skews(*points),
              ElementsAre(absl::Microseconds(2), absl::Microseconds(3)));
}

TEST(StoreTest, AuditRecordsWhoWhenSelectorOptionsAndEachResult) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("audit.db"));
  ASSERT_NE(store, nullptr);
  absl::StatusOr<int64_t> first =
      Resync(*store, "user:alice (operator)",
             MakeRequest({"a", "b"}, /*dry_run=*/false, /*allow_step=*/true,
                         /*force=*/true),
             "req-1", kT0,
             {MakeResult("a", v1::RESYNC_OUTCOME_OK, absl::Microseconds(-1250)),
              MakeResult("b", v1::RESYNC_OUTCOME_NOT_CONNECTED,
                         absl::ZeroDuration(), "no stream")});
  ASSERT_THAT(first, IsOk());
  v1::ResyncRequest all;
  all.mutable_selector()->set_all(true);
  all.set_dry_run(true);
  absl::StatusOr<int64_t> second = Resync(*store, "user:bob (admin)", all,
                                          "req-2", kT0 + absl::Minutes(1), {});
  ASSERT_THAT(second, IsOk());
  EXPECT_GT(*second, *first);

  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(2));
  const v1::AuditRecord& newest = (*audit)[0];
  EXPECT_EQ(newest.id(), *second);
  EXPECT_EQ(newest.requested_by(), "user:bob (admin)");
  EXPECT_EQ(newest.request_id(), "req-2");
  EXPECT_TRUE(newest.dry_run());
  EXPECT_FALSE(newest.allow_step());
  EXPECT_FALSE(newest.force());
  EXPECT_TRUE(newest.selector().all());
  EXPECT_EQ(FromProto(newest.time()), kT0 + absl::Minutes(1));
  EXPECT_EQ(newest.results_size(), 0);

  const v1::AuditRecord& oldest = (*audit)[1];
  EXPECT_EQ(oldest.id(), *first);
  EXPECT_EQ(oldest.requested_by(), "user:alice (operator)");
  EXPECT_EQ(FromProto(oldest.time()), kT0);
  EXPECT_FALSE(oldest.dry_run());
  EXPECT_TRUE(oldest.allow_step());
  EXPECT_TRUE(oldest.force());
  EXPECT_THAT(oldest.selector().names(), ElementsAre("a", "b"));
  EXPECT_THAT(Nodes(oldest), ElementsAre("a", "b"));
  EXPECT_THAT(Outcomes(oldest), ElementsAre(v1::RESYNC_OUTCOME_OK,
                                            v1::RESYNC_OUTCOME_NOT_CONNECTED));
  EXPECT_EQ(FromProto(oldest.results(0).result().offset_before()),
            absl::Microseconds(-1250));
  EXPECT_EQ(oldest.results(1).result().error(), "no stream");

  // The limit keeps the newest; `since` drops the older ones.
  absl::StatusOr<std::vector<v1::AuditRecord>> latest =
      store->Audit(absl::InfinitePast(), 1);
  ASSERT_THAT(latest, IsOk());
  ASSERT_THAT(*latest, SizeIs(1));
  EXPECT_EQ((*latest)[0].request_id(), "req-2");
  absl::StatusOr<std::vector<v1::AuditRecord>> recent =
      store->Audit(kT0 + absl::Seconds(1), 0);
  ASSERT_THAT(recent, IsOk());
  ASSERT_THAT(*recent, SizeIs(1));
  EXPECT_EQ((*recent)[0].request_id(), "req-2");
  absl::StatusOr<std::vector<v1::AuditRecord>> from_first =
      store->Audit(kT0, 0);  // `since` itself is included
  ASSERT_THAT(from_first, IsOk());
  EXPECT_THAT(*from_first, SizeIs(2));

  // Oldest last, with every node's result in the order recorded.
  EXPECT_EQ((*from_first)[1].requested_by(), "user:alice (operator)");
  ASSERT_THAT((*from_first)[1].results(), SizeIs(2));
  EXPECT_EQ((*from_first)[1].results(1).result().error(), "no stream");
}

// The record exists, committed, before any agent is asked; it is listed while
// in progress; its results come once, in one transaction.
TEST(StoreTest, BeginIsOnDiskBeforeFinishAndFinishHappensOnce) {
  const std::string path = FreshDb("begin.db");
  std::unique_ptr<Store> store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  absl::StatusOr<int64_t> id =
      store->BeginResync("user:alice (operator)", MakeRequest({"a", "b"}),
                         "req-1", kT0, {"a", "b"});
  ASSERT_THAT(id, IsOk());
  // Through another connection: committed.
  EXPECT_EQ(RawQuery(path,
                     "SELECT request_id || ' ' || finished FROM "
                     "resync_audit"),
            "req-1 0");
  EXPECT_EQ(RawQuery(path,
                     "SELECT group_concat(node, ',') FROM "
                     "(SELECT node FROM resync_asked ORDER BY seq)"),
            "a,b");
  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(1));
  EXPECT_EQ((*audit)[0].request_id(), "req-1");
  EXPECT_EQ((*audit)[0].results_size(), 0);  // in progress

  const std::vector<v1::NodeResyncResult> results = {
      MakeResult("a", v1::RESYNC_OUTCOME_OK),
      MakeResult("b", v1::RESYNC_OUTCOME_TIMED_OUT)};
  ASSERT_THAT(store->FinishResync(*id, results), IsOk());
  EXPECT_EQ(RawQuery(path, "SELECT finished FROM resync_audit"), "1");
  EXPECT_THAT(store->FinishResync(*id, results),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("req-1"), HasSubstr("already finished"),
                             HasSubstr(path))));
  EXPECT_THAT(store->FinishResync(*id + 100, results),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr(absl::StrCat("record ", *id + 100))));
  EXPECT_EQ(RawQuery(path, "SELECT count(*) FROM resync_results"), "2");
  audit = store->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(1));
  EXPECT_THAT(Outcomes((*audit)[0]),
              ElementsAre(v1::RESYNC_OUTCOME_OK, v1::RESYNC_OUTCOME_TIMED_OUT));
}

TEST(StoreTest, AuditLogIsReadableFromTheSqliteShell) {
  const std::string path = FreshDb("audit_sql.db");
  std::unique_ptr<Store> store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  v1::ResyncRequest request;
  request.mutable_selector()->set_label("rack=r1");
  request.set_allow_step(true);
  ASSERT_THAT(Resync(*store, "alice", request, "req-9", kT0,
                     {MakeResult("a", v1::RESYNC_OUTCOME_FAILED,
                                 absl::ZeroDuration(), "KoD")}),
              IsOk());
  EXPECT_EQ(RawQuery(path, "SELECT selector FROM resync_audit"),
            "label: \"rack=r1\"");
  EXPECT_EQ(RawQuery(path,
                     "SELECT allow_step || force || finished FROM "
                     "resync_audit"),
            "101");
  EXPECT_EQ(RawQuery(path,
                     "SELECT outcome || ' ' || error FROM "
                     "resync_results WHERE node = 'a'"),
            "RESYNC_OUTCOME_FAILED KoD");
}

// The controller is a child process killed with SIGKILL after BeginResync:
// the next Open completes the record, once.
TEST(StoreTest, ResyncBegunByAKilledControllerIsCompletedAsInterrupted) {
  const std::string path = FreshDb("interrupted.db");
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
    if (!store.ok()) _exit(2);
    // One finished record, then one begun and never finished.
    if (!Resync(**store, "alice", MakeRequest({"a"}), "req-1", kT0,
                {MakeResult("a", v1::RESYNC_OUTCOME_OK)})
             .ok() ||
        !(*store)
             ->BeginResync("bob", MakeRequest({}, false, true), "req-2",
                           kT0 + absl::Minutes(1), {"c", "a", "b"})
             .ok()) {
      _exit(3);
    }
    raise(SIGKILL);
    _exit(4);  // not reached
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus))
      << "child exited with " << WEXITSTATUS(wstatus);

  for (int open = 0; open < 2; ++open) {  // a second open changes nothing
    std::unique_ptr<Store> store = MustOpen(path);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->interrupted_on_open(), open == 0 ? 1 : 0);
    absl::StatusOr<std::vector<v1::AuditRecord>> audit =
        store->Audit(absl::InfinitePast(), 0);
    ASSERT_THAT(audit, IsOk());
    ASSERT_THAT(*audit, SizeIs(2));
    const v1::AuditRecord& interrupted = (*audit)[0];
    EXPECT_EQ(interrupted.request_id(), "req-2");
    EXPECT_EQ(interrupted.requested_by(), "bob");
    EXPECT_TRUE(interrupted.allow_step());
    EXPECT_THAT(Nodes(interrupted), ElementsAre("c", "a", "b"));  // as asked
    EXPECT_THAT(Outcomes(interrupted),
                ElementsAre(v1::RESYNC_OUTCOME_INTERRUPTED,
                            v1::RESYNC_OUTCOME_INTERRUPTED,
                            v1::RESYNC_OUTCOME_INTERRUPTED));
    EXPECT_EQ(interrupted.results(0).result().request_id(), "req-2");
    EXPECT_THAT(interrupted.results(0).result().error(),
                HasSubstr("controller stopped before this node's result"));
    EXPECT_THAT(Outcomes((*audit)[1]), ElementsAre(v1::RESYNC_OUTCOME_OK));
    // A late finish (e.g. a result straggling in) is refused, not doubled.
    EXPECT_THAT(store->FinishResync(interrupted.id(),
                                    {MakeResult("a", v1::RESYNC_OUTCOME_OK)}),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         HasSubstr("already finished")));
  }
  EXPECT_EQ(RawQuery(path,
                     "SELECT count(*) FROM resync_audit "
                     "WHERE finished = 0"),
            "0");
}

// Only the nodes asked that have no result are marked interrupted (a result
// row already there, e.g. written by hand, is kept and not doubled).
TEST(StoreTest, InterruptedRecordKeepsTheResultsItHas) {
  const std::string path = FreshDb("partial.db");
  int64_t id = 0;
  {
    std::unique_ptr<Store> store = MustOpen(path);
    ASSERT_NE(store, nullptr);
    absl::StatusOr<int64_t> begun = store->BeginResync(
        "alice", MakeRequest({"a", "b"}), "req-1", kT0, {"a", "b"});
    ASSERT_THAT(begun, IsOk());
    id = *begun;
  }
  const std::string ok_result =
      MakeResult("a", v1::RESYNC_OUTCOME_OK).result().SerializeAsString();
  RawQuery(path, absl::StrCat("INSERT INTO resync_results "
                              "(audit_id, seq, node, outcome, error, result) "
                              "VALUES (",
                              id, ", 0, 'a', 'RESYNC_OUTCOME_OK', '', x'",
                              absl::BytesToHexString(ok_result), "')"));
  std::unique_ptr<Store> store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(1));
  EXPECT_THAT(Nodes((*audit)[0]), ElementsAre("a", "b"));
  EXPECT_THAT(
      Outcomes((*audit)[0]),
      ElementsAre(v1::RESYNC_OUTCOME_OK, v1::RESYNC_OUTCOME_INTERRUPTED));
}

TEST(StoreTest, ForgetNodeRemovesItFromTheInventoryOnly) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("forget.db"));
  ASSERT_NE(store, nullptr);
  WriteSample(*store);  // node a, one skew point, one resync of a
  ASSERT_THAT(store->UpsertNode(MakeHello("b", "1.0"), kT0), IsOk());
  ASSERT_THAT(store->ForgetNode("a"), IsOk());
  absl::StatusOr<std::vector<Store::NodeRecord>> nodes = store->LoadNodes();
  ASSERT_THAT(nodes, IsOk());
  ASSERT_THAT(*nodes, SizeIs(1));
  EXPECT_EQ((*nodes)[0].hello.node_name(), "b");
  EXPECT_THAT(store->ForgetNode("a"),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("'a'"), HasSubstr("inventory"))));
  // History and audit are kept.
  EXPECT_THAT(store->History(absl::InfinitePast(), absl::InfiniteFuture(), 0),
              IsOkAndHolds(SizeIs(1)));
  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(1));
  EXPECT_THAT(Nodes((*audit)[0]), ElementsAre("a"));
}

TEST(StoreTest, EverythingIsThereAfterReopening) {
  const std::string path = FreshDb("reopen.db");
  {
    std::unique_ptr<Store> store = MustOpen(path);
    ASSERT_NE(store, nullptr);
    WriteSample(*store);
  }  // closed
  std::unique_ptr<Store> store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  ExpectSample(*store);
}

// The writer is a child process killed with SIGKILL while its connection is
// open: no destructor, no checkpoint, the data only in the -wal file.
TEST(StoreTest, NothingIsLostWhenTheWritingProcessIsKilled) {
  const std::string path = FreshDb("killed.db");
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
    if (!store.ok()) _exit(2);
    // Plain calls, no gtest assertions in the child.
    bool ok =
        (*store)->UpsertNode(MakeHello("a", "1.0"), kT0).ok() &&
        (*store)->AppendSkew(MakePoint(kT0, absl::Microseconds(250))).ok();
    ok = ok && Resync(**store, "alice", MakeRequest({"a"}), "req-1", kT0,
                      {MakeResult("a", v1::RESYNC_OUTCOME_OK)})
                   .ok();
    if (!ok) _exit(3);
    raise(SIGKILL);
    _exit(4);  // not reached
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus))
      << "child exited with " << WEXITSTATUS(wstatus);
  ASSERT_EQ(WTERMSIG(wstatus), SIGKILL);
  // The close never happened: the WAL is still there, not checkpointed.
  EXPECT_TRUE(std::ifstream(path + "-wal").good());

  std::unique_ptr<Store> store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  ExpectSample(*store);
}

// A second connection sees what the first committed while the first is still
// open (and never closed properly before the check).
TEST(StoreTest, CommittedWritesAreVisibleToAnotherConnectionAtOnce) {
  const std::string path = FreshDb("two.db");
  std::unique_ptr<Store> writer = MustOpen(path);
  ASSERT_NE(writer, nullptr);
  WriteSample(*writer);
  std::unique_ptr<Store> reader = MustOpen(path);
  ASSERT_NE(reader, nullptr);
  ExpectSample(*reader);
}

TEST(StoreTest, MissingDirectoryGivesAClearError) {
  const std::string path = TmpPath("no/such/dir/controller.db");
  EXPECT_THAT(Store::Open(path),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path), HasSubstr("cannot open"),
                             HasSubstr("unable to open database file"),
                             HasSubstr("directory exists"))));
}

TEST(StoreTest, RefusesPathsThatAreNotFiles) {
  for (const char* path : {"", ":memory:"}) {
    EXPECT_THAT(Store::Open(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("not a file path")));
  }
}

TEST(StoreTest, FileThatIsNotADatabaseGivesAClearError) {
  const std::string path = FreshDb("garbage.db");
  std::ofstream(path) << std::string(4096, 'x');
  EXPECT_THAT(
      Store::Open(path),
      StatusIs(absl::StatusCode::kDataLoss,
               AllOf(HasSubstr(path), HasSubstr("file is not a database"))));
}

TEST(StoreTest, RefusesNewerSchemaVersion) {
  const std::string path = FreshDb("newer.db");
  ASSERT_NE(MustOpen(path), nullptr);
  RawQuery(path, "PRAGMA user_version = 99");
  EXPECT_THAT(
      Store::Open(path),
      StatusIs(
          absl::StatusCode::kFailedPrecondition,
          AllOf(HasSubstr(path), HasSubstr("schema version 99"),
                HasSubstr(absl::StrCat("(", Store::kSchemaVersion, ")")))));
}

TEST(StoreTest, RefusesSomeoneElsesDatabaseWithoutTouchingIt) {
  const std::string path = FreshDb("foreign.db");
  RawQuery(path, "CREATE TABLE inventory (x INTEGER)");
  EXPECT_THAT(
      Store::Open(path),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               AllOf(HasSubstr(path),
                     HasSubstr("not an ntpfleet controller database"))));
  EXPECT_EQ(RawQuery(path, "PRAGMA journal_mode"), "delete");  // untouched

  const std::string tagged = FreshDb("tagged.db");
  RawQuery(tagged, "PRAGMA application_id = 1234");
  EXPECT_THAT(Store::Open(tagged),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("application_id 0x000004d2")));
}

// Schema version 1 as shipped, verbatim (a database written by the previous
// release), with one node and one resync record.
constexpr const char* kSchemaV1 = R"sql(
    CREATE TABLE nodes (
      name TEXT PRIMARY KEY NOT NULL,
      first_seen_ns INTEGER NOT NULL,
      last_seen_ns INTEGER NOT NULL,
      hello BLOB NOT NULL                -- serialized ntpfleet.v1.Hello
    ) WITHOUT ROWID;

    CREATE TABLE skew_history (
      time_ns INTEGER NOT NULL,
      skew_ns INTEGER NOT NULL,
      max_error_bound_ns INTEGER NOT NULL,
      nodes INTEGER NOT NULL,
      flagged INTEGER NOT NULL
    );
    CREATE INDEX skew_history_by_time ON skew_history (time_ns);

    CREATE TABLE resync_audit (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      time_ns INTEGER NOT NULL,
      requested_by TEXT NOT NULL,
      request_id TEXT NOT NULL,
      dry_run INTEGER NOT NULL,
      selector TEXT NOT NULL,            -- readable, e.g. names: "a" all: true
      selector_pb BLOB NOT NULL          -- serialized ntpfleet.v1.NodeSelector
    );

    CREATE TABLE resync_results (
      audit_id INTEGER NOT NULL REFERENCES resync_audit (id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      node TEXT NOT NULL,
      outcome TEXT NOT NULL,             -- e.g. RESYNC_OUTCOME_OK
      error TEXT NOT NULL,
      result BLOB NOT NULL,              -- serialized ntpfleet.v1.ResyncResult
      PRIMARY KEY (audit_id, seq)
    ) WITHOUT ROWID;
    )sql";

// Runs a script of several statements on a connection of its own.
void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
      SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

TEST(StoreTest, SchemaVersion1DatabaseMigratesForward) {
  const std::string path = FreshDb("v1.db");
  v1::NodeSelector selector;
  selector.add_names("a");
  const std::string ok_result =
      MakeResult("a", v1::RESYNC_OUTCOME_OK).result().SerializeAsString();
  RawExec(path,
          absl::StrCat(
              "PRAGMA journal_mode=WAL; BEGIN;", kSchemaV1,
              "INSERT INTO nodes VALUES ('a', ", absl::ToUnixNanos(kT0), ", ",
              absl::ToUnixNanos(kT0), ", x'",
              absl::BytesToHexString(MakeHello("a", "0.9").SerializeAsString()),
              "');"
              "INSERT INTO resync_audit (time_ns, requested_by, request_id, "
              "dry_run, selector, selector_pb) VALUES (",
              absl::ToUnixNanos(kT0),
              ", 'alice', 'old-1', 0, 'names: \"a\"', "
              "x'",
              absl::BytesToHexString(selector.SerializeAsString()),
              "');"
              "INSERT INTO resync_results VALUES (1, 0, 'a', "
              "'RESYNC_OUTCOME_OK', '', x'",
              absl::BytesToHexString(ok_result),
              "');"
              "INSERT INTO skew_history VALUES (",
              absl::ToUnixNanos(kT0),
              ", 250000, 10000, 3, 0);"
              "PRAGMA user_version=1; PRAGMA application_id=",
              Store::kApplicationId, "; COMMIT;"));
  ASSERT_EQ(RawQuery(path, "PRAGMA user_version"), "1");

  std::unique_ptr<Store> store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawQuery(path, "PRAGMA user_version"),
            std::to_string(Store::kSchemaVersion));
  EXPECT_EQ(store->interrupted_on_open(), 0);  // version 1 records are whole
  absl::StatusOr<std::vector<Store::NodeRecord>> nodes = store->LoadNodes();
  ASSERT_THAT(nodes, IsOk());
  ASSERT_THAT(*nodes, SizeIs(1));
  EXPECT_EQ((*nodes)[0].hello.agent_version(), "0.9");
  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(1));
  EXPECT_EQ((*audit)[0].request_id(), "old-1");
  EXPECT_FALSE((*audit)[0].allow_step());
  EXPECT_FALSE((*audit)[0].force());
  EXPECT_THAT((*audit)[0].selector().names(), ElementsAre("a"));
  EXPECT_THAT(Outcomes((*audit)[0]), ElementsAre(v1::RESYNC_OUTCOME_OK));
  // And the new columns work on the migrated file.
  ASSERT_THAT(
      Resync(*store, "bob", MakeRequest({"a"}, false, true, true), "new-1",
             kT0 + absl::Minutes(1), {MakeResult("a", v1::RESYNC_OUTCOME_OK)}),
      IsOk());
  audit = store->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(2));
  EXPECT_EQ((*audit)[0].request_id(), "new-1");
  EXPECT_TRUE((*audit)[0].force());
  // The fleet's skew history is kept; per-node history (schema 3) works.
  absl::StatusOr<std::vector<v1::SkewPoint>> skew =
      store->History(absl::InfinitePast(), absl::InfiniteFuture(), 0);
  ASSERT_THAT(skew, IsOk());
  EXPECT_THAT(Skews(*skew), ElementsAre(absl::Microseconds(250)));
  NodeHistoryRow row;
  row.node = "a";
  row.width_s = 60;
  row.bucket = MakeBucket(absl::ToUnixSeconds(kT0) / 60 * 60, 5);
  ASSERT_THAT(store->AppendNodeHistory({row}), IsOk());
  EXPECT_THAT(store->NodeHistory("a", 60, kT0 - absl::Hours(1), kT0, 0),
              IsOkAndHolds(ElementsAre(row.bucket)));
}

TEST(StoreTest, OpenOrRecoverMovesAGarbageFileAsideNeverOverwriting) {
  const std::string path = FreshDb("recover_garbage.db");
  for (const std::string& old : Siblings(path, ".corrupt-")) {
    std::filesystem::remove(old);
  }
  std::vector<std::string> asides;
  for (int round = 0; round < 2; ++round) {  // likely within the same second
    const std::string garbage =
        absl::StrCat("garbage ", round, " ", std::string(4096, 'x'));
    std::ofstream(path, std::ios::binary | std::ios::trunc) << garbage;
    std::string note = "stale";
    absl::StatusOr<std::unique_ptr<Store>> store =
        Store::OpenOrRecover(path, &note);
    ASSERT_THAT(store, IsOk());
    const std::vector<std::string> now = Siblings(path, ".corrupt-");
    ASSERT_THAT(now, SizeIs(round + 1));
    std::string aside;
    for (const std::string& f : now) {
      if (std::find(asides.begin(), asides.end(), f) == asides.end()) aside = f;
    }
    ASSERT_FALSE(aside.empty());
    asides.push_back(aside);
    EXPECT_EQ(ReadFile(aside), garbage);  // moved, intact
    EXPECT_THAT(note, AllOf(HasSubstr("CORRUPT"), HasSubstr(path),
                            HasSubstr(aside), HasSubstr("not a database")));
    EXPECT_EQ(note.find('\n'), std::string::npos);  // one line
    // A fresh database, usable.
    EXPECT_THAT((*store)->LoadNodes(), IsOkAndHolds(SizeIs(0)));
    EXPECT_THAT((*store)->UpsertNode(MakeHello("a", "1"), kT0), IsOk());
  }
  EXPECT_EQ(ReadFile(asides[0]).substr(0, 9), "garbage 0");  // not overwritten
  // A good database: no note, nothing moved.
  std::string note = "stale";
  ASSERT_THAT(Store::OpenOrRecover(path, &note), IsOk());
  EXPECT_EQ(note, "");
  EXPECT_THAT(Siblings(path, ".corrupt-"), SizeIs(2));
}

// A valid ntpfleet database (checkpointed, closed) with one page overwritten.
TEST(StoreTest, OpenOrRecoverMovesADatabaseWithACorruptPageAside) {
  const std::string path = FreshDb("recover_page.db");
  for (const std::string& old : Siblings(path, ".corrupt-")) {
    std::filesystem::remove(old);
  }
  {
    std::unique_ptr<Store> store = MustOpen(path);
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 300; ++i) {
      v1::Hello hello = MakeHello(absl::StrCat("node-", i), "1.0");
      hello.set_config_digest(std::string(64, 'f'));
      ASSERT_THAT(store->UpsertNode(hello, kT0), IsOk());
    }
  }  // closed: checkpointed into the main file, -wal removed
  const int page_size = std::stoi(RawQuery(path, "PRAGMA page_size"));
  const int pages = std::stoi(RawQuery(path, "PRAGMA page_count"));
  ASSERT_GT(pages, 8);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(page_size) * (pages - 2));
    f << std::string(static_cast<size_t>(page_size), '\x5a');
  }
  EXPECT_THAT(Store::Open(path),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(path)));

  std::string note;
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::OpenOrRecover(path, &note);
  ASSERT_THAT(store, IsOk());
  const std::vector<std::string> asides = Siblings(path, ".corrupt-");
  ASSERT_THAT(asides, SizeIs(1));
  EXPECT_THAT(asides[0],
              ::testing::MatchesRegex(".*\\.corrupt-[0-9]{8}T[0-9]{6}Z"));
  EXPECT_THAT(note, AllOf(HasSubstr(path), HasSubstr(asides[0])));
  EXPECT_THAT((*store)->LoadNodes(), IsOkAndHolds(SizeIs(0)));
}

TEST(StoreTest, OpenOrRecoverLeavesForeignAndNewerDatabasesAlone) {
  const std::string foreign = FreshDb("recover_foreign.db");
  RawQuery(foreign, "CREATE TABLE inventory (x INTEGER)");
  RawQuery(foreign, "INSERT INTO inventory VALUES (42)");
  const std::string before = ReadFile(foreign);
  std::string note = "stale";
  EXPECT_THAT(Store::OpenOrRecover(foreign, &note),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not an ntpfleet controller database")));
  EXPECT_EQ(note, "");
  EXPECT_EQ(ReadFile(foreign), before);  // untouched
  EXPECT_THAT(Siblings(foreign, ".corrupt-"), SizeIs(0));

  const std::string newer = FreshDb("recover_newer.db");
  ASSERT_NE(MustOpen(newer), nullptr);
  RawQuery(newer, "PRAGMA user_version = 99");
  EXPECT_THAT(Store::OpenOrRecover(newer, &note),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("schema version 99")));
  EXPECT_EQ(RawQuery(newer, "PRAGMA user_version"), "99");
  EXPECT_THAT(Siblings(newer, ".corrupt-"), SizeIs(0));
}

// --- SkewDownsampler --------------------------------------------------------

v1::Fleet Snapshot(absl::Time as_of, absl::Duration skew, absl::Duration error,
                   int counted, uint32_t flagged) {
  v1::Fleet fleet;
  SetTimestamp(as_of, fleet.mutable_as_of());
  SetDuration(skew, fleet.mutable_skew());
  SetDuration(error, fleet.mutable_max_error_bound());
  for (int i = 0; i < counted; ++i) {
    SetDuration(absl::ZeroDuration(), fleet.add_nodes()->mutable_deviation());
  }
  fleet.add_nodes();  // one node not counted in skew (no deviation)
  fleet.set_flagged_count(flagged);
  return fleet;
}

TEST(SkewDownsamplerTest, OnePointPerBucketWithTheMaximaOfTheBucket) {
  SkewDownsampler downsampler(absl::Seconds(10));
  // kT0 is a multiple of 10 s: the buckets are [kT0, kT0+10s), [.., +20 s).
  EXPECT_FALSE(downsampler
                   .Add(Snapshot(kT0 + absl::Seconds(1), absl::Microseconds(5),
                                 absl::Microseconds(90), 3, 0))
                   .has_value());
  EXPECT_FALSE(downsampler
                   .Add(Snapshot(kT0 + absl::Seconds(4), absl::Microseconds(40),
                                 absl::Microseconds(20), 2, 1))
                   .has_value());
  EXPECT_FALSE(
      downsampler
          .Add(Snapshot(kT0 + absl::Milliseconds(9999), absl::Microseconds(7),
                        absl::Microseconds(10), 4, 0))
          .has_value());
  std::optional<v1::SkewPoint> point =
      downsampler.Add(Snapshot(kT0 + absl::Seconds(10), absl::Microseconds(1),
                               absl::Microseconds(1), 1, 0));
  ASSERT_TRUE(point.has_value());
  EXPECT_EQ(FromProto(point->time()), kT0);
  EXPECT_EQ(FromProto(point->skew()), absl::Microseconds(40));
  EXPECT_EQ(FromProto(point->max_error_bound()), absl::Microseconds(90));
  EXPECT_EQ(point->nodes(), 4u);
  EXPECT_EQ(point->flagged(), 1u);

  // A gap of several buckets closes the one in progress; Flush gives the last.
  point =
      downsampler.Add(Snapshot(kT0 + absl::Seconds(65), absl::Microseconds(3),
                               absl::Microseconds(3), 1, 0));
  ASSERT_TRUE(point.has_value());
  EXPECT_EQ(FromProto(point->time()), kT0 + absl::Seconds(10));
  EXPECT_EQ(FromProto(point->skew()), absl::Microseconds(1));
  point = downsampler.Flush();
  ASSERT_TRUE(point.has_value());
  EXPECT_EQ(FromProto(point->time()), kT0 + absl::Seconds(60));
  EXPECT_EQ(FromProto(point->skew()), absl::Microseconds(3));
  EXPECT_FALSE(downsampler.Flush().has_value());
}

TEST(SkewDownsamplerTest, ClockSteppedBackStartsANewBucket) {
  SkewDownsampler downsampler(absl::Seconds(10));
  downsampler.Add(Snapshot(kT0 + absl::Seconds(25), absl::Microseconds(8),
                           absl::ZeroDuration(), 1, 0));
  std::optional<v1::SkewPoint> point =
      downsampler.Add(Snapshot(kT0 + absl::Seconds(5), absl::Microseconds(2),
                               absl::ZeroDuration(), 1, 0));
  ASSERT_TRUE(point.has_value());
  EXPECT_EQ(FromProto(point->time()), kT0 + absl::Seconds(20));
  EXPECT_EQ(FromProto(point->skew()), absl::Microseconds(8));
}

}  // namespace
}  // namespace ntpfleet::controller
