// ImportChronyConf(): a chrony.conf to an agent configuration, and
// ConvertChronyKeys(). chrony's directives and their defaults are those of
// chrony.conf(5) of chrony 4.3 (Debian 12); each is mapped to the agent's
// equivalent where there is one, and dropped with the reason where not.
#include <fnmatch.h>

#include <algorithm>
#include <array>
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
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

// chrony's include nesting limit is larger; this only stops cycles and
// fan-out early.
constexpr int kMaxIncludeDepth = 10;
// The agent's keys file when the import does not convert chrony's.
constexpr char kDefaultKeysFile[] = "/etc/ntpfleet/ntp.keys";

// ------------------------------------------------------------ flattening

struct Entry {
  enum Kind {
    kLine,     // a line of a file
    kComment,  // `text` as a comment of the importer (begin/end of a file)
    kHandled,  // `line` (include/confdir/sourcedir) with `why`: rewritten
    kDropped,  // `line` with `why`
    kNotUnderstood,
  };
  Kind kind = kLine;
  SourceLine line;
  std::string text;
  std::string why;
  bool sources_only = false;  // from a sourcedir *.sources file
};

class Flattener {
 public:
  explicit Flattener(const ImportFiles& files) : files_(files) {}
  void File(absl::string_view text, const std::string& file, int depth,
            bool sources_only);
  std::vector<Entry> Take() { return std::move(out_); }

 private:
  void Include(const SourceLine& line, int depth);
  void Dirs(const SourceLine& line, int depth, absl::string_view suffix);
  void Inline(const std::string& path, int depth, bool sources_only,
              const std::string& what);

  const ImportFiles& files_;
  std::vector<Entry> out_;
  std::vector<std::string> stack_;
};

void Flattener::File(absl::string_view text, const std::string& file, int depth,
                     bool sources_only) {
  stack_.push_back(file);
  for (SourceLine& line :
       import_internal::SplitLines(text, file, /*ntp_style=*/false)) {
    const std::string d = line.tokens.empty() ? "" : line.tokens[0];
    if (!sources_only && d == "include") {
      Include(line, depth);
    } else if (!sources_only && d == "confdir") {
      Dirs(line, depth, ".conf");
    } else if (!sources_only && d == "sourcedir") {
      Dirs(line, depth, ".sources");
    } else {
      Entry e;
      e.line = std::move(line);
      e.sources_only = sources_only;
      out_.push_back(std::move(e));
    }
  }
  stack_.pop_back();
}

void Flattener::Inline(const std::string& path, int depth, bool sources_only,
                       const std::string& what) {
  absl::StatusOr<std::string> text = files_.Read(path);
  if (!text.ok()) {
    out_.push_back(
        {Entry::kComment,
         {},
         absl::StrCat(what, " ", path, ": ",
                      import_internal::DescribeReadError(text.status()),
                      " when importing, not imported"),
         "",
         false});
    return;
  }
  out_.push_back({Entry::kComment,
                  {},
                  absl::StrCat("begin ", what, " ", path),
                  "",
                  false});
  File(*text, path, depth + 1, sources_only);
  out_.push_back(
      {Entry::kComment, {}, absl::StrCat("end ", what, " ", path), "", false});
}

void Flattener::Include(const SourceLine& line, int depth) {
  if (line.tokens.size() != 2) {
    out_.push_back({Entry::kNotUnderstood, line, "",
                    "include needs one file name or pattern", false});
    return;
  }
  const std::string pattern =
      import_internal::JoinToDirOf(line.file, line.tokens[1]);
  if (depth + 1 > kMaxIncludeDepth ||
      std::find(stack_.begin(), stack_.end(), pattern) != stack_.end()) {
    out_.push_back({Entry::kNotUnderstood, line, "",
                    "includes itself, or nested too deep", false});
    return;
  }
  std::vector<std::string> paths;
  if (pattern.find_first_of("*?[") == std::string::npos) {
    paths.push_back(pattern);
  } else {
    const size_t slash = pattern.rfind('/');
    const std::string dir =
        slash == std::string::npos ? "." : pattern.substr(0, slash);
    const std::string glob =
        slash == std::string::npos ? pattern : pattern.substr(slash + 1);
    absl::StatusOr<std::vector<std::string>> names = files_.List(dir);
    if (names.ok()) {
      std::sort(names->begin(), names->end());
      for (const std::string& n : *names) {
        if (fnmatch(glob.c_str(), n.c_str(), FNM_PERIOD) == 0) {
          paths.push_back(absl::StrCat(dir, "/", n));
        }
      }
    }
    if (paths.empty()) {
      out_.push_back(
          {Entry::kDropped, line, "",
           "no file matched when importing (chronyd refuses to start "
           "without one)",
           false});
      return;
    }
  }
  out_.push_back({Entry::kHandled, line, "",
                  "the agent's `includefile` takes no patterns: the files are "
                  "inlined below",
                  false});
  for (const std::string& p : paths) Inline(p, depth, false, "include");
}

// confdir / sourcedir DIR...: the files with `suffix` of each directory, in
// the lexicographical order of their names; a name found in several
// directories is read from the first (chrony.conf(5)).
void Flattener::Dirs(const SourceLine& line, int depth,
                     absl::string_view suffix) {
  const bool sources = suffix == ".sources";
  const std::string& d = line.tokens[0];
  if (line.tokens.size() < 2) {
    out_.push_back({Entry::kNotUnderstood, line, "",
                    absl::StrCat(d, " needs a directory"), false});
    return;
  }
  std::map<std::string, std::string> by_name;  // name -> path (sorted)
  std::vector<std::string> missing;
  for (size_t i = 1; i < line.tokens.size(); ++i) {
    const std::string dir =
        import_internal::JoinToDirOf(line.file, line.tokens[i]);
    absl::StatusOr<std::vector<std::string>> names = files_.List(dir);
    if (!names.ok()) {
      missing.push_back(absl::StrCat(
          dir, " ", import_internal::DescribeReadError(names.status())));
      continue;
    }
    for (const std::string& n : *names) {
      if (n.size() > suffix.size() && absl::EndsWith(n, suffix) &&
          by_name.count(n) == 0) {
        by_name.emplace(n, absl::StrCat(dir, "/", n));
      }
    }
  }
  std::string why = absl::StrCat("the agent has no ", d, ": the ", suffix,
                                 " files found there are "
                                 "inlined below");
  if (by_name.empty()) {
    why = absl::StrCat("the agent has no ", d, "; no ", suffix,
                       " file was there when importing");
  }
  if (!missing.empty()) {
    absl::StrAppend(&why, " (", absl::StrJoin(missing, "; "), ")");
  }
  absl::StrAppend(&why,
                  "; files added there later are not read by the agent: "
                  "import again, or add their lines by hand");
  if (sources && absl::StrContains(line.Directive(), "dhcp")) {
    absl::StrAppend(&why,
                    ". chronyd fills this directory from DHCP at run time; "
                    "the agent takes no servers from DHCP: write `server` "
                    "lines for them");
  }
  out_.push_back({Entry::kHandled, line, "", why, false});
  for (const auto& [name, path] : by_name) {
    Inline(path, depth, sources, sources ? "sourcedir file" : "confdir file");
  }
}

// ------------------------------------------------------------ helpers

bool ParseInt(absl::string_view s, int64_t lo, int64_t hi, int64_t* out) {
  return absl::SimpleAtoi(s, out) && *out >= lo && *out <= hi;
}

// A number of seconds as the agent writes it: plain decimal, no exponent.
std::string FormatSeconds(double s) {
  std::string text = absl::StrFormat("%.6f", s);
  while (absl::EndsWith(text, "0")) text.pop_back();
  if (absl::EndsWith(text, ".")) text.pop_back();
  return text;
}

// One allow/deny rule, as chrony keeps them: a subnet and allow or deny.
struct AccessRule {
  bool v6 = false;
  std::array<uint8_t, 16> net{};
  int bits = 0;  // prefix length; 0 with v6 false/true: the family's default
  bool allow = false;
  std::string location;
};

bool Contains(const AccessRule& outer, const AccessRule& inner) {
  if (outer.v6 != inner.v6 || inner.bits < outer.bits) return false;
  for (int i = 0; i < outer.bits; ++i) {
    const int byte = i / 8;
    const int bit = 7 - i % 8;
    if (((outer.net[byte] >> bit) & 1) != ((inner.net[byte] >> bit) & 1)) {
      return false;
    }
  }
  return true;
}

void MaskTo(AccessRule& r) {
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(r.bits - i * 8, 0, 8);
    r.net[i] &= static_cast<uint8_t>(keep == 8 ? 0xff : (0xff << (8 - keep)));
  }
}

// chrony's subnet syntax: "1.2.3.4", "1.2.3.0/24", "1.2.3" (the prefix
// length from the number of octets), "0/0", "2001:db8::/32", "::/0".
std::optional<AccessRule> ParseSubnet(absl::string_view text) {
  AccessRule r;
  absl::string_view addr = text;
  std::optional<int64_t> bits;
  if (const size_t slash = text.find('/'); slash != absl::string_view::npos) {
    addr = text.substr(0, slash);
    int64_t b = 0;
    if (!absl::SimpleAtoi(text.substr(slash + 1), &b) || b < 0) {
      return std::nullopt;
    }
    bits = b;
  }
  if (addr.find(':') != absl::string_view::npos) {
    const std::optional<IpAddress> ip = ParseIp(addr);
    if (!ip.has_value() || !ip->v6) return std::nullopt;
    r.v6 = true;
    r.net = ip->bytes;
    r.bits = static_cast<int>(bits.value_or(128));
    if (r.bits > 128) return std::nullopt;
  } else {
    std::vector<absl::string_view> octets = absl::StrSplit(addr, '.');
    if (octets.empty() || octets.size() > 4) return std::nullopt;
    for (size_t i = 0; i < octets.size(); ++i) {
      int64_t v = 0;
      if (!ParseInt(octets[i], 0, 255, &v)) return std::nullopt;
      r.net[i] = static_cast<uint8_t>(v);
    }
    r.bits = static_cast<int>(bits.value_or(8 * octets.size()));
    if (r.bits > 32) return std::nullopt;
  }
  MaskTo(r);
  return r;
}

std::string FormatRule(const AccessRule& r, bool limited) {
  IpAddress ip;
  ip.v6 = r.v6;
  ip.bytes = r.net;
  std::string target;
  if (r.v6) {
    target = r.bits == 128
                 ? import_internal::FormatIp(ip)
                 : absl::StrCat(import_internal::FormatIp(ip), "/", r.bits);
  } else if (r.bits == 32) {
    target = import_internal::FormatIp(ip);
  } else {
    AccessRule mask;
    mask.bits = r.bits;
    mask.net.fill(0xff);
    MaskTo(mask);
    IpAddress m;
    m.bytes = mask.net;
    target = absl::StrCat(import_internal::FormatIp(ip), " mask ",
                          import_internal::FormatIp(m));
  }
  std::string line = absl::StrCat("restrict ", target);
  if (!r.allow) absl::StrAppend(&line, " ignore");
  if (r.allow && limited) absl::StrAppend(&line, " limited");
  return line;
}

// ------------------------------------------------------------ the importer

class ChronyImporter {
 public:
  ChronyImporter(const ImportOptions& o, const ImportFiles& files,
                 std::vector<Entry> entries)
      : o_(o), files_(files), entries_(std::move(entries)) {}

  ImportResult Run();

 private:
  void Emit(const Entry& e);
  void Server(const SourceLine& line);
  void Local(const SourceLine& line);
  void Access(const SourceLine& line);
  void Makestep(const SourceLine& line);
  void Maxchange(const SourceLine& line);
  void Driftfile(const SourceLine& line);
  void Keyfile(const SourceLine& line);
  void Ratelimit(const SourceLine& line);
  void AccessSection();
  void ImpliedSection();

  const ImportOptions& o_;
  const ImportFiles& files_;
  std::vector<Entry> entries_;
  Writer w_;
  std::vector<AccessRule> access_;  // in chrony's effective state
  bool any_access_line_ = false;
  bool ratelimit_ = false;
  bool makestep_seen_ = false;
  bool maxchange_seen_ = false;
  bool local_seen_ = false;
  bool servers_use_keys_ = false;
  std::set<std::string> seen_servers_;
};

ImportResult ChronyImporter::Run() {
  import_internal::WriteHeader(w_, "chrony", "import-chrony-conf", o_);
  for (const Entry& e : entries_) {
    const auto& t = e.line.tokens;
    if (e.kind != Entry::kLine || t.empty()) continue;
    if ((t[0] == "server" || t[0] == "pool" || t[0] == "peer") &&
        std::find(t.begin(), t.end(), "key") != t.end()) {
      servers_use_keys_ = true;
    }
  }
  for (const Entry& e : entries_) Emit(e);
  AccessSection();
  ImpliedSection();
  import_internal::WriteControllerSection(w_, o_);
  return w_.Finish();
}

void ChronyImporter::Emit(const Entry& e) {
  switch (e.kind) {
    case Entry::kComment:
      return w_.Comment(e.text);
    case Entry::kHandled:
      return w_.Rewrite(e.line, e.why, {});
    case Entry::kDropped:
      return w_.Drop(e.line, e.why);
    case Entry::kNotUnderstood:
      return w_.NotUnderstood(e.line, e.why);
    case Entry::kLine:
      break;
  }
  const SourceLine& line = e.line;
  if (line.tokens.empty()) return w_.Verbatim(line.text);
  const std::string& d = line.tokens[0];
  const size_t n = line.tokens.size();
  if (e.sources_only && d != "server" && d != "pool" && d != "peer") {
    return w_.NotUnderstood(
        line, "a .sources file may hold only server, pool and peer lines");
  }
  if (d == "server" || d == "pool" || d == "peer") return Server(line);
  if (d == "local") return Local(line);
  if (d == "allow" || d == "deny") return Access(line);
  if (d == "makestep") return Makestep(line);
  if (d == "maxchange") return Maxchange(line);
  if (d == "driftfile") return Driftfile(line);
  if (d == "keyfile") return Keyfile(line);
  if (d == "ratelimit") return Ratelimit(line);
  if (d == "leapsectz") {
    if (n != 2) return w_.NotUnderstood(line, "leapsectz needs a time zone");
    return w_.Rewrite(
        line,
        absl::StrCat("chrony reads leap seconds from the time zone ",
                     line.tokens[1],
                     "; the agent reads the same tzdata package's list of "
                     "them (its hash checked, re-read every 24 h)"),
        {"leapfile /usr/share/zoneinfo/leap-seconds.list"});
  }
  if (d == "leapsecmode") {
    if (n != 2) return w_.NotUnderstood(line, "leapsecmode needs a mode");
    const std::string& m = line.tokens[1];
    if (m == "system" || m == "slew") return w_.Keep(line);
    if (m == "step") {
      return w_.Rewrite(line,
                        "the agent does not step at the leap itself: the "
                        "kernel inserts it (the same repeated second)",
                        {"leapsecmode system"});
    }
    if (m == "ignore") {
      return w_.Drop(line,
                     "the agent always corrects a leap second (`system`, "
                     "the default): it owns the clock");
    }
    return w_.NotUnderstood(line, absl::StrCat("unknown mode '", m, "'"));
  }
  if (d == "maxdistance") {
    double v = 0;
    if (n != 2 || !absl::SimpleAtod(line.tokens[1], &v) || v <= 0) {
      return w_.NotUnderstood(line, "maxdistance needs seconds > 0");
    }
    return w_.Rewrite(line, "the same limit on a source's root distance",
                      {absl::StrCat("tos maxdist ", FormatSeconds(v))});
  }
  if (d == "minsources") {
    int64_t v = 0;
    if (n != 2 || !ParseInt(line.tokens[1], 1, 100, &v)) {
      return w_.NotUnderstood(line, "minsources needs 1..100");
    }
    return w_.Rewrite(
        line, "the same: the clock is not steered with fewer good sources",
        {absl::StrCat("tos minsane ", v)});
  }
  if (d == "port") {
    int64_t v = 0;
    if (n != 2 || !ParseInt(line.tokens[1], 0, 65535, &v)) {
      return w_.NotUnderstood(line, "port needs 0..65535");
    }
    if (v == 0) {
      return w_.Drop(line,
                     "the agent always opens its server port; with "
                     "`restrict default ignore` (below, unless `allow` says "
                     "otherwise) it answers nobody, as chrony's port 0 meant");
    }
    return w_.Keep(line);
  }
  if (d == "rtcsync") {
    return w_.Drop(line,
                   "no need: the kernel copies the system time to the RTC "
                   "every 11 minutes while the agent keeps the clock "
                   "synchronised (the same 11-minute mode)");
  }
  if (d == "rtcfile" || d == "rtcautotrim" || d == "rtcdevice" ||
      d == "rtconutc" || d == "hwclockfile") {
    return w_.Drop(line,
                   "the agent does not track the RTC; the kernel's 11-minute "
                   "mode keeps it set");
  }
  if (d == "log" || d == "logdir" || d == "logbanner" || d == "logchange" ||
      d == "mailonchange") {
    return w_.Drop(line,
                   "the agent logs every change of state to the journal; the "
                   "controller keeps the history (`ntpfleetctl history`)");
  }
  if (d == "dumpdir") {
    return w_.Drop(line,
                   "the agent keeps no measurement history across restarts; "
                   "its drift file carries the frequency");
  }
  if (d == "ntsdumpdir" || d == "ntsservercert" || d == "ntsserverkey" ||
      d == "ntsport" || d == "ntsprocesses" || d == "maxntsconnections" ||
      d == "ntsntpserver" || d == "ntsrotate" || d == "ntstrustedcerts" ||
      d == "nosystemcert" || d == "ntsrefresh" || d == "ntsratelimit" ||
      d == "ntsaeads") {
    return w_.Drop(line, "NTS is not supported");
  }
  if (d == "hwtimestamp") {
    return w_.Drop(line,
                   "no hardware timestamping: the agent uses the kernel's "
                   "software receive timestamps (SO_TIMESTAMPING)");
  }
  if (d == "cmdallow" || d == "cmddeny" || d == "bindcmdaddress" ||
      d == "cmdport" || d == "cmdratelimit") {
    return w_.Drop(line,
                   "chronyc's access; `ntpfleetctl peers`/`sync` use the "
                   "agent's control socket /run/ntpfleet/agent.sock (root, "
                   "or group ntpfleet to read)");
  }
  if (d == "bindaddress") {
    return w_.Drop(line,
                   "use the agent's --listen ADDR flag (one address; "
                   "default: all)");
  }
  if (d == "binddevice" || d == "bindacqaddress" || d == "bindacqdevice" ||
      d == "acquisitionport") {
    return w_.Drop(line,
                   "the agent's requests leave from an ephemeral port on any "
                   "interface");
  }
  if (d == "refclock") {
    return w_.Drop(line,
                   "reference clocks (PPS, SHM, SOCK, PHC) are not supported");
  }
  if (d == "user" || d == "pidfile" || d == "lock_all" ||
      d == "sched_priority") {
    return w_.Drop(line,
                   "systemd runs the agent (user ntpfleet, no pid file, no "
                   "forking)");
  }
  if (d == "manual") {
    return w_.Drop(line, "no manual time input (chronyc settime)");
  }
  if (d == "initstepslew") {
    return w_.Drop(line,
                   "deprecated in chrony; the agent's first correction after "
                   "start steps anything above 1 ms: write `server HOST "
                   "iburst` lines for these hosts if they are not sources "
                   "already");
  }
  if (d == "smoothtime") {
    return w_.Drop(line, "no server-side time smoothing or leap smear");
  }
  if (d == "broadcast") {
    return w_.Drop(line, "no broadcast mode: clients poll their servers");
  }
  if (d == "clientloglimit" || d == "noclientlog") {
    return w_.Drop(line,
                   "the agent keeps no client log (only its rate-limit "
                   "table)");
  }
  if (d == "ntpsigndsocket") {
    return w_.Drop(line, "no MS-SNTP signing");
  }
  if (d == "authselectmode") {
    return w_.Drop(line,
                   "no selection by authentication: a server with `key N` "
                   "must answer signed, the others are ordinary candidates");
  }
  if (d == "dscp" || d == "ptpport") {
    return w_.Drop(line, "not supported by the agent");
  }
  if (d == "maxupdateskew" || d == "maxclockerror" || d == "maxdrift" ||
      d == "corrtimeratio" || d == "clockprecision" || d == "fallbackdrift" ||
      d == "tempcomp" || d == "combinelimit" || d == "maxjitter" ||
      d == "reselectdist" || d == "stratumweight" || d == "minsamples" ||
      d == "maxsamples") {
    return w_.Drop(line,
                   "the agent's filter, selection and discipline have no such "
                   "setting (docs/ENGINE.md)");
  }
  if (d == "maxslewrate") {
    return w_.Drop(line,
                   "the agent slews at most 500 ppm (the kernel's frequency "
                   "limit), whatever chrony allowed");
  }
  w_.NotUnderstood(line, absl::StrCat("unknown directive '", d, "'"));
}

void ChronyImporter::Server(const SourceLine& line) {
  const auto& t = line.tokens;
  const std::string& d = t[0];
  if (t.size() < 2) return w_.NotUnderstood(line, "no address");
  const std::string& host = t[1];
  if (!import_internal::IsServerHost(host)) {
    return w_.NotUnderstood(line,
                            absl::StrCat("'", host, "' is not an address"));
  }
  std::vector<std::string> options;
  std::vector<std::string> dropped;
  std::optional<int64_t> port;
  std::string drop_line;
  for (size_t i = 2; i < t.size(); ++i) {
    const std::string& o = t[i];
    const bool has_value = i + 1 < t.size();
    auto value = [&]() -> const std::string& { return t[++i]; };
    if (o == "iburst" || o == "prefer") {
      options.push_back(o);
    } else if (o == "minpoll" || o == "maxpoll") {
      int64_t v = 0;
      if (!has_value || !ParseInt(value(), -7, 24, &v)) {
        return w_.NotUnderstood(line, absl::StrCat(o, " needs -7..24"));
      }
      const int64_t clamped = std::clamp<int64_t>(v, 3, 17);
      if (clamped != v) {
        dropped.push_back(absl::StrCat(
            o, " ", v, ": the agent polls every 2^3 (8 s) to 2^17 s; ", clamped,
            " used"));
      }
      options.push_back(absl::StrCat(o, " ", clamped));
    } else if (o == "key") {
      int64_t v = 0;
      if (!has_value || !ParseInt(value(), 1, 4294967295LL, &v)) {
        return w_.NotUnderstood(line, "key needs an id");
      }
      if (v > 65535) {
        drop_line = absl::StrCat(
            "key ", v,
            ": ntpd's keys file (the agent's) holds ids up to 65535; give the "
            "key a smaller id on both sides");
      }
      options.push_back(absl::StrCat("key ", v));
    } else if (o == "version") {
      int64_t v = 0;
      if (!has_value || !ParseInt(value(), 1, 4, &v)) {
        return w_.NotUnderstood(line, "version needs 1..4");
      }
      options.push_back(absl::StrCat("version ", v));
    } else if (o == "port") {
      int64_t v = 0;
      if (!has_value || !ParseInt(value(), 1, 65535, &v)) {
        return w_.NotUnderstood(line, "port needs 1..65535");
      }
      port = v;
    } else if (o == "noselect") {
      drop_line =
          "noselect: the agent has no monitor-only sources, and polling it "
          "as an ordinary server would let it steer the clock";
    } else if (o == "burst") {
      dropped.push_back(
          "burst: the agent already sends up to 8 requests per poll when a "
          "path is too noisy for one sample (chrony's burst); the agent's "
          "`burst` would send 8 at every poll");
    } else if (o == "nts") {
      dropped.push_back(
          "nts: NTS is not supported; the server is now polled WITHOUT "
          "authentication");
    } else if (o == "xleave") {
      dropped.push_back(
          "xleave: no interleaved mode; basic client mode works with every "
          "server");
    } else if (o == "copy") {
      dropped.push_back("copy: not supported");
    } else if (o == "offline" || o == "auto_offline") {
      dropped.push_back(absl::StrCat(
          o,
          ": the agent polls every server from the start and shows "
          "an unreachable one as such"));
    } else if (o == "trust" || o == "require") {
      dropped.push_back(absl::StrCat(
          o, ": no per-source selection rules; an ordinary candidate"));
    } else if (o == "maxsources") {
      if (!has_value) return w_.NotUnderstood(line, "maxsources needs a value");
      dropped.push_back(absl::StrCat("maxsources ", value(),
                                     ": the agent polls one address of a "
                                     "pool"));
    } else if (o == "certset" || o == "ntsport") {
      if (!has_value) return w_.NotUnderstood(line, o + " needs a value");
      dropped.push_back(
          absl::StrCat(o, " ", value(), ": NTS is not supported"));
    } else if (o == "offset") {
      if (!has_value) return w_.NotUnderstood(line, "offset needs a value");
      dropped.push_back(absl::StrCat(
          "offset ", value(),
          ": no per-source correction; its measurements are used as "
          "measured"));
    } else if (o == "maxdelay" || o == "maxdelayratio" ||
               o == "maxdelaydevratio" || o == "maxdelayquant" ||
               o == "mindelay" || o == "asymmetry") {
      if (!has_value) return w_.NotUnderstood(line, o + " needs a value");
      dropped.push_back(absl::StrCat(
          o, " ", value(),
          ": the agent's filter weighs samples by their delay itself"));
    } else if (o == "minsamples" || o == "maxsamples" || o == "filter" ||
               o == "polltarget" || o == "presend" || o == "minstratum" ||
               o == "extfield") {
      if (!has_value) return w_.NotUnderstood(line, o + " needs a value");
      dropped.push_back(
          absl::StrCat(o, " ", value(), ": the agent has no such setting"));
    } else {
      return w_.NotUnderstood(line,
                              absl::StrCat("unknown ", d, " option '", o,
                                           "' (chronyd rejects the line too)"));
    }
  }
  if (!drop_line.empty()) return w_.Drop(line, drop_line);
  std::string address = host;
  if (port.has_value() && *port != 123) {
    address = ParseIp(host).has_value() && ParseIp(host)->v6
                  ? absl::StrCat("[", host, "]:", *port)
                  : absl::StrCat(host, ":", *port);
    dropped.push_back(absl::StrCat("port ", *port, ": written ", address));
  }
  const std::string key = absl::StrCat(d == "pool" ? "pool " : "", address);
  if (!seen_servers_.insert(key).second) {
    return w_.Drop(line, "a duplicate of an earlier line");
  }
  std::vector<std::string> parts = {d == "peer" ? "server" : d, address};
  for (const std::string& o : options) parts.push_back(o);
  const std::string out = absl::StrJoin(parts, " ");
  if (d == "peer") {
    dropped.insert(dropped.begin(),
                   "symmetric mode is not supported: polled as a server "
                   "(client mode), so this node follows the peer but the "
                   "peer no longer follows this node");
  }
  if (dropped.empty() && out == line.Directive()) {
    w_.Keep(line);
  } else {
    w_.Rewrite(line,
               dropped.empty() ? "the same in the agent's syntax"
                               : absl::StrJoin(dropped, "; "),
               {out});
  }
  if (d == "pool") {
    w_.Note(absl::StrCat(
        "the agent polls ONE address of a pool (the first ", host,
        " resolves to), where chrony used up to 4: for several servers write "
        "several `server` lines"));
  }
}

void ChronyImporter::Local(const SourceLine& line) {
  const auto& t = line.tokens;
  int64_t stratum = 10;
  std::vector<std::string> dropped;
  for (size_t i = 1; i < t.size(); ++i) {
    const std::string& o = t[i];
    if (o == "stratum") {
      if (i + 1 >= t.size() || !ParseInt(t[++i], 1, 15, &stratum)) {
        return w_.NotUnderstood(line, "stratum needs 1..15");
      }
    } else if (o == "orphan") {
      dropped.push_back(
          "orphan: no orphan mode; with several servers each serving its "
          "local clock, give only one of them `local`");
    } else if (o == "distance" || o == "activate" || o == "waitsynced" ||
               o == "waitunsynced") {
      if (i + 1 >= t.size()) {
        return w_.NotUnderstood(line, o + " needs a value");
      }
      dropped.push_back(absl::StrCat(
          o, " ", t[++i],
          ": the agent serves its local clock once no upstream is usable and "
          "the holdover on the learned frequency has run out "
          "(docs/ENGINE.md)"));
    } else {
      return w_.NotUnderstood(line,
                              absl::StrCat("unknown local option '", o, "'"));
    }
  }
  if (local_seen_) return w_.Drop(line, "a second `local`; one is used");
  local_seen_ = true;
  std::string why =
      "ntpd's local clock driver at the same stratum: with no usable "
      "upstream the agent serves this node's own clock at it, as `local` did";
  if (!dropped.empty())
    absl::StrAppend(&why, "; ", absl::StrJoin(dropped, "; "));
  w_.Rewrite(line, why,
             {"server 127.127.1.0",
              absl::StrCat("fudge 127.127.1.0 stratum ", stratum)});
}

// allow|deny [all] [SUBNET]: chrony keeps a tree of subnets, the most
// specific one deciding; the same subnet again replaces the earlier setting;
// `all` also clears the settings of every subnet inside it. Collected here,
// written as `restrict` rules in AccessSection().
void ChronyImporter::Access(const SourceLine& line) {
  const auto& t = line.tokens;
  const bool allow = t[0] == "allow";
  size_t i = 1;
  bool all = false;
  if (i < t.size() && t[i] == "all") {
    all = true;
    ++i;
  }
  if (i + 1 < t.size()) return w_.NotUnderstood(line, "one subnet per line");
  std::vector<AccessRule> targets;
  if (i == t.size()) {
    // No subnet: every address of both families.
    AccessRule v4;
    AccessRule v6;
    v6.v6 = true;
    targets = {v4, v6};
  } else {
    std::optional<AccessRule> r = ParseSubnet(t[i]);
    if (!r.has_value()) {
      if (import_internal::IsHostName(t[i])) {
        return w_.Drop(
            line,
            absl::StrCat(
                "a host name: the agent's `restrict` needs an address (chrony "
                "used the first address it resolved to at start); write it",
                allow ? ""
                      : " — until then that host is served if an "
                        "`allow` covers it"));
      }
      return w_.NotUnderstood(line,
                              absl::StrCat("invalid subnet '", t[i], "'"));
    }
    targets = {*r};
  }
  any_access_line_ = true;
  for (AccessRule r : targets) {
    r.allow = allow;
    r.location = line.Location();
    access_.erase(std::remove_if(access_.begin(), access_.end(),
                                 [&](const AccessRule& old) {
                                   const bool same = old.v6 == r.v6 &&
                                                     old.bits == r.bits &&
                                                     old.net == r.net;
                                   return same || (all && Contains(r, old));
                                 }),
                  access_.end());
    access_.push_back(r);
  }
  w_.Rewrite(line,
             "chrony's access rule: written as `restrict` in the access "
             "control section at the end",
             {});
}

void ChronyImporter::Ratelimit(const SourceLine& line) {
  const auto& t = line.tokens;
  std::vector<std::string> differs;
  for (size_t i = 1; i < t.size(); i += 2) {
    if (i + 1 >= t.size()) {
      return w_.NotUnderstood(line, absl::StrCat(t[i], " needs a value"));
    }
    const std::string& o = t[i];
    const std::string& v = t[i + 1];
    int64_t n = 0;
    if (!absl::SimpleAtoi(v, &n)) {
      return w_.NotUnderstood(line, absl::StrCat(o, " needs a number"));
    }
    if (o == "interval") {
      if (n != 3) differs.push_back(absl::StrCat("interval ", v));
    } else if (o == "burst") {
      if (n != 8) differs.push_back(absl::StrCat("burst ", v));
    } else if (o == "leak") {
      differs.push_back(absl::StrCat("leak ", v));
    } else {
      return w_.NotUnderstood(
          line, absl::StrCat("unknown ratelimit option '", o, "'"));
    }
  }
  ratelimit_ = true;
  std::string why =
      "written as `limited` on the allowed rules of the access control "
      "section: ntpd's fixed limit, a bucket of 8 requests refilled one per "
      "8 s (chrony's default interval 3, burst 8), and over it requests are "
      "dropped (chrony lets every 4th through: its leak)";
  if (!differs.empty()) {
    absl::StrAppend(&why, "; not kept: ", absl::StrJoin(differs, ", "));
  }
  w_.Rewrite(line, why, {});
}

void ChronyImporter::Makestep(const SourceLine& line) {
  const auto& t = line.tokens;
  double threshold = 0;
  int64_t limit = 0;
  if (t.size() != 3 || !absl::SimpleAtod(t[1], &threshold) || threshold < 0 ||
      !absl::SimpleAtoi(t[2], &limit)) {
    return w_.NotUnderstood(line, "makestep needs THRESHOLD LIMIT");
  }
  makestep_seen_ = true;
  if (limit < 0) {
    return w_.Rewrite(
        line,
        absl::StrCat("chrony steps above ", t[1],
                     " s at any time: the agent's step threshold (its first "
                     "correction after start steps anything above 1 ms)"),
        {absl::StrCat("tinker step ", FormatSeconds(threshold))});
  }
  w_.Rewrite(
      line,
      absl::StrCat(
          "chrony steps above ", t[1], " s in its first ", limit,
          " clock updates only, then only slews: the agent steps its first "
          "correction after start (anything above 1 ms), and `tinker step 0` "
          "makes it slew every later one, at most 500 ppm (1 s takes ~2000 "
          "s; chrony slewed up to 83 333 ppm). The panic threshold still "
          "applies, see below"),
      {"tinker step 0"});
}

void ChronyImporter::Maxchange(const SourceLine& line) {
  const auto& t = line.tokens;
  double offset = 0;
  if (t.size() != 4 || !absl::SimpleAtod(t[1], &offset)) {
    return w_.NotUnderstood(line, "maxchange needs OFFSET START IGNORE");
  }
  maxchange_seen_ = true;
  if (offset <= 0) {
    return w_.Rewrite(line,
                      "a negative offset: chrony ignores no offset as too "
                      "large; the agent's panic threshold off",
                      {"tinker panic 0"});
  }
  w_.Rewrite(
      line,
      absl::StrCat("the agent's panic threshold: a correction beyond ", t[1],
                   " s is refused (except the first after start and a forced "
                   "`ntpfleetctl sync --step`); where chronyd exits after ",
                   t[3],
                   " such offsets, the agent keeps running, "
                   "unsynchronised, and logs why"),
      {absl::StrCat("tinker panic ", FormatSeconds(offset))});
}

void ChronyImporter::Driftfile(const SourceLine& line) {
  if (line.tokens.size() != 2) {
    return w_.NotUnderstood(line, "driftfile needs a file name");
  }
  w_.Rewrite(
      line,
      absl::StrCat(
          "under the shipped systemd unit the agent may write only under "
          "/var/lib/ntpfleet. chrony's file holds the frequency in ppm with "
          "the OPPOSITE sign (positive: the clock gains) and an error bound; "
          "the agent's is ntpd's, one number with adjtimex's sign. To keep "
          "the learned frequency: awk '{ printf \"%.3f\\n\", -$1; exit }' ",
          line.tokens[1], " > ", import_internal::kAgentDriftFile,
          "; chown ntpfleet: ", import_internal::kAgentDriftFile),
      {absl::StrCat("driftfile ", import_internal::kAgentDriftFile)});
}

void ChronyImporter::Keyfile(const SourceLine& line) {
  if (line.tokens.size() != 2) {
    return w_.NotUnderstood(line, "keyfile needs a file name");
  }
  const std::string& path = line.tokens[1];
  if (o_.keys_out.empty()) {
    if (servers_use_keys_) {
      return w_.Rewrite(
          line,
          absl::StrCat(
              "chrony's key file format (ID TYPE HEX:KEY) is not ntpd's, "
              "and a server here uses a key: the agent does not start until ",
              kDefaultKeysFile,
              " holds it. Convert the file with `ntpfleetctl "
              "import-chrony-conf ... --keys-out ",
              kDefaultKeysFile, "`"),
          {absl::StrCat("keys ", kDefaultKeysFile)});
    }
    return w_.Drop(
        line,
        absl::StrCat("chrony's key file format (ID TYPE HEX:KEY) is not "
                     "ntpd's, and no server here uses a key; to answer "
                     "clients that sign their requests with these keys, "
                     "import again with --keys-out ",
                     kDefaultKeysFile, " (MD5, SHA1 and AES128 keys convert)"));
  }
  absl::StatusOr<std::string> text = files_.Read(path);
  if (!text.ok()) {
    return w_.Rewrite(
        line,
        absl::StrCat(path, " ",
                     import_internal::DescribeReadError(text.status()),
                     " when importing: ", o_.keys_out,
                     " holds no keys (run the import where it can be read)"),
        {absl::StrCat("keys ", o_.keys_out)});
  }
  KeyConversion keys = ConvertChronyKeys(*text, path);
  w_.SetKeys(keys.text);
  std::vector<std::string> out = {absl::StrCat("keys ", o_.keys_out)};
  if (!keys.ids.empty()) {
    std::vector<std::string> ids;
    for (uint32_t id : keys.ids) ids.push_back(absl::StrCat(id));
    out.push_back(absl::StrCat("trustedkey ", absl::StrJoin(ids, " ")));
  }
  w_.Rewrite(
      line,
      absl::StrCat("converted to ntpd's format in ", o_.keys_out, " (",
                   keys.ids.size(),
                   " keys); chrony answers a client signing "
                   "with any of its keys, the agent with a `trustedkey`: all "
                   "are trusted"),
      out);
  for (const std::string& d : keys.dropped)
    w_.Comment(absl::StrCat("dropped: ", d));
}

void ChronyImporter::AccessSection() {
  w_.Blank();
  w_.Comment("--- access control: chrony's allow/deny as `restrict` rules");
  w_.Comment(
      "chrony serves no client unless an `allow` covers it, and then the "
      "most specific");
  w_.Comment(
      "subnet decides; the agent's `restrict` picks the longest matching "
      "prefix too. The agent");
  w_.Comment(
      "opens UDP port 123 even when it answers nobody: packets from an "
      "`ignore`d address are");
  w_.Comment("dropped without an answer (chrony did not open the port).");
  if (!any_access_line_) {
    w_.Comment("There was no `allow`: nobody is served, loopback included.");
  }
  bool v4_allowed = false;
  bool v6_allowed = false;
  for (const AccessRule& r : access_) {
    if (r.bits == 0) (r.v6 ? v6_allowed : v4_allowed) = r.allow;
  }
  const auto flags = [&](bool allowed) -> std::string {
    if (!allowed) return " ignore";
    return ratelimit_ ? " limited" : "";
  };
  if (v4_allowed == v6_allowed) {
    w_.Line(absl::StrCat("restrict default", flags(v4_allowed)));
  } else {
    w_.Line(absl::StrCat("restrict -4 default", flags(v4_allowed)));
    w_.Line(absl::StrCat("restrict -6 default", flags(v6_allowed)));
  }
  for (const AccessRule& r : access_) {
    if (r.bits == 0) continue;
    w_.Line(absl::StrCat(FormatRule(r, ratelimit_), "  # ", r.location));
  }
}

void ChronyImporter::ImpliedSection() {
  if (makestep_seen_ && maxchange_seen_) return;
  w_.Blank();
  w_.Comment("--- what chrony's defaults imply");
  if (!makestep_seen_) {
    w_.Comment(
        "chrony without `makestep` never steps the clock, it slews every "
        "correction. The agent");
    w_.Comment(
        "steps its first correction after start (anything above 1 ms); this "
        "makes it slew every");
    w_.Comment("later one (at most 500 ppm):");
    w_.Line("tinker step 0");
  }
  if (!maxchange_seen_) {
    w_.Comment(
        "chrony without `maxchange` corrects any offset. The agent keeps its "
        "panic threshold,");
    w_.Comment(
        "1000 s (ntpd's): a larger offset after start is refused and logged, "
        "the node shows");
    w_.Comment(
        "unsynchronised, and `ntpfleetctl sync --step` forces it. To correct "
        "any offset instead:");
    w_.Comment("  tinker panic 0");
  }
}

}  // namespace

absl::StatusOr<ImportResult> ImportChronyConf(absl::string_view text,
                                              const ImportOptions& options,
                                              const ImportFiles& files) {
  Flattener flattener(files);
  flattener.File(text, options.source_name, 0, /*sources_only=*/false);
  ChronyImporter importer(options, files, flattener.Take());
  return importer.Run();
}

// ------------------------------------------------------------ keys

KeyConversion ConvertChronyKeys(absl::string_view text,
                                absl::string_view filename) {
  KeyConversion out;
  out.text = absl::StrCat(
      "# ntpd-format keys (KEYID TYPE KEY), converted from chrony's ", filename,
      "\n# by `ntpfleetctl import-chrony-conf --keys-out`. Keep it private: "
      "chown root:ntpfleet; chmod 0640\n");
  int number = 0;
  std::set<uint32_t> seen;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++number;
    const absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#' || line[0] == '!' || line[0] == ';' ||
        line[0] == '%') {
      continue;
    }
    const std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const std::string where = absl::StrCat(filename, ":", number, ": key ");
    auto drop = [&](absl::string_view id, absl::string_view why) {
      out.dropped.push_back(absl::StrCat(where, id, " — ", why));
    };
    if (f.size() < 2 || f.size() > 3) {
      drop("?", "not understood: expected ID [TYPE] KEY");
      continue;
    }
    int64_t id = 0;
    if (!absl::SimpleAtoi(f[0], &id) || id < 1 || id > 4294967295LL) {
      drop(f[0], "not understood: the id is not a number");
      continue;
    }
    if (id > 65535) {
      drop(f[0], "ntpd's keys file holds ids up to 65535");
      continue;
    }
    const std::string type =
        f.size() == 3 ? absl::AsciiStrToUpper(f[1]) : std::string("MD5");
    std::string ntp_type;
    if (type == "MD5") {
      ntp_type = "MD5";
    } else if (type == "SHA1") {
      ntp_type = "SHA1";
    } else if (type == "AES128") {
      ntp_type = "AES128CMAC";  // chrony's AES128 is AES-CMAC (RFC 4493)
    } else {
      drop(f[0], absl::StrCat("type ", type,
                              " is not supported by the agent (MD5, SHA1, "
                              "AES128 CMAC)"));
      continue;
    }
    absl::string_view key = f.back();
    std::string secret;
    if (absl::StartsWith(key, "HEX:")) {
      const absl::string_view hex = key.substr(4);
      const bool ok =
          !hex.empty() && hex.size() % 2 == 0 &&
          std::all_of(hex.begin(), hex.end(), [](char c) {
            return absl::ascii_isxdigit(static_cast<unsigned char>(c));
          });
      if (!ok) {
        drop(f[0], "not understood: HEX: key is not hex");
        continue;
      }
      secret = absl::HexStringToBytes(hex);
    } else {
      if (absl::StartsWith(key, "ASCII:")) key.remove_prefix(6);
      secret = std::string(key);
    }
    if (secret.empty()) {
      drop(f[0], "not understood: empty key");
      continue;
    }
    if (ntp_type == "AES128CMAC" && secret.size() != 16) {
      drop(f[0], "an AES128 key must be 16 octets");
      continue;
    }
    // ntpd reads a key of up to 20 characters as ASCII, a longer one as hex:
    // write hex when that is longer than 20 digits, else ASCII when the
    // octets are printable (no blank, no '#').
    std::string written;
    if (secret.size() * 2 > 20) {
      written = absl::AsciiStrToUpper(absl::BytesToHexString(secret));
    } else if (std::all_of(secret.begin(), secret.end(), [](char c) {
                 return c > ' ' && c < 127 && c != '#';
               })) {
      written = secret;
    } else {
      drop(f[0],
           "a key of 10 octets or fewer with a blank, '#' or a non-printable "
           "octet cannot be written in ntpd's format");
      continue;
    }
    if (!seen.insert(static_cast<uint32_t>(id)).second) {
      drop(f[0], "a duplicate id");
      continue;
    }
    out.ids.push_back(static_cast<uint32_t>(id));
    absl::StrAppend(&out.text, id, " ", ntp_type, " ", written, "\n");
  }
  return out;
}

}  // namespace ntpfleet::ctl
