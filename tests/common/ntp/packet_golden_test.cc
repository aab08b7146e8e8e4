// Golden tests: real packets captured from chronyd 4.3 and NTPsec 1.2.2 (Debian
// 12), decoded field by field against values computed independently
// (tests/agent/ntp/testdata/README.md says how they were captured and decoded;
// testdata/expected.txt holds the values).
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/ntp/packet.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet::ntp {
namespace {

std::string TestDataPath(absl::string_view name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".",
                      "/ntpfleet/tests/agent/ntp/testdata/", name);
}

// A fixture file: '#' comment lines, then hex octets split over lines.
std::vector<uint8_t> ReadHexFixture(absl::string_view name) {
  std::ifstream in(TestDataPath(absl::StrCat(name, ".hex")));
  EXPECT_TRUE(in.good()) << "cannot open " << name;
  std::string hex;
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "#"))
      continue;
    for (char c : line) {
      if (absl::ascii_isxdigit(c)) hex.push_back(c);
    }
  }
  EXPECT_EQ(hex.size() % 2, 0u) << name;
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(
        static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

// fixture -> field -> expected value.
std::map<std::string, std::map<std::string, std::string>> ReadExpected() {
  std::map<std::string, std::map<std::string, std::string>> out;
  std::ifstream in(TestDataPath("expected.txt"));
  EXPECT_TRUE(in.good()) << "cannot open expected.txt";
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::pair<std::string, std::string> kv =
        absl::StrSplit(line, absl::MaxSplits('=', 1));
    std::pair<std::string, std::string> name =
        absl::StrSplit(kv.first, absl::MaxSplits('.', 1));
    out[name.first][name.second] = kv.second;
  }
  return out;
}

std::string Hex32(uint32_t v) { return absl::StrFormat("0x%08x", v); }
std::string Hex64(uint64_t v) { return absl::StrFormat("0x%016x", v); }
std::string HexBytes(const std::vector<uint8_t>& b) {
  std::string s = "0x";
  for (uint8_t c : b) absl::StrAppendFormat(&s, "%02x", c);
  return s;
}

// MAC algorithm and validity need the keys and OpenSSL: verified by the
// authentication tests.
const std::set<std::string> kCheckedElsewhere = {"mac_algorithm", "mac_valid"};

// The decoded value of `field` as expected.txt writes it, or nullopt for an
// unknown field.
std::optional<std::string> TimeField(const NtpPacket& p, size_t length,
                                     const std::string& field) {
  if (field == "length") return absl::StrCat(length);
  if (field == "leap") return absl::StrCat(static_cast<int>(p.leap));
  if (field == "version") return absl::StrCat(p.version);
  if (field == "mode") return absl::StrCat(static_cast<int>(p.mode));
  if (field == "stratum") return absl::StrCat(p.stratum);
  if (field == "poll") return absl::StrCat(p.poll);
  if (field == "precision") return absl::StrCat(p.precision);
  if (field == "root_delay_hex") return Hex32(p.root_delay.raw());
  if (field == "root_dispersion_hex") return Hex32(p.root_dispersion.raw());
  if (field == "refid_hex") return Hex32(p.reference_id.raw());
  if (field == "refid_text") {
    return p.stratum <= 1 ? p.reference_id.AsCode() : p.reference_id.AsIpv4();
  }
  if (field == "reference") return Hex64(p.reference.raw());
  if (field == "origin") return Hex64(p.origin.raw());
  if (field == "receive") return Hex64(p.receive.raw());
  if (field == "transmit") return Hex64(p.transmit.raw());
  if (field == "trailing_len") return absl::StrCat(length - kHeaderSize);
  if (field == "ext_count") return absl::StrCat(p.extensions.size());
  if (field == "has_mac") return absl::StrCat(p.mac.has_value() ? 1 : 0);
  if (field == "mac_key_id" && p.mac) return absl::StrCat(p.mac->key_id);
  if (field == "mac_digest_len" && p.mac)
    return absl::StrCat(p.mac->digest.size());
  if (field == "mac_digest" && p.mac) return HexBytes(p.mac->digest);
  return std::nullopt;
}

std::optional<std::string> ControlField(const ControlHeader& h, size_t length,
                                        const std::string& field) {
  if (field == "length") return absl::StrCat(length);
  if (field == "leap") return absl::StrCat(static_cast<int>(h.leap));
  if (field == "version") return absl::StrCat(h.version);
  if (field == "mode") return "6";
  if (field == "response") return absl::StrCat(h.response ? 1 : 0);
  if (field == "error") return absl::StrCat(h.error ? 1 : 0);
  if (field == "more") return absl::StrCat(h.more ? 1 : 0);
  if (field == "opcode") return absl::StrCat(h.opcode);
  if (field == "sequence") return absl::StrCat(h.sequence);
  if (field == "status") return absl::StrFormat("0x%04x", h.status);
  if (field == "association_id") return absl::StrCat(h.association_id);
  if (field == "offset") return absl::StrCat(h.offset);
  if (field == "count") return absl::StrCat(h.count);
  if (field == "data_len") return absl::StrCat(length - kControlHeaderSize);
  return std::nullopt;
}

class GoldenPacketTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenPacketTest, DecodesEveryFieldAsCaptured) {
  const std::string name = GetParam();
  static const auto* const expected =
      new std::map<std::string, std::map<std::string, std::string>>(
          ReadExpected());
  ASSERT_TRUE(expected->count(name)) << name << " missing from expected.txt";
  const std::map<std::string, std::string>& fields = expected->at(name);
  const std::vector<uint8_t> bytes = ReadHexFixture(name);
  ASSERT_FALSE(bytes.empty());

  absl::StatusOr<PacketKind> kind = ClassifyPacket(bytes);
  ASSERT_TRUE(kind.ok()) << kind.status();
  int checked = 0;
  if (*kind == PacketKind::kControl) {
    absl::StatusOr<ControlHeader> h = DecodeControlHeader(bytes);
    ASSERT_TRUE(h.ok()) << h.status();
    for (const auto& [field, want] : fields) {
      std::optional<std::string> got = ControlField(*h, bytes.size(), field);
      ASSERT_TRUE(got.has_value())
          << name << ": no decoder for field " << field;
      EXPECT_EQ(*got, want) << name << "." << field;
      ++checked;
    }
  } else {
    absl::StatusOr<NtpPacket> p = DecodePacket(bytes);
    ASSERT_TRUE(p.ok()) << p.status();
    for (const auto& [field, want] : fields) {
      if (kCheckedElsewhere.count(field)) continue;
      if (absl::EndsWith(field, "_seconds")) {
        // Exact decimal of the 16.16 field; absl::Duration resolves 1/4 ns.
        double want_s = 0;
        ASSERT_TRUE(absl::SimpleAtod(want, &want_s)) << want;
        const NtpShort v =
            field == "root_delay_seconds" ? p->root_delay : p->root_dispersion;
        EXPECT_NEAR(absl::ToDoubleSeconds(v.ToDuration()), want_s, 1e-9)
            << name << "." << field;
        ++checked;
        continue;
      }
      std::optional<std::string> got = TimeField(*p, bytes.size(), field);
      ASSERT_TRUE(got.has_value())
          << name << ": no decoder for field " << field;
      EXPECT_EQ(*got, want) << name << "." << field;
      ++checked;
    }
    // A decoded real packet re-encodes to the captured octets.
    absl::StatusOr<std::vector<uint8_t>> again = EncodePacket(*p);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, bytes);
  }
  EXPECT_GE(checked, 12) << name << ": too few fields checked";
}

TEST(GoldenPacketPairsTest, ResponsesEchoTheirRequestsTransmitTimestamp) {
  for (const char* prefix :
       {"chronyd_server", "chronyd_md5", "chronyd_sha1", "chronyd_synced",
        "ntpsec_server", "ntpsec_md5", "ntpsec_sha1"}) {
    absl::StatusOr<NtpPacket> req =
        DecodePacket(ReadHexFixture(absl::StrCat(prefix, "_request")));
    absl::StatusOr<NtpPacket> resp =
        DecodePacket(ReadHexFixture(absl::StrCat(prefix, "_response")));
    ASSERT_TRUE(req.ok() && resp.ok()) << prefix;
    EXPECT_EQ(req->mode, Mode::kClient) << prefix;
    EXPECT_EQ(resp->mode, Mode::kServer) << prefix;
    EXPECT_EQ(resp->origin, req->transmit)
        << prefix;  // RFC 5905 §8 origin check
    // Both servers sign the response with the key the request used.
    EXPECT_EQ(resp->mac.has_value(), req->mac.has_value()) << prefix;
    if (req->mac) {
      EXPECT_EQ(resp->mac->key_id, req->mac->key_id) << prefix;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    RealPackets, GoldenPacketTest,
    ::testing::Values("chronyd_client_request", "chronyd_server_request",
                      "chronyd_server_response", "chronyd_md5_request",
                      "chronyd_md5_response", "chronyd_sha1_request",
                      "chronyd_sha1_response", "chronyd_synced_request",
                      "chronyd_synced_response", "ntpsec_server_request",
                      "ntpsec_server_response", "ntpsec_md5_request",
                      "ntpsec_md5_response", "ntpsec_sha1_request",
                      "ntpsec_sha1_response", "ntpdig_client_request",
                      "ntpdig_md5_request", "ntpdig_sha1_request",
                      "ntpq_mode6_request"));

}  // namespace
}  // namespace ntpfleet::ntp
