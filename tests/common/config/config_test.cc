#include "common/config/config.h"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/config/config_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fifo.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::config {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Optional;
using ::testing::Pair;
using ::testing::SizeIs;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
using Files = std::map<std::string, std::string>;

// Files for `includefile`, by resolved path; records what was asked for.
class FakeFiles : public IncludeLoader {
 public:
  FakeFiles() = default;
  explicit FakeFiles(Files files) : files_(std::move(files)) {}

  absl::StatusOr<std::string> Load(const std::string& path) const override {
    requested_.push_back(path);
    auto it = files_.find(path);
    if (it == files_.end()) return absl::NotFoundError(path);
    return it->second;
  }
  const std::vector<std::string>& requested() const { return requested_; }

 private:
  Files files_;
  mutable std::vector<std::string> requested_;
};

// Answers every path with the same error.
class FailingLoader : public IncludeLoader {
 public:
  explicit FailingLoader(absl::Status status) : status_(std::move(status)) {}
  absl::StatusOr<std::string> Load(const std::string&) const override {
    return status_;
  }

 private:
  absl::Status status_;
};

absl::StatusOr<AgentConfig> Parse(absl::string_view text) {
  return ParseConfig(text, "agent.conf", NoIncludeFiles());
}

// Parses `text`, which must be valid, and returns the config.
AgentConfig MustParse(absl::string_view text) {
  absl::StatusOr<AgentConfig> config = Parse(text);
  EXPECT_THAT(config, IsOk()) << text;
  return config.ok() ? *config : AgentConfig();
}

std::string TestData(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const std::string path =
      absl::StrCat(srcdir == nullptr ? "." : srcdir,
                   "/ntpfleet/tests/common/config/testdata/", name);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

std::array<uint8_t, 16> V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {a, b, c, d};
}

// The fields that make up a server line, for whole-entry comparisons.
auto ServerTuple(const ServerEntry& s) {
  return std::make_tuple(s.host, s.port, s.family, s.is_pool, s.iburst, s.burst,
                         s.prefer, s.minpoll, s.maxpoll, s.key_id, s.version);
}

// Everything but locations, included files and warnings.
void ExpectSameConfig(const AgentConfig& a, const AgentConfig& b) {
  ASSERT_EQ(a.servers.size(), b.servers.size());
  for (size_t i = 0; i < a.servers.size(); ++i) {
    EXPECT_EQ(ServerTuple(a.servers[i]), ServerTuple(b.servers[i])) << i;
  }
  ASSERT_EQ(a.local_clock.has_value(), b.local_clock.has_value());
  if (a.local_clock.has_value()) {
    EXPECT_EQ(a.local_clock->host, b.local_clock->host);
    EXPECT_EQ(a.local_clock->stratum, b.local_clock->stratum);
  }
  EXPECT_EQ(a.driftfile, b.driftfile);
  EXPECT_EQ(a.leapfile, b.leapfile);
  EXPECT_EQ(a.leap_sec_mode, b.leap_sec_mode);
  EXPECT_EQ(a.keys_file, b.keys_file);
  EXPECT_EQ(a.clockbound_shm, b.clockbound_shm);
  ASSERT_EQ(a.restrictions.size(), b.restrictions.size());
  for (size_t i = 0; i < a.restrictions.size(); ++i) {
    const RestrictRule& x = a.restrictions[i];
    const RestrictRule& y = b.restrictions[i];
    EXPECT_EQ(std::tie(x.is_default, x.family, x.address, x.mask),
              std::tie(y.is_default, y.family, y.address, y.mask))
        << i;
    EXPECT_EQ(x.flags, y.flags) << i;
  }
  EXPECT_EQ(a.trusted_keys, b.trusted_keys);
  EXPECT_EQ(a.request_key, b.request_key);
  EXPECT_EQ(a.control_key, b.control_key);
  EXPECT_EQ(std::tie(a.flags.auth, a.flags.kernel, a.flags.monitor, a.flags.ntp,
                     a.flags.stats),
            std::tie(b.flags.auth, b.flags.kernel, b.flags.monitor, b.flags.ntp,
                     b.flags.stats));
  EXPECT_EQ(a.statistics, b.statistics);
  EXPECT_EQ(a.statsdir, b.statsdir);
  EXPECT_EQ(a.panic_threshold, b.panic_threshold);
  EXPECT_EQ(a.step_threshold, b.step_threshold);
  EXPECT_EQ(a.orphan_stratum, b.orphan_stratum);
  EXPECT_EQ(a.min_sane, b.min_sane);
  EXPECT_EQ(a.min_clock, b.min_clock);
  EXPECT_EQ(a.max_distance, b.max_distance);
  EXPECT_EQ(a.controllers, b.controllers);
  EXPECT_EQ(a.node_name, b.node_name);
  EXPECT_EQ(a.report_interval, b.report_interval);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.rtcsync, b.rtcsync);
  EXPECT_EQ(a.server_threads, b.server_threads);
  EXPECT_EQ(a.tls_ca, b.tls_ca);
  EXPECT_EQ(a.tls_cert, b.tls_cert);
  EXPECT_EQ(a.tls_key, b.tls_key);
  EXPECT_EQ(a.port, b.port);
  EXPECT_EQ(a.resync_max_step, b.resync_max_step);
}

// ------------------------------------------------------------ the seeds

TEST(SeedConfigTest, ClientConfigParsesUnchanged) {
  FakeFiles files;
  absl::StatusOr<AgentConfig> parsed =
      ParseConfig(TestData("client-ntp.conf"), "client-ntp.conf", files);
  ASSERT_THAT(parsed, IsOk());
  const AgentConfig& c = *parsed;

  ASSERT_THAT(c.servers, SizeIs(1));
  EXPECT_EQ(c.servers[0].host, "192.168.242.51");
  EXPECT_EQ(c.servers[0].port, 123);
  EXPECT_FALSE(c.servers[0].iburst);
  EXPECT_EQ(c.servers[0].minpoll, 6);
  EXPECT_EQ(c.servers[0].maxpoll, 10);
  EXPECT_EQ(c.servers[0].location.ToString(), "client-ntp.conf:5");
  // `server 127.0.0.1` + `fudge 127.0.0.1 stratum 10`: the local clock.
  ASSERT_TRUE(c.local_clock.has_value());
  EXPECT_EQ(c.local_clock->host, "127.0.0.1");
  EXPECT_EQ(c.local_clock->stratum, 10);

  EXPECT_EQ(c.driftfile, "/var/lib/ntp/drift");
  EXPECT_EQ(c.keys_file, "/etc/ntp/keys");
  EXPECT_FALSE(c.flags.monitor);
  EXPECT_TRUE(c.flags.auth);

  ASSERT_THAT(c.restrictions, SizeIs(4));
  const RestrictRule& all = c.restrictions[0];
  EXPECT_TRUE(all.is_default);
  EXPECT_EQ(all.family, AddressFamily::kAny);
  EXPECT_TRUE(all.Has(RestrictFlag::kNoModify));
  EXPECT_TRUE(all.Has(RestrictFlag::kNoTrap));
  EXPECT_TRUE(all.Has(RestrictFlag::kNoPeer));
  EXPECT_TRUE(all.Has(RestrictFlag::kNoQuery));
  EXPECT_EQ(all.flags.count(), 4u);
  EXPECT_EQ(c.restrictions[1].AddressString(), "127.0.0.1");
  EXPECT_EQ(c.restrictions[1].MaskString(), "255.255.255.255");
  EXPECT_TRUE(c.restrictions[1].flags.none());
  EXPECT_EQ(c.restrictions[2].family, AddressFamily::kIpv6);
  EXPECT_EQ(c.restrictions[2].AddressString(), "::1");
  EXPECT_EQ(c.restrictions[2].MaskString(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  EXPECT_EQ(c.restrictions[3].AddressString(), "192.168.242.51");
  EXPECT_EQ(c.restrictions[3].flags.count(), 3u);
  EXPECT_FALSE(c.restrictions[3].Has(RestrictFlag::kNoPeer));

  EXPECT_THAT(files.requested(), ElementsAre("/etc/ntp/crypto/pw"));
  EXPECT_THAT(c.warnings,
              ElementsAre("client-ntp.conf:9: includefile /etc/ntp/crypto/pw "
                          "not found, skipped"));
}

TEST(SeedConfigTest, ServerConfigParsesUnchanged) {
  FakeFiles files;
  absl::StatusOr<AgentConfig> parsed =
      ParseConfig(TestData("server-ntp.conf"), "/etc/ntp.conf", files);
  ASSERT_THAT(parsed, IsOk());
  const AgentConfig& c = *parsed;

  ASSERT_THAT(c.servers, SizeIs(2));
  EXPECT_EQ(c.servers[0].host, "ntp1.aliyun.com");
  EXPECT_TRUE(c.servers[0].iburst);
  EXPECT_FALSE(c.servers[0].is_pool);
  EXPECT_EQ(c.servers[1].host, "ntp2.aliyun.com");
  EXPECT_TRUE(c.servers[1].iburst);
  EXPECT_FALSE(c.local_clock.has_value());
  EXPECT_THAT(c.restrictions, IsEmpty());  // all commented out
  EXPECT_THAT(c.trusted_keys, IsEmpty());
  EXPECT_EQ(c.request_key, std::nullopt);
  EXPECT_THAT(c.statistics, IsEmpty());
  EXPECT_EQ(c.keys_file, "/etc/ntp/keys");
  EXPECT_FALSE(c.flags.monitor);
  EXPECT_THAT(c.warnings, ElementsAre("/etc/ntp.conf:11: includefile "
                                      "/etc/ntp/crypto/pw not found, skipped"));
}

TEST(SeedConfigTest, UnreadableCryptoPwIsSkippedWithWarning) {
  // Red Hat ships /etc/ntp/crypto/pw root-only: an agent that reads its
  // config without root must still start.
  const FailingLoader denied(absl::PermissionDeniedError("Permission denied"));
  absl::StatusOr<AgentConfig> parsed =
      ParseConfig(TestData("client-ntp.conf"), "client-ntp.conf", denied);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_THAT(parsed->warnings,
              ElementsAre("client-ntp.conf:9: includefile /etc/ntp/crypto/pw "
                          "cannot be read (Permission denied), skipped"));
}

TEST(SeedConfigTest, ClientConfigFormatsAsEffectiveConfig) {
  FakeFiles files;
  absl::StatusOr<AgentConfig> parsed =
      ParseConfig(TestData("client-ntp.conf"), "client-ntp.conf", files);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(FormatEffectiveConfig(*parsed),
            "# ntpfleet effective configuration\n"
            "server 192.168.242.51\n"
            "server 127.0.0.1\n"
            "fudge 127.0.0.1 stratum 10\n"
            "driftfile /var/lib/ntp/drift\n"
            "restrict default nomodify noquery notrap nopeer\n"
            "restrict 127.0.0.1\n"
            "restrict ::1\n"
            "restrict 192.168.242.51 nomodify noquery notrap\n"
            "keys /etc/ntp/keys\n"
            "enable auth kernel ntp stats\n"
            "disable monitor\n"
            "port 123\n"
            "server_threads 1\n"
            "resync_max_step 1000\n"
            "report_interval 1s\n"
            "# warning: client-ntp.conf:9: includefile /etc/ntp/crypto/pw not "
            "found, skipped\n");
}

// ------------------------------------------------------------ servers

TEST(ClockboundShmTest, PathNoneAndDefault) {
  EXPECT_FALSE(MustParse("server a\n").clockbound_shm.has_value());
  EXPECT_EQ(MustParse("clockbound_shm /run/cb/shm0\n").clockbound_shm,
            "/run/cb/shm0");
  EXPECT_EQ(MustParse("clockbound_shm none\n").clockbound_shm, "");
  EXPECT_FALSE(Parse("clockbound_shm\n").ok());
  for (const char* text :
       {"clockbound_shm /run/cb/shm0\n", "clockbound_shm none\n"}) {
    const AgentConfig c = MustParse(text);
    ExpectSameConfig(c, MustParse(FormatEffectiveConfig(c)));
  }
}

TEST(ServerTest, RecordsEveryOption) {
  const AgentConfig c = MustParse(
      "server -4 a.example iburst burst prefer minpoll 4 maxpoll 12 key 7 "
      "version 3\n"
      "pool 0.pool.ntp.org iburst\n");
  ASSERT_THAT(c.servers, SizeIs(2));
  const ServerEntry& s = c.servers[0];
  EXPECT_EQ(s.host, "a.example");
  EXPECT_EQ(s.family, AddressFamily::kIpv4);
  EXPECT_TRUE(s.iburst);
  EXPECT_TRUE(s.burst);
  EXPECT_TRUE(s.prefer);
  EXPECT_EQ(s.minpoll, 4);
  EXPECT_EQ(s.maxpoll, 12);
  EXPECT_THAT(s.key_id, Optional(7u));
  EXPECT_EQ(s.version, 3);
  EXPECT_FALSE(s.is_pool);
  EXPECT_TRUE(c.servers[1].is_pool);
  EXPECT_EQ(c.servers[1].location.ToString(), "agent.conf:2");
  EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(ServerTest, AcceptsPortsAndIpv6Addresses) {
  const AgentConfig c = MustParse(
      "server 127.0.0.1:12345\n"
      "server [::1]:12346\n"
      "server ::1\n"
      "server -6 [fe80::1]\n"
      "server time.example:124\n");
  ASSERT_THAT(c.servers, SizeIs(5));
  EXPECT_EQ(std::tie(c.servers[0].host, c.servers[0].port),
            std::make_tuple("127.0.0.1", 12345));
  EXPECT_EQ(std::tie(c.servers[1].host, c.servers[1].port),
            std::make_tuple("::1", 12346));
  EXPECT_EQ(std::tie(c.servers[2].host, c.servers[2].port),
            std::make_tuple("::1", 123));
  EXPECT_EQ(c.servers[3].host, "fe80::1");
  EXPECT_EQ(c.servers[3].family, AddressFamily::kIpv6);
  EXPECT_EQ(std::tie(c.servers[4].host, c.servers[4].port),
            std::make_tuple("time.example", 124));
}

TEST(ServerTest, PlainLoopbackServerIsAnOrdinaryUpstream) {
  // Without a fudge stratum, a loopback server is just a server (tests run
  // real servers on loopback).
  const AgentConfig c = MustParse("server 127.0.0.1:4123 iburst\n");
  ASSERT_THAT(c.servers, SizeIs(1));
  EXPECT_EQ(c.servers[0].host, "127.0.0.1");
  EXPECT_FALSE(c.local_clock.has_value());
  EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(ServerTest, MinpollAboveMaxpollIsAnError) {
  EXPECT_THAT(Parse("\nserver a minpoll 8 maxpoll 6\n"),
              StatusIs(kInvalid,
                       "agent.conf:2: minpoll 8 is greater than "
                       "maxpoll 6"));
}

TEST(ServerTest, OnePollBoundMovesTheOtherDefault) {
  const AgentConfig c = MustParse(
      "server a minpoll 12\n"
      "server b maxpoll 4\n");
  EXPECT_EQ(std::tie(c.servers[0].minpoll, c.servers[0].maxpoll),
            std::make_tuple(12, 12));
  EXPECT_EQ(std::tie(c.servers[1].minpoll, c.servers[1].maxpoll),
            std::make_tuple(4, 4));
}

TEST(ServerTest, RejectsOutOfRangeValues) {
  EXPECT_THAT(Parse("server a minpoll 2"),
              StatusIs(kInvalid,
                       "agent.conf:1: minpoll must be an integer "
                       "from 3 to 17, not '2'"));
  EXPECT_THAT(Parse("server a maxpoll 18"),
              StatusIs(kInvalid, HasSubstr("maxpoll must be an integer")));
  EXPECT_THAT(Parse("server a key 0"),
              StatusIs(kInvalid, HasSubstr("key must be an integer from 1 to "
                                           "65535, not '0'")));
  EXPECT_THAT(Parse("server a key 65536"),
              StatusIs(kInvalid, HasSubstr("key")));
  EXPECT_THAT(Parse("server a version 5"),
              StatusIs(kInvalid, HasSubstr("version")));
  EXPECT_THAT(Parse("server a:0"), StatusIs(kInvalid, HasSubstr("port")));
  EXPECT_THAT(Parse("server a:70000"), StatusIs(kInvalid, HasSubstr("port")));
}

TEST(ServerTest, MissingArgumentsAreErrors) {
  EXPECT_THAT(Parse("server"),
              StatusIs(kInvalid, "agent.conf:1: server: missing address"));
  EXPECT_THAT(Parse("server -4"),
              StatusIs(kInvalid, "agent.conf:1: server: missing address"));
  EXPECT_THAT(Parse("server a minpoll"),
              StatusIs(kInvalid, "agent.conf:1: server: missing minpoll"));
}

TEST(ServerTest, MisspeltOptionIsAnErrorWithHint) {
  EXPECT_THAT(Parse("server a ibrust"),
              StatusIs(kInvalid,
                       "agent.conf:1: unknown server option "
                       "'ibrust' (did you mean 'iburst'?)"));
}

TEST(ServerTest, RejectsInvalidAddresses) {
  EXPECT_THAT(Parse("server bad/host"),
              StatusIs(kInvalid,
                       "agent.conf:1: invalid server address "
                       "'bad/host'"));
  EXPECT_THAT(Parse("server [1.2.3.4]:5"),
              StatusIs(kInvalid, HasSubstr("invalid IPv6 address")));
  EXPECT_THAT(Parse("server -6 10.0.0.1"),
              StatusIs(kInvalid, HasSubstr("-6 does not fit")));
}

TEST(ServerTest, UnsupportedNtpdOptionsWarn) {
  const AgentConfig c = MustParse("server a noselect mode 5 iburst\n");
  ASSERT_THAT(c.servers, SizeIs(1));
  EXPECT_TRUE(c.servers[0].iburst);
  EXPECT_THAT(c.warnings,
              ElementsAre("agent.conf:1: server a: option 'noselect' is not "
                          "supported, ignored",
                          "agent.conf:1: server a: option 'mode' is not "
                          "supported, ignored"));
}

TEST(ServerTest, PeerIsPolledAsServerWithWarning) {
  const AgentConfig c = MustParse("peer 10.0.0.2\n");
  ASSERT_THAT(c.servers, SizeIs(1));
  EXPECT_FALSE(c.servers[0].is_pool);
  EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("symmetric active mode is "
                                                "not supported")));
}

TEST(ServerTest, DuplicateServerIsDroppedWithWarning) {
  const AgentConfig c = MustParse("server a iburst\nserver a\n");
  ASSERT_THAT(c.servers, SizeIs(1));
  EXPECT_TRUE(c.servers[0].iburst);
  EXPECT_THAT(c.warnings, ElementsAre("agent.conf:2: duplicate server a "
                                      "(first at agent.conf:1), ignored"));
}

// ------------------------------------------------------------ local clock

TEST(LocalClockTest, LocalDriverDefaultsToStratum10) {
  const AgentConfig c = MustParse("server 127.127.1.0\n");
  EXPECT_THAT(c.servers, IsEmpty());
  ASSERT_TRUE(c.local_clock.has_value());
  EXPECT_EQ(c.local_clock->host, "127.127.1.0");
  EXPECT_EQ(c.local_clock->stratum, 10);
  EXPECT_EQ(c.local_clock->location.ToString(), "agent.conf:1");
  EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(LocalClockTest, FudgeSetsTheStratum) {
  const AgentConfig c = MustParse(
      "server 127.127.1.0\n"
      "fudge 127.127.1.0 stratum 8 refid LCL\n");
  ASSERT_TRUE(c.local_clock.has_value());
  EXPECT_EQ(c.local_clock->stratum, 8);
  EXPECT_THAT(c.warnings, ElementsAre("agent.conf:2: fudge 127.127.1.0: "
                                      "option 'refid' is not supported, "
                                      "ignored"));
}

TEST(LocalClockTest, LoopbackWithFudgeStratumIsTheLocalClock) {
  const AgentConfig c = MustParse(
      "server ::1\n"
      "fudge ::1 stratum 12\n"
      "server 10.1.1.1\n");
  ASSERT_TRUE(c.local_clock.has_value());
  EXPECT_EQ(c.local_clock->host, "::1");
  EXPECT_EQ(c.local_clock->stratum, 12);
  ASSERT_THAT(c.servers, SizeIs(1));
  EXPECT_EQ(c.servers[0].host, "10.1.1.1");
}

TEST(LocalClockTest, FudgeOnARemoteServerIsIgnoredWithWarning) {
  const AgentConfig c = MustParse(
      "server 10.1.1.1\n"
      "fudge 10.1.1.1 stratum 3\n");
  EXPECT_THAT(c.servers, SizeIs(1));
  EXPECT_FALSE(c.local_clock.has_value());
  EXPECT_THAT(c.warnings, ElementsAre(AllOf(HasSubstr("agent.conf:2: fudge "
                                                      "10.1.1.1 ignored"))));
}

TEST(LocalClockTest, FudgeWithoutServerWarns) {
  const AgentConfig c = MustParse("fudge 127.127.1.0 stratum 10\n");
  EXPECT_FALSE(c.local_clock.has_value());
  EXPECT_THAT(c.warnings, ElementsAre("agent.conf:1: fudge 127.127.1.0 "
                                      "matches no server line, ignored"));
}

TEST(LocalClockTest, OtherReferenceClocksWarn) {
  const AgentConfig c = MustParse("server 127.127.28.0\n");
  EXPECT_THAT(c.servers, IsEmpty());
  EXPECT_FALSE(c.local_clock.has_value());
  EXPECT_THAT(c.warnings, ElementsAre("agent.conf:1: reference clock "
                                      "127.127.28.0 (driver 28) is not "
                                      "supported, ignored"));
}

TEST(LocalClockTest, FudgeStratumOutOfRangeIsAnError) {
  EXPECT_THAT(Parse("fudge 127.127.1.0 stratum 16"),
              StatusIs(kInvalid, HasSubstr("stratum must be an integer from 1 "
                                           "to 15")));
  EXPECT_THAT(Parse("fudge 127.127.1.0 stratun 10"),
              StatusIs(kInvalid,
                       "agent.conf:1: unknown fudge option "
                       "'stratun' (did you mean 'stratum'?)"));
}

// ------------------------------------------------------------ restrict

TEST(RestrictTest, MisspeltFlagIsAnErrorNamingFileAndLine) {
  EXPECT_THAT(Parse("server a\n# comment\nrestrict default nomodfy notrap\n"),
              StatusIs(kInvalid,
                       "agent.conf:3: unknown restrict flag 'nomodfy' "
                       "(did you mean 'nomodify'?)"));
}

TEST(RestrictTest, MaskAndPrefixLength) {
  const AgentConfig c = MustParse(
      "restrict 192.168.0.0 mask 255.255.0.0 nomodify notrap\n"
      "restrict 10.0.0.0/8 noquery\n"
      "restrict fd00:: mask ff00:: ignore\n");
  ASSERT_THAT(c.restrictions, SizeIs(3));
  EXPECT_EQ(c.restrictions[0].family, AddressFamily::kIpv4);
  EXPECT_EQ(c.restrictions[0].address, V4(192, 168, 0, 0));
  EXPECT_EQ(c.restrictions[0].mask, V4(255, 255, 0, 0));
  EXPECT_TRUE(c.restrictions[0].Has(RestrictFlag::kNoModify));
  EXPECT_TRUE(c.restrictions[0].Has(RestrictFlag::kNoTrap));
  EXPECT_EQ(c.restrictions[1].mask, V4(255, 0, 0, 0));
  EXPECT_EQ(c.restrictions[2].family, AddressFamily::kIpv6);
  EXPECT_EQ(c.restrictions[2].MaskString(), "ff00::");
  EXPECT_TRUE(c.restrictions[2].Has(RestrictFlag::kIgnore));
}

TEST(RestrictTest, HostAddressGetsTheHostMask) {
  const AgentConfig c = MustParse("restrict 10.1.2.3\n");
  ASSERT_THAT(c.restrictions, SizeIs(1));
  EXPECT_EQ(c.restrictions[0].mask, V4(255, 255, 255, 255));
}

TEST(RestrictTest, FamilyFlagsOnDefault) {
  const AgentConfig c = MustParse(
      "restrict -4 default noquery\n"
      "restrict -6 default ignore\n"
      "restrict default kod limited\n");
  ASSERT_THAT(c.restrictions, SizeIs(3));
  EXPECT_EQ(c.restrictions[0].family, AddressFamily::kIpv4);
  EXPECT_TRUE(c.restrictions[0].is_default);
  EXPECT_EQ(c.restrictions[1].family, AddressFamily::kIpv6);
  EXPECT_EQ(c.restrictions[2].family, AddressFamily::kAny);
  EXPECT_TRUE(c.restrictions[2].Has(RestrictFlag::kKod));
  EXPECT_TRUE(c.restrictions[2].Has(RestrictFlag::kLimited));
}

TEST(RestrictTest, FamilyFlagMustFitTheAddress) {
  EXPECT_THAT(Parse("restrict -4 ::1"),
              StatusIs(kInvalid,
                       "agent.conf:1: restrict -4 does not fit the "
                       "address '::1'"));
  EXPECT_THAT(Parse("restrict 10.0.0.0 mask ffff::"),
              StatusIs(kInvalid, HasSubstr("invalid mask 'ffff::'")));
  // A mask with a hole cannot be a prefix: an error, not a different rule.
  EXPECT_THAT(Parse("restrict 10.0.0.0 mask 255.0.255.0 ignore"),
              StatusIs(kInvalid,
                       "agent.conf:1: mask '255.0.255.0' is not "
                       "contiguous (ones, then zeros): "
                       "ntpfleet-agent matches prefixes"));
}

TEST(RestrictTest, EveryKnownFlag) {
  const AgentConfig c = MustParse(
      "restrict default ignore nomodify noquery notrap nopeer notrust kod "
      "limited noserve lowpriotrap nomrulist version ntpport\n");
  ASSERT_THAT(c.restrictions, SizeIs(1));
  EXPECT_TRUE(c.restrictions[0].flags.all());
  EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(RestrictTest, RealButUnsupportedFlagsWarn) {
  const AgentConfig c = MustParse(
      "restrict default noquery mssntp ippeerlimit 2 serverresponse fuzz\n");
  ASSERT_THAT(c.restrictions, SizeIs(1));
  EXPECT_TRUE(c.restrictions[0].Has(RestrictFlag::kNoQuery));
  EXPECT_THAT(c.warnings, SizeIs(3));
  EXPECT_EQ(c.warnings[0],
            "agent.conf:1: restrict flag 'mssntp' is not supported, ignored");
}

TEST(RestrictTest, HostBitsOutsideTheMaskAreClearedWithWarning) {
  const AgentConfig c = MustParse("restrict 192.168.1.7 mask 255.255.255.0\n");
  ASSERT_THAT(c.restrictions, SizeIs(1));
  EXPECT_EQ(c.restrictions[0].address, V4(192, 168, 1, 0));
  EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("the rule covers 192.168.1.0 "
                                                "mask 255.255.255.0")));
}

TEST(RestrictTest, SameAddressMergesFlags) {
  const AgentConfig c = MustParse(
      "restrict 10.0.0.1 nomodify\n"
      "restrict 10.0.0.1 noquery\n");
  ASSERT_THAT(c.restrictions, SizeIs(1));
  EXPECT_TRUE(c.restrictions[0].Has(RestrictFlag::kNoModify));
  EXPECT_TRUE(c.restrictions[0].Has(RestrictFlag::kNoQuery));
}

TEST(RestrictTest, SourceAndHostNamesWarn) {
  const AgentConfig c = MustParse(
      "restrict source nomodify\n"
      "restrict ntp1.aliyun.com nomodify\n");
  EXPECT_THAT(c.restrictions, IsEmpty());
  EXPECT_THAT(c.warnings,
              ElementsAre("agent.conf:1: restrict source is not supported, "
                          "ignored",
                          "agent.conf:2: restrict by host name "
                          "('ntp1.aliyun.com') is not supported, ignored; "
                          "write its address"));
}

TEST(RestrictTest, UnrestrictRemovesFlagsOrTheRule) {
  const AgentConfig c = MustParse(
      "restrict default nomodify noquery\n"
      "restrict 10.0.0.1 ignore\n"
      "unrestrict default noquery\n"
      "unrestrict 10.0.0.1\n"
      "unrestrict 10.9.9.9\n");
  ASSERT_THAT(c.restrictions, SizeIs(1));
  EXPECT_TRUE(c.restrictions[0].Has(RestrictFlag::kNoModify));
  EXPECT_FALSE(c.restrictions[0].Has(RestrictFlag::kNoQuery));
  EXPECT_THAT(c.warnings, ElementsAre("agent.conf:5: unrestrict 10.9.9.9: no "
                                      "such restrict rule, ignored"));
}

TEST(RestrictTest, InvalidAddressIsAnError) {
  EXPECT_THAT(Parse("restrict 300.1.1.1"),
              StatusIs(kInvalid,
                       "agent.conf:1: invalid restrict address "
                       "'300.1.1.1'"));
  EXPECT_THAT(Parse("restrict 10.0.0.0/33"),
              StatusIs(kInvalid, HasSubstr("prefix length")));
  EXPECT_THAT(Parse("restrict"),
              StatusIs(kInvalid, "agent.conf:1: restrict: missing address"));
  EXPECT_THAT(Parse("restrict default mask 255.0.0.0"),
              StatusIs(kInvalid, HasSubstr("mask does not apply")));
}

// ------------------------------------------------------------ keys

TEST(KeysTest, TrustedKeysWithRanges) {
  const AgentConfig c = MustParse(
      "keys /etc/ntp/keys\n"
      "trustedkey 4 8 42\n"
      "trustedkey (10 ... 12) 8\n"
      "trustedkey (20...21)\n"
      "requestkey 8\n"
      "controlkey 9\n");
  EXPECT_EQ(c.keys_file, "/etc/ntp/keys");
  EXPECT_THAT(c.trusted_keys, ElementsAre(4, 8, 10, 11, 12, 20, 21, 42));
  EXPECT_TRUE(c.IsTrustedKey(11));
  EXPECT_FALSE(c.IsTrustedKey(13));
  EXPECT_THAT(c.request_key, Optional(8u));
  EXPECT_THAT(c.control_key, Optional(9u));
}

TEST(KeysTest, KeyIdsOutOfRangeAreErrors) {
  EXPECT_THAT(Parse("trustedkey 0"),
              StatusIs(kInvalid,
                       "agent.conf:1: key id must be an integer "
                       "from 1 to 65535, not '0'"));
  EXPECT_THAT(Parse("trustedkey 65536"),
              StatusIs(kInvalid, HasSubstr("key id")));
  EXPECT_THAT(Parse("trustedkey (5 ... 2)"),
              StatusIs(kInvalid, HasSubstr("empty range")));
  EXPECT_THAT(Parse("trustedkey (5 2)"),
              StatusIs(kInvalid, HasSubstr("(FIRST ... LAST)")));
  EXPECT_THAT(Parse("trustedkey"), StatusIs(kInvalid, HasSubstr("missing")));
  EXPECT_THAT(Parse("requestkey x"), StatusIs(kInvalid, HasSubstr("key id")));
  EXPECT_THAT(Parse("controlkey 1 2"),
              StatusIs(kInvalid, "agent.conf:1: controlkey: unexpected '2'"));
}

// ------------------------------------------------------------ the rest of ntpd

TEST(SystemFlagsTest, EnableAndDisable) {
  const AgentConfig defaults = MustParse("");
  EXPECT_TRUE(defaults.flags.monitor);
  EXPECT_TRUE(defaults.flags.kernel);
  const AgentConfig c = MustParse(
      "disable monitor kernel auth ntp stats\n"
      "enable ntp\n"
      "enable calibrate\n");
  EXPECT_FALSE(c.flags.monitor);
  EXPECT_FALSE(c.flags.kernel);
  EXPECT_FALSE(c.flags.auth);
  EXPECT_FALSE(c.flags.stats);
  EXPECT_TRUE(c.flags.ntp);
  EXPECT_THAT(c.warnings, ElementsAre("agent.conf:3: enable calibrate is not "
                                      "supported, ignored"));
  EXPECT_THAT(Parse("disable monitr"),
              StatusIs(kInvalid,
                       "agent.conf:1: unknown disable flag "
                       "'monitr' (did you mean 'monitor'?)"));
  EXPECT_THAT(Parse("disable"), StatusIs(kInvalid, HasSubstr("missing flag")));
}

TEST(StatisticsTest, NamesAndDirectory) {
  const AgentConfig c = MustParse(
      "statsdir /var/log/ntpstats/\n"
      "statistics loopstats peerstats\n"
      "statistics clockstats loopstats\n");
  EXPECT_EQ(c.statsdir, "/var/log/ntpstats/");
  EXPECT_THAT(c.statistics,
              ElementsAre("loopstats", "peerstats", "clockstats"));
  EXPECT_THAT(Parse("statistics loopstat"),
              StatusIs(kInvalid,
                       "agent.conf:1: unknown statistics type "
                       "'loopstat' (did you mean 'loopstats'?)"));
}

TEST(TinkerTest, PanicAndStepAreDurations) {
  const AgentConfig c = MustParse("tinker panic 0 step 0.5\n");
  EXPECT_THAT(c.panic_threshold, Optional(absl::ZeroDuration()));
  EXPECT_THAT(c.step_threshold, Optional(absl::Milliseconds(500)));
  const AgentConfig d = MustParse("tinker step 0.000000001 panic 1000\n");
  EXPECT_THAT(d.step_threshold, Optional(absl::Nanoseconds(1)));
  EXPECT_THAT(d.panic_threshold, Optional(absl::Seconds(1000)));
}

TEST(TinkerTest, NegativeOrMalformedValuesAreErrors) {
  EXPECT_THAT(Parse("tinker panic -1"),
              StatusIs(kInvalid,
                       "agent.conf:1: tinker panic must not be "
                       "negative, not '-1'"));
  EXPECT_THAT(Parse("tinker step 1e3"),
              StatusIs(kInvalid, HasSubstr("must be a number of seconds")));
  EXPECT_THAT(Parse("tinker step"),
              StatusIs(kInvalid, "agent.conf:1: tinker: missing step value"));
  EXPECT_THAT(Parse("tinker stepp 1"),
              StatusIs(kInvalid, HasSubstr("unknown tinker option 'stepp'")));
}

TEST(TinkerTest, OtherOptionsWarn) {
  const AgentConfig c = MustParse("tinker stepout 900 panic 10\n");
  EXPECT_THAT(c.panic_threshold, Optional(absl::Seconds(10)));
  EXPECT_THAT(c.warnings, ElementsAre("agent.conf:1: tinker stepout is not "
                                      "supported, ignored"));
}

TEST(TosTest, RecordsOrphanMinsaneMinclockMaxdist) {
  const AgentConfig c =
      MustParse("tos orphan 10 minsane 2 minclock 3 maxdist 1.5 cohort 1\n");
  EXPECT_THAT(c.orphan_stratum, Optional(10));
  EXPECT_THAT(c.min_sane, Optional(2));
  EXPECT_THAT(c.min_clock, Optional(3));
  EXPECT_THAT(c.max_distance, Optional(absl::Milliseconds(1500)));
  EXPECT_THAT(c.warnings, ElementsAre("agent.conf:1: tos cohort is not "
                                      "supported, ignored"));
  EXPECT_THAT(Parse("tos orphan 16"), StatusIs(kInvalid, HasSubstr("orphan")));
  EXPECT_THAT(Parse("tos maxdist 0"),
              StatusIs(kInvalid, HasSubstr("greater than 0")));
}

TEST(FilesTest, PathDirectives) {
  const AgentConfig c = MustParse(
      "driftfile /var/lib/ntp/drift\n"
      "leapfile \"/usr/share/zoneinfo/leap seconds.list\"\n");
  EXPECT_EQ(c.driftfile, "/var/lib/ntp/drift");
  EXPECT_EQ(c.leapfile, "/usr/share/zoneinfo/leap seconds.list");
  EXPECT_THAT(Parse("driftfile"),
              StatusIs(kInvalid, "agent.conf:1: driftfile: missing file name"));
  EXPECT_THAT(Parse("driftfile a b"),
              StatusIs(kInvalid, "agent.conf:1: driftfile: unexpected 'b'"));
  EXPECT_THAT(Parse("driftfile \"\""),
              StatusIs(kInvalid, HasSubstr("empty file name")));
}

TEST(LeapsecmodeTest, SystemByDefaultSlewOnRequest) {
  EXPECT_EQ(MustParse("").leap_sec_mode, LeapSecMode::kSystem);
  EXPECT_EQ(MustParse("leapsecmode slew\n").leap_sec_mode, LeapSecMode::kSlew);
  EXPECT_EQ(MustParse("leapsecmode slew\nleapsecmode system\n").leap_sec_mode,
            LeapSecMode::kSystem);
  EXPECT_THAT(FormatEffectiveConfig(MustParse("leapsecmode slew")),
              HasSubstr("\nleapsecmode slew\n"));
  EXPECT_THAT(FormatEffectiveConfig(MustParse("leapsecmode system")),
              Not(HasSubstr("leapsecmode")));
}

TEST(LeapsecmodeTest, RejectsOtherModesWithFileAndLine) {
  EXPECT_THAT(Parse("\nleapsecmode"),
              StatusIs(kInvalid,
                       "agent.conf:2: leapsecmode: missing mode "
                       "(system or slew)"));
  EXPECT_THAT(
      Parse("leapsecmode slew now"),
      StatusIs(kInvalid, "agent.conf:1: leapsecmode: unexpected 'now'"));
  EXPECT_THAT(Parse("leapsecmode step"),
              StatusIs(kInvalid,
                       "agent.conf:1: leapsecmode step is not "
                       "supported: use system or slew"));
  EXPECT_THAT(Parse("leapsecmode ignore"),
              StatusIs(kInvalid, HasSubstr("not supported")));
  EXPECT_THAT(Parse("leapsecmode slw"),
              StatusIs(kInvalid,
                       "agent.conf:1: leapsecmode: unknown mode "
                       "'slw': expected system or slew (did you "
                       "mean 'slew'?)"));
}

TEST(FilesTest, LogfileAndPidfileAreAcceptedButNotUsed) {
  const AgentConfig c = MustParse(
      "logfile /var/log/ntp.log\n"
      "pidfile /run/ntpd.pid\n");
  ASSERT_THAT(c.warnings, SizeIs(2));
  EXPECT_THAT(c.warnings[0], HasSubstr("agent.conf:1: logfile /var/log/ntp.log "
                                       "is not used"));
  EXPECT_THAT(c.warnings[1], HasSubstr("agent.conf:2: pidfile /run/ntpd.pid is "
                                       "not used"));
}

// ------------------------------------------------------------ ntpfleet's own

TEST(NtpfleetDirectivesTest, RecordsEachDirective) {
  const AgentConfig c = MustParse(
      "controller [fd00::1]:7443\n"
      "node_name node-17\n"
      "report_interval 2s\n"
      "label rack=r7\n"
      "label zone=eu=west\n"
      "rtcsync\n"
      "server_threads 4\n"
      "tls_ca /etc/ntpfleet/ca.pem\n"
      "tls_cert /etc/ntpfleet/agent.pem\n"
      "tls_key /etc/ntpfleet/agent.key\n"
      "port 1123\n");
  EXPECT_THAT(c.controllers, ElementsAre("[fd00::1]:7443"));
  EXPECT_EQ(c.node_name, "node-17");
  EXPECT_EQ(c.report_interval, absl::Seconds(2));
  EXPECT_THAT(c.labels,
              ElementsAre(Pair("rack", "r7"), Pair("zone", "eu=west")));
  EXPECT_TRUE(c.rtcsync);
  EXPECT_EQ(c.server_threads, 4);
  EXPECT_EQ(c.tls_ca, "/etc/ntpfleet/ca.pem");
  EXPECT_EQ(c.tls_cert, "/etc/ntpfleet/agent.pem");
  EXPECT_EQ(c.tls_key, "/etc/ntpfleet/agent.key");
  EXPECT_EQ(c.port, 1123);
  EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(NtpfleetDirectivesTest, Defaults) {
  const AgentConfig c = MustParse("");
  EXPECT_EQ(c.port, 123);
  EXPECT_EQ(c.server_threads, 1);
  EXPECT_EQ(c.report_interval, absl::Seconds(1));
  EXPECT_FALSE(c.rtcsync);
  EXPECT_THAT(c.controllers, IsEmpty());
}

TEST(NtpfleetDirectivesTest, PortsAreCheckedNeverWrapped) {
  for (const char* bad : {"-5", "65536", "99999", "12a", "0x7b"}) {
    EXPECT_THAT(
        Parse(absl::StrCat("# a comment\nport ", bad)),
        StatusIs(kInvalid, HasSubstr(absl::StrCat("agent.conf:2: port: "))))
        << bad;
  }
  EXPECT_THAT(Parse("port"), StatusIs(kInvalid, HasSubstr("agent.conf:1:")));
  EXPECT_EQ(MustParse("port 65535").port, 65535);
  EXPECT_EQ(MustParse("port 1").port, 1);
}

TEST(NtpfleetDirectivesTest, ControllerAddressForms) {
  EXPECT_THAT(MustParse("controller 127.0.0.1:7123").controllers,
              ElementsAre("127.0.0.1:7123"));
  EXPECT_THAT(MustParse("controller ctl.example:1").controllers,
              ElementsAre("ctl.example:1"));
  EXPECT_THAT(MustParse("controller dns:///ctl.example:7123").controllers,
              ElementsAre("dns:///ctl.example:7123"));
  EXPECT_THAT(MustParse("controller [::1]:7123").controllers,
              ElementsAre("[::1]:7123"));
  struct Case {
    const char* line;
    const char* message;
  };
  for (const Case& c : {
           Case{"controller ctl:",
                "agent.conf:2: controller: the port is "
                "missing"},
           Case{"controller :7123", "has no host"},
           Case{"controller ctl:0", "0 is not a port"},
           Case{"controller ctl:-5", "'-5' is not a port"},
           Case{"controller ctl:65536", "65536 is not a port"},
           Case{"controller [::1]:70000", "70000 is not a port"},
           Case{"controller [::1]", "write [::1]:PORT"},
           Case{"controller ::1:7123", "ambiguous"},
           Case{"controller dns:///ctl:99999", "99999 is not a port"},
           Case{"controller [zz]:1", "invalid IPv6 address"},
           Case{"controller bad_name!:1", "is not a host name"},
       }) {
    EXPECT_THAT(Parse(absl::StrCat("\n", c.line)),
                StatusIs(kInvalid, AllOf(HasSubstr("agent.conf:2: controller"),
                                         HasSubstr(c.message))))
        << c.line;
  }
}

TEST(NtpfleetDirectivesTest, SeveralControllersAreKeptInFileOrder) {
  const AgentConfig c = MustParse(
      "controller ctl-a.example:7123\n"
      "# the second failure domain\n"
      "controller 10.1.0.5:7123\n"
      "controller [fd00::1]:7123\n");
  EXPECT_THAT(c.controllers, ElementsAre("ctl-a.example:7123", "10.1.0.5:7123",
                                         "[fd00::1]:7123"));
  EXPECT_THAT(c.warnings, IsEmpty());
  // The effective configuration lists each, and reads back the same.
  const std::string effective = FormatEffectiveConfig(c);
  EXPECT_THAT(effective, HasSubstr("controller ctl-a.example:7123\n"
                                   "controller 10.1.0.5:7123\n"
                                   "controller [fd00::1]:7123\n"));
  EXPECT_THAT(MustParse(effective).controllers,
              ElementsAreArray(c.controllers));
}

TEST(NtpfleetDirectivesTest, OneControllerIsFormattedAsBefore) {
  // The config digest the controller shows is a hash of this text: one
  // controller line must read exactly as it did when there could be only one.
  EXPECT_THAT(FormatEffectiveConfig(MustParse("controller 127.0.0.1:7123")),
              HasSubstr("\ncontroller 127.0.0.1:7123\nreport_interval"));
}

TEST(NtpfleetDirectivesTest, DuplicateControllerIsAnErrorNamingBothLines) {
  EXPECT_THAT(Parse("controller 127.0.0.1:7123\n"
                    "server 127.0.0.1\n"
                    "controller 127.0.0.1:7123\n"),
              StatusIs(kInvalid,
                       "agent.conf:3: controller 127.0.0.1:7123 is already "
                       "listed at agent.conf:1: give each controller once"));
  // The same place spelt another way.
  EXPECT_THAT(Parse("controller CTL.example:7123\n"
                    "controller dns:///ctl.example:7123\n"),
              StatusIs(kInvalid, HasSubstr("agent.conf:2: controller "
                                           "dns:///ctl.example:7123 is already "
                                           "listed at agent.conf:1")));
  // Another port of the same host is another controller.
  EXPECT_THAT(MustParse("controller 127.0.0.1:7123\n"
                        "controller 127.0.0.1:7124\n")
                  .controllers,
              ElementsAre("127.0.0.1:7123", "127.0.0.1:7124"));
}

TEST(NtpfleetDirectivesTest, AtMostEightControllers) {
  std::string text;
  for (int i = 1; i <= kMaxControllers; ++i) {
    absl::StrAppend(&text, "controller 10.0.0.", i, ":7123\n");
  }
  EXPECT_THAT(MustParse(text).controllers, SizeIs(kMaxControllers));
  absl::StrAppend(&text, "controller 10.0.0.99:7123\n");
  EXPECT_THAT(Parse(text),
              StatusIs(kInvalid, HasSubstr("agent.conf:9: controller: at most "
                                           "8 controllers")));
}

TEST(NtpfleetDirectivesTest, ServerPortsAreChecked) {
  EXPECT_THAT(Parse("server a:99999"),
              StatusIs(kInvalid,
                       "agent.conf:1: server a:99999: 99999 is not "
                       "a port (1..65535)"));
  EXPECT_THAT(Parse("server [::1]:0"),
              StatusIs(kInvalid, HasSubstr("0 is not a port")));
}

TEST(NtpfleetDirectivesTest, TlsIsAllThreeOrNone) {
  EXPECT_THAT(
      MustParse("tls_cert a.pem\ntls_key a.key\ntls_ca ca.pem").warnings,
      IsEmpty());
  EXPECT_TRUE(MustParse("server 10.0.0.1").tls_ca.empty());
  EXPECT_THAT(
      Parse("server 10.0.0.1\ntls_cert a.pem\ntls_key a.key\n"),
      StatusIs(kInvalid,
               "agent.conf:2: tls_cert without tls_ca: mutual TLS needs "
               "tls_cert, tls_key and tls_ca; make them with `ntpfleetctl "
               "certs`"));
  EXPECT_THAT(
      Parse("\n\ntls_ca ca.pem\n"),
      StatusIs(kInvalid, HasSubstr("agent.conf:3: tls_ca without "
                                   "tls_cert and tls_key: mutual TLS")));
  EXPECT_THAT(Parse("tls_key a.key\ntls_ca ca.pem\n"),
              StatusIs(kInvalid, HasSubstr("agent.conf:1: tls_key without "
                                           "tls_cert:")));
}

TEST(NtpfleetDirectivesTest, ResyncMaxStep) {
  EXPECT_EQ(MustParse("").resync_max_step, absl::Seconds(1000));
  EXPECT_EQ(MustParse("resync_max_step 0").resync_max_step,
            absl::ZeroDuration());
  EXPECT_EQ(MustParse("resync_max_step 0.5").resync_max_step,
            absl::Milliseconds(500));
  EXPECT_THAT(FormatEffectiveConfig(MustParse("resync_max_step 2.5")),
              HasSubstr("\nresync_max_step 2.5\n"));
  EXPECT_THAT(FormatEffectiveConfig(MustParse("")),
              HasSubstr("\nresync_max_step 1000\n"));
  EXPECT_THAT(Parse("resync_max_step -1"),
              StatusIs(kInvalid, HasSubstr("agent.conf:1: resync_max_step "
                                           "must not be negative")));
  EXPECT_THAT(Parse("resync_max_step soon"),
              StatusIs(kInvalid, HasSubstr("agent.conf:1: resync_max_step")));
  EXPECT_THAT(Parse("resync_max_step"),
              StatusIs(kInvalid, HasSubstr("agent.conf:1:")));
}

TEST(NtpfleetDirectivesTest, ReportIntervalForms) {
  EXPECT_EQ(MustParse("report_interval 1s").report_interval, absl::Seconds(1));
  EXPECT_EQ(MustParse("report_interval 500ms").report_interval,
            absl::Milliseconds(500));
  EXPECT_EQ(MustParse("report_interval 30").report_interval, absl::Seconds(30));
  EXPECT_EQ(MustParse("report_interval 1.5").report_interval,
            absl::Milliseconds(1500));
  EXPECT_EQ(MustParse("report_interval 1m30s").report_interval,
            absl::Seconds(90));
  EXPECT_THAT(Parse("report_interval 10ms"),
              StatusIs(kInvalid,
                       "agent.conf:1: report_interval must be from "
                       "100ms to 1h (the controller refuses more), not 10ms"));
  EXPECT_THAT(Parse("report_interval soon"),
              StatusIs(kInvalid, HasSubstr("must be a duration")));
  EXPECT_THAT(Parse("report_interval -1s"),
              StatusIs(kInvalid, HasSubstr("from 100ms to 1h")));
}

TEST(NtpfleetDirectivesTest, InvalidValuesAreErrors) {
  EXPECT_THAT(Parse("controller localhost"),
              StatusIs(kInvalid,
                       "agent.conf:1: controller: 'localhost' has no port; "
                       "write HOST:PORT"));
  EXPECT_THAT(Parse("controller host:99999"),
              StatusIs(kInvalid,
                       "agent.conf:1: controller: 99999 is not a "
                       "port (1..65535)"));
  EXPECT_THAT(Parse("port 0"), StatusIs(kInvalid,
                                        "agent.conf:1: port: 0 is not a port "
                                        "(1..65535)"));
  EXPECT_THAT(Parse("server_threads 0"),
              StatusIs(kInvalid, HasSubstr("server_threads")));
  EXPECT_THAT(Parse("label novalue"),
              StatusIs(kInvalid, HasSubstr("KEY=VALUE")));
  EXPECT_THAT(Parse("label a=1\nlabel a=2"),
              StatusIs(kInvalid, "agent.conf:2: label 'a' given twice"));
  // What the controller would refuse (common/labels.h), refused at its line.
  EXPECT_THAT(Parse(absl::StrCat("label ", std::string(64, 'k'), "=v")),
              StatusIs(kInvalid, HasSubstr("agent.conf:1: label key")));
  EXPECT_THAT(Parse("label rack*=1"),
              StatusIs(kInvalid, HasSubstr("[A-Za-z0-9._/-]")));
  EXPECT_THAT(Parse(absl::StrCat("label k=", std::string(254, 'v'))),
              StatusIs(kInvalid, HasSubstr("254 bytes, at most 253")));
  std::string many;
  for (int i = 0; i < 65; ++i) absl::StrAppend(&many, "label k", i, "=v\n");
  EXPECT_THAT(Parse(many),
              StatusIs(kInvalid, HasSubstr("agent.conf:65: more than 64")));
  EXPECT_THAT(Parse("rtcsync yes"),
              StatusIs(kInvalid, "agent.conf:1: rtcsync: unexpected 'yes'"));
  EXPECT_THAT(Parse("node_name"), StatusIs(kInvalid, HasSubstr("missing")));
}

// ------------------------------------------------------------ lexing

TEST(SyntaxTest, CommentsTabsAndCrlf) {
  const AgentConfig c = MustParse(
      "# comment\r\n"
      "\r\n"
      "\tserver\ta.example\tiburst  # trailing comment\r\n"
      "server b.example#no space before the comment\r\n"
      "   \t  \r\n"
      "restrict default noquery\r\n");
  ASSERT_THAT(c.servers, SizeIs(2));
  EXPECT_EQ(c.servers[0].host, "a.example");
  EXPECT_TRUE(c.servers[0].iburst);
  EXPECT_EQ(c.servers[0].location.line, 3);
  EXPECT_EQ(c.servers[1].host, "b.example");
  ASSERT_THAT(c.restrictions, SizeIs(1));
  EXPECT_EQ(c.restrictions[0].location.line, 6);
  EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(SyntaxTest, DirectivesAreCaseSensitive) {
  const AgentConfig c = MustParse("Server a.example\n");
  EXPECT_THAT(c.servers, IsEmpty());
  EXPECT_THAT(c.warnings, ElementsAre("agent.conf:1: unsupported directive "
                                      "'Server', ignored (did you mean "
                                      "'server'?)"));
}

TEST(SyntaxTest, UnknownAndUnsupportedDirectivesWarn) {
  const AgentConfig c = MustParse(
      "broadcast 224.0.1.1\n"
      "interface listen eth0\n"
      "frobnicate 3\n");
  EXPECT_THAT(c.warnings,
              ElementsAre("agent.conf:1: unsupported directive 'broadcast', "
                          "ignored",
                          "agent.conf:2: unsupported directive 'interface', "
                          "ignored",
                          "agent.conf:3: unsupported directive 'frobnicate', "
                          "ignored"));
}

TEST(SyntaxTest, UnterminatedQuoteIsAnError) {
  EXPECT_THAT(Parse("server a\ndriftfile \"/var/lib/ntp/drift\n"),
              StatusIs(kInvalid, "agent.conf:2: unterminated quoted string"));
}

TEST(SyntaxTest, FirstErrorStopsParsing) {
  EXPECT_THAT(Parse("restrict default nomodfy\nserver a ibrust\n"),
              StatusIs(kInvalid, HasSubstr("agent.conf:1:")));
}

// ------------------------------------------------------------ includefile

TEST(IncludeTest, RelativePathsFollowTheIncludingFile) {
  FakeFiles files({
      {"/etc/ntp/servers.conf", "server a.example\nincludefile more/b.conf\n"},
      {"/etc/ntp/more/b.conf", "server b.example\nincludefile ../c.conf\n"},
      {"/etc/ntp/c.conf", "server c.example\n"},
  });
  absl::StatusOr<AgentConfig> c =
      ParseConfig("includefile servers.conf\nserver d.example\n",
                  "/etc/ntp/ntp.conf", files);
  ASSERT_THAT(c, IsOk());
  ASSERT_THAT(c->servers, SizeIs(4));
  EXPECT_EQ(c->servers[0].host, "a.example");
  EXPECT_EQ(c->servers[0].location.ToString(), "/etc/ntp/servers.conf:1");
  EXPECT_EQ(c->servers[1].location.ToString(), "/etc/ntp/more/b.conf:1");
  EXPECT_EQ(c->servers[2].location.ToString(), "/etc/ntp/c.conf:1");
  EXPECT_EQ(c->servers[3].location.ToString(), "/etc/ntp/ntp.conf:2");
  EXPECT_THAT(c->included_files,
              ElementsAre("/etc/ntp/servers.conf", "/etc/ntp/more/b.conf",
                          "/etc/ntp/c.conf"));
  EXPECT_THAT(c->warnings, IsEmpty());
}

TEST(IncludeTest, ErrorsNameTheIncludedFileAndLine) {
  FakeFiles files(
      Files{{"conf.d/extra.conf", "\n\nrestrict default nomodfy\n"}});
  EXPECT_THAT(
      ParseConfig("includefile extra.conf\n", "conf.d/main.conf", files),
      StatusIs(kInvalid, HasSubstr("conf.d/extra.conf:3: unknown restrict "
                                   "flag 'nomodfy'")));
}

TEST(IncludeTest, MissingIncludeIsSkippedWithWarning) {
  absl::StatusOr<AgentConfig> c = Parse("includefile /etc/ntp/crypto/pw\n");
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(c->warnings, ElementsAre("agent.conf:1: includefile "
                                       "/etc/ntp/crypto/pw not found, "
                                       "skipped"));
}

TEST(IncludeTest, OtherLoaderErrorsStopParsing) {
  const FailingLoader broken(absl::DataLossError("I/O error"));
  EXPECT_THAT(ParseConfig("includefile /x.conf\n", "agent.conf", broken),
              StatusIs(kInvalid,
                       "agent.conf:1: includefile /x.conf: I/O "
                       "error"));
}

TEST(IncludeTest, CycleIsAnError) {
  FakeFiles files({{"/a.conf", "includefile b.conf\n"},
                   {"/b.conf", "includefile ./a.conf\n"}});
  EXPECT_THAT(ParseConfig("includefile a.conf\n", "/main.conf", files),
              StatusIs(kInvalid,
                       "/b.conf:1: includefile /a.conf includes "
                       "itself (/main.conf -> /a.conf -> /b.conf "
                       "-> /a.conf)"));
}

TEST(IncludeTest, DepthIsLimited) {
  // /1.conf includes /2.conf, and so on up to /`last`.conf.
  const auto chain = [](int last) {
    Files files;
    for (int i = 1; i <= last; ++i) {
      files[absl::StrCat("/", i, ".conf")] = absl::StrCat(
          "server s", i, "\n",
          i < last ? absl::StrCat("includefile /", i + 1, ".conf\n") : "");
    }
    return files;
  };
  FakeFiles ok_files(chain(kMaxIncludeDepth));
  absl::StatusOr<AgentConfig> ok =
      ParseConfig("includefile /1.conf\n", "/main.conf", ok_files);
  ASSERT_THAT(ok, IsOk());
  EXPECT_THAT(ok->servers, SizeIs(kMaxIncludeDepth));

  FakeFiles deep_files(chain(kMaxIncludeDepth + 1));
  EXPECT_THAT(
      ParseConfig("includefile /1.conf\n", "/main.conf", deep_files),
      StatusIs(kInvalid,
               absl::StrCat("/", kMaxIncludeDepth, ".conf:2: includefile /",
                            kMaxIncludeDepth + 1, ".conf: nested more than ",
                            kMaxIncludeDepth, " deep")));
}

TEST(IncludeTest, TotalNumberOfIncludedFilesIsLimited) {
  FakeFiles files(Files{{"/leaf.conf", "# nothing\n"}});
  std::string text;
  for (int i = 0; i <= kMaxIncludedFiles; ++i)
    text += "includefile /leaf.conf\n";
  EXPECT_THAT(ParseConfig(text, "/main.conf", files),
              StatusIs(kInvalid, HasSubstr("more than 100 files included")));
}

// ------------------------------------------------------------ effective config

TEST(FormatTest, RoundTripsTheFullConfig) {
  const AgentConfig c = MustParse(TestData("full.conf"));
  EXPECT_THAT(c.warnings, IsEmpty());
  ASSERT_THAT(c.servers, SizeIs(5));
  ASSERT_TRUE(c.local_clock.has_value());
  EXPECT_EQ(c.local_clock->stratum, 8);
  EXPECT_THAT(c.labels,
              ElementsAre(Pair("rack", "r7"), Pair("zone", "eu west")));

  const std::string text = FormatEffectiveConfig(c);
  absl::StatusOr<AgentConfig> again = Parse(text);
  ASSERT_THAT(again, IsOk()) << text;
  ExpectSameConfig(c, *again);
  EXPECT_THAT(again->warnings, IsEmpty()) << text;
  EXPECT_EQ(FormatEffectiveConfig(*again), text);
}

TEST(FormatTest, RoundTripsTheSeeds) {
  for (const char* name : {"client-ntp.conf", "server-ntp.conf"}) {
    SCOPED_TRACE(name);
    const AgentConfig c = MustParse(TestData(name));
    absl::StatusOr<AgentConfig> again = Parse(FormatEffectiveConfig(c));
    ASSERT_THAT(again, IsOk());
    ExpectSameConfig(c, *again);
    EXPECT_THAT(again->warnings, IsEmpty());
  }
}

TEST(FormatTest, NormalisesServerAndRestrictLines) {
  const AgentConfig c = MustParse(
      "server  [::1]:1234   prefer iburst minpoll 6 maxpoll 10 version 4\n"
      "server 10.0.0.1:123\n"
      "pool -6 pool.example key 5\n"
      "restrict 10.0.0.0/8 notrap nomodify\n"
      "restrict -6 default ignore\n"
      "trustedkey 1 2 3 5 7 8\n"
      "tinker panic 600 step 0.128\n"
      "tos maxdist 3\n");
  const std::string text = FormatEffectiveConfig(c);
  EXPECT_THAT(text, HasSubstr("\nserver [::1]:1234 iburst prefer\n"));
  EXPECT_THAT(text, HasSubstr("\nserver 10.0.0.1\n"));
  EXPECT_THAT(text, HasSubstr("\npool -6 pool.example key 5\n"));
  EXPECT_THAT(text, HasSubstr("\nrestrict 10.0.0.0 mask 255.0.0.0 nomodify "
                              "notrap\n"));
  EXPECT_THAT(text, HasSubstr("\nrestrict -6 default ignore\n"));
  EXPECT_THAT(text, HasSubstr("\ntrustedkey (1 ... 3) 5 7 8\n"));
  EXPECT_THAT(text, HasSubstr("\ntinker panic 600 step 0.128\n"));
  EXPECT_THAT(text, HasSubstr("\ntos maxdist 3\n"));
}

TEST(FormatTest, WarningsBecomeComments) {
  const AgentConfig c = MustParse("frobnicate\nlogfile /var/log/ntp.log\n");
  const std::string text = FormatEffectiveConfig(c);
  EXPECT_THAT(text, HasSubstr("# warning: agent.conf:1: unsupported directive "
                              "'frobnicate', ignored\n"));
  absl::StatusOr<AgentConfig> again = Parse(text);
  ASSERT_THAT(again, IsOk());
  EXPECT_THAT(again->warnings, IsEmpty());
}

// ------------------------------------------------------------ from disk

class LoadConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr) << "run with `bazel test`";
    dir_ = absl::StrCat(
        tmp, "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    ASSERT_TRUE(std::filesystem::create_directories(dir_ + "/conf.d", ec))
        << ec.message();
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream out(dir_ + "/" + name, std::ios::binary);
    out << text;
    ASSERT_TRUE(out.good());
  }
  std::string dir_;
};

TEST_F(LoadConfigFileTest, ReadsTheFileAndRelativeIncludes) {
  Write("agent.conf",
        "server a.example iburst\nincludefile conf.d/extra.conf\n"
        "includefile missing.conf\n");
  Write("conf.d/extra.conf", "server b.example\n");
  absl::StatusOr<AgentConfig> c = LoadConfigFile(dir_ + "/agent.conf");
  ASSERT_THAT(c, IsOk());
  ASSERT_THAT(c->servers, SizeIs(2));
  EXPECT_EQ(c->servers[1].location.ToString(), dir_ + "/conf.d/extra.conf:1");
  EXPECT_THAT(c->warnings,
              ElementsAre(dir_ + "/agent.conf:3: includefile " + dir_ +
                          "/missing.conf not found, skipped"));
}

TEST_F(LoadConfigFileTest, MissingFileIsNotFound) {
  EXPECT_THAT(
      LoadConfigFile(dir_ + "/nope.conf"),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir_ + "/nope.conf")));
}

TEST_F(LoadConfigFileTest, DirectoryIsRefused) {
  EXPECT_THAT(LoadConfigFile(dir_ + "/conf.d"),
              StatusIs(kInvalid, HasSubstr("not a regular file")));
}

// A FIFO as --config or includefile would block open(2) until a writer came,
// forever and silently (`--check-config` too): refused at once, naming it.
TEST_F(LoadConfigFileTest, FifoIsRefusedWithoutWaiting) {
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(::ntpfleet::testing::ReturnsWithoutWaiting(
                  fifo, [&] { return LoadConfigFile(fifo); }),
              StatusIs(kInvalid, HasSubstr("--config: cannot read " + fifo +
                                           ": not a regular file (a FIFO)")));
  Write("agent.conf", "server 10.0.0.1\nincludefile fifo\n");
  EXPECT_THAT(
      ::ntpfleet::testing::ReturnsWithoutWaiting(
          fifo, [&] { return LoadConfigFile(dir_ + "/agent.conf"); }),
      StatusIs(kInvalid, HasSubstr(dir_ + "/agent.conf:2: includefile " + fifo +
                                   ": cannot read " + fifo +
                                   ": not a regular file (a FIFO)")));
}

// driftfile, leapfile and keys are checked without opening them: a FIFO or a
// directory is an error naming the directive and its line; a missing file is
// not (the agent creates the drift file; a missing keys file is a warning).
TEST_F(LoadConfigFileTest, NamedFilesMustBeRegularFiles) {
  ASSERT_EQ(mkfifo((dir_ + "/fifo").c_str(), 0600), 0);
  Write("drift", "1.5\n");
  const std::string head = "server 10.0.0.1\n";
  struct Case {
    std::string lines;
    std::string error;  // empty: fine
  } cases[] = {
      {"driftfile " + dir_ + "/fifo\n",
       "agent.conf:2: driftfile " + dir_ +
           "/fifo is a FIFO, not a regular file"},
      {"# x\nleapfile " + dir_ + "/conf.d\n",
       "agent.conf:3: leapfile " + dir_ +
           "/conf.d is a directory, not a "
           "regular file"},
      {"keys " + dir_ + "/conf.d\n",
       "agent.conf:2: keys " + dir_ +
           "/conf.d is a directory, not a regular "
           "file"},
      {"keys /dev/null\n", "keys /dev/null is a character device"},
      {"driftfile " + dir_ + "/drift\nkeys " + dir_ + "/missing\n", ""},
      {"driftfile " + dir_ + "/new/drift\n", ""},
  };
  for (const Case& c : cases) {
    Write("agent.conf", head + c.lines);
    absl::StatusOr<AgentConfig> config = LoadConfigFile(dir_ + "/agent.conf");
    ASSERT_THAT(config, IsOk()) << c.lines;
    if (c.error.empty()) {
      EXPECT_THAT(CheckNamedFiles(*config), IsOk()) << c.lines;
    } else {
      EXPECT_THAT(CheckNamedFiles(*config),
                  StatusIs(kInvalid, HasSubstr(c.error)))
          << c.lines;
    }
  }
}

TEST_F(LoadConfigFileTest, ErrorsCarryThePath) {
  Write("agent.conf", "server a\nrestrict default nomodfy\n");
  EXPECT_THAT(LoadConfigFile(dir_ + "/agent.conf"),
              StatusIs(kInvalid, HasSubstr(dir_ + "/agent.conf:2: unknown "
                                                  "restrict flag 'nomodfy'")));
}

// ---------------------------------------------------------------- limits

std::string Ip(int prefix, int n) {
  return absl::StrCat(prefix, ".", (n >> 16) & 255, ".", (n >> 8) & 255, ".",
                      n & 255);
}

// Lines for `sources` servers and `rules` restrict rules, then `repeats` more
// lines that name them again (merged restrict lines, duplicate servers, fudges
// of them), cycling through all of them.
std::string ManyRulesAndSources(int sources, int rules, int repeats) {
  std::string text;
  for (int i = 0; i < sources; ++i) {
    absl::StrAppend(&text, "server ", Ip(10, i), "\n");
  }
  for (int i = 0; i < rules; ++i) {
    absl::StrAppend(&text, "restrict ", Ip(172, i), " kod\n");
  }
  for (int i = 0; i < repeats; ++i) {
    switch (i % 3) {
      case 0:
        absl::StrAppend(&text, "restrict ", Ip(172, i % rules), " nomodify\n");
        break;
      case 1:
        absl::StrAppend(&text, "server ", Ip(10, i % sources), " iburst\n");
        break;
      default:
        absl::StrAppend(&text, "fudge ", Ip(10, i % sources), " stratum 5\n");
        break;
    }
  }
  return text;
}

// The least CPU time of three parses, in seconds (the least: what the parse
// costs, without the noise other processes add to some runs).
double ParseCpuSeconds(const std::string& text) {
  double best = 1e9;
  for (int run = 0; run < 3; ++run) {
    timespec start{};
    timespec end{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    absl::StatusOr<AgentConfig> c = Parse(text);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
    EXPECT_THAT(c, IsOk());
    best = std::min(best, (end.tv_sec - start.tv_sec) +
                              (end.tv_nsec - start.tv_nsec) * 1e-9);
  }
  return best;
}

// A line costs the same whether 10 or 1000 rules and sources came before it:
// parsing is linear in the lines. The same number of repeated lines after 1000
// rules and sources, against after 10 (and 1980 comment lines, so that both
// have as many lines). A parser that scans every rule and server per line, and
// every fudge per server (the old one: 4 x 35 000 restrict lines took 29 s),
// measures a ratio of about 20 here; a linear one about 1. The bound, 4, leaves
// room for noise (the CPU time of the parsing thread, the least of three runs:
// no wall clock).
TEST(LimitsTest, LineCostDoesNotGrowWithRulesAndSources) {
  constexpr int kRepeats = 30000;
  std::string few = ManyRulesAndSources(10, 10, kRepeats);
  for (int i = 0; i < 1980; ++i) few += "# padding\n";
  const std::string many = ManyRulesAndSources(1000, 1000, kRepeats);
  const double few_s = ParseCpuSeconds(few);
  const double many_s = ParseCpuSeconds(many);
  EXPECT_LT(many_s, 4 * few_s)
      << "10 rules and sources: " << few_s << " s; 1000: " << many_s << " s";
}

TEST(LimitsTest, RefusesMoreSourcesThanTheLimit) {
  const std::string limit = ManyRulesAndSources(1000, 1, 0);
  absl::StatusOr<AgentConfig> c = Parse(limit);
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(c->servers, SizeIs(1000));
  // Duplicates are not sources.
  EXPECT_THAT(Parse(limit + "server 10.0.0.7 iburst\n"), IsOk());
  EXPECT_THAT(Parse(limit + "pool 10.0.3.232\n"),
              StatusIs(kInvalid, HasSubstr("agent.conf:1002: pool 10.0.3.232: "
                                           "more than 1000 sources")));
  EXPECT_THAT(Parse(limit + "peer 10.0.3.232\n"),
              StatusIs(kInvalid, HasSubstr("agent.conf:1002: peer 10.0.3.232: "
                                           "more than 1000 sources")));
}

TEST(LimitsTest, RefusesMoreRestrictRulesThanTheLimit) {
  const std::string limit = ManyRulesAndSources(1, 1000, 0);
  absl::StatusOr<AgentConfig> c = Parse(limit);
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(c->restrictions, SizeIs(1000));
  // Lines for an existing rule are merged into it, not new rules.
  EXPECT_THAT(Parse(limit + "restrict 172.0.0.5 nomodify\n"), IsOk());
  EXPECT_THAT(
      Parse(limit + "restrict 10.9.9.9\n"),
      StatusIs(kInvalid, HasSubstr("agent.conf:1002: restrict 10.9.9.9: "
                                   "more than 1000 restrict rules")));
  // A rule `unrestrict` removed makes room for another.
  absl::StatusOr<AgentConfig> replaced =
      Parse(limit + "unrestrict 172.0.0.5\nrestrict 10.9.9.9\n");
  ASSERT_THAT(replaced, IsOk());
  ASSERT_THAT(replaced->restrictions, SizeIs(1000));
  EXPECT_EQ(replaced->restrictions.back().AddressString(), "10.9.9.9");
  EXPECT_EQ(replaced->restrictions[5].AddressString(), "172.0.0.6");
}

// Rules keep file order and merge across `unrestrict`, as before the index.
TEST(LimitsTest, UnrestrictedRuleComesBackAtTheEnd) {
  const AgentConfig c = MustParse(
      "restrict 10.0.0.1 kod\nrestrict 10.0.0.2 nomodify\n"
      "unrestrict 10.0.0.1\nrestrict 10.0.0.1 noquery\n"
      "restrict 10.0.0.2 notrap\nunrestrict 10.0.0.2 nomodify\n");
  ASSERT_THAT(c.restrictions, SizeIs(2));
  EXPECT_EQ(c.restrictions[0].AddressString(), "10.0.0.2");
  EXPECT_TRUE(c.restrictions[0].Has(RestrictFlag::kNoTrap));
  EXPECT_FALSE(c.restrictions[0].Has(RestrictFlag::kNoModify));
  EXPECT_EQ(c.restrictions[1].AddressString(), "10.0.0.1");
  EXPECT_TRUE(c.restrictions[1].Has(RestrictFlag::kNoQuery));
  EXPECT_FALSE(c.restrictions[1].Has(RestrictFlag::kKod));
}

TEST(LimitsTest, WarningsAreCappedAndCounted) {
  std::string text;
  for (int i = 0; i < kMaxWarnings + 500; ++i) text += "broadcastdelay 1\n";
  const AgentConfig c = MustParse(text);
  ASSERT_THAT(c.warnings, SizeIs(kMaxWarnings + 1));
  EXPECT_EQ(c.warnings.back(),
            "500 more warnings not listed (only the first 1000 are)");
}

// ---------------------------------------------------------------- not text

TEST(NotTextTest, NulBytesAreBinaryData) {
  EXPECT_THAT(
      Parse(std::string("server 10.0.0.1\n\0\0\0server 10.0.0.2\n", 36)),
      StatusIs(kInvalid, HasSubstr("agent.conf:2: binary data (a NUL "
                                   "byte) at column 1")));
  // Never "unsupported directive 'server'", not even past the first line.
  EXPECT_THAT(Parse(std::string("\0\0\0server 10.0.0.1\n", 19)),
              StatusIs(kInvalid, Not(HasSubstr("unsupported"))));
}

TEST(NotTextTest, InvalidUtf8IsAnError) {
  EXPECT_THAT(Parse("# caf\xe9\nserver 10.0.0.1\n"),
              StatusIs(kInvalid, HasSubstr("agent.conf:1: invalid UTF-8 (byte "
                                           "\\xe9) at column 6")));
  // Overlong '/', a surrogate, beyond U+10FFFF, a truncated sequence.
  for (const char* bad :
       {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    EXPECT_THAT(Parse(absl::StrCat("server 10.0.0.1 # ", bad, "\n")),
                StatusIs(kInvalid, HasSubstr("invalid UTF-8")))
        << bad;
  }
}

TEST(NotTextTest, ControlCharactersAreErrors) {
  EXPECT_THAT(Parse("server 10.0.0.1\n\x1b[31mserver 10.0.0.2\n"),
              StatusIs(kInvalid, HasSubstr("agent.conf:2: a control character "
                                           "(\\x1b) at column 1")));
  EXPECT_THAT(Parse("# \xc2\x9b\n"),
              StatusIs(kInvalid, HasSubstr("a control character (U+009B)")));
}

TEST(NotTextTest, Utf8TabsCrlfAndAByteOrderMarkAreText) {
  const AgentConfig c = MustParse(
      "\xef\xbb\xbfserver\t10.0.0.1\r\n# caf\xc3\xa9 \xe2\x82\xac "
      "\xf0\x9f\x95\x92\r\n\f\v\n");
  ASSERT_THAT(c.servers, SizeIs(1));
  EXPECT_EQ(c.servers[0].host, "10.0.0.1");
}

TEST(NotTextTest, AnIncludedFileIsCheckedToo) {
  FakeFiles files({{"/etc/junk.conf", std::string("ser\0ver", 7)}});
  EXPECT_THAT(
      ParseConfig("server 10.0.0.1\nincludefile /etc/junk.conf\n",
                  "/etc/agent.conf", files),
      StatusIs(kInvalid, HasSubstr("/etc/junk.conf:1: binary data (a NUL "
                                   "byte) at column 4")));
}

// The digest input leaves out the node's identity, and only that: two nodes
// that differ in name and labels share it, a different server does not. A
// digest over FormatEffectiveConfig (the old one) fails the first expectation.
TEST(SharedConfigTest, LeavesOutNameAndLabelsOnly) {
  const std::string common = "server 10.0.0.1 iburst\ndriftfile /d\n";
  const AgentConfig a =
      MustParse(common + "node_name web-1\nlabel rack=a1\nlabel zone=x\n");
  const AgentConfig b = MustParse(common + "node_name web-2\nlabel rack=b7\n");
  const AgentConfig c = MustParse(
      "server 10.0.0.2 iburst\ndriftfile /d\nnode_name web-1\nlabel rack=a1\n");
  EXPECT_NE(FormatEffectiveConfig(a), FormatEffectiveConfig(b));
  EXPECT_EQ(FormatSharedConfig(a), FormatSharedConfig(b));
  EXPECT_NE(FormatSharedConfig(a), FormatSharedConfig(c));
  EXPECT_THAT(FormatSharedConfig(a), Not(HasSubstr("web-1")));
  EXPECT_THAT(FormatSharedConfig(a), Not(HasSubstr("rack")));
}

}  // namespace
}  // namespace ntpfleet::config
