// Who may call what on the controller: every gRPC call is identified by the
// caller's certificate (common/identity.h) and allowed only what that identity
// may do (proto/ntpfleet.proto, "Who may call what"; docs/SECURITY.md):
//
// clang-format off
//   node certificate   AgentService.Connect, as its own node only
//   viewer             GetFleet, WatchFleet, GetNode, History, Audit,
//                      Crosscheck
//   operator           also Resync of named or labelled nodes, stepping up
//                      to the operator limit
//   admin              also Resync --all, steps beyond the limit (force),
//                      Forget
// clang-format on
//
// Without TLS (a controller on loopback, or started with --insecure) nobody
// can be identified: every caller is then trusted as an admin and any node,
// named by its address in logs and the audit. That mode is announced at start
// and on /metrics (ntpfleet_controller_insecure 1).
//
//   Authorizer authz(/*tls=*/true);
//   absl::StatusOr<Caller> caller = authz.Identify(*context->auth_context(),
//                                                  context->peer());
//   absl::Status ok = authz.Allow(*caller, Permission::kResync);
//
// Refusals are UNAUTHENTICATED (no usable identity) or PERMISSION_DENIED (an
// identity that may not do this), with a message saying what is missing; each
// is logged and counted (Counters(), for /metrics).
//
// Thread-safety: thread-safe.
#ifndef NTPFLEET_CONTROLLER_AUTHZ_H_
#define NTPFLEET_CONTROLLER_AUTHZ_H_

#include <grpcpp/security/auth_context.h>

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/identity.h"

namespace ntpfleet::controller {

enum class Permission {
  kView,       // GetFleet, WatchFleet, GetNode, History, Audit, Crosscheck
  kResync,     // Resync of named or labelled nodes, within the step limit
  kResyncAll,  // Resync --all
  kForce,      // a step beyond the operator limit
  kForget,     // Forget
};

// "view", "resync", ... for messages and metrics.
const char* PermissionName(Permission p);

struct Caller {
  // False without TLS: nobody is identified, everybody is trusted.
  bool authenticated = false;
  Identity identity;  // when authenticated
  std::string peer;   // gRPC's address of the caller, e.g. "ipv4:10.0.0.7:5123"

  // For logs and the audit: "user:alice (operator)", or
  // "unauthenticated ipv4:127.0.0.1:5123" without TLS.
  std::string ToString() const;
};

// The pure rules: whether `identity` may do `p`. OK, or PermissionDenied
// saying which role it needs and which it has.
absl::Status CheckPermission(const Identity& identity, Permission p);

// Whether a node certificate's `identity` may send a Hello naming
// `node_name`: only a node certificate, and only for its own name.
absl::Status CheckReportAs(const Identity& identity,
                           const std::string& node_name);

class Authorizer {
 public:
  explicit Authorizer(bool tls) : tls_(tls) {}

  // The caller of a call whose TLS handshake succeeded (gRPC verified the
  // chain to the CA and the validity dates); Unauthenticated when TLS is on
  // and the certificate carries no ntpfleet identity.
  absl::StatusOr<Caller> Identify(const grpc::AuthContext* auth,
                                  const std::string& peer, const char* method);
  // OK, or PermissionDenied (logged and counted against `method`).
  absl::Status Allow(const Caller& caller, Permission p, const char* method);
  absl::Status AllowReportAs(const Caller& caller,
                             const std::string& node_name);

  // Refused calls by "method/reason" (reason: unauthenticated,
  // permission_denied).
  std::map<std::string, uint64_t> Counters() const;

 private:
  absl::Status Refused(absl::Status status, const std::string& who,
                       const char* method);

  const bool tls_;
  mutable absl::Mutex mu_;
  std::map<std::string, uint64_t> refused_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ntpfleet::controller

#endif  // NTPFLEET_CONTROLLER_AUTHZ_H_
