// `ntpfleetctl import-ntp-conf FILE` / `import-chrony-conf FILE`: the file IO
// around ctl/import_conf (reading FILE and what it names, writing --out-file
// and
// --keys-out atomically) and the messages. See cmd_import.h.
#include "ctl/cmd_import.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/hostport.h"
#include "common/local_users.h"
#include "ctl/import_conf.h"
#include "ctl/printable.h"

namespace ntpfleet::ctl {
namespace {

// A configuration (or key) file is a few KiB; anything this large is not one.
constexpr size_t kMaxFileBytes = 1 << 20;

absl::Status ErrnoStatus(int err, const std::string& message) {
  const std::string text = absl::StrCat(message, ": ", std::strerror(err));
  if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(text);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(text);
  return absl::UnavailableError(text);
}

// A configuration or key file, whole; a FIFO or device is refused, not waited
// on (common/files).
absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  return ReadFile(path, kMaxFileBytes);
}

// The files a configuration names, read from disk (under --root if given).
class DiskFiles : public ImportFiles {
 public:
  explicit DiskFiles(std::string root) : root_(std::move(root)) {
    while (absl::EndsWith(root_, "/")) root_.pop_back();
  }
  absl::StatusOr<std::string> Read(const std::string& path) const override {
    return ReadWhole(Under(path));
  }
  absl::StatusOr<std::vector<std::string>> List(
      const std::string& path) const override {
    const std::string dir = Under(path);
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus(errno, dir);
    std::vector<std::string> names;
    while (const dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(d);
    return names;
  }

 private:
  std::string Under(const std::string& path) const {
    if (root_.empty() || !absl::StartsWith(path, "/")) return path;
    return root_ + path;
  }
  std::string root_;
};

}  // namespace

int RunImport(const std::string& command, const std::vector<std::string>& args,
              const ImportCommandOptions& o) {
  const bool chrony = command == "import-chrony-conf";
  const std::string usage = absl::StrCat(
      "usage: ntpfleetctl ", command,
      " FILE [--controller HOST:PORT [--tls-dir DIR]] [--out-file FILE]",
      chrony ? " [--keys-out FILE]" : "", " [--root DIR]");
  auto usage_error = [&](const std::string& message) {
    std::fprintf(stderr, "ntpfleetctl %s: %s\n%s\n", command.c_str(),
                 message.c_str(), usage.c_str());
    return 2;
  };
  if (args.size() != 1) {
    return usage_error(args.empty() ? "which file? give the configuration "
                                      "to import"
                                    : "one file at a time");
  }
  if (!o.controller.empty()) {
    absl::StatusOr<HostPort> hp = ParseHostPort(o.controller, "--controller");
    if (!hp.ok()) return usage_error(std::string(hp.status().message()));
  }
  if (!o.tls_dir.empty() && o.controller.empty()) {
    return usage_error("--tls-dir goes with --controller (TLS is for it)");
  }
  if (!o.keys_out.empty() && !chrony) {
    return usage_error(
        "--keys-out is for import-chrony-conf: ntpd's keys file is read by "
        "the agent as it is");
  }
  if (!o.keys_out.empty() && o.keys_out == o.output) {
    return usage_error("--keys-out and --out-file must be different files");
  }
  const std::string& file = args[0];
  absl::StatusOr<std::string> text = ReadWhole(file);
  if (!text.ok()) {
    std::fprintf(stderr, "ntpfleetctl %s: cannot read %s\n", command.c_str(),
                 std::string(text.status().message()).c_str());
    return 1;
  }

  DiskFiles files(o.root);
  ImportOptions options;
  options.source_name = file;
  options.controller = o.controller;
  options.tls_dir = o.tls_dir;
  options.keys_out = o.keys_out;
  absl::StatusOr<ImportResult> result =
      chrony ? ImportChronyConf(*text, options, files)
             : ImportNtpConf(*text, options, files);
  if (!result.ok()) {
    std::fprintf(stderr, "ntpfleetctl %s: %s\n", command.c_str(),
                 std::string(result.status().message()).c_str());
    return 1;
  }
  for (const std::string& line : result->not_understood) {
    std::fprintf(stderr, "ntpfleetctl %s: warning: %s\n", command.c_str(),
                 Printable(line).c_str());
  }
  if (!o.keys_out.empty()) {
    // Secrets: root and the agent's group only (0640 root:ntpfleet), as the
    // agent runs as user ntpfleet under its unit; 0600 until that group exists.
    const std::optional<gid_t> group = LocalUsers::Read().GroupId("ntpfleet");
    if (absl::Status s =
            WriteFileAtomically(o.keys_out, result->keys, group ? 0640 : 0600);
        !s.ok()) {
      std::fprintf(stderr, "ntpfleetctl %s: %s\n", command.c_str(),
                   std::string(s.message()).c_str());
      return 1;
    }
    if (!group ||
        chown(o.keys_out.c_str(), static_cast<uid_t>(-1), *group) != 0) {
      std::fprintf(stderr,
                   "ntpfleetctl %s: warning: %s is readable by its owner only; "
                   "the agent (user ntpfleet) must read it: chgrp ntpfleet %s "
                   "&& chmod 0640 %s\n",
                   command.c_str(), o.keys_out.c_str(), o.keys_out.c_str(),
                   o.keys_out.c_str());
    }
  }
  if (o.output.empty()) {
    std::fwrite(result->config.data(), 1, result->config.size(), stdout);
    if (std::fflush(stdout) != 0) {
      std::fprintf(stderr, "ntpfleetctl %s: cannot write to stdout: %s\n",
                   command.c_str(), std::strerror(errno));
      return 1;
    }
  } else if (absl::Status s =
                 WriteFileAtomically(o.output, result->config, 0644);
             !s.ok()) {
    std::fprintf(stderr, "ntpfleetctl %s: %s\n", command.c_str(),
                 std::string(s.message()).c_str());
    return 1;
  }
  std::string summary = absl::StrCat(
      "ntpfleetctl ", command, ": ", file, ": ", result->kept,
      " directives kept, ", result->rewritten, " rewritten, ", result->dropped,
      " dropped (see the `# was:` and `# dropped:` comments)");
  if (!result->not_understood.empty()) {
    absl::StrAppend(&summary, ", ", result->not_understood.size(),
                    " of them not understood (above)");
  }
  if (!o.output.empty()) absl::StrAppend(&summary, "; wrote ", o.output);
  if (!o.keys_out.empty()) {
    absl::StrAppend(&summary, " and the keys to ", o.keys_out);
  }
  absl::StrAppend(&summary,
                  "; check it: ntpfleet-agent --check-config --config ",
                  o.output.empty() ? "FILE" : o.output, "\n");
  std::fputs(summary.c_str(), stderr);
  return 0;
}

}  // namespace ntpfleet::ctl
