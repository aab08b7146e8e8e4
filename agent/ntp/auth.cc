#include "agent/ntp/auth.h"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace ntpfleet::ntp {
namespace {

bool ParseHex(absl::string_view hex, std::vector<uint8_t>* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int v = 0;
    for (char c : hex.substr(i, 2)) {
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return false;
      }
    }
    out->push_back(static_cast<uint8_t>(v));
  }
  return true;
}

std::vector<uint8_t> Hash(const EVP_MD* md, const Key& key,
                          absl::Span<const uint8_t> data) {
  std::vector<uint8_t> digest(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return {};
  bool ok = EVP_DigestInit_ex(ctx, md, nullptr) == 1 &&
            EVP_DigestUpdate(ctx, key.secret.data(), key.secret.size()) == 1 &&
            EVP_DigestUpdate(ctx, data.data(), data.size()) == 1 &&
            EVP_DigestFinal_ex(ctx, digest.data(), &len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return {};
  digest.resize(len);
  return digest;
}

std::vector<uint8_t> Cmac(const Key& key, absl::Span<const uint8_t> data) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "CMAC", nullptr);
  if (mac == nullptr) return {};
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  char cipher[] = "AES-128-CBC";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
      OSSL_PARAM_construct_end(),
  };
  std::vector<uint8_t> out(16);
  size_t len = 0;
  const bool ok =
      ctx != nullptr &&
      EVP_MAC_init(ctx, key.secret.data(), key.secret.size(), params) == 1 &&
      EVP_MAC_update(ctx, data.data(), data.size()) == 1 &&
      EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  if (!ok) return {};
  out.resize(len);
  return out;
}

}  // namespace

absl::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kMd5:
      return "MD5";
    case KeyType::kSha1:
      return "SHA1";
    case KeyType::kAes128Cmac:
      return "AES128CMAC";
  }
  return "?";
}

absl::string_view AuthResultName(AuthResult result) {
  switch (result) {
    case AuthResult::kNone:
      return "unauthenticated";
    case AuthResult::kOk:
      return "authenticated";
    case AuthResult::kCryptoNak:
      return "crypto-NAK";
    case AuthResult::kUnknownKey:
      return "unknown or untrusted key";
    case AuthResult::kBadMac:
      return "bad MAC";
  }
  return "?";
}

// ntpd 4.2.8's optional fourth field: the addresses that may use the key,
// "192.0.2.1,2001:db8::1".
bool IsAddressList(absl::string_view field) {
  for (absl::string_view a : absl::StrSplit(field, ',')) {
    const std::string s(a);
    unsigned char buf[16];
    if (inet_pton(AF_INET, s.c_str(), buf) != 1 &&
        inet_pton(AF_INET6, s.c_str(), buf) != 1) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<KeyStore> KeyStore::Parse(absl::string_view text,
                                         absl::string_view filename,
                                         std::vector<std::string>* warnings) {
  KeyStore store;
  std::map<uint32_t, int> first_line;  // by key id
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (f.empty()) continue;
    auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s:%d: %s", filename, line_no, what));
    };
    if (f.size() < 3) return error("expected `keyid type key`");
    uint32_t id = 0;
    if (!absl::SimpleAtoi(f[0], &id) || id < 1 || id > 65535) {
      return error(
          absl::StrFormat("key id '%s' is not a number in 1..65535", f[0]));
    }
    // Two keys with one id: which one signs would depend on the order of the
    // lines, and a peer holding the other one fails without a clear cause.
    if (auto [it, added] = first_line.emplace(id, line_no); !added) {
      return error(absl::StrFormat(
          "key id %d given twice (first at line %d): give each key once", id,
          it->second));
    }
    if (f.size() == 4 && IsAddressList(f[3])) {
      if (warnings != nullptr) {
        warnings->push_back(absl::StrFormat(
            "%s:%d: key %d: the address list '%s' is not supported: the key "
            "is accepted from any address",
            filename, line_no, id, f[3]));
      }
    } else if (f.size() > 3) {
      return error(absl::StrFormat(
          "unexpected '%s' after the key: a line is `keyid type key` (a key "
          "cannot contain spaces or '#')",
          f[3]));
    }
    Key key;
    key.id = id;
    const std::string type = absl::AsciiStrToUpper(f[1]);
    if (type == "MD5" || type == "M") {
      key.type = KeyType::kMd5;
    } else if (type == "SHA1" || type == "SHA-1") {
      key.type = KeyType::kSha1;
    } else if (type == "AES128CMAC" || type == "AES-128-CMAC" ||
               type == "CMAC") {
      key.type = KeyType::kAes128Cmac;
    } else {
      return error(absl::StrFormat(
          "unsupported key type '%s' (MD5, SHA1 or AES128CMAC)", f[1]));
    }
    // ntpd: up to 20 characters is ASCII, longer is hex.
    if (f[2].size() <= 20) {
      key.secret.assign(f[2].begin(), f[2].end());
    } else if (!ParseHex(f[2], &key.secret)) {
      return error("key longer than 20 characters must be hex");
    }
    if (key.type == KeyType::kAes128Cmac && key.secret.size() != 16) {
      return error(absl::StrFormat("AES128CMAC key must be 16 octets, got %d",
                                   key.secret.size()));
    }
    store.Add(std::move(key));
  }
  return store;
}

const Key* KeyStore::Find(uint32_t id) const {
  auto it = keys_.find(id);
  return it == keys_.end() ? nullptr : &it->second;
}

std::vector<uint8_t> ComputeDigest(const Key& key,
                                   absl::Span<const uint8_t> data) {
  switch (key.type) {
    case KeyType::kMd5:
      return Hash(EVP_md5(), key, data);
    case KeyType::kSha1:
      return Hash(EVP_sha1(), key, data);
    case KeyType::kAes128Cmac:
      return Cmac(key, data);
  }
  return {};
}

size_t AppendMac(const Key& key, absl::Span<uint8_t> buffer, size_t length) {
  const std::vector<uint8_t> digest = ComputeDigest(key, buffer.first(length));
  if (buffer.size() < length + kKeyIdSize + digest.size() || digest.empty())
    return length;
  uint8_t* p = buffer.data() + length;
  p[0] = static_cast<uint8_t>(key.id >> 24);
  p[1] = static_cast<uint8_t>(key.id >> 16);
  p[2] = static_cast<uint8_t>(key.id >> 8);
  p[3] = static_cast<uint8_t>(key.id);
  std::copy(digest.begin(), digest.end(), p + kKeyIdSize);
  return length + kKeyIdSize + digest.size();
}

AuthResult VerifyMac(const KeyStore& keys, const NtpPacket& packet,
                     absl::Span<const uint8_t> bytes) {
  if (!packet.mac) return AuthResult::kNone;
  if (packet.mac->is_crypto_nak()) return AuthResult::kCryptoNak;
  const Key* key = keys.Find(packet.mac->key_id);
  if (key == nullptr || !keys.IsTrusted(key->id))
    return AuthResult::kUnknownKey;
  const size_t covered = packet.authenticated_size();
  if (covered > bytes.size()) return AuthResult::kBadMac;
  const std::vector<uint8_t> digest = ComputeDigest(*key, bytes.first(covered));
  // Constant-time comparison: the digest must not leak through timing.
  if (digest.empty() || digest.size() != packet.mac->digest.size() ||
      CRYPTO_memcmp(digest.data(), packet.mac->digest.data(), digest.size()) !=
          0) {
    return AuthResult::kBadMac;
  }
  return AuthResult::kOk;
}

}  // namespace ntpfleet::ntp
