// One upstream NTP server, as a sans-IO state machine (RFC 5905 §9 peer
// process, §13 poll process). It builds requests, checks responses and turns
// them into samples; it never touches a socket or a clock. The caller (the
// engine) drives it with events and carries out its actions:
//
//   HandleTimer(now)                       the poll timer fired: maybe
//   SendRequest OnTransmit(t1, now)                    the request just left;
//   t1 = local clock, read as late
//                                          as possible before sending
//   HandleResponse(bytes, t4, now)         a datagram from this source's
//   address; t4 = local
//                                          clock at reception (kernel timestamp
//                                          if available)
//
// Requests carry a random transmit timestamp (as chrony does): the reply must
// echo it as its origin timestamp (RFC 5905 §8), which an off-path attacker
// cannot guess, and which makes every reply to an old or duplicated request
// recognisable. Our real transmit time never leaves the node.
//
// Offsets follow RFC 5905 §8: θ = ((T2 - T1) + (T3 - T4)) / 2 (reference minus
// local), δ = (T4 - T1) - (T3 - T2).
#ifndef NTPFLEET_AGENT_NTP_SOURCE_H_
#define NTPFLEET_AGENT_NTP_SOURCE_H_

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "agent/clock/clock.h"
#include "agent/ntp/auth.h"
#include "common/ntp/packet.h"

namespace ntpfleet::ntp {

struct SourceConfig {
  // As configured: "ntp1.aliyun.com", "192.168.242.51".
  std::string name;
  // Where replies come from, "ip:port"; empty while unresolved.
  std::string address;
  int minpoll = 6;   // log2 s (RFC 5905 MINPOLL default 6 = 64 s)
  int maxpoll = 10;  // log2 s (1024 s)
  // A burst of kBurstSize requests ~2 s apart at start and when unreachable.
  bool iburst = false;
  bool burst = false;  // a burst at every poll while reachable
  bool prefer = false;
  // From this poll exponent up, each poll sends two requests kBurstSpacing
  // apart (0: never).
  int pair_from_poll = 10;
  int version = 4;
  // Samples whose root distance exceeds this are not used (ntpd's `tos
  // maxdist`).
  absl::Duration max_distance = absl::Milliseconds(1500);
  // This node's clock-reading precision, log2 s (RFC 5905 sys.precision): the
  // smallest delay a sample can have (RFC 5905 Appendix A.5.1.1).
  int precision = -20;
  // `server ... key N`: requests are signed with this key, and only replies
  // signed with it (RFC 5905 §7.3, RFC 8573) are accepted.
  std::optional<Key> key;
  // Monitor-only sources (Engine::AddMonitor): one request every
  // `fixed_interval` exactly (no randomisation, no adaptive poll, no backoff;
  // a KoD RATE floor still lengthens it), instead of 2^poll.
  std::optional<absl::Duration> fixed_interval;
  // Monitor-only sources: a reply from an unsynchronised server (leap alarm,
  // stratum 15 or 16) or one beyond max_distance is still a sample (its clock
  // is a fact); the health still says kUnsynchronized or kTooFar.
  bool measure_unfit = false;
};

// How a source stands, with the reason in words for the ones that cannot be
// used.
enum class SourceHealth {
  kNew,             // no reply yet
  kOk,              // replying with usable samples
  kUnreachable,     // 8 polls without a valid reply
  kUnsynchronized,  // replies, but says it is not synchronised (stratum 16 or
                    // leap 3), or is at stratum 15: too high to synchronise
                    // from
  kTooFar,          // root distance beyond maxdist
  kDenied,          // Kiss-o'-Death DENY or RSTR: we stopped asking
  kUnresolved,      // name not resolved yet, or to no address it may poll
};

// One accepted measurement (RFC 5905 §8), offsets relative to the corrected
// local clock.
struct Sample {
  clock::MonoTime time;   // monotonic midpoint of the exchange
  absl::Duration offset;  // θ, reference minus local
  // |δ|, at least 2^precision (RFC 5905 A.5.1.1; ntpd takes |δ|).
  absl::Duration delay;
  absl::Duration dispersion;  // ε: both ends' precision
  // What the server said about itself (for root distance and the system
  // variables).
  int stratum = 0;
  Leap leap = Leap::kNone;
  RefId reference_id;
  absl::Duration root_delay;
  absl::Duration root_dispersion;
};

// Actions for the caller to carry out.
struct SendRequest {
  std::vector<uint8_t> bytes;  // then call OnTransmit()
};
struct ArmTimer {
  clock::MonoTime at;  // call HandleTimer() then (replaces any earlier request)
};
struct SampleAccepted {
  Sample sample;
};
struct HealthChanged {
  SourceHealth from;
  SourceHealth to;
  std::string reason;
};
using SourceAction =
    std::variant<SendRequest, ArmTimer, SampleAccepted, HealthChanged>;

// Counters of what arrived, for `ntpfleetctl` and tests; every dropped datagram
// is counted once.
struct SourceCounters {
  uint64_t requests = 0;
  // Accepted as the answer to our request.
  uint64_t responses = 0;
  // Could not be decoded.
  uint64_t malformed = 0;
  uint64_t not_server_mode = 0;
  // The origin timestamp is not the one we sent.
  uint64_t bogus_origin = 0;
  // No request outstanding (late, duplicated or replayed).
  uint64_t duplicate = 0;
  // Zero receive or transmit timestamp.
  uint64_t bogus_timestamps = 0;
  // Unsigned, wrongly signed, or a crypto-NAK, with a key configured.
  uint64_t auth_failed = 0;
  // Leap 3, stratum 16, or stratum 15 (see kUnsynchronized).
  uint64_t unsynchronized = 0;
  uint64_t too_far = 0;
  // The local clock was stepped during the exchange.
  uint64_t voided_by_step = 0;
  uint64_t kod_rate = 0;
  uint64_t kod_deny = 0;
};

class Source {
 public:
  // The iburst/burst size (RFC 5905 §13: ntpd sends eight).
  static constexpr int kBurstSize = 8;
  // A KoD RATE floor comes down one step after this many replies without
  // another RATE kiss.
  static constexpr int kRateFloorDecayReplies = 8;
  static constexpr absl::Duration kBurstSpacing = absl::Seconds(2);

  Source(const SourceConfig& config, uint64_t seed);

  // Schedules the first poll shortly after `now` (randomised, under a second).
  std::vector<SourceAction> Start(clock::MonoTime now);
  std::vector<SourceAction> HandleTimer(clock::MonoTime now);
  void OnTransmit(absl::Time t1_local, clock::MonoTime now);
  std::vector<SourceAction> HandleResponse(absl::Span<const uint8_t> bytes,
                                           absl::Time t4_local,
                                           clock::MonoTime now);

  // The local clock was stepped: the outstanding exchange (if any) straddles it
  // and is void.
  void ClockStepped();
  // The engine's view of how long this source may be polled (log2 s), clamped
  // to the source's [minpoll, maxpoll] and any KoD RATE floor. Takes effect at
  // the next poll.
  void SetPollExponent(int poll);
  // How many requests each poll sends, kBurstSpacing apart (1..kBurstSize):
  // the engine asks for more on a path too noisy for one sample per minpoll
  // interval. Takes effect at the next poll; only while reachable.
  void SetRequestsPerPoll(int n);
  int requests_per_poll() const { return requests_per_poll_; }
  // Starts a burst now (a forced resync): `count` requests kBurstSpacing apart.
  std::vector<SourceAction> StartBurst(clock::MonoTime now, int count);
  // A new address for the name (after DNS resolution); an empty one marks it
  // unresolved, with `why_none` as the reason when given ("never polled:
  // ..."; default "cannot resolve NAME, retrying"). A name that just resolved
  // is polled at once (with its start-up burst if iburst).
  std::vector<SourceAction> SetAddress(const std::string& address,
                                       clock::MonoTime now,
                                       std::string why_none = "");

  const SourceConfig& config() const { return config_; }
  const std::string& address() const { return config_.address; }
  SourceHealth health() const { return health_; }
  const std::string& reason() const { return reason_; }
  uint8_t reach() const { return reach_; }
  int poll_exponent() const { return poll_; }
  clock::MonoTime next_poll() const { return next_poll_; }
  bool bursting() const { return burst_left_ > 0; }
  // The last reply's view of the server (valid after the first reply).
  int stratum() const { return stratum_; }
  RefId reference_id() const { return reference_id_; }
  clock::MonoTime last_response() const { return last_response_; }
  bool has_response() const { return counters_.responses > 0; }
  const SourceCounters& counters() const { return counters_; }
  // The transmit timestamp of the outstanding request (zero: none): which of
  // two sources at one address a reply answers.
  NtpTimestamp expected_origin() const { return expected_origin_; }

 private:
  void SetHealth(SourceHealth health, std::string reason,
                 std::vector<SourceAction>* out);
  void ScheduleNext(clock::MonoTime now, std::vector<SourceAction>* out);

  SourceConfig config_;
  KeyStore keys_;  // config_.key, trusted: what replies are checked against
  std::mt19937_64 rng_;
  SourceHealth health_ = SourceHealth::kNew;
  std::string reason_;
  int poll_;
  int poll_floor_;  // raised by KoD RATE, decays (kRateFloorDecayReplies)
  int replies_since_rate_ = 0;
  // iburst: burst at the first reply after the source was unreachable.
  bool burst_on_return_ = false;
  uint8_t reach_ = 0;
  int polls_ = 0;  // polls since start (a burst is one)
  int burst_left_ = 0;
  int requests_per_poll_ = 1;
  clock::MonoTime next_poll_ = clock::MonoTime::Infinite();

  // The outstanding request.
  NtpTimestamp expected_origin_;  // zero: none outstanding
  absl::Time t1_local_;
  clock::MonoTime t1_mono_;
  bool transmitted_ = false;
  bool voided_ = false;

  int stratum_ = 16;
  RefId reference_id_;
  clock::MonoTime last_response_;
  SourceCounters counters_;
};

}  // namespace ntpfleet::ntp

#endif  // NTPFLEET_AGENT_NTP_SOURCE_H_
