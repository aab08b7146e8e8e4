#include "common/nearest_word.h"

#include "gtest/gtest.h"

namespace ntpfleet {
namespace {

TEST(EditDistanceTest, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("abc", "abc"), 0u);
  EXPECT_EQ(EditDistance("nomodfy", "nomodify"), 1u);    // insertion
  EXPECT_EQ(EditDistance("nomodifyy", "nomodify"), 1u);  // deletion
  EXPECT_EQ(EditDistance("nomodifx", "nomodify"), 1u);   // substitution
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

TEST(NearestWordTest, OneOrTwoEditsAwayTheFewestFirst) {
  EXPECT_EQ(NearestWord("nomodfy", {"noquery", "nomodify"}), "nomodify");
  EXPECT_EQ(NearestWord("max_skw", {"max_skew", "max_sk"}), "max_skew");
  // Equals: the earliest candidate.
  EXPECT_EQ(NearestWord("ab", {"abc", "abd"}), "abc");
  EXPECT_EQ(NearestWord("kitten", {"sitting"}), "");  // three edits
  // A word that is all edits is not near: "x" is not a hint for "y".
  EXPECT_EQ(NearestWord("x", {"y"}), "");
  EXPECT_EQ(NearestWord("anything", {}), "");
}

}  // namespace
}  // namespace ntpfleet
