#include "agent/ntp/leap.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace ntpfleet::ntp {
namespace {

// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (RFC 5905 §6).
constexpr int64_t kNtpToUnix = 2208988800;
// Larger NTP second counts (beyond year ~36000) are not dates we can mean.
constexpr uint64_t kMaxNtpSeconds = uint64_t{1} << 40;

// The digits of `s`, in order: what the "#h" hash covers of each line
// (whitespace and comments do not count; this is how the IERS and ntpd compute
// it).
std::string Digits(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) out.push_back(c);
  }
  return out;
}

// SHA-1 of `data` as five big-endian 32-bit words; nullopt if OpenSSL fails.
std::optional<std::array<uint32_t, 5>> Sha1Words(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha1(), nullptr) !=
          1 ||
      len != 20) {
    return std::nullopt;
  }
  std::array<uint32_t, 5> words{};
  for (size_t i = 0; i < 5; ++i) {
    words[i] = (uint32_t{digest[4 * i]} << 24) |
               (uint32_t{digest[4 * i + 1]} << 16) |
               (uint32_t{digest[4 * i + 2]} << 8) | uint32_t{digest[4 * i + 3]};
  }
  return words;
}

}  // namespace

const char* LeapModeName(LeapMode mode) {
  switch (mode) {
    case LeapMode::kSystem:
      return "system";
    case LeapMode::kSlew:
      return "slew";
  }
  return "?";
}

absl::Time EndOfUtcMonth(absl::Time t) {
  return absl::FromCivil(absl::ToCivilMonth(t, absl::UTCTimeZone()) + 1,
                         absl::UTCTimeZone());
}

absl::StatusOr<LeapTable> LeapTable::Parse(absl::string_view text,
                                           absl::string_view name) {
  LeapTable table;
  int line_number = 0;
  auto error = [&](absl::string_view message) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":", line_number, ": ", message));
  };
  // An NTP second count (RFC 5905 §6, counted from 1900 without wrapping, as
  // the file does) as a time.
  auto ntp_seconds = [&](absl::string_view token,
                         absl::string_view what) -> absl::StatusOr<absl::Time> {
    uint64_t seconds = 0;
    if (!absl::SimpleAtoi(token, &seconds) || seconds >= kMaxNtpSeconds) {
      return error(absl::StrFormat(
          "%s: expected NTP seconds since 1900, got '%s'", what, token));
    }
    return absl::FromUnixSeconds(static_cast<int64_t>(seconds) - kNtpToUnix);
  };

  std::string hashed;  // the digits the "#h" line covers, in file order
  std::optional<std::array<uint32_t, 5>> stated_hash;
  int hash_line = 0;
  bool have_expiry = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    while (absl::EndsWith(line, "\r")) line.remove_suffix(1);
    if (absl::StartsWith(line, "#$") || absl::StartsWith(line, "#@")) {
      const bool expiry = line[1] == '@';
      const absl::string_view value =
          absl::StripAsciiWhitespace(line.substr(2));
      absl::StatusOr<absl::Time> t =
          ntp_seconds(value, expiry ? "expiry (#@)" : "last update (#$)");
      if (!t.ok()) return t.status();
      if (expiry) {
        if (have_expiry) return error("a second expiry line (#@)");
        table.expires_ = *t;
        have_expiry = true;
      } else {
        table.updated_ = *t;
      }
      hashed += Digits(value);
      continue;
    }
    if (absl::StartsWith(line, "#h")) {
      if (stated_hash) return error("a second hash line (#h)");
      std::vector<absl::string_view> words =
          absl::StrSplit(absl::StripAsciiWhitespace(line.substr(2)),
                         absl::ByAnyChar(" \t"), absl::SkipEmpty());
      std::array<uint32_t, 5> parsed{};
      bool ok = words.size() == parsed.size();
      for (size_t i = 0; ok && i < words.size(); ++i) {
        // The IERS drops leading zeros of a word ("e7404ec"): up to 8 digits.
        ok = words[i].size() <= 8 &&
             absl::SimpleHexAtoi(words[i], &parsed[i]) &&
             !absl::StartsWith(words[i], "0x") &&
             !absl::StartsWith(words[i], "0X");
      }
      if (!ok) {
        return error(
            "hash (#h): expected five hexadecimal 32-bit words (SHA-1)");
      }
      stated_hash = parsed;
      hash_line = line_number;
      continue;
    }
    if (absl::StartsWith(line, "#")) continue;  // a comment
    const absl::string_view data =
        absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (data.empty()) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(data, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return error(
          absl::StrFormat("expected 'NTP-SECONDS TAI-UTC', got '%s'", data));
    }
    absl::StatusOr<absl::Time> start = ntp_seconds(fields[0], "date");
    if (!start.ok()) return start.status();
    int tai_utc = 0;
    if (!absl::SimpleAtoi(fields[1], &tai_utc) || tai_utc < 0 ||
        tai_utc > 1000) {
      return error(absl::StrFormat(
          "TAI-UTC: expected a number of seconds, got '%s'", fields[1]));
    }
    const absl::CivilSecond civil =
        absl::ToCivilSecond(*start, absl::UTCTimeZone());
    if (civil != absl::CivilSecond(absl::CivilMonth(civil))) {
      return error(absl::StrFormat(
          "%s is %s UTC, not the start of a month: leap seconds happen only "
          "at the end of a month",
          fields[0], absl::FormatCivilTime(civil)));
    }
    if (!table.entries_.empty()) {
      const LeapEntry& last = table.entries_.back();
      if (*start <= last.start) {
        return error(
            absl::StrFormat("%s is not after the line before", fields[0]));
      }
      if (tai_utc != last.tai_utc + 1 && tai_utc != last.tai_utc - 1) {
        return error(absl::StrFormat(
            "TAI-UTC goes from %d to %d: a leap second changes it by one",
            last.tai_utc, tai_utc));
      }
    }
    table.entries_.push_back(LeapEntry{*start, tai_utc});
    hashed += Digits(fields[0]);
    hashed += Digits(fields[1]);
  }
  line_number = 0;  // errors about the whole file
  if (!have_expiry) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": no expiry line (#@): not a leap-seconds.list file?"));
  }
  if (table.entries_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": no leap second lines"));
  }
  if (stated_hash) {
    const std::optional<std::array<uint32_t, 5>> computed = Sha1Words(hashed);
    if (!computed) {
      return absl::InternalError(
          absl::StrCat(name, ": SHA-1 unavailable to check the hash"));
    }
    if (*computed != *stated_hash) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s:%d: hash mismatch (#h %08x %08x %08x %08x %08x, the data hash "
          "to %08x %08x %08x %08x %08x): the file is damaged or was edited",
          name, hash_line, (*stated_hash)[0], (*stated_hash)[1],
          (*stated_hash)[2], (*stated_hash)[3], (*stated_hash)[4],
          (*computed)[0], (*computed)[1], (*computed)[2], (*computed)[3],
          (*computed)[4]));
    }
    table.hash_verified_ = true;
  }
  return table;
}

bool LeapTable::CoversEndOfMonth(absl::Time t) const {
  return EndOfUtcMonth(t) <= expires_;
}

Leap LeapTable::LeapAtEndOfMonth(absl::Time t) const {
  const absl::Time end = EndOfUtcMonth(t);
  for (size_t i = 1; i < entries_.size(); ++i) {
    if (entries_[i].start != end) continue;
    return entries_[i].tai_utc > entries_[i - 1].tai_utc ? Leap::kInsertSecond
                                                         : Leap::kDeleteSecond;
  }
  return Leap::kNone;
}

Leap DecideLeap(const LeapVotes& votes, absl::Time now,
                const LeapTable* table) {
  if (votes.voters <= 0) return Leap::kNone;
  Leap announced = Leap::kNone;
  if (2 * votes.insert > votes.voters) {
    announced = Leap::kInsertSecond;
  } else if (2 * votes.remove > votes.voters) {
    announced = Leap::kDeleteSecond;
  } else {
    return Leap::kNone;  // no majority says the same
  }
  if (table != nullptr && table->CoversEndOfMonth(now)) {
    return table->LeapAtEndOfMonth(now) == announced ? announced : Leap::kNone;
  }
  const int month = absl::ToCivilMonth(now, absl::UTCTimeZone()).month();
  return month == 6 || month == 12 ? announced : Leap::kNone;
}

}  // namespace ntpfleet::ntp
