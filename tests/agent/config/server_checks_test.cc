// MergeSameServers() and UnanswerableReason(): the `server` lines checked after
// parsing (issue #15, items 3 and 13).
#include "agent/config/server_checks.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/ntp/access.h"
#include "common/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::config {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

AgentConfig Parse(const std::string& text) {
  absl::StatusOr<AgentConfig> cfg =
      ParseConfig(text, "agent.conf", NoIncludeFiles());
  EXPECT_THAT(cfg, IsOk());
  return cfg.ok() ? *cfg : AgentConfig();
}

std::vector<std::string> Hosts(const AgentConfig& cfg) {
  std::vector<std::string> out;
  for (const ServerEntry& e : cfg.servers) {
    out.push_back(e.host + ":" + std::to_string(e.port));
  }
  return out;
}

ntp::IpAddress Ip(const std::string& text) {
  absl::StatusOr<ntp::IpAddress> ip = ntp::IpAddress::Parse(text);
  EXPECT_THAT(ip, IsOk());
  return ip.ok() ? *ip : ntp::IpAddress();
}

// Before: the parser kept both lines, and the agent polled 127.0.0.1:18200
// twice (the second source "no reply yet": replies match the first).
TEST(MergeSameServersTest, MappedIpv6IsTheSameServerAsIpv4) {
  AgentConfig cfg = Parse(
      "server 127.0.0.1:18200\n"
      "server [::ffff:127.0.0.1]:18200 iburst prefer\n"
      "server [0:0::ffff:7f00:1]:18200\n"
      "server 127.0.0.1:18201\n");
  ASSERT_THAT(MergeSameServers(&cfg), IsOk());
  EXPECT_THAT(Hosts(cfg), ElementsAre("127.0.0.1:18200", "127.0.0.1:18201"));
  // iburst and prefer of any merged line are kept; the rest is the first's.
  EXPECT_TRUE(cfg.servers[0].iburst);
  EXPECT_TRUE(cfg.servers[0].prefer);
  ASSERT_THAT(cfg.warnings, SizeIs(2));
  EXPECT_EQ(cfg.warnings[0],
            "agent.conf:2: server [::ffff:127.0.0.1]:18200 is "
            "127.0.0.1:18200, the same server as agent.conf:1 (server "
            "127.0.0.1:18200): polled once, with the options of agent.conf:1 "
            "and this line's iburst and prefer");
  EXPECT_THAT(cfg.warnings[1],
              HasSubstr("agent.conf:3: server [0:0::ffff:7f00:1]:18200 is "
                        "127.0.0.1:18200, the same server as agent.conf:1"));
  // Idempotent: a second pass (the agent after --check-config's) adds nothing.
  ASSERT_THAT(MergeSameServers(&cfg), IsOk());
  EXPECT_THAT(cfg.warnings, SizeIs(2));
}

TEST(MergeSameServersTest, Ipv6SpellingsAreOneServer) {
  AgentConfig cfg = Parse(
      "server [2001:db8::1]:123\n"
      "server [2001:0db8:0:0:0:0:0:1]:123\n");
  ASSERT_THAT(MergeSameServers(&cfg), IsOk());
  EXPECT_THAT(Hosts(cfg), ElementsAre("2001:db8::1:123"));
  EXPECT_THAT(cfg.warnings, SizeIs(1));
}

// Before: "127.1" and "127.000.000.001" were host names to the parser, which
// the resolver read as 127.0.0.1: two more sources for the same server.
TEST(MergeSameServersTest, RefusesInetAtonForms) {
  const struct {
    std::string host;
    std::string read_as;
  } kCases[] = {
      {"127.1", "127.0.0.1"},
      {"127.000.000.001", "127.0.0.1"},
      {"192.168.010.001", "192.168.8.1"},  // octal: not what it looks like
      {"0x7f.1", "127.0.0.1"},
      {"2130706433", "127.0.0.1"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.host);
    AgentConfig cfg =
        Parse("server 127.0.0.1:18200\nserver " + c.host + ":18200\n");
    EXPECT_THAT(MergeSameServers(&cfg),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("agent.conf:2: '" + c.host +
                                   "' is not a standard IPv4 address: ")));
    EXPECT_THAT(
        MergeSameServers(&cfg),
        StatusIs(absl::StatusCode::kInvalidArgument,
                 HasSubstr("inet_aton reads this one as " + c.read_as)));
  }
}

TEST(MergeSameServersTest, HostNamesAndOtherPortsAreLeftAlone) {
  AgentConfig cfg = Parse(
      "server ntp.example.net\n"
      "server ntp.example.net:124\n"
      "server 192.0.2.1\n"
      "server 192.0.2.1:124\n");
  ASSERT_THAT(MergeSameServers(&cfg), IsOk());
  EXPECT_THAT(cfg.servers, SizeIs(4));
  EXPECT_THAT(cfg.warnings, IsEmpty());
}

TEST(MergeSameServersTest, SameServerWithAnotherKeyIsAnError) {
  AgentConfig cfg = Parse(
      "server 192.0.2.1 key 5\n"
      "server ::ffff:192.0.2.1\n");
  EXPECT_THAT(MergeSameServers(&cfg),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("agent.conf:2: 192.0.2.1:123 is the same "
                                 "server as agent.conf:1, but with no key "
                                 "(there: key 5)")));
}

TEST(UnanswerableReasonTest, AddressesThatNeverAnswer) {
  OwnServer own;
  own.port = 18200;
  own.broadcast_addresses = {Ip("192.168.1.255")};
  own.local_addresses = {Ip("192.168.1.7")};
  EXPECT_THAT(UnanswerableReason(Ip("0.0.0.0"), 123, own),
              HasSubstr("the unspecified (\"any\") address"));
  EXPECT_THAT(UnanswerableReason(Ip("::"), 123, own),
              HasSubstr("the unspecified (\"any\") address"));
  EXPECT_THAT(UnanswerableReason(Ip("0.1.2.3"), 123, own),
              HasSubstr("\"this network\""));
  EXPECT_THAT(UnanswerableReason(Ip("255.255.255.255"), 123, own),
              HasSubstr("limited broadcast address"));
  EXPECT_THAT(UnanswerableReason(Ip("192.168.1.255"), 123, own),
              HasSubstr("broadcast address of one of this host's networks"));
  EXPECT_THAT(UnanswerableReason(Ip("224.0.1.1"), 123, own),
              HasSubstr("multicast address"));
  EXPECT_THAT(UnanswerableReason(Ip("239.255.255.250"), 123, own),
              HasSubstr("multicast address"));
  EXPECT_THAT(UnanswerableReason(Ip("ff02::101"), 123, own),
              HasSubstr("multicast address"));
  EXPECT_THAT(UnanswerableReason(Ip("::ffff:224.0.1.1"), 123, own),
              HasSubstr("multicast address"));
  // Listening on every address: loopback and the host's addresses at its
  // port are the agent itself.
  for (const char* self :
       {"127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1", "192.168.1.7"}) {
    EXPECT_THAT(UnanswerableReason(Ip(self), 18200, own),
                HasSubstr("this agent's own NTP server (it serves on UDP "
                          "port 18200)"))
        << self;
  }
}

TEST(UnanswerableReasonTest, OrdinaryServersMayAnswer) {
  OwnServer own;
  own.port = 18200;
  own.local_addresses = {Ip("192.168.1.7")};
  for (const char* ok : {"192.0.2.1", "2001:db8::1", "192.168.1.8",
                         "223.255.255.255", "240.0.0.1"}) {
    EXPECT_EQ(UnanswerableReason(Ip(ok), 18200, own), "") << ok;
  }
  // Another port on this host: another server (the loopback tests' pairs).
  EXPECT_EQ(UnanswerableReason(Ip("127.0.0.1"), 18201, own), "");
  // Serving on one address: only that one is the agent.
  own.listen = Ip("127.0.0.1");
  EXPECT_EQ(UnanswerableReason(Ip("127.0.0.2"), 18200, own), "");
  EXPECT_EQ(UnanswerableReason(Ip("192.168.1.7"), 18200, own), "");
  EXPECT_NE(UnanswerableReason(Ip("127.0.0.1"), 18200, own), "");
  // Not serving (port unknown or none): nothing is the agent's own.
  own.port = 0;
  EXPECT_EQ(UnanswerableReason(Ip("127.0.0.1"), 18200, own), "");
}

TEST(UnanswerableServersTest, NamesTheLineAndWhy) {
  AgentConfig cfg = Parse(
      "server 0.0.0.0\n"
      "server ntp.example.net\n"
      "server [::]:124\n"
      "server 192.0.2.1\n");
  EXPECT_THAT(
      UnanswerableServers(cfg, OwnServer{}),
      ElementsAre(
          HasSubstr("agent.conf:1: server 0.0.0.0:123 is never polled: the "
                    "unspecified"),
          HasSubstr("agent.conf:3: server [::]:124 is never polled: the "
                    "unspecified")));
}

}  // namespace
}  // namespace ntpfleet::config
