// The NTP packet codec (RFC 5905 §7.3, extension fields per RFC 7822, MACs per
// RFC 5905 §7.3 and RFC 8573). Pure: bytes in, values out; no IO, no clocks.
//
// Decoding never reads past the input and never crashes: every malformed input
// yields an InvalidArgument status that says what is wrong and where ("short
// packet: 47 bytes, an NTP header is 48"). Callers drop and count such packets;
// they are expected, not exceptional.
//
// Wire values are kept raw (timestamps as 64-bit, root delay/dispersion
// as 16.16) so that a decoded packet re-encodes to the same bytes.
//
// Mode 6 (control, RFC 9327) and mode 7 (ntpd's private mode) messages have a
// different layout; ClassifyPacket() recognises them so a server can refuse or
// ignore them, and DecodeControlHeader() reads a mode 6 header. DecodePacket()
// only accepts the time-transfer modes 1–5.
//
// Example:
//   absl::StatusOr<NtpPacket> p = DecodePacket(bytes);
//   if (!p.ok()) { ++stats.malformed; return; }
//   if (p->mode == Mode::kServer && p->IsKissOfDeath()) ...
#ifndef NTPFLEET_COMMON_NTP_PACKET_H_
#define NTPFLEET_COMMON_NTP_PACKET_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/ntp/timestamp.h"

namespace ntpfleet::ntp {

inline constexpr size_t kHeaderSize = 48;
// RFC 7822 §3: an extension field is at least 16 octets and a multiple of 4.
inline constexpr size_t kMinExtensionFieldSize = 16;
// RFC 7822 §7.5: without a MAC, the last extension field is at least 28 octets
// (so that it cannot be mistaken for a 20- or 24-octet MAC).
inline constexpr size_t kMinLastExtensionFieldSize = 28;
// MAC = 32-bit key id + digest (RFC 5905 §7.3): MD5 and AES-128-CMAC have
// 16-octet digests, SHA-1 has 20. A key id alone (4 octets, key id 0) is a
// crypto-NAK.
inline constexpr size_t kKeyIdSize = 4;
inline constexpr size_t kMaxDigestSize = 20;

// RFC 5905 §7.3 leap indicator.
enum class Leap : uint8_t {
  kNone = 0,
  kInsertSecond = 1,  // last minute of the day has 61 s
  kDeleteSecond = 2,  // last minute of the day has 59 s
  kUnsynchronized = 3,
};

// RFC 5905 §7.3 association modes.
enum class Mode : uint8_t {
  kReserved = 0,
  kSymmetricActive = 1,
  kSymmetricPassive = 2,
  kClient = 3,
  kServer = 4,
  kBroadcast = 5,
  kControl = 6,  // NTP control messages (ntpq), RFC 9327
  kPrivate = 7,  // ntpd's private mode (ntpdc, monlist): never answered
};

absl::string_view ModeName(Mode mode);

// Kiss-o'-Death codes a server may send with stratum 0 (RFC 5905 §7.4).
enum class KissCode { kNotKiss, kRate, kDeny, kRstr, kOther };

// The 32-bit reference identifier (RFC 5905 §7.3). Its meaning depends on the
// sender's stratum: stratum 0 — a kiss code; stratum 1 — a 4-character source
// code such as "GPS", "PPS", "LOCL"; stratum 2+ — the IPv4 address of the
// upstream (or the first 4 octets of the MD5 of an IPv6 address).
class RefId {
 public:
  constexpr RefId() = default;
  static constexpr RefId FromRaw(uint32_t raw) { return RefId(raw); }
  // Up to 4 ASCII characters, NUL-padded ("GPS" -> 'G','P','S','\0').
  static RefId FromCode(absl::string_view code);
  // a.b.c.d -> (a<<24)|(b<<16)|(c<<8)|d.
  static constexpr RefId FromIpv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return RefId((uint32_t{a} << 24) | (uint32_t{b} << 16) |
                 (uint32_t{c} << 8) | d);
  }

  constexpr uint32_t raw() const { return raw_; }
  // The 4 octets as ASCII with trailing NULs dropped; non-printable octets as
  // '?'.
  std::string AsCode() const;
  // Dotted quad.
  std::string AsIpv4() const;
  // How ntpq shows it for a sender at `stratum`: ".GPS." / ".RATE." for stratum
  // 0–1 codes, a dotted quad otherwise.
  std::string ToString(int stratum) const;
  KissCode AsKissCode() const;

  friend constexpr bool operator==(RefId a, RefId b) {
    return a.raw_ == b.raw_;
  }
  friend constexpr bool operator!=(RefId a, RefId b) {
    return a.raw_ != b.raw_;
  }

 private:
  explicit constexpr RefId(uint32_t raw) : raw_(raw) {}
  uint32_t raw_ = 0;
};

// One RFC 7822 extension field: 16-bit type, 16-bit length (header included),
// value padded to a multiple of 4 octets. `value` holds the octets after the
// 4-octet header, padding included.
struct ExtensionField {
  uint16_t type = 0;
  std::vector<uint8_t> value;

  size_t wire_size() const { return 4 + value.size(); }
  friend bool operator==(const ExtensionField& a, const ExtensionField& b) {
    return a.type == b.type && a.value == b.value;
  }
};

// A trailing message authentication code. An empty digest is a crypto-NAK (RFC
// 5905 §7.4: key id 0, no digest), which a server sends for a request whose key
// it does not know.
struct Mac {
  uint32_t key_id = 0;
  std::vector<uint8_t>
      digest;  // 0 (crypto-NAK), 16 (MD5, AES-128-CMAC) or 20 (SHA-1) octets

  bool is_crypto_nak() const { return digest.empty(); }
  friend bool operator==(const Mac& a, const Mac& b) {
    return a.key_id == b.key_id && a.digest == b.digest;
  }
};

// A time-transfer packet (modes 1–5).
struct NtpPacket {
  Leap leap = Leap::kNone;
  uint8_t version = 4;  // 1..4 are accepted on decode
  Mode mode = Mode::kClient;
  uint8_t stratum =
      0;  // 0 = unspecified or kiss, 1 = primary, 2..15 secondary, 16 unsync
  int8_t poll = 0;           // log2 seconds
  int8_t precision = 0;      // log2 seconds, e.g. -20 ≈ 1 µs
  NtpShort root_delay;       // round-trip delay to the primary source
  NtpShort root_dispersion;  // total dispersion to the primary source
  RefId reference_id;
  NtpTimestamp reference;  // when the sender's clock was last set or corrected
  NtpTimestamp origin;     // T1: the request's transmit timestamp, echoed
  NtpTimestamp receive;    // T2: when the request arrived at the server
  NtpTimestamp transmit;   // T3: when this packet left
  std::vector<ExtensionField> extensions;  // NTPv4 only
  std::optional<Mac> mac;

  // A server reply with stratum 0 carries a kiss code in reference_id (RFC 5905
  // §7.4).
  bool IsKissOfDeath() const { return mode == Mode::kServer && stratum == 0; }
  KissCode kiss_code() const {
    return IsKissOfDeath() ? reference_id.AsKissCode() : KissCode::kNotKiss;
  }
  // Octets covered by the MAC: the header and the extension fields.
  size_t authenticated_size() const;
  size_t wire_size() const;

  friend bool operator==(const NtpPacket& a, const NtpPacket& b);
};

// What a datagram on the NTP port is, from its first octet.
enum class PacketKind {
  kTime,     // modes 1–5: decode with DecodePacket()
  kControl,  // mode 6: ntpq's control protocol
  kPrivate,  // mode 7: ntpdc's private protocol (monlist) — never answered
};
// InvalidArgument for an empty datagram, mode 0 or an unknown version.
absl::StatusOr<PacketKind> ClassifyPacket(absl::Span<const uint8_t> bytes);

absl::StatusOr<NtpPacket> DecodePacket(absl::Span<const uint8_t> bytes);

// Writes the packet into `out` and returns the number of octets written.
// InvalidArgument if a field cannot be represented (version > 7, a mode 6/7
// packet, an extension field whose value is not a multiple of 4 or shorter than
// the minimum, a digest of another size) or `out` is too small.
absl::StatusOr<size_t> EncodePacket(const NtpPacket& packet,
                                    absl::Span<uint8_t> out);
// The same, into a new vector.
absl::StatusOr<std::vector<uint8_t>> EncodePacket(const NtpPacket& packet);

// The 12-octet header of an NTP control message (mode 6, RFC 9327 §2).
struct ControlHeader {
  Leap leap = Leap::kNone;
  uint8_t version = 0;
  bool response = false;
  bool error = false;
  bool more = false;
  uint8_t opcode = 0;  // 1 = read status, 2 = read variables, ...
  uint16_t sequence = 0;
  uint16_t status = 0;
  uint16_t association_id = 0;
  uint16_t offset = 0;
  uint16_t count = 0;  // octets of data following the header
};
inline constexpr size_t kControlHeaderSize = 12;
absl::StatusOr<ControlHeader> DecodeControlHeader(
    absl::Span<const uint8_t> bytes);

}  // namespace ntpfleet::ntp

#endif  // NTPFLEET_COMMON_NTP_PACKET_H_
