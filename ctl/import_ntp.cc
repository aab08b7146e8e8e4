// ImportNtpConf(): an ntpd ntp.conf to an agent configuration. The agent reads
// ntp.conf syntax itself (common/config), so most lines are kept as written;
// what changes is what the agent would only warn about and ignore (dropped
// here, with the reason), what it cannot do the same way (rewritten), and the
// drift file's place. ntpd's grammar: ntp_parser.y of ntpd 4.2.8 and NTPsec.
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "ctl/import_conf.h"
#include "ctl/import_internal.h"

namespace ntpfleet::ctl {
namespace {

using import_internal::IpAddress;
using import_internal::ParseIp;
using import_internal::SourceLine;
using import_internal::Writer;

// ntpd's MAXINCLUDELEVEL, as the agent.
constexpr int kMaxIncludeDepth = 5;

// One line of the flattened configuration (includefiles inlined).
struct Entry {
  enum Kind {
    kLine,          // a line of a file
    kIncludeBegin,  // `line` is the includefile directive; `path` was read
    kIncludeEnd,
    kIncludeDropped,  // `line` is the includefile directive; `why`
  };
  Kind kind = kLine;
  SourceLine line;
  std::string path;
  std::string why;
};

void Expand(absl::string_view text, const std::string& file, int depth,
            std::vector<std::string>& stack, const ImportFiles& files,
            std::vector<Entry>& out) {
  stack.push_back(file);
  for (SourceLine& line :
       import_internal::SplitLines(text, file, /*ntp_style=*/true)) {
    if (line.tokens.size() != 2 || line.tokens[0] != "includefile") {
      out.push_back({Entry::kLine, std::move(line), "", ""});
      continue;
    }
    const std::string path = import_internal::JoinToDirOf(file, line.tokens[1]);
    Entry e{Entry::kIncludeDropped, line, path, ""};
    if (std::find(stack.begin(), stack.end(), path) != stack.end()) {
      e.why = absl::StrCat("not understood: ", path,
                           " includes itself (ntpd and the agent stop there)");
      out.push_back(std::move(e));
      continue;
    }
    if (depth + 1 > kMaxIncludeDepth) {
      e.why = absl::StrCat("not understood: nested more than ",
                           kMaxIncludeDepth, " deep");
      out.push_back(std::move(e));
      continue;
    }
    absl::StatusOr<std::string> contents = files.Read(path);
    if (!contents.ok()) {
      e.why = absl::StrCat(
          path, " ", import_internal::DescribeReadError(contents.status()),
          " when importing, so nothing of it is imported (ntpd skips it too); "
          "if it matters, run the import where it can be read");
      out.push_back(std::move(e));
      continue;
    }
    out.push_back({Entry::kIncludeBegin, line, path, ""});
    Expand(*contents, path, depth + 1, stack, files, out);
    out.push_back({Entry::kIncludeEnd, line, path, ""});
  }
  stack.pop_back();
}

// ------------------------------------------------------------ helpers

bool ParseInt(absl::string_view s, int64_t lo, int64_t hi, int64_t* out) {
  return absl::SimpleAtoi(s, out) && *out >= lo && *out <= hi;
}

// A non-negative decimal number of seconds, as the agent's `tinker` reads it.
bool IsSeconds(absl::string_view s) {
  if (absl::StartsWith(s, "+")) s.remove_prefix(1);
  if (s.empty()) return false;
  int dots = 0;
  for (char c : s) {
    if (c == '.') {
      ++dots;
    } else if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return dots <= 1 && s != ".";
}

bool IsNumber(absl::string_view s) {
  double d = 0;
  return absl::SimpleAtod(s, &d);
}

// `127.127.T.U`: ntpd's reference clock pseudo-address; T is the driver.
std::optional<int> RefclockType(absl::string_view host) {
  const std::optional<IpAddress> ip = ParseIp(host);
  if (!ip.has_value() || ip->v6) return std::nullopt;
  if (ip->bytes[0] != 127 || ip->bytes[1] != 127) return std::nullopt;
  return ip->bytes[2];
}

std::string RefclockName(int type) {
  switch (type) {
    case 1:
      return "LOCAL";
    case 4:
      return "WWVB";
    case 8:
      return "PARSE";
    case 20:
      return "NMEA";
    case 22:
      return "PPS";
    case 28:
      return "SHM";
    case 46:
      return "GPSD";
    default:
      return absl::StrCat("type ", type);
  }
}

bool IsLoopback(absl::string_view host) {
  const std::optional<IpAddress> ip = ParseIp(host);
  if (!ip.has_value()) return false;
  if (!ip->v6) return ip->bytes[0] == 127;
  IpAddress one;
  one.v6 = true;
  one.bytes[15] = 1;
  return ip->bytes == one.bytes;
}

// The same address however written ("::1" and "0::1").
std::string Canonical(absl::string_view host) {
  const std::optional<IpAddress> ip = ParseIp(host);
  return ip.has_value() ? import_internal::FormatIp(*ip) : std::string(host);
}

// ------------------------------------------------------------ server lines

// A `server`/`pool`/`peer` line, split into what the agent takes and what not.
struct ServerLine {
  std::string directive;
  std::string family;                // "-4", "-6" or ""
  std::string address;               // as written (may carry ":port")
  std::string host;                  // without port and brackets
  std::vector<std::string> options;  // kept, in order ("minpoll 4")
  std::vector<std::string> dropped;  // "xleave: why"
  std::string drop_line;             // non-empty: drop the whole line, why
  std::string not_understood;        // non-empty: why
};

ServerLine ParseServer(const std::vector<std::string>& tokens) {
  ServerLine s;
  s.directive = tokens[0];
  size_t i = 1;
  if (i < tokens.size() && (tokens[i] == "-4" || tokens[i] == "-6")) {
    s.family = tokens[i++];
  }
  if (i >= tokens.size()) {
    s.not_understood = "no address";
    return s;
  }
  s.address = tokens[i++];
  absl::string_view host = s.address;
  if (absl::StartsWith(host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) {
      s.not_understood = "invalid address";
      return s;
    }
    host = host.substr(1, close - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  s.host = std::string(host);
  if (!import_internal::IsServerHost(s.host)) {
    s.not_understood = absl::StrCat("'", s.address, "' is not an address");
    return s;
  }
  bool set_min = false;
  bool set_max = false;
  int64_t minpoll = 6;
  int64_t maxpoll = 10;
  while (i < tokens.size()) {
    const std::string& o = tokens[i++];
    const bool has_value = i < tokens.size();
    if (o == "iburst" || o == "burst" || o == "prefer") {
      s.options.push_back(o);
    } else if (o == "minpoll" || o == "maxpoll") {
      int64_t v = 0;
      if (!has_value || !absl::SimpleAtoi(tokens[i], &v)) {
        s.not_understood = absl::StrCat(o, " needs a number");
        return s;
      }
      ++i;
      // ntpd's NTP_MINPOLL..NTP_MAXPOLL is 3..17, the agent's too; ntpd
      // clamps other values into it, and so does this.
      const int64_t clamped = std::clamp<int64_t>(v, 3, 17);
      if (clamped != v) {
        s.dropped.push_back(absl::StrCat(o, " ", v, ": clamped to ", clamped,
                                         " as ntpd does (3..17)"));
      }
      (o == "minpoll" ? minpoll : maxpoll) = clamped;
      (o == "minpoll" ? set_min : set_max) = true;
      s.options.push_back(absl::StrCat(o, " ", clamped));
    } else if (o == "key") {
      int64_t v = 0;
      if (!has_value || !ParseInt(tokens[i], 1, 65535, &v)) {
        s.not_understood = "key needs a key id 1..65535";
        return s;
      }
      ++i;
      s.options.push_back(absl::StrCat("key ", v));
    } else if (o == "version") {
      int64_t v = 0;
      if (!has_value || !ParseInt(tokens[i], 1, 4, &v)) {
        s.not_understood = "version needs 1..4";
        return s;
      }
      ++i;
      s.options.push_back(absl::StrCat("version ", v));
    } else if (o == "noselect") {
      s.drop_line =
          "noselect: the agent has no monitor-only sources, and polling it "
          "as an ordinary server would let it steer the clock";
    } else if (o == "preempt") {
      s.dropped.push_back(
          "preempt: only for ephemeral (pool/manycast) associations, which "
          "the agent does not make");
    } else if (o == "true") {
      s.dropped.push_back(
          "true: the agent cannot exempt a source from selection; it is an "
          "ordinary candidate");
    } else if (o == "xleave") {
      s.dropped.push_back(
          "xleave: no interleaved mode; basic client mode works with every "
          "server");
    } else if (o == "autokey") {
      s.dropped.push_back(
          "autokey: Autokey (RFC 5906) is not supported; the server is now "
          "polled WITHOUT authentication (use `key N`)");
    } else if (o == "nts") {
      s.dropped.push_back(
          "nts: NTS is not supported; the server is now polled WITHOUT "
          "authentication (use `key N`)");
    } else if (o == "noval") {
      s.dropped.push_back("noval: an NTS option; no NTS");
    } else if (o == "mode" || o == "ttl" || o == "bias" || o == "ident" ||
               o == "subtype" || o == "ask" || o == "require") {
      if (!has_value) {
        s.not_understood = absl::StrCat(o, " needs a value");
        return s;
      }
      s.dropped.push_back(
          absl::StrCat(o, " ", tokens[i], ": not supported by the agent"));
      ++i;
    } else {
      s.not_understood = absl::StrCat("unknown ", s.directive, " option '", o,
                                      "' (ntpd rejects the line too)");
      return s;
    }
  }
  if (set_min && set_max && minpoll > maxpoll) {
    s.not_understood = "minpoll greater than maxpoll";
  }
  return s;
}

std::string FormatServer(const ServerLine& s, absl::string_view directive) {
  std::vector<std::string> parts = {std::string(directive)};
  if (!s.family.empty()) parts.push_back(s.family);
  parts.push_back(s.address);
  for (const std::string& o : s.options) parts.push_back(o);
  return absl::StrJoin(parts, " ");
}

// ------------------------------------------------------------ the importer

class NtpImporter {
 public:
  NtpImporter(const ImportOptions& o, std::vector<Entry> entries)
      : o_(o), entries_(std::move(entries)) {}

  ImportResult Run();

 private:
  void Collect();
  void Emit(const SourceLine& line);
  void Server(const SourceLine& line);
  void Fudge(const SourceLine& line);
  void Restrict(const SourceLine& line);
  void Driftfile(const SourceLine& line);
  void EnableDisable(const SourceLine& line);
  void Tinker(const SourceLine& line);
  void Tos(const SourceLine& line);
  void Trustedkey(const SourceLine& line);

  const ImportOptions& o_;
  std::vector<Entry> entries_;
  Writer w_;
  // Canonical hosts of the upstream servers (for the restrict note).
  std::set<std::string> server_hosts_;
  // Canonical hosts with a `fudge ... stratum N`.
  std::set<std::string> fudged_;
  // The server line the agent reads as its local clock (the first one), and
  // the canonical host of it.
  const SourceLine* local_clock_ = nullptr;
  std::string local_host_;
  // Servers seen (canonical host, port, pool?) -> their location.
  std::map<std::string, std::string> seen_servers_;
};

void NtpImporter::Collect() {
  // fudge stratum first: a loopback server is a local clock only with one.
  for (const Entry& e : entries_) {
    const auto& t = e.line.tokens;
    if (e.kind != Entry::kLine || t.size() < 2 || t[0] != "fudge") continue;
    if (std::find(t.begin(), t.end(), "stratum") != t.end()) {
      fudged_.insert(Canonical(t[1]));
    }
  }
  for (const Entry& e : entries_) {
    const auto& t = e.line.tokens;
    if (e.kind != Entry::kLine || t.empty()) continue;
    if (t[0] != "server" && t[0] != "pool" && t[0] != "peer") continue;
    const ServerLine s = ParseServer(t);
    if (!s.not_understood.empty() || !s.drop_line.empty()) continue;
    const std::string host = Canonical(s.host);
    const std::optional<int> type = RefclockType(s.host);
    const bool local =
        t[0] != "pool" &&
        ((type.has_value() && *type == 1) ||
         (!type.has_value() && IsLoopback(s.host) && fudged_.count(host) > 0));
    if (local) {
      if (local_clock_ == nullptr) {
        local_clock_ = &e.line;
        local_host_ = host;
      }
    } else if (!type.has_value()) {
      server_hosts_.insert(host);
    }
  }
}

ImportResult NtpImporter::Run() {
  import_internal::WriteHeader(w_, "ntpd", "import-ntp-conf", o_);
  Collect();
  for (const Entry& e : entries_) {
    switch (e.kind) {
      case Entry::kIncludeBegin:
        w_.Comment(absl::StrCat("was: ", e.line.Location(), ": ",
                                e.line.Directive(), " — inlined below"));
        w_.Comment(absl::StrCat("begin includefile ", e.path));
        continue;
      case Entry::kIncludeEnd:
        w_.Comment(absl::StrCat("end includefile ", e.path));
        continue;
      case Entry::kIncludeDropped:
        if (absl::StartsWith(e.why, "not understood: ")) {
          w_.NotUnderstood(e.line, e.why.substr(16));
        } else {
          w_.Drop(e.line, e.why);
        }
        continue;
      case Entry::kLine:
        break;
    }
    if (e.line.tokens.empty()) {
      w_.Verbatim(e.line.text);
      continue;
    }
    Emit(e.line);
  }
  import_internal::WriteControllerSection(w_, o_);
  return w_.Finish();
}

void NtpImporter::Emit(const SourceLine& line) {
  const std::string& d = line.tokens[0];
  const size_t n = line.tokens.size();
  if (d == "server" || d == "pool" || d == "peer") return Server(line);
  if (d == "fudge") return Fudge(line);
  if (d == "restrict" || d == "unrestrict") return Restrict(line);
  if (d == "driftfile") return Driftfile(line);
  if (d == "enable" || d == "disable") return EnableDisable(line);
  if (d == "tinker") return Tinker(line);
  if (d == "tos") return Tos(line);
  if (d == "trustedkey") return Trustedkey(line);
  if (d == "includefile") {
    return w_.NotUnderstood(line, "includefile needs one file name");
  }
  if (d == "keys") {
    if (n != 2) return w_.NotUnderstood(line, "keys needs one file name");
    w_.Keep(line);
    w_.Note(absl::StrCat(
        "the agent reads ", line.tokens[1],
        " (ntpd's format) as user ntpfleet under the shipped unit: make it "
        "readable (chown root:ntpfleet; chmod 0640) or copy it to "
        "/etc/ntpfleet/ntp.keys; a server's `key N` must be in it or the "
        "agent does not start"));
    return;
  }
  if (d == "leapfile") {
    if (n != 2) return w_.NotUnderstood(line, "leapfile needs one file name");
    return w_.Keep(line);
  }
  if (d == "requestkey" || d == "controlkey") {
    return w_.Drop(line,
                   "the agent answers no ntpdc/ntpq (mode 7/6) queries; "
                   "`ntpfleetctl peers` on the node replaces them");
  }
  if (d == "statistics" || d == "statsdir" || d == "filegen") {
    return w_.Drop(line,
                   "the agent writes no statistics files; the controller's "
                   "history (`ntpfleetctl history`) and /metrics replace them");
  }
  if (d == "logfile") {
    return w_.Drop(line, "the agent logs to stderr (the journal)");
  }
  if (d == "logconfig") {
    return w_.Drop(line,
                   "the agent logs every event to the journal; --verbose "
                   "adds debug lines");
  }
  if (d == "pidfile") {
    return w_.Drop(line, "the agent does not daemonise (systemd tracks it)");
  }
  if (d == "crypto") {
    // `crypto pw SECRET`: never copy the password.
    std::vector<std::string> shown;
    for (size_t i = 0; i < n; ++i) {
      shown.push_back(i > 0 && line.tokens[i - 1] == "pw" ? "<redacted>"
                                                          : line.tokens[i]);
    }
    return w_.DropShown(line, absl::StrJoin(shown, " "),
                        "Autokey (RFC 5906) is not supported");
  }
  if (d == "automax" || d == "keysdir" || d == "revoke" || d == "ident") {
    return w_.Drop(line, "Autokey (RFC 5906) is not supported");
  }
  if (d == "authenticate") {
    return w_.Drop(line,
                   "authentication follows `keys`, `trustedkey` and each "
                   "server's `key N` (docs/AGENT.md, keys)");
  }
  if (d == "broadcast" || d == "broadcastclient" || d == "multicastclient" ||
      d == "manycastserver" || d == "manycastclient" || d == "broadcastdelay") {
    return w_.Drop(line,
                   "no broadcast, multicast or manycast modes: clients poll "
                   "their servers (write `server` lines)");
  }
  if (d == "discard") {
    return w_.Drop(line,
                   "the rate limit of `restrict ... limited` is fixed at "
                   "ntpd's defaults (average 3 minimum 1)");
  }
  if (d == "interface" || d == "nic") {
    return w_.Drop(line,
                   "the agent serves on all addresses, or on one given with "
                   "--listen ADDR");
  }
  if (d == "mru" || d == "setvar" || d == "trap" || d == "reset") {
    return w_.Drop(line, "for ntpq/ntpdc, which the agent does not answer");
  }
  if (d == "rlimit") {
    return w_.Drop(line, "systemd sets the agent's limits");
  }
  if (d == "dscp" || d == "qos") {
    return w_.Drop(line, "the agent does not set a DSCP/TOS value");
  }
  if (d == "refclock" || d == "device") {
    return w_.Drop(line, "reference clocks are not supported");
  }
  if (d == "nts" || d == "ntsservercert" || d == "ntsserverkey") {
    return w_.Drop(line, "NTS is not supported");
  }
  if (d == "leapsmearinterval") {
    return w_.Drop(line,
                   "no leap smear; `leapsecmode slew` slews a leap second "
                   "away on this node only");
  }
  if (d == "phone" || d == "calldelay" || d == "ttl" || d == "unpeer" ||
      d == "saveconfigdir" || d == "nonvolatile" || d == "pollskewlist" ||
      d == "mdnstries" || d == "ntpsigndsocket" || d == "serverresponse") {
    return w_.Drop(line, "not supported by the agent");
  }
  // The agent's own directives (a file already written for it).
  if (d == "controller" && !o_.controller.empty()) {
    return w_.Drop(line, "replaced by --controller (below)");
  }
  if (d == "controller" || d == "node_name" || d == "label" ||
      d == "report_interval" || d == "server_threads" || d == "port" ||
      d == "resync_max_step" || d == "tls_cert" || d == "tls_key" ||
      d == "tls_ca" || d == "leapsecmode") {
    return w_.Keep(line);
  }
  if (d == "rtcsync") {
    return w_.Drop(line,
                   "no effect: the kernel copies the time to the RTC every 11 "
                   "minutes while the agent keeps the clock synchronised");
  }
  w_.NotUnderstood(line, absl::StrCat("unknown directive '", d, "'"));
}

void NtpImporter::Server(const SourceLine& line) {
  const ServerLine s = ParseServer(line.tokens);
  if (!s.not_understood.empty())
    return w_.NotUnderstood(line, s.not_understood);
  if (!s.drop_line.empty()) return w_.Drop(line, s.drop_line);
  const std::optional<int> type = RefclockType(s.host);
  if (type.has_value() && (*type != 1 || s.directive == "pool")) {
    return w_.Drop(line,
                   absl::StrCat("reference clock driver ", *type, " (",
                                RefclockName(*type), ") is not supported"));
  }
  const std::string host = Canonical(s.host);
  if (local_clock_ != nullptr && host == local_host_ && s.directive != "pool") {
    if (local_clock_ != &line) {
      return w_.Drop(line,
                     absl::StrCat("a second local clock; the agent uses one (",
                                  local_clock_->Location(), ")"));
    }
    if (s.options.empty() && s.dropped.empty() && s.family.empty() &&
        s.directive == "server") {
      w_.Keep(line);
    } else {
      w_.Rewrite(line,
                 "options on the local clock line do nothing (it is never "
                 "polled)",
                 {absl::StrCat("server ", s.address)});
    }
    w_.Note(
        "the local clock: with no usable upstream (after a holdover on the "
        "learned frequency) the agent serves this node's own clock at the "
        "`fudge` stratum (10 without one; ntpd served one more). On a client "
        "it is usually better without: the node then shows that it is adrift "
        "(docs/AGENT.md, \"The local clock\")");
    return;
  }
  const std::string key = absl::StrCat(host, "|", s.address, "|",
                                       s.directive == "pool" ? "pool" : "");
  if (auto it = seen_servers_.find(key); it != seen_servers_.end()) {
    return w_.Drop(line, absl::StrCat("a duplicate of ", it->second));
  }
  seen_servers_.emplace(key, line.Location());

  if (s.directive == "peer") {
    std::vector<std::string> why = {
        "symmetric active mode is not supported: polled as a server (client "
        "mode), so this node follows the peer but the peer no longer follows "
        "this node"};
    for (const std::string& d : s.dropped) why.push_back(d);
    w_.Rewrite(line, absl::StrJoin(why, "; "), {FormatServer(s, "server")});
    return;
  }
  if (!s.dropped.empty()) {
    w_.Rewrite(line, absl::StrJoin(s.dropped, "; "),
               {FormatServer(s, s.directive)});
  } else {
    w_.Keep(line);
  }
  if (s.directive == "pool") {
    w_.Note(absl::StrCat(
        "the agent polls ONE address of a pool (the first ", s.host,
        " resolves to), where ntpd used several: for several servers write "
        "several `server` lines"));
  }
}

void NtpImporter::Fudge(const SourceLine& line) {
  const auto& t = line.tokens;
  if (t.size() < 2) return w_.NotUnderstood(line, "fudge needs an address");
  std::vector<std::string> kept = {"fudge", t[1]};
  std::vector<std::string> dropped;
  for (size_t i = 2; i < t.size(); i += 2) {
    if (i + 1 >= t.size()) {
      return w_.NotUnderstood(line, absl::StrCat(t[i], " needs a value"));
    }
    if (t[i] == "stratum") {
      int64_t v = 0;
      if (!ParseInt(t[i + 1], 0, 15, &v)) {
        return w_.NotUnderstood(line, "stratum must be 0..15");
      }
      if (v == 0) {
        // ntpd allows 0 for a refclock; the agent's local clock is 1..15.
        dropped.push_back(
            "stratum 0: the local clock is served at 1..15; 1 used");
        v = 1;
      }
      kept.push_back("stratum");
      kept.push_back(absl::StrCat(v));
    } else if (t[i] == "refid" || t[i] == "time1" || t[i] == "time2" ||
               t[i] == "flag1" || t[i] == "flag2" || t[i] == "flag3" ||
               t[i] == "flag4" || t[i] == "minjitter") {
      dropped.push_back(absl::StrCat(
          t[i], " ", t[i + 1],
          ": only the local clock's stratum applies (its refid is LOCL)"));
    } else {
      return w_.NotUnderstood(
          line, absl::StrCat("unknown fudge option '", t[i], "'"));
    }
  }
  const std::string host = Canonical(t[1]);
  const std::optional<int> type = RefclockType(t[1]);
  if (local_clock_ == nullptr || host != local_host_) {
    if (type.has_value() && *type != 1) {
      return w_.Drop(line, absl::StrCat("its reference clock (driver ", *type,
                                        ") is not imported"));
    }
    return w_.Drop(line,
                   "fudge applies only to the local clock, and this address "
                   "is not one");
  }
  if (dropped.empty()) return w_.Keep(line);
  w_.Rewrite(line, absl::StrJoin(dropped, "; "), {absl::StrJoin(kept, " ")});
}

void NtpImporter::Restrict(const SourceLine& line) {
  const auto& t = line.tokens;
  const std::string& d = t[0];
  size_t i = 1;
  std::vector<std::string> out = {d};
  if (i < t.size() && (t[i] == "-4" || t[i] == "-6")) out.push_back(t[i++]);
  if (i >= t.size()) return w_.NotUnderstood(line, "no address");
  const std::string address = t[i++];
  std::string host_for_note;
  if (address == "source") {
    return w_.Drop(line,
                   "the agent never filters its own upstreams' replies with "
                   "`restrict` (and makes no pool associations), so this rule "
                   "has nothing to do");
  }
  if (address != "default") {
    absl::string_view a = address;
    std::string prefix;
    if (const size_t slash = a.find('/'); slash != absl::string_view::npos) {
      prefix = std::string(a.substr(slash + 1));
      a = a.substr(0, slash);
    }
    const std::optional<IpAddress> ip = ParseIp(a);
    if (!ip.has_value()) {
      if (import_internal::IsHostName(a) && prefix.empty()) {
        return w_.Drop(line,
                       "restrict by host name is not supported: write its "
                       "address");
      }
      return w_.NotUnderstood(line,
                              absl::StrCat("invalid address '", address, "'"));
    }
    int64_t bits = 0;
    if (!prefix.empty() && !ParseInt(prefix, 0, ip->v6 ? 128 : 32, &bits)) {
      return w_.NotUnderstood(line, "invalid prefix length");
    }
    host_for_note = Canonical(a);
  }
  out.push_back(address);
  std::vector<std::string> removed;
  bool have_mask = false;
  while (i < t.size()) {
    const std::string& f = t[i++];
    if (f == "mask") {
      if (i >= t.size() || address == "default" || have_mask) {
        return w_.NotUnderstood(line, "misplaced mask");
      }
      const std::optional<IpAddress> mask = ParseIp(t[i]);
      if (!mask.has_value()) {
        return w_.NotUnderstood(line,
                                absl::StrCat("invalid mask '", t[i], "'"));
      }
      // The agent matches prefixes: the mask must be ones, then zeros.
      bool zero_seen = false;
      for (uint8_t byte : mask->bytes) {
        for (int bit = 7; bit >= 0; --bit) {
          const bool one = (byte >> bit) & 1;
          if (one && zero_seen) {
            return w_.NotUnderstood(
                line, absl::StrCat("mask ", t[i],
                                   " is not contiguous; the agent matches "
                                   "prefixes (write one rule per prefix)"));
          }
          zero_seen |= !one;
        }
      }
      have_mask = true;
      out.push_back("mask");
      out.push_back(t[i++]);
      host_for_note.clear();  // a network, not one server
      continue;
    }
    static const std::set<std::string> kKnown = {
        "ignore",    "nomodify", "noquery", "notrap",  "nopeer",
        "notrust",   "kod",      "limited", "noserve", "lowpriotrap",
        "nomrulist", "version",  "ntpport"};
    if (kKnown.count(f) > 0) {
      out.push_back(f);
    } else if (f == "flake" || f == "mssntp" || f == "noepeer") {
      removed.push_back(absl::StrCat("'", f, "' is not supported"));
    } else if (f == "ippeerlimit" || f == "serverresponse") {
      if (i >= t.size()) {
        return w_.NotUnderstood(line, absl::StrCat(f, " needs a value"));
      }
      removed.push_back(
          absl::StrCat("'", f, " ", t[i++], "' is not supported"));
    } else {
      return w_.NotUnderstood(line,
                              absl::StrCat("unknown restrict flag '", f,
                                           "' (ntpd rejects the line too)"));
    }
  }
  if (removed.empty()) {
    w_.Keep(line);
  } else {
    w_.Rewrite(line, absl::StrJoin(removed, "; "), {absl::StrJoin(out, " ")});
  }
  // ntpd's `ignore` also dropped the replies of servers the rule covers; the
  // agent's restrict rules decide only what it serves, so such a rule is more
  // permissive here.
  if (d == "restrict" && !server_hosts_.empty() &&
      std::find(out.begin(), out.end(), "ignore") != out.end()) {
    w_.Note(
        "ntpd's `ignore` also dropped replies from the servers it covers; "
        "the agent applies restrict rules only to the requests it serves, and "
        "always uses its configured servers");
  }
  if (!host_for_note.empty() && d == "restrict" &&
      server_hosts_.count(host_for_note) > 0) {
    w_.Note(absl::StrCat(
        "this rule applies only to requests FROM ", address,
        " to this node; the agent never filters its upstreams' replies, so "
        "it is not needed to use ",
        address, " as a server"));
  }
}

void NtpImporter::Driftfile(const SourceLine& line) {
  const auto& t = line.tokens;
  if (t.size() < 2 || t.size() > 4) {
    return w_.NotUnderstood(line, "driftfile needs a file name");
  }
  if (t[1] == import_internal::kAgentDriftFile && t.size() == 2) {
    return w_.Keep(line);
  }
  std::string why = absl::StrCat(
      "under the shipped systemd unit the agent may write only under "
      "/var/lib/ntpfleet; the format and sign are ntpd's, so the learned "
      "frequency carries over: install -o ntpfleet -g ntpfleet -m 0644 ",
      t[1], " ", import_internal::kAgentDriftFile);
  if (t.size() > 2) {
    absl::StrAppend(&why,
                    " (the write interval/tolerance arguments are "
                    "not used: the agent writes hourly)");
  }
  w_.Rewrite(line, why,
             {absl::StrCat("driftfile ", import_internal::kAgentDriftFile)});
}

void NtpImporter::EnableDisable(const SourceLine& line) {
  const auto& t = line.tokens;
  if (t.size() < 2) return w_.NotUnderstood(line, "no flag");
  std::vector<std::string> why;
  for (size_t i = 1; i < t.size(); ++i) {
    const std::string& f = t[i];
    if (f == "monitor") {
      why.push_back(
          "monitor: there is no monitor list, and mode 7 (monlist, "
          "CVE-2013-5211) is never answered");
    } else if (f == "kernel") {
      why.push_back(
          "kernel: the agent disciplines in user space; the kernel's PLL is "
          "never used");
    } else if (f == "ntp") {
      why.push_back(absl::StrCat(
          "ntp: ", t[0] == "disable" ? "IT WOULD NOT STOP THE AGENT FROM "
                                       "DISCIPLINING THE CLOCK (stop the "
                                       "agent instead)"
                                     : "the agent always disciplines"));
    } else if (f == "auth") {
      why.push_back(
          "auth: authentication follows the keys (docs/AGENT.md, keys)");
    } else if (f == "stats") {
      why.push_back("stats: no statistics files are written");
    } else if (f == "bclient" || f == "calibrate" || f == "mode7" ||
               absl::EndsWith(f, "_early")) {
      why.push_back(absl::StrCat(f, ": not supported"));
    } else {
      return w_.NotUnderstood(line, absl::StrCat("unknown flag '", f, "'"));
    }
  }
  w_.Drop(line,
          absl::StrCat("no effect in the agent: ", absl::StrJoin(why, "; ")));
}

void NtpImporter::Tinker(const SourceLine& line) {
  const auto& t = line.tokens;
  if (t.size() < 3 || t.size() % 2 == 0) {
    return w_.NotUnderstood(line, "tinker takes OPTION VALUE pairs");
  }
  std::vector<std::string> kept = {"tinker"};
  std::vector<std::string> dropped;
  bool panic_note = false;
  for (size_t i = 1; i + 1 < t.size(); i += 2) {
    const std::string& opt = t[i];
    const std::string& v = t[i + 1];
    if (opt == "panic" || opt == "step") {
      if (!IsSeconds(v)) {
        return w_.NotUnderstood(
            line, absl::StrCat("tinker ", opt, " needs seconds >= 0"));
      }
      kept.push_back(opt);
      kept.push_back(v);
      panic_note |= opt == "panic" && v != "0";
    } else if (opt == "allan" || opt == "dispersion" || opt == "freq" ||
               opt == "huffpuff" || opt == "stepback" || opt == "stepfwd" ||
               opt == "stepout" || opt == "tick") {
      if (!IsNumber(v)) {
        return w_.NotUnderstood(line, absl::StrCat(opt, " needs a number"));
      }
      dropped.push_back(absl::StrCat(
          opt, " ", v,
          opt == "stepout"
              ? ": the agent does not wait before a step (its filter "
                "confirms a jump over three samples)"
              : ": the agent's discipline has no such setting"));
    } else {
      return w_.NotUnderstood(
          line, absl::StrCat("unknown tinker option '", opt, "'"));
    }
  }
  if (kept.size() == 1) {
    w_.Drop(line, absl::StrJoin(dropped, "; "));
  } else if (dropped.empty()) {
    w_.Keep(line);
  } else {
    w_.Rewrite(line, absl::StrJoin(dropped, "; "), {absl::StrJoin(kept, " ")});
  }
  if (panic_note) {
    w_.Note(
        "beyond the panic threshold ntpd exits; the agent refuses the "
        "correction, logs why and keeps running (unsynchronised) until "
        "`ntpfleetctl sync --step` forces it");
  }
}

void NtpImporter::Tos(const SourceLine& line) {
  const auto& t = line.tokens;
  if (t.size() < 3 || t.size() % 2 == 0) {
    return w_.NotUnderstood(line, "tos takes OPTION VALUE pairs");
  }
  std::vector<std::string> kept = {"tos"};
  std::vector<std::string> dropped;
  for (size_t i = 1; i + 1 < t.size(); i += 2) {
    const std::string& opt = t[i];
    const std::string& v = t[i + 1];
    int64_t n = 0;
    if (opt == "maxdist") {
      if (!IsSeconds(v) || v == "0") {
        return w_.NotUnderstood(line, "maxdist needs seconds > 0");
      }
      kept.push_back(opt);
      kept.push_back(v);
    } else if (opt == "minsane") {
      if (!ParseInt(v, 1, 100, &n)) {
        return w_.NotUnderstood(line, "minsane needs 1..100");
      }
      kept.push_back(opt);
      kept.push_back(v);
    } else if (opt == "orphan") {
      dropped.push_back(absl::StrCat(
          "orphan ", v,
          ": no orphan mode; give the fleet's server a local clock "
          "(`server 127.127.1.0` + `fudge 127.127.1.0 stratum 10`)"));
    } else if (opt == "minclock") {
      dropped.push_back(absl::StrCat(
          "minclock ", v, ": clustering always keeps at least 3 survivors"));
    } else if (opt == "beacon" || opt == "ceiling" || opt == "cohort" ||
               opt == "floor" || opt == "maxclock" || opt == "mindist" ||
               opt == "orphanwait" || opt == "bcpollbstep" ||
               opt == "maxdisp") {
      if (!IsNumber(v)) {
        return w_.NotUnderstood(line, absl::StrCat(opt, " needs a number"));
      }
      dropped.push_back(absl::StrCat(opt, " ", v,
                                     ": the agent's selection has no such "
                                     "setting"));
    } else {
      return w_.NotUnderstood(line,
                              absl::StrCat("unknown tos option '", opt, "'"));
    }
  }
  if (kept.size() == 1) {
    w_.Drop(line, absl::StrJoin(dropped, "; "));
  } else if (dropped.empty()) {
    w_.Keep(line);
  } else {
    w_.Rewrite(line, absl::StrJoin(dropped, "; "), {absl::StrJoin(kept, " ")});
  }
}

void NtpImporter::Trustedkey(const SourceLine& line) {
  // ntpd's syntax: ids and (FIRST ... LAST) ranges.
  std::string joined;
  for (size_t i = 1; i < line.tokens.size(); ++i) {
    absl::StrAppend(&joined, " ", line.tokens[i]);
  }
  std::string spaced;
  for (char c : joined) {
    if (c == '(' || c == ')') {
      absl::StrAppend(&spaced, " ", std::string(1, c), " ");
    } else {
      spaced.push_back(c);
    }
  }
  int ids = 0;
  for (absl::string_view tok : absl::StrSplit(spaced, ' ', absl::SkipEmpty())) {
    int64_t v = 0;
    if (tok == "(" || tok == ")" || tok == "...") continue;
    if (!ParseInt(tok, 1, 65535, &v)) {
      return w_.NotUnderstood(
          line, absl::StrCat("key id '", tok, "' is not 1..65535"));
    }
    ++ids;
  }
  if (ids == 0) return w_.NotUnderstood(line, "no key id");
  w_.Keep(line);
}

}  // namespace

absl::StatusOr<ImportResult> ImportNtpConf(absl::string_view text,
                                           const ImportOptions& options,
                                           const ImportFiles& files) {
  std::vector<Entry> entries;
  std::vector<std::string> stack;
  Expand(text, options.source_name, 0, stack, files, entries);
  NtpImporter importer(options, std::move(entries));
  return importer.Run();
}

}  // namespace ntpfleet::ctl
