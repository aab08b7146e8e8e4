#include "agent/ntp/server.h"

#include <cstdint>
#include <utility>

#include "absl/types/span.h"
#include "agent/ntp/auth.h"
#include "common/ntp/packet.h"

namespace ntpfleet::ntp {

Responder::Responder(AccessList access, RateLimitOptions rate_limit,
                     const KeyStore* keys)
    : access_(std::move(access)), limiter_(rate_limit), keys_(keys) {}

Responder::Prepared Responder::Prepare(absl::Span<const uint8_t> request,
                                       const IpAddress& client,
                                       NtpTimestamp receive,
                                       const SystemVariables& system,
                                       clock::MonoTime now,
                                       absl::Span<uint8_t> reply) {
  Prepared out;
  const uint32_t flags = access_.Lookup(client);
  if (flags & kIgnore) {
    ++counters_.ignored;
    return out;
  }
  absl::StatusOr<PacketKind> kind = ClassifyPacket(request);
  if (!kind.ok()) {
    ++counters_.malformed;
    return out;
  }
  if (*kind == PacketKind::kPrivate) {
    ++counters_.private_dropped;
    return out;
  }
  if (*kind == PacketKind::kControl) {
    ++counters_.control_dropped;
    return out;
  }
  absl::StatusOr<NtpPacket> req = DecodePacket(request);
  if (!req.ok()) {
    ++counters_.malformed;
    return out;
  }
  if (req->mode != Mode::kClient) {
    ++counters_.not_client_mode;
    return out;
  }

  // Authentication (RFC 5905 §7.3): a request signed with a key we trust is
  // answered signed with the same key; an unknown key gets a crypto-NAK; a
  // wrong MAC is dropped.
  const Key* key = nullptr;
  bool crypto_nak = false;
  if (req->mac) {
    const AuthResult auth =
        keys_ ? VerifyMac(*keys_, *req, request) : AuthResult::kUnknownKey;
    switch (auth) {
      case AuthResult::kOk:
        key = keys_->Find(req->mac->key_id);
        break;
      case AuthResult::kUnknownKey:
        crypto_nak = true;
        break;
      default:
        ++counters_.auth_failed;
        return out;
    }
  }
  // A Kiss-o'-Death answer (RFC 5905 §7.4) instead of the time, or none.
  KissCode kiss = KissCode::kNotKiss;
  if ((flags & kNoServe) || ((flags & kNoTrust) && key == nullptr)) {
    // `noserve kod`: tell the client it is refused (DENY), so it stops asking
    // and can say why, instead of timing out as on a dead server. At most one
    // DENY per client per rate-limit interval, through the same limiter as the
    // RATE kisses: a refused address (spoofable) cannot turn the server into a
    // reflector. Without `kod`, and for `notrust`, the drop stays silent.
    if (!(flags & kNoServe) || !(flags & kKod) ||
        !limiter_.AllowKiss(client, now)) {
      ++counters_.refused_noserve;
      return out;
    }
    kiss = KissCode::kDeny;
    crypto_nak = false;  // a refused client learns only that it is refused
  }
  if (kiss == KissCode::kNotKiss && (flags & kLimited)) {
    switch (limiter_.Check(client, now, flags & kKod)) {
      case RateDecision::kAllow:
        break;
      case RateDecision::kDrop:
        ++counters_.rate_limited;
        return out;
      case RateDecision::kKissRate:
        kiss = KissCode::kRate;
        break;
    }
  }

  NtpPacket p;
  p.version = req->version;  // answer in the client's version
  p.mode = Mode::kServer;
  p.poll = req->poll;
  p.origin = req->transmit;
  p.receive = receive;
  if (kiss != KissCode::kNotKiss) {
    // RFC 5905 §7.4: stratum 0, the kiss code in the reference id.
    p.leap = Leap::kUnsynchronized;
    p.stratum = 0;
    p.reference_id = RefId::FromCode(kiss == KissCode::kDeny ? "DENY" : "RATE");
  } else {
    p.leap = system.leap;
    p.stratum = static_cast<uint8_t>(system.stratum);
    p.precision = system.precision;
    p.root_delay = NtpShort::FromDuration(system.root_delay);
    p.root_dispersion = NtpShort::FromDuration(system.root_dispersion);
    p.reference_id = system.reference_id;
    p.reference = system.reference_time;
  }
  absl::StatusOr<size_t> n = EncodePacket(p, reply);
  if (!n.ok()) {
    ++counters_.malformed;
    return out;
  }
  out.length = *n;
  if (crypto_nak) {
    // A crypto-NAK: key id 0 alone. Still no longer than the (signed) request.
    if (reply.size() >= out.length + kKeyIdSize) {
      for (size_t i = 0; i < kKeyIdSize; ++i) reply[out.length + i] = 0;
      out.length += kKeyIdSize;
    }
    ++counters_.crypto_nak_sent;
  } else if (kiss == KissCode::kDeny) {
    ++counters_.kod_deny_sent;
  } else if (kiss == KissCode::kRate) {
    ++counters_.kod_sent;
  } else {
    ++counters_.answered;
  }
  out.key = kiss != KissCode::kNotKiss ? nullptr : key;
  // Never an amplifier: the reply, MAC included, is no longer than the request.
  const size_t final_length =
      out.length +
      (out.key ? kKeyIdSize + ComputeDigest(*out.key, {}).size() : 0);
  if (final_length > request.size()) {
    out = Prepared{};
    ++counters_.malformed;
  }
  return out;
}

size_t Responder::Finish(const Prepared& prepared, NtpTimestamp transmit,
                         absl::Span<uint8_t> reply) const {
  if (prepared.length < kHeaderSize) return 0;
  uint8_t* t = reply.data() + 40;
  const uint64_t raw = transmit.raw();
  for (int i = 0; i < 8; ++i) t[i] = static_cast<uint8_t>(raw >> (56 - 8 * i));
  if (prepared.key == nullptr) return prepared.length;
  return AppendMac(*prepared.key, reply, prepared.length);
}

}  // namespace ntpfleet::ntp
