#include "common/nearest_word.h"

#include <algorithm>
#include <string>
#include <vector>

namespace ntpfleet {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string NearestWord(absl::string_view word,
                        const std::vector<absl::string_view>& candidates) {
  absl::string_view best;
  size_t best_distance = 3;
  for (absl::string_view c : candidates) {
    // The distance is at least the difference in length.
    if (word.size() + 2 < c.size() || c.size() + 2 < word.size()) continue;
    const size_t d = EditDistance(word, c);
    if (d < best_distance && d < c.size()) {
      best = c;
      best_distance = d;
    }
  }
  return std::string(best);
}

}  // namespace ntpfleet
