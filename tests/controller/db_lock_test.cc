// controller/db_lock: one holder per database file. flock(2) locks belong to
// open file descriptions, so two DbLocks in one process conflict exactly as
// two controllers do; the files live in $TEST_TMPDIR.
#include "controller/db_lock.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ntpfleet::controller {
namespace {

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DbLockTest, SecondHolderIsRefusedNamingTheFirstsPid) {
  const std::string db = TempDir() + "/second.db";
  absl::StatusOr<DbLock> first = DbLock::Acquire(db);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->lock_path(), db + ".lock");
  EXPECT_EQ(ReadFile(db + ".lock"), absl::StrCat(getpid(), "\n"));

  absl::StatusOr<DbLock> second = DbLock::Acquire(db);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      second.status().message(),
      absl::StrCat("database ", db, " is in use by ntpfleet-controller pid ",
                   getpid(), " (lock file ", db,
                   ".lock); stop it or use another --db"));
}

TEST(DbLockTest, ReleasedWhenTheHolderGoesAndTheNewOwnerWritesItsPid) {
  const std::string db = TempDir() + "/released.db";
  // A stale pid from an earlier owner that died: only the lock counts.
  { std::ofstream(db + ".lock") << "999999999\n"; }
  {
    absl::StatusOr<DbLock> first = DbLock::Acquire(db);
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(ReadFile(db + ".lock"), absl::StrCat(getpid(), "\n"));
    // Moved, it still holds the lock.
    DbLock moved = *std::move(first);
    EXPECT_FALSE(DbLock::Acquire(db).ok());
  }
  EXPECT_TRUE(DbLock::Acquire(db).ok());
}

TEST(DbLockTest, HolderThatHasNotWrittenItsPidYet) {
  const std::string db = TempDir() + "/nopid.db";
  absl::StatusOr<DbLock> first = DbLock::Acquire(db);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(truncate((db + ".lock").c_str(), 0), 0);
  absl::StatusOr<DbLock> second = DbLock::Acquire(db);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(
                "in use by another ntpfleet-controller (pid not yet written)"),
            std::string::npos)
      << second.status();
}

TEST(DbLockTest, MissingDirectoryNamesTheLockFileAndTheFix) {
  const std::string db = TempDir() + "/no/such/dir/controller.db";
  absl::StatusOr<DbLock> lock = DbLock::Acquire(db);
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(lock.status().message(),
            absl::StrCat("--db ", db, ": cannot open its lock file ", db,
                         ".lock (No such file or directory); the directory "
                         "must exist and be writable by the controller"));
}

}  // namespace
}  // namespace ntpfleet::controller
