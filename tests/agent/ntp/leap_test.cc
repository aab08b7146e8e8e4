#include "agent/ntp/leap.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/ntp/packet.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::ntp {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::HasSubstr;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss),
                         absl::UTCTimeZone());
}

// Debian 12's tzdata copy (tests/agent/ntp/testdata/README.md).
std::string Tzdata() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::ifstream in(absl::StrCat(srcdir ? srcdir : ".",
                                "/ntpfleet/tests/agent/ntp/testdata/"
                                "leap-seconds.list"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A small list in the same format with a hypothetical leap second at the end
// of June 2026 (TAI-UTC 38 from 2026-07-01), expiring 2027-06-28. Its hash was
// computed with Python's hashlib over the digits of the #$, #@ and data lines;
// the first word is 08514d93, written without its leading zero as the IERS
// does.
constexpr char kFutureLeap[] =
    "# a test list\n"
    "#$\t3960835202\n"
    "#@\t4023129600\n"
    "3644697600\t36\t# 1 Jul 2015\n"
    "3692217600\t37\t# 1 Jan 2017\n"
    "3991852800\t38\t# 1 Jul 2026 (hypothetical)\n"
    "#h\t8514d93 2f88d66b fb145558 616ed406 7365410d\n";

TEST(LeapTableTest, ParsesTheTzdataFileAndVerifiesItsHash) {
  const std::string text = Tzdata();
  ASSERT_FALSE(text.empty()) << "testdata/leap-seconds.list not found";
  absl::StatusOr<LeapTable> table = LeapTable::Parse(text, "leap-seconds.list");
  ASSERT_THAT(table, IsOk());
  EXPECT_TRUE(table->hash_verified());
  EXPECT_EQ(table->expires(), Utc(2026, 6, 28));
  EXPECT_EQ(table->updated(), Utc(2025, 7, 7));
  ASSERT_EQ(table->entries().size(), 28u);
  EXPECT_EQ(table->entries().front().start, Utc(1972, 1, 1));
  EXPECT_EQ(table->entries().front().tai_utc, 10);
  EXPECT_EQ(table->entries().back().start, Utc(2017, 1, 1));
  EXPECT_EQ(table->entries().back().tai_utc, 37);
}

TEST(LeapTableTest, KnowsWhichMonthEndsHadALeapSecond) {
  absl::StatusOr<LeapTable> table = LeapTable::Parse(Tzdata(), "tzdata");
  ASSERT_THAT(table, IsOk());
  // The last one: 2016-12-31 23:59:60; asked about any instant of December.
  EXPECT_EQ(table->LeapAtEndOfMonth(Utc(2016, 12, 1)), Leap::kInsertSecond);
  EXPECT_EQ(table->LeapAtEndOfMonth(Utc(2016, 12, 31, 23, 59, 59)),
            Leap::kInsertSecond);
  EXPECT_EQ(table->LeapAtEndOfMonth(Utc(2017, 1, 1)), Leap::kNone);
  EXPECT_EQ(table->LeapAtEndOfMonth(Utc(2016, 11, 30, 23, 59, 59)),
            Leap::kNone);
  EXPECT_EQ(table->LeapAtEndOfMonth(Utc(2016, 6, 30)), Leap::kNone);
  EXPECT_EQ(table->LeapAtEndOfMonth(Utc(2015, 6, 30)), Leap::kInsertSecond);
  EXPECT_EQ(table->LeapAtEndOfMonth(Utc(1972, 6, 15)), Leap::kInsertSecond);
  // 1972-01-01 starts the table (TAI-UTC 10): not a leap second.
  EXPECT_EQ(table->LeapAtEndOfMonth(Utc(1971, 12, 31)), Leap::kNone);
}

TEST(LeapTableTest, ExpiresAndCoversOnlyMonthEndsBeforeItsExpiry) {
  absl::StatusOr<LeapTable> table = LeapTable::Parse(Tzdata(), "tzdata");
  ASSERT_THAT(table, IsOk());
  EXPECT_FALSE(table->ExpiredAt(Utc(2026, 6, 27, 23, 59, 59)));
  EXPECT_TRUE(table->ExpiredAt(Utc(2026, 6, 28)));
  // Updated in July 2025, after Bulletin C decided December 2025; June 2026
  // was not decided yet, and the file expires on 28 June, before its end.
  EXPECT_TRUE(table->CoversEndOfMonth(Utc(2025, 12, 31)));
  EXPECT_TRUE(table->CoversEndOfMonth(Utc(2026, 5, 31)));
  EXPECT_FALSE(table->CoversEndOfMonth(Utc(2026, 6, 1)));
  EXPECT_FALSE(table->CoversEndOfMonth(Utc(2026, 12, 31)));
}

TEST(LeapTableTest, AcceptsAHashWordWithoutItsLeadingZeros) {
  absl::StatusOr<LeapTable> table = LeapTable::Parse(kFutureLeap, "future");
  ASSERT_THAT(table, IsOk());
  EXPECT_TRUE(table->hash_verified());
  EXPECT_EQ(table->LeapAtEndOfMonth(Utc(2026, 6, 30)), Leap::kInsertSecond);
  EXPECT_EQ(table->expires(), Utc(2027, 6, 28));
}

TEST(LeapTableTest, AcceptsCrlfAndAFileWithoutHash) {
  std::string text = absl::StrReplaceAll(kFutureLeap, {{"\n", "\r\n"}});
  absl::StatusOr<LeapTable> crlf = LeapTable::Parse(text, "crlf");
  ASSERT_THAT(crlf, IsOk());
  EXPECT_TRUE(crlf->hash_verified());

  text = kFutureLeap;
  text.erase(text.find("#h"));
  absl::StatusOr<LeapTable> unhashed = LeapTable::Parse(text, "unhashed");
  ASSERT_THAT(unhashed, IsOk());
  EXPECT_FALSE(unhashed->hash_verified());
  EXPECT_EQ(unhashed->entries().size(), 3u);
}

TEST(LeapTableTest, RejectsAnEditedFileByItsHash) {
  // The last-update line changed: every line still parses, the hash does not
  // match. The error names the hash line.
  std::string text = Tzdata();
  const size_t at = text.find("3960835200");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 10, "3960835300");
  EXPECT_THAT(LeapTable::Parse(text, "leap-seconds.list"),
              StatusIs(kInvalid, HasSubstr("leap-seconds.list:120: hash "
                                           "mismatch (#h 49db2447 571e5e1b")));
  // A leap second taken out (the last line dropped) ...
  text = kFutureLeap;
  text.erase(text.find("3991852800"),
             text.find("#h") - text.find("3991852800"));
  EXPECT_THAT(LeapTable::Parse(text, "edited"),
              StatusIs(kInvalid, HasSubstr("edited:6: hash mismatch")));
  // ... or the expiry extended.
  text = absl::StrReplaceAll(kFutureLeap, {{"4023129600", "4054665600"}});
  EXPECT_THAT(LeapTable::Parse(text, "extended"),
              StatusIs(kInvalid, HasSubstr("extended:7: hash mismatch")));
}

TEST(LeapTableTest, ReportsMalformedLinesWithTheirNumber) {
  const struct {
    const char* text;
    const char* error;
  } kCases[] = {
      {"#@ 4023129600\n3692217600\n",
       "f:2: expected 'NTP-SECONDS TAI-UTC', got '3692217600'"},
      {"#@ 4023129600\n3692217600 37 12\n",
       "f:2: expected 'NTP-SECONDS TAI-UTC', got '3692217600 37 12'"},
      {"#@ 4023129600\nsoon 37\n",
       "f:2: date: expected NTP seconds since 1900, got 'soon'"},
      {"#@ 4023129600\n3692217600 -1\n",
       "f:2: TAI-UTC: expected a number of seconds, got '-1'"},
      {"#@ 4023129600\n\n3692217700 37\n",
       "f:3: 3692217700 is 2017-01-01T00:01:40 UTC, not the start of a month: "
       "leap seconds happen only at the end of a month"},
      {"#@ 4023129600\n3692217600 37\n3644697600 36\n",
       "f:3: 3644697600 is not after the line before"},
      {"#@ 4023129600\n3644697600 36\n3692217600 38\n",
       "f:3: TAI-UTC goes from 36 to 38: a leap second changes it by one"},
      {"#@ later\n3692217600 37\n",
       "f:1: expiry (#@): expected NTP seconds since 1900, got 'later'"},
      {"#$ 1 2\n#@ 4023129600\n3692217600 37\n",
       "f:1: last update (#$): expected NTP seconds since 1900, got '1 2'"},
      {"#@ 4023129600\n#@ 4023129600\n3692217600 37\n",
       "f:2: a second expiry line (#@)"},
      {"#@ 4023129600\n3692217600 37\n#h 1 2 3 4\n",
       "f:3: hash (#h): expected five hexadecimal 32-bit words (SHA-1)"},
      {"#@ 4023129600\n3692217600 37\n#h 1 2 3 4 123456789\n",
       "f:3: hash (#h): expected five hexadecimal 32-bit words (SHA-1)"},
      {"#@ 4023129600\n3692217600 37\n#h 1 2 3 4 xyz\n",
       "f:3: hash (#h): expected five hexadecimal 32-bit words (SHA-1)"},
      {"3692217600 37\n",
       "f: no expiry line (#@): not a leap-seconds.list file?"},
      {"#@ 4023129600\n# nothing\n", "f: no leap second lines"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.text);
    EXPECT_THAT(LeapTable::Parse(c.text, "f"), StatusIs(kInvalid, c.error));
  }
}

TEST(EndOfUtcMonthTest, IsMidnightStartingTheNextMonth) {
  EXPECT_EQ(EndOfUtcMonth(Utc(2016, 12, 31, 23, 59, 59)), Utc(2017, 1, 1));
  EXPECT_EQ(EndOfUtcMonth(Utc(2016, 12, 1)), Utc(2017, 1, 1));
  EXPECT_EQ(EndOfUtcMonth(Utc(2024, 2, 10)), Utc(2024, 3, 1));
}

TEST(DecideLeapTest, TakesOnlyWhatAMajorityOfTruechimersSays) {
  const absl::Time june = Utc(2026, 6, 30, 12);
  // A lying minority.
  EXPECT_EQ(DecideLeap({.insert = 1, .voters = 3}, june, nullptr), Leap::kNone);
  // Half is not a majority.
  EXPECT_EQ(DecideLeap({.insert = 2, .voters = 4}, june, nullptr), Leap::kNone);
  EXPECT_EQ(DecideLeap({.insert = 2, .voters = 3}, june, nullptr),
            Leap::kInsertSecond);
  EXPECT_EQ(DecideLeap({.insert = 1, .voters = 1}, june, nullptr),
            Leap::kInsertSecond);
  EXPECT_EQ(DecideLeap({.remove = 3, .voters = 5}, june, nullptr),
            Leap::kDeleteSecond);
  // Split between insert and delete: neither has a majority.
  EXPECT_EQ(DecideLeap({.insert = 1, .remove = 1, .voters = 2}, june, nullptr),
            Leap::kNone);
  EXPECT_EQ(DecideLeap({}, june, nullptr), Leap::kNone);
}

TEST(DecideLeapTest, WithoutATableOnlyTheEndsOfJuneAndDecember) {
  const LeapVotes all{.insert = 3, .voters = 3};
  EXPECT_EQ(DecideLeap(all, Utc(2026, 6, 1), nullptr), Leap::kInsertSecond);
  EXPECT_EQ(DecideLeap(all, Utc(2026, 12, 31, 23, 59, 59), nullptr),
            Leap::kInsertSecond);
  for (int month : {1, 2, 3, 4, 5, 7, 8, 9, 10, 11}) {
    SCOPED_TRACE(month);
    EXPECT_EQ(DecideLeap(all, Utc(2026, month, 28), nullptr), Leap::kNone);
  }
  // The first instant of July is past June's end.
  EXPECT_EQ(DecideLeap(all, Utc(2026, 7, 1), nullptr), Leap::kNone);
}

TEST(DecideLeapTest, ATableThatCoversTheMonthEndDecides) {
  absl::StatusOr<LeapTable> table = LeapTable::Parse(Tzdata(), "tzdata");
  ASSERT_THAT(table, IsOk());
  const LeapVotes insert{.insert = 2, .voters = 3};
  // Listed.
  EXPECT_EQ(DecideLeap(insert, Utc(2016, 12, 31), &*table),
            Leap::kInsertSecond);
  // Not listed, though June: refused.
  EXPECT_EQ(DecideLeap(insert, Utc(2016, 6, 30), &*table), Leap::kNone);
  EXPECT_EQ(DecideLeap(insert, Utc(2025, 12, 31), &*table), Leap::kNone);
  // Listed as an insertion, announced as a deletion: refused.
  EXPECT_EQ(DecideLeap({.remove = 3, .voters = 3}, Utc(2016, 12, 31), &*table),
            Leap::kNone);
  // The table does not cover the end of June 2026 (it expires on the 28th)
  // nor anything after: the June/December rule again.
  EXPECT_EQ(DecideLeap(insert, Utc(2026, 6, 30), &*table), Leap::kInsertSecond);
  EXPECT_EQ(DecideLeap(insert, Utc(2026, 12, 31), &*table),
            Leap::kInsertSecond);
  EXPECT_EQ(DecideLeap(insert, Utc(2026, 11, 30), &*table), Leap::kNone);
  // A table that lists a March leap second makes March possible.
  absl::StatusOr<LeapTable> march = LeapTable::Parse(
      "#@ 4023129600\n3692217600 37\n3983990400 38\n", "march");
  ASSERT_THAT(march, IsOk());
  EXPECT_EQ(DecideLeap(insert, Utc(2026, 3, 31), &*march), Leap::kInsertSecond);
  EXPECT_EQ(DecideLeap(insert, Utc(2026, 6, 30), &*march), Leap::kNone);
}

}  // namespace
}  // namespace ntpfleet::ntp
