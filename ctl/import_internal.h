// What import_ntp.cc and import_chrony.cc share: the lines of a source file
// with their locations, and the writer of the agent's configuration. Internal
// to the //ctl:import_conf library.
#ifndef NTPFLEET_CTL_IMPORT_INTERNAL_H_
#define NTPFLEET_CTL_IMPORT_INTERNAL_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ctl/import_conf.h"

namespace ntpfleet::ctl::import_internal {

// One line of a source file.
struct SourceLine {
  std::string file;  // as named in the configuration (or the source's name)
  int line = 0;      // 1-based
  std::string text;  // without the newline and a trailing '\r'
  // Its directive and arguments; empty for a blank or comment-only line.
  std::vector<std::string> tokens;
  // A comment after the directive ("# main server"), without the '#'; empty
  // when none. ntpd allows them; chrony does not (see the chrony tokenizer).
  std::string trailing_comment;
  // "FILE:LINE".
  std::string Location() const;
  // The directive as written, without a trailing comment, with single
  // spaces: "server 192.168.242.51 iburst".
  std::string Directive() const;
};

// The agent's configuration being written, with the counts of ImportResult.
class Writer {
 public:
  // A directive line of the output, as the agent reads it.
  void Line(absl::string_view directive);
  // A comment line: "# " + text ("#" alone when empty).
  void Comment(absl::string_view text);
  // A source comment or blank line, verbatim.
  void Verbatim(absl::string_view text);
  void Blank();
  // The source line is kept as written (its trailing comment too).
  void Keep(const SourceLine& line);
  // The source line is replaced by `directives` (none: it only moved into a
  // section of the output): "# was: FILE:LINE: <original> — <why>" first.
  void Rewrite(const SourceLine& line, absl::string_view why,
               const std::vector<std::string>& directives);
  // "# dropped: FILE:LINE: <original> — <why>".
  void Drop(const SourceLine& line, absl::string_view why);
  // The same for a line with a secret in it: `shown` replaces the original.
  void DropShown(const SourceLine& line, absl::string_view shown,
                 absl::string_view why);
  // A line the importer does not understand: dropped, and listed.
  void NotUnderstood(const SourceLine& line, absl::string_view why);
  // "# note: <text>", about the line that follows or precedes.
  void Note(absl::string_view text);

  // The converted keys file (chrony with --keys-out).
  void SetKeys(std::string keys) { result_.keys = std::move(keys); }

  ImportResult Finish();

 private:
  std::string out_;
  bool last_blank_ = true;  // no blank line at the top, no two in a row
  ImportResult result_;
};

// Splits `text` into SourceLines of `file`. ntpd's rules (`ntp_style`): '#'
// starts a comment anywhere, a token may be "double quoted". chrony's: a line
// whose first non-blank character is '#', '!', ';' or '%' is a comment; the
// rest of a line is tokens separated by blanks.
std::vector<SourceLine> SplitLines(absl::string_view text,
                                   absl::string_view file, bool ntp_style);

// IPv4 or IPv6 address parsing.
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};
};
std::optional<IpAddress> ParseIp(absl::string_view text);
// "192.168.0.0", "2001:db8::".
std::string FormatIp(const IpAddress& ip);
// A DNS host name: letters, digits, '-', '.', '_', not starting with '-'.
bool IsHostName(absl::string_view s);
// The host part of a server address is a name or an address the agent
// accepts (see common/config's server syntax).
bool IsServerHost(absl::string_view s);
// `path` joined to the directory of `including_file` when relative.
std::string JoinToDirOf(absl::string_view including_file,
                        absl::string_view path);
// A message for a failed ImportFiles call: "not found", "permission denied
// (...)".
std::string DescribeReadError(const absl::Status& status);

// The agent's fixed drift file path: the shipped systemd unit lets it write
// only under /var/lib/ntpfleet (StateDirectory=ntpfleet).
inline constexpr char kAgentDriftFile[] = "/var/lib/ntpfleet/drift";

// The header of the output, and the sections every import ends with (the
// controller and its TLS lines).
void WriteHeader(Writer& w, absl::string_view kind, absl::string_view command,
                 const ImportOptions& o);
void WriteControllerSection(Writer& w, const ImportOptions& o);

}  // namespace ntpfleet::ctl::import_internal

#endif  // NTPFLEET_CTL_IMPORT_INTERNAL_H_
