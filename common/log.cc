#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ntpfleet {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};
std::string& Program() {
  static std::string* program = new std::string("ntpfleet");
  return *program;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO ";
    case LogLevel::kWarning:
      return "WARN ";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

}  // namespace

size_t Utf8Length(absl::string_view text, size_t i) {
  const auto at = [&](size_t k) -> int {
    return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : -1;
  };
  const int b = at(0);
  size_t length = 0;
  int lo = 0x80;
  int hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) {
    length = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    length = 3;
    if (b == 0xe0) lo = 0xa0;
    if (b == 0xed) hi = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    length = 4;
    if (b == 0xf0) lo = 0x90;
    if (b == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (at(1) < lo || at(1) > hi) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (at(k) < 0x80 || at(k) > 0xbf) return 0;
  }
  return length;
}

std::string EscapeForLog(absl::string_view message) {
  std::string out;
  out.reserve(message.size());
  for (size_t i = 0; i < message.size();) {
    const unsigned char c = static_cast<unsigned char>(message[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        absl::StrAppendFormat(&out, "\\x%02x", c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    const size_t length = Utf8Length(message, i);
    // Invalid UTF-8, and the C1 controls (U+0080..U+009F: CSI is U+009B),
    // byte by byte.
    const bool c1 = length == 2 && c == 0xc2 &&
                    static_cast<unsigned char>(message[i + 1]) < 0xa0;
    if (length == 0 || c1) {
      const size_t n = length == 0 ? 1 : length;
      for (size_t k = 0; k < n; ++k) {
        absl::StrAppendFormat(&out, "\\x%02x",
                              static_cast<unsigned char>(message[i + k]));
      }
      i += n;
      continue;
    }
    out.append(message.data() + i, length);
    i += length;
  }
  return out;
}

void SetLogProgram(absl::string_view name) { Program() = std::string(name); }
void SetLogLevel(LogLevel level) { min_level = static_cast<int>(level); }

void LogLine(LogLevel level, absl::string_view message) {
  if (static_cast<int>(level) < min_level) return;
  // The machine's real time: log lines are for humans and journald, not for
  // NTP.
  const std::string line = absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                       absl::UTCTimeZone()),
      " ", LevelName(level), " ", Program(), ": ", EscapeForLog(message), "\n");
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace ntpfleet
