// controller/validate: every limit just inside passes, just outside fails with
// the field named; NaN and infinite frequencies; Timestamps and Durations at
// and beyond protobuf's range; the Hello of an agent whose report interval
// came from a wildly wrong clock.
#include "controller/validate.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::controller {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::_;
using ::testing::AllOf;
using ::testing::HasSubstr;

// 253 bytes: four DNS labels (63 + 63 + 63 + 61 and three dots).
std::string LongestNodeName() {
  return absl::StrCat(std::string(63, 'a'), ".", std::string(63, 'b'), ".",
                      std::string(63, 'c'), ".", std::string(61, 'd'));
}

// A Hello with every field at its limit.
v1::Hello FullHello() {
  v1::Hello h;
  h.set_node_name(LongestNodeName());
  for (int i = 0; i < kMaxLabels; ++i) {
    // 63-byte keys of every allowed kind of byte, 253-byte printable values.
    std::string key = absl::StrCat("Az09._/-", i);
    key.resize(kMaxLabelKeyBytes, 'k');
    (*h.mutable_labels())[key] = std::string(kMaxLabelValueBytes, '~');
  }
  for (int i = 0; i < kMaxAddresses; ++i) {
    std::string a = absl::StrCat("fe80::", i, "%");
    a.resize(kMaxAddressBytes, 'x');
    h.add_addresses(a);
  }
  h.set_agent_version(std::string(kMaxAgentVersionBytes, 'v'));
  h.set_config_digest(std::string(kMaxConfigDigestBytes, 'f'));
  h.set_instance_id(std::string(kMaxInstanceIdBytes, ' '));
  h.set_role(v1::ROLE_SERVER);
  SetDuration(kMaxReportInterval, h.mutable_report_interval());
  return h;
}

// A SyncStatus with every field at its limit (64 peers of long strings).
v1::SyncStatus FullStatus() {
  v1::SyncStatus s;
  s.mutable_sampled_at()->set_seconds(253402300799);  // 9999-12-31T23:59:59Z
  s.mutable_sampled_at()->set_nanos(999999999);
  s.set_state(v1::SYNC_STATE_LOCAL_CLOCK);
  s.mutable_offset()->set_seconds(-315576000000);
  s.mutable_offset()->set_nanos(-999999999);
  s.mutable_delay()->set_seconds(315576000000);
  s.mutable_delay()->set_nanos(999999999);
  SetDuration(absl::Microseconds(5), s.mutable_jitter());
  s.set_frequency_ppm(-1e6);
  s.set_stratum(16);
  s.set_refid(std::string(kMaxRefidBytes, 'r'));
  s.set_leap(v1::LEAP_ALARM);
  SetDuration(absl::Milliseconds(3), s.mutable_root_delay());
  SetDuration(absl::Milliseconds(4), s.mutable_root_dispersion());
  SetDuration(absl::Milliseconds(5), s.mutable_error_bound());
  s.set_system_peer(std::string(kMaxSystemPeerBytes, 'p'));
  s.set_reason(std::string(kMaxStatusReasonBytes, 'w'));
  SetDuration(absl::Seconds(64), s.mutable_poll());
  for (int i = 0; i < kMaxPeers; ++i) {
    v1::PeerStatus* p = s.add_peers();
    p->set_remote(std::string(kMaxPeerRemoteBytes, 'n'));
    p->set_address(std::string(kMaxPeerAddressBytes, '1'));
    p->set_refid(std::string(kMaxPeerRefidBytes, 'R'));
    p->set_stratum(16);
    p->set_type(v1::PEER_TYPE_MANYCAST);
    SetDuration(absl::Seconds(3), p->mutable_when());
    SetDuration(absl::Seconds(64), p->mutable_poll());
    p->set_reach(255);
    SetDuration(absl::Milliseconds(1), p->mutable_delay());
    SetDuration(absl::Microseconds(-30), p->mutable_offset());
    SetDuration(absl::Microseconds(7), p->mutable_jitter());
    p->set_mark(v1::SELECTION_MARK_SYSTEM_PEER);
    p->set_unusable_reason(std::string(kMaxUnusableReasonBytes, 'u'));
    SetDuration(absl::Milliseconds(2), p->mutable_root_distance());
  }
  return s;
}

v1::ResyncResult FullResult() {
  v1::ResyncResult r;
  r.set_request_id(std::string(kMaxRequestIdBytes, 'q'));
  r.set_outcome(v1::RESYNC_OUTCOME_INTERRUPTED);
  SetDuration(absl::Milliseconds(-250), r.mutable_offset_before());
  SetDuration(absl::Microseconds(3), r.mutable_offset_after());
  r.set_stepped(true);
  r.set_error(std::string(kMaxResyncErrorBytes, 'e'));
  return r;
}

// One step beyond a limit: what it changes, and the words the error must
// contain (the field, and the limit where there is one).
template <typename Message>
struct Case {
  std::string what;
  std::function<void(Message&)> change;
  std::vector<std::string> said;
};

template <typename Message>
void ExpectEachFails(const Message& valid,
                     const std::function<absl::Status(const Message&)>& check,
                     const std::vector<Case<Message>>& cases) {
  ASSERT_THAT(check(valid), IsOk());
  for (const Case<Message>& c : cases) {
    Message m = valid;
    c.change(m);
    const absl::Status s = check(m);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, _)) << c.what;
    for (const std::string& word : c.said) {
      EXPECT_THAT(std::string(s.message()), HasSubstr(word)) << c.what;
    }
  }
}

TEST(ValidateHelloTest, EveryFieldAtItsLimitPasses) {
  EXPECT_THAT(ValidateHello(FullHello()), IsOk());
  v1::Hello shortest = FullHello();
  SetDuration(kMinReportInterval, shortest.mutable_report_interval());
  shortest.set_role(v1::ROLE_UNSPECIFIED);
  EXPECT_THAT(ValidateHello(shortest), IsOk());

  v1::Hello minimal;  // what an agent with no labels or addresses sends
  minimal.set_node_name("n");
  SetDuration(absl::Seconds(1), minimal.mutable_report_interval());
  EXPECT_THAT(ValidateHello(minimal), IsOk());
}

TEST(ValidateHelloTest, EachFieldJustBeyondItsLimitFailsNamingIt) {
  using C = Case<v1::Hello>;
  ExpectEachFails<v1::Hello>(
      FullHello(), ValidateHello,
      {
          C{"name 254 bytes",
            [](v1::Hello& h) { h.set_node_name(h.node_name() + "d"); },
            {"Hello.node_name", "253"}},
          C{"name with a space",
            [](v1::Hello& h) { h.set_node_name("web 1"); },
            {"Hello.node_name", "'web 1'"}},
          C{"no name",
            [](v1::Hello& h) { h.clear_node_name(); },
            {"Hello.node_name"}},
          C{"65 labels",
            [](v1::Hello& h) { (*h.mutable_labels())["extra"] = "x"; },
            {"Hello.labels: 65 labels, at most 64"}},
          C{"64-byte key",
            [](v1::Hello& h) {
              h.mutable_labels()->erase(h.mutable_labels()->begin());
              (*h.mutable_labels())[std::string(64, 'k')] = "x";
            },
            {"Hello.labels", "64 bytes, must be 1..63"}},
          C{"empty key",
            [](v1::Hello& h) {
              h.mutable_labels()->erase(h.mutable_labels()->begin());
              (*h.mutable_labels())[""] = "x";
            },
            {"Hello.labels", "must be 1..63"}},
          C{"key with '='",
            [](v1::Hello& h) {
              h.mutable_labels()->erase(h.mutable_labels()->begin());
              (*h.mutable_labels())["a=b"] = "x";
            },
            {"Hello.labels", "0x3d", "[A-Za-z0-9._/-]"}},
          C{"254-byte value",
            [](v1::Hello& h) { h.mutable_labels()->begin()->second += "~"; },
            {"Hello.labels", "254 bytes, at most 253"}},
          C{"value with a newline",
            [](v1::Hello& h) { h.mutable_labels()->begin()->second[5] = '\n'; },
            {"Hello.labels", "0x0a", "printable ASCII"}},
          C{"33 addresses",
            [](v1::Hello& h) { h.add_addresses("10.0.0.1"); },
            {"Hello.addresses: 33 addresses, at most 32"}},
          C{"65-byte address",
            [](v1::Hello& h) { h.mutable_addresses(7)->push_back('x'); },
            {"Hello.addresses[7]: 65 bytes, at most 64"}},
          C{"address with ESC",
            [](v1::Hello& h) { (*h.mutable_addresses(0))[0] = '\x1b'; },
            {"Hello.addresses[0]", "0x1b"}},
          C{"65-byte agent_version",
            [](v1::Hello& h) { h.mutable_agent_version()->push_back('v'); },
            {"Hello.agent_version: 65 bytes, at most 64"}},
          C{"65-byte config_digest",
            [](v1::Hello& h) { h.mutable_config_digest()->push_back('f'); },
            {"Hello.config_digest: 65 bytes, at most 64"}},
          C{"65-byte instance_id",
            [](v1::Hello& h) { h.mutable_instance_id()->push_back('i'); },
            {"Hello.instance_id: 65 bytes, at most 64"}},
          C{"instance_id with DEL",
            [](v1::Hello& h) { (*h.mutable_instance_id())[3] = '\x7f'; },
            {"Hello.instance_id", "0x7f"}},
          C{"unknown role",
            [](v1::Hello& h) { h.set_role(static_cast<v1::Role>(3)); },
            {"Hello.role", "unknown value 3"}},
          C{"no report_interval",
            [](v1::Hello& h) { h.clear_report_interval(); },
            {"Hello.report_interval", "missing"}},
          C{"report_interval 99 ms",
            [](v1::Hello& h) {
              SetDuration(absl::Milliseconds(99), h.mutable_report_interval());
            },
            {"Hello.report_interval", "99ms", "100ms", "1h"}},
          C{"report_interval 1 h + 1 ns",
            [](v1::Hello& h) {
              SetDuration(absl::Hours(1) + absl::Nanoseconds(1),
                          h.mutable_report_interval());
            },
            {"Hello.report_interval", "1h0.000000001s"}},
          C{"report_interval negative",
            [](v1::Hello& h) {
              SetDuration(absl::Seconds(-1), h.mutable_report_interval());
            },
            {"Hello.report_interval", "-1s"}},
          C{"report_interval of mixed signs",
            [](v1::Hello& h) {
              h.mutable_report_interval()->set_seconds(1);
              h.mutable_report_interval()->set_nanos(-1);
            },
            {"Hello.report_interval", "opposite signs"}},
      });
}

// An agent whose clock (or configuration) is wildly off: 100 000 000 hours is
// 3.6e11 s, beyond protobuf's Duration range.
TEST(ValidateHelloTest, TheHelloOfAHundredMillionHourClockFails) {
  v1::Hello h = FullHello();
  h.mutable_report_interval()->set_seconds(int64_t{100000000} * 3600);
  const absl::Status s = ValidateHello(h);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                          AllOf(HasSubstr("Hello.report_interval"),
                                HasSubstr("360000000000"))));
  // Within protobuf's range but far beyond the controller's.
  h.mutable_report_interval()->set_seconds(315576000000);
  EXPECT_THAT(ValidateHello(h), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("Hello.report_interval")));
}

TEST(ValidateStatusTest, EveryFieldAtItsLimitPasses) {
  EXPECT_THAT(ValidateStatus(FullStatus()), IsOk());
  v1::SyncStatus other = FullStatus();
  other.mutable_sampled_at()->set_seconds(-62135596800);  // 0001-01-01
  other.mutable_sampled_at()->set_nanos(0);
  other.set_frequency_ppm(1e6);
  EXPECT_THAT(ValidateStatus(other), IsOk());
  EXPECT_THAT(ValidateStatus(v1::SyncStatus()), IsOk());  // all defaults
  // A node refused by its servers (#12), with a reason at the limit.
  v1::SyncStatus refused = FullStatus();
  refused.set_state(v1::SYNC_STATE_REFUSED);
  EXPECT_THAT(ValidateStatus(refused), IsOk());
}

TEST(ValidateStatusTest, EachFieldJustBeyondItsLimitFailsNamingIt) {
  using C = Case<v1::SyncStatus>;
  const double inf = std::numeric_limits<double>::infinity();
  ExpectEachFails<v1::SyncStatus>(
      FullStatus(), ValidateStatus,
      {
          C{"sampled_at past 9999",
            [](v1::SyncStatus& s) {
              s.mutable_sampled_at()->set_seconds(253402300800);
              s.mutable_sampled_at()->set_nanos(0);
            },
            {"SyncStatus.sampled_at", "253402300800"}},
          C{"sampled_at before year 1",
            [](v1::SyncStatus& s) {
              s.mutable_sampled_at()->set_seconds(-62135596801);
            },
            {"SyncStatus.sampled_at", "-62135596801"}},
          C{"sampled_at negative nanos",
            [](v1::SyncStatus& s) { s.mutable_sampled_at()->set_nanos(-1); },
            {"SyncStatus.sampled_at", "nanos -1"}},
          C{"sampled_at nanos 1e9",
            [](v1::SyncStatus& s) {
              s.mutable_sampled_at()->set_nanos(1000000000);
            },
            {"SyncStatus.sampled_at", "nanos 1000000000"}},
          C{"offset beyond 10000 years",
            [](v1::SyncStatus& s) {
              s.mutable_offset()->set_seconds(-315576000001);
            },
            {"SyncStatus.offset", "-315576000001"}},
          C{"delay beyond 10000 years",
            [](v1::SyncStatus& s) {
              s.mutable_delay()->set_seconds(315576000001);
            },
            {"SyncStatus.delay", "315576000001"}},
          C{"jitter nanos 1e9",
            [](v1::SyncStatus& s) {
              s.mutable_jitter()->set_seconds(0);
              s.mutable_jitter()->set_nanos(1000000000);
            },
            {"SyncStatus.jitter", "nanos 1000000000"}},
          C{"error_bound seconds > 0, nanos < 0",
            [](v1::SyncStatus& s) {
              s.mutable_error_bound()->set_seconds(1);
              s.mutable_error_bound()->set_nanos(-5);
            },
            {"SyncStatus.error_bound", "opposite signs"}},
          C{"root_delay seconds < 0, nanos > 0",
            [](v1::SyncStatus& s) {
              s.mutable_root_delay()->set_seconds(-1);
              s.mutable_root_delay()->set_nanos(5);
            },
            {"SyncStatus.root_delay", "opposite signs"}},
          C{"root_dispersion",
            [](v1::SyncStatus& s) {
              s.mutable_root_dispersion()->set_nanos(-1000000000);
            },
            {"SyncStatus.root_dispersion"}},
          C{"poll",
            [](v1::SyncStatus& s) {
              s.mutable_poll()->set_seconds(-400000000000);
            },
            {"SyncStatus.poll"}},
          C{"frequency NaN",
            [](v1::SyncStatus& s) { s.set_frequency_ppm(std::nan("")); },
            {"SyncStatus.frequency_ppm", "nan", "finite"}},
          C{"frequency +inf",
            [inf](v1::SyncStatus& s) { s.set_frequency_ppm(inf); },
            {"SyncStatus.frequency_ppm", "inf"}},
          C{"frequency -inf",
            [inf](v1::SyncStatus& s) { s.set_frequency_ppm(-inf); },
            {"SyncStatus.frequency_ppm", "-inf"}},
          C{"frequency just above 1e6",
            [](v1::SyncStatus& s) {
              s.set_frequency_ppm(std::nextafter(1e6, 2e6));
            },
            {"SyncStatus.frequency_ppm", "1e+06"}},
          C{"frequency just below -1e6",
            [](v1::SyncStatus& s) {
              s.set_frequency_ppm(std::nextafter(-1e6, -2e6));
            },
            {"SyncStatus.frequency_ppm"}},
          C{"stratum 17",
            [](v1::SyncStatus& s) { s.set_stratum(17); },
            {"SyncStatus.stratum: 17, at most 16"}},
          C{"unknown state",
            [](v1::SyncStatus& s) {
              s.set_state(static_cast<v1::SyncState>(7));
            },
            {"SyncStatus.state", "unknown value 7"}},
          C{"unknown leap",
            [](v1::SyncStatus& s) { s.set_leap(static_cast<v1::Leap>(5)); },
            {"SyncStatus.leap", "unknown value 5"}},
          C{"65-byte refid",
            [](v1::SyncStatus& s) { s.mutable_refid()->push_back('r'); },
            {"SyncStatus.refid: 65 bytes, at most 64"}},
          C{"65-byte system_peer",
            [](v1::SyncStatus& s) { s.mutable_system_peer()->push_back('p'); },
            {"SyncStatus.system_peer: 65 bytes, at most 64"}},
          C{"513-byte reason",
            [](v1::SyncStatus& s) { s.mutable_reason()->push_back('w'); },
            {"SyncStatus.reason: 513 bytes, at most 512"}},
          C{"65 peers",
            [](v1::SyncStatus& s) { s.add_peers(); },
            {"SyncStatus.peers: 65 peers, at most 64"}},
          C{"254-byte peer remote",
            [](v1::SyncStatus& s) {
              s.mutable_peers(63)->mutable_remote()->push_back('n');
            },
            {"SyncStatus.peers[63].remote: 254 bytes, at most 253"}},
          C{"65-byte peer address",
            [](v1::SyncStatus& s) {
              s.mutable_peers(1)->mutable_address()->push_back('1');
            },
            {"SyncStatus.peers[1].address: 65 bytes, at most 64"}},
          C{"65-byte peer refid",
            [](v1::SyncStatus& s) {
              s.mutable_peers(2)->mutable_refid()->push_back('R');
            },
            {"SyncStatus.peers[2].refid: 65 bytes, at most 64"}},
          C{"257-byte unusable_reason",
            [](v1::SyncStatus& s) {
              s.mutable_peers(0)->mutable_unusable_reason()->push_back('u');
            },
            {"SyncStatus.peers[0].unusable_reason: 257 bytes, at most 256"}},
          C{"peer stratum 17",
            [](v1::SyncStatus& s) { s.mutable_peers(4)->set_stratum(17); },
            {"SyncStatus.peers[4].stratum: 17, at most 16"}},
          C{"reach 256",
            [](v1::SyncStatus& s) { s.mutable_peers(5)->set_reach(256); },
            {"SyncStatus.peers[5].reach: 256, at most 255"}},
          C{"unknown peer type",
            [](v1::SyncStatus& s) {
              s.mutable_peers(6)->set_type(static_cast<v1::PeerType>(6));
            },
            {"SyncStatus.peers[6].type", "unknown value 6"}},
          C{"unknown mark",
            [](v1::SyncStatus& s) {
              s.mutable_peers(7)->set_mark(static_cast<v1::SelectionMark>(8));
            },
            {"SyncStatus.peers[7].mark", "unknown value 8"}},
          C{"peer when of mixed signs",
            [](v1::SyncStatus& s) {
              s.mutable_peers(8)->mutable_when()->set_nanos(-1);
            },
            {"SyncStatus.peers[8].when", "opposite signs"}},
          C{"peer poll beyond range",
            [](v1::SyncStatus& s) {
              s.mutable_peers(9)->mutable_poll()->set_seconds(315576000001);
            },
            {"SyncStatus.peers[9].poll"}},
          C{"peer delay nanos",
            [](v1::SyncStatus& s) {
              s.mutable_peers(10)->mutable_delay()->set_nanos(1000000000);
            },
            {"SyncStatus.peers[10].delay"}},
          C{"peer offset of mixed signs",
            [](v1::SyncStatus& s) {
              s.mutable_peers(11)->mutable_offset()->set_seconds(1);
            },
            {"SyncStatus.peers[11].offset", "opposite signs"}},
          C{"peer jitter",
            [](v1::SyncStatus& s) {
              s.mutable_peers(12)->mutable_jitter()->set_seconds(-1);
            },
            {"SyncStatus.peers[12].jitter", "opposite signs"}},
          C{"peer root_distance",
            [](v1::SyncStatus& s) {
              s.mutable_peers(13)->mutable_root_distance()->set_seconds(
                  -315576000001);
            },
            {"SyncStatus.peers[13].root_distance"}},
      });
}

TEST(ValidateResyncResultTest, AtItsLimitsPassesBeyondThemFails) {
  using C = Case<v1::ResyncResult>;
  EXPECT_THAT(ValidateResyncResult(v1::ResyncResult()), IsOk());
  ExpectEachFails<v1::ResyncResult>(
      FullResult(), ValidateResyncResult,
      {
          C{"65-byte request_id",
            [](v1::ResyncResult& r) { r.mutable_request_id()->push_back('q'); },
            {"ResyncResult.request_id: 65 bytes, at most 64"}},
          C{"1025-byte error",
            [](v1::ResyncResult& r) { r.mutable_error()->push_back('e'); },
            {"ResyncResult.error: 1025 bytes, at most 1024"}},
          C{"unknown outcome",
            [](v1::ResyncResult& r) {
              r.set_outcome(static_cast<v1::ResyncOutcome>(8));
            },
            {"ResyncResult.outcome", "unknown value 8"}},
          C{"offset_before of mixed signs",
            [](v1::ResyncResult& r) {
              r.mutable_offset_before()->set_seconds(1);
            },
            {"ResyncResult.offset_before", "opposite signs"}},
          C{"offset_after beyond range",
            [](v1::ResyncResult& r) {
              r.mutable_offset_after()->set_seconds(315576000001);
            },
            {"ResyncResult.offset_after", "315576000001"}},
      });
}

TEST(ValidateTimeTest, ProtobufRangesExactly) {
  google::protobuf::Timestamp t;
  t.set_seconds(253402300799);
  t.set_nanos(999999999);
  EXPECT_THAT(ValidateTimestamp(t, "t"), IsOk());
  t.set_seconds(253402300800);
  t.set_nanos(0);
  EXPECT_THAT(ValidateTimestamp(t, "t"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("t: seconds 253402300800")));

  google::protobuf::Duration d;
  d.set_seconds(0);
  d.set_nanos(-999999999);  // zero seconds: nanos of either sign
  EXPECT_THAT(ValidateDuration(d, "d"), IsOk());
  d.set_nanos(999999999);
  EXPECT_THAT(ValidateDuration(d, "d"), IsOk());
  d.set_seconds(-3);
  d.set_nanos(-5);
  EXPECT_THAT(ValidateDuration(d, "d"), IsOk());
  d.set_nanos(5);
  EXPECT_THAT(ValidateDuration(d, "d"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("d: seconds -3 and nanos 5")));
}

}  // namespace
}  // namespace ntpfleet::controller
