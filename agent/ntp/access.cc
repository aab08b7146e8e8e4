#include "agent/ntp/access.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ntpfleet::ntp {
namespace {

// True if the first `bits` bits of a and b agree.
bool PrefixMatches(const IpAddress& a, const IpAddress& b, size_t bits) {
  for (size_t i = 0; i < bits / 8; ++i) {
    if (a.octets[i] != b.octets[i]) return false;
  }
  const size_t rest = bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.octets[bits / 8] & mask) == (b.octets[bits / 8] & mask);
}

}  // namespace

IpAddress IpAddress::V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddress ip;
  ip.octets[0] = a;
  ip.octets[1] = b;
  ip.octets[2] = c;
  ip.octets[3] = d;
  return ip;
}

absl::StatusOr<IpAddress> IpAddress::Parse(absl::string_view text) {
  const std::string s(text);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.octets.data()) == 1) return ip;
  ip.v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), ip.octets.data()) == 1) {
    // An IPv4-mapped IPv6 address (::ffff:a.b.c.d, as dual-stack sockets report
    // IPv4 clients) is the IPv4 client it stands for.
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                            0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped, kMapped + 12, ip.octets.begin())) {
      return V4(ip.octets[12], ip.octets[13], ip.octets[14], ip.octets[15]);
    }
    return ip;
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("'%s' is not an IP address", text));
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, octets.data(), buf, sizeof(buf));
  return buf;
}

void AccessList::Add(const AccessRule& rule) {
  std::vector<AccessRule>& list = rule.address.v6 ? v6_ : v4_;
  for (AccessRule& r : list) {
    if (r.prefix_length == rule.prefix_length &&
        PrefixMatches(r.address, rule.address, rule.prefix_length)) {
      r.flags = rule.flags;
      return;
    }
  }
  list.push_back(rule);
}

bool AccessList::MaskToPrefix(const IpAddress& mask, size_t* prefix_length) {
  size_t n = 0;
  bool zero_seen = false;
  for (size_t i = 0; i < mask.bits(); ++i) {
    const bool bit = (mask.octets[i / 8] >> (7 - i % 8)) & 1;
    if (bit && zero_seen) return false;
    if (bit) {
      ++n;
    } else {
      zero_seen = true;
    }
  }
  *prefix_length = n;
  return true;
}

uint32_t AccessList::Lookup(const IpAddress& client) const {
  const std::vector<AccessRule>& list = client.v6 ? v6_ : v4_;
  const AccessRule* best = nullptr;
  for (const AccessRule& r : list) {
    if (PrefixMatches(r.address, client, r.prefix_length) &&
        (best == nullptr || r.prefix_length > best->prefix_length)) {
      best = &r;
    }
  }
  return best ? best->flags : 0;
}

RateLimiter::RateLimiter(const RateLimitOptions& options)
    : options_(options),
      refill_seconds_(std::ldexp(1.0, options.average)),
      minimum_(absl::Seconds(std::ldexp(1.0, options.minimum))) {
  size_t buckets = 1;
  while (buckets * kWays < options.max_clients) buckets *= 2;
  // The table (64 B a client) is allocated by the first Check: an agent
  // that is only a client never pays for it.
  buckets_mask_ = buckets - 1;
}

size_t RateLimiter::clients() const {
  size_t n = 0;
  for (const Entry& e : table_) n += e.used;
  return n;
}

RateLimiter::Entry* RateLimiter::Find(const IpAddress& client,
                                      clock::MonoTime now, bool* added) {
  if (table_.empty()) table_.resize((buckets_mask_ + 1) * kWays);
  Entry* bucket =
      &table_[(absl::Hash<IpAddress>()(client) & buckets_mask_) * kWays];
  Entry* oldest = bucket;
  for (size_t i = 0; i < kWays; ++i) {
    Entry& c = bucket[i];
    if (c.used && c.ip == client) {
      *added = false;
      return &c;
    }
    if (!c.used || (oldest->used && c.last < oldest->last)) oldest = &c;
  }
  // A new client (or one forgotten) replaces the one seen longest ago.
  *oldest = Entry{true, client, now,
                  clock::MonoTime::FromDuration(-absl::InfiniteDuration()),
                  options_.burst};
  *added = true;
  return oldest;
}

RateDecision RateLimiter::Check(const IpAddress& client, clock::MonoTime now,
                                bool kod) {
  bool added = false;
  Entry* e = Find(client, now, &added);
  if (added) {
    // Its first packet is always answered.
    e->tokens -= 1;
    return RateDecision::kAllow;
  }
  const absl::Duration since = now - e->last;
  e->tokens =
      std::min(options_.burst,
               e->tokens + absl::ToDoubleSeconds(since) / refill_seconds_);
  e->last = now;
  if (since >= minimum_ && e->tokens >= 1) {
    e->tokens -= 1;
    return RateDecision::kAllow;
  }
  if (kod && now - e->last_kod >= absl::Seconds(refill_seconds_)) {
    e->last_kod = now;
    return RateDecision::kKissRate;
  }
  return RateDecision::kDrop;
}

bool RateLimiter::AllowKiss(const IpAddress& client, clock::MonoTime now) {
  bool added = false;
  Entry* e = Find(client, now, &added);
  e->last = now;
  if (now - e->last_kod < absl::Seconds(refill_seconds_)) return false;
  e->last_kod = now;
  return true;
}

}  // namespace ntpfleet::ntp
