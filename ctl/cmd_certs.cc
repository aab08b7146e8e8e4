// `ntpfleetctl certs init --dir DIR [--days 3650]` and `ntpfleetctl certs issue
// --dir DIR --node NAME | --user NAME --role ROLE | --controller HOST[,HOST...]
// [--days 825]`: see cmd_certs.h and common/certs.h.
#include "ctl/cmd_certs.h"

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/certs.h"
#include "common/identity.h"

namespace ntpfleet::ctl {
namespace {

constexpr int kCaDays = 3650;
constexpr int kLeafDays = 825;
constexpr int kMaxDays = 36500;  // a century: beyond it is surely a typo
// Certificates start an hour in the past: the clocks of the machines they
// are for may lag this one (which is why they run ntpfleet).
constexpr absl::Duration kBackdate = absl::Hours(1);

constexpr char kUsage[] =
    "usage: ntpfleetctl certs init --dir DIR [--days 3650]\n"
    "       ntpfleetctl certs issue --dir DIR --node NAME | --user NAME --role "
    "viewer|operator|admin | --controller HOST[,HOST...] [--days 825]";

int Usage(const std::string& message) {
  std::fprintf(stderr, "ntpfleetctl certs: %s\n%s\n", message.c_str(), kUsage);
  return 2;
}

int Error(const absl::Status& status) {
  std::fprintf(stderr, "ntpfleetctl certs: %s\n",
               std::string(status.message()).c_str());
  return 1;
}

// --days, or `fallback`; nullopt (after printing a usage error) when bad.
std::optional<int> Days(const CertsOptions& o, int fallback) {
  const int days = o.days.value_or(fallback);
  if (days < 1 || days > kMaxDays) return std::nullopt;
  return days;
}

int Init(const CertsOptions& o) {
  if (!o.node.empty() || !o.user.empty() || !o.role.empty() ||
      !o.controller.empty()) {
    return Usage(
        "--node, --user, --role and --controller are for `certs issue`; "
        "`certs init` makes only the CA");
  }
  const std::optional<int> days = Days(o, kCaDays);
  if (!days) {
    return Usage("--days must be a whole number of days from 1 to 36500");
  }
  if (absl::Status s = InitCaDir(o.dir, absl::Hours(24) * *days); !s.ok()) {
    return Error(s);
  }
  std::printf(
      "CA for %d days: %s/ca.pem (give it to every node, user and the "
      "controller) and %s/ca.key (keep it here, private: it signs "
      "certificates)\n"
      "next: ntpfleetctl certs issue --dir %s --controller HOST[,HOST...], "
      "then --node NAME for each node and --user NAME --role ROLE for each "
      "person\n",
      *days, o.dir.c_str(), o.dir.c_str(), o.dir.c_str());
  return 0;
}

int Issue(const CertsOptions& o) {
  const int kinds = (o.node.empty() ? 0 : 1) + (o.user.empty() ? 0 : 1) +
                    (o.controller.empty() ? 0 : 1);
  if (kinds != 1) {
    return Usage(
        "give exactly one of --node NAME, --user NAME --role ROLE or "
        "--controller HOST[,HOST...]");
  }
  if (!o.role.empty() && o.user.empty()) {
    return Usage("--role is for --user certificates");
  }
  const std::optional<int> days = Days(o, kLeafDays);
  if (!days) {
    return Usage("--days must be a whole number of days from 1 to 36500");
  }
  CertSpec spec;
  const absl::Time now = absl::Now();
  spec.not_before = now - kBackdate;
  spec.not_after = now + absl::Hours(24) * *days;
  if (!o.node.empty()) {
    spec.kind = Identity::Kind::kNode;
    spec.name = o.node;
  } else if (!o.user.empty()) {
    spec.kind = Identity::Kind::kUser;
    spec.name = o.user;
    if (o.role.empty()) {
      return Usage(
          "--user needs --role viewer, operator or admin (viewer: read "
          "only; operator: also resync; admin: everything)");
    }
    absl::StatusOr<Role> role = ParseRole(o.role);
    if (!role.ok()) return Usage(std::string(role.status().message()));
    spec.role = *role;
  } else {
    spec.kind = Identity::Kind::kController;
    for (absl::string_view host : absl::StrSplit(o.controller, ',')) {
      host = absl::StripAsciiWhitespace(host);
      if (host.empty()) {
        return Usage("--controller: an empty host name in `" + o.controller +
                     "`");
      }
      spec.hosts.emplace_back(host);
    }
  }
  if (absl::Status s = ValidateCertSpec(spec); !s.ok()) {
    return Usage(std::string(s.message()));
  }
  absl::StatusOr<std::string> pem = IssueToDir(o.dir, spec);
  if (!pem.ok()) return Error(pem.status());
  const std::string stem = CertFileStem(spec);
  const std::string key = o.dir + "/" + stem + ".key";
  switch (spec.kind) {
    case Identity::Kind::kNode:
      std::printf(
          "node certificate for %s, %d days: %s, %s (copy both and ca.pem "
          "to the node's /etc/ntpfleet/tls/)\n",
          spec.name.c_str(), *days, pem->c_str(), key.c_str());
      break;
    case Identity::Kind::kUser:
      std::printf(
          "user certificate for %s (%s), %d days: %s, %s (give both and "
          "ca.pem to %s, for ntpfleetctl --tls-cert %s.pem --tls-key %s.key "
          "--tls-ca ca.pem)\n",
          spec.name.c_str(), std::string(RoleName(spec.role)).c_str(), *days,
          pem->c_str(), key.c_str(), spec.name.c_str(), stem.c_str(),
          stem.c_str());
      break;
    case Identity::Kind::kController:
      std::printf(
          "controller certificate for %s, %d days: %s, %s (copy both and "
          "ca.pem to the controller's /etc/ntpfleet/tls/; clients must dial "
          "one of these names)\n",
          absl::StrJoin(spec.hosts, ", ").c_str(), *days, pem->c_str(),
          key.c_str());
      break;
  }
  return 0;
}

}  // namespace

int RunCerts(const std::vector<std::string>& args, const CertsOptions& o) {
  if (args.size() != 1 || (args[0] != "init" && args[0] != "issue")) {
    return Usage("`certs` takes `init` or `issue`");
  }
  if (o.dir.empty()) {
    return Usage(
        "--dir DIR is required: the directory that holds (or will "
        "hold) the CA");
  }
  return args[0] == "init" ? Init(o) : Issue(o);
}

}  // namespace ntpfleet::ctl
