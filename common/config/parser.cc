// ParseConfig(): ntp.conf lines to an AgentConfig. Pure: `includefile`
// contents come from the caller's IncludeLoader.
//
// The grammar follows ntpd 4.2.8's ntp_parser.y and NTPsec's, one directive
// per line. What the agent implements is recorded; real ntpd directives and
// options it does not implement are warnings; misspelt options and flags are
// errors (a misspelt `restrict` flag would otherwise open the server up).
#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/config/config.h"
#include "common/hostport.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/nearest_word.h"

namespace ntpfleet::config {
namespace {

// ---------------------------------------------------------------- lexing

bool IsSpace(char c) {
  return absl::ascii_isspace(static_cast<unsigned char>(c));
}

// Splits one line (without its '\n') into tokens: whitespace separates, '#'
// starts a comment, a token that starts with '"' runs to the next '"'.
// Returns an error message, or an empty string.
std::string Tokenize(absl::string_view line, std::vector<std::string>* out) {
  size_t i = 0;
  while (i < line.size()) {
    const char c = line[i];
    if (IsSpace(c)) {
      ++i;
    } else if (c == '#') {
      break;
    } else if (c == '"') {
      const size_t end = line.find('"', i + 1);
      if (end == absl::string_view::npos) return "unterminated quoted string";
      out->emplace_back(line.substr(i + 1, end - i - 1));
      i = end + 1;
    } else {
      size_t end = i;
      while (end < line.size() && !IsSpace(line[end]) && line[end] != '#') {
        ++end;
      }
      out->emplace_back(line.substr(i, end - i));
      i = end;
    }
  }
  return "";
}

// What makes `text` not a text file, or nullopt: the first NUL byte, byte that
// is not part of valid UTF-8 (RFC 3629 §4: no overlong forms, surrogates or
// code points above U+10FFFF), or control character other than tab, CR, LF, VT
// and FF (C0, DEL and the C1 controls U+0080..U+009F: they would reach the log
// and the terminal). `offset` is its byte offset.
struct BadByte {
  size_t offset = 0;
  std::string what;  // "binary data (a NUL byte)", ...
};
std::optional<BadByte> FindNonText(absl::string_view text) {
  const auto byte = [&](size_t i) -> int {
    return i < text.size() ? static_cast<unsigned char>(text[i]) : -1;
  };
  for (size_t i = 0; i < text.size();) {
    const int b = byte(i);
    if (b == 0) return BadByte{i, "binary data (a NUL byte)"};
    if (b < 0x80) {
      if ((b < 0x20 && b != '\t' && b != '\n' && b != '\r' && b != '\v' &&
           b != '\f') ||
          b == 0x7f) {
        return BadByte{i, absl::StrFormat("a control character (\\x%02x)", b)};
      }
      ++i;
      continue;
    }
    const size_t length = Utf8Length(text, i);
    if (length == 0) {
      return BadByte{i, absl::StrFormat("invalid UTF-8 (byte \\x%02x)", b)};
    }
    if (b == 0xc2 && byte(i + 1) <= 0x9f) {
      return BadByte{
          i, absl::StrFormat("a control character (U+%04X)", byte(i + 1))};
    }
    i += length;
  }
  return std::nullopt;
}

// The tokens of one directive, consumed front to back.
class Args {
 public:
  explicit Args(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {}
  const std::string& directive() const { return tokens_[0]; }
  bool Done() const { return pos_ >= tokens_.size(); }
  const std::string& Peek() const { return tokens_[pos_]; }
  const std::string& Next() { return tokens_[pos_++]; }
  // All the tokens not yet consumed.
  std::vector<std::string> Rest() {
    std::vector<std::string> rest(tokens_.begin() + pos_, tokens_.end());
    pos_ = tokens_.size();
    return rest;
  }

 private:
  std::vector<std::string> tokens_;
  size_t pos_ = 1;  // past the directive
};

// ---------------------------------------------------------------- helpers

// " (did you mean 'nomodify'?)" when `word` is one or two edits from a
// candidate, else "".
std::string Hint(absl::string_view word,
                 const std::vector<absl::string_view>& candidates) {
  const std::string best = NearestWord(word, candidates);
  if (best.empty()) return "";
  return absl::StrCat(" (did you mean '", best, "'?)");
}

struct IpAddress {
  AddressFamily family = AddressFamily::kAny;
  std::array<uint8_t, 16> bytes{};
};

// A numeric IPv4 or IPv6 address ("192.168.0.1", "::1"); nullopt otherwise.
std::optional<IpAddress> ParseIp(absl::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string s(text);
  if (s.find('\0') != std::string::npos) return std::nullopt;
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
    ip.family = AddressFamily::kIpv4;
    return ip;
  }
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
    ip.family = AddressFamily::kIpv6;
    return ip;
  }
  return std::nullopt;
}

size_t AddressBytes(AddressFamily family) {
  return family == AddressFamily::kIpv6 ? 16 : 4;
}

std::array<uint8_t, 16> PrefixMask(AddressFamily family, int bits) {
  std::array<uint8_t, 16> mask{};
  for (size_t i = 0; i < AddressBytes(family); ++i) {
    const int left = bits - static_cast<int>(i) * 8;
    mask[i] = left >= 8   ? 0xff
              : left <= 0 ? 0
                          : static_cast<uint8_t>(0xff << (8 - left));
  }
  return mask;
}

// `server 127.127.T.U`: ntpd's reference clock pseudo-address; T is the
// driver type. nullopt for any other address.
std::optional<int> RefclockType(absl::string_view host) {
  const std::optional<IpAddress> ip = ParseIp(host);
  if (!ip.has_value() || ip->family != AddressFamily::kIpv4) {
    return std::nullopt;
  }
  if (ip->bytes[0] != 127 || ip->bytes[1] != 127) return std::nullopt;
  return ip->bytes[2];
}

bool IsLoopback(absl::string_view host) {
  const std::optional<IpAddress> ip = ParseIp(host);
  if (!ip.has_value()) return false;
  if (ip->family == AddressFamily::kIpv4) return ip->bytes[0] == 127;
  static constexpr std::array<uint8_t, 16> kV6Loopback = {
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return ip->bytes == kV6Loopback;
}

// The same address written differently ("::1", "0::1") compares equal.
std::string CanonicalHost(absl::string_view host) {
  const std::optional<IpAddress> ip = ParseIp(host);
  if (!ip.has_value()) return std::string(host);
  return absl::StrCat(
      static_cast<int>(ip->family), ":",
      absl::string_view(reinterpret_cast<const char*>(ip->bytes.data()),
                        ip->bytes.size()));
}

// The directory part of `path` ("" for a bare name).
std::string DirName(absl::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return "";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

// `path` with "." and "x/.." collapsed, lexically (for include-cycle checks
// and readable diagnostics).
std::string CleanPath(absl::string_view path) {
  const bool absolute = absl::StartsWith(path, "/");
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == ".." && !parts.empty() && parts.back() != "..") {
      parts.pop_back();
    } else if (part == ".." && absolute) {
      continue;  // "/.." is "/"
    } else {
      parts.push_back(part);
    }
  }
  std::string clean =
      absl::StrCat(absolute ? "/" : "", absl::StrJoin(parts, "/"));
  return clean.empty() ? "." : clean;
}

std::string ResolveInclude(absl::string_view including_file,
                           absl::string_view path) {
  if (absl::StartsWith(path, "/")) return CleanPath(path);
  const std::string dir = DirName(including_file);
  if (dir.empty()) return CleanPath(path);
  return CleanPath(absl::StrCat(dir, "/", path));
}

// ---------------------------------------------------------------- names

// Directives of ntpd 4.2.8 and NTPsec that the agent does not implement: a
// warning, without a "did you mean" hint.
constexpr absl::string_view kUnsupportedDirectives[] = {
    "authenticate",
    "automax",
    "broadcast",
    "broadcastclient",
    "broadcastdelay",
    "calldelay",
    "crypto",
    "device",
    "discard",
    "dscp",
    "filegen",
    "ident",
    "interface",
    "keysdir",
    "leapsmearinterval",
    "logconfig",
    "manycastclient",
    "manycastserver",
    "mdnstries",
    "mru",
    "multicastclient",
    "nic",
    "nonvolatile",
    "phone",
    "pollskewlist",
    "qos",
    "refclock",
    "reset",
    "revoke",
    "rlimit",
    "saveconfigdir",
    "setvar",
    "trap",
    "ttl",
    "unpeer",
    "nts",
    "serverresponse",
    "ntpsigndsocket",
};

constexpr absl::string_view kStatisticsNames[] = {
    "clockstats", "cryptostats", "loopstats",   "peerstats", "protostats",
    "rawstats",   "sysstats",    "timingstats", "usestats",
};

// ntpd `restrict` flags the agent does not implement (warned, not errors).
constexpr absl::string_view kUnsupportedRestrictFlags[] = {
    "flake",
    "mssntp",
    "noepeer",
};

// ntpd server options the agent does not implement; the second member says
// whether the option takes a value.
constexpr std::pair<absl::string_view, bool> kUnsupportedServerOptions[] = {
    {"autokey", false}, {"noselect", false}, {"preempt", false},
    {"true", false},    {"xleave", false},   {"nts", false},
    {"noval", false},   {"mode", true},      {"ttl", true},
    {"bias", true},     {"ident", true},     {"subtype", true},
    {"ask", true},      {"require", true},
};

constexpr absl::string_view kServerOptions[] = {
    "iburst", "burst", "prefer", "minpoll", "maxpoll", "key", "version",
};

// `tinker` options other than panic and step (each takes a number).
constexpr absl::string_view kUnsupportedTinker[] = {
    "allan",    "dispersion", "freq",    "huffpuff",
    "stepback", "stepfwd",    "stepout", "tick",
};

// `tos` options other than orphan, minsane, minclock and maxdist.
constexpr absl::string_view kUnsupportedTos[] = {
    "beacon",  "ceiling",    "cohort",      "floor",   "maxclock",
    "mindist", "orphanwait", "bcpollbstep", "maxdisp",
};

// `enable`/`disable` flags the agent does not implement.
constexpr absl::string_view kUnsupportedSystemFlags[] = {
    "bclient",
    "calibrate",
    "mode7",
    "peer_clear_digest_early",
    "unpeer_crypto_early",
    "unpeer_crypto_nak_early",
    "unpeer_digest_early",
};

// `fudge` options other than stratum (each takes a value).
constexpr absl::string_view kUnsupportedFudge[] = {
    "refid", "time1", "time2", "flag1", "flag2", "flag3", "flag4", "minjitter",
};

template <typename Container>
bool Contains(const Container& names, absl::string_view name) {
  for (absl::string_view n : names) {
    if (n == name) return true;
  }
  return false;
}

// ---------------------------------------------------------------- parser

class Parser {
 public:
  explicit Parser(const IncludeLoader& loader) : loader_(loader) {}

  absl::Status ParseFile(absl::string_view text, const std::string& filename,
                         int depth);
  absl::Status Finish();
  AgentConfig TakeConfig() { return std::move(config_); }

 private:
  struct FudgeLine {
    std::string host;
    std::optional<int> stratum;
    Location location;
    bool used = false;
  };
  // Which of minpoll/maxpoll a server line set explicitly.
  struct PollSet {
    bool minpoll = false;
    bool maxpoll = false;
  };
  using Handler = absl::Status (Parser::*)(Args&);
  struct DirectiveInfo {
    absl::string_view name;
    Handler handler;
  };
  static const std::vector<DirectiveInfo>& Directives();

  // Messages are escaped (EscapeForLog: a control character in a file name
  // is written \x1b): they reach the log, stderr and --check-config's output.
  absl::Status Error(absl::string_view message) const {
    return absl::InvalidArgumentError(
        EscapeForLog(absl::StrCat(location_.ToString(), ": ", message)));
  }
  void Warn(absl::string_view message) {
    if (config_.warnings.size() >= static_cast<size_t>(kMaxWarnings)) {
      ++unlisted_warnings_;
      return;
    }
    config_.warnings.push_back(
        EscapeForLog(absl::StrCat(location_.ToString(), ": ", message)));
  }

  absl::Status Directive(Args& args);

  // Argument helpers; `what` names the value in messages.
  absl::Status NeedValue(Args& args, absl::string_view what,
                         std::string* value);
  absl::Status ExpectEnd(Args& args);
  absl::Status Int(absl::string_view what, absl::string_view token, int64_t lo,
                   int64_t hi, int64_t* out);
  absl::Status IntArg(Args& args, absl::string_view what, int64_t lo,
                      int64_t hi, int64_t* out);
  absl::Status Seconds(absl::string_view what, absl::string_view token,
                       absl::Duration* out);
  absl::Status KeyId(absl::string_view what, absl::string_view token,
                     uint32_t* out);
  absl::Status PathDirective(Args& args, std::string* path);

  // Directives.
  absl::Status Server(Args& args);
  absl::Status Fudge(Args& args);
  absl::Status Restrict(Args& args);
  absl::Status Unrestrict(Args& args);
  absl::Status ParseRestrict(Args& args, RestrictRule* rule,
                             std::optional<std::string>* host_name,
                             bool* is_source);
  absl::Status Driftfile(Args& args) {
    config_.driftfile_location = location_;
    return PathDirective(args, &config_.driftfile);
  }
  absl::Status Leapfile(Args& args) {
    config_.leapfile_location = location_;
    return PathDirective(args, &config_.leapfile);
  }
  absl::Status Leapsecmode(Args& args);
  absl::Status ClockboundShm(Args& args) {
    std::string path;
    if (absl::Status s = PathDirective(args, &path); !s.ok()) return s;
    config_.clockbound_shm = path == "none" ? "" : path;
    return absl::OkStatus();
  }
  absl::Status Keys(Args& args) {
    config_.keys_location = location_;
    return PathDirective(args, &config_.keys_file);
  }
  absl::Status Statsdir(Args& args) {
    return PathDirective(args, &config_.statsdir);
  }
  absl::Status TlsCa(Args& args) { return TlsFile(args, &config_.tls_ca); }
  absl::Status TlsCert(Args& args) { return TlsFile(args, &config_.tls_cert); }
  absl::Status TlsKey(Args& args) { return TlsFile(args, &config_.tls_key); }
  absl::Status TlsFile(Args& args, std::string* path);
  // A partial tls_cert/tls_key/tls_ca set: an error at the first of them.
  absl::Status CheckTls();
  absl::Status Trustedkey(Args& args);
  absl::Status Requestkey(Args& args);
  absl::Status SingleKeyId(Args& args, std::optional<uint32_t>* out);
  absl::Status Controlkey(Args& args);
  absl::Status EnableDisable(Args& args);
  absl::Status Statistics(Args& args);
  absl::Status Tinker(Args& args);
  absl::Status Tos(Args& args);
  absl::Status Includefile(Args& args);
  absl::Status Logfile(Args& args);
  absl::Status Pidfile(Args& args);
  absl::Status Controller(Args& args);
  absl::Status NodeName(Args& args);
  absl::Status ReportInterval(Args& args);
  absl::Status Label(Args& args);
  absl::Status Rtcsync(Args& args);
  absl::Status ServerThreads(Args& args);
  absl::Status Port(Args& args);
  absl::Status ResyncMaxStep(Args& args);

  const IncludeLoader& loader_;
  AgentConfig config_;
  Location location_;
  int depth_ = 0;
  std::vector<std::string> include_stack_;  // resolved names, outermost first
  std::vector<FudgeLine> fudges_;
  std::vector<bool> trusted_;  // by key id; empty until `trustedkey`
  // Where the first tls_* line was (for a partial set's error).
  std::optional<Location> first_tls_;
  std::string first_tls_directive_;
  // Where each `controller` line was, parallel to config_.controllers (for a
  // duplicate's error).
  std::vector<Location> controller_lines_;
  // Indexes that keep parsing linear in the number of lines (a scan of every
  // rule or server per line made 4 x 35 000 restrict lines take 29 s):
  // config_.servers by ServerKey(), config_.restrictions by RestrictKey().
  absl::flat_hash_map<std::string, size_t> server_index_;
  absl::flat_hash_map<std::string, size_t> restrict_index_;
  // config_.restrictions[i] was removed by `unrestrict` (dropped in Finish(),
  // so that the indexes stay valid); how many are not.
  std::vector<bool> restrict_removed_;
  size_t live_restrictions_ = 0;
  // Warnings beyond kMaxWarnings, counted.
  size_t unlisted_warnings_ = 0;
};

const std::vector<Parser::DirectiveInfo>& Parser::Directives() {
  static const auto* const kDirectives = new std::vector<DirectiveInfo>{
      {"server", &Parser::Server},
      {"pool", &Parser::Server},
      {"peer", &Parser::Server},
      {"fudge", &Parser::Fudge},
      {"restrict", &Parser::Restrict},
      {"unrestrict", &Parser::Unrestrict},
      {"driftfile", &Parser::Driftfile},
      {"clockbound_shm", &Parser::ClockboundShm},
      {"leapfile", &Parser::Leapfile},
      {"leapsecmode", &Parser::Leapsecmode},
      {"keys", &Parser::Keys},
      {"trustedkey", &Parser::Trustedkey},
      {"requestkey", &Parser::Requestkey},
      {"controlkey", &Parser::Controlkey},
      {"enable", &Parser::EnableDisable},
      {"disable", &Parser::EnableDisable},
      {"statistics", &Parser::Statistics},
      {"statsdir", &Parser::Statsdir},
      {"tinker", &Parser::Tinker},
      {"tos", &Parser::Tos},
      {"includefile", &Parser::Includefile},
      {"logfile", &Parser::Logfile},
      {"pidfile", &Parser::Pidfile},
      {"controller", &Parser::Controller},
      {"node_name", &Parser::NodeName},
      {"report_interval", &Parser::ReportInterval},
      {"label", &Parser::Label},
      {"rtcsync", &Parser::Rtcsync},
      {"server_threads", &Parser::ServerThreads},
      {"tls_ca", &Parser::TlsCa},
      {"tls_cert", &Parser::TlsCert},
      {"tls_key", &Parser::TlsKey},
      {"port", &Parser::Port},
      {"resync_max_step", &Parser::ResyncMaxStep},
  };
  return *kDirectives;
}

absl::Status Parser::ParseFile(absl::string_view text,
                               const std::string& filename, int depth) {
  const Location outer = location_;
  const int outer_depth = depth_;
  include_stack_.push_back(filename);
  depth_ = depth;
  location_ = {filename, 0};
  if (absl::StartsWith(text, "\xef\xbb\xbf")) text.remove_prefix(3);  // BOM
  // The whole file is checked before any of its lines is acted on: binary
  // junk is an error, not two dozen "unsupported directive" warnings.
  if (const std::optional<BadByte> bad = FindNonText(text); bad.has_value()) {
    const absl::string_view before = text.substr(0, bad->offset);
    const size_t line_start = before.rfind('\n');
    location_.line =
        1 + static_cast<int>(std::count(before.begin(), before.end(), '\n'));
    const size_t column =
        bad->offset -
        (line_start == absl::string_view::npos ? 0 : line_start + 1) + 1;
    return Error(absl::StrCat(bad->what, " at column ", column,
                              ": not a text file? The configuration must be "
                              "UTF-8 (or ASCII) text"));
  }
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++location_.line;
    while (absl::EndsWith(line, "\r")) line.remove_suffix(1);  // CRLF
    std::vector<std::string> tokens;
    const std::string lex_error = Tokenize(line, &tokens);
    if (!lex_error.empty()) return Error(lex_error);
    if (tokens.empty()) continue;
    Args args(std::move(tokens));
    if (absl::Status s = Directive(args); !s.ok()) return s;
  }
  include_stack_.pop_back();
  depth_ = outer_depth;
  location_ = outer;
  return absl::OkStatus();
}

absl::Status Parser::Directive(Args& args) {
  const std::string& name = args.directive();
  for (const DirectiveInfo& d : Directives()) {
    if (d.name == name) return (this->*d.handler)(args);
  }
  std::string hint;
  if (!Contains(kUnsupportedDirectives, name)) {
    std::vector<absl::string_view> known;
    for (const DirectiveInfo& d : Directives()) known.push_back(d.name);
    hint = Hint(name, known);
  }
  Warn(absl::StrCat("unsupported directive '", name, "', ignored", hint));
  return absl::OkStatus();
}

// ------------------------------------------------------ argument helpers

absl::Status Parser::NeedValue(Args& args, absl::string_view what,
                               std::string* value) {
  if (args.Done()) {
    return Error(absl::StrCat(args.directive(), ": missing ", what));
  }
  *value = args.Next();
  return absl::OkStatus();
}

absl::Status Parser::ExpectEnd(Args& args) {
  if (args.Done()) return absl::OkStatus();
  return Error(
      absl::StrCat(args.directive(), ": unexpected '", args.Peek(), "'"));
}

absl::Status Parser::Int(absl::string_view what, absl::string_view token,
                         int64_t lo, int64_t hi, int64_t* out) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(token, &value) || value < lo || value > hi) {
    return Error(absl::StrCat(what, " must be an integer from ", lo, " to ", hi,
                              ", not '", token, "'"));
  }
  *out = value;
  return absl::OkStatus();
}

absl::Status Parser::IntArg(Args& args, absl::string_view what, int64_t lo,
                            int64_t hi, int64_t* out) {
  std::string token;
  if (absl::Status s = NeedValue(args, what, &token); !s.ok()) return s;
  return Int(what, token, lo, hi, out);
}

// Non-negative decimal seconds ("0.128", "600"), exact to the nanosecond
// (further digits are dropped) so that FormatEffectiveConfig reads back the
// same.
absl::Status Parser::Seconds(absl::string_view what, absl::string_view token,
                             absl::Duration* out) {
  absl::string_view t = token;
  if (absl::StartsWith(t, "-")) {
    return Error(
        absl::StrCat(what, " must not be negative, not '", token, "'"));
  }
  if (absl::StartsWith(t, "+")) t.remove_prefix(1);
  const size_t dot = t.find('.');
  absl::string_view whole = t.substr(0, dot);
  absl::string_view frac =
      dot == absl::string_view::npos ? absl::string_view() : t.substr(dot + 1);
  const auto all_digits = [](absl::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
      return absl::ascii_isdigit(static_cast<unsigned char>(c));
    });
  };
  if ((whole.empty() && frac.empty()) || !all_digits(whole) ||
      !all_digits(frac) || whole.size() > 9) {
    return Error(absl::StrCat(
        what, " must be a number of seconds (0 to 1e9), not '", token, "'"));
  }
  int64_t seconds = 0;
  for (char c : whole) seconds = seconds * 10 + (c - '0');
  int64_t nanos = 0;
  for (size_t i = 0; i < 9; ++i) {
    nanos = nanos * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  }
  *out = absl::Seconds(seconds) + absl::Nanoseconds(nanos);
  return absl::OkStatus();
}

absl::Status Parser::KeyId(absl::string_view what, absl::string_view token,
                           uint32_t* out) {
  int64_t id = 0;
  if (absl::Status s = Int(what, token, 1, 65535, &id); !s.ok()) return s;
  *out = static_cast<uint32_t>(id);
  return absl::OkStatus();
}

absl::Status Parser::PathDirective(Args& args, std::string* path) {
  std::string value;
  if (absl::Status s = NeedValue(args, "file name", &value); !s.ok()) return s;
  if (value.empty()) {
    return Error(absl::StrCat(args.directive(), ": empty file name"));
  }
  if (absl::Status s = ExpectEnd(args); !s.ok()) return s;
  *path = std::move(value);
  return absl::OkStatus();
}

// ------------------------------------------------------------ directives

// server|pool|peer [-4|-6] ADDRESS [options]
absl::Status Parser::Server(Args& args) {
  const std::string& directive = args.directive();
  ServerEntry server;
  server.is_pool = directive == "pool";
  server.location = location_;
  if (directive == "peer") {
    Warn(
        "peer: symmetric active mode is not supported; polling it as a "
        "server (client mode)");
  }

  std::string address;
  if (absl::Status s = NeedValue(args, "address", &address); !s.ok()) return s;
  if (address == "-4" || address == "-6") {
    server.family =
        address == "-4" ? AddressFamily::kIpv4 : AddressFamily::kIpv6;
    if (absl::Status s = NeedValue(args, "address", &address); !s.ok()) {
      return s;
    }
  }

  // "[v6]:port", "[v6]", "host:port", a bare IPv6 address, or a host.
  absl::string_view host = address;
  std::optional<absl::string_view> port_text;
  if (absl::StartsWith(host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) {
      return Error(absl::StrCat("invalid server address '", address, "'"));
    }
    absl::string_view after = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!after.empty()) {
      if (!absl::StartsWith(after, ":")) {
        return Error(absl::StrCat("invalid server address '", address, "'"));
      }
      port_text = after.substr(1);
    }
    const std::optional<IpAddress> ip = ParseIp(host);
    if (!ip.has_value() || ip->family != AddressFamily::kIpv6) {
      return Error(absl::StrCat("invalid IPv6 address in '", address, "'"));
    }
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    const size_t colon = host.find(':');
    port_text = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  const std::optional<IpAddress> ip = ParseIp(host);
  if (!ip.has_value() && !IsHostName(host)) {
    return Error(absl::StrCat("invalid server address '", address, "'"));
  }
  if (ip.has_value() && server.family != AddressFamily::kAny &&
      ip->family != server.family) {
    return Error(absl::StrCat(
        directive, " ", server.family == AddressFamily::kIpv4 ? "-4" : "-6",
        " does not fit the address '", host, "'"));
  }
  server.host = std::string(host);
  if (port_text.has_value()) {
    absl::StatusOr<int> port =
        ParsePort(*port_text, absl::StrCat(directive, " ", address));
    if (!port.ok()) return Error(port.status().message());
    server.port = *port;
  }

  PollSet poll_set;
  bool any_option = false;
  while (!args.Done()) {
    const std::string option = args.Next();
    any_option = true;
    int64_t value = 0;
    if (option == "iburst") {
      server.iburst = true;
    } else if (option == "burst") {
      server.burst = true;
    } else if (option == "prefer") {
      server.prefer = true;
    } else if (option == "minpoll" || option == "maxpoll") {
      // ntpd's NTP_MINPOLL..NTP_MAXPOLL (RFC 5905 §7.3 suggests 4..17).
      if (absl::Status s = IntArg(args, option, 3, 17, &value); !s.ok()) {
        return s;
      }
      if (option == "minpoll") {
        server.minpoll = static_cast<int>(value);
        poll_set.minpoll = true;
      } else {
        server.maxpoll = static_cast<int>(value);
        poll_set.maxpoll = true;
      }
    } else if (option == "key") {
      std::string token;
      if (absl::Status s = NeedValue(args, "key id", &token); !s.ok()) return s;
      uint32_t id = 0;
      if (absl::Status s = KeyId("key", token, &id); !s.ok()) return s;
      server.key_id = id;
    } else if (option == "version") {
      if (absl::Status s = IntArg(args, "version", 1, 4, &value); !s.ok()) {
        return s;
      }
      server.version = static_cast<int>(value);
    } else {
      bool known = false;
      for (const auto& [name, takes_value] : kUnsupportedServerOptions) {
        if (name != option) continue;
        known = true;
        std::string ignored;
        if (takes_value) {
          if (absl::Status s =
                  NeedValue(args, absl::StrCat(option, " value"), &ignored);
              !s.ok()) {
            return s;
          }
        }
        Warn(absl::StrCat(directive, " ", server.host, ": option '", option,
                          "' is not supported, ignored"));
      }
      if (!known) {
        std::vector<absl::string_view> names(std::begin(kServerOptions),
                                             std::end(kServerOptions));
        for (const auto& entry : kUnsupportedServerOptions) {
          names.push_back(entry.first);
        }
        return Error(absl::StrCat("unknown ", directive, " option '", option,
                                  "'", Hint(option, names)));
      }
    }
  }
  if (server.minpoll > server.maxpoll) {
    if (poll_set.minpoll && poll_set.maxpoll) {
      return Error(absl::StrCat("minpoll ", server.minpoll,
                                " is greater than maxpoll ", server.maxpoll));
    }
    // Only one was given: the other (a default) follows it.
    if (poll_set.minpoll) server.maxpoll = server.minpoll;
    if (poll_set.maxpoll) server.minpoll = server.maxpoll;
  }

  if (const std::optional<int> type = RefclockType(server.host);
      type.has_value()) {
    if (*type != 1 || server.is_pool) {
      Warn(absl::StrCat("reference clock ", server.host, " (driver ", *type,
                        ") is not supported, ignored"));
      return absl::OkStatus();
    }
    if (any_option) {
      Warn(absl::StrCat("options on the local clock line (", directive, " ",
                        server.host, ") are ignored"));
    }
  }

  std::string key = absl::StrCat(server.is_pool ? "pool " : "server ",
                                 server.port, " ", server.host);
  if (auto it = server_index_.find(key); it != server_index_.end()) {
    Warn(absl::StrCat("duplicate ", directive, " ", server.host, " (first at ",
                      config_.servers[it->second].location.ToString(),
                      "), ignored"));
    return absl::OkStatus();
  }
  if (config_.servers.size() >= static_cast<size_t>(kMaxSources)) {
    return Error(
        absl::StrCat(directive, " ", server.host, ": more than ", kMaxSources,
                     " sources (server, pool and peer lines): "
                     "a handful of servers, or a pool, is what NTP needs"));
  }
  server_index_.emplace(std::move(key), config_.servers.size());
  config_.servers.push_back(std::move(server));
  return absl::OkStatus();
}

// fudge ADDRESS [stratum N] [refid ID] [time1 S] ... Only the stratum of the
// local clock is used (see Finish()).
absl::Status Parser::Fudge(Args& args) {
  FudgeLine fudge;
  fudge.location = location_;
  if (absl::Status s = NeedValue(args, "address", &fudge.host); !s.ok()) {
    return s;
  }
  while (!args.Done()) {
    const std::string option = args.Next();
    if (option == "stratum") {
      int64_t stratum = 0;
      if (absl::Status s = IntArg(args, "stratum", 1, 15, &stratum); !s.ok()) {
        return s;
      }
      fudge.stratum = static_cast<int>(stratum);
    } else if (Contains(kUnsupportedFudge, option)) {
      std::string ignored;
      if (absl::Status s =
              NeedValue(args, absl::StrCat(option, " value"), &ignored);
          !s.ok()) {
        return s;
      }
      Warn(absl::StrCat("fudge ", fudge.host, ": option '", option,
                        "' is not supported, ignored"));
    } else {
      std::vector<absl::string_view> names(std::begin(kUnsupportedFudge),
                                           std::end(kUnsupportedFudge));
      names.push_back("stratum");
      return Error(absl::StrCat("unknown fudge option '", option, "'",
                                Hint(option, names)));
    }
  }
  fudges_.push_back(std::move(fudge));
  return absl::OkStatus();
}

// restrict|unrestrict [-4|-6] default|source|ADDRESS[/LEN] [mask M] [flags]
absl::Status Parser::ParseRestrict(Args& args, RestrictRule* rule,
                                   std::optional<std::string>* host_name,
                                   bool* is_source) {
  const std::string& directive = args.directive();
  rule->location = location_;
  std::string address;
  if (absl::Status s = NeedValue(args, "address", &address); !s.ok()) return s;
  AddressFamily forced = AddressFamily::kAny;
  if (address == "-4" || address == "-6") {
    forced = address == "-4" ? AddressFamily::kIpv4 : AddressFamily::kIpv6;
    if (absl::Status s = NeedValue(args, "address", &address); !s.ok()) {
      return s;
    }
  }

  if (address == "default") {
    rule->is_default = true;
    rule->family = forced;
  } else if (address == "source") {
    *is_source = true;
  } else {
    absl::string_view text = address;
    std::optional<int> prefix_length;
    if (const size_t slash = text.find('/'); slash != absl::string_view::npos) {
      int64_t bits = 0;
      const std::optional<IpAddress> net = ParseIp(text.substr(0, slash));
      const int64_t max_bits =
          net.has_value() && net->family == AddressFamily::kIpv6 ? 128 : 32;
      if (absl::Status s =
              Int("prefix length", text.substr(slash + 1), 0, max_bits, &bits);
          !s.ok()) {
        return s;
      }
      prefix_length = static_cast<int>(bits);
      text = text.substr(0, slash);
    }
    const std::optional<IpAddress> ip = ParseIp(text);
    if (ip.has_value()) {
      if (forced != AddressFamily::kAny && forced != ip->family) {
        return Error(absl::StrCat(directive, " ",
                                  forced == AddressFamily::kIpv4 ? "-4" : "-6",
                                  " does not fit the address '", text, "'"));
      }
      rule->family = ip->family;
      rule->address = ip->bytes;
      rule->mask = PrefixMask(ip->family, prefix_length.value_or(128));
    } else if (IsHostName(text) && !prefix_length.has_value() &&
               std::any_of(text.begin(), text.end(), [](char c) {
                 return absl::ascii_isalpha(static_cast<unsigned char>(c));
               })) {
      *host_name = std::string(text);
    } else {
      return Error(
          absl::StrCat("invalid ", directive, " address '", address, "'"));
    }
  }

  bool have_mask = false;
  while (!args.Done()) {
    const std::string flag = args.Next();
    if (flag == "mask") {
      std::string mask_text;
      if (absl::Status s = NeedValue(args, "mask", &mask_text); !s.ok()) {
        return s;
      }
      if (rule->is_default || *is_source) {
        return Error(absl::StrCat("mask does not apply to '", address, "'"));
      }
      if (have_mask) return Error("mask given twice");
      have_mask = true;
      if (host_name->has_value()) continue;  // ignored with the rule
      const std::optional<IpAddress> mask = ParseIp(mask_text);
      if (!mask.has_value() || mask->family != rule->family) {
        return Error(absl::StrCat("invalid mask '", mask_text, "' for ",
                                  rule->AddressString()));
      }
      // ntpd matches address AND mask; the agent matches prefixes, so a mask
      // must be ones then zeros (255.255.240.0, not 255.0.255.0).
      bool zero_seen = false;
      for (const uint8_t byte : mask->bytes) {
        for (int bit = 7; bit >= 0; --bit) {
          const bool one = (byte >> bit) & 1;
          if (one && zero_seen) {
            return Error(absl::StrCat("mask '", mask_text,
                                      "' is not contiguous (ones, then "
                                      "zeros): ntpfleet-agent matches "
                                      "prefixes"));
          }
          zero_seen |= !one;
        }
      }
      rule->mask = mask->bytes;
      continue;
    }
    bool known = false;
    for (int i = 0; i < kRestrictFlagCount; ++i) {
      if (flag == RestrictFlagName(static_cast<RestrictFlag>(i))) {
        rule->flags.set(i);
        known = true;
      }
    }
    if (known) continue;
    if (Contains(kUnsupportedRestrictFlags, flag) || flag == "ippeerlimit" ||
        flag == "serverresponse") {
      std::string ignored;
      if (flag == "ippeerlimit") {
        int64_t limit = 0;
        if (absl::Status s = IntArg(args, "ippeerlimit", -1, 1000000, &limit);
            !s.ok()) {
          return s;
        }
      } else if (flag == "serverresponse") {
        if (absl::Status s = NeedValue(args, "serverresponse value", &ignored);
            !s.ok()) {
          return s;
        }
      }
      Warn(absl::StrCat(directive, " flag '", flag,
                        "' is not supported, ignored"));
      continue;
    }
    std::vector<absl::string_view> names(std::begin(kUnsupportedRestrictFlags),
                                         std::end(kUnsupportedRestrictFlags));
    for (int i = 0; i < kRestrictFlagCount; ++i) {
      names.push_back(RestrictFlagName(static_cast<RestrictFlag>(i)));
    }
    for (absl::string_view n : {"mask", "ippeerlimit", "serverresponse"}) {
      names.push_back(n);
    }
    return Error(absl::StrCat("unknown ", directive, " flag '", flag, "'",
                              Hint(flag, names)));
  }

  if (!rule->is_default && !*is_source && !host_name->has_value()) {
    bool host_bits = false;
    for (size_t i = 0; i < rule->address.size(); ++i) {
      const uint8_t masked = rule->address[i] & rule->mask[i];
      host_bits |= masked != rule->address[i];
      rule->address[i] = masked;
    }
    if (host_bits) {
      Warn(absl::StrCat(directive, " ", address,
                        ": the address has bits outside the mask; the rule "
                        "covers ",
                        rule->AddressString(), " mask ", rule->MaskString()));
    }
  }
  return absl::OkStatus();
}

// Rules with the same key are for the same family, address and mask (ntpd
// merges them).
std::string RestrictKey(const RestrictRule& r) {
  std::string key =
      absl::StrCat(r.is_default ? "d" : "a", static_cast<int>(r.family), ":");
  key.append(reinterpret_cast<const char*>(r.address.data()), r.address.size());
  key.append(reinterpret_cast<const char*>(r.mask.data()), r.mask.size());
  return key;
}

absl::Status Parser::Restrict(Args& args) {
  RestrictRule rule;
  std::optional<std::string> host_name;
  bool is_source = false;
  if (absl::Status s = ParseRestrict(args, &rule, &host_name, &is_source);
      !s.ok()) {
    return s;
  }
  if (is_source) {
    Warn("restrict source is not supported, ignored");
    return absl::OkStatus();
  }
  if (host_name.has_value()) {
    Warn(absl::StrCat("restrict by host name ('", *host_name,
                      "') is not supported, ignored; write its address"));
    return absl::OkStatus();
  }
  std::string key = RestrictKey(rule);
  if (auto it = restrict_index_.find(key); it != restrict_index_.end()) {
    config_.restrictions[it->second].flags |= rule.flags;  // as ntpd does
    return absl::OkStatus();
  }
  if (live_restrictions_ >= static_cast<size_t>(kMaxRestrictRules)) {
    return Error(absl::StrCat(
        "restrict ", rule.AddressString(), ": more than ", kMaxRestrictRules,
        " restrict rules: the server checks "
        "every request against each; put long address lists in a firewall "
        "(an nftables set)"));
  }
  restrict_index_.emplace(std::move(key), config_.restrictions.size());
  config_.restrictions.push_back(std::move(rule));
  restrict_removed_.push_back(false);
  ++live_restrictions_;
  return absl::OkStatus();
}

// NTPsec: removes the listed flags from the rule for the same address and
// mask, or the whole rule when no flags are listed.
absl::Status Parser::Unrestrict(Args& args) {
  RestrictRule rule;
  std::optional<std::string> host_name;
  bool is_source = false;
  if (absl::Status s = ParseRestrict(args, &rule, &host_name, &is_source);
      !s.ok()) {
    return s;
  }
  if (is_source || host_name.has_value()) {
    Warn(absl::StrCat("unrestrict ",
                      is_source ? std::string("source") : *host_name,
                      " is not supported, ignored"));
    return absl::OkStatus();
  }
  if (auto it = restrict_index_.find(RestrictKey(rule));
      it != restrict_index_.end()) {
    if (rule.flags.none()) {
      restrict_removed_[it->second] = true;
      --live_restrictions_;
      restrict_index_.erase(it);
    } else {
      config_.restrictions[it->second].flags &= ~rule.flags;
    }
    return absl::OkStatus();
  }
  Warn(absl::StrCat("unrestrict ", rule.AddressString(),
                    ": no such restrict rule, ignored"));
  return absl::OkStatus();
}

// trustedkey ID... with ntpd's ranges: `trustedkey 1 2 (4 ... 8)`.
absl::Status Parser::Trustedkey(Args& args) {
  // '(' and ')' are tokens of their own in ntpd's scanner: split them (and
  // "...") off.
  const std::string spaced =
      absl::StrReplaceAll(absl::StrJoin(args.Rest(), " "),
                          {{"(", " ( "}, {")", " ) "}, {"...", " ... "}});
  const std::vector<std::string> tokens =
      absl::StrSplit(spaced, ' ', absl::SkipEmpty());
  if (tokens.empty()) return Error("trustedkey: missing key id");
  for (size_t i = 0; i < tokens.size(); ++i) {
    uint32_t first = 0;
    uint32_t last = 0;
    if (tokens[i] == "(") {
      if (i + 4 >= tokens.size() || tokens[i + 2] != "..." ||
          tokens[i + 4] != ")") {
        return Error("trustedkey: a range is written (FIRST ... LAST)");
      }
      if (absl::Status s = KeyId("key id", tokens[i + 1], &first); !s.ok()) {
        return s;
      }
      if (absl::Status s = KeyId("key id", tokens[i + 3], &last); !s.ok()) {
        return s;
      }
      if (first > last) {
        return Error(absl::StrCat("trustedkey: empty range (", first, " ... ",
                                  last, ")"));
      }
      i += 4;
    } else {
      if (absl::Status s = KeyId("key id", tokens[i], &first); !s.ok()) {
        return s;
      }
      last = first;
    }
    trusted_.resize(65536);
    // One fill, not a loop of bits: `trustedkey (1 ... 65535)` on every line
    // stays cheap.
    std::fill(trusted_.begin() + first, trusted_.begin() + last + 1, true);
  }
  return absl::OkStatus();
}

absl::Status Parser::Requestkey(Args& args) {
  return SingleKeyId(args, &config_.request_key);
}

absl::Status Parser::Controlkey(Args& args) {
  return SingleKeyId(args, &config_.control_key);
}

// requestkey N / controlkey N: one key id.
absl::Status Parser::SingleKeyId(Args& args, std::optional<uint32_t>* out) {
  std::string token;
  uint32_t id = 0;
  if (absl::Status s = NeedValue(args, "key id", &token); !s.ok()) return s;
  if (absl::Status s = KeyId("key id", token, &id); !s.ok()) return s;
  if (absl::Status s = ExpectEnd(args); !s.ok()) return s;
  *out = id;
  return absl::OkStatus();
}

// enable|disable FLAG...
absl::Status Parser::EnableDisable(Args& args) {
  const bool on = args.directive() == "enable";
  if (args.Done())
    return Error(absl::StrCat(args.directive(), ": missing flag"));
  SystemFlags& f = config_.flags;
  const std::pair<absl::string_view, bool*> flags[] = {
      {"auth", &f.auth}, {"kernel", &f.kernel}, {"monitor", &f.monitor},
      {"ntp", &f.ntp},   {"stats", &f.stats},
  };
  while (!args.Done()) {
    const std::string flag = args.Next();
    bool known = false;
    for (const auto& [name, value] : flags) {
      if (name == flag) {
        *value = on;
        known = true;
      }
    }
    if (known) continue;
    if (Contains(kUnsupportedSystemFlags, flag)) {
      Warn(absl::StrCat(args.directive(), " ", flag,
                        " is not supported, ignored"));
      continue;
    }
    std::vector<absl::string_view> names(std::begin(kUnsupportedSystemFlags),
                                         std::end(kUnsupportedSystemFlags));
    for (const auto& entry : flags) names.push_back(entry.first);
    return Error(absl::StrCat("unknown ", args.directive(), " flag '", flag,
                              "'", Hint(flag, names)));
  }
  return absl::OkStatus();
}

absl::Status Parser::Statistics(Args& args) {
  if (args.Done()) return Error("statistics: missing statistics type");
  while (!args.Done()) {
    const std::string name = args.Next();
    if (!Contains(kStatisticsNames, name)) {
      return Error(absl::StrCat("unknown statistics type '", name, "'",
                                Hint(name, std::vector<absl::string_view>(
                                               std::begin(kStatisticsNames),
                                               std::end(kStatisticsNames)))));
    }
    std::vector<std::string>& list = config_.statistics;
    if (std::find(list.begin(), list.end(), name) == list.end()) {
      list.push_back(name);
    }
  }
  return absl::OkStatus();
}

// tinker panic S | step S | (others warned), any number of pairs.
absl::Status Parser::Tinker(Args& args) {
  if (args.Done()) return Error("tinker: missing option");
  while (!args.Done()) {
    const std::string option = args.Next();
    std::string value;
    if (option == "panic" || option == "step" ||
        Contains(kUnsupportedTinker, option)) {
      if (absl::Status s =
              NeedValue(args, absl::StrCat(option, " value"), &value);
          !s.ok()) {
        return s;
      }
    }
    absl::Duration d;
    if (option == "panic" || option == "step") {
      if (absl::Status s = Seconds(absl::StrCat("tinker ", option), value, &d);
          !s.ok()) {
        return s;
      }
      (option == "panic" ? config_.panic_threshold : config_.step_threshold) =
          d;
    } else if (Contains(kUnsupportedTinker, option)) {
      double number = 0;
      if (!absl::SimpleAtod(value, &number)) {
        return Error(absl::StrCat("tinker ", option, " must be a number, not '",
                                  value, "'"));
      }
      Warn(absl::StrCat("tinker ", option, " is not supported, ignored"));
    } else {
      std::vector<absl::string_view> names(std::begin(kUnsupportedTinker),
                                           std::end(kUnsupportedTinker));
      names.push_back("panic");
      names.push_back("step");
      return Error(absl::StrCat("unknown tinker option '", option, "'",
                                Hint(option, names)));
    }
  }
  return absl::OkStatus();
}

// tos orphan N | minsane N | minclock N | maxdist S | (others warned).
absl::Status Parser::Tos(Args& args) {
  if (args.Done()) return Error("tos: missing option");
  while (!args.Done()) {
    const std::string option = args.Next();
    int64_t value = 0;
    if (option == "orphan") {
      if (absl::Status s = IntArg(args, "tos orphan", 1, 15, &value); !s.ok()) {
        return s;
      }
      config_.orphan_stratum = static_cast<int>(value);
    } else if (option == "minsane" || option == "minclock") {
      if (absl::Status s =
              IntArg(args, absl::StrCat("tos ", option), 1, 100, &value);
          !s.ok()) {
        return s;
      }
      (option == "minsane" ? config_.min_sane : config_.min_clock) =
          static_cast<int>(value);
    } else if (option == "maxdist") {
      std::string token;
      absl::Duration d;
      if (absl::Status s = NeedValue(args, "maxdist value", &token); !s.ok()) {
        return s;
      }
      if (absl::Status s = Seconds("tos maxdist", token, &d); !s.ok()) return s;
      if (d <= absl::ZeroDuration()) {
        return Error("tos maxdist must be greater than 0");
      }
      config_.max_distance = d;
    } else if (Contains(kUnsupportedTos, option)) {
      std::string token;
      double number = 0;
      if (absl::Status s =
              NeedValue(args, absl::StrCat(option, " value"), &token);
          !s.ok()) {
        return s;
      }
      if (!absl::SimpleAtod(token, &number)) {
        return Error(absl::StrCat("tos ", option, " must be a number, not '",
                                  token, "'"));
      }
      Warn(absl::StrCat("tos ", option, " is not supported, ignored"));
    } else {
      std::vector<absl::string_view> names(std::begin(kUnsupportedTos),
                                           std::end(kUnsupportedTos));
      for (absl::string_view n : {"orphan", "minsane", "minclock", "maxdist"}) {
        names.push_back(n);
      }
      return Error(absl::StrCat("unknown tos option '", option, "'",
                                Hint(option, names)));
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::Includefile(Args& args) {
  std::string path;
  if (absl::Status s = PathDirective(args, &path); !s.ok()) return s;
  const std::string resolved = ResolveInclude(location_.file, path);
  if (std::find(include_stack_.begin(), include_stack_.end(), resolved) !=
      include_stack_.end()) {
    return Error(absl::StrCat("includefile ", resolved, " includes itself (",
                              absl::StrJoin(include_stack_, " -> "), " -> ",
                              resolved, ")"));
  }
  if (depth_ + 1 > kMaxIncludeDepth) {
    return Error(absl::StrCat("includefile ", resolved, ": nested more than ",
                              kMaxIncludeDepth, " deep"));
  }
  if (static_cast<int>(config_.included_files.size()) >= kMaxIncludedFiles) {
    return Error(absl::StrCat("includefile ", resolved, ": more than ",
                              kMaxIncludedFiles, " files included"));
  }
  absl::StatusOr<std::string> text = loader_.Load(resolved);
  if (absl::IsNotFound(text.status())) {
    Warn(absl::StrCat("includefile ", resolved, " not found, skipped"));
    return absl::OkStatus();
  }
  if (absl::IsPermissionDenied(text.status())) {
    Warn(absl::StrCat("includefile ", resolved, " cannot be read (",
                      text.status().message(), "), skipped"));
    return absl::OkStatus();
  }
  if (!text.ok()) {
    return Error(
        absl::StrCat("includefile ", resolved, ": ", text.status().message()));
  }
  config_.included_files.push_back(resolved);
  return ParseFile(*text, resolved, depth_ + 1);
}

absl::Status Parser::Logfile(Args& args) {
  std::string path;
  if (absl::Status s = PathDirective(args, &path); !s.ok()) return s;
  Warn(absl::StrCat("logfile ", path,
                    " is not used: the agent logs to stderr (the journal)"));
  return absl::OkStatus();
}

absl::Status Parser::Pidfile(Args& args) {
  std::string path;
  if (absl::Status s = PathDirective(args, &path); !s.ok()) return s;
  Warn(absl::StrCat("pidfile ", path,
                    " is not used: the agent does not daemonise (systemd "
                    "tracks it)"));
  return absl::OkStatus();
}

// controller HOST:PORT (gRPC target; "[v6]:PORT" for IPv6).
absl::Status Parser::Controller(Args& args) {
  std::string target;
  if (absl::Status s = NeedValue(args, "HOST:PORT", &target); !s.ok()) return s;
  if (absl::Status s = ExpectEnd(args); !s.ok()) return s;
  absl::StatusOr<HostPort> hp = ParseHostPort(target, "controller");
  if (!hp.ok()) return Error(hp.status().message());
  if (target.find('[') != std::string::npos) {  // "[v6]:PORT"
    const std::optional<IpAddress> ip = ParseIp(hp->host);
    if (!ip.has_value() || ip->family != AddressFamily::kIpv6) {
      return Error(
          absl::StrCat("controller: invalid IPv6 address in '", target, "'"));
    }
  } else if (!ParseIp(hp->host).has_value() && !IsHostName(hp->host)) {
    return Error(absl::StrCat("controller: '", hp->host,
                              "' is not a host name or address; write "
                              "HOST:PORT, e.g. controller.example:7123"));
  }
  // The same controller twice would be two streams to one place: its
  // registry would see a duplicate name. Spelt differently ("dns:///h:1",
  // "H:1") is still the same place.
  for (size_t i = 0; i < config_.controllers.size(); ++i) {
    absl::StatusOr<HostPort> other =
        ParseHostPort(config_.controllers[i], "controller");
    if (other.ok() && other->port == hp->port &&
        absl::AsciiStrToLower(other->host) == absl::AsciiStrToLower(hp->host)) {
      return Error(absl::StrCat("controller ", target, " is already listed at ",
                                controller_lines_[i].ToString(),
                                ": give each controller once"));
    }
  }
  if (config_.controllers.size() >= static_cast<size_t>(kMaxControllers)) {
    return Error(absl::StrCat(
        "controller: at most ", kMaxControllers,
        " controllers (one per failure domain or site; docs/CONTROLLER.md "
        "\"More than one controller\")"));
  }
  config_.controllers.push_back(target);
  controller_lines_.push_back(location_);
  return absl::OkStatus();
}

absl::Status Parser::NodeName(Args& args) {
  std::string name;
  if (absl::Status s = NeedValue(args, "name", &name); !s.ok()) return s;
  if (absl::Status s = ExpectEnd(args); !s.ok()) return s;
  if (name.empty()) return Error("node_name: empty name");
  config_.node_name = name;
  return absl::OkStatus();
}

// report_interval 1s | 500ms | 2m | 10 (seconds)
absl::Status Parser::ReportInterval(Args& args) {
  std::string token;
  if (absl::Status s = NeedValue(args, "duration", &token); !s.ok()) return s;
  if (absl::Status s = ExpectEnd(args); !s.ok()) return s;
  absl::Duration d;
  const bool plain_number =
      !token.empty() && std::all_of(token.begin(), token.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '.';
      });
  if (plain_number) {
    if (absl::Status s = Seconds("report_interval", token, &d); !s.ok()) {
      return s;
    }
  } else if (!absl::ParseDuration(token, &d)) {
    return Error(absl::StrCat(
        "report_interval must be a duration such as 1s, 500ms or 2m, not '",
        token, "'"));
  }
  if (d < absl::Milliseconds(100) || d > absl::Hours(1)) {
    return Error(
        absl::StrCat("report_interval must be from 100ms to 1h (the controller "
                     "refuses more), not ",
                     token));
  }
  config_.report_interval = absl::Trunc(d, absl::Nanoseconds(1));
  return absl::OkStatus();
}

// label KEY=VALUE (one per line, repeatable).
absl::Status Parser::Label(Args& args) {
  std::string token;
  if (absl::Status s = NeedValue(args, "KEY=VALUE", &token); !s.ok()) return s;
  if (absl::Status s = ExpectEnd(args); !s.ok()) return s;
  const size_t eq = token.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Error(absl::StrCat("label must be KEY=VALUE, not '", token, "'"));
  }
  std::string key = token.substr(0, eq);
  if (config_.labels.count(key) > 0) {
    return Error(absl::StrCat("label '", key, "' given twice"));
  }
  // The controller's own rule: what it would refuse is refused here, with
  // the line.
  if (absl::Status s = CheckLabel(key, token.substr(eq + 1)); !s.ok()) {
    return Error(std::string(s.message()));
  }
  if (config_.labels.size() >= static_cast<size_t>(kMaxLabels)) {
    return Error(absl::StrCat("more than ", kMaxLabels,
                              " labels: the controller takes at most ",
                              kMaxLabels));
  }
  config_.labels.emplace(std::move(key), token.substr(eq + 1));
  return absl::OkStatus();
}

// leapsecmode system|slew (chrony's; its `step` and `ignore` are not
// implemented).
absl::Status Parser::Leapsecmode(Args& args) {
  std::string mode;
  if (absl::Status s = NeedValue(args, "mode (system or slew)", &mode);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ExpectEnd(args); !s.ok()) return s;
  if (mode == "system") {
    config_.leap_sec_mode = LeapSecMode::kSystem;
  } else if (mode == "slew") {
    config_.leap_sec_mode = LeapSecMode::kSlew;
  } else if (mode == "step" || mode == "ignore") {
    return Error(absl::StrCat("leapsecmode ", mode,
                              " is not supported: use system or slew"));
  } else {
    return Error(absl::StrCat("leapsecmode: unknown mode '", mode,
                              "': expected system or slew",
                              Hint(mode, {"system", "slew"})));
  }
  return absl::OkStatus();
}

absl::Status Parser::Rtcsync(Args& args) {
  if (absl::Status s = ExpectEnd(args); !s.ok()) return s;
  config_.rtcsync = true;
  return absl::OkStatus();
}

absl::Status Parser::ServerThreads(Args& args) {
  int64_t n = 0;
  if (absl::Status s = IntArg(args, "server_threads", 1, 256, &n); !s.ok()) {
    return s;
  }
  if (absl::Status s = ExpectEnd(args); !s.ok()) return s;
  config_.server_threads = static_cast<int>(n);
  return absl::OkStatus();
}

absl::Status Parser::Port(Args& args) {
  std::string token;
  if (absl::Status s = NeedValue(args, "port", &token); !s.ok()) return s;
  if (absl::Status s = ExpectEnd(args); !s.ok()) return s;
  absl::StatusOr<int> port = ParsePort(token, "port");
  if (!port.ok()) return Error(port.status().message());
  config_.port = *port;
  return absl::OkStatus();
}

// resync_max_step SECONDS (0: never step on the controller's resync).
absl::Status Parser::ResyncMaxStep(Args& args) {
  std::string token;
  if (absl::Status s = NeedValue(args, "seconds", &token); !s.ok()) return s;
  if (absl::Status s = ExpectEnd(args); !s.ok()) return s;
  return Seconds("resync_max_step", token, &config_.resync_max_step);
}

absl::Status Parser::TlsFile(Args& args, std::string* path) {
  if (!first_tls_) {
    first_tls_ = location_;
    first_tls_directive_ = args.directive();
  }
  return PathDirective(args, path);
}

absl::Status Parser::CheckTls() {
  const std::pair<const char*, const std::string*> files[] = {
      {"tls_cert", &config_.tls_cert},
      {"tls_key", &config_.tls_key},
      {"tls_ca", &config_.tls_ca}};
  std::vector<std::string> missing;
  for (const auto& [name, path] : files) {
    if (path->empty()) missing.push_back(name);
  }
  if (missing.empty() || missing.size() == 3) return absl::OkStatus();
  location_ = *first_tls_;
  return Error(absl::StrCat(
      first_tls_directive_, " without ", absl::StrJoin(missing, " and "),
      ": mutual TLS needs tls_cert, tls_key and tls_ca; make them with "
      "`ntpfleetctl certs`"));
}

// After all lines: the local clock and what the fudge lines apply to.
absl::Status Parser::Finish() {
  if (live_restrictions_ != config_.restrictions.size()) {
    std::vector<RestrictRule> kept;
    for (size_t i = 0; i < config_.restrictions.size(); ++i) {
      if (!restrict_removed_[i])
        kept.push_back(std::move(config_.restrictions[i]));
    }
    config_.restrictions = std::move(kept);
  }
  // The fudge that applies to each address: the last with a stratum, else the
  // first. Grouped once by address, so that this is linear too.
  struct FudgeGroup {
    std::vector<FudgeLine*> lines;
    FudgeLine* chosen = nullptr;
    bool settled = false;
  };
  absl::flat_hash_map<std::string, FudgeGroup> fudge_groups;
  for (FudgeLine& f : fudges_) {
    fudge_groups[CanonicalHost(f.host)].lines.push_back(&f);
  }
  std::vector<ServerEntry> servers;
  for (ServerEntry& server : config_.servers) {
    FudgeLine* fudge = nullptr;
    if (auto it = fudge_groups.find(CanonicalHost(server.host));
        it != fudge_groups.end()) {
      FudgeGroup& group = it->second;
      if (!group.settled) {
        group.settled = true;
        for (FudgeLine* f : group.lines) {
          f->used = true;
          if (group.chosen == nullptr || f->stratum.has_value()) {
            group.chosen = f;
          }
        }
      }
      fudge = group.chosen;
    }
    const bool local_driver = RefclockType(server.host).has_value();
    const bool has_stratum = fudge != nullptr && fudge->stratum.has_value();
    if (!local_driver &&
        !(has_stratum && IsLoopback(server.host) && !server.is_pool)) {
      if (fudge != nullptr) {
        location_ = fudge->location;
        Warn(absl::StrCat(
            "fudge ", fudge->host,
            " ignored: only the local clock (a server on 127.127.1.x, or on a "
            "loopback address with a fudge stratum) can be fudged"));
      }
      servers.push_back(std::move(server));
      continue;
    }
    if (config_.local_clock.has_value()) {
      location_ = server.location;
      Warn(absl::StrCat("a second local clock (", server.host,
                        ") ignored; the first is at ",
                        config_.local_clock->location.ToString()));
      continue;
    }
    LocalClock local;
    local.host = server.host;
    local.stratum = has_stratum ? *fudge->stratum : 10;
    local.location = server.location;
    config_.local_clock = std::move(local);
  }
  config_.servers = std::move(servers);
  for (uint32_t id = 0; id < trusted_.size(); ++id) {
    if (trusted_[id]) config_.trusted_keys.push_back(id);
  }
  for (const FudgeLine& f : fudges_) {
    if (f.used) continue;
    location_ = f.location;
    Warn(absl::StrCat("fudge ", f.host, " matches no server line, ignored"));
  }
  absl::Status tls = CheckTls();
  if (unlisted_warnings_ > 0) {
    config_.warnings.push_back(absl::StrCat(
        unlisted_warnings_, " more warnings not listed (only the first ",
        kMaxWarnings, " are)"));
  }
  return tls;
}

}  // namespace

absl::StatusOr<std::string> NoIncludeFiles::Load(
    const std::string& path) const {
  return absl::NotFoundError(absl::StrCat(path, ": no include files here"));
}

absl::StatusOr<AgentConfig> ParseConfig(absl::string_view text,
                                        absl::string_view filename,
                                        const IncludeLoader& loader) {
  Parser parser(loader);
  if (absl::Status s = parser.ParseFile(text, std::string(filename), 0);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = parser.Finish(); !s.ok()) return s;
  return parser.TakeConfig();
}

}  // namespace ntpfleet::config
