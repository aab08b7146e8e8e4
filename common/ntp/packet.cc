#include "common/ntp/packet.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace ntpfleet::ntp {
namespace {

uint16_t Get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t Get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | p[3];
}
uint64_t Get64(const uint8_t* p) {
  return (uint64_t{Get32(p)} << 32) | Get32(p + 4);
}

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
void Put64(uint8_t* p, uint64_t v) {
  Put32(p, static_cast<uint32_t>(v >> 32));
  Put32(p + 4, static_cast<uint32_t>(v));
}

// The trailing octets that can only be a MAC: a crypto-NAK (key id alone), key
// id + 16-octet digest (MD5, AES-128-CMAC) or key id + 20-octet digest (SHA-1).
// RFC 7822 §7.5 keeps extension fields from being confused with these lengths.
bool IsMacSize(size_t n) {
  return n == kKeyIdSize || n == kKeyIdSize + 16 ||
         n == kKeyIdSize + kMaxDigestSize;
}

Mac DecodeMac(const uint8_t* p, size_t n) {
  Mac mac;
  mac.key_id = Get32(p);
  mac.digest.assign(p + kKeyIdSize, p + n);
  return mac;
}

}  // namespace

absl::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kReserved:
      return "reserved";
    case Mode::kSymmetricActive:
      return "symmetric active";
    case Mode::kSymmetricPassive:
      return "symmetric passive";
    case Mode::kClient:
      return "client";
    case Mode::kServer:
      return "server";
    case Mode::kBroadcast:
      return "broadcast";
    case Mode::kControl:
      return "control";
    case Mode::kPrivate:
      return "private";
  }
  return "invalid";
}

RefId RefId::FromCode(absl::string_view code) {
  uint32_t raw = 0;
  for (size_t i = 0; i < 4; ++i) {
    const uint8_t c = i < code.size() ? static_cast<uint8_t>(code[i]) : 0;
    raw |= uint32_t{c} << (24 - 8 * i);
  }
  return RefId(raw);
}

std::string RefId::AsCode() const {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) {
    const char c = static_cast<char>((raw_ >> shift) & 0xff);
    if (c == '\0') break;
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

std::string RefId::AsIpv4() const {
  return absl::StrFormat("%d.%d.%d.%d", raw_ >> 24, (raw_ >> 16) & 0xff,
                         (raw_ >> 8) & 0xff, raw_ & 0xff);
}

std::string RefId::ToString(int stratum) const {
  // ntpq shows codes for primary servers, kisses and the unsynchronised
  // (stratum 16: "INIT").
  if (stratum <= 1 || stratum >= 16) return absl::StrCat(".", AsCode(), ".");
  return AsIpv4();
}

KissCode RefId::AsKissCode() const {
  if (*this == FromCode("RATE")) return KissCode::kRate;
  if (*this == FromCode("DENY")) return KissCode::kDeny;
  if (*this == FromCode("RSTR")) return KissCode::kRstr;
  return KissCode::kOther;
}

size_t NtpPacket::authenticated_size() const {
  size_t n = kHeaderSize;
  for (const ExtensionField& ef : extensions) n += ef.wire_size();
  return n;
}

size_t NtpPacket::wire_size() const {
  return authenticated_size() + (mac ? kKeyIdSize + mac->digest.size() : 0);
}

bool operator==(const NtpPacket& a, const NtpPacket& b) {
  return a.leap == b.leap && a.version == b.version && a.mode == b.mode &&
         a.stratum == b.stratum && a.poll == b.poll &&
         a.precision == b.precision && a.root_delay == b.root_delay &&
         a.root_dispersion == b.root_dispersion &&
         a.reference_id == b.reference_id && a.reference == b.reference &&
         a.origin == b.origin && a.receive == b.receive &&
         a.transmit == b.transmit && a.extensions == b.extensions &&
         a.mac == b.mac;
}

absl::StatusOr<PacketKind> ClassifyPacket(absl::Span<const uint8_t> bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("empty datagram");
  const int version = (bytes[0] >> 3) & 0x7;
  const auto mode = static_cast<Mode>(bytes[0] & 0x7);
  if (version < 1 || version > 4) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown NTP version %d (only 1 to 4 exist)", version));
  }
  switch (mode) {
    case Mode::kReserved:
      return absl::InvalidArgumentError("mode 0 is reserved");
    case Mode::kControl:
      return PacketKind::kControl;
    case Mode::kPrivate:
      return PacketKind::kPrivate;
    default:
      return PacketKind::kTime;
  }
}

absl::StatusOr<NtpPacket> DecodePacket(absl::Span<const uint8_t> bytes) {
  absl::StatusOr<PacketKind> kind = ClassifyPacket(bytes);
  if (!kind.ok()) return kind.status();
  if (*kind != PacketKind::kTime) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "mode %d (%s) message is not a time packet", bytes[0] & 0x7,
        ModeName(static_cast<Mode>(bytes[0] & 0x7))));
  }
  if (bytes.size() < kHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("short packet: %d octets, an NTP header is %d",
                        bytes.size(), kHeaderSize));
  }
  const uint8_t* p = bytes.data();
  NtpPacket packet;
  packet.leap = static_cast<Leap>(p[0] >> 6);
  packet.version = (p[0] >> 3) & 0x7;
  packet.mode = static_cast<Mode>(p[0] & 0x7);
  packet.stratum = p[1];
  packet.poll = static_cast<int8_t>(p[2]);
  packet.precision = static_cast<int8_t>(p[3]);
  packet.root_delay = NtpShort::FromRaw(Get32(p + 4));
  packet.root_dispersion = NtpShort::FromRaw(Get32(p + 8));
  packet.reference_id = RefId::FromRaw(Get32(p + 12));
  packet.reference = NtpTimestamp::FromRaw(Get64(p + 16));
  packet.origin = NtpTimestamp::FromRaw(Get64(p + 24));
  packet.receive = NtpTimestamp::FromRaw(Get64(p + 32));
  packet.transmit = NtpTimestamp::FromRaw(Get64(p + 40));

  size_t pos = kHeaderSize;
  const size_t size = bytes.size();
  if (packet.version < 4) {
    // NTPv1–v3 have no extension fields; anything after the header must be a
    // MAC.
    const size_t rest = size - pos;
    if (rest == 0) return packet;
    if (!IsMacSize(rest)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("NTPv%d packet has %d octets after the header: not a "
                          "MAC (4, 20 or 24 octets)",
                          packet.version, rest));
    }
    packet.mac = DecodeMac(p + pos, rest);
    return packet;
  }
  // RFC 7822 §7.5: walk extension fields until what is left is empty or a MAC.
  while (pos < size) {
    const size_t rest = size - pos;
    if (IsMacSize(rest)) {
      packet.mac = DecodeMac(p + pos, rest);
      break;
    }
    if (rest < kMinExtensionFieldSize) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%d octets left at offset %d: neither an extension "
                          "field (16 or more) nor a MAC "
                          "(4, 20 or 24); truncated MAC?",
                          rest, pos));
    }
    const uint16_t type = Get16(p + pos);
    const uint16_t length = Get16(p + pos + 2);
    if (length < kMinExtensionFieldSize || length % 4 != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("extension field at offset %d has length %d: must be "
                          "a multiple of 4, at least 16",
                          pos, length));
    }
    if (length > rest) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "extension field at offset %d: length %d overruns the packet (%d "
          "octets left)",
          pos, length, rest));
    }
    ExtensionField ef;
    ef.type = type;
    ef.value.assign(p + pos + 4, p + pos + length);
    packet.extensions.push_back(std::move(ef));
    pos += length;
  }
  return packet;
}

absl::StatusOr<size_t> EncodePacket(const NtpPacket& packet,
                                    absl::Span<uint8_t> out) {
  const auto leap = static_cast<uint8_t>(packet.leap);
  const auto mode = static_cast<uint8_t>(packet.mode);
  if (leap > 3)
    return absl::InvalidArgumentError(absl::StrFormat("leap %d > 3", leap));
  if (packet.version > 7) {
    return absl::InvalidArgumentError(
        absl::StrFormat("version %d > 7", packet.version));
  }
  if (mode > 5) {
    return absl::InvalidArgumentError(
        absl::StrFormat("mode %d is not a time-transfer mode", mode));
  }
  if (!packet.extensions.empty() && packet.version < 4) {
    return absl::InvalidArgumentError("extension fields need NTPv4");
  }
  for (const ExtensionField& ef : packet.extensions) {
    if (ef.value.size() % 4 != 0 || ef.wire_size() < kMinExtensionFieldSize ||
        ef.wire_size() > 0xffff) {
      return absl::InvalidArgumentError(
          absl::StrFormat("extension field of type 0x%04x: %d octets is not a "
                          "multiple of 4 in 16..65535",
                          ef.type, ef.wire_size()));
    }
  }
  if (packet.mac) {
    const size_t n = packet.mac->digest.size();
    if (n != 0 && n != 16 && n != 20) {
      return absl::InvalidArgumentError(
          absl::StrFormat("MAC digest of %d octets (must be 0, 16 or 20)", n));
    }
    if (n == 0 && !packet.extensions.empty()) {
      return absl::InvalidArgumentError(
          "a crypto-NAK cannot follow extension fields: it would read as a "
          "MAC");
    }
  } else if (!packet.extensions.empty() &&
             packet.extensions.back().wire_size() <
                 kMinLastExtensionFieldSize) {
    return absl::InvalidArgumentError(
        "without a MAC the last extension field must be at least 28 octets "
        "(RFC 7822 §7.5)");
  }
  const size_t size = packet.wire_size();
  if (out.size() < size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "buffer of %d octets, packet needs %d", out.size(), size));
  }
  uint8_t* p = out.data();
  p[0] = static_cast<uint8_t>((leap << 6) | (packet.version << 3) | mode);
  p[1] = packet.stratum;
  p[2] = static_cast<uint8_t>(packet.poll);
  p[3] = static_cast<uint8_t>(packet.precision);
  Put32(p + 4, packet.root_delay.raw());
  Put32(p + 8, packet.root_dispersion.raw());
  Put32(p + 12, packet.reference_id.raw());
  Put64(p + 16, packet.reference.raw());
  Put64(p + 24, packet.origin.raw());
  Put64(p + 32, packet.receive.raw());
  Put64(p + 40, packet.transmit.raw());
  size_t pos = kHeaderSize;
  for (const ExtensionField& ef : packet.extensions) {
    Put16(p + pos, ef.type);
    Put16(p + pos + 2, static_cast<uint16_t>(ef.wire_size()));
    std::copy(ef.value.begin(), ef.value.end(), p + pos + 4);
    pos += ef.wire_size();
  }
  if (packet.mac) {
    Put32(p + pos, packet.mac->key_id);
    std::copy(packet.mac->digest.begin(), packet.mac->digest.end(),
              p + pos + kKeyIdSize);
    pos += kKeyIdSize + packet.mac->digest.size();
  }
  return pos;
}

absl::StatusOr<std::vector<uint8_t>> EncodePacket(const NtpPacket& packet) {
  std::vector<uint8_t> out(packet.wire_size());
  absl::StatusOr<size_t> n = EncodePacket(packet, absl::MakeSpan(out));
  if (!n.ok()) return n.status();
  out.resize(*n);
  return out;
}

absl::StatusOr<ControlHeader> DecodeControlHeader(
    absl::Span<const uint8_t> bytes) {
  absl::StatusOr<PacketKind> kind = ClassifyPacket(bytes);
  if (!kind.ok()) return kind.status();
  if (*kind != PacketKind::kControl) {
    return absl::InvalidArgumentError(
        absl::StrFormat("mode %d is not a control message", bytes[0] & 0x7));
  }
  if (bytes.size() < kControlHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("short control message: %d octets, the header is %d",
                        bytes.size(), kControlHeaderSize));
  }
  const uint8_t* p = bytes.data();
  ControlHeader h;
  h.leap = static_cast<Leap>(p[0] >> 6);
  h.version = (p[0] >> 3) & 0x7;
  h.response = (p[1] & 0x80) != 0;
  h.error = (p[1] & 0x40) != 0;
  h.more = (p[1] & 0x20) != 0;
  h.opcode = p[1] & 0x1f;
  h.sequence = Get16(p + 2);
  h.status = Get16(p + 4);
  h.association_id = Get16(p + 6);
  h.offset = Get16(p + 8);
  h.count = Get16(p + 10);
  if (h.count > bytes.size() - kControlHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("control message claims %d data octets, %d present",
                        h.count, bytes.size() - kControlHeaderSize));
  }
  return h;
}

}  // namespace ntpfleet::ntp
