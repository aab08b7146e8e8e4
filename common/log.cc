#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
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

void SetLogProgram(absl::string_view name) { Program() = std::string(name); }
void SetLogLevel(LogLevel level) { min_level = static_cast<int>(level); }

void LogLine(LogLevel level, absl::string_view message) {
  if (static_cast<int>(level) < min_level) return;
  // The machine's real time: log lines are for humans and journald, not for
  // NTP.
  const std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " ", LevelName(level), " ", Program(), ": ", message, "\n");
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace ntpfleet
