#include "agent/report/resync_gate.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace ntpfleet::report {

std::optional<std::string> ResyncGate::Admit(const std::string& controller,
                                             clock::MonoTime now) {
  absl::MutexLock lock(&mu_);
  for (const auto& [other, at] : last_) {
    if (other == controller) continue;
    // `now < at` cannot happen on one monotonic clock; if it did, refusing
    // is the safe side.
    const absl::Duration ago = now - at;
    if (ago < min_interval_) {
      return absl::StrFormat(
          "resynced at the request of controller %s %s ago; at most one "
          "resync every %s from different controllers",
          other,
          absl::FormatDuration(absl::Trunc(std::max(ago, absl::ZeroDuration()),
                                           absl::Milliseconds(100))),
          absl::FormatDuration(min_interval_));
    }
  }
  last_[controller] = now;
  return std::nullopt;
}

}  // namespace ntpfleet::report
