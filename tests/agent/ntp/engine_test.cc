#include "agent/ntp/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
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
#include "agent/ntp/access.h"
#include "agent/ntp/discipline.h"
#include "agent/ntp/server.h"
#include "common/ntp/packet.h"
#include "common/ntp/timestamp.h"
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

// What a simulated server says about itself, and how it answers.
struct ServerSpec {
  int stratum = 2;
  Leap leap = Leap::kNone;
  // Its own upstream (a stratum-2 server's refid is an IPv4 address).
  RefId reference_id = RefId::FromIpv4(203, 0, 113, 9);
  absl::Duration root_delay = absl::Microseconds(500);
  // Its clock minus true time (T2 and T3 carry it).
  absl::Duration offset;
  // Added to the path back to the client (the delay grows by it, the
  // measured offset falls by half of it).
  absl::Duration extra_return_delay;
  // When set, called once per request for a further return delay (a noisy
  // path: the measured offset falls by half of it).
  std::function<absl::Duration()> return_jitter;
  // Does not answer.
  bool silent = false;
  // When set, the reply comes from here (e.g. a real Responder reading its
  // own clock) instead of ServerReply, when the request arrives.
  std::function<std::vector<uint8_t>(const std::vector<uint8_t>& request)>
      respond;
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
  reply.root_delay = NtpShort::FromDuration(spec.root_delay);
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
  // `shared`: a monotonic clock shared with another Node (a chain of nodes
  // in one timeline); by default the node has its own.
  // `epoch`: true time now (nodes sharing a monotonic clock must agree).
  explicit Node(const clock::SimClockParams& clock_params,
                const EngineOptions& options = {},
                FakeMonotonicClock* shared = nullptr, absl::Time epoch = kEpoch)
      : mono_(shared != nullptr ? shared : &own_mono_),
        clock_(mono_, epoch, clock_params),
        engine_(&clock_, options, mono_->Now()) {}

  int AddServer(const std::string& address, const ServerSpec& spec = {}) {
    SourceConfig config;
    config.iburst = true;
    return AddServer(address, spec, config);
  }
  int AddServer(const std::string& address, const ServerSpec& spec,
                SourceConfig config) {
    servers_[address] = spec;
    config.name = address;
    config.address = address;
    return engine_.AddSource(config);
  }
  ServerSpec& server(const std::string& address) { return servers_[address]; }
  // A monitor-only source (Engine::AddMonitor) of a server played as above.
  int AddMonitor(const std::string& address, const ServerSpec& spec,
                 absl::Duration interval = absl::Seconds(64)) {
    servers_[address] = spec;
    MonitorConfig config;
    config.name = address;
    config.address = address;
    config.interval = interval;
    return engine_.AddMonitor(config, mono_->Now());
  }
  // When each request to `address` left.
  const std::vector<MonoTime>& sent_at(const std::string& address) {
    return sent_at_[address];
  }

  // Carries out the engine's transmits: each request reaches its server after
  // kOneWay, the server stamps T2 and T3 from true time, and the reply arrives
  // kOneWay later. The measured offset is then exactly -phase, the delay 2 ms.
  void Send(std::vector<Transmit> transmits) {
    for (Transmit& t : transmits) {
      ++transmits_;
      sent_at_[t.address].push_back(mono_->Now());
      engine_.OnTransmit(t.source, clock_.Now(), mono_->Now());
      const auto server = servers_.find(t.address);
      if (server == servers_.end() || server->second.silent) continue;
      const ServerSpec& spec = server->second;
      absl::StatusOr<NtpPacket> request = DecodePacket(t.bytes);
      ASSERT_TRUE(request.ok()) << request.status();
      ASSERT_EQ(request->mode, Mode::kClient);
      mono_->Advance(kOneWay);
      std::vector<uint8_t> reply;
      if (spec.respond) {
        reply = spec.respond(t.bytes);
        mono_->Advance(kProcessing);
      } else {
        const absl::Time t2 = clock_.TrueNow() + spec.offset;
        mono_->Advance(kProcessing);
        const absl::Time t3 = clock_.TrueNow() + spec.offset;
        reply = ServerReply(*request, spec, t2, t3);
      }
      mono_->Advance(
          kOneWay + spec.extra_return_delay +
          (spec.return_jitter ? spec.return_jitter() : absl::ZeroDuration()));
      Send(
          engine_.HandleResponse(t.address, reply, clock_.Now(), mono_->Now()));
    }
  }

  // Runs the engine's timers up to `end`, then moves the clock to `end`.
  void RunUntil(MonoTime end) {
    for (int i = 0; i < 10000; ++i) {
      const MonoTime next = engine_.next_timer();
      if (next > end) {
        mono_->AdvanceTo(end);
        return;
      }
      mono_->AdvanceTo(next);
      Send(engine_.HandleTimer(mono_->Now()));
    }
    ADD_FAILURE() << "the engine's timer never got past "
                  << engine_.next_timer().since_origin();
  }

  void StartAndRunFor(absl::Duration d) {
    const MonoTime start = mono_->Now();
    Send(engine_.Start(start));
    RunUntil(start + d);
  }

  // Runs the engine until it has sent (and had answered) one more request.
  void RunUntilNextRequest() {
    const int before = transmits_;
    for (int i = 0; i < 100 && transmits_ == before; ++i) {
      mono_->AdvanceTo(engine_.next_timer());
      Send(engine_.HandleTimer(mono_->Now()));
    }
    ASSERT_GT(transmits_, before) << "no request";
  }

  FakeMonotonicClock& mono() { return *mono_; }
  clock::SimClock& clock() { return clock_; }
  Engine& engine() { return engine_; }
  int transmits() const { return transmits_; }

 private:
  FakeMonotonicClock own_mono_;
  FakeMonotonicClock* mono_;
  clock::SimClock clock_;
  Engine engine_;
  std::map<std::string, ServerSpec> servers_;
  std::map<std::string, std::vector<MonoTime>> sent_at_;
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

// A source the agent will not poll (an address that can never answer, or one
// another source already polls) says why, instead of "cannot resolve" or "no
// reply yet" (#15); it sends nothing.
TEST(EngineTest, ASourceWithNoAddressToPollSaysWhy) {
  Node node({});
  SourceConfig config;
  config.name = "0.0.0.0";
  const int id = node.engine().AddSource(config);
  node.Send(node.engine().Start(node.mono().Now()));
  EXPECT_EQ(node.engine().Status(node.mono().Now()).peers[0].reason,
            "cannot resolve 0.0.0.0, retrying");
  EXPECT_TRUE(node.engine()
                  .SetSourceAddress(id, "", node.mono().Now(),
                                    "never polled: the unspecified address")
                  .empty());
  const EngineStatus st = node.engine().Status(node.mono().Now());
  EXPECT_EQ(st.peers[0].reason, "never polled: the unspecified address");
  EXPECT_EQ(st.peers[0].health, SourceHealth::kUnresolved);
  EXPECT_EQ(st.peers[0].address, "");
  node.mono().Advance(absl::Seconds(100));
  EXPECT_TRUE(node.engine().HandleTimer(node.mono().Now()).empty());
  EXPECT_EQ(node.engine().Status(node.mono().Now()).peers[0].counters.requests,
            0u);
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
  // Its only source refused it: not just "unsynchronised" (#12).
  EXPECT_EQ(st.state, SyncState::kRefused);
  EXPECT_EQ(st.stratum, 16);
  EXPECT_EQ(st.leap, Leap::kUnsynchronized);
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

// ---------------------------------------------------------------------------
// A node whose clock is known to be wrong (issue #11 item 1).

// A Responder (agent/ntp/server) serving `node`'s system variables from its
// own clock, as the agent's server side does
// (AgentLoop::PublishSystemVariables).
std::function<std::vector<uint8_t>(const std::vector<uint8_t>&)> ServedBy(
    Node& node, Responder& responder) {
  return [&node, &responder](const std::vector<uint8_t>& request) {
    const EngineStatus st = node.engine().Status(node.mono().Now());
    SystemVariables system;
    system.leap = st.leap;
    system.stratum = st.stratum;
    system.reference_id = st.reference_id;
    system.root_delay = st.root_delay;
    system.root_dispersion = st.root_dispersion;
    if (st.reference_time) {
      system.reference_time = NtpTimestamp::FromTime(*st.reference_time);
    }
    std::vector<uint8_t> reply(request.size() + 64);
    const Responder::Prepared prepared =
        responder.Prepare(request, IpAddress::V4(192, 0, 2, 99),
                          NtpTimestamp::FromTime(node.clock().Now()), system,
                          node.mono().Now(), absl::MakeSpan(reply));
    reply.resize(responder.Finish(prepared,
                                  NtpTimestamp::FromTime(node.clock().Now()),
                                  absl::MakeSpan(reply)));
    return reply;
  };
}

constexpr char kUpstreamNodeAddress[] = "192.0.2.3:123";

// A real server (agent/ntp/server) with `restrict 192.0.2.99 noserve kod`
// (ServedBy asks from 192.0.2.99) answers the client with a KoD DENY; the
// client then says who refused it, in its state and reason (#12). A server
// that dropped silently leaves the client "unsynchronised" with no reason;
// an engine that ignored the denial reports kUnsynchronized.
TEST(EngineTest, RefusedByEveryServerSaysWhoRefused) {
  FakeMonotonicClock mono;
  Node upstream({}, {}, &mono);
  upstream.AddServer(kServerAddress);
  upstream.StartAndRunFor(kAfterBurst);
  AccessList refuse;
  refuse.Add({IpAddress::V4(192, 0, 2, 99), 32, kNoServe | kKod});
  Responder responder(refuse, {}, nullptr);

  Node client({.initial_offset = absl::Milliseconds(-30)}, {}, &mono,
              upstream.clock().TrueNow());
  ServerSpec spec;
  spec.respond = ServedBy(upstream, responder);
  client.AddServer(kUpstreamNodeAddress, spec);
  client.StartAndRunFor(kAfterBurst);
  const EngineStatus st = client.engine().Status(mono.Now());
  EXPECT_EQ(responder.counters().kod_deny_sent, 1u);
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].health, SourceHealth::kDenied);
  EXPECT_EQ(st.state, SyncState::kRefused);
  EXPECT_STREQ(SyncStateName(st.state), "refused");
  EXPECT_THAT(st.reason,
              ::testing::StartsWith("refused by 192.0.2.3:123: KoD DENY"));
  EXPECT_EQ(client.clock().steps(), 0);
  EXPECT_EQ(client.transmits(), 1);  // asked once, never again
  // `ntpfleetctl peers` shows the kiss as the refid, and when it came.
  EXPECT_EQ(st.peers[0].reference_id.ToString(st.peers[0].stratum), ".DENY.");
  ASSERT_TRUE(st.peers[0].since_last_response.has_value());
  EXPECT_LE(*st.peers[0].since_last_response, kAfterBurst);
}

// Refused by one server of two: the other serves, so the node synchronises and
// has nothing to explain. Refused by both: the reason names both. With a
// local-clock fallback the node serves its clock and still says why.
TEST(EngineTest, RefusedOnlyWhenEveryServerRefuses) {
  ServerSpec deny;
  deny.stratum = 0;
  deny.reference_id = RefId::FromCode("DENY");
  {
    Node node({.initial_offset = absl::Milliseconds(-50)});
    node.AddServer(kServerAddress, deny);
    node.AddServer(kOtherServerAddress);
    node.StartAndRunFor(kAfterBurst);
    const EngineStatus st = node.engine().Status(node.mono().Now());
    EXPECT_EQ(st.state, SyncState::kSynchronized);
    EXPECT_EQ(st.reason, "");
  }
  {
    ServerSpec rstr = deny;
    rstr.reference_id = RefId::FromCode("RSTR");
    Node node({.initial_offset = absl::Milliseconds(-50)});
    node.AddServer(kServerAddress, deny);
    node.AddServer(kOtherServerAddress, rstr);
    node.StartAndRunFor(kAfterBurst);
    const EngineStatus st = node.engine().Status(node.mono().Now());
    EXPECT_EQ(st.state, SyncState::kRefused);
    EXPECT_THAT(st.reason, ::testing::StartsWith("refused by all 2 servers: "));
    EXPECT_THAT(st.reason, HasSubstr("192.0.2.1:123: KoD DENY"));
    EXPECT_THAT(st.reason, HasSubstr("192.0.2.2:123: KoD RSTR"));
  }
  {
    EngineOptions options;
    options.local_clock_stratum = 10;
    Node node({}, options);
    node.AddServer(kServerAddress, deny);
    node.StartAndRunFor(kAfterBurst);
    const EngineStatus st = node.engine().Status(node.mono().Now());
    EXPECT_EQ(st.state, SyncState::kLocalClock);
    EXPECT_THAT(st.reason, ::testing::StartsWith("refused by 192.0.2.1:123"));
  }
}

// `ntpfleetctl sim-step -- 2000s` on a synchronised node: it measures -2000 s,
// refuses to correct it (beyond the 1000 s panic threshold), and from then on
// says it is unsynchronised — and a client starting then does not step to it.
TEST(EngineTest, ServesTheAlarmWhileBeyondThePanicThreshold) {
  FakeMonotonicClock mono;
  Node upstream({.initial_offset = absl::Milliseconds(-50)}, {}, &mono);
  upstream.AddServer(kServerAddress);
  upstream.StartAndRunFor(kAfterBurst);
  ASSERT_EQ(upstream.engine().Status(mono.Now()).leap, Leap::kNone);
  Responder responder(AccessList(), {}, nullptr);

  // Control: while the upstream is right, a client does step to it (so the
  // chain below does carry time: the assertions after the panic can fail).
  {
    Node client({.initial_offset = absl::Milliseconds(-30)}, {}, &mono,
                upstream.clock().TrueNow());
    ServerSpec spec;
    spec.respond = ServedBy(upstream, responder);
    client.AddServer(kUpstreamNodeAddress, spec);
    client.StartAndRunFor(kAfterBurst);
    EXPECT_EQ(client.engine().Status(mono.Now()).steps, 1);
    EXPECT_LT(absl::AbsDuration(client.clock().Phase()), absl::Milliseconds(1));
  }

  ASSERT_TRUE(upstream.clock().Step(absl::Seconds(2000)).ok());
  // The filter takes the jump as a spike twice, then restarts on the third
  // sample; that update is refused.
  for (int i = 0; i < 20 && upstream.engine().last_correction()->kind !=
                                CorrectionKind::kPanic;
       ++i) {
    upstream.RunUntilNextRequest();
  }
  ASSERT_TRUE(upstream.engine().last_correction().has_value());
  ASSERT_EQ(upstream.engine().last_correction()->kind, CorrectionKind::kPanic);

  const EngineStatus st = upstream.engine().Status(mono.Now());
  // A broken engine (the agent before) said leap 0, stratum 3, synchronised.
  EXPECT_EQ(st.state, SyncState::kUnsynchronized);
  EXPECT_EQ(st.leap, Leap::kUnsynchronized);
  EXPECT_EQ(st.stratum, 16);
  EXPECT_EQ(st.reference_id, RefId::FromCode("STEP"));
  EXPECT_EQ(st.error_bound, absl::InfiniteDuration());
  EXPECT_NEAR(absl::ToDoubleSeconds(st.offset), -2000, 0.01);
  EXPECT_THAT(st.reason,
              testing::MatchesRegex(
                  "clock is -(1999\\.99[0-9]|2000\\.00[0-9]) s off, beyond the "
                  "panic threshold \\(1000 s\\): not correcting; .*"
                  "`ntpfleetctl sync --step`.*"));
  EXPECT_FALSE(upstream.clock().sync_state().synchronized);
  EXPECT_EQ(st.steps, 1);  // only the start-up step

  // A client starting now, through the real server code: it sees an
  // unsynchronised server and leaves its clock alone. (Had the upstream
  // served leap 0, the client would step by +2000 s at once.)
  Node client({.initial_offset = absl::Milliseconds(-30)}, {}, &mono,
              upstream.clock().TrueNow());
  ServerSpec spec;
  spec.respond = ServedBy(upstream, responder);
  client.AddServer(kUpstreamNodeAddress, spec);
  client.StartAndRunFor(kAfterBurst);
  const EngineStatus cst = client.engine().Status(mono.Now());
  EXPECT_EQ(cst.steps, 0);
  EXPECT_EQ(client.clock().Phase(), absl::Milliseconds(-30));
  EXPECT_EQ(cst.state, SyncState::kUnsynchronized);
  ASSERT_EQ(cst.peers.size(), 1u);
  EXPECT_EQ(cst.peers[0].health, SourceHealth::kUnsynchronized);
  EXPECT_THAT(cst.peers[0].reason, HasSubstr("leap alarm"));
  EXPECT_GT(cst.peers[0].counters.responses, 0u);

  // Still unsynchronised after the upstream's sources are gone (not served
  // as holdover)...
  upstream.server(kServerAddress).silent = true;
  upstream.RunUntil(mono.Now() + absl::Hours(3));
  EXPECT_EQ(upstream.engine().Status(mono.Now()).state,
            SyncState::kUnsynchronized);
  EXPECT_EQ(upstream.engine().Status(mono.Now()).leap, Leap::kUnsynchronized);
  // ... until the operator forces the correction: synchronised again.
  upstream.server(kServerAddress).silent = false;
  upstream.Send(upstream.engine().StartResync(mono.Now(), /*allow_step=*/true));
  upstream.RunUntil(mono.Now() + absl::Seconds(20));
  const EngineStatus after = upstream.engine().Status(mono.Now());
  EXPECT_EQ(after.steps, 2);
  EXPECT_LT(absl::AbsDuration(upstream.clock().Phase()), absl::Milliseconds(1));
  EXPECT_EQ(after.leap, Leap::kNone);
  EXPECT_EQ(after.stratum, 3);
  EXPECT_EQ(after.reason, "");
  EXPECT_TRUE(upstream.clock().sync_state().synchronized);
}

// ---------------------------------------------------------------------------
// Stratum 16 and leap 3 (issue #11 item 7).

// A stratum-15 upstream would make us stratum 16: it cannot synchronise us,
// and what we serve is the alarm, never stratum 16 with leap 0.
TEST(EngineTest, AStratumFifteenUpstreamCannotSynchroniseUs) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  ServerSpec fifteen;
  fifteen.stratum = 15;
  node.AddServer(kServerAddress, fifteen);
  node.StartAndRunFor(kAfterBurst);
  const EngineStatus st = node.engine().Status(node.mono().Now());
  EXPECT_EQ(st.state, SyncState::kUnsynchronized);
  EXPECT_EQ(st.stratum, 16);
  EXPECT_EQ(st.leap, Leap::kUnsynchronized);
  EXPECT_EQ(st.steps, 0);
  EXPECT_EQ(node.clock().Phase(), absl::Milliseconds(-50));
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].health, SourceHealth::kUnsynchronized);
  EXPECT_THAT(st.peers[0].reason, HasSubstr("stratum 15 is too high"));
}

TEST(EngineTest, StratumSixteenAlwaysComesWithTheLeapAlarm) {
  EngineOptions options;
  options.local_clock_stratum = 16;  // a misconfigured local clock
  Node node({}, options);
  node.Send(node.engine().Start(node.mono().Now()));
  const EngineStatus st = node.engine().Status(node.mono().Now());
  EXPECT_EQ(st.stratum, 16);
  EXPECT_EQ(st.leap, Leap::kUnsynchronized);
}

// ---------------------------------------------------------------------------
// Root delay from the sample the filter relies on (RFC 5905 §10).

// A root delay as it arrives on the wire (NTP short format, 2^-16 s units).
absl::Duration OnTheWire(absl::Duration d) {
  return NtpShort::FromDuration(d).ToDuration();
}

TEST(EngineTest, RootDelayComesFromTheMinimumDelaySample) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  node.AddServer(kServerAddress);  // 2 ms path, root delay 500 µs
  node.StartAndRunFor(kAfterBurst);
  ASSERT_EQ(node.engine().Status(node.mono().Now()).root_delay,
            OnTheWire(absl::Microseconds(500)) + absl::Milliseconds(2));

  // The last sample: a 3 ms detour on the way back (delay 5 ms) from a server
  // whose own root delay is now 300 µs.
  node.server(kServerAddress).extra_return_delay = absl::Milliseconds(3);
  node.server(kServerAddress).root_delay = absl::Microseconds(300);
  node.RunUntilNextRequest();
  const EngineStatus st = node.engine().Status(node.mono().Now());
  // The minimum-delay sample's δ with that sample's root delay: 2 ms + 500 µs.
  // From the last sample (the agent before) it was 5 ms + 300 µs = 5.3 ms.
  EXPECT_EQ(st.root_delay,
            OnTheWire(absl::Microseconds(500)) + absl::Milliseconds(2));
  EXPECT_EQ(st.delay, absl::Milliseconds(2));
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].delay, absl::Milliseconds(2));
}

TEST(EngineTest, RootDelayFollowsALowerDelayPath) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  ServerSpec slow;
  slow.extra_return_delay = absl::Milliseconds(3);  // 5 ms round trip
  node.AddServer(kServerAddress, slow);
  node.StartAndRunFor(kAfterBurst);
  ASSERT_EQ(node.engine().Status(node.mono().Now()).root_delay,
            OnTheWire(absl::Microseconds(500)) + absl::Milliseconds(5));
  // A faster path and a server further from its reference: the new sample has
  // the lower delay, so its own root delay counts.
  node.server(kServerAddress).extra_return_delay = absl::ZeroDuration();
  node.server(kServerAddress).root_delay = absl::Microseconds(800);
  node.RunUntilNextRequest();
  EXPECT_EQ(node.engine().Status(node.mono().Now()).root_delay,
            OnTheWire(absl::Microseconds(800)) + absl::Milliseconds(2));
}

// ---------------------------------------------------------------------------
// Poll adaptation (docs/ENGINE.md "Poll control").

int PollOf(Node& node) {
  return node.engine().Status(node.mono().Now()).peers.at(0).poll;
}

// One poll per request: no pairs at maxpoll, no burst.
SourceConfig SinglePolls() {
  SourceConfig config;
  config.iburst = true;
  config.pair_from_poll = 0;
  return config;
}

// Samples that agree with the prediction raise the poll one step per
// poll_up_after (4) samples, from minpoll up to maxpoll and no further.
TEST(EngineTest, PollRisesWhileSamplesAgreeUpToMaxpoll) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  node.AddServer(kServerAddress, {}, SinglePolls());
  node.StartAndRunFor(kAfterBurst);
  int poll = PollOf(node);
  EXPECT_LE(poll, 7);
  std::vector<int> raised_after;  // samples between rises
  int since = 0;
  for (int i = 0; i < 40; ++i) {
    node.RunUntilNextRequest();
    ++since;
    const int now_poll = PollOf(node);
    ASSERT_GE(now_poll, poll) << "sample " << i;
    ASSERT_LE(now_poll, poll + 1) << "sample " << i;
    if (now_poll > poll) {
      raised_after.push_back(since);
      since = 0;
    }
    poll = now_poll;
  }
  EXPECT_EQ(poll, 10);  // maxpoll
  ASSERT_FALSE(raised_after.empty());
  // Every rise but the first (which may count burst samples) took exactly
  // poll_up_after samples.
  for (size_t k = 1; k < raised_after.size(); ++k) {
    EXPECT_EQ(raised_after[k], 4) << "rise " << k;
  }
  EXPECT_EQ(node.engine().Status(node.mono().Now()).state,
            SyncState::kSynchronized);
}

// A path whose return delay is `mean_s`·Exp (fixed seed): each sample's offset
// is off by up to half of that.
ServerSpec NoisyServer(double mean_s) {
  ServerSpec spec;
  auto rng = std::make_shared<std::mt19937_64>(7);
  spec.return_jitter = [rng, mean_s] {
    return absl::Seconds(
        std::exponential_distribution<double>(1 / mean_s)(*rng));
  };
  return spec;
}

SourceConfig NoIburst() {
  SourceConfig config;
  config.iburst = false;
  return config;
}

// Poll control by noise: on a path too noisy (here 10 ms·Exp return jitter)
// for one sample per minpoll interval to bring the filter's predicted
// uncertainty under poll_target_sigma (100 µs by default), the engine asks for
// several requests per minpoll poll; with the target off it sends one per
// poll. (A quiet path is polled ever less
// often up to maxpoll with the default target: PollRisesWhileSamplesAgree...)
TEST(EngineTest, NoisyPathIsSampledSeveralTimesPerMinpoll) {
  for (const bool target_on : {true, false}) {
    SCOPED_TRACE(target_on ? "target on" : "target off");
    EngineOptions options;
    if (!target_on) options.poll_target_sigma = 0;  // else the default
    Node node({.initial_offset = absl::Milliseconds(-50)}, options);
    node.AddServer(kServerAddress, NoisyServer(10e-3), NoIburst());
    node.StartAndRunFor(absl::Seconds(1000));
    const int before = node.transmits();
    node.RunUntil(node.mono().Now() + absl::Seconds(1024));
    const int sent = node.transmits() - before;
    // 1024 s at minpoll 6 is 16 polls (17 with the 1/16 randomisation).
    if (target_on) {
      EXPECT_EQ(PollOf(node), 6);
      EXPECT_GE(sent, 4 * 16);  // 8 per poll once settled; a broken rule: 16
    } else {
      EXPECT_LE(sent, 17);
    }
  }
}

// The start-up correction waits while the estimate's own 5σ exceeds the
// start-up step threshold (1 ms) and the path's delay: on a path with 10 ms·Exp
// return jitter it does not step at the second sample, as it does on a quiet
// path, but a few samples later (asking for them faster meanwhile).
TEST(EngineTest, StartupCorrectionWaitsForAPreciseEstimateOnANoisyPath) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  node.AddServer(kServerAddress, NoisyServer(10e-3), NoIburst());
  node.StartAndRunFor(absl::Seconds(1));
  node.RunUntilNextRequest();  // the second sample (64 s)
  EXPECT_EQ(node.clock().steps(), 0) << "stepped on two noisy samples";
  EXPECT_EQ(node.engine().Status(node.mono().Now()).state, SyncState::kSyncing);
  node.RunUntil(node.mono().Now() + absl::Seconds(600));
  EXPECT_EQ(node.clock().steps(), 1);
  EXPECT_LT(absl::AbsDuration(node.clock().Phase()), absl::Milliseconds(5));

  Node quiet({.initial_offset = absl::Milliseconds(-50)});
  quiet.AddServer(kServerAddress, {}, NoIburst());
  quiet.StartAndRunFor(absl::Seconds(1));
  quiet.RunUntilNextRequest();
  EXPECT_EQ(quiet.clock().steps(), 1);
}

// Runs until the poll is `target` (raising it on agreeing samples).
void RunUntilPoll(Node& node, int target) {
  for (int i = 0; i < 60 && PollOf(node) < target; ++i) {
    node.RunUntilNextRequest();
  }
  ASSERT_EQ(PollOf(node), target);
}

// A popcorn spike (one sample far off, rejected by the filter) ends the run
// of good samples but leaves the poll alone; two in a row lower it. A third
// restarts the filter on the source's new time, back at minpoll.
TEST(EngineTest, SpikesCountAsBadSamplesForPollControl) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  node.AddServer(kServerAddress, {}, SinglePolls());
  node.StartAndRunFor(kAfterBurst);
  RunUntilPoll(node, 8);  // the rise just happened: the good run is 0

  // good, spike, good, good, good: without the spike's reset these are four
  // good samples and the poll would rise to 9 at the fifth.
  node.RunUntilNextRequest();
  node.server(kServerAddress).offset = absl::Milliseconds(20);
  node.RunUntilNextRequest();
  EXPECT_EQ(PollOf(node), 8) << "a single spike lowered the poll";
  const uint64_t attempts = node.engine().attempts();
  node.server(kServerAddress).offset = absl::ZeroDuration();
  for (int i = 0; i < 3; ++i) node.RunUntilNextRequest();
  EXPECT_EQ(PollOf(node), 8) << "the spike did not reset the good run";
  node.RunUntilNextRequest();  // the fourth good sample after the spike
  EXPECT_EQ(PollOf(node), 9);
  // The spike never reached the clock.
  EXPECT_GT(node.engine().attempts(), attempts);
  EXPECT_LT(absl::AbsDuration(node.clock().Phase()), absl::Microseconds(100));

  // The source jumps 20 ms for good: spike (9), spike (8), restart.
  node.server(kServerAddress).offset = absl::Milliseconds(20);
  node.RunUntilNextRequest();
  EXPECT_EQ(PollOf(node), 9);
  node.RunUntilNextRequest();
  EXPECT_EQ(PollOf(node), 8);
  const uint64_t before_restart = node.engine().attempts();
  node.RunUntilNextRequest();
  // The restart says the filter's model was wrong: relearn at minpoll.
  EXPECT_EQ(PollOf(node), 6);
  EXPECT_GT(node.engine().attempts(), before_restart);  // the jump is acted on
}

// ---------------------------------------------------------------------------
// Holdover, then the local clock (docs/ENGINE.md "Holdover and the local
// clock").

TEST(EngineTest, HoldoverFallsBackToTheLocalClockOrTheAlarm) {
  for (const bool local_clock : {true, false}) {
    SCOPED_TRACE(local_clock ? "with a local clock" : "without");
    EngineOptions options;
    if (local_clock) options.local_clock_stratum = 10;
    Node node({.initial_offset = absl::Milliseconds(-50)}, options);
    node.AddServer(kServerAddress);
    node.StartAndRunFor(absl::Seconds(600));
    ASSERT_EQ(node.engine().Status(node.mono().Now()).state,
              SyncState::kSynchronized);

    // The upstream goes silent: once it is unreachable, holdover.
    node.server(kServerAddress).silent = true;
    node.RunUntil(node.mono().Now() + absl::Hours(3));
    EngineStatus st = node.engine().Status(node.mono().Now());
    ASSERT_EQ(st.peers.at(0).health, SourceHealth::kUnreachable);
    EXPECT_EQ(st.state, SyncState::kHoldover);
    EXPECT_EQ(st.stratum, 3);
    EXPECT_EQ(st.leap, Leap::kNone);

    // Holdover ends once the root distance passes 1.5 s; then the fallback.
    const MonoTime lost = node.mono().Now();
    for (int hour = 0; hour < 60 * 24 && st.state == SyncState::kHoldover;
         ++hour) {
      node.RunUntil(node.mono().Now() + absl::Hours(1));
      st = node.engine().Status(node.mono().Now());
    }
    ASSERT_NE(st.state, SyncState::kHoldover) << "holdover never ended";
    EXPECT_GT(node.mono().Now() - lost, absl::Hours(1));
    if (local_clock) {
      EXPECT_EQ(st.state, SyncState::kLocalClock);
      EXPECT_EQ(st.stratum, 10);
      EXPECT_EQ(st.leap, Leap::kNone);
      EXPECT_EQ(st.reference_id, RefId::FromIpv4(127, 127, 1, 0));
      EXPECT_EQ(st.root_delay, absl::ZeroDuration());
      EXPECT_EQ(st.root_dispersion, absl::ZeroDuration());
    } else {
      EXPECT_EQ(st.state, SyncState::kUnsynchronized);
      EXPECT_EQ(st.stratum, 16);
      EXPECT_EQ(st.leap, Leap::kUnsynchronized);
      EXPECT_EQ(st.reference_id, RefId::FromCode("HOLD"));
    }

    // The upstream comes back: a burst follows its first reply (iburst on
    // return) and the node is synchronised to it again.
    node.server(kServerAddress).silent = false;
    const int before = node.transmits();
    node.RunUntilNextRequest();
    node.RunUntil(node.mono().Now() + absl::Seconds(20));
    EXPECT_EQ(node.transmits() - before, Source::kBurstSize);
    st = node.engine().Status(node.mono().Now());
    EXPECT_EQ(st.stratum, 3);
    EXPECT_EQ(st.leap, Leap::kNone);
    EXPECT_THAT(st.state, AnyOf(SyncState::kSynchronized, SyncState::kSyncing));
  }
}

// --- Monitor-only sources (the crosscheck's probes, docs/CROSSCHECK.md) ---

constexpr char kTargetAddress[] = "192.0.2.77:123";

// The monitor's filtered offset, or a failure.
MonitorStatus OnlyMonitor(Node& node) {
  const std::vector<MonitorStatus> monitors = node.engine().Monitors();
  EXPECT_EQ(monitors.size(), 1u);
  return monitors.empty() ? MonitorStatus{} : monitors[0];
}

TEST(EngineMonitorTest, MeasuresATargetsOffsetWithinHalfItsDelay) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  node.AddServer(kServerAddress);
  node.StartAndRunFor(kAfterBurst);
  // The target's clock is 3 ms ahead of true time, and its path back to us
  // 600 µs longer than the way there: the measurement is 300 µs low, within
  // the ±delay/2 that asymmetry allows (RFC 5905 §8).
  ServerSpec target;
  target.offset = absl::Milliseconds(3);
  target.extra_return_delay = absl::Microseconds(600);
  node.AddMonitor(kTargetAddress, target);
  node.RunUntil(node.mono().Now() + absl::Seconds(700));

  const MonitorStatus m = OnlyMonitor(node);
  ASSERT_TRUE(m.offset.has_value()) << m.error;
  EXPECT_EQ(m.error, "");
  EXPECT_EQ(m.health, SourceHealth::kOk);
  EXPECT_EQ(m.stratum, 2);
  EXPECT_GE(m.samples, 10u);  // 700 s at 64 s
  ASSERT_TRUE(m.measured_at.has_value());
  // The truth: target minus local now (Phase: local minus true). A sign error
  // would measure -3 ms, a monitor that ignored the discipline's corrections
  // would be off by the 50 ms start-up step.
  const absl::Duration truth = target.offset - node.clock().Phase();
  // Both ways 1 ms, 600 µs more back (timestamps at 2^-32 s resolution).
  EXPECT_LT(absl::AbsDuration(m.delay - absl::Microseconds(2600)),
            absl::Microseconds(1));
  EXPECT_LE(absl::AbsDuration(*m.offset - truth), m.delay / 2)
      << "measured " << *m.offset << ", truth " << truth;
  // And, with a symmetric part that cancels, close to truth - 300 µs.
  EXPECT_LT(absl::AbsDuration(*m.offset - (truth - absl::Microseconds(300))),
            absl::Microseconds(50));
}

// A target whose clock someone moved is seen at the very next probe: the
// crosscheck's point. A monitor that reported its filter's estimate would
// reject the new phase as a spike for three polls (over three minutes here)
// and still say about 0 ms after the next probe.
TEST(EngineMonitorTest, SeesATargetsMovedClockAtTheNextProbe) {
  Node node({});
  node.AddServer(kServerAddress);
  node.StartAndRunFor(kAfterBurst);
  ServerSpec target;
  node.AddMonitor(kTargetAddress, target);
  node.RunUntil(node.mono().Now() + absl::Seconds(64 * 6));
  ASSERT_GE(OnlyMonitor(node).samples, 5u);
  const uint64_t before = OnlyMonitor(node).samples;

  node.server(kTargetAddress).offset = absl::Milliseconds(20);
  while (OnlyMonitor(node).samples == before) {
    node.RunUntil(node.mono().Now() + absl::Seconds(1));
  }
  const MonitorStatus m = OnlyMonitor(node);
  ASSERT_TRUE(m.offset.has_value()) << m.error;
  const absl::Duration truth = absl::Milliseconds(20) - node.clock().Phase();
  EXPECT_LE(absl::AbsDuration(*m.offset - truth), m.delay / 2)
      << "measured " << *m.offset << ", truth " << truth;
}

TEST(EngineMonitorTest, MeasuresAnUnsynchronisedTarget) {
  Node node({});
  node.AddServer(kServerAddress);
  node.StartAndRunFor(kAfterBurst);
  ServerSpec target;
  target.stratum = 16;
  target.leap = Leap::kUnsynchronized;
  target.offset = absl::Milliseconds(-7);
  node.AddMonitor(kTargetAddress, target);
  node.RunUntil(node.mono().Now() + absl::Seconds(200));

  const MonitorStatus m = OnlyMonitor(node);
  // An upstream like it would give no sample at all (IgnoresAnUnsynchronised
  // Server); a monitor measures its clock and says what it is.
  EXPECT_EQ(m.stratum, 16);
  EXPECT_EQ(m.health, SourceHealth::kUnsynchronized);
  ASSERT_TRUE(m.offset.has_value());
  EXPECT_LE(
      absl::AbsDuration(*m.offset - (target.offset - node.clock().Phase())),
      m.delay / 2);
}

TEST(EngineMonitorTest, SaysWhyThereIsNoMeasurement) {
  Node node({});
  node.AddServer(kServerAddress);
  node.StartAndRunFor(kAfterBurst);
  ServerSpec target;
  target.silent = true;
  node.AddMonitor(kTargetAddress, target);
  EXPECT_EQ(OnlyMonitor(node).error, "not probed yet");
  node.RunUntil(node.mono().Now() + absl::Seconds(10));
  EXPECT_EQ(OnlyMonitor(node).error, "no reply yet");
  node.RunUntil(node.mono().Now() + absl::Seconds(64 * 9));
  const MonitorStatus m = OnlyMonitor(node);
  EXPECT_FALSE(m.offset.has_value());
  EXPECT_EQ(m.health, SourceHealth::kUnreachable);
  EXPECT_THAT(m.error, HasSubstr("no reply"));
}

// What the clock and the served system variables look like at the end of a
// run, for comparing runs with and without a monitor.
struct Outcome {
  EngineStatus status;
  absl::Duration phase;
  int steps;
  uint64_t corrections;
};

// A node 50 ms behind, 10 ppm fast, synchronised to a stratum-2 upstream at
// true time for 2000 s; `with`: also a stratum-1 target 20 ms ahead, as a
// monitor (kMonitor) or as a second upstream (kUpstream, the control run).
enum class Target { kNone, kMonitor, kUpstream };
Outcome RunWith(Target with) {
  Node node(
      {.initial_offset = absl::Milliseconds(-50), .frequency_error_ppm = 10});
  node.AddServer(kServerAddress);
  ServerSpec target;
  target.offset = absl::Milliseconds(20);
  target.stratum = 1;
  if (with == Target::kUpstream) node.AddServer(kTargetAddress, target);
  const MonoTime start = node.mono().Now();
  node.Send(node.engine().Start(start));
  if (with == Target::kMonitor) node.AddMonitor(kTargetAddress, target);
  node.RunUntil(start + absl::Seconds(2000));
  return Outcome{node.engine().Status(node.mono().Now()), node.clock().Phase(),
                 node.clock().steps(), node.engine().corrections()};
}

TEST(EngineMonitorTest, NeverTouchesTheClockSelectionOrTheErrorBound) {
  const Outcome without = RunWith(Target::kNone);
  const Outcome with = RunWith(Target::kMonitor);
  // The monitor's exchanges take simulated time (the fake network advances
  // the monotonic clock), so the runs are not bit-identical: the clock's path
  // differs by the wander over those milliseconds, far below these margins.
  // A monitor that were a candidate would move the clock towards the target
  // (20 ms away) or leave no majority (two sources 20 ms apart: no system
  // peer); one that fed the system variables would give stratum 2 (the
  // target's 1 + 1) instead of 3; see the control run below.
  EXPECT_EQ(with.status.state, without.status.state);
  EXPECT_EQ(with.status.stratum, 3);
  EXPECT_EQ(with.status.stratum, without.status.stratum);
  EXPECT_EQ(with.status.reference_id, without.status.reference_id);
  ASSERT_TRUE(with.status.system_peer.has_value());
  EXPECT_EQ(*with.status.system_peer, 0);
  ASSERT_EQ(with.status.peers.size(), 1u);  // not listed as a peer
  EXPECT_EQ(with.steps, without.steps);
  EXPECT_EQ(with.corrections, without.corrections);
  EXPECT_LT(absl::AbsDuration(with.phase - without.phase),
            absl::Microseconds(5));
  EXPECT_LT(
      absl::AbsDuration(with.status.error_bound - without.status.error_bound),
      absl::Microseconds(5));
  EXPECT_LT(absl::AbsDuration(with.status.root_dispersion -
                              without.status.root_dispersion),
            absl::Microseconds(5));
  EXPECT_EQ(with.status.root_delay, without.status.root_delay);

  // The control run: the same target as an upstream does change what the
  // assertions above look at, so they can fail.
  const Outcome upstream = RunWith(Target::kUpstream);
  EXPECT_TRUE(upstream.status.stratum != without.status.stratum ||
              upstream.status.peers.size() != 1 ||
              absl::AbsDuration(upstream.phase - without.phase) >
                  absl::Microseconds(5) ||
              upstream.status.state != without.status.state);
}

TEST(EngineMonitorTest, PollsOncePerIntervalAndNeverBelow64Seconds) {
  for (const auto& [asked, expected] :
       {std::pair{absl::Seconds(100), absl::Seconds(100)},
        std::pair{absl::Seconds(10), absl::Seconds(64)},
        std::pair{absl::ZeroDuration(), absl::Seconds(64)}}) {
    Node node({});
    node.AddServer(kServerAddress);
    node.StartAndRunFor(kAfterBurst);
    node.AddMonitor(kTargetAddress, {}, asked);
    const MonoTime added = node.mono().Now();
    node.RunUntil(added + absl::Seconds(1000));
    EXPECT_EQ(OnlyMonitor(node).interval, expected);
    const std::vector<MonoTime>& sent = node.sent_at(kTargetAddress);
    // The first within 0.5 s (no burst: one request), then one per interval
    // exactly: never two within 64 s.
    ASSERT_GE(sent.size(), 2u);
    EXPECT_LE(sent[0] - added, absl::Milliseconds(500));
    for (size_t i = 1; i < sent.size(); ++i) {
      EXPECT_EQ(sent[i] - sent[i - 1], expected) << "asked " << asked;
    }
    EXPECT_EQ(sent.size(),
              static_cast<size_t>((added + absl::Seconds(1000) - sent[0]) /
                                  expected) +
                  1);
  }
}

TEST(EngineMonitorTest, KeepsItsIntervalWhileUnreachable) {
  Node node({});
  node.AddServer(kServerAddress);
  node.StartAndRunFor(kAfterBurst);
  ServerSpec target;
  target.silent = true;
  node.AddMonitor(kTargetAddress, target);
  node.RunUntil(node.mono().Now() + absl::Seconds(64 * 20));
  const std::vector<MonoTime>& sent = node.sent_at(kTargetAddress);
  ASSERT_GE(sent.size(), 20u);
  // An upstream backs off towards maxpoll; a probe keeps its interval.
  EXPECT_EQ(sent.back() - sent[sent.size() - 2], absl::Seconds(64));
}

TEST(EngineMonitorTest, RemovalStopsPolling) {
  Node node({});
  node.AddServer(kServerAddress);
  node.StartAndRunFor(kAfterBurst);
  const int id = node.AddMonitor(kTargetAddress, {});
  EXPECT_GE(id, Engine::kFirstMonitorId);
  node.RunUntil(node.mono().Now() + absl::Seconds(200));
  const size_t before = node.sent_at(kTargetAddress).size();
  EXPECT_GE(before, 3u);
  EXPECT_TRUE(node.engine().RemoveMonitor(id));
  EXPECT_FALSE(node.engine().RemoveMonitor(id));
  EXPECT_TRUE(node.engine().Monitors().empty());
  node.RunUntil(node.mono().Now() + absl::Seconds(1000));
  EXPECT_EQ(node.sent_at(kTargetAddress).size(), before);
  // The upstream carries on.
  EXPECT_GT(node.sent_at(kServerAddress).size(), Source::kBurstSize + 10u);
  // A late reply from it is a stranger's now.
  NtpPacket request;
  request.transmit = NtpTimestamp::FromRaw(0x0123456789abcdefULL);
  const uint64_t drops = node.engine().unknown_sender_drops();
  node.engine().HandleResponse(
      kTargetAddress,
      ServerReply(request, {}, node.clock().TrueNow(), node.clock().TrueNow()),
      node.clock().Now(), node.mono().Now());
  EXPECT_EQ(node.engine().unknown_sender_drops(), drops + 1);
}

// The mesh may assign this node its own upstream as a target: both are
// measured, each reply reaching the source whose request it answers.
TEST(EngineMonitorTest, AnUpstreamAndAMonitorMayShareAnAddress) {
  Node node({.initial_offset = absl::Milliseconds(-50)});
  node.AddServer(kServerAddress);
  node.StartAndRunFor(kAfterBurst);
  node.AddMonitor(kServerAddress, node.server(kServerAddress));
  node.RunUntil(node.mono().Now() + absl::Seconds(600));
  const EngineStatus st = node.engine().Status(node.mono().Now());
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].counters.bogus_origin, 0u);
  EXPECT_EQ(st.peers[0].counters.duplicate, 0u);
  EXPECT_EQ(st.state, SyncState::kSynchronized);
  const MonitorStatus m = OnlyMonitor(node);
  EXPECT_GE(m.samples, 9u);
  EXPECT_EQ(m.counters.bogus_origin, 0u);
  ASSERT_TRUE(m.offset.has_value());
  EXPECT_LE(absl::AbsDuration(*m.offset + node.clock().Phase()), m.delay / 2);
}

}  // namespace
}  // namespace ntpfleet::ntp
