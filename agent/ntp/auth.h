// Symmetric-key authentication of NTP packets (RFC 5905 §7.3 MAC, RFC 8573):
// the ntpd keys file, and computing and checking the MAC that follows the
// header and extension fields.
//
//   MD5 and SHA-1 (legacy, as ntpd and chrony still use them): digest = H(key
//   || packet), the MD5 digest is 16 octets, SHA-1's 20. AES-128-CMAC (RFC
//   8573): digest = CMAC(key, packet), 16 octets.
//
// Keys file format (ntpd's `keys` file, also NTPsec's): one key per line,
// `keyid type key`, '#' comments. type: MD5 (or M), SHA1, AES128CMAC (or
// AES-128-CMAC). The key is ASCII if it is at most 20 characters, otherwise hex
// (ntpd's rule); AES-128-CMAC keys are 16 octets (32 hex digits).
//
// Pure computation (OpenSSL's EVP interfaces); no IO.
#ifndef NTPFLEET_AGENT_NTP_AUTH_H_
#define NTPFLEET_AGENT_NTP_AUTH_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/ntp/packet.h"

namespace ntpfleet::ntp {

enum class KeyType { kMd5, kSha1, kAes128Cmac };
absl::string_view KeyTypeName(KeyType type);

struct Key {
  uint32_t id = 0;
  KeyType type = KeyType::kMd5;
  std::vector<uint8_t> secret;
};

class KeyStore {
 public:
  // Parses an ntpd keys file; errors name FILE:LINE: a malformed line, a key
  // id given twice, anything after the key except ntpd 4.2.8's list of
  // addresses (a fourth field, "192.0.2.1,192.0.2.2": not applied, a warning
  // "FILE:LINE: ..." appended to `warnings` if given).
  static absl::StatusOr<KeyStore> Parse(
      absl::string_view text, absl::string_view filename,
      std::vector<std::string>* warnings = nullptr);

  void Add(Key key) { keys_[key.id] = std::move(key); }
  const Key* Find(uint32_t id) const;
  // `trustedkey`: only trusted keys authenticate anything. Keys are untrusted
  // until marked.
  void Trust(uint32_t id) { trusted_.insert(id); }
  bool IsTrusted(uint32_t id) const { return trusted_.count(id) > 0; }
  size_t size() const { return keys_.size(); }

 private:
  std::map<uint32_t, Key> keys_;
  std::set<uint32_t> trusted_;
};

// The digest of `data` (the packet's header and extension fields) under `key`.
std::vector<uint8_t> ComputeDigest(const Key& key,
                                   absl::Span<const uint8_t> data);

// Appends key id + digest to a packet of `length` octets in `buffer` (which
// must have room for 24 more); returns the new length.
size_t AppendMac(const Key& key, absl::Span<uint8_t> buffer, size_t length);

enum class AuthResult {
  kNone,        // no MAC
  kOk,          // MAC verified with a trusted key
  kCryptoNak,   // the sender said it does not know our key
  kUnknownKey,  // key id we do not have, or not trusted
  kBadMac,      // digest does not match (or wrong length for the key type)
};
absl::string_view AuthResultName(AuthResult result);

// Checks the MAC of a decoded packet; `bytes` are the packet's octets as
// received.
AuthResult VerifyMac(const KeyStore& keys, const NtpPacket& packet,
                     absl::Span<const uint8_t> bytes);

}  // namespace ntpfleet::ntp

#endif  // NTPFLEET_AGENT_NTP_AUTH_H_
