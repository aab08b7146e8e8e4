#include "common/clock.h"

#include <time.h>

#include "absl/time/clock.h"

namespace ntpfleet::clock {

MonoTime SystemMonotonicClock::Now() const {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return MonoTime::FromDuration(absl::DurationFromTimespec(ts));
}

absl::Time SystemWallClock::Now() const { return absl::Now(); }

}  // namespace ntpfleet::clock
