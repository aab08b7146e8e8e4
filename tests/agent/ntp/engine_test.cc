#include "agent/ntp/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "agent/clock/clock.h"
#include "agent/clock/sim_clock.h"
#include "agent/ntp/discipline.h"
#include "agent/ntp/packet.h"
#include "agent/ntp/timestamp.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet::ntp {
namespace {

using ::ntpfleet::clock::MonoTime;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// A monotonic clock that moves only when the test says so.
class FakeMonotonicClock final : public clock::MonotonicClock {
 public:
  MonoTime Now() const override { return now_; }
  void Advance(absl::Duration d) { now_ += d; }
  void AdvanceTo(MonoTime t) {
    if (t > now_) now_ = t;
  }

 private:
  MonoTime now_ = MonoTime::FromDuration(absl::Seconds(100));
};

const absl::Time kEpoch = absl::FromCivil(
    absl::CivilSecond(2026, 1, 1, 0, 0, 0), absl::UTCTimeZone());

constexpr char kServerAddress[] = "192.0.2.1:123";
constexpr char kOtherServerAddress[] = "192.0.2.2:123";
// The one-way network delay each way, and the server's processing time.
constexpr absl::Duration kOneWay = absl::Milliseconds(1);
constexpr absl::Duration kProcessing = absl::Microseconds(10);

// What a simulated server says about itself.
struct ServerSpec {
  int stratum = 2;
  Leap leap = Leap::kNone;
  // Its own upstream (a stratum-2 server's refid is an IPv4 address).
  RefId reference_id = RefId::FromIpv4(203, 0, 113, 9);
};

// A mode-4 reply to `request` (RFC 5905 §8): the request's transmit
// timestamp echoed as origin, T2/T3 from the server's (true) clock.
std::vector<uint8_t> ServerReply(const NtpPacket& request,
                                 const ServerSpec& spec, absl::Time t2,
                                 absl::Time t3) {
  NtpPacket reply;
  reply.leap = spec.leap;
  reply.version = request.version;
  reply.mode = Mode::kServer;
  reply.stratum = static_cast<uint8_t>(spec.stratum);
  reply.poll = request.poll;
  reply.precision = -20;
  reply.root_delay = NtpShort::FromDuration(absl::Microseconds(500));
  reply.root_dispersion = NtpShort::FromDuration(absl::Microseconds(500));
  reply.reference_id = spec.reference_id;
  reply.reference = NtpTimestamp::FromTime(t2 - absl::Seconds(16));
  reply.origin = request.transmit;
  reply.receive = NtpTimestamp::FromTime(t2);
  reply.transmit = NtpTimestamp::FromTime(t3);
  absl::StatusOr<std::vector<uint8_t>> bytes = EncodePacket(reply);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *std::move(bytes) : std::vector<uint8_t>();
}

// A node (fake monotonic clock, SimClock, Engine) and the servers it talks to,
// played by the test over a symmetric, lossless 1 ms path.
class Node {
 public:
  explicit Node(const clock::SimClockParams& clock_params,
                const EngineOptions& options = {})
      : clock_(&mono_, kEpoch, clock_params),
        engine_(&clock_, options, mono_.Now()) {}

  int AddServer(const std::string& address, const ServerSpec& spec = {}) {
    servers_[address] = spec;
    SourceConfig config;
    config.name = address;
    config.address = address;
    config.iburst = true;
    return engine_.AddSource(config);
  }

  // Carries out the engine's transmits: each request reaches its server after
  // kOneWay, the server stamps T2 and T3 from true time, and the reply arrives
  // kOneWay later. The measured offset is then exactly -phase, the delay 2 ms.
  void Send(std::vector<Transmit> transmits) {
    for (Transmit& t : transmits) {
      ++transmits_;
      engine_.OnTransmit(t.source, clock_.Now(), mono_.Now());
      const auto server = servers_.find(t.address);
      if (server == servers_.end()) continue;  // nobody there
      absl::StatusOr<NtpPacket> request = DecodePacket(t.bytes);
      ASSERT_TRUE(request.ok()) << request.status();
      ASSERT_EQ(request->mode, Mode::kClient);
      mono_.Advance(kOneWay);
      const absl::Time t2 = clock_.TrueNow();
      mono_.Advance(kProcessing);
      const absl::Time t3 = clock_.TrueNow();
      const std::vector<uint8_t> reply =
          ServerReply(*request, server->second, t2, t3);
      mono_.Advance(kOneWay);
      Send(engine_.HandleResponse(t.address, reply, clock_.Now(), mono_.Now()));
    }
  }

  // Runs the engine's timers up to `end`, then moves the clock to `end`.
  void RunUntil(MonoTime end) {
    for (int i = 0; i < 10000; ++i) {
      const MonoTime next = engine_.next_timer();
      if (next > end) {
        mono_.AdvanceTo(end);
        return;
      }
      mono_.AdvanceTo(next);
      Send(engine_.HandleTimer(mono_.Now()));
    }
    ADD_FAILURE() << "the engine's timer never got past "
                  << engine_.next_timer().since_origin();
  }

  void StartAndRunFor(absl::Duration d) {
    const MonoTime start = mono_.Now();
    Send(engine_.Start(start));
    RunUntil(start + d);
  }

  FakeMonotonicClock& mono() { return mono_; }
  clock::SimClock& clock() { return clock_; }
  Engine& engine() { return engine_; }
  int transmits() const { return transmits_; }

 private:
  FakeMonotonicClock mono_;
  clock::SimClock clock_;
  Engine engine_;
  std::map<std::string, ServerSpec> servers_;
  int transmits_ = 0;
};

// An iburst is 8 requests 2 s apart, starting within 0.5 s: done by ~15 s,
// and the next poll is 2^6 s * (1 - [0, 1/16]) >= 60 s later.
constexpr absl::Duration kAfterBurst = absl::Seconds(30);

TEST(EngineTest, IburstStepsOnceAndSynchronises) {
  Node node({.initial_offset = absl::Milliseconds(-50)});  // 50 ms behind
  node.AddServer(kServerAddress);
  node.StartAndRunFor(kAfterBurst);

  EXPECT_EQ(node.transmits(), Source::kBurstSize);
  const EngineStatus st = node.engine().Status(node.mono().Now());
  // 50 ms is above the 1 ms start-up threshold: stepped, once.
  EXPECT_EQ(st.steps, 1);
  EXPECT_EQ(node.clock().steps(), 1);
  EXPECT_THAT(st.state, AnyOf(SyncState::kSynchronized, SyncState::kSyncing));
  EXPECT_EQ(st.stratum, 3);  // the server's stratum 2, plus one
  // RFC 5905 §7.3: our refid is the upstream's IPv4 address, not its refid.
  EXPECT_EQ(st.reference_id, RefId::FromIpv4(192, 0, 2, 1));
  EXPECT_EQ(st.leap, Leap::kNone);
  ASSERT_TRUE(st.system_peer.has_value());
  EXPECT_EQ(*st.system_peer, 0);
  EXPECT_LT(absl::AbsDuration(node.clock().Phase()), absl::Milliseconds(1));
  EXPECT_LT(absl::AbsDuration(st.offset), absl::Milliseconds(1));
  // Error bound: |offset| + root dispersion + root delay / 2, at least the
  // server's 0.5 ms + (0.5 ms + 2 ms) / 2 = 1.75 ms, and finite.
  EXPECT_GE(st.error_bound, absl::Microseconds(1750));
  EXPECT_LT(st.error_bound, absl::Milliseconds(10));
  EXPECT_TRUE(node.clock().sync_state().synchronized);

  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].health, SourceHealth::kOk);
  EXPECT_NE(st.peers[0].reach, 0);
  EXPECT_EQ(st.peers[0].mark, SelectionMark::kSystemPeer);
  EXPECT_EQ(st.peers[0].counters.responses,
            static_cast<uint64_t>(Source::kBurstSize));
  EXPECT_EQ(st.peers[0].delay, absl::Milliseconds(2));
}

TEST(EngineTest, StaysSynchronisedAfterTheBurst) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  node.AddServer(kServerAddress);
  node.StartAndRunFor(absl::Seconds(600));  // several 64 s polls
  const EngineStatus st = node.engine().Status(node.mono().Now());
  EXPECT_EQ(st.steps, 1);
  EXPECT_EQ(st.state, SyncState::kSynchronized);
  EXPECT_LT(absl::AbsDuration(node.clock().Phase()), absl::Microseconds(100));
}

TEST(EngineTest, LearnsTheOscillatorFrequency) {
  // 20 ppm fast and 50 ms behind: stepped at start-up, and the frequency
  // error is learnt (EngineStatus.frequency_ppm: positive = runs fast).
  Node node(
      {.initial_offset = absl::Milliseconds(-50), .frequency_error_ppm = 20});
  node.AddServer(kServerAddress);
  node.StartAndRunFor(absl::Seconds(1200));
  const EngineStatus st = node.engine().Status(node.mono().Now());
  EXPECT_NEAR(st.frequency_ppm, 20, 1);
  EXPECT_NEAR(node.clock().RateErrorPpm(), 0, 1);
  EXPECT_LT(absl::AbsDuration(node.clock().Phase()), absl::Milliseconds(1));
}

TEST(EngineTest, DropsDatagramsFromUnqueriedAddresses) {
  Node node({});
  node.AddServer(kServerAddress);
  node.Send(node.engine().Start(node.mono().Now()));
  NtpPacket request;
  request.transmit = NtpTimestamp::FromRaw(0x0123456789abcdefULL);
  const std::vector<uint8_t> reply =
      ServerReply(request, {}, node.clock().TrueNow(), node.clock().TrueNow());

  const std::vector<Transmit> out = node.engine().HandleResponse(
      "198.51.100.7:123", reply, node.clock().Now(), node.mono().Now());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(node.engine().unknown_sender_drops(), 1u);
  // The source saw nothing.
  const EngineStatus st = node.engine().Status(node.mono().Now());
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].counters.responses, 0u);
  EXPECT_EQ(st.peers[0].counters.duplicate, 0u);
  EXPECT_EQ(st.peers[0].reach, 0);
}

TEST(EngineTest, ServesTheLocalClockWithoutSources) {
  EngineOptions options;
  options.local_clock_stratum = 10;
  Node node({}, options);
  node.Send(node.engine().Start(node.mono().Now()));
  const EngineStatus st = node.engine().Status(node.mono().Now());
  EXPECT_EQ(st.state, SyncState::kLocalClock);
  EXPECT_EQ(st.stratum, 10);
  // ntpd's local clock driver address, as ntpd and chrony send it.
  EXPECT_EQ(st.reference_id, RefId::FromIpv4(127, 127, 1, 0));
  EXPECT_EQ(st.leap, Leap::kNone);
  EXPECT_FALSE(st.system_peer.has_value());
  EXPECT_STREQ(SyncStateName(st.state), "local clock");
}

TEST(EngineTest, IsUnsynchronisedWithoutSourcesOrLocalClock) {
  Node node({});
  node.Send(node.engine().Start(node.mono().Now()));
  const EngineStatus st = node.engine().Status(node.mono().Now());
  EXPECT_EQ(st.state, SyncState::kUnsynchronized);
  EXPECT_EQ(st.stratum, 16);
  EXPECT_EQ(st.leap, Leap::kUnsynchronized);
  EXPECT_EQ(st.error_bound, absl::InfiniteDuration());
  EXPECT_EQ(node.engine().next_timer(), MonoTime::Infinite());
  EXPECT_STREQ(SyncStateName(st.state), "unsynchronised");
}

TEST(EngineTest, IgnoresAnUnsynchronisedServer) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  ServerSpec unsynchronised;
  unsynchronised.stratum = 16;
  node.AddServer(kServerAddress, unsynchronised);
  node.StartAndRunFor(kAfterBurst);

  const EngineStatus st = node.engine().Status(node.mono().Now());
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].health, SourceHealth::kUnsynchronized);
  EXPECT_THAT(st.peers[0].reason, HasSubstr("unsynchronised"));
  EXPECT_THAT(st.peers[0].reason, HasSubstr("stratum 16"));
  EXPECT_EQ(st.state, SyncState::kUnsynchronized);
  EXPECT_EQ(st.steps, 0);
  EXPECT_EQ(st.error_bound, absl::InfiniteDuration());
  // The clock was left alone.
  EXPECT_EQ(node.clock().steps(), 0);
  EXPECT_EQ(node.clock().Phase(), absl::Milliseconds(-50));
  EXPECT_FALSE(node.clock().sync_state().synchronized);
}

// KoD DENY: the source stops for good, and the engine's timer does not stay
// stuck in the past (a daemon waiting on next_timer() would spin).
TEST(EngineTest, KissOfDeathDenyStopsTheSourceAndItsTimer) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  ServerSpec deny;
  deny.stratum = 0;
  deny.reference_id = RefId::FromCode("DENY");
  node.AddServer(kServerAddress, deny);
  node.StartAndRunFor(kAfterBurst);
  const EngineStatus st = node.engine().Status(node.mono().Now());
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].health, SourceHealth::kDenied);
  EXPECT_THAT(st.peers[0].reason, HasSubstr("KoD DENY"));
  EXPECT_EQ(node.transmits(), 1);
  EXPECT_EQ(node.engine().next_timer(), clock::MonoTime::Infinite());
  EXPECT_EQ(st.state, SyncState::kUnsynchronized);
}

// A leap second announced upstream reaches the kernel (STA_INS through the
// AdjustableClock), so it is inserted at midnight UTC (RFC 5905 §7.3).
// kEpoch is in January: without a leap table only the ends of June and
// December may carry a leap second, so the upstream's LI 1 is neither served
// nor passed to the kernel (engine_leap_test.cc covers the rest).
TEST(EngineTest, IgnoresAnUpstreamLeapSecondOutsideJuneAndDecember) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  ServerSpec leap;
  leap.leap = Leap::kInsertSecond;
  node.AddServer(kServerAddress, leap);
  node.StartAndRunFor(kAfterBurst);
  const EngineStatus st = node.engine().Status(node.mono().Now());
  EXPECT_EQ(st.leap, Leap::kNone);
  EXPECT_TRUE(node.clock().sync_state().synchronized);
  EXPECT_EQ(node.clock().sync_state().leap, clock::LeapAction::kNone);
}

TEST(EngineTest, StartResyncSendsToEverySource) {
  Node node({});
  const int a = node.AddServer(kServerAddress);
  const int b = node.AddServer(kOtherServerAddress);
  // Started, but no poll has run yet (the first is due within 0.5 s).
  EXPECT_TRUE(node.engine().Start(node.mono().Now()).empty());

  const std::vector<Transmit> out =
      node.engine().StartResync(node.mono().Now(), /*allow_step=*/true);
  ASSERT_EQ(out.size(), 2u);
  std::set<int> sources;
  std::set<std::string> addresses;
  for (const Transmit& t : out) {
    sources.insert(t.source);
    addresses.insert(t.address);
    absl::StatusOr<NtpPacket> request = DecodePacket(t.bytes);
    ASSERT_TRUE(request.ok()) << request.status();
    EXPECT_EQ(request->mode, Mode::kClient);
    EXPECT_FALSE(request->transmit.is_zero());  // the nonce
  }
  EXPECT_THAT(sources, UnorderedElementsAre(a, b));
  EXPECT_THAT(addresses,
              UnorderedElementsAre(kServerAddress, kOtherServerAddress));
}

TEST(EngineTest, ForcedResyncStepsAfterTheClockWasDisturbed) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  node.AddServer(kServerAddress);
  node.StartAndRunFor(kAfterBurst);
  ASSERT_EQ(node.engine().Status(node.mono().Now()).steps, 1);

  // Something else moves the clock 5 ms ahead; `ntpfleetctl resync --step`.
  ASSERT_TRUE(node.clock().Step(absl::Milliseconds(5)).ok());
  node.Send(node.engine().StartResync(node.mono().Now(), /*allow_step=*/true));
  node.RunUntil(node.mono().Now() + absl::Seconds(20));

  ASSERT_TRUE(node.engine().last_correction().has_value());
  EXPECT_EQ(node.engine().Status(node.mono().Now()).steps, 2);
  EXPECT_LT(absl::AbsDuration(node.clock().Phase()), absl::Milliseconds(1));
}

// The controller's resync may step only within its limit (issue #10).
const StepLimit kRequestLimit{
    absl::Milliseconds(128), "this request's step limit",
    "an admin can lift it with `ntpfleetctl resync --force`"};

// A node synchronised (one start-up step), whose clock is then moved `by`.
void SyncThenDisturb(Node& node, absl::Duration by) {
  node.AddServer(kServerAddress);
  node.StartAndRunFor(kAfterBurst);
  ASSERT_EQ(node.engine().Status(node.mono().Now()).steps, 1);
  ASSERT_TRUE(node.clock().Step(by).ok());
}

// Starts a resync and runs the engine until it has attempted a correction
// (the burst's replies arrive 2 s apart; at most 30 s).
void ResyncUntilAttempt(Node& node, bool allow_step,
                        std::optional<StepLimit> limit) {
  const uint64_t before = node.engine().attempts();
  const MonoTime end = node.mono().Now() + absl::Seconds(30);
  node.Send(node.engine().StartResync(node.mono().Now(), allow_step, limit));
  while (node.engine().attempts() == before && node.mono().Now() < end) {
    node.mono().AdvanceTo(std::min(node.engine().next_timer(), end));
    node.Send(node.engine().HandleTimer(node.mono().Now()));
  }
  ASSERT_GT(node.engine().attempts(), before) << "no correction attempted";
  ASSERT_TRUE(node.engine().last_correction().has_value());
}

// Steps made by the discipline (the test's own disturbing step not counted).
int Steps(Node& node) { return node.engine().Status(node.mono().Now()).steps; }

TEST(EngineTest, RemoteResyncBeyondItsStepLimitCorrectsNothing) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  SyncThenDisturb(node, absl::Milliseconds(800));  // 800 ms ahead
  const double frequency = node.clock().FrequencyAdjustment();
  const uint64_t corrections = node.engine().corrections();
  const uint64_t attempts = node.engine().attempts();

  // The first reply of the burst is measured and refused at once.
  ResyncUntilAttempt(node, true, kRequestLimit);
  ASSERT_TRUE(node.engine().last_correction().has_value());
  const Correction& c = *node.engine().last_correction();
  EXPECT_EQ(c.kind, CorrectionKind::kRefused);
  EXPECT_NEAR(c.offset, -0.8, 0.002);
  EXPECT_THAT(c.message,
              testing::MatchesRegex(
                  "offset -(799\\.[0-9]|800\\.[0-9]) ms is beyond this "
                  "request's step limit \\(128 ms\\): an admin can lift it "
                  "with `ntpfleetctl resync --force`"));
  EXPECT_EQ(node.engine().attempts(), attempts + 1);
  EXPECT_EQ(node.engine().corrections(), corrections);
  // Not stepped, not slewed, frequency untouched.
  EXPECT_EQ(Steps(node), 1);
  EXPECT_EQ(node.engine().Status(node.mono().Now()).steps, 1);
  EXPECT_EQ(node.clock().FrequencyAdjustment(), frequency);
  EXPECT_NEAR(absl::ToDoubleSeconds(node.clock().Phase()), 0.8, 0.002);
}

TEST(EngineTest, RemoteResyncWithoutAllowStepIsLimitedToo) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  SyncThenDisturb(node, absl::Milliseconds(-300));  // above `tinker step`
  ResyncUntilAttempt(node, false, kRequestLimit);
  ASSERT_TRUE(node.engine().last_correction().has_value());
  EXPECT_EQ(node.engine().last_correction()->kind, CorrectionKind::kRefused);
  EXPECT_THAT(node.engine().last_correction()->message,
              HasSubstr("offset +300.0 ms is beyond this request's step limit "
                        "(128 ms)"));
  EXPECT_EQ(Steps(node), 1);
}

TEST(EngineTest, RemoteResyncWithinItsStepLimitSteps) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  SyncThenDisturb(node, absl::Milliseconds(100));
  ResyncUntilAttempt(node, true, kRequestLimit);
  node.RunUntil(node.mono().Now() + absl::Seconds(20));
  ASSERT_TRUE(node.engine().last_correction().has_value());
  EXPECT_EQ(Steps(node), 2);
  EXPECT_EQ(node.engine().Status(node.mono().Now()).steps, 2);
  EXPECT_LT(absl::AbsDuration(node.clock().Phase()), absl::Milliseconds(1));
}

TEST(EngineTest, SlewsAreNotLimited) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  SyncThenDisturb(node, absl::Milliseconds(20));
  // Without allow_step 20 ms is slewed, even with a limit of 0 (never step).
  const StepLimit never{absl::ZeroDuration(), "this agent's resync_max_step",
                        "raise it"};
  ResyncUntilAttempt(node, false, never);
  ASSERT_TRUE(node.engine().last_correction().has_value());
  EXPECT_EQ(node.engine().last_correction()->kind, CorrectionKind::kSlew);
  EXPECT_TRUE(node.engine().discipline().slewing());
  EXPECT_EQ(Steps(node), 1);
}

TEST(EngineTest, TheAgentsOwnLimitNamesItself) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  SyncThenDisturb(node, absl::Seconds(-3));
  const StepLimit agent{absl::Seconds(1), "this agent's resync_max_step",
                        "raise resync_max_step"};
  ResyncUntilAttempt(node, true, agent);
  ASSERT_TRUE(node.engine().last_correction().has_value());
  EXPECT_EQ(node.engine().last_correction()->kind, CorrectionKind::kRefused);
  EXPECT_THAT(node.engine().last_correction()->message,
              testing::StartsWith("offset +3.00"));
  EXPECT_THAT(node.engine().last_correction()->message,
              HasSubstr("s is beyond this agent's resync_max_step (1 s): "
                        "raise resync_max_step"));
  EXPECT_EQ(Steps(node), 1);
}

TEST(EngineTest, TheTightestPendingLimitApplies) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  SyncThenDisturb(node, absl::Milliseconds(500));
  // A limited (remote) resync, then an unlimited (local) one before any reply:
  // the limit still holds; and without a pending one, no limit.
  (void)node.engine().StartResync(node.mono().Now(), true, kRequestLimit);
  ResyncUntilAttempt(node, true, std::nullopt);
  ASSERT_TRUE(node.engine().last_correction().has_value());
  EXPECT_EQ(node.engine().last_correction()->kind, CorrectionKind::kRefused);
  EXPECT_EQ(Steps(node), 1);

  ResyncUntilAttempt(node, true, std::nullopt);
  EXPECT_EQ(node.engine().last_correction()->kind, CorrectionKind::kStep);
  EXPECT_EQ(Steps(node), 2);
  EXPECT_LT(absl::AbsDuration(node.clock().Phase()), absl::Milliseconds(1));
}

}  // namespace
}  // namespace ntpfleet::ntp
