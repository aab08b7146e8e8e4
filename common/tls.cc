// Mutual, fail-closed TLS credentials for ntpfleet's gRPC connections, with
// gRPC 1.51's experimental TLS API (see tls.h).
//
// Host names: gRPC 1.51 installs a HostNameCertificateVerifier on the client
// when none is set (tls_credentials.cc, CredentialOptionSanityCheck); we set
// one explicitly all the same, so that a controller certificate that does not
// name the dialled host (DNS: or IP: subjectAltName) is refused whatever a
// later gRPC defaults to. The CA verification itself is OpenSSL's, against
// the CA file only (watch_root_certs: never the system's roots).
#include "common/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ntpfleet {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

// Larger than any certificate chain, key or CA bundle we make.
constexpr size_t kMaxPemBytes = 1 << 20;

// The three settings' names in messages: "--tls-cert/--tls-key/--tls-ca" ->
// {"--tls-cert", "--tls-key", "--tls-ca"}; "agent.conf tls_cert/tls_key/tls_ca"
// -> {"agent.conf tls_cert", "agent.conf tls_key", "agent.conf tls_ca"}.
std::array<std::string, 3> SettingNames(const std::string& what) {
  std::vector<std::string> parts = absl::StrSplit(what, '/');
  if (parts.size() != 3) {
    return {absl::StrCat(what, " (certificate)"), absl::StrCat(what, " (key)"),
            absl::StrCat(what, " (CA)")};
  }
  const size_t space = parts[0].rfind(' ');
  if (space != std::string::npos) {
    const std::string prefix = parts[0].substr(0, space + 1);
    parts[1] = prefix + parts[1];
    parts[2] = prefix + parts[2];
  }
  return {parts[0], parts[1], parts[2]};
}

// The whole file, or InvalidArgument "SETTING: cannot read PATH: REASON".
absl::StatusOr<std::string> ReadPem(const std::string& setting,
                                    const std::string& path) {
  absl::StatusOr<std::string> data = ReadFile(path, kMaxPemBytes);
  if (!data.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(setting, ": ", data.status().message()));
  }
  return data;
}

// The first certificate in `pem` and how many there are; nullptr when none
// parses or any block after the first fails to.
X509Ptr FirstCert(const std::string& pem, int* count) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr first;
  *count = 0;
  if (bio == nullptr) return first;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (first == nullptr) {
      first.reset(x);
    } else {
      X509_free(x);
    }
    ++*count;
  }
  // The loop ends at the end of the data (PEM_R_NO_START_LINE) or at a block
  // that does not parse.
  const unsigned long err = ERR_peek_last_error();
  const bool clean_end = ERR_GET_LIB(err) == ERR_LIB_PEM &&
                         ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  ERR_clear_error();
  if (*count > 0 && !clean_end) first.reset();
  return first;
}

std::string Fix() { return "make them with `ntpfleetctl certs`"; }

}  // namespace

absl::Status CheckTlsFiles(const TlsFiles& files, const std::string& what) {
  const std::array<std::string, 3> names = SettingNames(what);
  const std::array<const std::string*, 3> paths = {&files.cert, &files.key,
                                                   &files.ca};
  std::vector<std::string> given, missing;
  for (int i = 0; i < 3; ++i) {
    (paths[i]->empty() ? missing : given).push_back(names[i]);
  }
  if (given.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "no TLS files given: mutual TLS needs %s, %s and %s; %s", names[0],
        names[1], names[2], Fix()));
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s given without %s: mutual TLS needs all three; %s",
        absl::StrJoin(given, " and "), absl::StrJoin(missing, " and "), Fix()));
  }

  absl::StatusOr<std::string> cert_pem = ReadPem(names[0], files.cert);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = ReadPem(names[1], files.key);
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<std::string> ca_pem = ReadPem(names[2], files.ca);
  if (!ca_pem.ok()) return ca_pem.status();

  int count = 0;
  X509Ptr cert = FirstCert(*cert_pem, &count);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s is not a PEM certificate (chain): give the .pem that "
        "`ntpfleetctl certs issue` wrote",
        names[0], files.cert));
  }
  BioPtr bio(
      BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
  KeyPtr key(bio == nullptr ? nullptr
                            : PEM_read_bio_PrivateKey(bio.get(), nullptr,
                                                      nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s is not an unencrypted PEM private key: give the .key that "
        "`ntpfleetctl certs issue` wrote next to %s",
        names[1], files.key, files.cert));
  }
  int ca_count = 0;
  if (FirstCert(*ca_pem, &ca_count) == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s is not a PEM CA certificate: give the fleet's ca.pem "
        "(`ntpfleetctl certs init` made it)",
        names[2], files.ca));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: the key in %s does not belong to the certificate in %s (%s): "
        "give the pair `ntpfleetctl certs issue` wrote together",
        names[1], files.key, files.cert, names[0]));
  }
  return absl::OkStatus();
}

namespace {

unsigned int RefreshSeconds(absl::Duration refresh) {
  // gRPC re-reads at whole seconds, at least 1.
  return static_cast<unsigned int>(
      std::max<int64_t>(1, absl::ToInt64Seconds(refresh)));
}

std::shared_ptr<grpc::ServerCredentials> ServerFromProvider(
    std::shared_ptr<grpc::experimental::CertificateProviderInterface>
        provider) {
  grpc::experimental::TlsServerCredentialsOptions options(std::move(provider));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ClientFromProvider(
    std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider,
    bool has_identity) {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(std::move(provider));
  options.watch_root_certs();  // only the CA's: never the system's roots
  if (has_identity) options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& files, const std::string& what) {
  if (absl::Status s = CheckTlsFiles(files, what); !s.ok()) return s;
  std::shared_ptr<grpc::ServerCredentials> creds = ServerFromProvider(
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          files.key, files.cert, files.ca, RefreshSeconds(files.refresh)));
  if (creds == nullptr) {
    return absl::InternalError(
        absl::StrCat("gRPC refused the TLS server settings ", what));
  }
  return creds;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const TlsFiles& files, const std::string& what) {
  if (absl::Status s = CheckTlsFiles(files, what); !s.ok()) return s;
  std::shared_ptr<grpc::ChannelCredentials> creds = ClientFromProvider(
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          files.key, files.cert, files.ca, RefreshSeconds(files.refresh)),
      /*has_identity=*/true);
  if (creds == nullptr) {
    return absl::InternalError(
        absl::StrCat("gRPC refused the TLS client settings ", what));
  }
  return creds;
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentialsFromPem(
    const KeyCert& own, const std::string& ca_pem) {
  return ServerFromProvider(
      std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
          ca_pem, std::vector<grpc::experimental::IdentityKeyCertPair>{
                      {own.key_pem, own.cert_pem}}));
}

std::shared_ptr<grpc::ChannelCredentials> ClientCredentialsFromPem(
    const KeyCert& own, const std::string& ca_pem) {
  const bool has_identity = !own.cert_pem.empty();
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs;
  if (has_identity) pairs.push_back({own.key_pem, own.cert_pem});
  return ClientFromProvider(
      std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
          ca_pem, pairs),
      has_identity);
}

absl::StatusOr<Identity> PeerIdentity(const grpc::AuthContext& auth) {
  const std::vector<grpc::string_ref> pems =
      auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pems.empty() || pems[0].empty()) {
    return absl::UnauthenticatedError(
        "no client certificate: connect with mutual TLS (--tls-cert, "
        "--tls-key, --tls-ca)");
  }
  return IdentityFromPem(absl::string_view(pems[0].data(), pems[0].size()));
}

}  // namespace ntpfleet
