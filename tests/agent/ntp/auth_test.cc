#include "agent/ntp/auth.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "common/ntp/packet.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::ntp {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ReadTestData(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::ifstream in(absl::StrCat(srcdir ? srcdir : ".",
                                "/ntpfleet/tests/agent/ntp/testdata/", name));
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<uint8_t> Hex(absl::string_view hex) {
  std::vector<uint8_t> out;
  std::string digits;
  for (char c : hex) {
    if (absl::ascii_isxdigit(c)) digits.push_back(c);
  }
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(
        static_cast<uint8_t>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::vector<uint8_t> Fixture(const std::string& name) {
  std::string hex;
  std::istringstream in(ReadTestData(name + ".hex"));
  for (std::string line; std::getline(in, line);) {
    if (!absl::StartsWith(line, "#")) hex += line;
  }
  return Hex(hex);
}

KeyStore TestKeys() {
  absl::StatusOr<KeyStore> keys =
      KeyStore::Parse(ReadTestData("ntp.keys"), "ntp.keys");
  EXPECT_THAT(keys, IsOk());
  keys->Trust(1);
  keys->Trust(2);
  return *std::move(keys);
}

// The MACs chronyd 4.3 and NTPsec 1.2.2 computed (testdata/README.md) verify
// with our code.
TEST(AuthTest, VerifiesRealChronyAndNtpsecMacs) {
  const KeyStore keys = TestKeys();
  for (const char* name :
       {"chronyd_md5_request", "chronyd_md5_response", "chronyd_sha1_request",
        "chronyd_sha1_response", "ntpsec_md5_request", "ntpsec_md5_response",
        "ntpsec_sha1_request", "ntpsec_sha1_response", "ntpdig_md5_request",
        "ntpdig_sha1_request"}) {
    const std::vector<uint8_t> bytes = Fixture(name);
    absl::StatusOr<NtpPacket> p = DecodePacket(bytes);
    ASSERT_THAT(p, IsOk()) << name;
    EXPECT_EQ(VerifyMac(keys, *p, bytes), AuthResult::kOk) << name;
  }
}

TEST(AuthTest, RejectsAlteredPacketsAndWrongKeys) {
  const KeyStore keys = TestKeys();
  std::vector<uint8_t> bytes = Fixture("chronyd_md5_response");
  bytes[47] ^= 1;  // one bit of the transmit timestamp
  absl::StatusOr<NtpPacket> p = DecodePacket(bytes);
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(VerifyMac(keys, *p, bytes), AuthResult::kBadMac);

  // Same packet, key 1 replaced by a different MD5 secret.
  absl::StatusOr<KeyStore> other =
      KeyStore::Parse("1 MD5 not-the-same-key\n", "other.keys");
  ASSERT_THAT(other, IsOk());
  other->Trust(1);
  const std::vector<uint8_t> good = Fixture("chronyd_md5_response");
  absl::StatusOr<NtpPacket> q = DecodePacket(good);
  EXPECT_EQ(VerifyMac(*other, *q, good), AuthResult::kBadMac);

  // A key we hold but do not trust authenticates nothing.
  absl::StatusOr<KeyStore> untrusted =
      KeyStore::Parse(ReadTestData("ntp.keys"), "ntp.keys");
  EXPECT_EQ(VerifyMac(*untrusted, *q, good), AuthResult::kUnknownKey);
}

TEST(AuthTest, SignsWhatItVerifies) {
  const KeyStore keys = TestKeys();
  for (uint32_t id : {1u, 2u}) {
    NtpPacket p;
    p.mode = Mode::kClient;
    p.transmit = NtpTimestamp::FromRaw(0x0123456789abcdefULL);
    std::vector<uint8_t> buf(kHeaderSize + kKeyIdSize + kMaxDigestSize);
    absl::StatusOr<size_t> n = EncodePacket(p, absl::MakeSpan(buf));
    ASSERT_THAT(n, IsOk());
    const size_t len = AppendMac(*keys.Find(id), absl::MakeSpan(buf), *n);
    EXPECT_EQ(len, id == 1 ? 68u : 72u);
    buf.resize(len);
    absl::StatusOr<NtpPacket> back = DecodePacket(buf);
    ASSERT_THAT(back, IsOk());
    EXPECT_EQ(back->mac->key_id, id);
    EXPECT_EQ(VerifyMac(keys, *back, buf), AuthResult::kOk);
  }
}

TEST(AuthTest, CryptoNakIsRecognised) {
  std::vector<uint8_t> bytes = Fixture("chronyd_server_response");
  bytes.insert(bytes.end(), {0, 0, 0, 0});
  absl::StatusOr<NtpPacket> p = DecodePacket(bytes);
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(VerifyMac(TestKeys(), *p, bytes), AuthResult::kCryptoNak);
}

// RFC 4493 §4 test vectors for AES-CMAC (RFC 8573 uses AES-128-CMAC).
TEST(AuthTest, AesCmacMatchesRfc4493) {
  Key key;
  key.type = KeyType::kAes128Cmac;
  key.secret = Hex("2b7e151628aed2a6abf7158809cf4f3c");
  EXPECT_EQ(ComputeDigest(key, {}), Hex("bb1d6929e95937287fa37d129b756746"));
  EXPECT_EQ(ComputeDigest(key, Hex("6bc1bee22e409f96e93d7e117393172a")),
            Hex("070a16b46b4d4144f79bdd9dd04a287c"));
}

TEST(AuthTest, KeysFileErrorsNameFileAndLine) {
  EXPECT_THAT(KeyStore::Parse("# ok\n1 MD5 abc\n7 RC4 secret\n", "ntp.keys"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ntp.keys:3: unsupported key type 'RC4'")));
  EXPECT_THAT(KeyStore::Parse("0 MD5 abc\n", "k"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("k:1: key id '0'")));
  EXPECT_THAT(
      KeyStore::Parse("3 SHA1 zz0123456789012345678901\n", "k"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be hex")));
  EXPECT_THAT(
      KeyStore::Parse("4 AES128CMAC short\n", "k"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("16 octets")));
  absl::StatusOr<KeyStore> ok =
      KeyStore::Parse(ReadTestData("ntp.keys"), "ntp.keys");
  ASSERT_THAT(ok, IsOk());
  EXPECT_EQ(ok->size(), 2u);
  EXPECT_EQ(ok->Find(2)->secret.size(), 20u);  // 40 hex digits
  EXPECT_EQ(ok->Find(1)->secret.size(), 17u);  // "ntpfleet-test-md5"
}

// A second key with the same id used to replace the first silently: which
// one signs depended on the order of the lines.
TEST(AuthTest, DuplicateKeyIdIsAnErrorNamingBothLines) {
  EXPECT_THAT(
      KeyStore::Parse("5 MD5 first\n# c\n5 SHA1 second\n", "ntp.keys"),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          HasSubstr("ntp.keys:3: key id 5 given twice (first at line 1)")));
}

// Extra tokens used to be dropped silently (a key with a space in it lost its
// tail). ntpd 4.2.8's fourth field, the addresses allowed to use the key, is
// not applied: a warning that says so, with the line.
TEST(AuthTest, ExtraTokensAreErrorsExceptNtpdsAddressList) {
  EXPECT_THAT(KeyStore::Parse("1 MD5 two words\n", "k"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("k:1: unexpected 'words' after the key")));
  EXPECT_THAT(KeyStore::Parse("1 MD5 abc 10.0.0.1 more\n", "k"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("k:1: unexpected '10.0.0.1' after the key")));
  std::vector<std::string> warnings;
  absl::StatusOr<KeyStore> keys =
      KeyStore::Parse("\n2 MD5 abc 192.0.2.1,2001:db8::1\n", "k", &warnings);
  ASSERT_THAT(keys, IsOk());
  EXPECT_NE(keys->Find(2), nullptr);
  EXPECT_THAT(warnings, ElementsAre(HasSubstr(
                            "k:2: key 2: the address list "
                            "'192.0.2.1,2001:db8::1' is not supported")));
}

}  // namespace
}  // namespace ntpfleet::ntp
