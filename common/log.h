// Logging to stderr, one line per message with the UTC time and a level, for
// journald or a terminal: "2026-11-25T23:20:00.123Z INFO  agent: cannot resolve
// ntp1.aliyun.com, retrying". (Debian's Abseil has no absl/log.) Thread-safe:
// each line is written with one write(2).
//
//   Log(LogLevel::kWarning, "cannot resolve %s, retrying in %d s", name,
//   seconds);
#ifndef NTPFLEET_COMMON_LOG_H_
#define NTPFLEET_COMMON_LOG_H_

#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace ntpfleet {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// The program name shown on every line ("ntpfleet-agent"), and the lowest level
// printed.
void SetLogProgram(absl::string_view name);
void SetLogLevel(LogLevel level);

// Writes one line. Control characters in `message` (a NUL, ESC, a newline:
// anything below 0x20 except tab, DEL, the C1 controls) and bytes that are not
// valid UTF-8 are written as \x1b, so that a line is one line and nothing
// from a file or the network reaches the terminal as a control sequence.
void LogLine(LogLevel level, absl::string_view message);

// `message` escaped as LogLine writes it: "a\x1b[31mb" for "a", ESC, "[31mb".
std::string EscapeForLog(absl::string_view message);

// The length of the valid UTF-8 sequence that starts at text[i] (RFC 3629 §4:
// no overlong forms, surrogates or code points above U+10FFFF), or 0 when
// none does (a lone continuation byte, a truncated sequence, an ASCII byte).
// The configuration parser refuses what this refuses.
size_t Utf8Length(absl::string_view text, size_t i);

template <typename... Args>
void Log(LogLevel level, const absl::FormatSpec<Args...>& format,
         const Args&... args) {
  LogLine(level, absl::StrFormat(format, args...));
}

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_LOG_H_
