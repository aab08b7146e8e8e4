// NearestWord: the "did you mean" of the config parser and the flag check.
//
//   NearestWord("nomodfy", {"nomodify", "noquery"})  // -> "nomodify"
//   NearestWord("banana", {"nomodify"})              // -> ""
#ifndef NTPFLEET_COMMON_NEAREST_WORD_H_
#define NTPFLEET_COMMON_NEAREST_WORD_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace ntpfleet {

// Levenshtein distance: insertions, deletions and substitutions.
size_t EditDistance(absl::string_view a, absl::string_view b);

// The candidate one or two edits from `word` (fewest first, the earliest of
// equals), never one that is all edits (a one-letter word is not "near" any
// other); "" when there is none.
std::string NearestWord(absl::string_view word,
                        const std::vector<absl::string_view>& candidates);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_NEAREST_WORD_H_
