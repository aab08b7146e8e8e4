#include "common/labels.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace ntpfleet {

absl::Status CheckLabel(absl::string_view key, absl::string_view value) {
  if (key.empty() || key.size() > kMaxLabelKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("label key '%s' is %d bytes, must be 1..%d",
                        absl::CHexEscape(key), key.size(), kMaxLabelKeyBytes));
  }
  for (char c : key) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!absl::ascii_isalnum(u) && c != '.' && c != '_' && c != '/' &&
        c != '-') {
      return absl::InvalidArgumentError(absl::StrFormat(
          "label key '%s' has byte 0x%02x; keys are made of [A-Za-z0-9._/-]",
          absl::CHexEscape(key), u));
    }
  }
  if (value.size() > kMaxLabelValueBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("label %s: the value is %d bytes, at most %d", key,
                        value.size(), kMaxLabelValueBytes));
  }
  for (char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "label %s: the value has byte 0x%02x; values are printable ASCII",
          key, u));
    }
  }
  return absl::OkStatus();
}

}  // namespace ntpfleet
