// ntpfleetctl's flag values and positional arguments, checked before anything
// is asked: a value that cannot be meant is a usage error (exit 2) whose
// message names the flag and shows a valid example, never Abseil's "ERROR:
// Illegal value" (exit 1) nor a failure only the controller or the agent
// notices. Duration and number flags are therefore declared as strings in
// ctl/main.cc and converted here. Pure functions.
//
//   absl::StatusOr<absl::Duration> skew =
//       ParseDurationFlag("--max-skew", "banana", "1ms",
//       DurationRange::kZeroOrMore);
//   // -> InvalidArgument "--max-skew: `banana` is not a duration: write a
//   //    number and a unit (ns, us, ms, s, m, h), e.g. --max-skew=1ms"
#ifndef NTPFLEET_CTL_FLAG_VALUES_H_
#define NTPFLEET_CTL_FLAG_VALUES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ntpfleet::ctl {

enum class DurationRange {
  kZeroOrMore,  // --max-skew (0: any skew fails), --interval
  kPositive,    // --since: a span back from now
};

// `text` as absl::ParseDuration reads it ("1ms", "1h30m", "-2s"), finite and
// within `range`. InvalidArgument naming `flag` and showing `flag`=`example`.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag,
                                                 absl::string_view text,
                                                 absl::string_view example,
                                                 DurationRange range);

// A whole number in `text`, at least `min`. InvalidArgument naming `flag`
// and showing `flag`=`example`.
absl::StatusOr<int> ParseCountFlag(absl::string_view flag,
                                   absl::string_view text,
                                   absl::string_view example, int min);

// --color: `auto` (colour when stdout is a terminal: `is_terminal`), `always`
// or `never`; whether to colour.
absl::StatusOr<bool> ParseColorFlag(absl::string_view text, bool is_terminal);

// resync's --label: KEY=VALUE with a non-empty KEY.
absl::Status CheckResyncLabel(absl::string_view label);

// sim-step's DURATION: a duration, finite, at most
// local_control::kMaxSimStepSeconds either way (what NTP can still correct).
absl::StatusOr<absl::Duration> ParseSimStep(absl::string_view text);

// The controller list of --controller (or of $NTPFLEET_CONTROLLER: `what`
// names where it came from), as ParseControllerList (ctl/fleet_client.h)
// checks it; the message also names the expected form:
// "... --controller takes HOST:PORT, [IPV6]:PORT, or several comma-separated
// (e.g. localhost:7123 or ctl-a:7123,[2001:db8::7]:7123)".
absl::Status CheckControllerFlag(absl::string_view value,
                                 absl::string_view what);

// The positional arguments a command takes. `rest` are those after the
// command. OK when their number fits; else InvalidArgument saying what the
// command expects ("sim-step takes one DURATION, e.g. `ntpfleetctl sim-step --
// -2s` ..."). Commands not listed (certs, import-*, the view commands, resync,
// unknown ones) are OK here: they check their own.
absl::Status CheckArgumentCount(absl::string_view command,
                                const std::vector<std::string>& rest);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_FLAG_VALUES_H_
