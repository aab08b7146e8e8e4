#include "agent/ntp/server.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "agent/ntp/access.h"
#include "agent/ntp/auth.h"
#include "common/ntp/packet.h"
#include "gtest/gtest.h"

namespace ntpfleet::ntp {
namespace {

const IpAddress kClient = IpAddress::V4(192, 0, 2, 7);
const NtpTimestamp kReceive = NtpTimestamp::FromRaw(0xeeb1e5260925c0b3ULL);
const NtpTimestamp kTransmit = NtpTimestamp::FromRaw(0xeeb1e526092e3e4cULL);

clock::MonoTime At(double seconds) {
  return clock::MonoTime::FromDuration(absl::Seconds(seconds));
}

SystemVariables System() {
  SystemVariables s;
  s.leap = Leap::kNone;
  s.stratum = 3;
  s.precision = -22;
  s.reference_id = RefId::FromIpv4(10, 1, 2, 3);
  s.root_delay = absl::Microseconds(1500);
  s.root_dispersion = absl::Microseconds(700);
  s.reference_time = NtpTimestamp::FromRaw(0xeeb1e50000000000ULL);
  return s;
}

std::vector<uint8_t> Request(uint64_t transmit = 0x5edecbbedd997bd1ULL,
                             int version = 4) {
  NtpPacket p;
  p.version = static_cast<uint8_t>(version);
  p.mode = Mode::kClient;
  p.poll = 6;
  p.transmit = NtpTimestamp::FromRaw(transmit);
  return *EncodePacket(p);
}

AccessList Rules(std::vector<std::pair<std::string, uint32_t>> rules) {
  AccessList list;
  for (const auto& [prefix, flags] : rules) {
    AccessRule r;
    const size_t slash = prefix.find('/');
    r.address = *IpAddress::Parse(prefix.substr(0, slash));
    r.prefix_length = slash == std::string::npos
                          ? r.address.bits()
                          : std::stoul(prefix.substr(slash + 1));
    r.flags = flags;
    list.Add(r);
  }
  return list;
}

struct Reply {
  bool sent = false;
  std::vector<uint8_t> bytes;
  NtpPacket packet;
};

Reply Ask(Responder& responder, const std::vector<uint8_t>& request,
          const IpAddress& client = kClient, double now = 0) {
  std::vector<uint8_t> buf(128);
  Responder::Prepared prepared = responder.Prepare(
      request, client, kReceive, System(), At(now), absl::MakeSpan(buf));
  Reply r;
  if (prepared.length == 0) return r;
  const size_t n = responder.Finish(prepared, kTransmit, absl::MakeSpan(buf));
  r.sent = true;
  r.bytes.assign(buf.begin(), buf.begin() + n);
  r.packet = *DecodePacket(r.bytes);
  return r;
}

TEST(ResponderTest, AnswersClientWithSystemVariables) {
  Responder responder(AccessList(), {}, nullptr);
  const std::vector<uint8_t> request = Request(0x0123456789abcdefULL, 3);
  const Reply r = Ask(responder, request);
  ASSERT_TRUE(r.sent);
  EXPECT_EQ(r.bytes.size(), request.size());  // never larger than the request
  EXPECT_EQ(r.packet.mode, Mode::kServer);
  EXPECT_EQ(r.packet.version, 3);  // the client's version
  EXPECT_EQ(r.packet.origin.raw(), 0x0123456789abcdefULL);
  EXPECT_EQ(r.packet.receive, kReceive);
  EXPECT_EQ(r.packet.transmit, kTransmit);
  EXPECT_EQ(r.packet.stratum, 3);
  EXPECT_EQ(r.packet.leap, Leap::kNone);
  EXPECT_EQ(r.packet.precision, -22);
  EXPECT_EQ(r.packet.reference_id.AsIpv4(), "10.1.2.3");
  // 1500 µs = 98.304 units of 2^-16 s -> 98 = 0x62; 700 µs -> 45.875 -> 46 =
  // 0x2e.
  EXPECT_EQ(r.packet.root_delay.raw(), 0x62u);
  EXPECT_EQ(r.packet.root_dispersion.raw(), 0x2eu);
  EXPECT_EQ(r.packet.reference.raw(), 0xeeb1e50000000000ULL);
  EXPECT_EQ(responder.counters().answered, 1u);
}

TEST(ResponderTest, NeverAnswersModes6And7OrServerReplies) {
  Responder responder(AccessList(), {}, nullptr);
  std::vector<uint8_t> monlist(48, 0);
  monlist[0] = 0x17;  // v2 mode 7
  monlist[3] = 42;    // MON_GETLIST_1
  EXPECT_FALSE(Ask(responder, monlist).sent);
  EXPECT_FALSE(Ask(responder, {0x26, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})
                   .sent);  // ntpq rv
  std::vector<uint8_t> server_reply = Request();
  server_reply[0] = 0x24;  // mode 4
  EXPECT_FALSE(Ask(responder, server_reply).sent);
  EXPECT_FALSE(Ask(responder, std::vector<uint8_t>(47, 0x23)).sent);  // short
  EXPECT_EQ(responder.counters().private_dropped, 1u);
  EXPECT_EQ(responder.counters().control_dropped, 1u);
  EXPECT_EQ(responder.counters().not_client_mode, 1u);
  EXPECT_EQ(responder.counters().malformed, 1u);
  EXPECT_EQ(responder.counters().answered, 0u);
}

TEST(ResponderTest, MostSpecificRestrictWins) {
  // The seed server config's shape: default refused, loopback and one subnet
  // allowed.
  Responder responder(Rules({{"0.0.0.0/0", kNoServe | kNoQuery},
                             {"127.0.0.1", 0},
                             {"192.168.0.0/16", kNoModify | kNoTrap},
                             {"192.168.9.0/24", kIgnore},
                             {"::/0", kIgnore}}),
                      {}, nullptr);
  EXPECT_FALSE(Ask(responder, Request(), IpAddress::V4(203, 0, 113, 1)).sent);
  EXPECT_TRUE(Ask(responder, Request(), IpAddress::V4(127, 0, 0, 1)).sent);
  EXPECT_TRUE(Ask(responder, Request(), IpAddress::V4(192, 168, 242, 52)).sent);
  EXPECT_FALSE(Ask(responder, Request(), IpAddress::V4(192, 168, 9, 9)).sent);
  EXPECT_FALSE(
      Ask(responder, Request(), *IpAddress::Parse("2001:db8::1")).sent);
  EXPECT_EQ(responder.counters().refused_noserve, 1u);
  EXPECT_EQ(responder.counters().ignored, 2u);
  EXPECT_EQ(responder.counters().answered, 2u);
}

TEST(ResponderTest, LimitedDropsBeyondTheBurst) {
  Responder responder(Rules({{"0.0.0.0/0", kLimited}}), {}, nullptr);
  // 16 requests 2 s apart. The bucket holds 8 tokens, refilled one per 2^3 s
  // (0.25 per 2 s); the first request leaves 7. Before request k >= 2 it
  // holds 7.25 - 0.75 (k - 2): >= 1 up to k = 10. Then 0.25, 0.5, 0.75
  // (dropped: 11, 12), 1.0 (13 answered), 0.25.. (14-16 dropped).
  int answered = 0;
  for (int i = 0; i < 16; ++i)
    answered += Ask(responder, Request(), kClient, 2.0 * i).sent;
  EXPECT_EQ(answered, 11);
  EXPECT_EQ(responder.counters().rate_limited, 5u);
  // Closer than `discard minimum` (2 s) is over the limit whatever the bucket
  // holds.
  Responder fresh(Rules({{"0.0.0.0/0", kLimited}}), {}, nullptr);
  EXPECT_TRUE(Ask(fresh, Request(), kClient, 100).sent);
  EXPECT_FALSE(Ask(fresh, Request(), kClient, 101).sent);
  // Another client has its own bucket.
  EXPECT_TRUE(Ask(fresh, Request(), IpAddress::V4(192, 0, 2, 8), 101).sent);
}

TEST(ResponderTest, KodAnswersRateOncePerInterval) {
  Responder responder(Rules({{"0.0.0.0/0", kLimited | kKod}}), {}, nullptr);
  EXPECT_TRUE(Ask(responder, Request(), kClient, 0).sent);
  const Reply kod = Ask(responder, Request(), kClient, 0.5);  // too soon
  ASSERT_TRUE(kod.sent);
  EXPECT_EQ(kod.packet.stratum, 0);
  EXPECT_EQ(kod.packet.kiss_code(), KissCode::kRate);
  EXPECT_EQ(kod.packet.origin.raw(),
            0x5edecbbedd997bd1ULL);  // so the client believes it
  // More within 2^3 s get nothing: KoDs are rate-limited too.
  EXPECT_FALSE(Ask(responder, Request(), kClient, 1.0).sent);
  EXPECT_EQ(responder.counters().kod_sent, 1u);
  EXPECT_EQ(responder.counters().rate_limited, 1u);
}

TEST(ResponderTest, NoserveKodAnswersDenyOncePerInterval) {
  // `restrict 10.9.0.0 mask 255.255.0.0 noserve kod`: the refused client is
  // told so with a KoD DENY (RFC 5905 §7.4) instead of silence, so that it
  // stops asking and can say why. A server that dropped silently (the old
  // behaviour) fails the first ASSERT; one that kissed every request fails the
  // second-request expectations.
  Responder responder(Rules({{"10.9.0.0/16", kNoServe | kKod}}), {}, nullptr);
  const IpAddress refused = IpAddress::V4(10, 9, 1, 4);
  const std::vector<uint8_t> request = Request(0x0123456789abcdefULL);
  const Reply deny = Ask(responder, request, refused, 0);
  ASSERT_TRUE(deny.sent);
  EXPECT_EQ(deny.bytes.size(), kHeaderSize);  // never larger than the request
  EXPECT_EQ(deny.packet.mode, Mode::kServer);
  EXPECT_EQ(deny.packet.stratum, 0);
  EXPECT_EQ(deny.packet.leap, Leap::kUnsynchronized);
  EXPECT_EQ(deny.packet.kiss_code(), KissCode::kDeny);
  EXPECT_EQ(deny.packet.reference_id.AsCode(), "DENY");
  // The origin echoes the request, so the client believes the kiss (§8).
  EXPECT_EQ(deny.packet.origin.raw(), 0x0123456789abcdefULL);
  // Nothing of the server's time or state leaks to a refused client.
  EXPECT_EQ(deny.packet.reference.raw(), 0u);
  EXPECT_EQ(deny.packet.root_delay.raw(), 0u);
  // Rate-limited like the RATE kisses: at most one per client per 2^3 s, so a
  // flood with a spoofed refused source gets one small packet per 8 s.
  int sent = 0;
  for (int i = 1; i <= 70; ++i)
    sent += Ask(responder, request, refused, 0.1 * i).sent;
  EXPECT_EQ(sent, 0);
  EXPECT_TRUE(Ask(responder, request, refused, 8.0).sent);
  EXPECT_FALSE(Ask(responder, request, refused, 15.9).sent);
  EXPECT_TRUE(Ask(responder, request, refused, 16.0).sent);
  // Every client has its own interval.
  EXPECT_TRUE(Ask(responder, request, IpAddress::V4(10, 9, 1, 5), 16.0).sent);
  EXPECT_EQ(responder.counters().kod_deny_sent, 4u);
  EXPECT_EQ(responder.counters().refused_noserve, 71u);
  EXPECT_EQ(responder.counters().kod_sent, 0u);
  EXPECT_EQ(responder.counters().answered, 0u);
  // Clients outside the rule are answered with the time as before.
  const Reply time = Ask(responder, request, kClient, 16.0);
  ASSERT_TRUE(time.sent);
  EXPECT_EQ(time.packet.stratum, 3);
  EXPECT_EQ(responder.counters().answered, 1u);
}

TEST(ResponderTest, NoserveWithoutKodAndIgnoreStaySilent) {
  // `noserve` alone and `ignore` (even with `kod`) drop without a word, as
  // ntpd does; so does `notrust kod` for an unauthenticated request (not a
  // refusal of the client, only of unsigned requests).
  Responder responder(Rules({{"10.1.0.0/16", kNoServe},
                             {"10.2.0.0/16", kIgnore | kKod},
                             {"10.3.0.0/16", kNoTrust | kKod}}),
                      {}, nullptr);
  EXPECT_FALSE(Ask(responder, Request(), IpAddress::V4(10, 1, 0, 1), 0).sent);
  EXPECT_FALSE(Ask(responder, Request(), IpAddress::V4(10, 2, 0, 1), 0).sent);
  EXPECT_FALSE(Ask(responder, Request(), IpAddress::V4(10, 3, 0, 1), 0).sent);
  EXPECT_EQ(responder.counters().refused_noserve, 2u);
  EXPECT_EQ(responder.counters().ignored, 1u);
  EXPECT_EQ(responder.counters().kod_deny_sent, 0u);
}

std::string ReadTestData(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::ifstream in(absl::StrCat(srcdir ? srcdir : ".",
                                "/ntpfleet/tests/agent/ntp/testdata/", name));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<uint8_t> Fixture(const std::string& name) {
  std::string hex;
  std::istringstream in(ReadTestData(name + ".hex"));
  for (std::string line; std::getline(in, line);) {
    if (absl::StartsWith(line, "#")) continue;
    for (char c : line) {
      if (absl::ascii_isxdigit(c)) hex.push_back(c);
    }
  }
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(
        static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

KeyStore TestKeys(bool trust) {
  KeyStore keys = *KeyStore::Parse(ReadTestData("ntp.keys"), "ntp.keys");
  if (trust) {
    keys.Trust(1);
    keys.Trust(2);
  }
  return keys;
}

TEST(ResponderTest, SignsRepliesToRealChronyRequestsWithTheirKey) {
  const KeyStore keys = TestKeys(true);
  Responder responder(AccessList(), {}, &keys);
  for (const char* name : {"chronyd_md5_request", "chronyd_sha1_request"}) {
    const std::vector<uint8_t> request = Fixture(name);
    const Reply r = Ask(responder, request);
    ASSERT_TRUE(r.sent) << name;
    EXPECT_EQ(r.bytes.size(), request.size()) << name;
    ASSERT_TRUE(r.packet.mac.has_value());
    EXPECT_EQ(r.packet.mac->key_id, DecodePacket(request)->mac->key_id);
    EXPECT_EQ(VerifyMac(keys, r.packet, r.bytes), AuthResult::kOk) << name;
  }
}

TEST(ResponderTest, UnknownKeyGetsCryptoNakAndBadMacIsDropped) {
  const KeyStore untrusted = TestKeys(false);
  Responder responder(AccessList(), {}, &untrusted);
  const Reply nak = Ask(responder, Fixture("chronyd_md5_request"));
  ASSERT_TRUE(nak.sent);
  ASSERT_TRUE(nak.packet.mac.has_value());
  EXPECT_TRUE(nak.packet.mac->is_crypto_nak());
  EXPECT_EQ(nak.bytes.size(), 52u);
  EXPECT_EQ(responder.counters().crypto_nak_sent, 1u);

  const KeyStore keys = TestKeys(true);
  Responder strict(AccessList(), {}, &keys);
  std::vector<uint8_t> forged = Fixture("chronyd_md5_request");
  forged.back() ^= 0x80;
  EXPECT_FALSE(Ask(strict, forged).sent);
  EXPECT_EQ(strict.counters().auth_failed, 1u);
}

TEST(ResponderTest, NotrustServesOnlyAuthenticatedClients) {
  const KeyStore keys = TestKeys(true);
  Responder responder(Rules({{"0.0.0.0/0", kNoTrust}}), {}, &keys);
  EXPECT_FALSE(Ask(responder, Request()).sent);
  EXPECT_TRUE(Ask(responder, Fixture("ntpsec_sha1_request")).sent);
}

TEST(ResponderTest, DenyToASignedRequestIsBareEvenForAnUnknownKey) {
  // A refused client that signs its requests gets the same bare 48-octet
  // DENY: no MAC (the kiss carries no time to protect), and no crypto-NAK
  // for a key the server does not know (it would tell a refused client
  // which keys exist).
  const KeyStore trusted = TestKeys(true);
  const KeyStore untrusted = TestKeys(false);
  for (const KeyStore* keys : {&trusted, &untrusted}) {
    Responder responder(Rules({{"0.0.0.0/0", kNoServe | kKod}}), {}, keys);
    const Reply deny = Ask(responder, Fixture("chronyd_md5_request"));
    ASSERT_TRUE(deny.sent);
    EXPECT_EQ(deny.bytes.size(), kHeaderSize);
    EXPECT_FALSE(deny.packet.mac.has_value());
    EXPECT_EQ(deny.packet.kiss_code(), KissCode::kDeny);
    EXPECT_EQ(responder.counters().crypto_nak_sent, 0u);
    EXPECT_EQ(responder.counters().kod_deny_sent, 1u);
  }
}

TEST(AccessListTest, ParsesAddressesAndMasks) {
  EXPECT_EQ(IpAddress::Parse("192.168.242.51")->ToString(), "192.168.242.51");
  EXPECT_EQ(*IpAddress::Parse("::ffff:10.0.0.1"), IpAddress::V4(10, 0, 0, 1));
  EXPECT_TRUE(IpAddress::Parse("::1")->v6);
  EXPECT_FALSE(IpAddress::Parse("ntp1.aliyun.com").ok());
  size_t prefix = 0;
  EXPECT_TRUE(
      AccessList::MaskToPrefix(*IpAddress::Parse("255.255.255.0"), &prefix));
  EXPECT_EQ(prefix, 24u);
  EXPECT_FALSE(
      AccessList::MaskToPrefix(*IpAddress::Parse("255.0.255.0"), &prefix));
  // No rule: no restrictions; a v4 default does not apply to v6 clients.
  AccessList list = Rules({{"0.0.0.0/0", kIgnore}});
  EXPECT_EQ(list.Lookup(*IpAddress::Parse("::1")), 0u);
  EXPECT_EQ(list.Lookup(IpAddress::V4(1, 2, 3, 4)),
            static_cast<uint32_t>(kIgnore));
}

}  // namespace
}  // namespace ntpfleet::ntp
