// Leap seconds: the IERS/tzdata table of past and scheduled leap seconds
// (`leapfile`, e.g. /usr/share/zoneinfo/leap-seconds.list) and the rule that
// decides whether the node takes a leap second its sources announce.
//
// RFC 5905 §7.3's leap indicator (LI 1: insert, LI 2: delete) carries no date.
// Servers (ntpd) set it days or weeks ahead, meaning "at the end of the current
// UTC month", so that is how it is read here. A single server's bit is not
// trusted: the engine counts the votes of its truechimers (the sources that
// survived the intersection, RFC 5905 §11.2.1) and DecideLeap() takes an
// announcement only when
//   - more than half of them make it;
//   - the leap would fall at the end of the UTC month containing `now`;
//   - that month end may carry this leap: the leap table lists it (with the
//     same sign), or, without a table or when the table does not cover that
//     month end (it expired before it), it is the end of June or December
//     (ITU-R TF.460's first preference, and the only dates used since 1972;
//     chrony applies the same rule without a leapsectz).
// The table only filters: a leap second it lists that the sources do not
// announce is not taken (the sources are the node's reference; a table alone
// would leap a node whose servers do not).
//
//   absl::StatusOr<LeapTable> table = LeapTable::Parse(text,
//   "leap-seconds.list"); Leap leap = DecideLeap({.insert = 2, .voters = 3},
//   now, &*table);
//
// Pure: the caller reads the file. Thread-compatible.
#ifndef NTPFLEET_AGENT_NTP_LEAP_H_
#define NTPFLEET_AGENT_NTP_LEAP_H_

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/ntp/packet.h"

namespace ntpfleet::ntp {

// `leapsecmode` (chrony's name and values): who carries out an accepted leap
// second.
enum class LeapMode {
  // The kernel inserts or deletes it at 23:59:60 UTC (adjtimex STA_INS /
  // STA_DEL, set only on the last day of the month): the clock repeats (or
  // skips) one second, as UTC does.
  kSystem,
  // The kernel is not told. At the leap the clock is 1 s off UTC and the
  // discipline slews it back at the 500 ppm limit (about 2000 s); the clock
  // never repeats a second and never steps.
  kSlew,
};
const char* LeapModeName(LeapMode mode);

// One data line of the table: from `start` (UTC; 00:00:00 of the first day of
// a month) TAI - UTC is `tai_utc` seconds.
struct LeapEntry {
  absl::Time start;
  int tai_utc = 0;
};

class LeapTable {
 public:
  // Parses the text of leap-seconds.list (NIST/IERS format):
  //   "#$ NTP-SECONDS"   when the file was last updated (optional)
  //   "#@ NTP-SECONDS"   when it expires (required)
  //   "#h H1 H2 H3 H4 H5" SHA-1 of the data, as five 32-bit hex words
  //                      (optional; verified when present)
  //   "NTP-SECONDS TAI-UTC [# comment]"   one per change of TAI - UTC,
  //                      ascending, each at the start of a UTC month
  //   other lines starting with '#': comments.
  // NTP seconds count from 1900-01-01 00:00:00 UTC (RFC 5905 §6, era 0).
  // `name` prefixes error messages: "leap-seconds.list:42: expected ...".
  static absl::StatusOr<LeapTable> Parse(absl::string_view text,
                                         absl::string_view name);

  absl::Time expires() const { return expires_; }
  std::optional<absl::Time> updated() const { return updated_; }
  // True when the file had a "#h" line and it matched (Parse fails on a
  // mismatch); false when the file had none.
  bool hash_verified() const { return hash_verified_; }
  const std::vector<LeapEntry>& entries() const { return entries_; }

  // From its expiry on the table is out of date.
  bool ExpiredAt(absl::Time t) const { return t >= expires_; }
  // Whether the table speaks for the end of the UTC month containing `t`: only
  // for a month end no later than its expiry. IERS files expire on 28 June or
  // 28 December, just before the next month end they know nothing about (a
  // file updated in July, after Bulletin C decided December, expires the next
  // 28 June).
  bool CoversEndOfMonth(absl::Time t) const;
  // The leap second the table lists at the end of the UTC month containing
  // `t`: kInsertSecond (TAI - UTC grows by 1 there), kDeleteSecond (shrinks by
  // 1) or kNone. Does not look at the expiry.
  Leap LeapAtEndOfMonth(absl::Time t) const;

 private:
  std::vector<LeapEntry> entries_;
  absl::Time expires_;
  std::optional<absl::Time> updated_;
  bool hash_verified_ = false;
};

// 00:00:00 UTC of the first day of the month after the one containing `t`:
// the instant a leap second at the end of t's month ends (UTC's 23:59:60 is
// the second before it).
absl::Time EndOfUtcMonth(absl::Time t);

// The leap indicators of the truechimers' last samples.
struct LeapVotes {
  int insert = 0;  // LI 1
  int remove = 0;  // LI 2
  int voters = 0;  // all truechimers, whatever their LI
};

// Which leap second, if any, to take at the end of the UTC month containing
// `now` (the node's clock) from these votes; see the file comment. `table` may
// be null (no leapfile). Returns kInsertSecond, kDeleteSecond or kNone.
Leap DecideLeap(const LeapVotes& votes, absl::Time now, const LeapTable* table);

}  // namespace ntpfleet::ntp

#endif  // NTPFLEET_AGENT_NTP_LEAP_H_
