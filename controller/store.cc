#include "controller/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"

namespace ntpfleet::controller {
namespace {

// How long a statement waits for another connection's lock (e.g. an operator's
// sqlite3 shell, or a checkpoint) before failing with "database is locked".
constexpr int kBusyTimeoutMs = 5000;

// kMigrations[v] takes a database from schema version v to v + 1, so
// kMigrations.size() must equal Store::kSchemaVersion. Never edit a shipped
// entry: add one.
constexpr const char* kMigrations[] = {
    // 0 -> 1
    R"sql(
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
    )sql",
    // 1 -> 2: audit before action. A record is begun (finished = 0, with the
    // nodes asked) before any agent is asked, and finished with the results.
    R"sql(
    ALTER TABLE resync_audit ADD COLUMN allow_step INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE resync_audit ADD COLUMN force INTEGER NOT NULL DEFAULT 0;
    -- Version 1 wrote each record whole, its results included: finished.
    ALTER TABLE resync_audit ADD COLUMN finished INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX resync_audit_unfinished ON resync_audit (id)
      WHERE finished = 0;

    CREATE TABLE resync_asked (
      audit_id INTEGER NOT NULL REFERENCES resync_audit (id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      node TEXT NOT NULL,
      PRIMARY KEY (audit_id, seq)
    ) WITHOUT ROWID;
    )sql",
    // 2 -> 3: per-node history (controller/node_history.h). Clustered by
    // tier, then time: a batch of closed buckets (one start, many nodes) is
    // appended at the end of the B-tree, pruning deletes from its start.
    // Times in seconds, not nanoseconds: bucket starts are whole seconds,
    // and 4 bytes instead of 8 on every row.
    R"sql(
    CREATE TABLE history_nodes (
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL UNIQUE
    );

    CREATE TABLE node_history (
      width_s INTEGER NOT NULL,          -- the tier: 1, 60 or 3600
      start_s INTEGER NOT NULL,          -- bucket start, s since the epoch
      node_id INTEGER NOT NULL,          -- history_nodes.id
      reports INTEGER NOT NULL,
      offset_min_ns INTEGER,             -- NULL: no report carried an offset
      offset_max_ns INTEGER,
      offset_last_ns INTEGER,
      error_max_ns INTEGER,              -- NULL: no report had an error bound
      stratum_max INTEGER NOT NULL,
      state_worst INTEGER NOT NULL,      -- ntpfleet.v1.SyncState
      PRIMARY KEY (width_s, start_s, node_id)
    ) WITHOUT ROWID;
    )sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) ==
                  Store::kSchemaVersion,
              "one migration per schema version");

struct StmtDeleter {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {  // the primary code of an extended one
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
    case SQLITE_IOERR:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

// What the operator can do about it.
absl::string_view HintFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CANTOPEN:
      return "check that the directory exists and the controller's user may "
             "create and write files in it";
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return "the controller's user must be able to write the file, its "
             "directory and the -wal/-shm files beside it";
    case SQLITE_NOTADB:
      return "this file is not a database: point the controller at another "
             "path (or move this file away)";
    case SQLITE_CORRUPT:
      return "restore the file from a backup or move it away to start afresh";
    case SQLITE_FULL:
      return "free some disk space";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "another process holds the database locked (a second controller "
             "or an open sqlite3 shell?)";
    case SQLITE_IOERR:
      return "the filesystem reported an I/O error";
    default:
      return "";
  }
}

// "controller database /x.db: <what>: <SQLite's message>[; <hint>]".
absl::Status SqliteError(const std::string& path, absl::string_view what,
                         int rc, sqlite3* db) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const absl::string_view hint = HintFor(rc);
  return absl::Status(
      CodeFor(rc), absl::StrCat("controller database ", path, ": ", what, ": ",
                                message, hint.empty() ? "" : "; ", hint));
}

int64_t ToNanos(absl::Time t) { return absl::ToUnixNanos(t); }
absl::Time FromNanos(int64_t ns) { return absl::FromUnixNanos(ns); }

int64_t ToNanos(const google::protobuf::Duration& d) {
  return absl::ToInt64Nanoseconds(absl::Seconds(d.seconds()) +
                                  absl::Nanoseconds(d.nanos()));
}
void SetNanos(int64_t ns, google::protobuf::Duration* out) {
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

// The sync states from best to worst (SyncStateSeverity); any other value
// is worse than all of them.
constexpr v1::SyncState kStatesBestFirst[] = {
    v1::SYNC_STATE_SYNCHRONISED,   v1::SYNC_STATE_LOCAL_CLOCK,
    v1::SYNC_STATE_SYNCING,        v1::SYNC_STATE_HOLDOVER,
    v1::SYNC_STATE_UNSYNCHRONISED, v1::SYNC_STATE_REFUSED,
};
constexpr int kUnknownStateSeverity =
    static_cast<int>(sizeof(kStatesBestFirst) / sizeof(kStatesBestFirst[0]));

// SyncStateSeverity(column) as an SQL expression, from the same table.
std::string SeveritySql(absl::string_view column) {
  std::string sql = absl::StrCat("(CASE ", column);
  for (int i = 0; i < kUnknownStateSeverity; ++i) {
    absl::StrAppend(&sql, " WHEN ", static_cast<int>(kStatesBestFirst[i]),
                    " THEN ", i);
  }
  absl::StrAppend(&sql, " ELSE ", kUnknownStateSeverity, " END)");
  return sql;
}

// The largest multiple of `width` (> 0) at or below `t`.
int64_t FloorTo(int64_t t, int64_t width) {
  const int64_t q = t / width * width;
  return q > t ? q - width : q;
}

// Seconds since the epoch, saturating (InfinitePast/Future included).
int64_t ToSeconds(absl::Time t) {
  if (t == absl::InfinitePast()) return INT64_MIN;
  if (t == absl::InfiniteFuture()) return INT64_MAX;
  return absl::ToUnixSeconds(t);  // floor
}

// One use of a prepared statement: bind, step, and reset (clearing the
// bindings) when it goes out of scope, ready for the next use. A failed bind is
// reported by the next Step().
class Use {
 public:
  explicit Use(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Use() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

  Use& Int(int index, int64_t value) {
    Check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  // NULL when `present` is false.
  Use& IntOrNull(int index, bool present, int64_t value) {
    Check(present ? sqlite3_bind_int64(stmt_, index, value)
                  : sqlite3_bind_null(stmt_, index));
    return *this;
  }
  // std::string, not string_view: its data() is never null, and a null
  // pointer would bind NULL instead of an empty text or blob.
  Use& Text(int index, const std::string& value) {
    Check(sqlite3_bind_text(stmt_, index, value.data(),
                            static_cast<int>(value.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Use& Blob(int index, const std::string& value) {
    Check(sqlite3_bind_blob(stmt_, index, value.data(),
                            static_cast<int>(value.size()), SQLITE_TRANSIENT));
    return *this;
  }

  // SQLITE_ROW, SQLITE_DONE, or an error code.
  int Step() { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(stmt_); }

  int64_t ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool ColumnIsNull(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }
  std::string ColumnText(int col) const {
    const auto* text =
        reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return text == nullptr
               ? std::string()
               : std::string(text, static_cast<size_t>(
                                       sqlite3_column_bytes(stmt_, col)));
  }
  template <typename Message>
  bool ColumnProto(int col, Message* out) const {
    const void* data = sqlite3_column_blob(stmt_, col);
    const int size = sqlite3_column_bytes(stmt_, col);
    if (data == nullptr || size == 0) {  // an empty message serializes to ""
      out->Clear();
      return true;
    }
    return out->ParseFromArray(data, size);
  }

 private:
  void Check(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3_stmt* const stmt_;
  int bind_rc_ = SQLITE_OK;
};

}  // namespace

struct Store::Statements {
  StmtPtr begin_read;   // BEGIN: a consistent snapshot for multi-query reads
  StmtPtr begin_write;  // BEGIN IMMEDIATE: take the write lock up front
  StmtPtr commit;
  StmtPtr rollback;
  StmtPtr upsert_node;
  StmtPtr update_last_seen;
  StmtPtr load_nodes;
  StmtPtr append_skew;
  StmtPtr history;
  StmtPtr prune_history;
  StmtPtr forget_node;
  StmtPtr insert_audit;
  StmtPtr insert_asked;
  StmtPtr audit_state;
  StmtPtr next_result_seq;
  StmtPtr insert_result;
  StmtPtr mark_finished;
  StmtPtr select_unfinished;
  StmtPtr select_unanswered;
  StmtPtr select_audit;
  StmtPtr select_results;
  StmtPtr insert_history_node;
  StmtPtr select_history_node;
  StmtPtr append_node_history;
  StmtPtr node_history;
  StmtPtr prune_node_history;
};

namespace {

// A transaction that rolls back unless committed.
class Transaction {
 public:
  Transaction(sqlite3* db, sqlite3_stmt* rollback)
      : db_(db), rollback_(rollback) {}
  ~Transaction() {
    // SQLite may already have rolled back by itself (e.g. on SQLITE_FULL).
    if (!committed_ && sqlite3_get_autocommit(db_) == 0) {
      Use(rollback_).Step();
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  int Begin(sqlite3_stmt* begin) { return Use(begin).Step(); }
  int Commit(sqlite3_stmt* commit) {
    const int rc = Use(commit).Step();
    committed_ = rc == SQLITE_DONE;
    return rc;
  }

 private:
  sqlite3* const db_;
  sqlite3_stmt* const rollback_;
  bool committed_ = false;
};

}  // namespace

Store::Store(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

Store::~Store() {
  stmts_.reset();  // statements must be finalized before the connection closes
  sqlite3_close_v2(db_);
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  if (path.empty() || path == ":memory:") {
    return absl::InvalidArgumentError(absl::StrCat(
        "controller database path '", path,
        "' is not a file path: give the path of a file on a local disk"));
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      // The Store's own mutex serialises all use of the connection.
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(path, "cannot open", rc, db);
    sqlite3_close_v2(db);  // db is allocated even on most failures
    return status;
  }
  std::unique_ptr<Store> store(new Store(path, db));
  if (absl::Status status = store->Init(); !status.ok()) return status;
  return store;
}

namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 || errno != ENOENT;
}

// Renames `from` to `to` unless `to` exists. 0 or an errno.
int RenameNoReplace(const std::string& from, const std::string& to) {
  if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(),
                RENAME_NOREPLACE) == 0) {
    return 0;
  }
  if (errno != EINVAL && errno != ENOSYS) return errno;
  // A filesystem without RENAME_NOREPLACE: look, then leap.
  if (Exists(to)) return EEXIST;
  return rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::OpenOrRecover(
    const std::string& path, std::string* recovered_note) {
  if (recovered_note != nullptr) recovered_note->clear();
  absl::StatusOr<std::unique_ptr<Store>> store = Open(path);
  if (store.ok() || store.status().code() != absl::StatusCode::kDataLoss) {
    return store;
  }
  // Closed (store holds no connection now): move the file and its -wal and
  // -shm aside together, so that sqlite3 opens the moved copy as it was.
  const std::string stamp =
      absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone());
  std::string aside;
  int err = EEXIST;
  for (int n = 1; n < 1000 && err == EEXIST; ++n) {
    aside = absl::StrCat(path, ".corrupt-", stamp,
                         n == 1 ? "" : absl::StrCat(".", n));
    if (Exists(aside + "-wal") || Exists(aside + "-shm")) continue;
    err = RenameNoReplace(path, aside);
  }
  if (err != 0) {
    return absl::Status(
        store.status().code(),
        absl::StrCat(store.status().message(), "; and it cannot be moved aside",
                     err == EEXIST ? "" : absl::StrCat(" to ", aside), ": ",
                     std::strerror(err)));
  }
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string from = path + suffix;
    if (!Exists(from)) continue;
    if (const int e = RenameNoReplace(from, aside + suffix); e != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "controller database ", path, ": moved the corrupt file aside to ",
          aside, " but cannot move ", from, " to ", aside, suffix, ": ",
          std::strerror(e), "; move or delete ", from, " by hand"));
    }
  }
  absl::StatusOr<std::unique_ptr<Store>> fresh = Open(path);
  if (!fresh.ok()) return fresh.status();
  if (recovered_note != nullptr) {
    *recovered_note = absl::StrCat(
        "CORRUPT DATABASE RECOVERED: ", store.status().message(),
        " -- moved it aside to ", aside, " and started a new, empty ", path,
        " (node inventory, skew history and resync audit log start afresh; "
        "the old file is kept for inspection with sqlite3)");
  }
  return fresh;
}

absl::Status Store::Init() {
  absl::MutexLock lock(&mu_);
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);

  auto prepare = [&](const char* sql, StmtPtr* out) -> absl::Status {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                      &stmt, nullptr);
    out->reset(stmt);
    if (rc != SQLITE_OK) {
      return SqliteError(path_, absl::StrCat("cannot prepare \"", sql, "\""),
                         rc, db_);
    }
    return absl::OkStatus();
  };
  // The single integer a "PRAGMA x" returns.
  auto pragma_int = [&](const char* sql) -> absl::StatusOr<int64_t> {
    StmtPtr stmt;
    if (absl::Status s = prepare(sql, &stmt); !s.ok()) return s;
    Use q(stmt.get());
    const int rc = q.Step();
    if (rc != SQLITE_ROW) {
      return SqliteError(path_, absl::StrCat("cannot read ", sql), rc, db_);
    }
    return q.ColumnInt(0);
  };
  auto exec = [&](const std::string& sql,
                  absl::string_view what) -> absl::Status {
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(path_, what, rc, db_);
    return absl::OkStatus();
  };

  // Look before changing anything: never turn someone else's database to WAL.
  // (Reading the header is also what finds a file that is not a database.)
  absl::StatusOr<int64_t> app_id = pragma_int("PRAGMA application_id");
  if (!app_id.ok()) return app_id.status();
  absl::StatusOr<int64_t> version = pragma_int("PRAGMA user_version");
  if (!version.ok()) return version.status();
  absl::StatusOr<int64_t> objects =
      pragma_int("SELECT count(*) FROM sqlite_schema");
  if (!objects.ok()) return objects.status();
  if (*app_id != 0 && *app_id != kApplicationId) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "controller database %s: not an ntpfleet controller database "
        "(application_id 0x%08x, ntpfleet's is 0x%08x); point the controller "
        "at another path",
        path_, static_cast<uint32_t>(*app_id),
        static_cast<uint32_t>(kApplicationId)));
  }
  if (*version == 0 && *objects != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "controller database ", path_,
        ": not an ntpfleet controller database (it has tables but no ntpfleet "
        "schema version); point the controller at another path"));
  }
  if (*version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "controller database ", path_, ": schema version ", *version,
        " is newer than this controller understands (", kSchemaVersion,
        "); run the ntpfleet-controller release that wrote it, or a newer "
        "one"));
  }

  // A corrupt page anywhere (a bad disk, a torn copy) is found now, at start,
  // rather than by some later write in the middle of the controller's work.
  {
    StmtPtr stmt;
    if (absl::Status s = prepare("PRAGMA quick_check(3)", &stmt); !s.ok()) {
      return s;
    }
    Use q(stmt.get());
    std::vector<std::string> problems;
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) {
      std::string line = q.ColumnText(0);
      if (line != "ok") problems.push_back(std::move(line));
    }
    if (rc != SQLITE_DONE) {
      return SqliteError(path_, "integrity check (PRAGMA quick_check) failed",
                         rc, db_);
    }
    if (!problems.empty()) {
      return absl::DataLossError(absl::StrCat(
          "controller database ", path_,
          ": the file is corrupt (PRAGMA quick_check: ",
          absl::StrJoin(problems, "; "),
          "); restore the file from a backup or move it away to start "
          "afresh"));
    }
  }

  // WAL: readers never block the writer, and a commit is one append to the
  // -wal file (fsync'd at checkpoints under synchronous=NORMAL), which a
  // crashed process cannot lose.
  {
    StmtPtr stmt;
    if (absl::Status s = prepare("PRAGMA journal_mode=WAL", &stmt); !s.ok()) {
      return s;
    }
    Use q(stmt.get());
    const int rc = q.Step();
    if (rc != SQLITE_ROW) {
      return SqliteError(path_, "cannot switch to WAL journal mode", rc, db_);
    }
    const std::string mode = q.ColumnText(0);
    if (mode != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat("controller database ", path_,
                       ": cannot use WAL journal mode (SQLite kept '", mode,
                       "'); put the database on a local filesystem"));
    }
  }
  if (absl::Status s = exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON",
                            "cannot set pragmas");
      !s.ok()) {
    return s;
  }

  stmts_ = std::make_unique<Statements>();
  Statements& st = *stmts_;
  for (auto [sql, out] :
       std::initializer_list<std::pair<const char*, StmtPtr*>>{
           {"BEGIN", &st.begin_read},
           {"BEGIN IMMEDIATE", &st.begin_write},
           {"COMMIT", &st.commit},
           {"ROLLBACK", &st.rollback},
       }) {
    if (absl::Status s = prepare(sql, out); !s.ok()) return s;
  }

  if (*version < kSchemaVersion) {
    Transaction tx(db_, st.rollback.get());
    if (int rc = tx.Begin(st.begin_write.get()); rc != SQLITE_DONE) {
      return SqliteError(path_, "cannot begin the schema update", rc, db_);
    }
    // Again under the write lock: another process may have just done it.
    version = pragma_int("PRAGMA user_version");
    if (!version.ok()) return version.status();
    for (int64_t v = *version; v < kSchemaVersion; ++v) {
      if (absl::Status s =
              exec(kMigrations[v], absl::StrCat("cannot update the schema from "
                                                "version ",
                                                v, " to ", v + 1));
          !s.ok()) {
        return s;
      }
    }
    if (absl::Status s =
            exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion,
                              "; PRAGMA application_id=", kApplicationId),
                 "cannot record the schema version");
        !s.ok()) {
      return s;
    }
    if (int rc = tx.Commit(st.commit.get()); rc != SQLITE_DONE) {
      return SqliteError(path_, "cannot commit the schema update", rc, db_);
    }
  }

  for (auto [sql, out] :
       std::initializer_list<std::pair<const char*, StmtPtr*>>{
           {"INSERT INTO nodes (name, first_seen_ns, last_seen_ns, hello) "
            "VALUES (?1, ?2, ?2, ?3) "
            "ON CONFLICT (name) DO UPDATE SET "
            "last_seen_ns = excluded.last_seen_ns, hello = excluded.hello",
            &st.upsert_node},
           {"UPDATE nodes SET last_seen_ns = ?2 WHERE name = ?1",
            &st.update_last_seen},
           {"SELECT name, first_seen_ns, last_seen_ns, hello FROM nodes "
            "ORDER BY name",
            &st.load_nodes},
           {"INSERT INTO skew_history "
            "(time_ns, skew_ns, max_error_bound_ns, nodes, flagged) "
            "VALUES (?1, ?2, ?3, ?4, ?5)",
            &st.append_skew},
           {"SELECT time_ns, skew_ns, max_error_bound_ns, nodes, flagged "
            "FROM skew_history WHERE time_ns >= ?1 AND time_ns <= ?2 "
            "ORDER BY time_ns, rowid",
            &st.history},
           {"DELETE FROM skew_history WHERE time_ns < ?1", &st.prune_history},
           {"DELETE FROM nodes WHERE name = ?1", &st.forget_node},
           {"INSERT INTO resync_audit "
            "(time_ns, requested_by, request_id, dry_run, selector, "
            "selector_pb, allow_step, force, finished) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)",
            &st.insert_audit},
           {"INSERT INTO resync_asked (audit_id, seq, node) "
            "VALUES (?1, ?2, ?3)",
            &st.insert_asked},
           {"SELECT finished, request_id FROM resync_audit WHERE id = ?1",
            &st.audit_state},
           {"SELECT coalesce(max(seq) + 1, 0) FROM resync_results "
            "WHERE audit_id = ?1",
            &st.next_result_seq},
           {"INSERT INTO resync_results "
            "(audit_id, seq, node, outcome, error, result) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &st.insert_result},
           {"UPDATE resync_audit SET finished = 1 WHERE id = ?1",
            &st.mark_finished},
           {"SELECT id, request_id FROM resync_audit WHERE finished = 0 "
            "ORDER BY id",
            &st.select_unfinished},
           {"SELECT node FROM resync_asked AS a WHERE audit_id = ?1 AND "
            "NOT EXISTS (SELECT 1 FROM resync_results AS r "
            "WHERE r.audit_id = a.audit_id AND r.node = a.node) "
            "ORDER BY seq",
            &st.select_unanswered},
           {"SELECT id, time_ns, requested_by, request_id, dry_run, "
            "selector_pb, allow_step, force FROM resync_audit "
            "WHERE time_ns >= ?1 ORDER BY id DESC LIMIT ?2",
            &st.select_audit},
           {"SELECT node, result FROM resync_results WHERE audit_id = ?1 "
            "ORDER BY seq",
            &st.select_results},
       }) {
    if (absl::Status s = prepare(sql, out); !s.ok()) return s;
  }
  const std::string append_node_history = absl::StrCat(
      "INSERT INTO node_history (width_s, start_s, node_id, reports, "
      "offset_min_ns, offset_max_ns, offset_last_ns, error_max_ns, "
      "stratum_max, state_worst) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
      "ON CONFLICT (width_s, start_s, node_id) DO UPDATE SET "
      "reports = reports + excluded.reports, "
      // min()/max() of several arguments are NULL if one is: coalesce
      // falls back to the one that is not.
      "offset_min_ns = coalesce(min(offset_min_ns, excluded.offset_min_ns), "
      "offset_min_ns, excluded.offset_min_ns), "
      "offset_max_ns = coalesce(max(offset_max_ns, excluded.offset_max_ns), "
      "offset_max_ns, excluded.offset_max_ns), "
      "offset_last_ns = coalesce(excluded.offset_last_ns, offset_last_ns), "
      "error_max_ns = coalesce(max(error_max_ns, excluded.error_max_ns), "
      "error_max_ns, excluded.error_max_ns), "
      "stratum_max = max(stratum_max, excluded.stratum_max), "
      "state_worst = CASE WHEN ",
      SeveritySql("excluded.state_worst"), " > ", SeveritySql("state_worst"),
      " THEN excluded.state_worst ELSE state_worst END");
  for (auto [sql, out] :
       std::initializer_list<std::pair<std::string, StmtPtr*>>{
           {"INSERT INTO history_nodes (name) VALUES (?1) "
            "ON CONFLICT (name) DO NOTHING",
            &st.insert_history_node},
           {"SELECT id FROM history_nodes WHERE name = ?1",
            &st.select_history_node},
           {append_node_history, &st.append_node_history},
           // One primary-key lookup per bucket of the span (CROSS JOIN keeps
           // the generated starts as the outer loop): the rows of other
           // nodes in between are never read.
           {"WITH RECURSIVE t(s) AS (SELECT ?2 UNION ALL "
            "SELECT s + ?4 FROM t WHERE s + ?4 <= ?3) "
            "SELECT h.start_s, h.reports, h.offset_min_ns, h.offset_max_ns, "
            "h.offset_last_ns, h.error_max_ns, h.stratum_max, h.state_worst "
            "FROM t CROSS JOIN node_history AS h "
            "ON h.width_s = ?4 AND h.start_s = t.s AND h.node_id = ?1 "
            "ORDER BY h.start_s",
            &st.node_history},
           {"DELETE FROM node_history WHERE (width_s, start_s, node_id) IN "
            "(SELECT width_s, start_s, node_id FROM node_history "
            "WHERE width_s = ?1 AND start_s < ?2 "
            "ORDER BY width_s, start_s, node_id LIMIT ?3)",
            &st.prune_node_history},
       }) {
    if (absl::Status s = prepare(sql.c_str(), out); !s.ok()) return s;
  }
  return FinishInterruptedResyncs();
}

absl::Status Store::UpsertNode(const v1::Hello& hello, absl::Time seen) {
  if (hello.node_name().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "controller database ", path_, ": cannot save a node without a name"));
  }
  const std::string blob = hello.SerializeAsString();
  absl::MutexLock lock(&mu_);
  Use q(stmts_->upsert_node.get());
  q.Text(1, hello.node_name()).Int(2, ToNanos(seen)).Blob(3, blob);
  if (const int rc = q.Step(); rc != SQLITE_DONE) {
    return SqliteError(
        path_, absl::StrCat("cannot save node '", hello.node_name(), "'"), rc,
        db_);
  }
  return absl::OkStatus();
}

absl::Status Store::UpdateLastSeen(
    const std::vector<std::pair<std::string, absl::Time>>& seen) {
  if (seen.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  Transaction tx(db_, stmts_->rollback.get());
  if (int rc = tx.Begin(stmts_->begin_write.get()); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot begin updating last-seen times", rc, db_);
  }
  for (const auto& [name, time] : seen) {
    Use q(stmts_->update_last_seen.get());
    q.Text(1, name).Int(2, ToNanos(time));
    if (const int rc = q.Step(); rc != SQLITE_DONE) {
      return SqliteError(
          path_, absl::StrCat("cannot update last-seen time of '", name, "'"),
          rc, db_);
    }
  }
  if (int rc = tx.Commit(stmts_->commit.get()); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot commit last-seen times", rc, db_);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Store::NodeRecord>> Store::LoadNodes() {
  absl::MutexLock lock(&mu_);
  std::vector<NodeRecord> nodes;
  Use q(stmts_->load_nodes.get());
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    NodeRecord& node = nodes.emplace_back();
    if (!q.ColumnProto(3, &node.hello)) {
      return absl::DataLossError(
          absl::StrCat("controller database ", path_, ": the Hello of node '",
                       q.ColumnText(0), "' does not parse"));
    }
    node.hello.set_node_name(q.ColumnText(0));  // the key is the truth
    node.first_seen = FromNanos(q.ColumnInt(1));
    node.last_seen = FromNanos(q.ColumnInt(2));
  }
  if (rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot read the node inventory", rc, db_);
  }
  return nodes;
}

absl::Status Store::AppendSkew(const v1::SkewPoint& point) {
  absl::MutexLock lock(&mu_);
  Use q(stmts_->append_skew.get());
  q.Int(1, ToNanos(FromProto(point.time())))
      .Int(2, ToNanos(point.skew()))
      .Int(3, ToNanos(point.max_error_bound()))
      .Int(4, point.nodes())
      .Int(5, point.flagged());
  if (const int rc = q.Step(); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot append a skew point", rc, db_);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::SkewPoint>> Store::History(absl::Time start,
                                                          absl::Time end,
                                                          size_t max_points) {
  struct Row {
    int64_t time_ns, skew_ns, error_ns, nodes, flagged;
  };
  std::vector<Row> rows;
  {
    absl::MutexLock lock(&mu_);
    Use q(stmts_->history.get());
    q.Int(1, ToNanos(start)).Int(2, ToNanos(end));
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) {
      rows.push_back(Row{q.ColumnInt(0), q.ColumnInt(1), q.ColumnInt(2),
                         q.ColumnInt(3), q.ColumnInt(4)});
    }
    if (rc != SQLITE_DONE) {
      return SqliteError(path_, "cannot read the skew history", rc, db_);
    }
  }

  const size_t n = rows.size();
  const size_t groups = max_points == 0 ? n : std::min(n, max_points);
  std::vector<v1::SkewPoint> points;
  points.reserve(groups);
  for (size_t g = 0; g < groups; ++g) {
    // Rows [g*n/groups, (g+1)*n/groups): every group has at least one row,
    // and each has n/groups of them, give or take one.
    const size_t first = g * n / groups;
    const size_t last = (g + 1) * n / groups;
    Row merged = rows[first];
    for (size_t i = first + 1; i < last; ++i) {
      merged.skew_ns = std::max(merged.skew_ns, rows[i].skew_ns);
      merged.error_ns = std::max(merged.error_ns, rows[i].error_ns);
      merged.nodes = std::max(merged.nodes, rows[i].nodes);
      merged.flagged = std::max(merged.flagged, rows[i].flagged);
    }
    v1::SkewPoint& point = points.emplace_back();
    SetTimestamp(FromNanos(merged.time_ns), point.mutable_time());
    SetNanos(merged.skew_ns, point.mutable_skew());
    SetNanos(merged.error_ns, point.mutable_max_error_bound());
    point.set_nodes(static_cast<uint32_t>(merged.nodes));
    point.set_flagged(static_cast<uint32_t>(merged.flagged));
  }
  return points;
}

absl::StatusOr<int64_t> Store::PruneHistory(absl::Time older_than) {
  absl::MutexLock lock(&mu_);
  Use q(stmts_->prune_history.get());
  q.Int(1, ToNanos(older_than));
  if (const int rc = q.Step(); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot prune the skew history", rc, db_);
  }
  return static_cast<int64_t>(sqlite3_changes(db_));
}

absl::Status Store::ForgetNode(const std::string& name) {
  absl::MutexLock lock(&mu_);
  Use q(stmts_->forget_node.get());
  q.Text(1, name);
  if (const int rc = q.Step(); rc != SQLITE_DONE) {
    return SqliteError(path_, absl::StrCat("cannot forget node '", name, "'"),
                       rc, db_);
  }
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat(
        "controller database ", path_, ": no node '", name,
        "' in the inventory; check the name against the fleet's node list"));
  }
  return absl::OkStatus();
}

// --- Per-node history ------------------------------------------------------

int SyncStateSeverity(int32_t state) {
  for (int i = 0; i < kUnknownStateSeverity; ++i) {
    if (state == kStatesBestFirst[i]) return i;
  }
  return kUnknownStateSeverity;
}

void MergeNodeBucket(const NodeBucket& later, NodeBucket* into) {
  into->reports += later.reports;
  if (later.has_offset) {
    if (into->has_offset) {
      into->offset_min_ns = std::min(into->offset_min_ns, later.offset_min_ns);
      into->offset_max_ns = std::max(into->offset_max_ns, later.offset_max_ns);
    } else {
      into->offset_min_ns = later.offset_min_ns;
      into->offset_max_ns = later.offset_max_ns;
    }
    into->offset_last_ns = later.offset_last_ns;
    into->has_offset = true;
  }
  if (later.has_error_bound) {
    into->error_max_ns = into->has_error_bound
                             ? std::max(into->error_max_ns, later.error_max_ns)
                             : later.error_max_ns;
    into->has_error_bound = true;
  }
  into->stratum_max = std::max(into->stratum_max, later.stratum_max);
  if (SyncStateSeverity(later.state_worst) >
      SyncStateSeverity(into->state_worst)) {
    into->state_worst = later.state_worst;
  }
}

bool operator==(const NodeBucket& a, const NodeBucket& b) {
  return a.start_s == b.start_s && a.reports == b.reports &&
         a.has_offset == b.has_offset && a.offset_min_ns == b.offset_min_ns &&
         a.offset_max_ns == b.offset_max_ns &&
         a.offset_last_ns == b.offset_last_ns &&
         a.has_error_bound == b.has_error_bound &&
         a.error_max_ns == b.error_max_ns && a.stratum_max == b.stratum_max &&
         a.state_worst == b.state_worst;
}

absl::StatusOr<int64_t> Store::HistoryNodeId(const std::string& node) {
  if (auto it = history_ids_.find(node); it != history_ids_.end()) {
    return it->second;
  }
  {
    Use q(stmts_->insert_history_node.get());
    q.Text(1, node);
    if (const int rc = q.Step(); rc != SQLITE_DONE) {
      return SqliteError(
          path_, absl::StrCat("cannot number node '", node, "' for history"),
          rc, db_);
    }
  }
  Use q(stmts_->select_history_node.get());
  q.Text(1, node);
  if (const int rc = q.Step(); rc != SQLITE_ROW) {
    return SqliteError(
        path_, absl::StrCat("cannot read the number of node '", node, "'"), rc,
        db_);
  }
  const int64_t id = q.ColumnInt(0);
  history_ids_.emplace(node, id);
  return id;
}

absl::Status Store::AppendNodeHistory(const std::vector<NodeHistoryRow>& rows) {
  for (const NodeHistoryRow& row : rows) {
    if (row.node.empty() || row.width_s <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "controller database ", path_,
          ": a node history row needs a node name and a positive width (got '",
          row.node, "', ", row.width_s, " s)"));
    }
  }
  if (rows.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  Transaction tx(db_, stmts_->rollback.get());
  // Ids cached during a transaction that then fails were rolled back with
  // it: forget the cache rather than track which.
  bool committed = false;
  struct ForgetIdsUnlessCommitted {
    bool* committed;
    absl::flat_hash_map<std::string, int64_t>* ids;
    ~ForgetIdsUnlessCommitted() {
      if (!*committed) ids->clear();
    }
  } forget{&committed, &history_ids_};
  if (int rc = tx.Begin(stmts_->begin_write.get()); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot begin appending node history", rc, db_);
  }
  // In key order: each row then lands beside the previous one (mostly at
  // the end of the B-tree), never on a page the batch has left.
  std::vector<std::pair<int64_t, const NodeHistoryRow*>> keyed;
  keyed.reserve(rows.size());
  for (const NodeHistoryRow& row : rows) {
    absl::StatusOr<int64_t> id = HistoryNodeId(row.node);
    if (!id.ok()) return id.status();
    keyed.emplace_back(*id, &row);
  }
  std::sort(keyed.begin(), keyed.end(), [](const auto& x, const auto& y) {
    return std::tie(x.second->width_s, x.second->bucket.start_s, x.first) <
           std::tie(y.second->width_s, y.second->bucket.start_s, y.first);
  });
  for (const auto& [id, row_ptr] : keyed) {
    const NodeHistoryRow& row = *row_ptr;
    const NodeBucket& b = row.bucket;
    Use q(stmts_->append_node_history.get());
    q.Int(1, row.width_s)
        .Int(2, b.start_s)
        .Int(3, id)
        .Int(4, b.reports)
        .IntOrNull(5, b.has_offset, b.offset_min_ns)
        .IntOrNull(6, b.has_offset, b.offset_max_ns)
        .IntOrNull(7, b.has_offset, b.offset_last_ns)
        .IntOrNull(8, b.has_error_bound, b.error_max_ns)
        .Int(9, b.stratum_max)
        .Int(10, b.state_worst);
    if (const int rc = q.Step(); rc != SQLITE_DONE) {
      return SqliteError(
          path_,
          absl::StrCat("cannot append the history of node '", row.node, "'"),
          rc, db_);
    }
  }
  if (int rc = tx.Commit(stmts_->commit.get()); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot commit node history", rc, db_);
  }
  committed = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> Store::HasNodeHistory(const std::string& node) {
  absl::MutexLock lock(&mu_);
  if (history_ids_.contains(node)) return true;
  Use q(stmts_->select_history_node.get());
  q.Text(1, node);
  const int rc = q.Step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(
      path_, absl::StrCat("cannot look up the history of node '", node, "'"),
      rc, db_);
}

absl::StatusOr<std::vector<NodeBucket>> Store::NodeHistory(
    const std::string& node, int64_t width_s, absl::Time start, absl::Time end,
    size_t max_points) {
  if (width_s <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("node history width must be positive, not ", width_s));
  }
  if (max_points == 0) max_points = 10000;
  max_points = std::min<size_t>(max_points, 1000000);
  std::vector<NodeBucket> buckets;
  // The bucket starts in [start, end]: from the first multiple of the width
  // at or after start, to the last at or before end; at most max_points, the
  // newest. In whole seconds, clamped far beyond any real time (±2^52 s) so
  // that the arithmetic below cannot overflow.
  constexpr int64_t kFar = int64_t{1} << 52;
  int64_t start_s = std::clamp(ToSeconds(start), -kFar, kFar);
  if (absl::FromUnixSeconds(start_s) < start) ++start_s;  // a fraction: ceil
  const int64_t end_s = std::clamp(ToSeconds(end), -kFar, kFar);
  const int64_t first_floor = FloorTo(start_s, width_s);
  int64_t first = first_floor < start_s ? first_floor + width_s : first_floor;
  const int64_t last = FloorTo(end_s, width_s);
  if (first > last) return buckets;
  const int64_t span = static_cast<int64_t>(max_points - 1) * width_s;
  if (last - first > span) first = last - span;
  absl::MutexLock lock(&mu_);
  int64_t id = 0;
  {
    Use q(stmts_->select_history_node.get());
    q.Text(1, node);
    const int rc = q.Step();
    if (rc == SQLITE_DONE) return buckets;
    if (rc != SQLITE_ROW) {
      return SqliteError(
          path_,
          absl::StrCat("cannot look up the history of node '", node, "'"), rc,
          db_);
    }
    id = q.ColumnInt(0);
  }
  Use q(stmts_->node_history.get());
  q.Int(1, id).Int(2, first).Int(3, last).Int(4, width_s);
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    NodeBucket& b = buckets.emplace_back();
    b.start_s = q.ColumnInt(0);
    b.reports = static_cast<uint32_t>(q.ColumnInt(1));
    b.has_offset = !q.ColumnIsNull(2);
    b.offset_min_ns = q.ColumnInt(2);
    b.offset_max_ns = q.ColumnInt(3);
    b.offset_last_ns = q.ColumnInt(4);
    b.has_error_bound = !q.ColumnIsNull(5);
    b.error_max_ns = q.ColumnInt(5);
    b.stratum_max = static_cast<uint32_t>(q.ColumnInt(6));
    b.state_worst = static_cast<int32_t>(q.ColumnInt(7));
  }
  if (rc != SQLITE_DONE) {
    return SqliteError(
        path_, absl::StrCat("cannot read the history of node '", node, "'"), rc,
        db_);
  }
  return buckets;
}

absl::StatusOr<int64_t> Store::PruneNodeHistory(int64_t width_s,
                                                absl::Time older_than,
                                                int64_t max_rows) {
  absl::MutexLock lock(&mu_);
  Use q(stmts_->prune_node_history.get());
  q.Int(1, width_s).Int(2, ToSeconds(older_than)).Int(3, max_rows);
  if (const int rc = q.Step(); rc != SQLITE_DONE) {
    return SqliteError(
        path_, absl::StrCat("cannot prune the ", width_s, " s node history"),
        rc, db_);
  }
  return static_cast<int64_t>(sqlite3_changes(db_));
}

absl::StatusOr<int64_t> Store::BeginResync(
    const std::string& requested_by, const v1::ResyncRequest& request,
    const std::string& request_id, absl::Time when,
    const std::vector<std::string>& nodes_asked) {
  const std::string selector_text = request.selector().ShortDebugString();
  const std::string selector_blob = request.selector().SerializeAsString();
  absl::MutexLock lock(&mu_);
  Transaction tx(db_, stmts_->rollback.get());
  if (int rc = tx.Begin(stmts_->begin_write.get()); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot begin recording a resync", rc, db_);
  }
  int64_t id = 0;
  {
    Use q(stmts_->insert_audit.get());
    q.Int(1, ToNanos(when))
        .Text(2, requested_by)
        .Text(3, request_id)
        .Int(4, request.dry_run() ? 1 : 0)
        .Text(5, selector_text)
        .Blob(6, selector_blob)
        .Int(7, request.allow_step() ? 1 : 0)
        .Int(8, request.force() ? 1 : 0);
    if (const int rc = q.Step(); rc != SQLITE_DONE) {
      return SqliteError(
          path_, absl::StrCat("cannot record resync '", request_id, "'"), rc,
          db_);
    }
    id = sqlite3_last_insert_rowid(db_);
  }
  for (size_t i = 0; i < nodes_asked.size(); ++i) {
    Use q(stmts_->insert_asked.get());
    q.Int(1, id).Int(2, static_cast<int64_t>(i)).Text(3, nodes_asked[i]);
    if (const int rc = q.Step(); rc != SQLITE_DONE) {
      return SqliteError(
          path_,
          absl::StrCat("cannot record node '", nodes_asked[i],
                       "' as asked by resync '", request_id, "'"),
          rc, db_);
    }
  }
  if (int rc = tx.Commit(stmts_->commit.get()); rc != SQLITE_DONE) {
    return SqliteError(path_,
                       absl::StrCat("cannot commit resync '", request_id, "'"),
                       rc, db_);
  }
  return id;
}

absl::Status Store::InsertResults(
    int64_t id, const std::string& request_id,
    const std::vector<v1::NodeResyncResult>& results) {
  int64_t seq = 0;
  {
    Use q(stmts_->next_result_seq.get());
    q.Int(1, id);
    if (const int rc = q.Step(); rc != SQLITE_ROW) {
      return SqliteError(
          path_,
          absl::StrCat("cannot read the results of resync '", request_id, "'"),
          rc, db_);
    }
    seq = q.ColumnInt(0);
  }
  for (const v1::NodeResyncResult& r : results) {
    Use q(stmts_->insert_result.get());
    q.Int(1, id)
        .Int(2, seq++)
        .Text(3, r.node())
        .Text(4, v1::ResyncOutcome_Name(r.result().outcome()))
        .Text(5, r.result().error())
        .Blob(6, r.result().SerializeAsString());
    if (const int rc = q.Step(); rc != SQLITE_DONE) {
      return SqliteError(
          path_,
          absl::StrCat("cannot record the result of node '", r.node(),
                       "' for resync '", request_id, "'"),
          rc, db_);
    }
  }
  Use q(stmts_->mark_finished.get());
  q.Int(1, id);
  if (const int rc = q.Step(); rc != SQLITE_DONE) {
    return SqliteError(
        path_, absl::StrCat("cannot mark resync '", request_id, "' finished"),
        rc, db_);
  }
  return absl::OkStatus();
}

absl::Status Store::FinishResync(
    int64_t id, const std::vector<v1::NodeResyncResult>& results) {
  absl::MutexLock lock(&mu_);
  Transaction tx(db_, stmts_->rollback.get());
  if (int rc = tx.Begin(stmts_->begin_write.get()); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot begin recording resync results", rc, db_);
  }
  std::string request_id;
  {
    Use q(stmts_->audit_state.get());
    q.Int(1, id);
    const int rc = q.Step();
    if (rc == SQLITE_DONE) {
      return absl::NotFoundError(absl::StrCat(
          "controller database ", path_, ": no resync audit record ", id,
          " to finish (FinishResync takes the id BeginResync returned)"));
    }
    if (rc != SQLITE_ROW) {
      return SqliteError(
          path_, absl::StrCat("cannot read resync audit record ", id), rc, db_);
    }
    request_id = q.ColumnText(1);
    if (q.ColumnInt(0) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "controller database ", path_, ": resync '", request_id,
          "' (audit record ", id,
          ") is already finished; its results are not recorded twice"));
    }
  }
  if (absl::Status s = InsertResults(id, request_id, results); !s.ok()) {
    return s;
  }
  if (int rc = tx.Commit(stmts_->commit.get()); rc != SQLITE_DONE) {
    return SqliteError(
        path_,
        absl::StrCat("cannot commit the results of resync '", request_id, "'"),
        rc, db_);
  }
  return absl::OkStatus();
}

absl::Status Store::FinishInterruptedResyncs() {
  interrupted_on_open_ = 0;
  Transaction tx(db_, stmts_->rollback.get());
  if (int rc = tx.Begin(stmts_->begin_write.get()); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot begin completing interrupted resyncs", rc,
                       db_);
  }
  std::vector<std::pair<int64_t, std::string>> unfinished;  // id, request_id
  {
    Use q(stmts_->select_unfinished.get());
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) {
      unfinished.emplace_back(q.ColumnInt(0), q.ColumnText(1));
    }
    if (rc != SQLITE_DONE) {
      return SqliteError(path_, "cannot read the unfinished resyncs", rc, db_);
    }
  }
  if (unfinished.empty()) return absl::OkStatus();  // rolls back: nothing
  for (const auto& [id, request_id] : unfinished) {
    std::vector<v1::NodeResyncResult> results;
    {
      Use q(stmts_->select_unanswered.get());
      q.Int(1, id);
      int rc;
      while ((rc = q.Step()) == SQLITE_ROW) {
        v1::NodeResyncResult& r = results.emplace_back();
        r.set_node(q.ColumnText(0));
        r.mutable_result()->set_request_id(request_id);
        r.mutable_result()->set_outcome(v1::RESYNC_OUTCOME_INTERRUPTED);
        r.mutable_result()->set_error(
            "the controller stopped before this node's result arrived");
      }
      if (rc != SQLITE_DONE) {
        return SqliteError(
            path_,
            absl::StrCat("cannot read the nodes asked by resync '", request_id,
                         "'"),
            rc, db_);
      }
    }
    if (absl::Status s = InsertResults(id, request_id, results); !s.ok()) {
      return s;
    }
  }
  if (int rc = tx.Commit(stmts_->commit.get()); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot commit the interrupted resyncs", rc, db_);
  }
  interrupted_on_open_ = static_cast<int64_t>(unfinished.size());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::AuditRecord>> Store::Audit(absl::Time since,
                                                          size_t limit) {
  absl::MutexLock lock(&mu_);
  // One read transaction: records and their results from the same snapshot.
  Transaction tx(db_, stmts_->rollback.get());
  if (int rc = tx.Begin(stmts_->begin_read.get()); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot begin reading the resync audit log", rc,
                       db_);
  }
  std::vector<v1::AuditRecord> records;
  {
    Use q(stmts_->select_audit.get());
    // InfinitePast saturates to INT64_MIN. A negative LIMIT is no limit.
    q.Int(1, ToNanos(since))
        .Int(2, limit == 0 ? -1 : static_cast<int64_t>(limit));
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) {
      v1::AuditRecord& r = records.emplace_back();
      r.set_id(q.ColumnInt(0));
      SetTimestamp(FromNanos(q.ColumnInt(1)), r.mutable_time());
      r.set_requested_by(q.ColumnText(2));
      r.set_request_id(q.ColumnText(3));
      r.set_dry_run(q.ColumnInt(4) != 0);
      if (!q.ColumnProto(5, r.mutable_selector())) {
        return absl::DataLossError(
            absl::StrCat("controller database ", path_,
                         ": the selector of resync audit record ", r.id(),
                         " does not parse"));
      }
      r.set_allow_step(q.ColumnInt(6) != 0);
      r.set_force(q.ColumnInt(7) != 0);
    }
    if (rc != SQLITE_DONE) {
      return SqliteError(path_, "cannot read the resync audit log", rc, db_);
    }
  }
  for (v1::AuditRecord& record : records) {
    Use q(stmts_->select_results.get());
    q.Int(1, record.id());
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) {
      v1::NodeResyncResult* r = record.add_results();
      r->set_node(q.ColumnText(0));
      if (!q.ColumnProto(1, r->mutable_result())) {
        return absl::DataLossError(absl::StrCat(
            "controller database ", path_, ": the result of node '", r->node(),
            "' in resync audit record ", record.id(), " does not parse"));
      }
    }
    if (rc != SQLITE_DONE) {
      return SqliteError(
          path_,
          absl::StrCat("cannot read the results of resync audit record ",
                       record.id()),
          rc, db_);
    }
  }
  if (int rc = tx.Commit(stmts_->commit.get()); rc != SQLITE_DONE) {
    return SqliteError(path_, "cannot end reading the resync audit log", rc,
                       db_);
  }
  return records;
}

// --- SkewDownsampler ---------------------------------------------------------

SkewDownsampler::SkewDownsampler(absl::Duration bucket)
    : bucket_(bucket > absl::ZeroDuration() ? bucket : absl::Seconds(10)) {}

std::optional<v1::SkewPoint> SkewDownsampler::Add(const v1::Fleet& fleet) {
  const absl::Time t = FromProto(fleet.as_of());
  const absl::Time start =
      absl::UnixEpoch() + absl::Floor(t - absl::UnixEpoch(), bucket_);
  std::optional<v1::SkewPoint> finished;
  if (bucket_start_.has_value() && *bucket_start_ != start) {
    finished = Flush();
  }

  uint32_t counted = 0;
  for (const v1::Node& node : fleet.nodes()) {
    if (node.has_deviation()) ++counted;
  }
  const int64_t skew = ToNanos(fleet.skew());
  const int64_t error = ToNanos(fleet.max_error_bound());
  if (!bucket_start_.has_value()) {
    bucket_start_ = start;
    current_.Clear();
    SetTimestamp(start, current_.mutable_time());
    SetNanos(skew, current_.mutable_skew());
    SetNanos(error, current_.mutable_max_error_bound());
    current_.set_nodes(counted);
    current_.set_flagged(fleet.flagged_count());
  } else {
    if (skew > ToNanos(current_.skew())) {
      SetNanos(skew, current_.mutable_skew());
    }
    if (error > ToNanos(current_.max_error_bound())) {
      SetNanos(error, current_.mutable_max_error_bound());
    }
    current_.set_nodes(std::max(current_.nodes(), counted));
    current_.set_flagged(std::max(current_.flagged(), fleet.flagged_count()));
  }
  return finished;
}

std::optional<v1::SkewPoint> SkewDownsampler::Flush() {
  if (!bucket_start_.has_value()) return std::nullopt;
  bucket_start_.reset();
  return std::move(current_);
}

}  // namespace ntpfleet::controller
