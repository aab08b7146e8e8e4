#include "clockbound/segment.h"

namespace ntpfleet::clockbound {

const char* ClockStatusName(ClockStatus status) {
  switch (status) {
    case ClockStatus::kUnknown:
      return "unknown";
    case ClockStatus::kSynchronized:
      return "synchronized";
    case ClockStatus::kFreeRunning:
      return "free running";
    case ClockStatus::kDisrupted:
      return "disrupted";
  }
  return "invalid";
}

}  // namespace ntpfleet::clockbound
