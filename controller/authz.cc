#include "controller/authz.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/tls.h"

namespace ntpfleet::controller {
namespace {

Role Needed(Permission p) {
  switch (p) {
    case Permission::kView:
      return Role::kViewer;
    case Permission::kResync:
      return Role::kOperator;
    case Permission::kResyncAll:
    case Permission::kForce:
    case Permission::kForget:
      return Role::kAdmin;
  }
  return Role::kAdmin;  // unreachable: every enumerator is handled above
}

// What the refusal message says the caller tried.
const char* Doing(Permission p) {
  switch (p) {
    case Permission::kView:
      return "reading the fleet";
    case Permission::kResync:
      return "resync";
    case Permission::kResyncAll:
      return "resync --all";
    case Permission::kForce:
      return "--force (a step beyond the operator limit)";
    case Permission::kForget:
      return "forget";
  }
  return "this";
}

}  // namespace

const char* PermissionName(Permission p) {
  switch (p) {
    case Permission::kView:
      return "view";
    case Permission::kResync:
      return "resync";
    case Permission::kResyncAll:
      return "resync_all";
    case Permission::kForce:
      return "force";
    case Permission::kForget:
      return "forget";
  }
  return "unknown";
}

std::string Caller::ToString() const {
  if (!authenticated) return absl::StrCat("unauthenticated ", peer);
  return identity.ToString();
}

absl::Status CheckPermission(const Identity& identity, Permission p) {
  const Role needed = Needed(p);
  switch (identity.kind) {
    case Identity::Kind::kNode:
      return absl::PermissionDeniedError(absl::StrCat(
          identity.ToString(), " is a node certificate: it may only report as ",
          identity.name, "; ", Doing(p), " needs a user certificate with role ",
          RoleName(needed),
          " or higher (ntpfleetctl certs issue --user NAME --role ",
          RoleName(needed), ")"));
    case Identity::Kind::kController:
      return absl::PermissionDeniedError(
          absl::StrCat(identity.ToString(),
                       " is a controller's server certificate, not a user's; ",
                       Doing(p), " needs a user certificate with role ",
                       RoleName(needed), " or higher"));
    case Identity::Kind::kUser:
      break;
  }
  if (identity.role >= needed) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      Doing(p), " needs role ", RoleName(needed), "; ", identity.ToString(),
      " has ", RoleName(identity.role),
      " (an admin can issue another certificate: ntpfleetctl certs issue "
      "--user ",
      identity.name, " --role ", RoleName(needed), ")"));
}

absl::Status CheckReportAs(const Identity& identity,
                           const std::string& node_name) {
  if (identity.kind != Identity::Kind::kNode) {
    return absl::PermissionDeniedError(absl::StrCat(
        identity.ToString(),
        " is not a node certificate: only a node's own certificate may "
        "report its status (ntpfleetctl certs issue --node ",
        node_name.empty() ? "NAME" : node_name, ")"));
  }
  if (identity.name != node_name) {
    return absl::PermissionDeniedError(
        absl::StrCat("the certificate of node ", identity.name,
                     " cannot report as node ", node_name,
                     ": an agent reports under the name in its certificate "
                     "(set node_name ",
                     identity.name,
                     " in its config, or issue a certificate "
                     "for ",
                     node_name, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Caller> Authorizer::Identify(const grpc::AuthContext* auth,
                                            const std::string& peer,
                                            const char* method) {
  Caller caller;
  caller.peer = peer;
  if (!tls_) return caller;
  if (auth == nullptr) {
    return Refused(absl::UnauthenticatedError(
                       "no TLS peer: this controller requires mutual TLS"),
                   peer, method);
  }
  absl::StatusOr<Identity> identity = PeerIdentity(*auth);
  if (!identity.ok()) {
    return Refused(absl::UnauthenticatedError(absl::StrCat(
                       "the client certificate carries no ntpfleet identity (",
                       identity.status().message(),
                       "); use a certificate from `ntpfleetctl certs issue`")),
                   peer, method);
  }
  caller.authenticated = true;
  caller.identity = *std::move(identity);
  return caller;
}

absl::Status Authorizer::Allow(const Caller& caller, Permission p,
                               const char* method) {
  if (!caller.authenticated) return absl::OkStatus();  // no TLS: trusted
  absl::Status s = CheckPermission(caller.identity, p);
  if (s.ok()) return s;
  return Refused(std::move(s), caller.ToString(), method);
}

absl::Status Authorizer::AllowReportAs(const Caller& caller,
                                       const std::string& node_name) {
  if (!caller.authenticated) return absl::OkStatus();
  absl::Status s = CheckReportAs(caller.identity, node_name);
  if (s.ok()) return s;
  return Refused(std::move(s), caller.ToString(), "Connect");
}

absl::Status Authorizer::Refused(absl::Status status, const std::string& who,
                                 const char* method) {
  const char* reason =
      absl::IsUnauthenticated(status) ? "unauthenticated" : "permission_denied";
  {
    absl::MutexLock lock(&mu_);
    ++refused_[absl::StrCat(method, "/", reason)];
  }
  Log(LogLevel::kWarning, "refused %s from %s: %s", method, who,
      status.message());
  return status;
}

std::map<std::string, uint64_t> Authorizer::Counters() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

}  // namespace ntpfleet::controller
