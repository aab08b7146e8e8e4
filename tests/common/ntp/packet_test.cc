#include "common/ntp/packet.h"

#include <cstdint>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/ntp/timestamp.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::ntp {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// A server reply written out by hand, octet by octet (RFC 5905 §7.3, Figure 8).
std::vector<uint8_t> HandMadeServerReply() {
  return {
      0x24,                    // LI 0, VN 4, mode 4
      0x02,                    // stratum 2
      0x06,                    // poll 2^6 s
      0xec,                    // precision 2^-20 s
      0x00, 0x00, 0x01, 0x80,  // root delay 0x0180 / 65536 s
      0x00, 0x00, 0x00, 0x40,  // root dispersion 0x40 / 65536 s
      0xc0, 0xa8, 0x01, 0x02,  // refid 192.168.1.2
      0xe9, 0x0d, 0x7a, 0x00, 0x11, 0x22, 0x33, 0x44,  // reference
      0xe9, 0x0d, 0x7a, 0x10, 0x80, 0x00, 0x00, 0x00,  // origin
      0xe9, 0x0d, 0x7a, 0x10, 0x80, 0x10, 0x00, 0x00,  // receive
      0xe9, 0x0d, 0x7a, 0x10, 0x80, 0x20, 0x00, 0x01,  // transmit
  };
}

NtpPacket FullPacket() {
  NtpPacket p;
  p.leap = Leap::kInsertSecond;
  p.version = 4;
  p.mode = Mode::kServer;
  p.stratum = 3;
  p.poll = 10;
  p.precision = -24;
  p.root_delay = NtpShort::FromRaw(0x00012345);
  p.root_dispersion = NtpShort::FromRaw(0x00000abc);
  p.reference_id = RefId::FromIpv4(127, 0, 0, 1);
  p.reference = NtpTimestamp::FromRaw(0x0102030405060708);
  p.origin = NtpTimestamp::FromRaw(0x1112131415161718);
  p.receive = NtpTimestamp::FromRaw(0x2122232425262728);
  p.transmit = NtpTimestamp::FromRaw(0xf1f2f3f4f5f6f7f8);
  p.extensions.push_back({0x0104, std::vector<uint8_t>(12, 0xaa)});
  p.extensions.push_back({0x0204, std::vector<uint8_t>(32, 0xbb)});
  p.mac = Mac{42, std::vector<uint8_t>(20, 0xcc)};
  return p;
}

TEST(PacketTest, DecodesHandMadeReplyFieldByField) {
  const std::vector<uint8_t> bytes = HandMadeServerReply();
  absl::StatusOr<NtpPacket> p = DecodePacket(bytes);
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->leap, Leap::kNone);
  EXPECT_EQ(p->version, 4);
  EXPECT_EQ(p->mode, Mode::kServer);
  EXPECT_EQ(p->stratum, 2);
  EXPECT_EQ(p->poll, 6);
  EXPECT_EQ(p->precision, -20);
  EXPECT_EQ(p->root_delay.raw(), 0x180u);
  EXPECT_EQ(p->root_delay.ToDuration(),
            absl::Microseconds(5859) + absl::Nanoseconds(375));
  EXPECT_EQ(p->root_dispersion.ToDuration(),
            absl::Microseconds(976) + absl::Nanoseconds(562.5));
  EXPECT_EQ(p->reference_id.AsIpv4(), "192.168.1.2");
  EXPECT_EQ(p->reference_id.ToString(p->stratum), "192.168.1.2");
  EXPECT_EQ(p->reference.raw(), 0xe90d7a0011223344u);
  EXPECT_EQ(p->origin.seconds(), 0xe90d7a10u);
  EXPECT_EQ(p->origin.fraction(), 0x80000000u);
  EXPECT_EQ(NtpTimestamp::Diff(p->receive, p->origin),
            absl::Microseconds(244) +
                absl::Nanoseconds(140.625));  // 0x100000 * 2^-32 s
  EXPECT_EQ(p->transmit.raw(), 0xe90d7a1080200001u);
  EXPECT_TRUE(p->extensions.empty());
  EXPECT_FALSE(p->mac.has_value());
  EXPECT_FALSE(p->IsKissOfDeath());
  EXPECT_EQ(p->authenticated_size(), 48u);
}

TEST(PacketTest, EncodesHandMadeReplyToTheSameBytes) {
  const std::vector<uint8_t> bytes = HandMadeServerReply();
  absl::StatusOr<NtpPacket> p = DecodePacket(bytes);
  ASSERT_THAT(p, IsOk());
  absl::StatusOr<std::vector<uint8_t>> again = EncodePacket(*p);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(*again, bytes);
}

TEST(PacketTest, RoundTripsEveryField) {
  const NtpPacket p = FullPacket();
  absl::StatusOr<std::vector<uint8_t>> bytes = EncodePacket(p);
  ASSERT_THAT(bytes, IsOk());
  ASSERT_THAT(*bytes, SizeIs(48 + 16 + 36 + 24));
  EXPECT_EQ((*bytes)[0], 0x64);  // LI 1, VN 4, mode 4
  // First extension field header: type 0x0104, length 16.
  EXPECT_THAT(absl::MakeConstSpan(*bytes).subspan(48, 4),
              ElementsAre(0x01, 0x04, 0x00, 0x10));
  // MAC key id 42.
  EXPECT_THAT(absl::MakeConstSpan(*bytes).subspan(100, 4),
              ElementsAre(0, 0, 0, 42));
  absl::StatusOr<NtpPacket> back = DecodePacket(*bytes);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(*back, p);
  EXPECT_EQ(back->authenticated_size(), 100u);
}

TEST(PacketTest, RoundTripsEveryModeLeapAndVersion) {
  for (int version = 1; version <= 4; ++version) {
    for (int mode = 1; mode <= 5; ++mode) {
      for (int leap = 0; leap <= 3; ++leap) {
        NtpPacket p;
        p.version = static_cast<uint8_t>(version);
        p.mode = static_cast<Mode>(mode);
        p.leap = static_cast<Leap>(leap);
        p.poll = -3;
        p.precision = -128;
        p.stratum = 255;
        absl::StatusOr<std::vector<uint8_t>> bytes = EncodePacket(p);
        ASSERT_THAT(bytes, IsOk());
        absl::StatusOr<NtpPacket> back = DecodePacket(*bytes);
        ASSERT_THAT(back, IsOk());
        EXPECT_EQ(*back, p)
            << "version " << version << " mode " << mode << " leap " << leap;
      }
    }
  }
}

TEST(PacketTest, RecognisesMacsByLength) {
  std::vector<uint8_t> bytes = HandMadeServerReply();
  bytes.insert(bytes.end(), {0, 0, 0, 7});
  bytes.insert(bytes.end(), 16, 0x5a);  // MD5 or AES-CMAC
  absl::StatusOr<NtpPacket> md5 = DecodePacket(bytes);
  ASSERT_THAT(md5, IsOk());
  ASSERT_TRUE(md5->mac.has_value());
  EXPECT_EQ(md5->mac->key_id, 7u);
  EXPECT_THAT(md5->mac->digest, SizeIs(16));
  EXPECT_EQ(md5->authenticated_size(), 48u);

  bytes.insert(bytes.end(), 4, 0x5b);  // SHA-1: 20-octet digest
  absl::StatusOr<NtpPacket> sha1 = DecodePacket(bytes);
  ASSERT_THAT(sha1, IsOk());
  EXPECT_THAT(sha1->mac->digest, SizeIs(20));
}

TEST(PacketTest, RecognisesCryptoNak) {
  std::vector<uint8_t> bytes = HandMadeServerReply();
  bytes.insert(bytes.end(), {0, 0, 0, 0});
  absl::StatusOr<NtpPacket> p = DecodePacket(bytes);
  ASSERT_THAT(p, IsOk());
  ASSERT_TRUE(p->mac.has_value());
  EXPECT_TRUE(p->mac->is_crypto_nak());
  EXPECT_EQ(p->mac->key_id, 0u);
}

TEST(PacketTest, RecognisesKissCodes) {
  std::vector<uint8_t> bytes = HandMadeServerReply();
  bytes[1] = 0;  // stratum 0
  const struct {
    const char* code;
    KissCode kiss;
  } cases[] = {{"RATE", KissCode::kRate},
               {"DENY", KissCode::kDeny},
               {"RSTR", KissCode::kRstr},
               {"INIT", KissCode::kOther}};
  for (const auto& c : cases) {
    const RefId id = RefId::FromCode(c.code);
    bytes[12] = static_cast<uint8_t>(id.raw() >> 24);
    bytes[13] = static_cast<uint8_t>(id.raw() >> 16);
    bytes[14] = static_cast<uint8_t>(id.raw() >> 8);
    bytes[15] = static_cast<uint8_t>(id.raw());
    absl::StatusOr<NtpPacket> p = DecodePacket(bytes);
    ASSERT_THAT(p, IsOk());
    EXPECT_TRUE(p->IsKissOfDeath());
    EXPECT_EQ(p->kiss_code(), c.kiss) << c.code;
    EXPECT_EQ(p->reference_id.ToString(0), std::string(".") + c.code + ".");
  }
  // A client request with stratum 0 is not a kiss.
  bytes[0] = 0x23;
  EXPECT_FALSE(DecodePacket(bytes)->IsKissOfDeath());
}

TEST(RefIdTest, CodesAndAddresses) {
  EXPECT_EQ(RefId::FromCode("GPS").raw(), 0x47505300u);
  EXPECT_EQ(RefId::FromCode("GPS").AsCode(), "GPS");
  EXPECT_EQ(RefId::FromCode("LOCL").ToString(1), ".LOCL.");
  EXPECT_EQ(RefId::FromCode("INIT").ToString(16), ".INIT.");
  EXPECT_EQ(RefId::FromIpv4(127, 127, 1, 1).ToString(10), "127.127.1.1");
  EXPECT_EQ(RefId::FromRaw(0x01020304).AsCode(), "????");
}

TEST(PacketTest, ClassifiesControlAndPrivateModes) {
  EXPECT_EQ(*ClassifyPacket(std::vector<uint8_t>{0x16}),
            PacketKind::kControl);  // v2 mode 6
  EXPECT_EQ(*ClassifyPacket(std::vector<uint8_t>{0x17, 0, 3, 42}),
            PacketKind::kPrivate);
  EXPECT_EQ(*ClassifyPacket(std::vector<uint8_t>{0x23}), PacketKind::kTime);
  std::vector<uint8_t> monlist(48, 0);
  monlist[0] = 0x17;
  EXPECT_THAT(DecodePacket(monlist),
              StatusIs(kInvalid, HasSubstr("mode 7 (private)")));
}

TEST(PacketTest, DecodesControlHeader) {
  // ntpq "rv 0": read variables, sequence 1, no data.
  const std::vector<uint8_t> rv = {0x26, 0x02, 0x00, 0x01, 0, 0,
                                   0,    0,    0,    0,    0, 0};
  absl::StatusOr<ControlHeader> h = DecodeControlHeader(rv);
  ASSERT_THAT(h, IsOk());
  EXPECT_EQ(h->version, 4);
  EXPECT_EQ(h->opcode, 2);
  EXPECT_EQ(h->sequence, 1);
  EXPECT_FALSE(h->response);
  EXPECT_EQ(h->count, 0);
  std::vector<uint8_t> lying = rv;
  lying[11] = 200;  // claims 200 data octets
  EXPECT_THAT(DecodeControlHeader(lying),
              StatusIs(kInvalid, HasSubstr("claims 200")));
  EXPECT_THAT(DecodeControlHeader(std::vector<uint8_t>{0x26, 2}),
              StatusIs(kInvalid, HasSubstr("short control message")));
}

TEST(PacketTest, RejectsMalformedInputWithClearErrors) {
  const std::vector<uint8_t> good = HandMadeServerReply();
  EXPECT_THAT(DecodePacket({}),
              StatusIs(kInvalid, HasSubstr("empty datagram")));
  EXPECT_THAT(DecodePacket(absl::MakeConstSpan(good).first(47)),
              StatusIs(kInvalid, HasSubstr("short packet: 47 octets")));

  std::vector<uint8_t> v0 = good;
  v0[0] = 0x04;  // version 0
  EXPECT_THAT(DecodePacket(v0),
              StatusIs(kInvalid, HasSubstr("unknown NTP version 0")));
  std::vector<uint8_t> v5 = good;
  v5[0] = 0x2c;  // version 5
  EXPECT_THAT(DecodePacket(v5),
              StatusIs(kInvalid, HasSubstr("unknown NTP version 5")));
  std::vector<uint8_t> mode0 = good;
  mode0[0] = 0x20;
  EXPECT_THAT(DecodePacket(mode0),
              StatusIs(kInvalid, HasSubstr("mode 0 is reserved")));

  // Extension field whose length overruns the datagram.
  std::vector<uint8_t> overrun = good;
  overrun.insert(overrun.end(), {0x01, 0x04, 0x01, 0x00});  // length 256
  overrun.insert(overrun.end(), 28, 0);
  EXPECT_THAT(
      DecodePacket(overrun),
      StatusIs(kInvalid,
               HasSubstr("length 256 overruns the packet (32 octets left)")));
  // Extension field length below the minimum (would loop forever if accepted as
  // 0).
  std::vector<uint8_t> zero_len = good;
  zero_len.insert(zero_len.end(), {0x01, 0x04, 0x00, 0x00});
  zero_len.insert(zero_len.end(), 28, 0);
  EXPECT_THAT(DecodePacket(zero_len),
              StatusIs(kInvalid, HasSubstr("has length 0")));
  std::vector<uint8_t> odd_len = good;
  odd_len.insert(odd_len.end(), {0x01, 0x04, 0x00, 0x11});
  odd_len.insert(odd_len.end(), 28, 0);
  EXPECT_THAT(DecodePacket(odd_len),
              StatusIs(kInvalid, HasSubstr("has length 17")));

  // Truncated MAC: key id + 8 octets.
  std::vector<uint8_t> truncated_mac = good;
  truncated_mac.insert(truncated_mac.end(), 12, 1);
  EXPECT_THAT(DecodePacket(truncated_mac),
              StatusIs(kInvalid, HasSubstr("truncated MAC")));
  // NTPv3 with trailing octets that are not a MAC.
  std::vector<uint8_t> v3 = good;
  v3[0] = 0x1c;
  v3.insert(v3.end(), 32, 0);
  EXPECT_THAT(DecodePacket(v3),
              StatusIs(kInvalid, HasSubstr("NTPv3 packet has 32 octets")));
}

TEST(PacketTest, EncoderRefusesWhatCannotBeDecodedBack) {
  NtpPacket short_last = FullPacket();
  short_last.mac.reset();
  short_last.extensions
      .pop_back();  // last is now 16 octets, reads as a MAC without one
  EXPECT_THAT(EncodePacket(short_last),
              StatusIs(kInvalid, HasSubstr("at least 28 octets")));

  NtpPacket nak_after_ef = FullPacket();
  nak_after_ef.mac->digest.clear();
  EXPECT_THAT(EncodePacket(nak_after_ef),
              StatusIs(kInvalid, HasSubstr("crypto-NAK")));

  NtpPacket odd_digest = FullPacket();
  odd_digest.mac->digest.resize(10);
  EXPECT_THAT(EncodePacket(odd_digest),
              StatusIs(kInvalid, HasSubstr("digest of 10")));

  NtpPacket ef_v3 = FullPacket();
  ef_v3.version = 3;
  EXPECT_THAT(EncodePacket(ef_v3), StatusIs(kInvalid, HasSubstr("need NTPv4")));

  NtpPacket control;
  control.mode = Mode::kControl;
  EXPECT_THAT(EncodePacket(control),
              StatusIs(kInvalid, HasSubstr("not a time-transfer")));

  uint8_t small[47];
  EXPECT_THAT(EncodePacket(NtpPacket{}, absl::MakeSpan(small)),
              StatusIs(kInvalid, HasSubstr("buffer of 47 octets")));
}

// Fixed-seed randomised invariants (as chrony's unit tests do): random
// datagrams never crash the decoder, and whatever decodes and re-encodes gives
// back the same octets.
TEST(PacketTest, RandomDatagramsDecodeSafelyAndRoundTrip) {
  std::mt19937 rng(123);
  std::uniform_int_distribution<int> octet(0, 255);
  std::uniform_int_distribution<int> length(0, 160);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> bytes(length(rng));
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(octet(rng));
    // Bias towards plausible first octets and extension-field lengths so deep
    // paths are hit.
    if (!bytes.empty() && i % 2 == 0)
      bytes[0] = static_cast<uint8_t>(0x20 | (1 + i % 5));
    if (bytes.size() > 52 && i % 4 == 0) {
      bytes[50] = 0;
      bytes[51] = static_cast<uint8_t>(bytes.size() - 48);
    }
    absl::StatusOr<NtpPacket> p = DecodePacket(bytes);
    if (!p.ok()) {
      EXPECT_EQ(p.status().code(), kInvalid);
      continue;
    }
    ++decoded;
    EXPECT_EQ(p->wire_size(), bytes.size());
    absl::StatusOr<std::vector<uint8_t>> again = EncodePacket(*p);
    if (again.ok()) {
      EXPECT_EQ(*again, bytes);
    }
  }
  EXPECT_GT(decoded,
            1000);  // the loop really reached the decoder's success paths
}

}  // namespace
}  // namespace ntpfleet::ntp
