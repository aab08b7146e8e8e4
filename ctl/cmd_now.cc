#include "ctl/cmd_now.h"

#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "clockbound/segment.h"

namespace ntpfleet::ctl {
namespace {

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", t, absl::UTCTimeZone());
}

// "1.234 ms", "12 ns", "unknown" for the placeholder of an unknown bound.
std::string Human(absl::Duration d) {
  if (d >= absl::Hours(24 * 365)) return "unknown";
  const double s = absl::ToDoubleSeconds(d);
  if (std::abs(s) >= 1) return absl::StrFormat("%.3f s", s);
  if (std::abs(s) >= 1e-3) return absl::StrFormat("%.3f ms", s * 1e3);
  if (std::abs(s) >= 1e-6) return absl::StrFormat("%.3f us", s * 1e6);
  return absl::StrFormat("%d ns", absl::ToInt64Nanoseconds(d));
}

// `text` as a JSON string's contents (RFC 8259 §7): quote, backslash and
// control characters escaped; other bytes as they are (a path is bytes).
std::string JsonEscape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04x", u);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string RenderNow(const clockbound::BoundedTime& t, const std::string& path,
                      bool json) {
  const bool known = t.bound < absl::Hours(24 * 365);
  if (json) {
    return absl::StrFormat(
        "{\"path\":\"%s\",\"status\":\"%s\",\"written_status\":\"%s\","
        "\"earliest\":\"%s\",\"latest\":\"%s\",\"clock\":\"%s\","
        "\"earliest_unix_ns\":%d,\"latest_unix_ns\":%d,\"bound_ns\":%d,"
        "\"bound_known\":%s,\"max_drift_ppb\":%d,\"as_of_age_ns\":%d,"
        "\"void_in_ns\":%d,\"simulated\":%s,\"generation\":%d}\n",
        JsonEscape(path), clockbound::ClockStatusName(t.status),
        clockbound::ClockStatusName(t.written_status), Rfc3339(t.earliest),
        Rfc3339(t.latest), Rfc3339(t.clock), absl::ToUnixNanos(t.earliest),
        absl::ToUnixNanos(t.latest), absl::ToInt64Nanoseconds(t.bound),
        known ? "true" : "false", t.max_drift_ppb,
        absl::ToInt64Nanoseconds(t.as_of_age),
        absl::ToInt64Nanoseconds(t.void_in), t.simulated ? "true" : "false",
        t.generation);
  }
  std::string out;
  absl::StrAppendFormat(
      &out, "status    %s%s\n", clockbound::ClockStatusName(t.status),
      t.status != t.written_status
          ? absl::StrFormat(" (written %s)",
                            clockbound::ClockStatusName(t.written_status))
          : "");
  if (known) {
    absl::StrAppendFormat(&out, "earliest  %s\n", Rfc3339(t.earliest));
    absl::StrAppendFormat(&out, "latest    %s\n", Rfc3339(t.latest));
  } else {
    absl::StrAppendFormat(&out, "earliest  unknown\nlatest    unknown\n");
  }
  absl::StrAppendFormat(&out, "bound     %s (written %s, + %d ppb since)\n",
                        Human(t.bound), Human(t.written_bound),
                        t.max_drift_ppb);
  absl::StrAppendFormat(&out, "as of     %s ago, void in %s\n",
                        Human(t.as_of_age), Human(t.void_in));
  absl::StrAppendFormat(&out, "segment   %s%s\n", path,
                        t.simulated ? " (a simulated clock, not this "
                                      "machine's CLOCK_REALTIME)"
                                    : "");
  return out;
}

int RunNow(const std::string& path, bool json) {
  absl::StatusOr<clockbound::Reader> reader = clockbound::Reader::Open(path);
  if (!reader.ok()) {
    std::fprintf(stderr,
                 "ntpfleetctl now: %s\n  is ntpfleet-agent running? It writes "
                 "this segment (`clockbound_shm` in its configuration, "
                 "docs/CLOCKBOUND.md); another path: --shm PATH\n",
                 std::string(reader.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<clockbound::BoundedTime> now = reader->Now();
  if (!now.ok()) {
    std::fprintf(stderr,
                 "ntpfleetctl now: %s\n  is ntpfleet-agent running? (see "
                 "`clockbound_shm`, docs/CLOCKBOUND.md)\n",
                 std::string(now.status().message()).c_str());
    return 1;
  }
  std::fputs(RenderNow(*now, path, json).c_str(), stdout);
  using clockbound::ClockStatus;
  if (now->status == ClockStatus::kSynchronized ||
      now->status == ClockStatus::kFreeRunning) {
    return 0;
  }
  if (now->void_in <= absl::ZeroDuration() &&
      now->written_status != ClockStatus::kUnknown) {
    std::fprintf(stderr,
                 "ntpfleetctl now: the bound in %s is void: nothing updated it "
                 "for %s (is ntpfleet-agent running? `systemctl status "
                 "ntpfleet-agent`)\n",
                 path.c_str(), Human(now->as_of_age).c_str());
  } else {
    std::fprintf(stderr,
                 "ntpfleetctl now: the clock's status is %s: no bound to "
                 "trust (the agent is not synchronised, or stopped; "
                 "`ntpfleetctl peers` says why)\n",
                 clockbound::ClockStatusName(now->status));
  }
  return 1;
}

}  // namespace ntpfleet::ctl
