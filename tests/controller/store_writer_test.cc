// StoreWriter: writes applied in order on one thread; `done` runs once the
// data is readable through another SQLite connection; a full queue refuses
// (ResourceExhausted, counted as dropped); failed writes are counted; Stop
// drains the queue even while a write is in progress; Enqueue after Stop
// fails. The writer is held inside a write with Notifications, never by
// timing.
#include "controller/store_writer.h"

#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "controller/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_files.h"

namespace ntpfleet::controller {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);
// Generous: a quiet machine needs milliseconds.
constexpr absl::Duration kPatience = absl::Seconds(30);

using ::ntpfleet::testing::FreshDb;
using ::ntpfleet::testing::MustOpen;

v1::Hello MakeHello(const std::string& name, const std::string& version) {
  v1::Hello hello;
  hello.set_node_name(name);
  hello.set_agent_version(version);
  return hello;
}

// The first column of the first row of `sql`, as text, through a connection
// of its own ("" if no row; "error: ..." on failure).
std::string RawQuery(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    out = absl::StrCat("error: ", sqlite3_errmsg(db));
    sqlite3_close(db);
    return out;
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    out = absl::StrCat("error: ", sqlite3_errmsg(db));
  } else {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      out = absl::StrCat("error: ", sqlite3_errmsg(db));
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

TEST(StoreWriterTest, WritesAreAppliedInOrder) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("order.db"));
  ASSERT_NE(store, nullptr);
  std::vector<int> applied;  // touched by the writer thread only, until Stop
  std::vector<int> expected;
  {
    StoreWriter writer(store.get());
    for (int i = 0; i < 200; ++i) {
      expected.push_back(i);
      ASSERT_THAT(writer.Enqueue([i, &applied](Store& s) {
        applied.push_back(i);
        return s.UpsertNode(MakeHello("a", absl::StrCat("v", i)),
                            kT0 + absl::Seconds(i));
      }),
                  IsOk());
    }
    writer.Stop();  // joins: `applied` is ours again
    const StoreWriter::Counters c = writer.counters();
    EXPECT_EQ(c.written, 200u);
    EXPECT_EQ(c.failed, 0u);
    EXPECT_EQ(c.dropped, 0u);
    EXPECT_EQ(c.queued, 0u);
  }
  EXPECT_THAT(applied, ElementsAreArray(expected));
  absl::StatusOr<std::vector<Store::NodeRecord>> nodes = store->LoadNodes();
  ASSERT_THAT(nodes, IsOk());
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].hello.agent_version(), "v199");  // the last write won
  EXPECT_EQ((*nodes)[0].first_seen, kT0);
  EXPECT_EQ((*nodes)[0].last_seen, kT0 + absl::Seconds(199));
}

TEST(StoreWriterTest, DoneRunsOnceTheDataIsReadableByAnotherConnection) {
  const std::string path = FreshDb("done.db");
  std::unique_ptr<Store> store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  StoreWriter writer(store.get());
  absl::Notification finished;
  absl::Status seen_status = absl::UnknownError("done not called");
  std::string seen_by_other_connection;
  ASSERT_THAT(
      writer.Enqueue(
          [](Store& s) { return s.UpsertNode(MakeHello("a", "1.0"), kT0); },
          [&](const absl::Status& status) {
            seen_status = status;
            seen_by_other_connection =
                RawQuery(path, "SELECT count(*) FROM nodes WHERE name = 'a'");
            finished.Notify();
          }),
      IsOk());
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(kPatience));
  EXPECT_THAT(seen_status, IsOk());
  EXPECT_EQ(seen_by_other_connection, "1");
}

TEST(StoreWriterTest, FullQueueRefusesWithResourceExhaustedAndCountsDropped) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("full.db"));
  ASSERT_NE(store, nullptr);
  StoreWriter writer(store.get(), /*capacity=*/2);
  absl::Notification started, release;
  ASSERT_THAT(writer.Enqueue([&](Store&) {
    started.Notify();
    release.WaitForNotification();
    return absl::OkStatus();
  }),
              IsOk());
  // The writer holds the first write: the queue is empty again.
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kPatience));
  auto upsert = [](const std::string& name) {
    return [name](Store& s) { return s.UpsertNode(MakeHello(name, "1"), kT0); };
  };
  ASSERT_THAT(writer.Enqueue(upsert("a")), IsOk());
  ASSERT_THAT(writer.Enqueue(upsert("b")), IsOk());
  EXPECT_EQ(writer.counters().queued, 2u);
  bool dropped_done_called = false;
  EXPECT_THAT(
      writer.Enqueue(upsert("c"),
                     [&](const absl::Status&) { dropped_done_called = true; }),
      StatusIs(absl::StatusCode::kResourceExhausted,
               HasSubstr("write queue full")));
  StoreWriter::Counters c = writer.counters();
  EXPECT_EQ(c.dropped, 1u);
  EXPECT_EQ(c.queued, 2u);
  EXPECT_EQ(c.written, 0u);

  release.Notify();
  writer.Stop();
  c = writer.counters();
  EXPECT_EQ(c.written, 3u);
  EXPECT_EQ(c.dropped, 1u);
  EXPECT_EQ(c.queued, 0u);
  EXPECT_FALSE(dropped_done_called);
  absl::StatusOr<std::vector<Store::NodeRecord>> nodes = store->LoadNodes();
  ASSERT_THAT(nodes, IsOk());
  ASSERT_EQ(nodes->size(), 2u);  // a and b; never c
  EXPECT_EQ((*nodes)[0].hello.node_name(), "a");
  EXPECT_EQ((*nodes)[1].hello.node_name(), "b");
}

TEST(StoreWriterTest, FailedWriteIsCountedAndItsDoneToldWhy) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("failed.db"));
  ASSERT_NE(store, nullptr);
  StoreWriter writer(store.get());
  absl::Status told;
  // A real Store error: a Hello without a name.
  ASSERT_THAT(
      writer.Enqueue([](Store& s) { return s.UpsertNode(v1::Hello(), kT0); },
                     [&](const absl::Status& s) { told = s; }),
      IsOk());
  ASSERT_THAT(writer.Enqueue([](Store& s) {
    return s.UpsertNode(MakeHello("a", "1"), kT0);
  }),
              IsOk());
  writer.Stop();
  EXPECT_THAT(told, StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("without a name")));
  const StoreWriter::Counters c = writer.counters();
  EXPECT_EQ(c.failed, 1u);
  EXPECT_EQ(c.written, 1u);  // the next write went on
}

// The controller's resync pattern: BeginResync through the writer; its `done`
// (the record is on disk) is where the agents would be asked, and it may
// queue the FinishResync itself.
TEST(StoreWriterTest, DoneMayEnqueueTheNextWrite) {
  const std::string path = FreshDb("chain.db");
  std::unique_ptr<Store> store = MustOpen(path);
  ASSERT_NE(store, nullptr);
  StoreWriter writer(store.get());
  auto id = std::make_shared<int64_t>(0);
  std::string on_disk_when_asking;
  absl::Notification finished;
  absl::Status finish_status = absl::UnknownError("not finished");
  v1::ResyncRequest request;
  request.mutable_selector()->add_names("a");
  ASSERT_THAT(writer.Enqueue(
                  [id, request](Store& s) {
                    absl::StatusOr<int64_t> begun = s.BeginResync(
                        "user:alice (operator)", request, "req-1", kT0, {"a"});
                    if (begun.ok()) *id = *begun;
                    return begun.status();
                  },
                  [&, id](const absl::Status& begun) {
                    if (!begun.ok()) return;
                    // Here the controller sends the Resync to the agents.
                    on_disk_when_asking =
                        RawQuery(path, "SELECT count(*) FROM resync_audit");
                    v1::NodeResyncResult r;
                    r.set_node("a");
                    r.mutable_result()->set_outcome(v1::RESYNC_OUTCOME_OK);
                    const absl::Status queued = writer.Enqueue(
                        [id, r](Store& s) { return s.FinishResync(*id, {r}); },
                        [&](const absl::Status& s) {
                          finish_status = s;
                          finished.Notify();
                        });
                    if (!queued.ok()) {
                      finish_status = queued;
                      finished.Notify();
                    }
                  }),
              IsOk());
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(kPatience));
  EXPECT_THAT(finish_status, IsOk());
  EXPECT_EQ(on_disk_when_asking, "1");
  absl::StatusOr<std::vector<v1::AuditRecord>> audit =
      store->Audit(absl::InfinitePast(), 0);
  ASSERT_THAT(audit, IsOk());
  ASSERT_EQ(audit->size(), 1u);
  ASSERT_EQ((*audit)[0].results_size(), 1);
  EXPECT_EQ((*audit)[0].results(0).result().outcome(), v1::RESYNC_OUTCOME_OK);
  EXPECT_EQ(writer.counters().written, 2u);
}

// Stop is called while the writer is inside a write and five more wait: it
// refuses new writes at once, and returns only after all five are applied.
TEST(StoreWriterTest, StopDrainsWhatIsQueued) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("drain.db"));
  ASSERT_NE(store, nullptr);
  StoreWriter writer(store.get());
  absl::Notification started, release;
  ASSERT_THAT(writer.Enqueue([&](Store&) {
    started.Notify();
    release.WaitForNotification();
    return absl::OkStatus();
  }),
              IsOk());
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kPatience));
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(writer.Enqueue([i](Store& s) {
      return s.UpsertNode(MakeHello(absl::StrCat("n", i), "1"), kT0);
    }),
                IsOk());
  }
  std::thread stopper([&writer] { writer.Stop(); });
  // Probe until Stop has begun (probes accepted before then are written too).
  uint64_t probes = 0;
  absl::Status probe;
  const absl::Time deadline = absl::Now() + kPatience;
  while (
      (probe = writer.Enqueue([](Store&) { return absl::OkStatus(); })).ok() &&
      absl::Now() < deadline) {
    ++probes;
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_THAT(probe, StatusIs(absl::StatusCode::kFailedPrecondition,
                              HasSubstr("stopped")));
  EXPECT_EQ(writer.counters().written, 0u);  // still held in the first write
  release.Notify();
  stopper.join();
  const StoreWriter::Counters c = writer.counters();
  EXPECT_EQ(c.written, 1 + 5 + probes);
  EXPECT_EQ(c.queued, 0u);
  absl::StatusOr<std::vector<Store::NodeRecord>> nodes = store->LoadNodes();
  ASSERT_THAT(nodes, IsOk());
  EXPECT_EQ(nodes->size(), 5u);
}

TEST(StoreWriterTest, EnqueueAfterStopFailsAndStopIsIdempotent) {
  std::unique_ptr<Store> store = MustOpen(FreshDb("stopped.db"));
  ASSERT_NE(store, nullptr);
  StoreWriter writer(store.get());
  writer.Stop();
  writer.Stop();
  bool ran = false;
  EXPECT_THAT(writer.Enqueue([&ran](Store&) {
    ran = true;
    return absl::OkStatus();
  }),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("shutting down")));
  EXPECT_FALSE(ran);
  EXPECT_EQ(writer.counters().written, 0u);
  EXPECT_EQ(writer.counters().dropped, 0u);
  EXPECT_THAT(
      writer.Enqueue(nullptr),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no write")));
}

}  // namespace
}  // namespace ntpfleet::controller
