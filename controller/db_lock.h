// One controller per database: an exclusive flock(2) on "<db>.lock", held for
// the life of the process, with the owner's pid written in it. A second
// controller started on the same --db is refused at start, naming the first:
//
//   absl::StatusOr<DbLock> lock = DbLock::Acquire("/var/lib/x/controller.db");
//   // FailedPrecondition: "database /var/lib/x/controller.db is in use by
//   // ntpfleet-controller pid 1234 (lock file /var/lib/x/controller.db.lock);
//   // stop it or use another --db"
//
// Why a file of its own: SQLite takes POSIX (fcntl) locks on the database,
// and on NFS flock is emulated with fcntl locks, which would then collide
// with SQLite's. Why flock: the kernel drops it when the process dies, even
// by SIGKILL, so a crashed controller never leaves a stale lock (the file
// stays; only its lock matters, and it is never deleted: deleting would let
// two processes lock two different files of the same name).
//
// Thread safety: a DbLock is a value owned by one thread; Acquire is
// stateless.
#ifndef NTPFLEET_CONTROLLER_DB_LOCK_H_
#define NTPFLEET_CONTROLLER_DB_LOCK_H_

#include <string>

#include "absl/status/statusor.h"

namespace ntpfleet::controller {

class DbLock {
 public:
  // Locks `db_path` + ".lock" (created 0644 if missing). FailedPrecondition
  // naming the holder's pid when another open file holds it (another process,
  // or another DbLock of this one); another error when the lock file cannot be
  // opened (its directory missing or not writable).
  static absl::StatusOr<DbLock> Acquire(const std::string& db_path);

  DbLock(DbLock&& other) noexcept;
  DbLock& operator=(DbLock&& other) noexcept;
  DbLock(const DbLock&) = delete;
  DbLock& operator=(const DbLock&) = delete;
  ~DbLock();  // releases the lock

  const std::string& lock_path() const { return lock_path_; }

 private:
  DbLock(int fd, std::string lock_path)
      : fd_(fd), lock_path_(std::move(lock_path)) {}
  int fd_ = -1;
  std::string lock_path_;
};

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_DB_LOCK_H_
