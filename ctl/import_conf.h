// Turning an ntpd ntp.conf or a chrony chrony.conf into an ntpfleet-agent
// configuration (`ntpfleetctl import-ntp-conf` / `import-chrony-conf`).
//
// Pure: the text of the main file comes in as a string, and every other file
// it names (ntpd's `includefile`; chrony's `include`, `confdir`, `sourcedir`,
// `keyfile`) is read through an injected ImportFiles, so tests need no files.
//
//   DiskFiles files;  // (cmd_import.cc) or a map in tests
//   ImportOptions o;
//   o.source_name = "/etc/chrony/chrony.conf";
//   o.controller = "192.168.242.51:7123";
//   absl::StatusOr<ImportResult> r = ImportChronyConf(text, o, files);
//   std::cout << r->config;  // what the agent reads; see below
//
// The output keeps the source's order and its comments. Every directive line
// of the source (and of what it includes) ends up in exactly one of three
// forms, so nothing is dropped silently:
//   - kept as written (the agent reads ntp.conf syntax and means the same);
//   - rewritten, under a comment `# was: FILE:LINE: <original> — <why>`
//     (chrony's `local stratum 10` becomes `server 127.127.1.0` + `fudge`;
//     a drift file moves to /var/lib/ntpfleet/drift);
//   - commented out as `# dropped: FILE:LINE: <original> — <why>`, for what
//     the agent does not do (statistics, chronyc access, RTC tracking...) and
//     for lines the importer does not understand (also listed in
//     ImportResult::not_understood, for the command to print).
// What applies to the whole file comes after the source's lines, in sections
// of its own: chrony's allow/deny as `restrict` rules, the step/panic
// settings chrony implies, the `controller` and TLS lines. The output has no
// date or host name in it: the same input gives the same bytes.
//
// Secrets are never copied into comments: a dropped `crypto pw` line and key
// material show as <redacted>.
//
// Thread safety: the functions are pure and safe to call concurrently with an
// ImportFiles that is.
#ifndef NTPFLEET_CTL_IMPORT_CONF_H_
#define NTPFLEET_CTL_IMPORT_CONF_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ntpfleet::ctl {

// Where the importer reads the files a configuration names. Paths are as the
// configuration writes them (absolute, or already joined to the including
// file's directory).
class ImportFiles {
 public:
  virtual ~ImportFiles() = default;
  // The contents of a file. NotFound / PermissionDenied are reported in the
  // output as such; other errors too, with their message.
  virtual absl::StatusOr<std::string> Read(const std::string& path) const = 0;
  // The names (not paths) of the entries of a directory, in any order.
  virtual absl::StatusOr<std::vector<std::string>> List(
      const std::string& path) const = 0;
};

struct ImportOptions {
  // The source file as the user named it: shown in the header and in every
  // `FILE:LINE` of the main file.
  std::string source_name;
  // `controller HOST:PORT` to add (empty: none). Checked by the caller.
  std::string controller;
  // With `controller`: the directory holding the node's certificate, key and
  // the fleet's CA as `node.pem`, `node.key`, `ca.pem` (the names
  // deploy/examples use). Empty: no TLS lines, a comment says what to add.
  std::string tls_dir;
  // chrony only: where the converted keys file will be written (the command
  // writes ImportResult::keys there). Empty: the chrony key file is not
  // converted and a comment says how.
  std::string keys_out;
};

struct ImportResult {
  std::string config;  // the agent's configuration
  // chrony with `keys_out`: the converted keys file, in ntpd's format (empty
  // otherwise). It holds secrets: the command writes it mode 0640, group
  // ntpfleet (the agent's user reads it), or 0600 without that group.
  std::string keys;
  // "FILE:LINE: <line> — <why>" for each line the importer did not understand
  // (also in `config` as a `# dropped:` comment).
  std::vector<std::string> not_understood;
  int kept = 0;       // directive lines kept as written
  int rewritten = 0;  // directive lines rewritten (`# was:`)
  int dropped = 0;    // directive lines dropped (`# dropped:`), all reasons
};

// An ntpd (4.2.6 .. 4.2.8, NTPsec) ntp.conf. `includefile`s are read through
// `files` and inlined between `# begin includefile` / `# end` comments (a
// missing or unreadable one is dropped, saying why, as ntpd skips it).
absl::StatusOr<ImportResult> ImportNtpConf(absl::string_view text,
                                           const ImportOptions& options,
                                           const ImportFiles& files);

// A chrony (3.x, 4.x) chrony.conf. `include`, `confdir` and `sourcedir` are
// followed through `files` (their *.conf / *.sources files inlined in chrony's
// order); `keyfile` is converted when ImportOptions::keys_out is set.
absl::StatusOr<ImportResult> ImportChronyConf(absl::string_view text,
                                              const ImportOptions& options,
                                              const ImportFiles& files);

// A chrony key file ("ID [TYPE] [ASCII:|HEX:]KEY" per line) in ntpd's keys
// format ("ID TYPE KEY"): MD5, SHA1 and AES128 (CMAC) keys with ids up to
// 65535; every other line is reported in `dropped` ("FILE:LINE: why", the key
// itself never shown).
struct KeyConversion {
  std::string text;           // the ntp.keys file
  std::vector<uint32_t> ids;  // the converted key ids, in file order
  std::vector<std::string> dropped;
};
KeyConversion ConvertChronyKeys(absl::string_view text,
                                absl::string_view filename);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_IMPORT_CONF_H_
