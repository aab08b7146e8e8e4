// What both importers share: splitting lines, the output writer, addresses,
// the header and the controller section. See import_conf.h.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/hostport.h"
#include "ctl/import_internal.h"
#include "ctl/printable.h"

namespace ntpfleet::ctl::import_internal {

std::string SourceLine::Location() const {
  return absl::StrCat(file, ":", line);
}

std::string SourceLine::Directive() const {
  std::vector<std::string> quoted;
  quoted.reserve(tokens.size());
  for (const std::string& t : tokens) {
    // A token with a blank or '#' in it came from a quoted string.
    const bool needs_quotes =
        t.empty() || t.find_first_of(" \t#") != std::string::npos;
    quoted.push_back(needs_quotes ? absl::StrCat("\"", t, "\"") : t);
  }
  return absl::StrJoin(quoted, " ");
}

// ---------------------------------------------------------------- Writer

void Writer::Line(absl::string_view directive) {
  absl::StrAppend(&out_, directive, "\n");
  last_blank_ = false;
}

namespace {

// Printable (ctl/printable) but for tabs, which source comments use to align
// columns: a source's other control characters (a CR, an escape sequence)
// must not reach the operator's terminal through a comment.
std::string PrintableComment(absl::string_view text) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(text, '\t'))
    parts.push_back(Printable(part));
  return absl::StrJoin(parts, "\t");
}

}  // namespace

void Writer::Comment(absl::string_view text) {
  if (text.empty()) {
    out_ += "#\n";
  } else {
    absl::StrAppend(&out_, "# ", PrintableComment(text), "\n");
  }
  last_blank_ = false;
}

void Writer::Verbatim(absl::string_view text) {
  if (absl::StripAsciiWhitespace(text).empty()) {
    Blank();
    return;
  }
  absl::StrAppend(&out_, PrintableComment(text), "\n");
  last_blank_ = false;
}

void Writer::Blank() {
  if (last_blank_) return;
  out_ += "\n";
  last_blank_ = true;
}

void Writer::Keep(const SourceLine& line) {
  Line(absl::StripAsciiWhitespace(line.text));
  ++result_.kept;
}

void Writer::Rewrite(const SourceLine& line, absl::string_view why,
                     const std::vector<std::string>& directives) {
  Comment(absl::StrCat("was: ", line.Location(), ": ", line.Directive(), " — ",
                       why));
  for (size_t i = 0; i < directives.size(); ++i) {
    if (i == 0 && !line.trailing_comment.empty()) {
      Line(absl::StrCat(directives[i], "  #", line.trailing_comment));
    } else {
      Line(directives[i]);
    }
  }
  ++result_.rewritten;
}

void Writer::Drop(const SourceLine& line, absl::string_view why) {
  DropShown(line, line.Directive(), why);
}

void Writer::DropShown(const SourceLine& line, absl::string_view shown,
                       absl::string_view why) {
  Comment(absl::StrCat("dropped: ", line.Location(), ": ", shown, " — ", why));
  ++result_.dropped;
}

void Writer::NotUnderstood(const SourceLine& line, absl::string_view why) {
  const std::string what = absl::StrCat("not understood: ", why);
  Drop(line, what);
  result_.not_understood.push_back(PrintableComment(
      absl::StrCat(line.Location(), ": ", line.Directive(), " — ", what)));
}

void Writer::Note(absl::string_view text) {
  Comment(absl::StrCat("note: ", text));
}

ImportResult Writer::Finish() {
  // One newline at the end, not a blank line.
  while (absl::EndsWith(out_, "\n\n")) out_.pop_back();
  result_.config = std::move(out_);
  return std::move(result_);
}

// ---------------------------------------------------------------- lines

std::vector<SourceLine> SplitLines(absl::string_view text,
                                   absl::string_view file, bool ntp_style) {
  std::vector<SourceLine> lines;
  int number = 0;
  // A final newline does not start another line.
  if (absl::EndsWith(text, "\n")) text.remove_suffix(1);
  if (text.empty()) return lines;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++number;
    while (absl::EndsWith(raw, "\r")) raw.remove_suffix(1);
    SourceLine line;
    line.file = std::string(file);
    line.line = number;
    line.text = std::string(raw);
    const absl::string_view stripped = absl::StripLeadingAsciiWhitespace(raw);
    if (!ntp_style) {
      if (stripped.empty() || stripped[0] == '#' || stripped[0] == '!' ||
          stripped[0] == ';' || stripped[0] == '%') {
        lines.push_back(std::move(line));
        continue;
      }
      for (absl::string_view t : absl::StrSplit(
               stripped, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
        line.tokens.emplace_back(t);
      }
      lines.push_back(std::move(line));
      continue;
    }
    // ntpd: '#' ends the line's tokens; "quoted strings" are one token.
    size_t i = 0;
    const absl::string_view s = raw;
    while (i < s.size()) {
      const char c = s[i];
      if (c == ' ' || c == '\t') {
        ++i;
      } else if (c == '#') {
        if (!line.tokens.empty()) {
          line.trailing_comment = std::string(s.substr(i + 1));
        }
        break;
      } else if (c == '"') {
        size_t end = s.find('"', i + 1);
        if (end == absl::string_view::npos) end = s.size();
        line.tokens.emplace_back(s.substr(i + 1, end - i - 1));
        i = end + 1;
      } else {
        size_t end = i;
        while (end < s.size() && s[end] != ' ' && s[end] != '\t' &&
               s[end] != '#') {
          ++end;
        }
        line.tokens.emplace_back(s.substr(i, end - i));
        i = end;
      }
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

// ---------------------------------------------------------------- addresses

std::optional<IpAddress> ParseIp(absl::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string s(text);
  if (s.find('\0') != std::string::npos) return std::nullopt;
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) return ip;
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
    ip.v6 = true;
    return ip;
  }
  return std::nullopt;
}

std::string FormatIp(const IpAddress& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.bytes.data(), buf, sizeof(buf));
  return buf;
}

bool IsHostName(absl::string_view s) { return ntpfleet::IsHostName(s); }

bool IsServerHost(absl::string_view s) {
  return ParseIp(s).has_value() || IsHostName(s);
}

std::string JoinToDirOf(absl::string_view including_file,
                        absl::string_view path) {
  if (absl::StartsWith(path, "/")) return std::string(path);
  const size_t slash = including_file.rfind('/');
  if (slash == absl::string_view::npos) return std::string(path);
  return absl::StrCat(including_file.substr(0, slash + 1), path);
}

std::string DescribeReadError(const absl::Status& status) {
  if (absl::IsNotFound(status)) return "not found";
  if (absl::IsPermissionDenied(status)) {
    return absl::StrCat("cannot be read (", status.message(), ")");
  }
  return std::string(status.message());
}

// ---------------------------------------------------------------- sections

void WriteHeader(Writer& w, absl::string_view kind, absl::string_view command,
                 const ImportOptions& o) {
  w.Comment(absl::StrCat("ntpfleet-agent configuration, imported from the ",
                         kind, " configuration ", o.source_name));
  w.Comment(absl::StrCat("by `ntpfleetctl ", command, "`. Every directive of ",
                         o.source_name, " (and of the files it"));
  w.Comment(
      "includes) is below, in order: kept as written, rewritten under a "
      "`# was:` comment,");
  w.Comment(
      "or commented out as `# dropped: FILE:LINE: <line> — <why>`. The "
      "source's own comments");
  w.Comment("are kept. Check it before use:");
  w.Comment(
      "  ntpfleet-agent --check-config --config /etc/ntpfleet/agent.conf");
  w.Comment("(docs/AGENT.md describes every directive.)");
  w.Blank();
}

void WriteControllerSection(Writer& w, const ImportOptions& o) {
  if (o.controller.empty()) return;
  w.Blank();
  w.Comment("--- ntpfleet: report to the fleet's controller (--controller)");
  w.Line(absl::StrCat("controller ", o.controller));
  if (!o.tls_dir.empty()) {
    std::string dir = o.tls_dir;
    while (dir.size() > 1 && absl::EndsWith(dir, "/")) dir.pop_back();
    w.Comment(
        "Mutual TLS (docs/SECURITY.md): this node's certificate (`ntpfleetctl "
        "certs issue --node NAME`,");
    w.Comment("NAME = this node's name), its key, and the fleet's CA.");
    w.Line(absl::StrCat("tls_cert ", dir, "/node.pem"));
    w.Line(absl::StrCat("tls_key ", dir, "/node.key"));
    w.Line(absl::StrCat("tls_ca ", dir, "/ca.pem"));
  } else {
    w.Comment(
        "No TLS lines (no --tls-dir): the agent reports in plain text, which "
        "only a controller on");
    w.Comment(
        "loopback or started with --insecure accepts. For mutual TLS add "
        "(docs/SECURITY.md):");
    w.Comment("  tls_cert /etc/ntpfleet/tls/node.pem");
    w.Comment("  tls_key /etc/ntpfleet/tls/node.key");
    w.Comment("  tls_ca /etc/ntpfleet/tls/ca.pem");
  }
}

}  // namespace ntpfleet::ctl::import_internal
