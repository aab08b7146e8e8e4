#include "agent/report/status_proto.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/time/time.h"
#include "agent/ntp/engine.h"
#include "common/ntp/packet.h"

namespace ntpfleet::report {
namespace {

v1::SyncState StateToProto(ntp::SyncState s) {
  switch (s) {
    case ntp::SyncState::kUnsynchronized:
      return v1::SYNC_STATE_UNSYNCHRONISED;
    case ntp::SyncState::kSyncing:
      return v1::SYNC_STATE_SYNCING;
    case ntp::SyncState::kSynchronized:
      return v1::SYNC_STATE_SYNCHRONISED;
    case ntp::SyncState::kHoldover:
      return v1::SYNC_STATE_HOLDOVER;
    case ntp::SyncState::kLocalClock:
      return v1::SYNC_STATE_LOCAL_CLOCK;
    case ntp::SyncState::kRefused:
      return v1::SYNC_STATE_REFUSED;
  }
  return v1::SYNC_STATE_UNSPECIFIED;
}

v1::Leap LeapToProto(ntp::Leap l) {
  switch (l) {
    case ntp::Leap::kNone:
      return v1::LEAP_NONE;
    case ntp::Leap::kInsertSecond:
      return v1::LEAP_INSERT;
    case ntp::Leap::kDeleteSecond:
      return v1::LEAP_DELETE;
    case ntp::Leap::kUnsynchronized:
      return v1::LEAP_ALARM;
  }
  return v1::LEAP_UNSPECIFIED;
}

v1::SelectionMark MarkToProto(const std::optional<ntp::SelectionMark>& m) {
  if (!m) return v1::SELECTION_MARK_REJECT;
  switch (*m) {
    case ntp::SelectionMark::kFalseticker:
      return v1::SELECTION_MARK_FALSETICKER;
    case ntp::SelectionMark::kOutlier:
      return v1::SELECTION_MARK_OUTLIER;
    case ntp::SelectionMark::kCandidate:
      return v1::SELECTION_MARK_CANDIDATE;
    case ntp::SelectionMark::kSystemPeer:
      return v1::SELECTION_MARK_SYSTEM_PEER;
  }
  return v1::SELECTION_MARK_UNSPECIFIED;
}

// google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999999999Z. A clock outside it (a runaway simulated
// clock, a corrupt RTC) is reported at the nearest end, never as an invalid
// message the controller would have to reject.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

void SetSaturatedTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const absl::Time lo = absl::FromUnixSeconds(kMinTimestampSeconds);
  const absl::Time hi = absl::FromUnixSeconds(kMaxTimestampSeconds) +
                        absl::Nanoseconds(999999999);
  SetTimestamp(std::clamp(t, lo, hi), out);
}

// The largest |frequency| reported, ppm (100 %: any real oscillator is far
// inside). NaN is reported as 0.
constexpr double kMaxReportedPpm = 1e6;

double FiniteFrequency(double ppm) {
  if (std::isnan(ppm)) return 0;
  return std::clamp(ppm, -kMaxReportedPpm, kMaxReportedPpm);
}

// 2^poll seconds, for any poll exponent (no shift out of range).
absl::Duration PollInterval(int poll) {
  return absl::Seconds(std::ldexp(1.0, std::clamp(poll, -30, 40)));
}

}  // namespace

v1::SyncStatus ToProto(const ntp::EngineStatus& st, absl::Time sampled_at) {
  v1::SyncStatus out;
  // Durations are saturated by SetDuration (common/proto_time); the timestamp
  // and the frequency here.
  SetSaturatedTimestamp(sampled_at, out.mutable_sampled_at());
  out.set_state(StateToProto(st.state));
  SetDuration(st.offset, out.mutable_offset());
  SetDuration(st.delay, out.mutable_delay());
  SetDuration(st.jitter, out.mutable_jitter());
  out.set_frequency_ppm(FiniteFrequency(st.frequency_ppm));
  out.set_stratum(static_cast<uint32_t>(st.stratum));
  out.set_refid(st.reference_id.ToString(st.stratum));
  out.set_leap(LeapToProto(st.leap));
  SetDuration(st.root_delay, out.mutable_root_delay());
  SetDuration(st.root_dispersion, out.mutable_root_dispersion());
  // Unsynchronised: no bound at all (the field stays unset, shown as "-").
  if (st.error_bound != absl::InfiniteDuration()) {
    SetDuration(st.error_bound, out.mutable_error_bound());
  }
  out.set_error_bound_local(st.error_bound_reference ==
                            ntp::ErrorBoundReference::kLocalClock);
  SetDuration(PollInterval(st.poll), out.mutable_poll());
  out.set_reason(st.reason);
  for (const ntp::PeerStatus& p : st.peers) {
    v1::PeerStatus* peer = out.add_peers();
    peer->set_remote(p.name);
    peer->set_address(p.address);
    peer->set_refid(p.has_reference() ? p.reference_id.ToString(p.stratum)
                                      : ".INIT.");
    peer->set_stratum(static_cast<uint32_t>(p.stratum));
    peer->set_type(v1::PEER_TYPE_UNICAST);
    if (p.since_last_response)
      SetDuration(*p.since_last_response, peer->mutable_when());
    SetDuration(PollInterval(p.poll), peer->mutable_poll());
    peer->set_reach(p.reach);
    SetDuration(p.delay, peer->mutable_delay());
    SetDuration(p.offset, peer->mutable_offset());
    SetDuration(p.jitter, peer->mutable_jitter());
    peer->set_mark(MarkToProto(p.mark));
    peer->set_unusable_reason(p.reason);
    SetDuration(p.root_distance, peer->mutable_root_distance());
    const ntp::SourceCounters& c = p.counters;
    for (const auto& [name, count] :
         {std::pair<const char*, uint64_t>{"requests", c.requests},
          {"responses", c.responses},
          {"malformed", c.malformed},
          {"not_server_mode", c.not_server_mode},
          {"bogus_origin", c.bogus_origin},
          {"duplicate", c.duplicate},
          {"bogus_timestamps", c.bogus_timestamps},
          {"auth_failed", c.auth_failed},
          {"unsynchronized", c.unsynchronized},
          {"too_far", c.too_far},
          {"voided_by_step", c.voided_by_step},
          {"kod_rate", c.kod_rate},
          {"kod_deny", c.kod_deny}}) {
      if (count > 0) (*peer->mutable_counters())[name] = count;
    }
    if (st.system_peer && *st.system_peer == p.id) out.set_system_peer(p.name);
  }
  if (st.local_clock_stratum) {
    // The local clock as ntpq shows ntpd's LOCAL driver: always there, in use
    // when nothing better is.
    v1::PeerStatus* local = out.add_peers();
    local->set_remote("LOCAL(0)");
    local->set_address("127.127.1.0");
    local->set_refid(".LOCL.");
    local->set_stratum(static_cast<uint32_t>(*st.local_clock_stratum));
    local->set_type(v1::PEER_TYPE_LOCAL_CLOCK);
    SetDuration(absl::Seconds(64), local->mutable_poll());
    local->set_reach(0377);
    local->set_mark(st.state == ntp::SyncState::kLocalClock
                        ? v1::SELECTION_MARK_SYSTEM_PEER
                        : v1::SELECTION_MARK_BACKUP);
    if (st.state == ntp::SyncState::kLocalClock)
      out.set_system_peer("LOCAL(0)");
  }
  return out;
}

}  // namespace ntpfleet::report
