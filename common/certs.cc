// ntpfleet's certificate authority with OpenSSL 3's library (see certs.h).
#include "common/certs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/files.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/node_name.h"

namespace ntpfleet {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
template <typename T, void (*F)(T*)>
using Ptr = std::unique_ptr<T, Deleter<T, F>>;

void FreeBio(BIO* b) { BIO_free(b); }
using BioPtr = Ptr<BIO, FreeBio>;
using X509Ptr = Ptr<X509, X509_free>;
using KeyPtr = Ptr<EVP_PKEY, EVP_PKEY_free>;
using ExtPtr = Ptr<X509_EXTENSION, X509_EXTENSION_free>;
using BnPtr = Ptr<BIGNUM, BN_free>;
using NamesPtr = Ptr<GENERAL_NAMES, GENERAL_NAMES_free>;

// The OpenSSL error queue as text (and emptied).
std::string OpensslErrors() {
  std::string text;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

absl::Status OpensslError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", OpensslErrors()));
}

bool IsIpAddress(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

absl::StatusOr<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      !PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                nullptr)) {
    return OpensslError("cannot encode the private key");
  }
  char* data;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || !PEM_write_bio_X509(bio.get(), cert)) {
    return OpensslError("cannot encode the certificate");
  }
  char* data;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<KeyPtr> NewKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpensslError("cannot make an EC P-256 key");
  return key;
}

// A certificate with version 3, a random positive 128-bit serial, the
// validity, CN = `cn` as subject and `key` as public key; no issuer yet.
absl::StatusOr<X509Ptr> NewCert(const std::string& cn, absl::Time not_before,
                                absl::Time not_after, EVP_PKEY* key) {
  X509Ptr cert(X509_new());
  if (cert == nullptr) return OpensslError("cannot make a certificate");
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) {
    return OpensslError("cannot draw a random serial");
  }
  serial[0] &= 0x7f;  // positive
  serial[0] |= 0x40;  // and a full 127 bits: never zero
  BnPtr bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  if (bn == nullptr ||
      BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) ==
          nullptr ||
      !X509_set_version(cert.get(), X509_VERSION_3) ||
      ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                    absl::ToTimeT(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(not_after)) ==
          nullptr ||
      !X509_set_pubkey(cert.get(), key)) {
    return OpensslError("cannot fill in the certificate");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (!X509_NAME_add_entry_by_NID(
          subject, NID_commonName, MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(cn.data()),
          static_cast<int>(cn.size()), -1, 0)) {
    return OpensslError("cannot set the certificate's subject");
  }
  return cert;
}

// Adds extension `nid` = `value` (openssl.cnf syntax) in `ctx`.
absl::Status AddExt(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (ext == nullptr || !X509_add_ext(cert, ext.get(), -1)) {
    return OpensslError(absl::StrCat("cannot add the extension ",
                                     OBJ_nid2sn(nid), " = ", value));
  }
  return absl::OkStatus();
}

absl::Status AddName(GENERAL_NAMES* names, int type, const std::string& text) {
  GENERAL_NAME* name = GENERAL_NAME_new();
  if (name == nullptr) return OpensslError("cannot make a subjectAltName");
  if (type == GEN_IPADD) {
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(text.c_str());
    if (ip == nullptr) {
      GENERAL_NAME_free(name);
      return absl::InvalidArgumentError(
          absl::StrFormat("`%s` is not an IP address", text));
    }
    GENERAL_NAME_set0_value(name, GEN_IPADD, ip);
  } else {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (s == nullptr ||
        !ASN1_STRING_set(s, text.data(), static_cast<int>(text.size()))) {
      ASN1_IA5STRING_free(s);
      GENERAL_NAME_free(name);
      return OpensslError("cannot make a subjectAltName");
    }
    GENERAL_NAME_set0_value(name, type, s);
  }
  if (!sk_GENERAL_NAME_push(names, name)) {
    GENERAL_NAME_free(name);
    return OpensslError("cannot make a subjectAltName");
  }
  return absl::OkStatus();
}

absl::Status AddSubjectAltNames(X509* cert, const CertSpec& spec) {
  NamesPtr names(GENERAL_NAMES_new());
  if (names == nullptr) return OpensslError("cannot make subjectAltNames");
  absl::Status s;
  switch (spec.kind) {
    case Identity::Kind::kNode:
      s = AddName(names.get(), GEN_URI, "ntpfleet:node:" + spec.name);
      break;
    case Identity::Kind::kUser:
      s = AddName(names.get(), GEN_URI, "ntpfleet:user:" + spec.name);
      if (s.ok()) {
        s = AddName(names.get(), GEN_URI,
                    absl::StrCat("ntpfleet:role:", RoleName(spec.role)));
      }
      break;
    case Identity::Kind::kController:
      for (const std::string& host : spec.hosts) {
        s = AddName(names.get(), IsIpAddress(host) ? GEN_IPADD : GEN_DNS, host);
        if (!s.ok()) break;
      }
      if (s.ok()) s = AddName(names.get(), GEN_URI, "ntpfleet:controller");
      break;
  }
  if (!s.ok()) return s;
  if (!X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0,
                         X509V3_ADD_DEFAULT)) {
    return OpensslError("cannot add the subjectAltNames");
  }
  return absl::OkStatus();
}

absl::StatusOr<KeyPtr> ParseKey(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  KeyPtr key(bio == nullptr ? nullptr
                            : PEM_read_bio_PrivateKey(bio.get(), nullptr,
                                                      nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError("the CA key is not a PEM private key");
  }
  return key;
}

absl::StatusOr<X509Ptr> ParseCert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(bio == nullptr
                   ? nullptr
                   : PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        "the CA certificate is not a PEM X.509 certificate");
  }
  return cert;
}

std::string ErrnoText(int err) { return strerror(err); }

absl::Status FsyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(absl::StrFormat("cannot open %s to sync it: %s",
                                               dir, ErrnoText(errno)));
  }
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrFormat("cannot sync %s: %s", dir, ErrnoText(err)));
  }
  return absl::OkStatus();
}

// Writes `contents` to DIR/NAME with `mode`, atomically and never over an
// existing file (FailedPrecondition then).
absl::Status WriteNewFile(const std::string& dir, const std::string& name,
                          const std::string& contents, mode_t mode) {
  const std::string path = dir + "/" + name;
  std::string temp = absl::StrCat(dir, "/.", name, ".tmp.XXXXXX");
  const int fd = mkstemp(temp.data());
  if (fd < 0) {
    return absl::InternalError(absl::StrFormat("cannot create a file in %s: %s",
                                               dir, ErrnoText(errno)));
  }
  auto fail = [&](const std::string& what, int err) {
    close(fd);
    unlink(temp.c_str());
    return absl::InternalError(
        absl::StrFormat("cannot %s %s: %s", what, temp, ErrnoText(err)));
  };
  if (fchmod(fd, mode) != 0) return fail("set the mode of", errno);
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write", n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("sync", errno);
  if (close(fd) != 0) {
    const int err = errno;
    unlink(temp.c_str());
    return absl::InternalError(
        absl::StrFormat("cannot write %s: %s", temp, ErrnoText(err)));
  }
  // link() fails with EEXIST instead of replacing, unlike rename().
  if (link(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(temp.c_str());
    if (err == EEXIST) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s already exists: not overwriting it (remove it first if you "
          "mean to replace it)",
          path));
    }
    return absl::InternalError(
        absl::StrFormat("cannot create %s: %s", path, ErrnoText(err)));
  }
  unlink(temp.c_str());
  return FsyncDir(dir);
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// Writes DIR/STEM.key and DIR/STEM.pem, the key first; removes the key again
// when the certificate cannot be written.
absl::Status WritePair(const std::string& dir, const std::string& stem,
                       const KeyCert& kc) {
  absl::Status s = WriteNewFile(dir, stem + ".key", kc.key_pem, 0600);
  if (!s.ok()) return s;
  s = WriteNewFile(dir, stem + ".pem", kc.cert_pem, 0644);
  if (!s.ok()) {
    unlink((dir + "/" + stem + ".key").c_str());
    FsyncDir(dir).IgnoreError();
  }
  return s;
}


// Signs `x` with `signer` (SHA-256) and returns `key` and `x` as PEM.
absl::StatusOr<KeyCert> SignAndEncode(X509* x, EVP_PKEY* signer, EVP_PKEY* key,
                                      const char* what) {
  if (!X509_sign(x, signer, EVP_sha256())) {
    return OpensslError(absl::StrCat("cannot sign ", what));
  }
  KeyCert out;
  absl::StatusOr<std::string> key_pem = KeyToPem(key);
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<std::string> cert_pem = CertToPem(x);
  if (!cert_pem.ok()) return cert_pem.status();
  out.key_pem = *std::move(key_pem);
  out.cert_pem = *std::move(cert_pem);
  return out;
}

}  // namespace

absl::StatusOr<KeyCert> MakeCa(const std::string& name, absl::Time not_before,
                               absl::Time not_after) {
  if (name.empty()) return absl::InvalidArgumentError("the CA needs a name");
  if (not_after <= not_before) {
    return absl::InvalidArgumentError(
        "the CA's validity ends before it starts");
  }
  absl::StatusOr<KeyPtr> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<X509Ptr> cert =
      NewCert(name, not_before, not_after, key->get());
  if (!cert.ok()) return cert.status();
  X509* x = cert->get();
  if (!X509_set_issuer_name(x, X509_get_subject_name(x))) {
    return OpensslError("cannot set the CA's issuer");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : std::vector<std::pair<int, const char*>>{
           {NID_basic_constraints, "critical,CA:TRUE"},
           {NID_key_usage, "critical,keyCertSign,cRLSign"},
           {NID_subject_key_identifier, "hash"},
       }) {
    if (absl::Status s = AddExt(x, &ctx, nid, value); !s.ok()) return s;
  }
  return SignAndEncode(x, key->get(), key->get(), "the CA certificate");
}

absl::Status ValidateCertSpec(const CertSpec& spec) {
  if (spec.not_after <= spec.not_before) {
    return absl::InvalidArgumentError(
        "the certificate's validity ends before it starts");
  }
  if (spec.kind == Identity::Kind::kController) {
    if (spec.hosts.empty()) {
      return absl::InvalidArgumentError(
          "a controller certificate needs the host names or IP addresses "
          "clients dial (--controller HOST[,HOST...])");
    }
    if (spec.role != Role::kNone) {
      return absl::InvalidArgumentError("roles are for user certificates");
    }
    for (const std::string& host : spec.hosts) {
      if (!IsIpAddress(host) && !IsValidNodeName(host)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "`%s` is neither a DNS name nor an IP address", host));
      }
    }
    return absl::OkStatus();
  }
  const char* what = spec.kind == Identity::Kind::kNode ? "node" : "user";
  if (!IsValidNodeName(spec.name)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "`%s` is not a valid %s name: 1..253 bytes of DNS-like labels of "
        "[A-Za-z0-9_-] separated by '.'",
        spec.name, what));
  }
  if (spec.name == "ca") {
    return absl::InvalidArgumentError(
        "`ca` is reserved for the CA's own files (ca.pem, ca.key): choose "
        "another name");
  }
  if (!spec.hosts.empty()) {
    return absl::InvalidArgumentError(
        "host names are for the controller's certificate");
  }
  if (spec.kind == Identity::Kind::kNode && spec.role != Role::kNone) {
    return absl::InvalidArgumentError(
        "roles are for user certificates, not nodes");
  }
  if (spec.kind == Identity::Kind::kUser && spec.role == Role::kNone) {
    return absl::InvalidArgumentError(
        "a user certificate needs a role: viewer, operator or admin");
  }
  return absl::OkStatus();
}

absl::StatusOr<KeyCert> IssueCert(const KeyCert& ca, const CertSpec& spec) {
  if (absl::Status s = ValidateCertSpec(spec); !s.ok()) return s;
  absl::StatusOr<KeyPtr> ca_key = ParseKey(ca.key_pem);
  if (!ca_key.ok()) return ca_key.status();
  absl::StatusOr<X509Ptr> ca_cert = ParseCert(ca.cert_pem);
  if (!ca_cert.ok()) return ca_cert.status();
  if (X509_check_ca(ca_cert->get()) == 0) {
    return absl::InvalidArgumentError("the CA certificate is not a CA's");
  }
  if (X509_check_private_key(ca_cert->get(), ca_key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "the CA key does not belong to the CA certificate");
  }

  absl::StatusOr<KeyPtr> key = NewKey();
  if (!key.ok()) return key.status();
  const std::string cn = CertFileStem(spec);
  absl::StatusOr<X509Ptr> cert =
      NewCert(cn, spec.not_before, spec.not_after, key->get());
  if (!cert.ok()) return cert.status();
  X509* x = cert->get();
  if (!X509_set_issuer_name(x, X509_get_subject_name(ca_cert->get()))) {
    return OpensslError("cannot set the certificate's issuer");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert->get(), x, nullptr, nullptr, 0);
  const char* eku =
      spec.kind == Identity::Kind::kController ? "serverAuth" : "clientAuth";
  for (auto [nid, value] : std::vector<std::pair<int, const char*>>{
           {NID_basic_constraints, "critical,CA:FALSE"},
           {NID_key_usage, "critical,digitalSignature"},
           {NID_ext_key_usage, eku},
           {NID_subject_key_identifier, "hash"},
           {NID_authority_key_identifier, "keyid:always"},
       }) {
    if (absl::Status s = AddExt(x, &ctx, nid, value); !s.ok()) return s;
  }
  if (absl::Status s = AddSubjectAltNames(x, spec); !s.ok()) return s;
  return SignAndEncode(x, ca_key->get(), key->get(), "the certificate");
}

std::string CertFileStem(const CertSpec& spec) {
  if (spec.kind == Identity::Kind::kController) {
    return spec.hosts.empty() ? "controller" : spec.hosts[0];
  }
  return spec.name;
}

absl::Status InitCaDir(const std::string& dir, absl::Duration validity) {
  if (validity <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the CA's validity must be positive");
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cannot create the directory %s: %s", dir, ErrnoText(errno)));
  }
  for (const char* name : {"ca.key", "ca.pem"}) {
    const std::string path = dir + "/" + name;
    if (Exists(path)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s already exists: not replacing the CA, that would orphan every "
          "certificate it signed (remove %s/ca.key and %s/ca.pem first if you "
          "mean it)",
          path, dir, dir));
    }
  }
  const absl::Time now = absl::Now();
  absl::StatusOr<KeyCert> ca =
      MakeCa("ntpfleet CA", now - absl::Hours(1), now + validity);
  if (!ca.ok()) return ca.status();
  return WritePair(dir, "ca", *ca);
}

absl::StatusOr<std::string> IssueToDir(const std::string& dir,
                                       const CertSpec& spec) {
  if (absl::Status s = ValidateCertSpec(spec); !s.ok()) return s;
  KeyCert ca;
  for (auto [name, out] :
       {std::pair{"ca.pem", &ca.cert_pem}, std::pair{"ca.key", &ca.key_pem}}) {
    const std::string path = dir + "/" + name;
    absl::StatusOr<std::string> data = ReadFile(path);
    if (!data.ok()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s: run `ntpfleetctl certs init --dir %s` first (or give the "
          "directory that holds the CA with --dir)",
          data.status().message(), dir));
    }
    *out = *std::move(data);
  }
  const std::string stem = CertFileStem(spec);
  for (const char* ext : {".pem", ".key"}) {
    const std::string path = absl::StrCat(dir, "/", stem, ext);
    if (Exists(path)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s already exists: not overwriting it (remove %s/%s.pem and "
          "%s/%s.key first to issue a new one)",
          path, dir, stem, dir, stem));
    }
  }
  absl::StatusOr<KeyCert> issued = IssueCert(ca, spec);
  if (!issued.ok()) {
    return absl::Status(
        issued.status().code(),
        absl::StrFormat("%s (CA in %s)", issued.status().message(), dir));
  }
  if (absl::Status s = WritePair(dir, stem, *issued); !s.ok()) return s;
  return absl::StrCat(dir, "/", stem, ".pem");
}

}  // namespace ntpfleet
