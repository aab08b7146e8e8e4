// `ntpfleetctl import-ntp-conf FILE` and `ntpfleetctl import-chrony-conf
// FILE`: an ntpd or chrony configuration turned into an agent configuration
// (ctl/import_conf.h), printed or written atomically to --out-file.
#ifndef NTPFLEET_CTL_CMD_IMPORT_H_
#define NTPFLEET_CTL_CMD_IMPORT_H_

#include <string>
#include <vector>

namespace ntpfleet::ctl {

struct ImportCommandOptions {
  std::string controller;  // --controller HOST:PORT as given (no default)
  std::string tls_dir;     // --tls-dir DIR (with --controller)
  std::string output;      // --out-file FILE; empty: stdout
  std::string keys_out;    // --keys-out FILE (chrony only)
  // --root DIR: read the files the configuration names (includes, confdir,
  // keyfile...) under DIR, as from another machine's image; the output keeps
  // the paths as written.
  std::string root;
};

// `command` is "import-ntp-conf" or "import-chrony-conf"; `args` the words
// after it (one: FILE). Returns 0 when the configuration was printed or
// written, 1 on an error (FILE unreadable, the output not writable), 2 on a
// usage error; every message goes to stderr, with a summary of what was
// kept, rewritten and dropped, and each line that was not understood.
int RunImport(const std::string& command, const std::vector<std::string>& args,
              const ImportCommandOptions& o);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_CMD_IMPORT_H_
