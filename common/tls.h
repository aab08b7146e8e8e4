// TLS for ntpfleet's gRPC connections, mutual and fail-closed: one place that
// turns certificate, key and CA file paths into gRPC credentials for the
// controller (server) and for agents and ntpfleetctl (clients).
//
// - All three files or none: a certificate without a CA, a key without a
//   certificate, ... is an error naming what is missing, never plain text.
// - Every file must be readable and parse (PEM); the key must match the
//   certificate. Errors name the file and the fix.
// - The server requires and verifies a client certificate signed by the CA;
//   clients verify the controller's certificate against the CA only (never
//   the system's public roots).
// - Files are re-read when they change (checked every `refresh`), so rotating
//   a certificate needs no restart; a rotated file that does not parse is
//   ignored (the old one stays in use) and logged.
//
//   TlsFiles files{"/etc/ntpfleet/tls/web-01.pem", ".../web-01.key",
//                  "/etc/ntpfleet/tls/ca.pem"};
//   absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> c =
//       ClientCredentials(files);
#ifndef NTPFLEET_COMMON_TLS_H_
#define NTPFLEET_COMMON_TLS_H_

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/certs.h"
#include "common/identity.h"

namespace ntpfleet {

struct TlsFiles {
  std::string cert;  // PEM certificate (chain) of this side
  std::string key;   // PEM private key of `cert`
  std::string ca;    // PEM CA that signed the other side's certificate
  absl::Duration refresh = absl::Seconds(30);  // re-read files this often

  bool empty() const { return cert.empty() && key.empty() && ca.empty(); }
};

// OK when all three files are given, readable, parse, and the key matches the
// certificate; otherwise InvalidArgument naming the flag/file and the fix
// (also when none is given: callers choose plaintext with files.empty()
// before). `what` names the settings in messages, cert/key/ca in that order,
// e.g. "--tls-cert/--tls-key/--tls-ca" or "agent.conf tls_cert/tls_key/tls_ca"
// (a prefix before a space is repeated for the three).
absl::Status CheckTlsFiles(const TlsFiles& files, const std::string& what);

// The controller's credentials: its certificate, and client certificates
// required and verified against files.ca. Checks first (CheckTlsFiles).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& files, const std::string& what);

// A client's credentials (agent, ntpfleetctl): its certificate, and the
// controller's verified against files.ca and the dialled host name. Checks
// first (CheckTlsFiles).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const TlsFiles& files, const std::string& what);

// --- In memory, for tests --------------------------------------------------
// As above from PEM strings that never change (no files, no refresh, no
// checks beyond gRPC's own). `own` may be empty for a client (no client
// certificate: a server of ServerCredentials refuses it).
std::shared_ptr<grpc::ServerCredentials> ServerCredentialsFromPem(
    const KeyCert& own, const std::string& ca_pem);
std::shared_ptr<grpc::ChannelCredentials> ClientCredentialsFromPem(
    const KeyCert& own, const std::string& ca_pem);

// --- Who called --------------------------------------------------------------
// The identity in the peer's verified certificate (the "x509_pem_cert"
// property gRPC's TLS puts in the call's AuthContext).
// Unauthenticated "no client certificate" on a plaintext or certificate-less
// connection; InvalidArgument (IdentityFromPem) when the certificate carries
// no valid ntpfleet identity.
//
//   absl::StatusOr<Identity> who = PeerIdentity(*context->auth_context());
absl::StatusOr<Identity> PeerIdentity(const grpc::AuthContext& auth);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_TLS_H_
