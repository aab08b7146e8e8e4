// agent/report/status_proto: whatever the engine and the clock say, the status
// sent to the controller is a valid message: Timestamps within 0001..9999,
// Durations within protobuf's +-315576000000 s, a finite frequency.
#include "agent/report/status_proto.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/ntp/engine.h"
#include "gtest/gtest.h"

namespace ntpfleet::report {
namespace {

constexpr int64_t kMaxTimestampSeconds = 253402300799;  // 9999-12-31 23:59:59
constexpr int64_t kMinTimestampSeconds = -62135596800;  // 0001-01-01 00:00:00
constexpr int64_t kMaxDurationSeconds = 315576000000;

void ExpectValid(const google::protobuf::Duration& d) {
  EXPECT_LE(d.seconds(), kMaxDurationSeconds);
  EXPECT_GE(d.seconds(), -kMaxDurationSeconds);
  EXPECT_LT(std::abs(d.nanos()), 1000000000);
  // Seconds and nanos have the same sign.
  EXPECT_FALSE(d.seconds() > 0 && d.nanos() < 0);
  EXPECT_FALSE(d.seconds() < 0 && d.nanos() > 0);
}

ntp::EngineStatus Absurd(absl::Duration off) {
  ntp::EngineStatus st;
  st.state = ntp::SyncState::kSynchronized;
  st.offset = off;
  st.last_offset = off;
  st.delay = absl::InfiniteDuration();
  st.jitter = -absl::InfiniteDuration();
  st.root_delay = off;
  st.root_dispersion = off;
  st.error_bound = off;
  st.poll = 99;  // 2^99 s would overflow a shift
  ntp::PeerStatus p;
  p.name = "a";
  p.poll = -99;
  p.offset = off;
  p.delay = -off;
  p.jitter = absl::InfiniteDuration();
  p.root_distance = off;
  p.since_last_response = off;
  st.peers.push_back(p);
  return st;
}

TEST(StatusProtoTest, AClockFarAheadIsSaturated) {
  const absl::Duration ahead = absl::Hours(100000000);  // ~11 400 years
  ntp::EngineStatus st = Absurd(-ahead);
  st.frequency_ppm = std::numeric_limits<double>::quiet_NaN();
  const v1::SyncStatus out = ToProto(st, absl::Now() + ahead);

  EXPECT_EQ(out.sampled_at().seconds(), kMaxTimestampSeconds);
  EXPECT_GE(out.sampled_at().nanos(), 0);
  EXPECT_LT(out.sampled_at().nanos(), 1000000000);
  EXPECT_EQ(out.offset().seconds(), -kMaxDurationSeconds);
  for (const google::protobuf::Duration* d :
       {&out.offset(), &out.delay(), &out.jitter(), &out.root_delay(),
        &out.root_dispersion(), &out.error_bound(), &out.poll()}) {
    ExpectValid(*d);
  }
  EXPECT_TRUE(std::isfinite(out.frequency_ppm()));
  EXPECT_EQ(out.frequency_ppm(), 0);
  ASSERT_EQ(out.peers_size(), 1);
  const v1::PeerStatus& p = out.peers(0);
  for (const google::protobuf::Duration* d :
       {&p.offset(), &p.delay(), &p.jitter(), &p.root_distance(), &p.when(),
        &p.poll()}) {
    ExpectValid(*d);
  }
  EXPECT_EQ(p.offset().seconds(), -kMaxDurationSeconds);
  EXPECT_GT(out.poll().seconds(), 0);
}

TEST(StatusProtoTest, AClockFarBehindIsSaturated) {
  const absl::Duration behind = absl::Hours(100000000);
  ntp::EngineStatus st = Absurd(behind);
  st.frequency_ppm = -std::numeric_limits<double>::infinity();
  const v1::SyncStatus out = ToProto(st, absl::Now() - behind);
  EXPECT_EQ(out.sampled_at().seconds(), kMinTimestampSeconds);
  EXPECT_EQ(out.sampled_at().nanos(), 0);
  EXPECT_EQ(out.offset().seconds(), kMaxDurationSeconds);
  ExpectValid(out.offset());
  EXPECT_TRUE(std::isfinite(out.frequency_ppm()));
  EXPECT_LT(out.frequency_ppm(), 0);
  EXPECT_TRUE(std::isfinite(
      ToProto(ntp::EngineStatus{}, absl::InfiniteFuture()).frequency_ppm()));
  EXPECT_EQ(ToProto(ntp::EngineStatus{}, absl::InfiniteFuture())
                .sampled_at()
                .seconds(),
            kMaxTimestampSeconds);
  EXPECT_EQ(
      ToProto(ntp::EngineStatus{}, absl::InfinitePast()).sampled_at().seconds(),
      kMinTimestampSeconds);
}

TEST(StatusProtoTest, OrdinaryValuesPassUnchanged) {
  ntp::EngineStatus st;
  st.offset = absl::Microseconds(-1500);
  st.frequency_ppm = 12.5;
  st.poll = 6;
  const absl::Time t = absl::FromUnixSeconds(1767225600) + absl::Nanoseconds(7);
  const v1::SyncStatus out = ToProto(st, t);
  EXPECT_EQ(out.sampled_at().seconds(), 1767225600);
  EXPECT_EQ(out.sampled_at().nanos(), 7);
  EXPECT_EQ(FromProto(out.offset()), absl::Microseconds(-1500));
  EXPECT_EQ(out.frequency_ppm(), 12.5);
  EXPECT_EQ(FromProto(out.poll()), absl::Seconds(64));
  EXPECT_EQ(out.reason(), "");
}

TEST(StatusProtoTest, CarriesTheReason) {
  ntp::EngineStatus st;
  st.reason = "clock is -2000.000 s off, beyond the panic threshold (1000 s)";
  EXPECT_EQ(ToProto(st, absl::UnixEpoch()).reason(), st.reason);
}

TEST(StatusProtoTest, ARefusedNodeIsReportedRefusedWithItsReason) {
  ntp::EngineStatus st;
  st.state = ntp::SyncState::kRefused;
  st.reason = "refused by 10.77.2.1: KoD DENY: the server refuses to serve us";
  const v1::SyncStatus out = ToProto(st, absl::UnixEpoch());
  EXPECT_EQ(out.state(), v1::SYNC_STATE_REFUSED);
  EXPECT_EQ(out.reason(), st.reason);
  EXPECT_EQ(out.stratum(), 16u);
  EXPECT_FALSE(out.has_error_bound());
}

TEST(StatusProtoTest, SaysWhenTheBoundIsRelativeToTheLocalClock) {
  ntp::EngineStatus st;
  st.state = ntp::SyncState::kLocalClock;
  st.error_bound = absl::ZeroDuration();
  st.error_bound_reference = ntp::ErrorBoundReference::kLocalClock;
  EXPECT_TRUE(ToProto(st, absl::Now()).error_bound_local());
  st.state = ntp::SyncState::kSynchronized;
  st.error_bound = absl::Microseconds(120);
  st.error_bound_reference = ntp::ErrorBoundReference::kUpstream;
  const v1::SyncStatus out = ToProto(st, absl::Now());
  EXPECT_FALSE(out.error_bound_local());
  EXPECT_EQ(out.error_bound().nanos(), 120000);
}

}  // namespace
}  // namespace ntpfleet::report
