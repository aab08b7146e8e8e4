// AgentConfig's helpers and FormatEffectiveConfig(); the parser is in
// parser.cc.
#include "common/config/config.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ntpfleet::config {
namespace {

// Bytes (network order) to text: "192.168.0.0", "::1".
std::string FormatIp(AddressFamily family, const std::array<uint8_t, 16>& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  const int af = family == AddressFamily::kIpv6 ? AF_INET6 : AF_INET;
  if (inet_ntop(af, ip.data(), buf, sizeof(buf)) == nullptr) return "?";
  return buf;
}

bool AllOnes(const std::array<uint8_t, 16>& mask, AddressFamily family) {
  const size_t n = family == AddressFamily::kIpv6 ? 16 : 4;
  for (size_t i = 0; i < n; ++i) {
    if (mask[i] != 0xff) return false;
  }
  return true;
}

// A token as the parser reads it back: quoted when it is empty or holds
// whitespace or '#'. (Such a value can only have come from a quoted token, so
// it holds no '"'.)
std::string Quote(absl::string_view s) {
  bool plain = !s.empty();
  for (char c : s) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '#') {
      plain = false;
    }
  }
  if (plain) return std::string(s);
  return absl::StrCat("\"", s, "\"");
}

// Seconds as the parser reads them: "0.128", "600", exact to the nanosecond.
std::string FormatSeconds(absl::Duration d) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  const int64_t whole = ns / 1000000000;
  int64_t frac = ns % 1000000000;
  if (frac == 0) return absl::StrCat(whole);
  std::string digits = absl::StrFormat("%09d", frac);
  while (!digits.empty() && digits.back() == '0') digits.pop_back();
  return absl::StrCat(whole, ".", digits);
}

std::string FormatServer(const ServerEntry& s) {
  const ServerEntry defaults;
  std::string line = s.is_pool ? "pool" : "server";
  if (s.family == AddressFamily::kIpv4) absl::StrAppend(&line, " -4");
  if (s.family == AddressFamily::kIpv6) absl::StrAppend(&line, " -6");
  if (s.port == defaults.port) {
    absl::StrAppend(&line, " ", s.host);
  } else if (s.host.find(':') != std::string::npos) {
    absl::StrAppend(&line, " [", s.host, "]:", s.port);
  } else {
    absl::StrAppend(&line, " ", s.host, ":", s.port);
  }
  if (s.iburst) absl::StrAppend(&line, " iburst");
  if (s.burst) absl::StrAppend(&line, " burst");
  if (s.prefer) absl::StrAppend(&line, " prefer");
  if (s.minpoll != defaults.minpoll) {
    absl::StrAppend(&line, " minpoll ", s.minpoll);
  }
  if (s.maxpoll != defaults.maxpoll) {
    absl::StrAppend(&line, " maxpoll ", s.maxpoll);
  }
  if (s.key_id.has_value()) absl::StrAppend(&line, " key ", *s.key_id);
  if (s.version != defaults.version) {
    absl::StrAppend(&line, " version ", s.version);
  }
  return line;
}

std::string FormatRestrict(const RestrictRule& r) {
  std::string line = "restrict";
  if (r.is_default && r.family == AddressFamily::kIpv4) {
    absl::StrAppend(&line, " -4");
  }
  if (r.is_default && r.family == AddressFamily::kIpv6) {
    absl::StrAppend(&line, " -6");
  }
  absl::StrAppend(&line, " ", r.AddressString());
  if (!r.is_default && !AllOnes(r.mask, r.family)) {
    absl::StrAppend(&line, " mask ", r.MaskString());
  }
  for (int i = 0; i < kRestrictFlagCount; ++i) {
    if (r.flags.test(i)) {
      absl::StrAppend(&line, " ",
                      RestrictFlagName(static_cast<RestrictFlag>(i)));
    }
  }
  return line;
}

// "1 2 (4 ... 8)": runs of three or more as ntpd's range syntax.
std::string FormatKeyIds(const std::vector<uint32_t>& ids) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (j - i >= 2) {
      parts.push_back(absl::StrCat("(", ids[i], " ... ", ids[j], ")"));
    } else {
      for (size_t k = i; k <= j; ++k) parts.push_back(absl::StrCat(ids[k]));
    }
    i = j + 1;
  }
  return absl::StrJoin(parts, " ");
}

// A comment line must stay one line.
std::string Comment(absl::string_view text) {
  return absl::StrCat("# ", absl::StrReplaceAll(text, {{"\n", " "}}), "\n");
}

}  // namespace

std::string Location::ToString() const { return absl::StrCat(file, ":", line); }

const char* RestrictFlagName(RestrictFlag flag) {
  switch (flag) {
    case RestrictFlag::kIgnore:
      return "ignore";
    case RestrictFlag::kNoModify:
      return "nomodify";
    case RestrictFlag::kNoQuery:
      return "noquery";
    case RestrictFlag::kNoTrap:
      return "notrap";
    case RestrictFlag::kNoPeer:
      return "nopeer";
    case RestrictFlag::kNoTrust:
      return "notrust";
    case RestrictFlag::kKod:
      return "kod";
    case RestrictFlag::kLimited:
      return "limited";
    case RestrictFlag::kNoServe:
      return "noserve";
    case RestrictFlag::kLowPrioTrap:
      return "lowpriotrap";
    case RestrictFlag::kNoMruList:
      return "nomrulist";
    case RestrictFlag::kVersion:
      return "version";
    case RestrictFlag::kNtpPort:
      return "ntpport";
  }
  return "?";
}

std::string RestrictRule::AddressString() const {
  if (is_default) return "default";
  return FormatIp(family, address);
}

std::string RestrictRule::MaskString() const {
  if (is_default) return "";
  return FormatIp(family, mask);
}

bool AgentConfig::IsTrustedKey(uint32_t id) const {
  for (uint32_t k : trusted_keys) {
    if (k == id) return true;
  }
  return false;
}

std::string FormatSharedConfig(const AgentConfig& config) {
  AgentConfig shared = config;
  shared.node_name.clear();
  shared.labels.clear();
  return FormatEffectiveConfig(shared);
}

std::string FormatEffectiveConfig(const AgentConfig& c) {
  std::string out = "# ntpfleet effective configuration\n";
  for (const std::string& file : c.included_files) {
    out += Comment(absl::StrCat("included: ", file));
  }

  for (const ServerEntry& s : c.servers)
    absl::StrAppend(&out, FormatServer(s), "\n");
  if (c.local_clock.has_value()) {
    absl::StrAppend(&out, "server ", c.local_clock->host, "\n", "fudge ",
                    c.local_clock->host, " stratum ", c.local_clock->stratum,
                    "\n");
  }

  if (!c.driftfile.empty()) {
    absl::StrAppend(&out, "driftfile ", Quote(c.driftfile), "\n");
  }
  if (!c.leapfile.empty()) {
    absl::StrAppend(&out, "leapfile ", Quote(c.leapfile), "\n");
  }
  if (c.clockbound_shm) {
    absl::StrAppend(
        &out, "clockbound_shm ",
        c.clockbound_shm->empty() ? "none" : Quote(*c.clockbound_shm), "\n");
  }
  if (c.leap_sec_mode == LeapSecMode::kSlew) out += "leapsecmode slew\n";

  for (const RestrictRule& r : c.restrictions) {
    absl::StrAppend(&out, FormatRestrict(r), "\n");
  }

  if (!c.keys_file.empty()) {
    absl::StrAppend(&out, "keys ", Quote(c.keys_file), "\n");
  }
  if (!c.trusted_keys.empty()) {
    absl::StrAppend(&out, "trustedkey ", FormatKeyIds(c.trusted_keys), "\n");
  }
  if (c.request_key.has_value()) {
    absl::StrAppend(&out, "requestkey ", *c.request_key, "\n");
  }
  if (c.control_key.has_value()) {
    absl::StrAppend(&out, "controlkey ", *c.control_key, "\n");
  }

  std::vector<std::string> enabled, disabled;
  const std::pair<const char*, bool> flags[] = {
      {"auth", c.flags.auth},       {"kernel", c.flags.kernel},
      {"monitor", c.flags.monitor}, {"ntp", c.flags.ntp},
      {"stats", c.flags.stats},
  };
  for (const auto& [name, on] : flags)
    (on ? enabled : disabled).push_back(name);
  if (!enabled.empty()) {
    absl::StrAppend(&out, "enable ", absl::StrJoin(enabled, " "), "\n");
  }
  if (!disabled.empty()) {
    absl::StrAppend(&out, "disable ", absl::StrJoin(disabled, " "), "\n");
  }

  if (!c.statsdir.empty()) {
    absl::StrAppend(&out, "statsdir ", Quote(c.statsdir), "\n");
  }
  if (!c.statistics.empty()) {
    absl::StrAppend(&out, "statistics ", absl::StrJoin(c.statistics, " "),
                    "\n");
  }

  if (c.panic_threshold.has_value() || c.step_threshold.has_value()) {
    out += "tinker";
    if (c.panic_threshold.has_value()) {
      absl::StrAppend(&out, " panic ", FormatSeconds(*c.panic_threshold));
    }
    if (c.step_threshold.has_value()) {
      absl::StrAppend(&out, " step ", FormatSeconds(*c.step_threshold));
    }
    out += "\n";
  }
  if (c.orphan_stratum.has_value() || c.min_sane.has_value() ||
      c.min_clock.has_value() || c.max_distance.has_value()) {
    out += "tos";
    if (c.orphan_stratum.has_value()) {
      absl::StrAppend(&out, " orphan ", *c.orphan_stratum);
    }
    if (c.min_sane.has_value()) absl::StrAppend(&out, " minsane ", *c.min_sane);
    if (c.min_clock.has_value()) {
      absl::StrAppend(&out, " minclock ", *c.min_clock);
    }
    if (c.max_distance.has_value()) {
      absl::StrAppend(&out, " maxdist ", FormatSeconds(*c.max_distance));
    }
    out += "\n";
  }

  // ntpfleet's own settings, always with their effective values.
  absl::StrAppend(&out, "port ", c.port, "\n");
  absl::StrAppend(&out, "server_threads ", c.server_threads, "\n");
  absl::StrAppend(&out, "resync_max_step ", FormatSeconds(c.resync_max_step),
                  "\n");
  if (c.rtcsync) out += "rtcsync\n";
  for (const std::string& controller : c.controllers) {
    absl::StrAppend(&out, "controller ", Quote(controller), "\n");
  }
  if (!c.node_name.empty()) {
    absl::StrAppend(&out, "node_name ", Quote(c.node_name), "\n");
  }
  absl::StrAppend(&out, "report_interval ",
                  absl::FormatDuration(c.report_interval), "\n");
  for (const auto& [key, value] : c.labels) {
    absl::StrAppend(&out, "label ", Quote(absl::StrCat(key, "=", value)), "\n");
  }
  if (!c.tls_ca.empty())
    absl::StrAppend(&out, "tls_ca ", Quote(c.tls_ca), "\n");
  if (!c.tls_cert.empty()) {
    absl::StrAppend(&out, "tls_cert ", Quote(c.tls_cert), "\n");
  }
  if (!c.tls_key.empty()) {
    absl::StrAppend(&out, "tls_key ", Quote(c.tls_key), "\n");
  }

  for (const std::string& w : c.warnings) {
    out += Comment(absl::StrCat("warning: ", w));
  }
  return out;
}

}  // namespace ntpfleet::config
