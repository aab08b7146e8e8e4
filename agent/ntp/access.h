// Access control with ntpd's `restrict` semantics, and per-client rate limiting
// (`limited`, `kod`, `discard`). Pure: addresses and monotonic times come in;
// decisions come out.
//
// Matching (as ntpd): the rule with the longest matching prefix wins; IPv4 and
// IPv6 keep separate lists, each with its own default (`restrict default` sets
// both, `restrict -4 default` only IPv4). A client no rule matches gets no
// restrictions.
//
// Rate limiting (ntpd's `discard average A minimum M`, A = 3 and M = 1 by
// default): every client address has a token bucket of 8 packets refilled one
// per 2^A s, and packets closer than 2^M s to the previous one are over the
// limit too. Over the limit and `limited`: dropped, or answered with a
// Kiss-o'-Death RATE when `kod` is also set, at most one KoD per client per 2^A
// s so that KoDs cannot be used for amplification either. `noserve kod`
// clients get a KoD DENY instead of silence, limited the same way. The table of
// clients is bounded (least recently seen evicted first).
#ifndef NTPFLEET_AGENT_NTP_ACCESS_H_
#define NTPFLEET_AGENT_NTP_ACCESS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"

namespace ntpfleet::ntp {

// A client's IP address: 4 or 16 octets.
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> octets{};  // IPv4 in the first 4

  static IpAddress V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);
  // "192.0.2.1", "::1", "2001:db8::5".
  static absl::StatusOr<IpAddress> Parse(absl::string_view text);
  std::string ToString() const;
  size_t bits() const { return v6 ? 128 : 32; }
  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    return a.v6 == b.v6 && a.octets == b.octets;
  }
  template <typename H>
  friend H AbslHashValue(H h, const IpAddress& a) {
    return H::combine(std::move(h), a.v6, a.octets);
  }
};

// ntpd restrict flags.
enum RestrictFlag : uint32_t {
  kIgnore = 1 << 0,    // drop every packet silently
  kNoModify = 1 << 1,  // refuse mode 6/7 writes (we never allow any)
  kNoQuery = 1 << 2,   // refuse mode 6/7 queries
  kNoTrap = 1 << 3,
  kNoPeer = 1 << 4,   // refuse symmetric associations (we never create any)
  kNoTrust = 1 << 5,  // only authenticated requests are served
  kKod = 1 << 6,      // answer rate-limited clients with KoD RATE
  kLimited = 1 << 7,  // rate-limit this client
  kNoServe = 1 << 8,  // refuse time requests
};

struct AccessRule {
  IpAddress address;
  size_t prefix_length = 0;  // 0 with the family's default
  uint32_t flags = 0;
};

class AccessList {
 public:
  // Later rules for the same prefix replace earlier ones (as ntpd).
  void Add(const AccessRule& rule);
  // A prefix from an address and a dotted mask ("255.255.0.0"); false if the
  // mask is not contiguous.
  static bool MaskToPrefix(const IpAddress& mask, size_t* prefix_length);
  uint32_t Lookup(const IpAddress& client) const;

 private:
  std::vector<AccessRule> v4_;
  std::vector<AccessRule> v6_;
};

struct RateLimitOptions {
  int average =
      3;  // log2 s between packets on average (ntpd `discard average`)
  int minimum = 1;   // log2 s: packets closer than this are over the limit
                     // (`discard minimum`)
  double burst = 8;  // packets a client may send back to back
  size_t max_clients = 1 << 16;
};

enum class RateDecision { kAllow, kDrop, kKissRate };

// A fixed-size table (no allocation per client, as chrony's client log): each
// address hashes to a bucket of kWays entries, and a new client replaces the
// entry seen longest ago in its bucket. Sized for `max_clients`.
class RateLimiter {
 public:
  explicit RateLimiter(const RateLimitOptions& options = {});
  // Records a packet from `client` at `now` and decides; `kod` is the client's
  // kod flag.
  RateDecision Check(const IpAddress& client, clock::MonoTime now, bool kod);
  // Records a refused packet (`noserve kod`) from `client` at `now`; true when
  // it may be answered with a KoD DENY: at most one kiss per client per 2^A s
  // (RATE and DENY share the interval).
  bool AllowKiss(const IpAddress& client, clock::MonoTime now);
  // Clients in the table (counts them: for tests).
  size_t clients() const;

 private:
  static constexpr size_t kWays = 4;
  struct Entry {
    bool used = false;
    IpAddress ip;
    clock::MonoTime last;
    clock::MonoTime last_kod;
    double tokens = 0;
  };
  // The client's entry; a new one (with a full bucket, `*added` set) replaces
  // the entry seen longest ago in its bucket.
  Entry* Find(const IpAddress& client, clock::MonoTime now, bool* added);

  RateLimitOptions options_;
  double refill_seconds_;     // seconds per token
  absl::Duration minimum_;    // closer than this is over the limit
  std::vector<Entry> table_;  // empty until the first Check
  size_t buckets_mask_;
};

}  // namespace ntpfleet::ntp

#endif  // NTPFLEET_AGENT_NTP_ACCESS_H_
