// `ntpfleetctl certs init|issue`: the fleet's CA and its certificates in a
// directory (common/certs), with the messages and exit codes of a command.
#ifndef NTPFLEET_CTL_CMD_CERTS_H_
#define NTPFLEET_CTL_CMD_CERTS_H_

#include <optional>
#include <string>
#include <vector>

namespace ntpfleet::ctl {

struct CertsOptions {
  std::string dir;          // --dir: where ca.pem/ca.key and the leaves live
  std::string node;         // --node NAME
  std::string user;         // --user NAME
  std::string role;         // --role viewer|operator|admin (with --user)
  std::string controller;   // --controller HOST[,HOST...] as given (no default)
  std::optional<int> days;  // --days; default 3650 (CA) or 825 (leaves)
};

// `args` are the words after `certs`: {"init"} or {"issue"}. Returns 0 when
// the files were written, 1 on an error, 2 on a usage error (printed to
// stderr); prints what was written and the next step to stdout.
int RunCerts(const std::vector<std::string>& args, const CertsOptions& o);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_CMD_CERTS_H_
