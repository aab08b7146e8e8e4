// Store: inventory, skew history (with thinning), resync audit log; reopening
// after a clean close and after the writing process was killed with SIGKILL;
// WAL mode and schema version checked on the file itself; clear errors.
// Also SkewDownsampler.
#include "controller/store.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/status_matchers.h"

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

std::string TmpPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

// A fresh path (no leftover from an earlier run of the same test).
std::string FreshDb(const std::string& name) {
  const std::string path = TmpPath(name);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::remove((path + suffix).c_str());
  }
  return path;
}

std::unique_ptr<Store> MustOpen(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
  EXPECT_THAT(store, IsOk());
  return store.ok() ? std::move(*store) : nullptr;
}

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

// Writes one of everything.
void WriteSample(Store& store) {
  ASSERT_THAT(store.UpsertNode(MakeHello("a", "1.0"), kT0), IsOk());
  ASSERT_THAT(store.AppendSkew(MakePoint(kT0, absl::Microseconds(250))),
              IsOk());
  v1::NodeSelector selector;
  selector.add_names("a");
  ASSERT_THAT(store.RecordResync("alice", selector, false, "req-1", kT0,
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

  absl::StatusOr<std::vector<Store::AuditEntry>> audit = store.ResyncAudit(0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(1));
  EXPECT_EQ((*audit)[0].requested_by, "alice");
  ASSERT_THAT((*audit)[0].results, SizeIs(1));
  EXPECT_EQ((*audit)[0].results[0].result().outcome(), v1::RESYNC_OUTCOME_OK);
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

TEST(StoreTest, ResyncAuditRecordsWhoWhenSelectorAndEachResult) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("audit.db"));
  ASSERT_NE(store, nullptr);
  v1::NodeSelector by_names;
  by_names.add_names("a");
  by_names.add_names("b");
  absl::StatusOr<int64_t> first = store->RecordResync(
      "alice@ops", by_names, /*dry_run=*/false, "req-1", kT0,
      {MakeResult("a", v1::RESYNC_OUTCOME_OK, absl::Microseconds(-1250)),
       MakeResult("b", v1::RESYNC_OUTCOME_NOT_CONNECTED, absl::ZeroDuration(),
                  "no stream")});
  ASSERT_THAT(first, IsOk());
  v1::NodeSelector all;
  all.set_all(true);
  absl::StatusOr<int64_t> second = store->RecordResync(
      "bob", all, /*dry_run=*/true, "req-2", kT0 + absl::Minutes(1), {});
  ASSERT_THAT(second, IsOk());
  EXPECT_GT(*second, *first);

  absl::StatusOr<std::vector<Store::AuditEntry>> audit = store->ResyncAudit(0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_THAT(*audit, SizeIs(2));
  const Store::AuditEntry& newest = (*audit)[0];
  EXPECT_EQ(newest.id, *second);
  EXPECT_EQ(newest.requested_by, "bob");
  EXPECT_EQ(newest.request_id, "req-2");
  EXPECT_TRUE(newest.dry_run);
  EXPECT_TRUE(newest.selector.all());
  EXPECT_EQ(newest.when, kT0 + absl::Minutes(1));
  EXPECT_TRUE(newest.results.empty());

  const Store::AuditEntry& oldest = (*audit)[1];
  EXPECT_EQ(oldest.id, *first);
  EXPECT_EQ(oldest.requested_by, "alice@ops");
  EXPECT_EQ(oldest.when, kT0);
  EXPECT_FALSE(oldest.dry_run);
  EXPECT_THAT(oldest.selector.names(), ElementsAre("a", "b"));
  ASSERT_THAT(oldest.results, SizeIs(2));
  EXPECT_EQ(oldest.results[0].node(), "a");
  EXPECT_EQ(oldest.results[0].result().outcome(), v1::RESYNC_OUTCOME_OK);
  EXPECT_EQ(FromProto(oldest.results[0].result().offset_before()),
            absl::Microseconds(-1250));
  EXPECT_EQ(oldest.results[1].node(), "b");
  EXPECT_EQ(oldest.results[1].result().outcome(),
            v1::RESYNC_OUTCOME_NOT_CONNECTED);
  EXPECT_EQ(oldest.results[1].result().error(), "no stream");

  // The limit keeps the newest.
  absl::StatusOr<std::vector<Store::AuditEntry>> latest = store->ResyncAudit(1);
  ASSERT_THAT(latest, IsOk());
  ASSERT_THAT(*latest, SizeIs(1));
  EXPECT_EQ((*latest)[0].request_id, "req-2");
}

TEST(StoreTest, AuditLogIsReadableFromTheSqliteShell) {
  const std::string path = FreshDb("audit_sql.db");
  std::unique_ptr<Store> store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  v1::NodeSelector selector;
  selector.set_label("rack=r1");
  ASSERT_THAT(store->RecordResync("alice", selector, false, "req-9", kT0,
                                  {MakeResult("a", v1::RESYNC_OUTCOME_FAILED,
                                              absl::ZeroDuration(), "KoD")}),
              IsOk());
  EXPECT_EQ(RawQuery(path, "SELECT selector FROM resync_audit"),
            "label: \"rack=r1\"");
  EXPECT_EQ(RawQuery(path,
                     "SELECT outcome || ' ' || error FROM "
                     "resync_results WHERE node = 'a'"),
            "RESYNC_OUTCOME_FAILED KoD");
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
    v1::NodeSelector selector;
    selector.add_names("a");
    ok = ok && (*store)
                   ->RecordResync("alice", selector, false, "req-1", kT0,
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
