#include "agent/ntp/source.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "common/ntp/packet.h"
#include "common/ntp/timestamp.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet::ntp {
namespace {

using ::ntpfleet::clock::MonoTime;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// The exchange's timing unit: 2^-10 s = 976.5625 µs. It is exact both as an
// NTP fraction (2^22 units of 2^-32 s) and as an absl::Duration (3906250 ticks
// of 1/4 ns), so θ and δ below come out exact. Round millisecond values do
// not (1 ms = 4294967.296 units of 2^-32 s): see
// OffsetAndDelayWithRoundValuesAreWithinATick.
const absl::Duration kUnit = absl::Seconds(1) / 1024;

// 2024-01-01 00:00:00 UTC: a whole second, so T1 has a zero NTP fraction.
const absl::Time kWall = absl::FromUnixSeconds(1704067200);

MonoTime Mono(absl::Duration since_origin) {
  return MonoTime::FromDuration(since_origin);
}

SourceConfig TestConfig() {
  SourceConfig config;
  config.name = "ntp1.example.net";
  config.address = "192.0.2.1:123";
  return config;
}

template <typename T>
std::vector<T> ActionsOf(const std::vector<SourceAction>& actions) {
  std::vector<T> out;
  for (const SourceAction& action : actions) {
    if (const T* a = std::get_if<T>(&action)) out.push_back(*a);
  }
  return out;
}

// The time of the (last) ArmTimer among the actions; fails if there is none.
MonoTime TimerOf(const std::vector<SourceAction>& actions) {
  const std::vector<ArmTimer> timers = ActionsOf<ArmTimer>(actions);
  EXPECT_THAT(timers, SizeIs(1));
  return timers.empty() ? MonoTime::Infinite() : timers.back().at;
}

NtpPacket Decode(const std::vector<uint8_t>& bytes) {
  absl::StatusOr<NtpPacket> packet = DecodePacket(bytes);
  EXPECT_TRUE(packet.ok()) << packet.status();
  return packet.ok() ? *packet : NtpPacket();
}

std::vector<uint8_t> Encode(const NtpPacket& packet) {
  absl::StatusOr<std::vector<uint8_t>> bytes = EncodePacket(packet);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : std::vector<uint8_t>();
}

// Drives one poll: fires the timer at `now`, expects exactly one request, and
// reports it sent at local time `t1` (T1). Returns the decoded request.
NtpPacket Poll(Source& source, MonoTime now, absl::Time t1,
               std::vector<SourceAction>* actions = nullptr) {
  std::vector<SourceAction> out = source.HandleTimer(now);
  const std::vector<SendRequest> sends = ActionsOf<SendRequest>(out);
  EXPECT_THAT(sends, SizeIs(1));
  if (actions != nullptr) *actions = out;
  if (sends.empty()) return NtpPacket();
  source.OnTransmit(t1, now);
  return Decode(sends[0].bytes);
}

// A stratum 2 server's reply to `request` with the given T2 and T3.
NtpPacket Reply(const NtpPacket& request, absl::Time t2, absl::Time t3) {
  NtpPacket reply;
  reply.leap = Leap::kNone;
  reply.version = 4;
  reply.mode = Mode::kServer;
  reply.stratum = 2;
  reply.poll = request.poll;
  reply.precision = -20;
  reply.root_delay = NtpShort::FromRaw(0x0180);       // 384/65536 s
  reply.root_dispersion = NtpShort::FromRaw(0x0040);  // 64/65536 s
  reply.reference_id = RefId::FromIpv4(192, 168, 1, 2);
  reply.reference = NtpTimestamp::FromTime(t2 - absl::Seconds(30));
  reply.origin = request.transmit;
  reply.receive = NtpTimestamp::FromTime(t2);
  reply.transmit = NtpTimestamp::FromTime(t3);
  return reply;
}

// The standard exchange used throughout: the server is 5u ahead, the path is
// u each way and the server holds the request for u (u = kUnit):
//   T1 = W, T2 = W + u + 5u = W + 6u, T3 = T2 + u = W + 7u,
//   T4 = W + u + u + u = W + 3u.
NtpPacket GoodReply(const NtpPacket& request, absl::Time t1) {
  return Reply(request, t1 + 6 * kUnit, t1 + 7 * kUnit);
}
absl::Time T4Of(absl::Time t1) { return t1 + 3 * kUnit; }

NtpPacket KissOfDeath(const NtpPacket& request, absl::Time t1,
                      const std::string& code) {
  NtpPacket kod = GoodReply(request, t1);
  kod.stratum = 0;
  kod.reference_id = RefId::FromCode(code);
  return kod;
}

// A started source whose first timer has fired and whose request is out.
struct Polled {
  Source source;
  NtpPacket request;
  MonoTime sent;
};

Polled StartAndPoll(const SourceConfig& config, uint64_t seed = 1) {
  Polled p{Source(config, seed), NtpPacket(), MonoTime()};
  p.sent = TimerOf(p.source.Start(Mono(absl::Seconds(100))));
  p.request = Poll(p.source, p.sent, kWall);
  return p;
}

TEST(SourceTest, StartArmsTheFirstPollWithinHalfASecond) {
  Source source(TestConfig(), 7);
  const MonoTime start = Mono(absl::Seconds(100));
  const std::vector<SourceAction> actions = source.Start(start);
  EXPECT_THAT(ActionsOf<SendRequest>(actions), IsEmpty());
  const MonoTime first = TimerOf(actions);
  EXPECT_GE(first, start);
  EXPECT_LE(first, start + absl::Milliseconds(500));
  EXPECT_EQ(source.next_poll(), first);
  EXPECT_EQ(source.health(), SourceHealth::kNew);

  // Nothing happens before the timer is due.
  EXPECT_THAT(source.HandleTimer(first - absl::Nanoseconds(1)), IsEmpty());

  const std::vector<SourceAction> fired = source.HandleTimer(first);
  ASSERT_THAT(fired, SizeIs(2));
  EXPECT_TRUE(std::holds_alternative<SendRequest>(fired[0]));
  EXPECT_TRUE(std::holds_alternative<ArmTimer>(fired[1]));
  EXPECT_EQ(source.counters().requests, 1u);
}

TEST(SourceTest, RequestIsAClientPacketWithOnlyPollAndARandomTransmit) {
  Source source(TestConfig(), 7);
  MonoTime now = TimerOf(source.Start(Mono(absl::Seconds(100))));
  std::vector<SourceAction> actions = source.HandleTimer(now);
  std::vector<SendRequest> sends = ActionsOf<SendRequest>(actions);
  ASSERT_THAT(sends, SizeIs(1));
  EXPECT_THAT(sends[0].bytes, SizeIs(kHeaderSize));
  const NtpPacket first = Decode(sends[0].bytes);

  // Like chrony's client requests: everything zero but mode, version, poll
  // and the transmit timestamp, which is a nonce (RFC 5905 §8 origin check).
  EXPECT_EQ(first.leap, Leap::kNone);
  EXPECT_EQ(first.version, 4);
  EXPECT_EQ(first.mode, Mode::kClient);
  EXPECT_EQ(first.stratum, 0);
  EXPECT_EQ(first.poll, 6);  // minpoll
  EXPECT_EQ(first.precision, 0);
  EXPECT_EQ(first.root_delay.raw(), 0u);
  EXPECT_EQ(first.root_dispersion.raw(), 0u);
  EXPECT_EQ(first.reference_id.raw(), 0u);
  EXPECT_TRUE(first.reference.is_zero());
  EXPECT_TRUE(first.origin.is_zero());
  EXPECT_TRUE(first.receive.is_zero());
  EXPECT_FALSE(first.transmit.is_zero());
  EXPECT_THAT(first.extensions, IsEmpty());
  EXPECT_FALSE(first.mac.has_value());

  now = TimerOf(actions);
  sends = ActionsOf<SendRequest>(source.HandleTimer(now));
  ASSERT_THAT(sends, SizeIs(1));
  const NtpPacket second = Decode(sends[0].bytes);
  EXPECT_FALSE(second.transmit.is_zero());
  EXPECT_NE(second.transmit, first.transmit);
}

TEST(SourceTest, PollsEveryTwoToThePollSecondsLessUpToASixteenth) {
  Source source(TestConfig(), 3);
  MonoTime now = TimerOf(source.Start(Mono(absl::Seconds(100))));
  // The first eight polls (from the ninth, an unanswered source backs off).
  for (int i = 0; i < 8; ++i) {
    const MonoTime next = TimerOf(source.HandleTimer(now));
    // RFC 5905 §13 randomisation: 2^6 s * (1 - [0, 1/16)) = (60 s, 64 s].
    EXPECT_GT(next - now, absl::Seconds(60));
    EXPECT_LE(next - now, absl::Seconds(64));
    now = next;
  }
}

TEST(SourceTest, HandComputedOffsetAndDelay) {
  Polled p = StartAndPoll(TestConfig());
  // The request leaves at monotonic M and the reply arrives 3u later (the
  // monotonic and wall clocks agree on the round trip).
  const MonoTime m = p.sent;
  const absl::Time t1 = kWall;
  const std::vector<SourceAction> actions = p.source.HandleResponse(
      Encode(GoodReply(p.request, t1)), T4Of(t1), m + 3 * kUnit);

  const std::vector<SampleAccepted> samples =
      ActionsOf<SampleAccepted>(actions);
  ASSERT_THAT(samples, SizeIs(1));
  const Sample& s = samples[0].sample;
  // θ = ((T2 - T1) + (T3 - T4)) / 2 = (6u + (7u - 3u)) / 2 = 5u
  //   = 5 * 976.5625 µs = 4882.8125 µs: the server's lead.
  EXPECT_EQ(s.offset, 5 * kUnit);
  EXPECT_EQ(s.offset, absl::Nanoseconds(4882812.5));
  // δ = (T4 - T1) - (T3 - T2) = 3u - u = 2u = 1953.125 µs: the path both ways.
  EXPECT_EQ(s.delay, 2 * kUnit);
  EXPECT_EQ(s.delay, absl::Nanoseconds(1953125));
  // Monotonic midpoint: M + 3u/2 = M + 1464.84375 µs.
  EXPECT_EQ(s.time, m + absl::Nanoseconds(1464843.75));
  // What the server said about itself, carried over.
  EXPECT_EQ(s.stratum, 2);
  EXPECT_EQ(s.leap, Leap::kNone);
  EXPECT_EQ(s.reference_id, RefId::FromIpv4(192, 168, 1, 2));
  EXPECT_EQ(s.root_delay, absl::Nanoseconds(5859375));        // 384/65536 s
  EXPECT_EQ(s.root_dispersion, absl::Nanoseconds(976562.5));  // 64/65536 s
  // ε = 2^precision = 2^-20 s = 953.67431640625 ns (to absl's 1/4 ns).
  EXPECT_LE(
      absl::AbsDuration(s.dispersion - absl::Nanoseconds(953.67431640625)),
      absl::Nanoseconds(0.25));

  EXPECT_EQ(p.source.health(), SourceHealth::kOk);
  EXPECT_EQ(p.source.reach(), 1);
  EXPECT_EQ(p.source.stratum(), 2);
  EXPECT_EQ(p.source.reference_id(), RefId::FromIpv4(192, 168, 1, 2));
  EXPECT_EQ(p.source.last_response(), m + 3 * kUnit);
  EXPECT_TRUE(p.source.has_response());
  EXPECT_EQ(p.source.counters().responses, 1u);
  const std::vector<HealthChanged> health = ActionsOf<HealthChanged>(actions);
  ASSERT_THAT(health, SizeIs(1));
  EXPECT_EQ(health[0].from, SourceHealth::kNew);
  EXPECT_EQ(health[0].to, SourceHealth::kOk);
}

TEST(SourceTest, OffsetAndDelayWithRoundValuesAreWithinATick) {
  // Server 5 ms ahead, 1 ms each way, 100 µs processing:
  //   T1 = W, T2 = W + 1 ms + 5 ms = W + 6 ms, T3 = W + 6.1 ms,
  //   T4 = W + 1 ms + 0.1 ms + 1 ms = W + 2.1 ms.
  //   θ = (6 ms + (6.1 ms - 2.1 ms)) / 2 = 5 ms, δ = 2.1 ms - 0.1 ms = 2 ms.
  // These are not multiples of 2^-32 s, so each timestamp is rounded to the
  // nearest 2^-32 s (≈ 0.23 ns) on the way to the wire, and each difference
  // back to absl's 1/4 ns: here T3 - T4 comes back as 4 ms + 1/4 ns, so θ is
  // a fraction of a nanosecond over 5 ms. Allow one nanosecond.
  Polled p = StartAndPoll(TestConfig());
  const absl::Time t1 = kWall;
  const std::vector<SourceAction> actions = p.source.HandleResponse(
      Encode(Reply(p.request, t1 + absl::Microseconds(6000),
                   t1 + absl::Microseconds(6100))),
      t1 + absl::Microseconds(2100), p.sent + absl::Microseconds(2100));
  const std::vector<SampleAccepted> samples =
      ActionsOf<SampleAccepted>(actions);
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_LE(absl::AbsDuration(samples[0].sample.offset - absl::Milliseconds(5)),
            absl::Nanoseconds(1));
  EXPECT_LE(absl::AbsDuration(samples[0].sample.delay - absl::Milliseconds(2)),
            absl::Nanoseconds(1));
}

TEST(SourceTest, RejectsResponseWithWrongOrigin) {
  Polled p = StartAndPoll(TestConfig());
  NtpPacket spoofed = GoodReply(p.request, kWall);
  spoofed.origin = NtpTimestamp::FromRaw(p.request.transmit.raw() ^ 1);
  EXPECT_THAT(
      p.source.HandleResponse(Encode(spoofed), T4Of(kWall), p.sent + 3 * kUnit),
      IsEmpty());
  EXPECT_EQ(p.source.counters().bogus_origin, 1u);
  EXPECT_EQ(p.source.counters().responses, 0u);
  EXPECT_EQ(p.source.reach(), 0);
  EXPECT_EQ(p.source.health(), SourceHealth::kNew);

  // The spoof did not cancel the exchange: the genuine reply still counts.
  const std::vector<SourceAction> actions = p.source.HandleResponse(
      Encode(GoodReply(p.request, kWall)), T4Of(kWall), p.sent + 3 * kUnit);
  ASSERT_THAT(ActionsOf<SampleAccepted>(actions), SizeIs(1));
  EXPECT_EQ(ActionsOf<SampleAccepted>(actions)[0].sample.offset, 5 * kUnit);
  EXPECT_EQ(p.source.counters().bogus_origin, 1u);
  EXPECT_EQ(p.source.counters().responses, 1u);
}

TEST(SourceTest, DropsDuplicateReply) {
  Polled p = StartAndPoll(TestConfig());
  const std::vector<uint8_t> bytes = Encode(GoodReply(p.request, kWall));
  ASSERT_THAT(ActionsOf<SampleAccepted>(p.source.HandleResponse(
                  bytes, T4Of(kWall), p.sent + 3 * kUnit)),
              SizeIs(1));
  // One answer per request: the same datagram again is a duplicate.
  EXPECT_THAT(
      p.source.HandleResponse(bytes, T4Of(kWall) + absl::Milliseconds(1),
                              p.sent + 3 * kUnit + absl::Milliseconds(1)),
      IsEmpty());
  EXPECT_EQ(p.source.counters().duplicate, 1u);
  EXPECT_EQ(p.source.counters().responses, 1u);
}

TEST(SourceTest, DropsReplyBeforeAnyRequest) {
  Source source(TestConfig(), 1);
  source.Start(Mono(absl::Seconds(100)));
  NtpPacket request;
  request.transmit = NtpTimestamp::FromRaw(0x0123456789abcdef);
  EXPECT_THAT(source.HandleResponse(Encode(GoodReply(request, kWall)),
                                    T4Of(kWall), Mono(absl::Seconds(101))),
              IsEmpty());
  EXPECT_EQ(source.counters().duplicate, 1u);
}

TEST(SourceTest, DropsReplyNotInServerMode) {
  Polled p = StartAndPoll(TestConfig());
  for (Mode mode : {Mode::kSymmetricActive, Mode::kSymmetricPassive,
                    Mode::kClient, Mode::kBroadcast}) {
    NtpPacket reply = GoodReply(p.request, kWall);
    reply.mode = mode;
    EXPECT_THAT(
        p.source.HandleResponse(Encode(reply), T4Of(kWall), p.sent + 3 * kUnit),
        IsEmpty())
        << ModeName(mode);
  }
  EXPECT_EQ(p.source.counters().not_server_mode, 4u);
  // None of them consumed the exchange.
  EXPECT_THAT(ActionsOf<SampleAccepted>(
                  p.source.HandleResponse(Encode(GoodReply(p.request, kWall)),
                                          T4Of(kWall), p.sent + 3 * kUnit)),
              SizeIs(1));
}

TEST(SourceTest, CountsMalformedReply) {
  Polled p = StartAndPoll(TestConfig());
  std::vector<uint8_t> bytes = Encode(GoodReply(p.request, kWall));
  const std::vector<uint8_t> short_packet(bytes.begin(), bytes.end() - 1);
  EXPECT_THAT(
      p.source.HandleResponse(short_packet, T4Of(kWall), p.sent + 3 * kUnit),
      IsEmpty());
  EXPECT_THAT(p.source.HandleResponse({}, T4Of(kWall), p.sent + 3 * kUnit),
              IsEmpty());
  EXPECT_EQ(p.source.counters().malformed, 2u);
  EXPECT_THAT(ActionsOf<SampleAccepted>(p.source.HandleResponse(
                  bytes, T4Of(kWall), p.sent + 3 * kUnit)),
              SizeIs(1));
}

TEST(SourceTest, DropsReplyWithZeroReceiveOrTransmitTimestamp) {
  Source source(TestConfig(), 1);
  MonoTime now = TimerOf(source.Start(Mono(absl::Seconds(100))));
  std::vector<SourceAction> polled;

  NtpPacket request = Poll(source, now, kWall, &polled);
  NtpPacket reply = GoodReply(request, kWall);
  reply.receive = NtpTimestamp();
  EXPECT_THAT(
      source.HandleResponse(Encode(reply), T4Of(kWall), now + 3 * kUnit),
      IsEmpty());
  EXPECT_EQ(source.counters().bogus_timestamps, 1u);

  now = TimerOf(polled);
  request = Poll(source, now, kWall + absl::Seconds(64));
  reply = GoodReply(request, kWall + absl::Seconds(64));
  reply.transmit = NtpTimestamp();
  EXPECT_THAT(
      source.HandleResponse(Encode(reply), T4Of(kWall + absl::Seconds(64)),
                            now + 3 * kUnit),
      IsEmpty());
  EXPECT_EQ(source.counters().bogus_timestamps, 2u);
  EXPECT_EQ(source.counters().responses, 0u);
  EXPECT_EQ(source.reach(), 0);
}

// RFC 5905 A.5.1.1 keeps a sample whose δ comes out negative; like ntpd 4.2.8
// we take |δ| (at least the precision), so that the delay-weighted filter gives
// a sample with inconsistent timestamps the little weight its spread deserves.
TEST(SourceTest, NegativeDelayIsTakenAsItsMagnitude) {
  Polled p = StartAndPoll(TestConfig());
  // The server claims to have held the request 10u, but the round trip took
  // 3u: δ = 3u - 10u = -7u < 0.
  const std::vector<SourceAction> actions = p.source.HandleResponse(
      Encode(Reply(p.request, kWall + 6 * kUnit, kWall + 16 * kUnit)),
      T4Of(kWall), p.sent + 3 * kUnit);
  const std::vector<SampleAccepted> samples =
      ActionsOf<SampleAccepted>(actions);
  ASSERT_THAT(samples, SizeIs(1));
  // What the filter gets: |δ| = 7u, not the precision (2^-20 s, ~1 µs) that
  // RFC 5905's max(δ, precision) would give, which would make this the most
  // trusted sample of all; nor a rejection (what the agent did before).
  EXPECT_EQ(samples[0].sample.delay, 7 * kUnit);
  // θ = ((T2 - T1) + (T3 - T4)) / 2 = (6u + (16u - 3u)) / 2 = 9.5u.
  EXPECT_EQ(samples[0].sample.offset, 9.5 * kUnit);
  EXPECT_EQ(p.source.counters().bogus_timestamps, 0u);
  EXPECT_EQ(p.source.counters().responses, 1u);
  EXPECT_EQ(p.source.health(), SourceHealth::kOk);
}

TEST(SourceTest, DelayIsAtLeastThePrecision) {
  for (const int precision : {-20, -10}) {
    SCOPED_TRACE(precision);
    SourceConfig config = TestConfig();
    config.precision = precision;
    Polled p = StartAndPoll(config);
    // δ = 3u - (3u + 100 ns) = -100 ns: timestamping noise on a fast path.
    const std::vector<SampleAccepted> samples =
        ActionsOf<SampleAccepted>(p.source.HandleResponse(
            Encode(Reply(p.request, kWall + 6 * kUnit,
                         kWall + 9 * kUnit + absl::Nanoseconds(100))),
            T4Of(kWall), p.sent + 3 * kUnit));
    ASSERT_THAT(samples, SizeIs(1));
    // 2^-20 s = 953.67431640625 ns (to absl's 1/4 ns); 2^-10 s = 1u.
    EXPECT_LE(absl::AbsDuration(samples[0].sample.delay -
                                absl::Seconds(std::ldexp(1.0, precision))),
              absl::Nanoseconds(0.25));
  }
}

TEST(SourceTest, StratumSixteenIsUnsynchronised) {
  Polled p = StartAndPoll(TestConfig());
  NtpPacket reply = GoodReply(p.request, kWall);
  reply.stratum = 16;
  const std::vector<SourceAction> actions =
      p.source.HandleResponse(Encode(reply), T4Of(kWall), p.sent + 3 * kUnit);
  EXPECT_THAT(ActionsOf<SampleAccepted>(actions), IsEmpty());
  const std::vector<HealthChanged> health = ActionsOf<HealthChanged>(actions);
  ASSERT_THAT(health, SizeIs(1));
  EXPECT_EQ(health[0].from, SourceHealth::kNew);
  EXPECT_EQ(health[0].to, SourceHealth::kUnsynchronized);
  EXPECT_THAT(health[0].reason, HasSubstr("unsynchronised"));
  EXPECT_EQ(p.source.health(), SourceHealth::kUnsynchronized);
  EXPECT_THAT(p.source.reason(), HasSubstr("unsynchronised"));
  EXPECT_THAT(p.source.reason(), HasSubstr("stratum 16"));
  EXPECT_EQ(p.source.counters().unsynchronized, 1u);
}

// A client of a stratum-15 server would be at stratum 16, unsynchronised
// (RFC 5905 §7.3): no sample from it, as ntpd's peer_unfit() (TEST10).
TEST(SourceTest, StratumFifteenCannotSynchroniseUs) {
  for (const int stratum : {14, 15}) {
    SCOPED_TRACE(stratum);
    Polled p = StartAndPoll(TestConfig());
    NtpPacket reply = GoodReply(p.request, kWall);
    reply.stratum = static_cast<uint8_t>(stratum);
    const std::vector<SourceAction> actions =
        p.source.HandleResponse(Encode(reply), T4Of(kWall), p.sent + 3 * kUnit);
    if (stratum == 14) {
      EXPECT_THAT(ActionsOf<SampleAccepted>(actions), SizeIs(1));
      EXPECT_EQ(p.source.health(), SourceHealth::kOk);
      continue;
    }
    EXPECT_THAT(ActionsOf<SampleAccepted>(actions), IsEmpty());
    EXPECT_EQ(p.source.health(), SourceHealth::kUnsynchronized);
    EXPECT_EQ(p.source.reason(),
              "stratum 15 is too high to synchronise from: this node would be "
              "at stratum 16 (unsynchronised)");
    EXPECT_EQ(p.source.counters().unsynchronized, 1u);
    // It answered: reachable, just not usable.
    EXPECT_EQ(p.source.reach(), 1);
  }
}

TEST(SourceTest, LeapAlarmIsUnsynchronised) {
  Polled p = StartAndPoll(TestConfig());
  NtpPacket reply = GoodReply(p.request, kWall);
  reply.leap = Leap::kUnsynchronized;
  const std::vector<SourceAction> actions =
      p.source.HandleResponse(Encode(reply), T4Of(kWall), p.sent + 3 * kUnit);
  EXPECT_THAT(ActionsOf<SampleAccepted>(actions), IsEmpty());
  EXPECT_EQ(p.source.health(), SourceHealth::kUnsynchronized);
  EXPECT_THAT(p.source.reason(), HasSubstr("unsynchronised"));
  EXPECT_THAT(p.source.reason(), HasSubstr("leap alarm"));
  EXPECT_EQ(p.source.counters().unsynchronized, 1u);
}

TEST(SourceTest, RootDistanceBeyondMaxDistanceIsTooFar) {
  // RFC 5905 §11.2 root distance of the standard exchange:
  //   (root delay + δ) / 2 + root dispersion + ε
  //   = (5859.375 µs + 1953.125 µs) / 2 + 976.5625 µs + 0.95367431640625 µs
  //   = 3906.25 + 976.5625 + 0.95367... = 4883.766... µs.
  {
    SourceConfig config = TestConfig();
    config.max_distance = absl::Microseconds(4883);
    Polled p = StartAndPoll(config);
    const std::vector<SourceAction> actions = p.source.HandleResponse(
        Encode(GoodReply(p.request, kWall)), T4Of(kWall), p.sent + 3 * kUnit);
    EXPECT_THAT(ActionsOf<SampleAccepted>(actions), IsEmpty());
    EXPECT_EQ(p.source.health(), SourceHealth::kTooFar);
    EXPECT_THAT(p.source.reason(), HasSubstr("beyond maxdist"));
    EXPECT_EQ(p.source.counters().too_far, 1u);
  }
  {
    SourceConfig config = TestConfig();
    config.max_distance = absl::Microseconds(4884);
    Polled p = StartAndPoll(config);
    EXPECT_THAT(ActionsOf<SampleAccepted>(
                    p.source.HandleResponse(Encode(GoodReply(p.request, kWall)),
                                            T4Of(kWall), p.sent + 3 * kUnit)),
                SizeIs(1));
    EXPECT_EQ(p.source.health(), SourceHealth::kOk);
  }
  {
    // The default maxdist (1.5 s) against a 2 s root dispersion.
    Polled p = StartAndPoll(TestConfig());
    NtpPacket reply = GoodReply(p.request, kWall);
    reply.root_dispersion = NtpShort::FromDuration(absl::Seconds(2));
    EXPECT_THAT(ActionsOf<SampleAccepted>(p.source.HandleResponse(
                    Encode(reply), T4Of(kWall), p.sent + 3 * kUnit)),
                IsEmpty());
    EXPECT_EQ(p.source.health(), SourceHealth::kTooFar);
  }
}

TEST(SourceTest, KissOfDeathRateRaisesThePollExponent) {
  Polled p = StartAndPoll(TestConfig());
  ASSERT_EQ(p.source.poll_exponent(), 6);
  p.source.SetRequestsPerPoll(4);
  const MonoTime now = p.sent + 3 * kUnit;
  const std::vector<SourceAction> actions = p.source.HandleResponse(
      Encode(KissOfDeath(p.request, kWall, "RATE")), T4Of(kWall), now);
  // A server that asks us to slow down gets one request per poll.
  EXPECT_EQ(p.source.requests_per_poll(), 1);
  EXPECT_THAT(ActionsOf<SampleAccepted>(actions), IsEmpty());
  // The floor rises to max(floor 6, poll 6) + 1 = 7: 128 s.
  EXPECT_EQ(p.source.poll_exponent(), 7);
  EXPECT_THAT(p.source.reason(), HasSubstr("KoD RATE"));
  EXPECT_THAT(p.source.reason(), HasSubstr("128 s"));
  EXPECT_EQ(p.source.counters().kod_rate, 1u);
  // The next poll is rescheduled at the new interval: 128 s * (15/16, 1].
  const MonoTime next = TimerOf(actions);
  EXPECT_GT(next - now, absl::Seconds(120));
  EXPECT_LE(next - now, absl::Seconds(128));
  // The engine cannot lower it below the floor.
  p.source.SetPollExponent(6);
  EXPECT_EQ(p.source.poll_exponent(), 7);
  // And the next request says so.
  EXPECT_EQ(Poll(p.source, next, kWall + absl::Seconds(128)).poll, 7);
}

// Replies to the polls from `now` on, `n` times: each poll's request is
// answered with a good reply. Returns the time of the next poll.
MonoTime AnswerPolls(Source& source, MonoTime now, int n) {
  for (int i = 0; i < n; ++i) {
    std::vector<SourceAction> polled;
    const absl::Time t1 = kWall + (now - Mono(absl::Seconds(100)));
    const NtpPacket request = Poll(source, now, t1, &polled);
    const std::vector<SourceAction> answered = source.HandleResponse(
        Encode(GoodReply(request, t1)), T4Of(t1), now + 3 * kUnit);
    EXPECT_THAT(ActionsOf<SampleAccepted>(answered), SizeIs(1)) << i;
    now = TimerOf(polled);
  }
  return now;
}

// The floor a KoD RATE raised comes down one step after
// kRateFloorDecayReplies replies without another RATE kiss; a RATE kiss
// meanwhile starts the count again.
TEST(SourceTest, KissOfDeathRateFloorDecays) {
  Polled p = StartAndPoll(TestConfig());  // [6, 10]
  std::vector<SourceAction> actions =
      p.source.HandleResponse(Encode(KissOfDeath(p.request, kWall, "RATE")),
                              T4Of(kWall), p.sent + 3 * kUnit);
  ASSERT_EQ(p.source.poll_exponent(), 7);
  MonoTime now = TimerOf(actions);

  // One reply short of the decay: the floor still holds.
  now = AnswerPolls(p.source, now, Source::kRateFloorDecayReplies - 1);
  EXPECT_EQ(p.source.poll_exponent(), 7);
  p.source.SetPollExponent(6);
  EXPECT_EQ(p.source.poll_exponent(), 7);

  // A second kiss before the decay: the floor rises to 8, the count restarts.
  std::vector<SourceAction> polled;
  absl::Time t1 = kWall + (now - Mono(absl::Seconds(100)));
  NtpPacket request = Poll(p.source, now, t1, &polled);
  actions = p.source.HandleResponse(Encode(KissOfDeath(request, t1, "RATE")),
                                    T4Of(t1), now + 3 * kUnit);
  ASSERT_EQ(p.source.poll_exponent(), 8);
  now = TimerOf(actions);
  now = AnswerPolls(p.source, now, Source::kRateFloorDecayReplies - 1);
  EXPECT_EQ(p.source.poll_exponent(), 8);

  // The eighth quiet reply: floor 7, and the poll the floor held up with it.
  now = AnswerPolls(p.source, now, 1);
  EXPECT_EQ(p.source.poll_exponent(), 7);
  p.source.SetPollExponent(6);
  EXPECT_EQ(p.source.poll_exponent(), 7);
  // Eight more: back to minpoll, and the engine may poll at 6 again.
  now = AnswerPolls(p.source, now, Source::kRateFloorDecayReplies);
  EXPECT_EQ(p.source.poll_exponent(), 6);
  p.source.SetPollExponent(6);
  EXPECT_EQ(p.source.poll_exponent(), 6);
  // And no further: the floor never goes below minpoll.
  AnswerPolls(p.source, now, Source::kRateFloorDecayReplies);
  p.source.SetPollExponent(3);
  EXPECT_EQ(p.source.poll_exponent(), 6);
}

// A poll above the floor (the engine's choice) stays where it is when the
// floor decays.
TEST(SourceTest, KissOfDeathRateFloorDecayKeepsAHigherPoll) {
  Polled p = StartAndPoll(TestConfig());
  const std::vector<SourceAction> actions =
      p.source.HandleResponse(Encode(KissOfDeath(p.request, kWall, "RATE")),
                              T4Of(kWall), p.sent + 3 * kUnit);
  ASSERT_EQ(p.source.poll_exponent(), 7);
  p.source.SetPollExponent(9);
  AnswerPolls(p.source, TimerOf(actions), Source::kRateFloorDecayReplies);
  EXPECT_EQ(p.source.poll_exponent(), 9);
  p.source.SetPollExponent(6);
  EXPECT_EQ(p.source.poll_exponent(), 6);  // the floor is back at minpoll
}

TEST(SourceTest, KissOfDeathDenyAndRstrStopPolling) {
  for (const std::string code : {"DENY", "RSTR"}) {
    SCOPED_TRACE(code);
    Polled p = StartAndPoll(TestConfig());
    const std::vector<SourceAction> actions =
        p.source.HandleResponse(Encode(KissOfDeath(p.request, kWall, code)),
                                T4Of(kWall), p.sent + 3 * kUnit);
    EXPECT_THAT(ActionsOf<SampleAccepted>(actions), IsEmpty());
    const std::vector<HealthChanged> health = ActionsOf<HealthChanged>(actions);
    ASSERT_THAT(health, SizeIs(1));
    EXPECT_EQ(health[0].from, SourceHealth::kNew);
    EXPECT_EQ(health[0].to, SourceHealth::kDenied);
    EXPECT_EQ(p.source.health(), SourceHealth::kDenied);
    EXPECT_THAT(p.source.reason(), HasSubstr("KoD " + code));
    EXPECT_EQ(p.source.counters().kod_deny, 1u);
    EXPECT_EQ(p.source.next_poll(), MonoTime::Infinite());
    // No more requests: not at the old poll time, not a day later, not in a
    // forced burst.
    EXPECT_THAT(p.source.HandleTimer(p.sent + absl::Seconds(64)), IsEmpty());
    EXPECT_THAT(p.source.HandleTimer(p.sent + absl::Hours(24)), IsEmpty());
    EXPECT_THAT(p.source.StartBurst(p.sent + absl::Hours(24), 4), IsEmpty());
    EXPECT_EQ(p.source.counters().requests, 1u);
  }
}

TEST(SourceTest, KissOfDeathWithWrongOriginIsIgnored) {
  for (const std::string code : {"DENY", "RSTR", "RATE"}) {
    SCOPED_TRACE(code);
    Polled p = StartAndPoll(TestConfig());
    NtpPacket kod = KissOfDeath(p.request, kWall, code);
    kod.origin = NtpTimestamp::FromRaw(p.request.transmit.raw() + 1);
    EXPECT_THAT(
        p.source.HandleResponse(Encode(kod), T4Of(kWall), p.sent + 3 * kUnit),
        IsEmpty());
    EXPECT_EQ(p.source.counters().bogus_origin, 1u);
    EXPECT_EQ(p.source.counters().kod_deny, 0u);
    EXPECT_EQ(p.source.counters().kod_rate, 0u);
    EXPECT_EQ(p.source.health(), SourceHealth::kNew);
    EXPECT_EQ(p.source.reason(), "");
    EXPECT_EQ(p.source.poll_exponent(), 6);
    EXPECT_NE(p.source.next_poll(), MonoTime::Infinite());
  }
}

TEST(SourceTest, ReachRegisterAndUnreachable) {
  Source source(TestConfig(), 5);
  MonoTime now = TimerOf(source.Start(Mono(absl::Seconds(100))));
  std::vector<SourceAction> polled;
  NtpPacket request = Poll(source, now, kWall, &polled);
  source.HandleResponse(Encode(GoodReply(request, kWall)), T4Of(kWall),
                        now + 3 * kUnit);
  EXPECT_EQ(source.reach(), 0b1);
  EXPECT_EQ(source.health(), SourceHealth::kOk);

  // Each poll shifts the register left (RFC 5905 §13); after 8 polls without
  // a reply the 1 has been shifted out: 1 << 8 = 0 in 8 bits.
  for (int i = 1; i <= 8; ++i) {
    now = TimerOf(polled);
    polled = source.HandleTimer(now);
    EXPECT_THAT(ActionsOf<SendRequest>(polled), SizeIs(1));
    EXPECT_EQ(source.reach(), (1 << i) & 0xff) << "poll " << i;
    if (i < 8) {
      EXPECT_EQ(source.health(), SourceHealth::kOk) << "poll " << i;
    }
  }
  EXPECT_EQ(source.reach(), 0);
  EXPECT_EQ(source.health(), SourceHealth::kUnreachable);
  EXPECT_THAT(source.reason(), HasSubstr("no reply"));
  const std::vector<HealthChanged> health = ActionsOf<HealthChanged>(polled);
  ASSERT_THAT(health, SizeIs(1));
  EXPECT_EQ(health[0].from, SourceHealth::kOk);
  EXPECT_EQ(health[0].to, SourceHealth::kUnreachable);

  // Backing off by one per poll while unreachable, up to maxpoll (10): 7
  // already at the poll that found it unreachable, then 8, 9, 10, 10.
  EXPECT_EQ(source.poll_exponent(), 7);
  for (int expected : {8, 9, 10, 10, 10}) {
    now = TimerOf(polled);
    polled = source.HandleTimer(now);
    EXPECT_THAT(ActionsOf<SendRequest>(polled), SizeIs(1));
    EXPECT_EQ(source.poll_exponent(), expected);
    const absl::Duration interval = TimerOf(polled) - now;
    EXPECT_GT(interval, absl::Seconds(std::ldexp(15.0 / 16, expected)));
    EXPECT_LE(interval, absl::Seconds(std::ldexp(1.0, expected)));
  }
}

// iburst: when a source that was unreachable answers again, a burst follows
// that first reply (as ntpd does) — not the poll that found it unreachable,
// when a burst could only be lost.
TEST(SourceTest, IburstOnReturnFollowsTheFirstReplyAfterUnreachable) {
  SourceConfig config = TestConfig();
  config.iburst = true;
  Source source(config, 5);
  MonoTime now = TimerOf(source.Start(Mono(absl::Seconds(100))));
  // The start-up burst, answered.
  std::vector<SourceAction> polled;
  for (int i = 0; i < Source::kBurstSize; ++i) {
    const NtpPacket request = Poll(source, now, kWall, &polled);
    source.HandleResponse(Encode(GoodReply(request, kWall)), T4Of(kWall),
                          now + 3 * kUnit);
    now = TimerOf(polled);
  }
  ASSERT_FALSE(source.bursting());
  ASSERT_EQ(source.health(), SourceHealth::kOk);

  // Silence: one request per poll; the eighth unanswered poll makes it
  // unreachable, and still sends one request only, with no burst to follow.
  for (int i = 1; i <= 8; ++i) {
    polled = source.HandleTimer(now);
    EXPECT_THAT(ActionsOf<SendRequest>(polled), SizeIs(1)) << "poll " << i;
    EXPECT_FALSE(source.bursting()) << "poll " << i;
    EXPECT_GT(TimerOf(polled) - now, absl::Seconds(60)) << "poll " << i;
    now = TimerOf(polled);
  }
  ASSERT_EQ(source.health(), SourceHealth::kUnreachable);
  // More silent polls: still one request each.
  polled = source.HandleTimer(now);
  EXPECT_THAT(ActionsOf<SendRequest>(polled), SizeIs(1));
  EXPECT_FALSE(source.bursting());
  const uint64_t requests_before_return = source.counters().requests;
  now = TimerOf(polled);

  // It answers again: that reply starts the burst; kBurstSize - 1 more
  // requests follow kBurstSpacing apart, then the poll interval.
  const NtpPacket request = Poll(source, now, kWall, &polled);
  const MonoTime arrived = now + 3 * kUnit;
  std::vector<SourceAction> answered = source.HandleResponse(
      Encode(GoodReply(request, kWall)), T4Of(kWall), arrived);
  EXPECT_THAT(ActionsOf<SampleAccepted>(answered), SizeIs(1));
  EXPECT_EQ(source.health(), SourceHealth::kOk);
  EXPECT_TRUE(source.bursting());
  now = TimerOf(answered);
  EXPECT_EQ(now - arrived, Source::kBurstSpacing);
  const uint8_t reach = source.reach();
  for (int i = 1; i < Source::kBurstSize; ++i) {
    polled = source.HandleTimer(now);
    ASSERT_THAT(ActionsOf<SendRequest>(polled), SizeIs(1)) << "request " << i;
    const MonoTime next = TimerOf(polled);
    if (i + 1 < Source::kBurstSize) {
      EXPECT_EQ(next - now, Source::kBurstSpacing) << "request " << i;
    } else {
      EXPECT_GT(next - now, absl::Seconds(60));
      EXPECT_FALSE(source.bursting());
    }
    now = next;
  }
  EXPECT_EQ(source.counters().requests,
            requests_before_return + Source::kBurstSize);
  // The burst is part of the poll that got the reply: no shift of the
  // register.
  EXPECT_EQ(source.reach(), reach);
  // A second reply later does not start another burst.
  const NtpPacket next_request = Poll(source, now, kWall, &polled);
  answered = source.HandleResponse(Encode(GoodReply(next_request, kWall)),
                                   T4Of(kWall), now + 3 * kUnit);
  EXPECT_FALSE(source.bursting());
  EXPECT_THAT(ActionsOf<ArmTimer>(answered), IsEmpty());
}

TEST(SourceTest, NeverRepliedSourceIsUnreachableAtTheNinthPoll) {
  Source source(TestConfig(), 5);
  std::vector<SourceAction> polled = source.Start(Mono(absl::Seconds(100)));
  for (int i = 1; i <= 8; ++i) {
    polled = source.HandleTimer(TimerOf(polled));
    EXPECT_EQ(source.health(), SourceHealth::kNew) << "poll " << i;
  }
  polled = source.HandleTimer(TimerOf(polled));
  EXPECT_EQ(source.health(), SourceHealth::kUnreachable);
  EXPECT_THAT(source.reason(), HasSubstr("no reply"));
}

TEST(SourceTest, IburstSendsEightRequestsTwoSecondsApart) {
  SourceConfig config = TestConfig();
  config.iburst = true;
  Source source(config, 11);
  MonoTime now = TimerOf(source.Start(Mono(absl::Seconds(100))));
  std::vector<uint64_t> nonces;
  for (int i = 0; i < Source::kBurstSize; ++i) {
    const std::vector<SourceAction> actions = source.HandleTimer(now);
    const std::vector<SendRequest> sends = ActionsOf<SendRequest>(actions);
    ASSERT_THAT(sends, SizeIs(1)) << "request " << i;
    nonces.push_back(Decode(sends[0].bytes).transmit.raw());
    const MonoTime next = TimerOf(actions);
    if (i + 1 < Source::kBurstSize) {
      EXPECT_EQ(next - now, Source::kBurstSpacing) << "request " << i;
      EXPECT_TRUE(source.bursting());
    } else {
      // After the eighth, back to the poll interval: (60 s, 64 s].
      EXPECT_GT(next - now, absl::Seconds(60));
      EXPECT_LE(next - now, absl::Seconds(64));
      EXPECT_FALSE(source.bursting());
    }
    now = next;
  }
  EXPECT_EQ(source.counters().requests, 8u);
  // Each request has its own nonce.
  std::sort(nonces.begin(), nonces.end());
  EXPECT_EQ(std::unique(nonces.begin(), nonces.end()), nonces.end());
}

TEST(SourceTest, WithoutIburstTheFirstPollSendsOneRequest) {
  Source source(TestConfig(), 11);
  const MonoTime now = TimerOf(source.Start(Mono(absl::Seconds(100))));
  const std::vector<SourceAction> actions = source.HandleTimer(now);
  EXPECT_THAT(ActionsOf<SendRequest>(actions), SizeIs(1));
  EXPECT_FALSE(source.bursting());
  EXPECT_GT(TimerOf(actions) - now, absl::Seconds(60));
}

TEST(SourceTest, ClockStepVoidsTheOutstandingExchange) {
  Source source(TestConfig(), 1);
  MonoTime now = TimerOf(source.Start(Mono(absl::Seconds(100))));
  std::vector<SourceAction> polled;
  NtpPacket request = Poll(source, now, kWall, &polled);
  source.ClockStepped();
  EXPECT_THAT(source.HandleResponse(Encode(GoodReply(request, kWall)),
                                    T4Of(kWall), now + 3 * kUnit),
              IsEmpty());
  EXPECT_EQ(source.counters().responses, 0u);
  EXPECT_EQ(source.reach(), 0);

  // The next exchange, entirely after the step, is good again.
  now = TimerOf(polled);
  const absl::Time t1 = kWall + absl::Seconds(64);
  request = Poll(source, now, t1);
  EXPECT_THAT(ActionsOf<SampleAccepted>(source.HandleResponse(
                  Encode(GoodReply(request, t1)), T4Of(t1), now + 3 * kUnit)),
              SizeIs(1));
}

TEST(SourceTest, PairsRequestsFromPairFromPoll) {
  SourceConfig config = TestConfig();  // minpoll 6, maxpoll 10, pair from 10
  Polled p = StartAndPoll(config);
  std::vector<SourceAction> actions = p.source.HandleResponse(
      Encode(GoodReply(p.request, kWall)), T4Of(kWall), p.sent + 3 * kUnit);
  ASSERT_EQ(p.source.reach(), 1);
  p.source.SetPollExponent(10);
  ASSERT_EQ(p.source.poll_exponent(), 10);

  // The timer armed at the 2^6 s poll still stands; at it, two requests go
  // out kBurstSpacing apart, then the next poll is 2^10 s away.
  MonoTime now = p.source.next_poll();
  actions = p.source.HandleTimer(now);
  EXPECT_THAT(ActionsOf<SendRequest>(actions), SizeIs(1));
  EXPECT_TRUE(p.source.bursting());
  const MonoTime second = TimerOf(actions);
  EXPECT_EQ(second - now, Source::kBurstSpacing);

  actions = p.source.HandleTimer(second);
  EXPECT_THAT(ActionsOf<SendRequest>(actions), SizeIs(1));
  EXPECT_FALSE(p.source.bursting());
  EXPECT_GT(TimerOf(actions) - second, absl::Seconds(960));  // 1024 * 15/16
  EXPECT_LE(TimerOf(actions) - second, absl::Seconds(1024));
  EXPECT_EQ(p.source.counters().requests, 3u);
  // The pair counts as one poll: the register shifted once.
  EXPECT_EQ(p.source.reach(), 0b10);
}

TEST(SourceTest, SendsTheRequestsPerPollTheEngineAsksFor) {
  Polled p = StartAndPoll(TestConfig());  // minpoll 6
  p.source.HandleResponse(Encode(GoodReply(p.request, kWall)), T4Of(kWall),
                          p.sent + 3 * kUnit);
  p.source.SetRequestsPerPoll(4);
  EXPECT_EQ(p.source.requests_per_poll(), 4);
  // At the next poll: 4 requests kBurstSpacing apart, then 2^6 s to the next.
  MonoTime now = p.source.next_poll();
  for (int i = 0; i < 4; ++i) {
    const std::vector<SourceAction> actions = p.source.HandleTimer(now);
    EXPECT_THAT(ActionsOf<SendRequest>(actions), SizeIs(1)) << i;
    EXPECT_EQ(p.source.bursting(), i < 3) << i;
    const MonoTime next = TimerOf(actions);
    if (i < 3) {
      EXPECT_EQ(next - now, Source::kBurstSpacing);
    } else {
      EXPECT_GT(next - now, absl::Seconds(60));  // 64 * 15/16
    }
    now = next;
  }
  EXPECT_EQ(p.source.counters().requests, 5u);
  EXPECT_EQ(p.source.reach(), 0b10);  // one poll
  // Clamped to a burst's size, and to at least one.
  p.source.SetRequestsPerPoll(100);
  EXPECT_EQ(p.source.requests_per_poll(), Source::kBurstSize);
  p.source.SetRequestsPerPoll(0);
  EXPECT_EQ(p.source.requests_per_poll(), 1);
}

TEST(SourceTest, NoPairBelowPairFromPollOrWhileUnreachable) {
  {
    // Reachable, but poll 9 < pair_from_poll 10.
    Polled p = StartAndPoll(TestConfig());
    p.source.HandleResponse(Encode(GoodReply(p.request, kWall)), T4Of(kWall),
                            p.sent + 3 * kUnit);
    p.source.SetPollExponent(9);
    const MonoTime now = p.source.next_poll();
    const std::vector<SourceAction> actions = p.source.HandleTimer(now);
    EXPECT_THAT(ActionsOf<SendRequest>(actions), SizeIs(1));
    EXPECT_FALSE(p.source.bursting());
    EXPECT_GT(TimerOf(actions) - now, absl::Seconds(480));  // 512 * 15/16
  }
  {
    // At poll 10, but no reply yet.
    Polled p = StartAndPoll(TestConfig());
    p.source.SetPollExponent(10);
    const std::vector<SourceAction> actions =
        p.source.HandleTimer(p.source.next_poll());
    EXPECT_THAT(ActionsOf<SendRequest>(actions), SizeIs(1));
    EXPECT_FALSE(p.source.bursting());
  }
}

TEST(SourceTest, SetPollExponentClampsToMinpollAndMaxpoll) {
  Source source(TestConfig(), 1);  // [6, 10]
  source.SetPollExponent(3);
  EXPECT_EQ(source.poll_exponent(), 6);
  source.SetPollExponent(8);
  EXPECT_EQ(source.poll_exponent(), 8);
  source.SetPollExponent(17);
  EXPECT_EQ(source.poll_exponent(), 10);
}

TEST(SourceTest, UnresolvedSourceSendsNothing) {
  SourceConfig config = TestConfig();
  config.address = "";
  Source source(config, 1);
  EXPECT_EQ(source.health(), SourceHealth::kUnresolved);
  EXPECT_THAT(source.reason(), HasSubstr("cannot resolve ntp1.example.net"));
  const MonoTime now = TimerOf(source.Start(Mono(absl::Seconds(100))));
  const std::vector<SourceAction> actions = source.HandleTimer(now);
  EXPECT_THAT(ActionsOf<SendRequest>(actions), IsEmpty());
  EXPECT_GT(TimerOf(actions) - now, absl::Seconds(60));
  // Once resolved it is polled at once, and an iburst source starts with its
  // burst: the polls made while unresolved were not misses.
  const MonoTime resolved = now + absl::Seconds(5);
  EXPECT_EQ(TimerOf(source.SetAddress("192.0.2.1:123", resolved)), resolved);
  EXPECT_EQ(source.health(), SourceHealth::kNew);
  EXPECT_EQ(source.reach(), 0);
}

TEST(SourceTest, IburstStillHappensAfterALateResolution) {
  SourceConfig config = TestConfig();
  config.address = "";
  config.iburst = true;
  Source source(config, 5);
  MonoTime now = TimerOf(source.Start(Mono(absl::Seconds(0))));
  for (int i = 0; i < 10; ++i)
    now = TimerOf(source.HandleTimer(now));  // 10 unresolved polls
  now = TimerOf(source.SetAddress("192.0.2.1:123", now));
  for (int i = 0; i < Source::kBurstSize; ++i) {
    const std::vector<SourceAction> actions = source.HandleTimer(now);
    ASSERT_THAT(ActionsOf<SendRequest>(actions), SizeIs(1)) << "request " << i;
    now = TimerOf(actions);
  }
  EXPECT_EQ(source.counters().requests, 8u);
  EXPECT_NE(source.health(), SourceHealth::kUnreachable);
}

// `server ... key 1`: requests are signed, and only replies signed with the
// same key are believed.
TEST(SourceTest, WithAKeySignsRequestsAndAcceptsOnlySignedReplies) {
  Key key;
  key.id = 1;
  key.type = KeyType::kMd5;
  key.secret = {'s', 'e', 'c', 'r', 'e', 't'};
  SourceConfig config = TestConfig();
  config.key = key;
  Polled p = StartAndPoll(config);
  ASSERT_TRUE(p.request.mac.has_value());
  EXPECT_EQ(p.request.mac->key_id, 1u);
  EXPECT_EQ(p.request.mac->digest.size(), 16u);

  auto signed_reply = [&](const Key& k) {
    std::vector<uint8_t> bytes = Encode(GoodReply(p.request, kWall));
    bytes.resize(kHeaderSize + kKeyIdSize + kMaxDigestSize);
    bytes.resize(AppendMac(k, absl::MakeSpan(bytes), kHeaderSize));
    return bytes;
  };
  const MonoTime back = p.sent + 3 * kUnit;
  // Unsigned: rejected, counted, and the reason says why.
  EXPECT_THAT(ActionsOf<SampleAccepted>(p.source.HandleResponse(
                  Encode(GoodReply(p.request, kWall)), T4Of(kWall), back)),
              IsEmpty());
  EXPECT_EQ(p.source.counters().auth_failed, 1u);
  EXPECT_THAT(p.source.reason(), HasSubstr("authentication failed (key 1)"));
  // Signed with another secret under the same id: rejected.
  Key wrong = key;
  wrong.secret = {'o', 't', 'h', 'e', 'r'};
  EXPECT_THAT(ActionsOf<SampleAccepted>(p.source.HandleResponse(
                  signed_reply(wrong), T4Of(kWall), back)),
              IsEmpty());
  EXPECT_EQ(p.source.counters().auth_failed, 2u);
  // Signed with the key: accepted (the forgeries did not cancel the exchange).
  EXPECT_THAT(ActionsOf<SampleAccepted>(p.source.HandleResponse(
                  signed_reply(key), T4Of(kWall), back)),
              SizeIs(1));
}

}  // namespace
}  // namespace ntpfleet::ntp
