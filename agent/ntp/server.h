// The server side of NTP (RFC 5905 §9.2 fast_xmit): answers client (mode 3)
// requests with server (mode 4) replies carrying the system variables, after
// access control, rate limiting and authentication. Pure: the IO layer passes
// the datagram, the client's address and the kernel's receive timestamp, and
// sends what comes back.
//
// The transmit timestamp is written last, as late as possible, by Finish() —
// which also computes the MAC, since the MAC covers it:
//
//   Responder::Prepared r = responder.Prepare(bytes, client, rx_time, system,
//   now, reply_buf); if (r.length > 0) { r.length = responder.Finish(r,
//   clock.Now(), reply_buf); sendto(...); }
//
// Never an amplifier: a reply is never longer than its request; mode 7
// (ntpdc/monlist, CVE-2013-5211) is never answered, mode 6 (ntpq) is not
// answered either (counted; `noquery` clients are simply part of that), and
// symmetric/broadcast modes are ignored.
#ifndef NTPFLEET_AGENT_NTP_SERVER_H_
#define NTPFLEET_AGENT_NTP_SERVER_H_

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "agent/clock/clock.h"
#include "agent/ntp/access.h"
#include "agent/ntp/auth.h"
#include "common/ntp/packet.h"

namespace ntpfleet::ntp {

// What the server says about itself (from the engine's status).
struct SystemVariables {
  Leap leap = Leap::kUnsynchronized;
  int stratum = 16;
  int8_t precision = -20;  // log2 s of the clock reading
  RefId reference_id = RefId::FromCode("INIT");
  absl::Duration root_delay;
  absl::Duration root_dispersion;
  NtpTimestamp reference_time;  // when the clock was last updated
};

// Every request is counted in exactly one of these.
struct ServerCounters {
  uint64_t answered = 0;
  uint64_t malformed = 0;  // not decodable
  uint64_t ignored = 0;    // `restrict ignore`
  uint64_t refused_noserve =
      0;  // `restrict noserve`, or `notrust` without authentication
  uint64_t rate_limited = 0;     // dropped by `limited`
  uint64_t kod_sent = 0;         // answered with KoD RATE
  uint64_t kod_deny_sent = 0;    // `noserve kod`: answered with KoD DENY
  uint64_t control_dropped = 0;  // mode 6
  uint64_t private_dropped = 0;  // mode 7
  uint64_t not_client_mode = 0;  // modes 1, 2, 4, 5
  uint64_t auth_failed = 0;      // bad MAC: dropped
  uint64_t crypto_nak_sent = 0;  // unknown key: answered with a crypto-NAK
};

class Responder {
 public:
  Responder(AccessList access, RateLimitOptions rate_limit,
            const KeyStore* keys);

  struct Prepared {
    size_t length = 0;         // 0: no reply
    const Key* key = nullptr;  // sign with this in Finish()
  };
  // Builds the reply (all but the transmit timestamp and MAC) in `reply` (>=
  // request size and
  // >= 48 octets + room for a MAC).
  Prepared Prepare(absl::Span<const uint8_t> request, const IpAddress& client,
                   NtpTimestamp receive, const SystemVariables& system,
                   clock::MonoTime now, absl::Span<uint8_t> reply);
  // Writes the transmit timestamp and the MAC; returns the final length.
  size_t Finish(const Prepared& prepared, NtpTimestamp transmit,
                absl::Span<uint8_t> reply) const;

  const ServerCounters& counters() const { return counters_; }
  const AccessList& access() const { return access_; }

 private:
  AccessList access_;
  RateLimiter limiter_;
  const KeyStore* keys_;
  ServerCounters counters_;
};

}  // namespace ntpfleet::ntp

#endif  // NTPFLEET_AGENT_NTP_SERVER_H_
