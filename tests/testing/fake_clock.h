// Clocks that move only when a test says so (thread-safe: services read them
// from their own threads).
#ifndef NTPFLEET_TESTS_TESTING_FAKE_CLOCK_H_
#define NTPFLEET_TESTS_TESTING_FAKE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace ntpfleet::testing {

class FakeClock : public clock::Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000))
      : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_;
};

// The monotonic timeline, moving only forward and only when told.
class FakeMonotonicClock : public clock::MonotonicClock {
 public:
  explicit FakeMonotonicClock(
      clock::MonoTime start = clock::MonoTime::FromDuration(absl::Hours(1)))
      : now_(start) {}
  clock::MonoTime Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  // `d` >= 0: a monotonic clock never goes back.
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    if (d > absl::ZeroDuration()) now_ += d;
  }
  // To `t`, if that is ahead (never back).
  void AdvanceTo(clock::MonoTime t) {
    absl::MutexLock lock(&mu_);
    if (t > now_) now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  clock::MonoTime now_;
};

}  // namespace ntpfleet::testing

#endif  // NTPFLEET_TESTS_TESTING_FAKE_CLOCK_H_
