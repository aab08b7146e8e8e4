#include "ctl/flag_values.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/local_control.h"
#include "ctl/fleet_client.h"

namespace ntpfleet::ctl {

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag,
                                                 absl::string_view text,
                                                 absl::string_view example,
                                                 DurationRange range) {
  absl::Duration d;
  if (!absl::ParseDuration(std::string(text), &d)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": `", text,
        "` is not a duration: write a number and a unit (ns, us, ms, s, m, "
        "h), e.g. ",
        flag, "=", example));
  }
  if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": `", text, "` is not a finite duration, e.g. ",
                     flag, "=", example));
  }
  if (d < absl::ZeroDuration() ||
      (range == DurationRange::kPositive && d == absl::ZeroDuration())) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": `", text, "` is ",
        d < absl::ZeroDuration() ? "negative" : "zero", ": it must be ",
        range == DurationRange::kPositive ? "above 0" : "0 or more", ", e.g. ",
        flag, "=", example));
  }
  return d;
}

absl::StatusOr<int> ParseCountFlag(absl::string_view flag,
                                   absl::string_view text,
                                   absl::string_view example, int min) {
  int n = 0;
  if (!absl::SimpleAtoi(text, &n)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": `", text, "` is not a whole number, e.g. ", flag,
                     "=", example));
  }
  if (n < min) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": must be at least ",
                                                   min, ", not ", n, ", e.g. ",
                                                   flag, "=", example));
  }
  return n;
}

absl::StatusOr<bool> ParseColorFlag(absl::string_view text, bool is_terminal) {
  if (text == "auto") return is_terminal;
  if (text == "always") return true;
  if (text == "never") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("--color: `", text,
                   "` is not `auto` (colour only on a terminal), `always` or "
                   "`never`, e.g. --color=never"));
}

absl::Status CheckResyncLabel(absl::string_view label) {
  const size_t eq = label.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "resync: --label `", label,
        "` is not KEY=VALUE: it selects the nodes with that label, e.g. "
        "--label rack=a1"));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> ParseSimStep(absl::string_view text) {
  // The limit, in hours as a user would write it: 596523h (68 years).
  const int64_t limit_h = local_control::kMaxSimStepSeconds / 3600;
  const std::string range = absl::StrFormat(
      "a simulated clock is moved by at most %dh (2^31 s, 68 years) either "
      "way, half an NTP era: NTP cannot correct a clock further off (RFC 5905 "
      "section 6)",
      limit_h);
  absl::Duration d;
  if (!absl::ParseDuration(std::string(text), &d)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sim-step: `", text,
        "` is not a duration: write a number and a unit (ns, us, ms, s, m, h), "
        "e.g. `ntpfleetctl sim-step -- -2s` or `sim-step -- 800ms`"));
  }
  if (absl::AbsDuration(d) > absl::Seconds(local_control::kMaxSimStepSeconds)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim-step: `", text, "` is out of range: ", range));
  }
  return d;
}

absl::Status CheckControllerFlag(absl::string_view value,
                                 absl::string_view what) {
  absl::StatusOr<std::vector<std::string>> list =
      ParseControllerList(value, what);
  if (list.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      list.status().message(), "\n", what,
      " takes HOST:PORT, [IPV6]:PORT, or several comma-separated (e.g. "
      "localhost:7123 or ctl-a:7123,[2001:db8::7]:7123)"));
}

absl::Status CheckArgumentCount(absl::string_view command,
                                const std::vector<std::string>& rest) {
  struct Arity {
    const char* command;
    size_t min;
    size_t max;
    const char* usage;  // what it takes
  };
  static constexpr Arity kArities[] = {
      {"peers", 0, 1, "ntpfleetctl peers [NODE]"},
      {"history", 0, 1, "ntpfleetctl history [NODE] [--since 1h]"},
      {"audit", 0, 0, "ntpfleetctl audit [--since 24h]"},
      {"crosscheck", 0, 0, "ntpfleetctl crosscheck [--edges]"},
      {"forget", 1, 1, "ntpfleetctl forget NODE"},
      {"now", 0, 0, "ntpfleetctl now [--shm PATH]"},
      {"doctor", 0, 0, "ntpfleetctl doctor [--config FILE]"},
      {"sync", 0, 0, "ntpfleetctl sync [--step]"},
      {"sim-step", 1, 1,
       "ntpfleetctl sim-step -- DURATION, e.g. `ntpfleetctl sim-step -- -2s` "
       "(the `--` lets a negative step through)"},
  };
  for (const Arity& a : kArities) {
    if (command != a.command) continue;
    if (rest.size() >= a.min && rest.size() <= a.max) return absl::OkStatus();
    if (rest.size() < a.min) {
      return absl::InvalidArgumentError(
          absl::StrCat(command, " needs an argument: ", a.usage));
    }
    std::string got;
    for (const std::string& r : rest) {
      absl::StrAppend(&got, got.empty() ? "`" : " `", r, "`");
    }
    const char* expects = a.max == 0   ? "no arguments"
                          : a.min == 0 ? "at most one argument"
                                       : "one argument";
    return absl::InvalidArgumentError(absl::StrCat(
        command, " takes ", expects, ", not ", got, ": ", a.usage));
  }
  return absl::OkStatus();
}

}  // namespace ntpfleet::ctl
