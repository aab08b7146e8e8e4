// What a node's label (`label KEY=VALUE` in agent.conf, Hello.labels) may be:
// the agent's configuration parser and the controller apply the same rule, so
// a configuration the agent accepts is never refused by the controller.
#ifndef NTPFLEET_COMMON_LABELS_H_
#define NTPFLEET_COMMON_LABELS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ntpfleet {

inline constexpr int kMaxLabels = 64;
inline constexpr size_t kMaxLabelKeyBytes = 63;     // 1..63 of [A-Za-z0-9._/-]
inline constexpr size_t kMaxLabelValueBytes = 253;  // printable ASCII

// OK, or InvalidArgument saying what is wrong with the key or the value
// ("label key 'a b' has byte 0x20; keys are made of [A-Za-z0-9._/-]").
absl::Status CheckLabel(absl::string_view key, absl::string_view value);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_LABELS_H_
