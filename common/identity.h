// Who a TLS peer is, from its certificate: the identities `ntpfleetctl certs`
// issues and the controller authorises by (docs/SECURITY.md).
//
// An ntpfleet certificate carries its identity as URI subject alternative
// names:
//   node        URI:ntpfleet:node:NAME                  (clientAuth)
//   user        URI:ntpfleet:user:NAME, URI:ntpfleet:role:ROLE  (clientAuth)
//   controller  URI:ntpfleet:controller, DNS:/IP: names clients dial
//               (serverAuth)
// and the name again as its subject CN, for people reading it with openssl.
//
//   absl::StatusOr<Identity> who = IdentityFromPem(pem);
//   if (who.ok() && who->kind == Identity::Kind::kUser &&
//       who->role >= Role::kOperator) { ... }
//
// Thread-safety: pure functions.
#ifndef NTPFLEET_COMMON_IDENTITY_H_
#define NTPFLEET_COMMON_IDENTITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/node_name.h"

namespace ntpfleet {

// A person's role; ordered: each includes what the ones before it may do.
enum class Role { kNone = 0, kViewer = 1, kOperator = 2, kAdmin = 3 };

// "viewer", "operator", "admin" (and "none").
absl::string_view RoleName(Role role);
// The inverse; InvalidArgument naming the three roles otherwise.
absl::StatusOr<Role> ParseRole(absl::string_view name);

struct Identity {
  enum class Kind { kNode, kUser, kController };
  Kind kind = Kind::kUser;
  std::string name;         // node name, user name, or the first host name
  Role role = Role::kNone;  // users only

  // For logs and the audit: "node:web-01", "user:alice (operator)",
  // "controller:ctl.example".
  std::string ToString() const;
};

// The identity in a PEM certificate (the first certificate of `pem`).
// InvalidArgument when it does not parse, has no ntpfleet identity, or more
// than one (a node and a user URI in one certificate, two roles, ...). Does
// NOT verify the certificate: the TLS handshake did that.
absl::StatusOr<Identity> IdentityFromPem(absl::string_view pem);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_IDENTITY_H_
