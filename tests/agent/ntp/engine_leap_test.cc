// The engine across leap seconds: which announcements it takes (a majority of
// the truechimers, at a month end the leap table allows), what it serves and
// tells the kernel, and how the clock crosses the leap in leapsecmode system
// (the kernel repeats 23:59:59) and slew (no repeated second, 1 s slewed
// away).
//
// The servers are played by the test: they keep true UTC, so when a leap
// second is inserted their clocks go back one second at the leap instant
// (their 23:59:60 reads as a repeated 23:59:59, as on a Linux server), and the
// node's SimClock does what the kernel would with the flags the engine sets.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "agent/clock/sim_clock.h"
#include "agent/ntp/engine.h"
#include "agent/ntp/leap.h"
#include "common/ntp/packet.h"
#include "common/ntp/timestamp.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace ntpfleet::ntp {
namespace {

using ::ntpfleet::clock::LeapAction;
using ::ntpfleet::clock::MonoTime;

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss),
                         absl::UTCTimeZone());
}

// Debian 12's tzdata copy (testdata/README.md): valid until 2026-06-28, last
// leap second at the end of 2016.
LeapTable Tzdata() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::ifstream in(absl::StrCat(srcdir ? srcdir : ".",
                                "/ntpfleet/tests/agent/ntp/testdata/"
                                "leap-seconds.list"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<LeapTable> table =
      LeapTable::Parse(text.str(), "leap-seconds.list");
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *table : LeapTable();
}

constexpr absl::Duration kOneWay = absl::Milliseconds(1);
constexpr absl::Duration kProcessing = absl::Microseconds(10);

struct ServerSpec {
  std::string address;
  int stratum = 2;
  // Sets LI 1 (insert) in its replies while this is true; LI 2 (delete) with
  // `deletes`.
  bool announces = false;
  bool deletes = false;
};

// A node and its servers. True time (the SimClock's) runs without leap
// seconds; UTC as the servers read it is true time, less one second from
// `utc_leap` on when a second was inserted there, or one second more from
// 23:59:59 on when it was deleted (`deleted`).
class Network {
 public:
  Network(absl::Time start, const EngineOptions& options,
          std::optional<absl::Time> utc_leap = std::nullopt,
          bool deleted = false)
      : clock_(&mono_, start,
               {.initial_offset = absl::Milliseconds(30),
                .frequency_error_ppm = 20}),
        engine_(&clock_, options, mono_.Now()),
        utc_leap_(utc_leap),
        deleted_(deleted) {}

  void AddServer(const ServerSpec& spec) {
    servers_[spec.address] = spec;
    SourceConfig config;
    config.name = spec.address;
    config.address = spec.address;
    config.iburst = true;
    engine_.AddSource(config);
  }
  ServerSpec& server(const std::string& address) { return servers_[address]; }
  void SilenceAll() { silent_ = true; }

  // UTC as the servers read it now (POSIX: 23:59:60 reads as 23:59:59).
  absl::Time Utc() const {
    const absl::Time t = clock_.TrueNow();
    if (utc_leap_ && deleted_) {
      return t >= *utc_leap_ - absl::Seconds(1) ? t + absl::Seconds(1) : t;
    }
    return utc_leap_ && t >= *utc_leap_ ? t - absl::Seconds(1) : t;
  }
  // The node's clock minus UTC (positive: ahead).
  absl::Duration Error() const { return clock_.Now() - Utc(); }

  void Start() { Send(engine_.Start(mono_.Now())); }

  // Runs timers until `end` (monotonic). With `watch` > 0 the node's clock is
  // also read every `watch`, and any step back of its reading is recorded.
  void RunUntil(MonoTime end, absl::Duration watch = absl::InfiniteDuration()) {
    for (int i = 0; i < 1000000; ++i) {
      MonoTime next = std::min(engine_.next_timer(), end);
      if (watch != absl::InfiniteDuration())
        next = std::min(next, mono_.Now() + watch);
      mono_.AdvanceTo(next);
      Observe();
      if (engine_.next_timer() <= mono_.Now()) {
        Send(engine_.HandleTimer(mono_.Now()));
      }
      if (mono_.Now() >= end && engine_.next_timer() > end) return;
    }
    ADD_FAILURE() << "RunUntil did not reach its end";
  }
  // Runs until the node's clock reads `local` (a few ms either way).
  void RunUntilClock(absl::Time local,
                     absl::Duration watch = absl::InfiniteDuration()) {
    RunUntil(mono_.Now() + (local - clock_.Now()), watch);
  }

  EngineStatus Status() const { return engine_.Status(mono_.Now()); }
  MonoTime mono_now() const { return mono_.Now(); }
  LeapAction KernelLeap() const { return clock_.sync_state().leap; }
  clock::SimClock& clock() { return clock_; }
  Engine& engine() { return engine_; }
  // The largest step back of the node's clock between two readings.
  absl::Duration largest_step_back() const { return largest_step_back_; }
  // Whether the engine ever had the kernel armed for an insertion.
  bool kernel_ever_armed() const { return kernel_ever_armed_; }

 private:
  void Observe() {
    const absl::Time now = clock_.Now();
    if (last_reading_ && now < *last_reading_) {
      largest_step_back_ = std::max(largest_step_back_, *last_reading_ - now);
    }
    last_reading_ = now;
    if (clock_.sync_state().leap != LeapAction::kNone) {
      kernel_ever_armed_ = true;
    }
  }

  std::vector<uint8_t> Reply(const NtpPacket& request, const ServerSpec& spec,
                             absl::Time t2, absl::Time t3) {
    NtpPacket reply;
    reply.leap = !spec.announces ? Leap::kNone
                 : spec.deletes  ? Leap::kDeleteSecond
                                 : Leap::kInsertSecond;
    reply.version = request.version;
    reply.mode = Mode::kServer;
    reply.stratum = static_cast<uint8_t>(spec.stratum);
    reply.poll = request.poll;
    reply.precision = -20;
    reply.root_delay = NtpShort::FromDuration(absl::Microseconds(500));
    reply.root_dispersion = NtpShort::FromDuration(absl::Microseconds(500));
    reply.reference_id = RefId::FromIpv4(203, 0, 113, 9);
    reply.reference = NtpTimestamp::FromTime(t2 - absl::Seconds(16));
    reply.origin = request.transmit;
    reply.receive = NtpTimestamp::FromTime(t2);
    reply.transmit = NtpTimestamp::FromTime(t3);
    absl::StatusOr<std::vector<uint8_t>> bytes = EncodePacket(reply);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    return bytes.ok() ? *std::move(bytes) : std::vector<uint8_t>();
  }

  void Send(std::vector<Transmit> transmits) {
    for (Transmit& t : transmits) {
      engine_.OnTransmit(t.source, clock_.Now(), mono_.Now());
      const auto server = servers_.find(t.address);
      if (server == servers_.end() || silent_) continue;
      absl::StatusOr<NtpPacket> request = DecodePacket(t.bytes);
      ASSERT_TRUE(request.ok()) << request.status();
      mono_.Advance(kOneWay);
      const absl::Time t2 = Utc();
      mono_.Advance(kProcessing);
      const absl::Time t3 = Utc();
      const std::vector<uint8_t> reply =
          Reply(*request, server->second, t2, t3);
      mono_.Advance(kOneWay);
      Observe();
      Send(engine_.HandleResponse(t.address, reply, clock_.Now(), mono_.Now()));
    }
  }

  testing::FakeMonotonicClock mono_{MonoTime::FromDuration(absl::Seconds(100))};
  clock::SimClock clock_;
  Engine engine_;
  std::optional<absl::Time> utc_leap_;
  bool deleted_ = false;
  std::map<std::string, ServerSpec> servers_;
  bool silent_ = false;
  std::optional<absl::Time> last_reading_;
  absl::Duration largest_step_back_;
  bool kernel_ever_armed_ = false;
};

constexpr char kA[] = "192.0.2.1:123";
constexpr char kB[] = "192.0.2.2:123";
constexpr char kC[] = "192.0.2.3:123";

// Three honest servers; `announcing` of them (B first, then C, then A) set
// LI 1. A is stratum 1 and so the system peer: an engine that passed on its
// system peer's leap bit would follow A.
void AddThree(Network& net, int announcing) {
  net.AddServer({.address = kA, .stratum = 1, .announces = announcing >= 3});
  net.AddServer({.address = kB, .announces = announcing >= 1});
  net.AddServer({.address = kC, .announces = announcing >= 2});
}

// Synchronises the node: iburst, then an hour of normal polling.
void Synchronise(Network& net) {
  const MonoTime start = net.mono_now();
  net.Start();
  net.RunUntil(start + absl::Hours(1));
  ASSERT_LT(absl::AbsDuration(net.Error()), absl::Milliseconds(1));
}

TEST(EngineLeapTest, ALyingMinorityIsIgnoredEvenAsTheSystemPeer) {
  // June 30 2026 allows a leap second by the June/December rule (no table);
  // only the system peer A announces one, and no leap happens.
  Network net(Utc(2026, 6, 30, 20), {});
  net.AddServer({.address = kA, .stratum = 1, .announces = true});
  net.AddServer({.address = kB});
  net.AddServer({.address = kC});
  Synchronise(net);
  EngineStatus st = net.Status();
  ASSERT_TRUE(st.system_peer.has_value());
  EXPECT_EQ(st.peers[static_cast<size_t>(*st.system_peer)].address, kA);
  // Passing the system peer's bit on (as before the vote) serves kInsert here.
  EXPECT_EQ(st.leap, Leap::kNone);

  net.RunUntilClock(Utc(2026, 7, 1, 0, 30));
  EXPECT_FALSE(net.kernel_ever_armed());
  EXPECT_EQ(net.clock().leaps(), 0);
  // A leap taken on A's word would leave the clock 1 s off here.
  EXPECT_LT(absl::AbsDuration(net.Error()), absl::Milliseconds(1));
}

TEST(EngineLeapTest, SystemModeServesAMajorityAnnouncementAndTheKernelInserts) {
  EngineOptions options;
  options.leap_table = Tzdata();  // lists the end of 2016
  const absl::Time leap = Utc(2017, 1, 1);
  Network net(Utc(2016, 12, 30, 21), options, leap);
  AddThree(net, 2);  // B and C announce, A (the system peer) does not
  Synchronise(net);
  EXPECT_EQ(net.Status().leap, Leap::kInsertSecond);
  // Served all month, but the kernel (which inserts at the end of the current
  // day) is told only on the last day.
  net.RunUntilClock(Utc(2016, 12, 30, 23, 50));
  EXPECT_EQ(net.Status().leap, Leap::kInsertSecond);
  EXPECT_EQ(net.KernelLeap(), LeapAction::kNone);
  EXPECT_FALSE(net.kernel_ever_armed());
  net.RunUntilClock(Utc(2016, 12, 31, 1));
  EXPECT_EQ(net.KernelLeap(), LeapAction::kInsert);

  // Across the leap, reading the clock every 50 ms.
  net.RunUntilClock(leap - absl::Seconds(5));
  const int steps = net.clock().steps();
  net.RunUntilClock(leap + absl::Seconds(5), absl::Milliseconds(50));
  net.server(kB).announces = false;  // the servers clear LI after the leap
  net.server(kC).announces = false;
  EXPECT_EQ(net.clock().leaps(), 1);
  // 23:59:59 repeated: the clock went back by 1 s (less one 50 ms reading).
  EXPECT_GE(net.largest_step_back(), absl::Milliseconds(940));
  EXPECT_LE(net.largest_step_back(), absl::Seconds(1));
  EXPECT_EQ(net.Status().leap, Leap::kNone);  // past its month end

  net.RunUntilClock(leap + absl::Hours(1));
  EXPECT_EQ(net.clock().steps(), steps);  // the engine stepped nothing
  EXPECT_EQ(net.clock().leaps(), 1);
  EXPECT_EQ(net.KernelLeap(), LeapAction::kNone);  // cleared at the next update
  EXPECT_EQ(net.Status().leap, Leap::kNone);
  // Still on UTC: the kernel's leap and the servers' agree.
  EXPECT_LT(absl::AbsDuration(net.Error()), absl::Milliseconds(1));
}

TEST(EngineLeapTest, AMonthEndTheTableDoesNotListIsRefused) {
  // June 2016: every server announces, the June rule would allow it, but the
  // table (which covers that month end) lists no leap second there.
  EngineOptions options;
  options.leap_table = Tzdata();
  Network net(Utc(2016, 6, 30, 20), options);
  AddThree(net, 3);
  Synchronise(net);
  EXPECT_EQ(net.Status().leap, Leap::kNone);
  net.RunUntilClock(Utc(2016, 7, 1, 0, 30));
  EXPECT_FALSE(net.kernel_ever_armed());
  EXPECT_EQ(net.clock().leaps(), 0);
  EXPECT_LT(absl::AbsDuration(net.Error()), absl::Milliseconds(1));

  // The same without the table: taken (the table is what refused it).
  Network untabled(Utc(2016, 6, 30, 20), {});
  AddThree(untabled, 3);
  Synchronise(untabled);
  EXPECT_EQ(untabled.Status().leap, Leap::kInsertSecond);
  EXPECT_EQ(untabled.KernelLeap(), LeapAction::kInsert);
}

TEST(EngineLeapTest, AnExpiredTableFallsBackToJuneAndDecember) {
  // The tzdata copy expires on 2026-06-28: it says nothing about the end of
  // December 2026, and the June/December rule decides.
  EngineOptions options;
  options.leap_table = Tzdata();
  Network december(Utc(2026, 12, 31, 12), options);
  AddThree(december, 3);
  Synchronise(december);
  EXPECT_EQ(december.Status().leap, Leap::kInsertSecond);
  EXPECT_EQ(december.KernelLeap(), LeapAction::kInsert);

  Network november(Utc(2026, 11, 30, 12), options);
  AddThree(november, 3);
  Synchronise(november);
  EXPECT_EQ(november.Status().leap, Leap::kNone);
  EXPECT_FALSE(november.kernel_ever_armed());
}

TEST(EngineLeapTest, TheAnnouncementIsClearedWhenTheSourcesStop) {
  Network net(Utc(2026, 6, 30, 20), {});
  AddThree(net, 3);
  Synchronise(net);
  EXPECT_EQ(net.Status().leap, Leap::kInsertSecond);
  EXPECT_EQ(net.KernelLeap(), LeapAction::kInsert);
  for (const char* address : {kA, kB, kC})
    net.server(address).announces = false;
  // Within one poll of every server (at most 1024 s, plus the 2 s pair).
  net.RunUntil(net.mono_now() + absl::Seconds(1100));
  EXPECT_EQ(net.Status().leap, Leap::kNone);
  EXPECT_EQ(net.KernelLeap(), LeapAction::kNone);
  net.RunUntilClock(Utc(2026, 7, 1, 0, 30));
  EXPECT_EQ(net.clock().leaps(), 0);
  EXPECT_LT(absl::AbsDuration(net.Error()), absl::Milliseconds(1));
}

TEST(EngineLeapTest, HoldoverServesTheAnnouncementUntilItsMonthEndOnly) {
  // One server (a majority of one) announces on the last day, then falls
  // silent; the second is inserted at the end of the day as announced.
  const absl::Time leap = Utc(2026, 7, 1);
  Network net(Utc(2026, 6, 30, 12), {}, leap);
  net.AddServer({.address = kA, .announces = true});
  Synchronise(net);
  EXPECT_EQ(net.KernelLeap(), LeapAction::kInsert);
  net.SilenceAll();
  net.RunUntilClock(leap - absl::Seconds(10));
  EngineStatus st = net.Status();
  EXPECT_EQ(st.state, SyncState::kHoldover);
  EXPECT_EQ(st.leap, Leap::kInsertSecond);
  net.RunUntilClock(leap + absl::Seconds(10));
  st = net.Status();
  EXPECT_EQ(st.state, SyncState::kHoldover);
  // Holding the last system variables, the old code served the stale bit.
  EXPECT_EQ(st.leap, Leap::kNone);
  EXPECT_EQ(net.clock().leaps(), 1);
  // Holdover on the learned frequency for 11 h: still within a few ms (a
  // kernel that was not armed, or armed twice, leaves it a second off).
  EXPECT_LT(absl::AbsDuration(net.Error()), absl::Milliseconds(5));
}

// How long after `leap` the node's clock first comes within 1 ms of UTC,
// looking every 10 s up to `limit`; nullopt if it does not.
std::optional<absl::Duration> TimeToUtc(Network& net, absl::Time leap,
                                        absl::Duration limit) {
  for (absl::Duration t = absl::Seconds(10); t <= limit;
       t += absl::Seconds(10)) {
    net.RunUntilClock(leap + t);
    if (absl::AbsDuration(net.Error()) < absl::Milliseconds(1)) return t;
  }
  return std::nullopt;
}

TEST(EngineLeapTest, SlewModeCrossesTheLeapWithoutRepeatingASecond) {
  EngineOptions options;
  options.leap_table = Tzdata();
  options.leap_mode = LeapMode::kSlew;
  const absl::Time leap = Utc(2017, 1, 1);
  Network net(Utc(2016, 12, 31, 21), options, leap);
  AddThree(net, 3);
  Synchronise(net);
  EXPECT_EQ(net.Status().leap, Leap::kInsertSecond);
  net.RunUntilClock(leap - absl::Seconds(5));
  const int steps = net.clock().steps();
  net.RunUntilClock(leap + absl::Seconds(5), absl::Milliseconds(50));
  // The kernel was never told, so it inserted nothing; the clock ran on and
  // is now 1 s ahead of UTC, which went back.
  EXPECT_FALSE(net.kernel_ever_armed());
  EXPECT_EQ(net.clock().leaps(), 0);
  EXPECT_GT(net.Error(), absl::Milliseconds(990));
  EXPECT_LE(net.Error(), absl::Seconds(1));
  EXPECT_TRUE(net.engine().discipline().leap_slewing());
  EXPECT_EQ(net.Status().leap, Leap::kNone);

  // Slewed at the 500 ppm limit: the base frequency cancels the oscillator's
  // +20 ppm (-20 ppm), leaving 480 ppm, so 1 s takes 1/480e-6 = 2083 s.
  const std::optional<absl::Duration> back =
      TimeToUtc(net, leap, absl::Seconds(2400));
  ASSERT_TRUE(back.has_value()) << "still " << net.Error() << " off UTC";
  std::printf("slew mode: within 1 ms of UTC %.0f s after the leap\n",
              absl::ToDoubleSeconds(*back));
  EXPECT_GE(*back, absl::Seconds(2000));  // no faster than the 500 ppm limit
  EXPECT_LE(*back, absl::Seconds(2200));
  // An engine without the leap slew (Discipline::LeapSecond not called)
  // measured here: three spikes per filter, a phase restart, then a 0.80 s
  // step — 1900 s "back", one more step and an 804 ms step back below.
  net.RunUntilClock(leap + absl::Hours(2));
  // Never a step, never a reading earlier than the one before it (a step or
  // a kernel leap would show here as a step back of up to 1 s).
  EXPECT_EQ(net.clock().steps(), steps);
  EXPECT_EQ(net.largest_step_back(), absl::ZeroDuration());
  EXPECT_FALSE(net.engine().discipline().leap_slewing());
  EXPECT_LT(absl::AbsDuration(net.Error()), absl::Milliseconds(1));
  // The servers' 1 s jump was absorbed, not taken for falsetickers or spikes.
  const EngineStatus st = net.Status();
  for (const PeerStatus& p : st.peers) {
    SCOPED_TRACE(p.address);
    EXPECT_NE(p.mark, SelectionMark::kFalseticker);
    EXPECT_LT(absl::AbsDuration(p.offset), absl::Milliseconds(1));
  }
  EXPECT_EQ(st.state, SyncState::kSynchronized);
}

TEST(EngineLeapTest, SystemModeSlewsALeapTheKernelWasNeverToldOf) {
  // Silent from before the last day: no update arms the kernel, yet the
  // validated announcement is held; at the leap the discipline slews the
  // second, as in slew mode.
  const absl::Time leap = Utc(2026, 7, 1);
  Network net(Utc(2026, 6, 29, 12), {}, leap);
  net.AddServer({.address = kA, .announces = true});
  Synchronise(net);
  net.SilenceAll();
  net.RunUntilClock(leap - absl::Seconds(5));
  EXPECT_EQ(net.Status().leap, Leap::kInsertSecond);
  net.RunUntilClock(leap + absl::Seconds(5), absl::Milliseconds(50));
  EXPECT_FALSE(net.kernel_ever_armed());
  EXPECT_EQ(net.clock().leaps(), 0);
  EXPECT_TRUE(net.engine().discipline().leap_slewing());
  net.RunUntilClock(leap + absl::Seconds(2400));
  EXPECT_EQ(net.largest_step_back(), absl::ZeroDuration());
  // Back on UTC, within what 36 h of holdover drift allows; without the
  // fallback slew the clock stays 1 s ahead (measured: 999.99999 ms).
  EXPECT_LT(absl::AbsDuration(net.Error()), absl::Milliseconds(5));
}

// A deleted leap second (none has happened yet; RFC 5905 LI 2): the kernel
// skips 23:59:59, so the clock jumps ahead one second with UTC. Without a
// leap table, the end of June qualifies (the June/December rule).
TEST(EngineLeapTest, SystemModeDeletedSecondIsSkippedByTheKernel) {
  const absl::Time leap = Utc(2026, 7, 1);
  Network net(Utc(2026, 6, 30, 12), {}, leap, /*deleted=*/true);
  for (const char* address : {kA, kB, kC}) {
    net.AddServer({.address = address, .announces = true, .deletes = true});
  }
  Synchronise(net);
  EXPECT_EQ(net.Status().leap, Leap::kDeleteSecond);
  EXPECT_EQ(net.KernelLeap(), LeapAction::kDelete);  // the last day
  net.RunUntilClock(leap - absl::Seconds(5));
  const int steps = net.clock().steps();
  // (The start-up step went back 25 ms: only a later step back counts.)
  const absl::Duration back_before = net.largest_step_back();
  net.RunUntilClock(leap + absl::Seconds(5), absl::Milliseconds(50));
  for (const char* address : {kA, kB, kC})
    net.server(address).announces = false;
  EXPECT_EQ(net.clock().leaps(), 1);
  EXPECT_EQ(net.largest_step_back(), back_before);
  EXPECT_EQ(net.Status().leap, Leap::kNone);
  net.RunUntilClock(leap + absl::Hours(1));
  // The engine neither stepped nor slewed a second on top of the kernel's
  // (an engine that slewed it as well would be 1 s behind here).
  EXPECT_EQ(net.clock().steps(), steps);
  EXPECT_FALSE(net.engine().discipline().leap_slewing());
  EXPECT_LT(absl::AbsDuration(net.Error()), absl::Milliseconds(1));
}

// The same deleted second in slew mode: the kernel is never told, so the
// clock is a second behind UTC after it, and slews forward — at most 500 ppm
// plus the 20 ppm base it cancels, so 1 s takes at least 1923 s.
TEST(EngineLeapTest, SlewModeSlewsADeletedSecondForward) {
  EngineOptions options;
  options.leap_mode = LeapMode::kSlew;
  const absl::Time leap = Utc(2026, 7, 1);
  Network net(Utc(2026, 6, 30, 12), options, leap, /*deleted=*/true);
  for (const char* address : {kA, kB, kC}) {
    net.AddServer({.address = address, .announces = true, .deletes = true});
  }
  Synchronise(net);
  EXPECT_EQ(net.Status().leap, Leap::kDeleteSecond);
  net.RunUntilClock(leap - absl::Seconds(5));
  const int steps = net.clock().steps();
  // (The start-up step went back 25 ms: only a later step back counts.)
  const absl::Duration back_before = net.largest_step_back();
  net.RunUntilClock(leap + absl::Seconds(5), absl::Milliseconds(50));
  for (const char* address : {kA, kB, kC})
    net.server(address).announces = false;
  EXPECT_FALSE(net.kernel_ever_armed());
  EXPECT_EQ(net.clock().leaps(), 0);
  EXPECT_LT(net.Error(), absl::Milliseconds(-990));  // behind UTC
  EXPECT_TRUE(net.engine().discipline().leap_slewing());
  const std::optional<absl::Duration> back =
      TimeToUtc(net, leap, absl::Seconds(2400));
  ASSERT_TRUE(back.has_value()) << "still " << net.Error() << " off UTC";
  EXPECT_GE(*back, absl::Seconds(1900));
  EXPECT_LE(*back, absl::Seconds(2200));
  EXPECT_EQ(net.clock().steps(), steps);
  EXPECT_EQ(net.largest_step_back(), back_before);
}

}  // namespace
}  // namespace ntpfleet::ntp
