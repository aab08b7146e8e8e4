// StoreWriter: the one thread that writes the controller's SQLite store, so
// that no gRPC callback thread (nor the housekeeping thread) ever waits for
// the disk. Writes are queued (bounded), applied in order, one at a time; a
// write's `done` callback runs on the writer thread once the write has
// committed (or failed), for a caller that may act only once its data is on
// disk (e.g. send a resync only after its audit record is written).
//
//   StoreWriter writer(store.get());  // capacity 10 000
//   absl::Status queued = writer.Enqueue(
//       [hello, now](Store& s) { return s.UpsertNode(hello, now); });
//   if (!queued.ok()) ...;  // ResourceExhausted: the queue is full (dropped)
//   ...
//   writer.Stop();  // drains the queue, then joins; also in the destructor
//
// Failed writes are logged (common/log.h) and counted, never silently lost;
// counters() tells written, failed, dropped (refused because the queue was
// full) and queued, for /metrics.
//
// Thread-safety: Enqueue, counters and Stop may be called from any thread. The
// Store must outlive the StoreWriter. Reads need no queue: they go to the
// Store directly (it serialises them with the writer's transactions).
#ifndef NTPFLEET_CONTROLLER_STORE_WRITER_H_
#define NTPFLEET_CONTROLLER_STORE_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "controller/store.h"

namespace ntpfleet::controller {

class StoreWriter {
 public:
  // A write: typically one Store method call, i.e. one transaction.
  using Write = std::function<absl::Status(Store&)>;
  // Told the write's status, on the writer thread, after the write returned.
  // It must not call Stop (it would wait for itself); it may Enqueue.
  using Done = std::function<void(const absl::Status&)>;

  static constexpr size_t kDefaultCapacity = 10000;

  // Starts the writer thread. `store` is not owned and must not be null.
  // `capacity` (at least 1) bounds the writes waiting in the queue.
  explicit StoreWriter(Store* store, size_t capacity = kDefaultCapacity);
  // Stop().
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Queues `write` (and `done`, which may be null). ResourceExhausted (and
  // counted as dropped; `done` is not called) when `capacity` writes are
  // already waiting; FailedPrecondition once Stop has begun; InvalidArgument
  // for a null `write`.
  absl::Status Enqueue(Write write, Done done = nullptr);

  struct Counters {
    uint64_t written = 0;  // writes that returned OK
    uint64_t failed = 0;   // writes that returned an error (each logged)
    uint64_t dropped = 0;  // Enqueue refused: the queue was full
    size_t queued = 0;     // waiting now (not counting the one being written)
  };
  Counters counters() const;

  // Refuses new writes, applies every write already queued, then joins the
  // thread. Idempotent; every call returns once the thread has ended.
  void Stop();

 private:
  struct Item {
    Write write;
    Done done;
  };

  void Run();  // the writer thread

  Store* const store_;
  const size_t capacity_;

  mutable absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex join_mu_;  // serialises the join of concurrent Stop calls
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_STORE_WRITER_H_
