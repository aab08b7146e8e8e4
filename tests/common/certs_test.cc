// common/certs: what MakeCa and IssueCert put in a certificate (checked with
// OpenSSL directly: extensions, key type, signature, chain verification,
// expiry), spec validation, and the directory layer (files, modes, atomic
// writes, never overwriting) in $TEST_TMPDIR.
#include "common/certs.h"

#include <dirent.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/identity.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr Parse(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509Ptr x(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return x;
}

// X509_V_OK or the OpenSSL verification error of `leaf` against `ca` at
// `at` (seconds since the epoch).
int VerifyAt(const std::string& ca, const std::string& leaf, time_t at) {
  X509Ptr ca_cert = Parse(ca);
  X509Ptr leaf_cert = Parse(leaf);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca_cert.get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf_cert.get(), nullptr);
  X509_STORE_CTX_set_time(ctx, 0, at);
  const int ok = X509_verify_cert(ctx);
  const int err = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return err;
}

// The subjectAltNames as "URI:...", "DNS:...", "IP/4" or "IP/16".
std::vector<std::string> Sans(X509* x) {
  std::vector<std::string> out;
  GENERAL_NAMES* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_IPADD) {
      // The length tells v4 from v6; X509_check_ip_asc checks the bytes.
      out.push_back(absl::StrCat("IP/", ASN1_STRING_length(n->d.iPAddress)));
    } else {
      const ASN1_STRING* s =
          n->type == GEN_URI ? n->d.uniformResourceIdentifier : n->d.dNSName;
      out.push_back(absl::StrCat(
          n->type == GEN_URI ? "URI:" : "DNS:",
          std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      ASN1_STRING_length(s))));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string SerialHex(X509* x) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out(hex);
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

class CertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<KeyCert> ca =
        MakeCa("test CA", now_ - absl::Hours(1), now_ + absl::Hours(24 * 10));
    ASSERT_THAT(ca, IsOk());
    ca_ = *ca;
  }
  CertSpec Spec(Identity::Kind kind, std::string name, Role role = Role::kNone,
                std::vector<std::string> hosts = {}) {
    CertSpec spec;
    spec.kind = kind;
    spec.name = std::move(name);
    spec.role = role;
    spec.hosts = std::move(hosts);
    spec.not_before = now_ - absl::Hours(1);
    spec.not_after = now_ + absl::Hours(24);
    return spec;
  }
  const absl::Time now_ = absl::Now();
  KeyCert ca_;
};

TEST_F(CertsTest, CaIsASelfSignedP256Ca) {
  X509Ptr ca = Parse(ca_.cert_pem);
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_get_version(ca.get()), X509_VERSION_3);
  EXPECT_EQ(X509_get_signature_nid(ca.get()), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(ca.get()),
                          X509_get_issuer_name(ca.get())),
            0);
  EXPECT_EQ(X509_verify(ca.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_NE(X509_get0_subject_key_id(ca.get()), nullptr);
  const uint32_t usage = X509_get_key_usage(ca.get());
  EXPECT_TRUE(usage & KU_KEY_CERT_SIGN);
  EXPECT_TRUE(usage & KU_CRL_SIGN);
  EXPECT_FALSE(usage & KU_DIGITAL_SIGNATURE);
  int crit = -1;
  BASIC_CONSTRAINTS* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(ca.get(), NID_basic_constraints, &crit, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_TRUE(bc->ca);
  EXPECT_EQ(crit, 1);
  BASIC_CONSTRAINTS_free(bc);
  EVP_PKEY* key = X509_get0_pubkey(ca.get());
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  char group[64] = {};
  size_t len = 0;
  EVP_PKEY_get_group_name(key, group, sizeof(group), &len);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_EQ(X509_cmp_time(X509_get0_notAfter(ca.get()), nullptr), 1);
}

TEST_F(CertsTest, NodeCertificate) {
  absl::StatusOr<KeyCert> kc =
      IssueCert(ca_, Spec(Identity::Kind::kNode, "web-01"));
  ASSERT_THAT(kc, IsOk());
  X509Ptr x = Parse(kc->cert_pem);
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(VerifyAt(ca_.cert_pem, kc->cert_pem, absl::ToTimeT(now_)),
            X509_V_OK);
  EXPECT_EQ(X509_check_ca(x.get()), 0);
  EXPECT_EQ(X509_get_signature_nid(x.get()), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_get_key_usage(x.get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(x.get()),
            static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_NE(X509_get0_authority_key_id(x.get()), nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(
                X509_get0_authority_key_id(x.get()),
                X509_get0_subject_key_id(Parse(ca_.cert_pem).get())),
            0);
  EXPECT_THAT(Sans(x.get()), UnorderedElementsAre("URI:ntpfleet:node:web-01"));
  char cn[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x.get()), NID_commonName, cn,
                            sizeof(cn));
  EXPECT_STREQ(cn, "web-01");
  // The key is the certificate's.
  BIO* bio =
      BIO_new_mem_buf(kc->key_pem.data(), static_cast<int>(kc->key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(x.get(), key), 1);
  EVP_PKEY_free(key);

  absl::StatusOr<Identity> id = IdentityFromPem(kc->cert_pem);
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->ToString(), "node:web-01");
}

TEST_F(CertsTest, UserCertificate) {
  absl::StatusOr<KeyCert> kc =
      IssueCert(ca_, Spec(Identity::Kind::kUser, "alice", Role::kOperator));
  ASSERT_THAT(kc, IsOk());
  X509Ptr x = Parse(kc->cert_pem);
  EXPECT_EQ(X509_get_extended_key_usage(x.get()),
            static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_THAT(Sans(x.get()),
              UnorderedElementsAre("URI:ntpfleet:user:alice",
                                   "URI:ntpfleet:role:operator"));
  absl::StatusOr<Identity> id = IdentityFromPem(kc->cert_pem);
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->ToString(), "user:alice (operator)");
}

TEST_F(CertsTest, ControllerCertificate) {
  absl::StatusOr<KeyCert> kc =
      IssueCert(ca_, Spec(Identity::Kind::kController, "", Role::kNone,
                          {"localhost", "127.0.0.1", "::1", "ctl.example"}));
  ASSERT_THAT(kc, IsOk());
  X509Ptr x = Parse(kc->cert_pem);
  EXPECT_EQ(X509_get_extended_key_usage(x.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_THAT(Sans(x.get()), UnorderedElementsAre("DNS:localhost", "IP/4",
                                                  "IP/16", "DNS:ctl.example",
                                                  "URI:ntpfleet:controller"));
  // OpenSSL's own host and IP matching agrees.
  EXPECT_EQ(X509_check_host(x.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(x.get(), "ctl.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(x.get(), "other.example", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(x.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(x.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(x.get(), "127.0.0.2", 0), 0);
  absl::StatusOr<Identity> id = IdentityFromPem(kc->cert_pem);
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->ToString(), "controller:localhost");
  EXPECT_EQ(CertFileStem(Spec(Identity::Kind::kController, "", Role::kNone,
                              {"ctl.example", "10.0.0.1"})),
            "ctl.example");
}

TEST_F(CertsTest, SerialsAreRandomAndLarge) {
  std::vector<std::string> serials;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<KeyCert> kc =
        IssueCert(ca_, Spec(Identity::Kind::kNode, "web-01"));
    ASSERT_THAT(kc, IsOk());
    serials.push_back(SerialHex(Parse(kc->cert_pem).get()));
    EXPECT_EQ(serials.back().size(), 32u) << serials.back();  // 128 bits
  }
  for (size_t i = 0; i < serials.size(); ++i) {
    for (size_t j = i + 1; j < serials.size(); ++j) {
      EXPECT_NE(serials[i], serials[j]);
    }
  }
}

TEST_F(CertsTest, ExpiredIsIssuedButDoesNotVerifyNow) {
  absl::StatusOr<KeyCert> ca =
      MakeCa("old CA", now_ - absl::Hours(72), now_ + absl::Hours(24));
  ASSERT_THAT(ca, IsOk());
  CertSpec spec = Spec(Identity::Kind::kNode, "old");
  spec.not_before = now_ - absl::Hours(48);
  spec.not_after = now_ - absl::Hours(24);
  absl::StatusOr<KeyCert> kc = IssueCert(*ca, spec);
  ASSERT_THAT(kc, IsOk());
  X509Ptr x = Parse(kc->cert_pem);
  // The signature is fine; the validity is past.
  EXPECT_EQ(X509_verify(x.get(), X509_get0_pubkey(Parse(ca->cert_pem).get())),
            1);
  EXPECT_EQ(X509_cmp_time(X509_get0_notAfter(x.get()), nullptr), -1);
  EXPECT_EQ(VerifyAt(ca->cert_pem, kc->cert_pem, absl::ToTimeT(now_)),
            X509_V_ERR_CERT_HAS_EXPIRED);
  // Within its validity it verifies.
  EXPECT_EQ(VerifyAt(ca->cert_pem, kc->cert_pem,
                     absl::ToTimeT(now_ - absl::Hours(36))),
            X509_V_OK);
}

TEST_F(CertsTest, AnotherCaDoesNotVerify) {
  absl::StatusOr<KeyCert> other =
      MakeCa("other CA", now_ - absl::Hours(1), now_ + absl::Hours(24));
  ASSERT_THAT(other, IsOk());
  absl::StatusOr<KeyCert> kc =
      IssueCert(*other, Spec(Identity::Kind::kNode, "web-01"));
  ASSERT_THAT(kc, IsOk());
  EXPECT_NE(VerifyAt(ca_.cert_pem, kc->cert_pem, absl::ToTimeT(now_)),
            X509_V_OK);
  EXPECT_EQ(VerifyAt(other->cert_pem, kc->cert_pem, absl::ToTimeT(now_)),
            X509_V_OK);
}

TEST_F(CertsTest, RejectsBadSpecs) {
  const auto kBad = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(IssueCert(ca_, Spec(Identity::Kind::kNode, "web 01")),
              StatusIs(kBad, HasSubstr("not a valid node name")));
  EXPECT_THAT(IssueCert(ca_, Spec(Identity::Kind::kNode, "")),
              StatusIs(kBad, HasSubstr("not a valid node name")));
  EXPECT_THAT(IssueCert(ca_, Spec(Identity::Kind::kUser, "a/b", Role::kAdmin)),
              StatusIs(kBad, HasSubstr("not a valid user name")));
  EXPECT_THAT(IssueCert(ca_, Spec(Identity::Kind::kNode, "ca")),
              StatusIs(kBad, HasSubstr("reserved")));
  EXPECT_THAT(IssueCert(ca_, Spec(Identity::Kind::kUser, "alice")),
              StatusIs(kBad, HasSubstr("needs a role")));
  EXPECT_THAT(IssueCert(ca_, Spec(Identity::Kind::kNode, "web", Role::kAdmin)),
              StatusIs(kBad, HasSubstr("roles are for user")));
  EXPECT_THAT(
      IssueCert(ca_, Spec(Identity::Kind::kNode, "web", Role::kNone, {"h"})),
      StatusIs(kBad, HasSubstr("for the controller")));
  EXPECT_THAT(IssueCert(ca_, Spec(Identity::Kind::kController, "")),
              StatusIs(kBad, HasSubstr("needs the host names")));
  EXPECT_THAT(IssueCert(ca_, Spec(Identity::Kind::kController, "", Role::kNone,
                                  {"localhost", "bad host"})),
              StatusIs(kBad, HasSubstr("`bad host`")));
  EXPECT_THAT(IssueCert(ca_, Spec(Identity::Kind::kController, "", Role::kAdmin,
                                  {"localhost"})),
              StatusIs(kBad, HasSubstr("roles are for user")));
  CertSpec backwards = Spec(Identity::Kind::kNode, "web");
  backwards.not_after = backwards.not_before;
  EXPECT_THAT(IssueCert(ca_, backwards),
              StatusIs(kBad, HasSubstr("ends before it starts")));
  EXPECT_THAT(MakeCa("x", now_, now_),
              StatusIs(kBad, HasSubstr("ends before it starts")));
}

TEST_F(CertsTest, RejectsABadCa) {
  const CertSpec spec = Spec(Identity::Kind::kNode, "web-01");
  EXPECT_THAT(IssueCert(KeyCert{"junk", ca_.cert_pem}, spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("CA key is not a PEM private key")));
  EXPECT_THAT(IssueCert(KeyCert{ca_.key_pem, "junk"}, spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a PEM X.509")));
  absl::StatusOr<KeyCert> other =
      MakeCa("other CA", now_ - absl::Hours(1), now_ + absl::Hours(24));
  ASSERT_THAT(other, IsOk());
  EXPECT_THAT(IssueCert(KeyCert{other->key_pem, ca_.cert_pem}, spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("does not belong")));
  absl::StatusOr<KeyCert> leaf = IssueCert(ca_, spec);
  ASSERT_THAT(leaf, IsOk());
  EXPECT_THAT(
      IssueCert(*leaf, spec),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a CA")));
}

// --- On disk -----------------------------------------------------------------

std::string TestDir(const std::string& name) {
  const char* tmp = getenv("TEST_TMPDIR");
  return absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  closedir(d);
  return out;
}

std::string Slurp(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  fclose(f);
  return out;
}

TEST_F(CertsTest, DirectoryInitAndIssue) {
  const std::string dir = TestDir("certs-dir");
  ASSERT_THAT(InitCaDir(dir, absl::Hours(24 * 3650)), IsOk());
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(dir + "/ca.key"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/ca.pem"), 0644u);
  X509Ptr ca = Parse(Slurp(dir + "/ca.pem"));
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  // Valid from an hour ago, for the given time.
  EXPECT_EQ(X509_cmp_time(X509_get0_notBefore(ca.get()), nullptr), -1);
  time_t in_3649_days = absl::ToTimeT(absl::Now() + absl::Hours(24 * 3649));
  EXPECT_EQ(X509_cmp_time(X509_get0_notAfter(ca.get()), &in_3649_days), 1);
  time_t in_3651_days = absl::ToTimeT(absl::Now() + absl::Hours(24 * 3651));
  EXPECT_EQ(X509_cmp_time(X509_get0_notAfter(ca.get()), &in_3651_days), -1);

  const std::string ca_pem = Slurp(dir + "/ca.pem");
  EXPECT_THAT(InitCaDir(dir, absl::Hours(24)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("orphan every certificate")));
  EXPECT_EQ(Slurp(dir + "/ca.pem"), ca_pem);  // untouched

  absl::StatusOr<std::string> node =
      IssueToDir(dir, Spec(Identity::Kind::kNode, "web-01"));
  ASSERT_THAT(node, IsOk());
  EXPECT_EQ(*node, dir + "/web-01.pem");
  EXPECT_EQ(ModeOf(dir + "/web-01.pem"), 0644u);
  EXPECT_EQ(ModeOf(dir + "/web-01.key"), 0600u);
  const std::string node_pem = Slurp(*node);
  EXPECT_EQ(VerifyAt(ca_pem, node_pem, absl::ToTimeT(absl::Now())), X509_V_OK);
  absl::StatusOr<Identity> id = IdentityFromPem(node_pem);
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->ToString(), "node:web-01");

  EXPECT_THAT(IssueToDir(dir, Spec(Identity::Kind::kNode, "web-01")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("web-01.pem already exists")));
  EXPECT_EQ(Slurp(*node), node_pem);  // untouched

  absl::StatusOr<std::string> ctl =
      IssueToDir(dir, Spec(Identity::Kind::kController, "", Role::kNone,
                           {"localhost", "127.0.0.1"}));
  ASSERT_THAT(ctl, IsOk());
  EXPECT_EQ(*ctl, dir + "/localhost.pem");
  absl::StatusOr<std::string> user =
      IssueToDir(dir, Spec(Identity::Kind::kUser, "alice", Role::kAdmin));
  ASSERT_THAT(user, IsOk());
  id = IdentityFromPem(Slurp(*user));
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->ToString(), "user:alice (admin)");

  // Nothing else: no temporary files left behind.
  EXPECT_THAT(Listing(dir),
              UnorderedElementsAre("ca.pem", "ca.key", "web-01.pem",
                                   "web-01.key", "localhost.pem",
                                   "localhost.key", "alice.pem", "alice.key"));
}

TEST_F(CertsTest, IssueRefusesWhenOnlyTheKeyExists) {
  const std::string dir = TestDir("certs-half");
  ASSERT_THAT(InitCaDir(dir, absl::Hours(24)), IsOk());
  FILE* f = fopen((dir + "/db-01.key").c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("precious", f);
  fclose(f);
  EXPECT_THAT(IssueToDir(dir, Spec(Identity::Kind::kNode, "db-01")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("db-01.key already exists")));
  EXPECT_EQ(Slurp(dir + "/db-01.key"), "precious");
  EXPECT_EQ(ModeOf(dir + "/db-01.pem"), 0u);  // not written
}

TEST_F(CertsTest, IssueWithoutCaSaysToInit) {
  const std::string dir = TestDir("certs-none");
  EXPECT_THAT(IssueToDir(dir, Spec(Identity::Kind::kNode, "web-01")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(absl::StrCat("ca.pem: No such file"))));
  EXPECT_THAT(
      IssueToDir(dir, Spec(Identity::Kind::kNode, "web-01")),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               HasSubstr(absl::StrCat("run `ntpfleetctl certs init --dir ", dir,
                                      "` first"))));
  // A bad spec is refused before the CA is even looked for.
  EXPECT_THAT(
      IssueToDir(dir, Spec(Identity::Kind::kUser, "bob")),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a role")));
}

TEST_F(CertsTest, InitRefusesWhenOnlyTheKeyExists) {
  const std::string dir = TestDir("certs-halfca");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  FILE* f = fopen((dir + "/ca.key").c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  EXPECT_THAT(InitCaDir(dir, absl::Hours(24)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("ca.key already exists")));
  EXPECT_EQ(ModeOf(dir + "/ca.pem"), 0u);
  EXPECT_EQ(ModeOf(dir), 0755u);  // an existing directory keeps its mode
}

}  // namespace
}  // namespace ntpfleet
