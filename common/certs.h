// ntpfleet's own certificate authority: makes a CA and issues the node, user
// and controller certificates whose identities common/identity.h reads, with
// OpenSSL 3's library. In memory (tests) and in a directory (`ntpfleetctl
// certs init|issue`).
//
// Keys are EC P-256, signatures SHA-256, serials 128 random bits.
//   CA:     basicConstraints critical CA:TRUE; keyUsage critical keyCertSign,
//           cRLSign; subjectKeyIdentifier.
//   leaves: basicConstraints critical CA:FALSE; keyUsage critical
//           digitalSignature; extendedKeyUsage clientAuth (node, user) or
//           serverAuth (controller); subject and authority key identifiers;
//           the subjectAltNames of identity.h. CN = the name.
//
//   absl::StatusOr<KeyCert> ca = MakeCa("ntpfleet CA", now, now + year);
//   absl::StatusOr<KeyCert> web = IssueCert(
//       *ca, {Identity::Kind::kNode, "web-01", Role::kNone, {}, now, end});
//
// Thread-safety: the functions share no state; the directory functions are
// safe against each other only in that they never overwrite a file (a second
// writer of the same name fails).
#ifndef NTPFLEET_COMMON_CERTS_H_
#define NTPFLEET_COMMON_CERTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/identity.h"

namespace ntpfleet {

// A private key and its certificate, both PEM (the key PKCS#8, unencrypted).
struct KeyCert {
  std::string key_pem;
  std::string cert_pem;
};

// What to issue.
struct CertSpec {
  Identity::Kind kind = Identity::Kind::kNode;
  std::string name;         // node or user name; ignored for the controller
  Role role = Role::kNone;  // users only (and required for them)
  // Controller only, at least one: the DNS names and IP addresses (v4 or v6)
  // clients dial; the first is its name. E.g. {"localhost", "127.0.0.1"}.
  std::vector<std::string> hosts;
  absl::Time not_before;  // validity, not_after > not_before
  absl::Time not_after;
};

// A self-signed CA named `name` (its CN).
absl::StatusOr<KeyCert> MakeCa(const std::string& name, absl::Time not_before,
                               absl::Time not_after);

// OK when `spec` can be issued; InvalidArgument naming what is wrong.
absl::Status ValidateCertSpec(const CertSpec& spec);

// A new key and a certificate for it signed by `ca`. InvalidArgument for a
// bad spec or a CA that does not parse, is not a CA, or whose key does not
// match. A validity in the past is allowed (tests of expiry).
absl::StatusOr<KeyCert> IssueCert(const KeyCert& ca, const CertSpec& spec);

// --- In a directory -------------------------------------------------------
// Every file is written atomically (a temporary file in the same directory,
// fsync, link to its name, fsync of the directory) and never over an
// existing one.

// Makes DIR/ca.key (0600) and DIR/ca.pem (0644), valid from an hour ago
// (clocks this tool is for may lag) for `validity`; creates DIR (0700) if
// missing. FailedPrecondition if either file exists.
absl::Status InitCaDir(const std::string& dir, absl::Duration validity);

// Issues `spec` with DIR's CA into DIR/NAME.key (0600) and DIR/NAME.pem
// (0644), NAME being the node or user name or the controller's first host;
// returns the .pem path. FailedPrecondition if either exists or DIR has no
// CA (saying to run `ntpfleetctl certs init --dir DIR` first).
absl::StatusOr<std::string> IssueToDir(const std::string& dir,
                                       const CertSpec& spec);

// The file name stem IssueToDir uses for `spec` ("web-01", "localhost").
std::string CertFileStem(const CertSpec& spec);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_CERTS_H_
