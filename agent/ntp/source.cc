#include "agent/ntp/source.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/ntp/packet.h"
#include "common/ntp/timestamp.h"

namespace ntpfleet::ntp {
namespace {

// RFC 5905 §7.2: the largest poll exponent anyone should use (36 h).
constexpr int kMaxPollLimit = 17;
// RFC 5905 §7.3 MAXSTRAT: stratum 16 means unsynchronised.
constexpr int kMaxStratum = 16;

}  // namespace

Source::Source(const SourceConfig& config, uint64_t seed)
    : config_(config),
      rng_(seed),
      poll_(config.minpoll),
      poll_floor_(config.minpoll) {
  if (config_.address.empty()) {
    health_ = SourceHealth::kUnresolved;
    reason_ = absl::StrFormat("cannot resolve %s, retrying", config_.name);
  }
  if (config_.key) {
    keys_.Add(*config_.key);
    keys_.Trust(config_.key->id);
  }
}

void Source::SetHealth(SourceHealth health, std::string reason,
                       std::vector<SourceAction>* out) {
  if (health == health_ && reason == reason_) return;
  out->push_back(HealthChanged{health_, health, reason});
  health_ = health;
  reason_ = std::move(reason);
}

std::vector<SourceAction> Source::Start(clock::MonoTime now) {
  std::vector<SourceAction> out;
  // A little randomness so that a fleet restarted at once does not poll in
  // lockstep.
  next_poll_ = now + absl::Milliseconds(
                         std::uniform_int_distribution<int>(0, 500)(rng_));
  out.push_back(ArmTimer{next_poll_});
  return out;
}

void Source::ScheduleNext(clock::MonoTime now, std::vector<SourceAction>* out) {
  absl::Duration interval;
  if (burst_left_ > 0) {
    interval = kBurstSpacing;
  } else if (config_.fixed_interval) {
    // Exactly the interval (a monitor: "at most one probe per 64 s" holds
    // for every pair), or the KoD RATE floor if longer.
    interval = *config_.fixed_interval;
    if (poll_floor_ > config_.minpoll) {
      interval = std::max(interval, absl::Seconds(std::ldexp(1.0, poll_)));
    }
  } else {
    // 2^poll seconds, up to 1/16 earlier at random (RFC 5905 §13 randomises to
    // avoid synchronised clients).
    const double jitter =
        std::uniform_real_distribution<double>(0.0, 1.0 / 16)(rng_);
    interval = absl::Seconds(std::ldexp(1.0 - jitter, poll_));
  }
  next_poll_ = now + interval;
  out->push_back(ArmTimer{next_poll_});
}

std::vector<SourceAction> Source::HandleTimer(clock::MonoTime now) {
  std::vector<SourceAction> out;
  if (now < next_poll_) return out;
  if (health_ == SourceHealth::kDenied) {
    next_poll_ = clock::MonoTime::Infinite();
    out.push_back(ArmTimer{next_poll_});
    return out;
  }
  // Nothing to send while the name is unresolved; that is not a missed poll.
  if (config_.address.empty()) {
    burst_left_ = 0;
    ScheduleNext(now, &out);
    return out;
  }
  if (burst_left_ == 0) {
    // A new poll (RFC 5905 §13): shift the reach register; a burst counts as
    // one poll.
    const bool was_reachable = reach_ != 0;
    reach_ = static_cast<uint8_t>(reach_ << 1);
    bool burst_now = config_.burst && was_reachable;
    if (config_.iburst && polls_ == 0) burst_now = true;  // iburst at start-up
    ++polls_;
    if (reach_ == 0 && polls_ > 8 && health_ != SourceHealth::kUnresolved) {
      if (health_ != SourceHealth::kUnreachable) {
        SetHealth(
            SourceHealth::kUnreachable,
            "no reply (network, firewall, or `restrict ignore` on the server)",
            &out);
        // With iburst, the source is probed with a burst when it comes back
        // (at its first reply, as ntpd does), not now: a burst to a server
        // that has just stopped answering would only be lost.
        burst_on_return_ = config_.iburst;
      }
      // Back off while unreachable (as ntpd does), up to maxpoll.
      poll_ = std::min(std::max(poll_ + 1, poll_floor_),
                       std::max(config_.maxpoll, poll_floor_));
    }
    if (burst_now) burst_left_ = kBurstSize;
    // At the longest intervals one sample per poll is mostly noise; two 2 s
    // apart let the filter keep the lower-delay one's information (min-delay
    // samples are far more accurate).
    // A server that asked us to slow down (KoD RATE floor) gets one.
    int per_poll = poll_floor_ > config_.minpoll ? 1 : requests_per_poll_;
    if (config_.pair_from_poll > 0 && poll_ >= config_.pair_from_poll) {
      per_poll = std::max(per_poll, 2);
    }
    if (!burst_now && was_reachable && per_poll > 1) burst_left_ = per_poll;
  }
  if (burst_left_ > 0) --burst_left_;

  NtpPacket request;
  request.leap = Leap::kNone;
  request.version = static_cast<uint8_t>(config_.version);
  request.mode = Mode::kClient;
  request.poll = static_cast<int8_t>(poll_);
  // Everything else zero (like chrony), and a random transmit timestamp as a
  // nonce.
  uint64_t nonce = 0;
  while (nonce == 0) nonce = rng_();
  request.transmit = NtpTimestamp::FromRaw(nonce);
  expected_origin_ = request.transmit;
  transmitted_ = false;
  voided_ = false;
  std::vector<uint8_t> bytes(kHeaderSize + kKeyIdSize + kMaxDigestSize);
  absl::StatusOr<size_t> length = EncodePacket(request, absl::MakeSpan(bytes));
  if (length.ok()) {
    size_t n = *length;
    if (config_.key) n = AppendMac(*config_.key, absl::MakeSpan(bytes), n);
    bytes.resize(n);
    ++counters_.requests;
    out.push_back(SendRequest{std::move(bytes)});
  }
  // Until the 8 polls that make it "unreachable", say already that nothing
  // came back — and, with a key, that a wrong key looks exactly like this
  // (chronyd and ntpd drop badly signed requests without a word).
  if (health_ == SourceHealth::kNew && counters_.requests > 1 &&
      counters_.responses == 0) {
    SetHealth(SourceHealth::kNew,
              absl::StrFormat(
                  "no reply yet (%d requests sent)%s", counters_.requests,
                  config_.key ? absl::StrFormat("; with key %d: a wrong key or "
                                                "secret on either side looks "
                                                "the same",
                                                config_.key->id)
                              : ""),
              &out);
  }
  ScheduleNext(now, &out);
  return out;
}

void Source::OnTransmit(absl::Time t1_local, clock::MonoTime now) {
  t1_local_ = t1_local;
  t1_mono_ = now;
  transmitted_ = true;
}

void Source::ClockStepped() { voided_ = true; }

void Source::SetPollExponent(int poll) {
  poll_ = std::clamp(poll, std::max(config_.minpoll, poll_floor_),
                     std::max(config_.maxpoll, poll_floor_));
}

void Source::SetRequestsPerPoll(int n) {
  requests_per_poll_ = std::clamp(n, 1, kBurstSize);
}

std::vector<SourceAction> Source::StartBurst(clock::MonoTime now, int count) {
  std::vector<SourceAction> out;
  if (health_ == SourceHealth::kDenied) return out;
  burst_left_ = count;
  next_poll_ = now;
  out.push_back(ArmTimer{now});
  return out;
}

std::vector<SourceAction> Source::SetAddress(const std::string& address,
                                             clock::MonoTime now,
                                             std::string why_none) {
  std::vector<SourceAction> out;
  const bool was_unresolved = config_.address.empty();
  config_.address = address;
  expected_origin_ = NtpTimestamp();
  if (address.empty()) {
    SetHealth(SourceHealth::kUnresolved,
              why_none.empty()
                  ? absl::StrFormat("cannot resolve %s, retrying", config_.name)
                  : std::move(why_none),
              &out);
  } else if (was_unresolved && health_ != SourceHealth::kDenied) {
    SetHealth(SourceHealth::kNew, "", &out);
    next_poll_ = now;
    out.push_back(ArmTimer{now});
  }
  return out;
}

std::vector<SourceAction> Source::HandleResponse(
    absl::Span<const uint8_t> bytes, absl::Time t4_local, clock::MonoTime now) {
  std::vector<SourceAction> out;
  absl::StatusOr<NtpPacket> reply = DecodePacket(bytes);
  if (!reply.ok()) {
    ++counters_.malformed;
    return out;
  }
  if (reply->mode != Mode::kServer) {
    ++counters_.not_server_mode;
    return out;
  }
  if (expected_origin_.is_zero() || !transmitted_) {
    ++counters_.duplicate;
    return out;
  }
  // RFC 5905 §8: the origin timestamp must be the transmit timestamp we sent. A
  // mismatch is spoofed or stale; it must not cancel the real exchange, so the
  // expectation stays.
  if (reply->origin != expected_origin_) {
    ++counters_.bogus_origin;
    return out;
  }
  // With a key configured, only replies signed with it count (RFC 8573). A
  // forged reply must not cancel the real exchange either.
  if (config_.key) {
    const AuthResult auth = VerifyMac(keys_, *reply, bytes);
    if (auth != AuthResult::kOk) {
      ++counters_.auth_failed;
      SetHealth(health_,
                absl::StrFormat("authentication failed (key %d): %s",
                                config_.key->id, AuthResultName(auth)),
                &out);
      return out;
    }
  }
  // One answer per request: later copies are duplicates.
  expected_origin_ = NtpTimestamp();
  if (voided_) {  // the clock was stepped during the exchange
    ++counters_.voided_by_step;
    return out;
  }

  // Kiss-o'-Death (RFC 5905 §7.4), believed only because the origin matched.
  if (reply->IsKissOfDeath()) {
    reach_ |= 1;
    ++counters_.responses;
    last_response_ = now;  // `when` in peers: the kiss is the last answer
    switch (reply->kiss_code()) {
      case KissCode::kRate: {
        ++counters_.kod_rate;
        burst_left_ = 0;
        requests_per_poll_ = 1;
        burst_on_return_ = false;
        replies_since_rate_ = 0;
        poll_floor_ = std::min(std::max(poll_floor_, poll_) + 1, kMaxPollLimit);
        poll_ = std::max(poll_, poll_floor_);
        SetHealth(
            health_,
            absl::StrFormat(
                "KoD RATE: the server asked us to slow down; polling every "
                "%d s",
                1 << poll_),
            &out);
        ScheduleNext(now, &out);
        break;
      }
      case KissCode::kDeny:
      case KissCode::kRstr:
        ++counters_.kod_deny;
        // Shown as the refid (".DENY.", as ntpq shows a kiss) at stratum 16.
        reference_id_ = reply->reference_id;
        stratum_ = 16;
        burst_left_ = 0;
        next_poll_ = clock::MonoTime::Infinite();
        out.push_back(ArmTimer{next_poll_});
        SetHealth(
            SourceHealth::kDenied,
            absl::StrFormat(
                "KoD %s: the server refuses to serve us; stopped querying it",
                reply->reference_id.AsCode()),
            &out);
        break;
      default:
        ++counters_.unsynchronized;
        SetHealth(SourceHealth::kUnsynchronized,
                  absl::StrFormat("unsynchronised (kiss code %s)",
                                  reply->reference_id.AsCode()),
                  &out);
        break;
    }
    return out;
  }
  if (reply->receive.is_zero() || reply->transmit.is_zero()) {
    ++counters_.bogus_timestamps;
    return out;
  }
  // RFC 5905 §8, with T1/T4 from our clock and T2/T3 from the server's,
  // era-safe differences.
  const NtpTimestamp t1 = NtpTimestamp::FromTime(t1_local_);
  const NtpTimestamp t4 = NtpTimestamp::FromTime(t4_local);
  const absl::Duration offset = (NtpTimestamp::Diff(reply->receive, t1) +
                                 NtpTimestamp::Diff(reply->transmit, t4)) /
                                2;
  // δ can come out negative: the server's T3 - T2 exceeds our T4 - T1, by
  // timestamping noise at either end or a clock being slewed during the
  // exchange. RFC 5905 (Appendix A.5.1.1) keeps such a sample with
  // δ = max(δ, 2^precision); ntpd 4.2.8 takes max(|δ|, 2^precision), and so do
  // we: the filter weighs samples by their delay, and clamping a clearly
  // negative δ to the precision would make a sample with inconsistent
  // timestamps the most trusted of all. A negative δ within the precision
  // comes out as the precision either way.
  const absl::Duration delay = std::max(
      absl::AbsDuration(NtpTimestamp::Diff(t4, t1) -
                        NtpTimestamp::Diff(reply->transmit, reply->receive)),
      absl::Seconds(std::ldexp(1.0, config_.precision)));
  reach_ |= 1;
  ++counters_.responses;
  last_response_ = now;
  stratum_ = reply->stratum;
  reference_id_ = reply->reference_id;
  // A monitor measures an unfit server's clock all the same (measure_unfit):
  // the health says why it could not synchronise anyone.
  bool unfit = false;
  if (reply->leap == Leap::kUnsynchronized || reply->stratum >= kMaxStratum) {
    ++counters_.unsynchronized;
    SetHealth(SourceHealth::kUnsynchronized,
              absl::StrFormat(
                  "unsynchronised (stratum %d%s)", reply->stratum,
                  reply->leap == Leap::kUnsynchronized ? ", leap alarm" : ""),
              &out);
    if (!config_.measure_unfit) return out;
    unfit = true;
  }
  // A node synchronised to a stratum-15 server would be at stratum 16, which
  // means unsynchronised (RFC 5905 §7.3): such a server cannot synchronise
  // us. ntpd's peer_unfit() refuses it the same way (stratum >= `tos
  // ceiling`, TEST10); RFC 5905 A.5.2 fit() stops only at 16.
  if (!unfit && reply->stratum + 1 >= kMaxStratum) {
    ++counters_.unsynchronized;
    SetHealth(SourceHealth::kUnsynchronized,
              absl::StrFormat("stratum %d is too high to synchronise from: "
                              "this node would be at stratum %d "
                              "(unsynchronised)",
                              reply->stratum, reply->stratum + 1),
              &out);
    if (!config_.measure_unfit) return out;
    unfit = true;
  }

  Sample sample;
  sample.time = t1_mono_ + (now - t1_mono_) / 2;
  sample.offset = offset;
  sample.delay = delay;
  sample.dispersion = absl::Seconds(std::ldexp(1.0, reply->precision));
  sample.stratum = reply->stratum;
  sample.leap = reply->leap;
  sample.reference_id = reply->reference_id;
  sample.root_delay = reply->root_delay.ToDuration();
  sample.root_dispersion = reply->root_dispersion.ToDuration();
  // RFC 5905 §11.2 root distance of this sample alone.
  const absl::Duration distance = (sample.root_delay + delay) / 2 +
                                  sample.root_dispersion + sample.dispersion;
  if (!unfit && distance > config_.max_distance) {
    ++counters_.too_far;
    SetHealth(SourceHealth::kTooFar,
              absl::StrFormat("root distance %s beyond maxdist %s",
                              absl::FormatDuration(distance),
                              absl::FormatDuration(config_.max_distance)),
              &out);
    if (!config_.measure_unfit) return out;
    unfit = true;
  }
  if (!unfit) SetHealth(SourceHealth::kOk, "", &out);
  out.push_back(SampleAccepted{sample});
  // A KoD RATE floor is not for ever: the server may have been overloaded for
  // a while. After kRateFloorDecayReplies replies without another RATE kiss,
  // it comes down one step (and the poll with it, if the floor held it up).
  if (poll_floor_ > config_.minpoll &&
      ++replies_since_rate_ >= kRateFloorDecayReplies) {
    replies_since_rate_ = 0;
    if (poll_ == poll_floor_) --poll_;
    --poll_floor_;
  }
  // Back from being unreachable: the start-up burst again (iburst), so the
  // filter has samples at once (ntpd starts its burst at this reply too).
  if (burst_on_return_) {
    burst_on_return_ = false;
    burst_left_ = kBurstSize - 1;  // this reply was the burst's first
    next_poll_ = now + kBurstSpacing;
    out.push_back(ArmTimer{next_poll_});
  }
  return out;
}

}  // namespace ntpfleet::ntp
