// IdentityFromPem: every kind, from certificates common/certs issues, and every
// rejection, from certificates made here directly with OpenSSL with exactly
// the subjectAltNames under test. Also RoleName/ParseRole/ToString.
#include "common/identity.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/certs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::HasSubstr;

// A self-signed certificate whose subjectAltName extension is `san` in
// openssl.cnf syntax ("URI:ntpfleet:node:a,DNS:b"), or none when empty.
std::string CertWithSan(const std::string& san) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("test"), -1,
                             -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  if (!san.empty()) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext =
        X509V3_EXT_nconf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    EXPECT_NE(ext, nullptr) << san;
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* data;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  X509_free(x);
  EVP_PKEY_free(key);
  return pem;
}

absl::StatusOr<Identity> FromSan(const std::string& san) {
  return IdentityFromPem(CertWithSan(san));
}

TEST(RoleTest, NamesAndParsing) {
  EXPECT_EQ(RoleName(Role::kNone), "none");
  for (Role r : {Role::kViewer, Role::kOperator, Role::kAdmin}) {
    absl::StatusOr<Role> parsed = ParseRole(RoleName(r));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_THAT(ParseRole("root"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("viewer, operator or admin")));
  EXPECT_THAT(ParseRole("none"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("none")));
  EXPECT_THAT(ParseRole("Admin"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Admin")));
  EXPECT_TRUE(Role::kViewer < Role::kOperator &&
              Role::kOperator < Role::kAdmin);
}

TEST(IdentityTest, ToString) {
  EXPECT_EQ((Identity{Identity::Kind::kNode, "web-01", Role::kNone}).ToString(),
            "node:web-01");
  EXPECT_EQ(
      (Identity{Identity::Kind::kUser, "alice", Role::kOperator}).ToString(),
      "user:alice (operator)");
  EXPECT_EQ((Identity{Identity::Kind::kController, "ctl.example", Role::kNone})
                .ToString(),
            "controller:ctl.example");
}

class IssuedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<KeyCert> ca =
        MakeCa("test CA", now_ - absl::Hours(1), now_ + absl::Hours(24));
    ASSERT_THAT(ca, IsOk());
    ca_ = *ca;
  }
  absl::StatusOr<Identity> Issue(Identity::Kind kind, std::string name,
                                 Role role = Role::kNone,
                                 std::vector<std::string> hosts = {}) {
    CertSpec spec;
    spec.kind = kind;
    spec.name = std::move(name);
    spec.role = role;
    spec.hosts = std::move(hosts);
    spec.not_before = now_ - absl::Hours(1);
    spec.not_after = now_ + absl::Hours(1);
    absl::StatusOr<KeyCert> kc = IssueCert(ca_, spec);
    if (!kc.ok()) return kc.status();
    return IdentityFromPem(kc->cert_pem);
  }
  const absl::Time now_ = absl::Now();
  KeyCert ca_;
};

TEST_F(IssuedTest, Node) {
  absl::StatusOr<Identity> id = Issue(Identity::Kind::kNode, "web-01");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->kind, Identity::Kind::kNode);
  EXPECT_EQ(id->name, "web-01");
  EXPECT_EQ(id->role, Role::kNone);
}

TEST_F(IssuedTest, UserWithEachRole) {
  for (Role r : {Role::kViewer, Role::kOperator, Role::kAdmin}) {
    absl::StatusOr<Identity> id = Issue(Identity::Kind::kUser, "alice", r);
    ASSERT_THAT(id, IsOk());
    EXPECT_EQ(id->kind, Identity::Kind::kUser);
    EXPECT_EQ(id->name, "alice");
    EXPECT_EQ(id->role, r);
  }
}

TEST_F(IssuedTest, ControllerIsNamedByItsFirstHost) {
  absl::StatusOr<Identity> id =
      Issue(Identity::Kind::kController, "", Role::kNone,
            {"ctl.example", "127.0.0.1", "::1"});
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->kind, Identity::Kind::kController);
  EXPECT_EQ(id->name, "ctl.example");
  id =
      Issue(Identity::Kind::kController, "", Role::kNone, {"::1", "localhost"});
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->name, "::1");
  id =
      Issue(Identity::Kind::kController, "", Role::kNone, {"127.0.0.1", "::1"});
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->name, "127.0.0.1");
}

TEST(IdentityFromPemTest, AcceptsHandMadeCertificates) {
  absl::StatusOr<Identity> id = FromSan("DNS:web-01,URI:ntpfleet:node:web-01");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->ToString(), "node:web-01");
  // Order of the role and user URIs does not matter; other URIs are ignored.
  id = FromSan(
      "URI:ntpfleet:role:admin,URI:https://example.com/,"
      "URI:ntpfleet:user:bob");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->ToString(), "user:bob (admin)");
  id = FromSan("IP:10.0.0.1,DNS:ctl,URI:ntpfleet:controller");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->ToString(), "controller:10.0.0.1");
}

TEST(IdentityFromPemTest, RejectsWhatIsNotACertificate) {
  EXPECT_THAT(IdentityFromPem(""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a PEM X.509 certificate")));
  EXPECT_THAT(IdentityFromPem("-----BEGIN CERTIFICATE-----\nAAAA\n"
                              "-----END CERTIFICATE-----\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a PEM X.509 certificate")));
}

TEST(IdentityFromPemTest, RejectsNoIdentity) {
  for (const std::string san :
       {"", "DNS:web-01", "URI:https://example.com/", "IP:127.0.0.1"}) {
    EXPECT_THAT(FromSan(san), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("no ntpfleet identity")))
        << san;
  }
}

TEST(IdentityFromPemTest, RejectsConflictingIdentities) {
  for (const std::string san : {
           "URI:ntpfleet:node:a,URI:ntpfleet:user:b,URI:ntpfleet:role:admin",
           "URI:ntpfleet:node:a,URI:ntpfleet:node:b",
           "URI:ntpfleet:node:a,URI:ntpfleet:node:a",
           "URI:ntpfleet:node:a,URI:ntpfleet:controller,DNS:a",
           "URI:ntpfleet:user:a,URI:ntpfleet:user:b,URI:ntpfleet:role:admin",
           "URI:ntpfleet:controller,URI:ntpfleet:controller,DNS:a",
       }) {
    EXPECT_THAT(FromSan(san), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("more than one")))
        << san;
  }
}

TEST(IdentityFromPemTest, RejectsInvalidNames) {
  EXPECT_THAT(FromSan("URI:ntpfleet:node:"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a valid node name")));
  EXPECT_THAT(FromSan("URI:ntpfleet:node:-web"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a valid node name")));
  EXPECT_THAT(FromSan("URI:ntpfleet:node:a/b"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a valid node name")));
  EXPECT_THAT(
      FromSan("URI:ntpfleet:user:al ice,URI:ntpfleet:role:viewer"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("user name")));
}

TEST(IdentityFromPemTest, RejectsUserWithoutExactlyOneValidRole) {
  EXPECT_THAT(FromSan("URI:ntpfleet:user:alice"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("exactly one role")));
  EXPECT_THAT(FromSan("URI:ntpfleet:user:alice,URI:ntpfleet:role:viewer,"
                      "URI:ntpfleet:role:admin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("exactly one role")));
  EXPECT_THAT(
      FromSan("URI:ntpfleet:user:alice,URI:ntpfleet:role:root"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("`root`")));
  EXPECT_THAT(
      FromSan("URI:ntpfleet:user:alice,URI:ntpfleet:role:none"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("`none`")));
}

TEST(IdentityFromPemTest, RejectsRolesOutsideUsers) {
  EXPECT_THAT(FromSan("URI:ntpfleet:node:web-01,URI:ntpfleet:role:admin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("node certificate must not carry a role")));
  EXPECT_THAT(
      FromSan("URI:ntpfleet:controller,DNS:ctl,URI:ntpfleet:role:admin"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("controller certificate must not carry a role")));
  EXPECT_THAT(FromSan("URI:ntpfleet:role:admin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("no ntpfleet identity")));
}

TEST(IdentityFromPemTest, RejectsControllerWithoutHost) {
  EXPECT_THAT(
      FromSan("URI:ntpfleet:controller"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("names no host")));
}

TEST(IdentityFromPemTest, RejectsUnknownNtpfleetUri) {
  EXPECT_THAT(FromSan("URI:ntpfleet:node:a,URI:ntpfleet:superuser:a"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown ntpfleet identity URI")));
}

TEST(IdentityFromPemTest, ReadsOnlyTheFirstCertificate) {
  const std::string chain = CertWithSan("URI:ntpfleet:node:first") +
                            CertWithSan("URI:ntpfleet:node:second");
  absl::StatusOr<Identity> id = IdentityFromPem(chain);
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->name, "first");
}

}  // namespace
}  // namespace ntpfleet
