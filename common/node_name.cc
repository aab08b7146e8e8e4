#include "common/node_name.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace ntpfleet {

bool IsValidNodeName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNodeNameBytes) return false;
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
          c != '_') {
        return false;
      }
    }
  }
  return true;
}

}  // namespace ntpfleet
