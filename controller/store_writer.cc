// StoreWriter: see store_writer.h.
#include "controller/store_writer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/log.h"

namespace ntpfleet::controller {
namespace {

// Drops are logged at the 1st, 2nd, 4th, 8th... so that a full queue (a
// stalled disk) is loud without one log line per refused write.
bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

StoreWriter::StoreWriter(Store* store, size_t capacity)
    : store_(store), capacity_(std::max<size_t>(capacity, 1)) {
  absl::MutexLock lock(&join_mu_);
  thread_ = std::thread([this] { Run(); });
}

StoreWriter::~StoreWriter() { Stop(); }

absl::Status StoreWriter::Enqueue(Write write, Done done) {
  if (write == nullptr) {
    return absl::InvalidArgumentError("StoreWriter::Enqueue: no write given");
  }
  uint64_t dropped = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return absl::FailedPreconditionError(
          "controller database writer is stopped: the controller is shutting "
          "down, the write is not saved");
    }
    if (queue_.size() < capacity_) {
      queue_.push_back(Item{std::move(write), std::move(done)});
      return absl::OkStatus();
    }
    dropped = ++dropped_;
  }
  if (IsPowerOfTwo(dropped)) {
    Log(LogLevel::kError,
        "controller database %s: write queue full (%d writes waiting), %d "
        "writes dropped so far; the disk is too slow or stalled: check it",
        store_->path(), capacity_, dropped);
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "controller database %s: write queue full (%d writes waiting); the "
      "write is dropped (is the disk stalled?)",
      store_->path(), capacity_));
}

StoreWriter::Counters StoreWriter::counters() const {
  absl::MutexLock lock(&mu_);
  Counters c;
  c.written = written_;
  c.failed = failed_;
  c.dropped = dropped_;
  c.queued = queue_.size();
  return c;
}

void StoreWriter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  absl::MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

void StoreWriter::Run() {
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || stopping_;
  };
  for (;;) {
    Item item;
    {
      absl::MutexLock lock(&mu_, absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and drained
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    const absl::Status status = item.write(*store_);
    if (!status.ok()) {
      Log(LogLevel::kError, "controller database write failed: %s",
          status.ToString());
    }
    {
      absl::MutexLock lock(&mu_);
      ++(status.ok() ? written_ : failed_);
    }
    if (item.done != nullptr) item.done(status);
  }
}

}  // namespace ntpfleet::controller
