// common/hostport: ports and host:port addresses from flags and config files
// are checked, never wrapped, and the errors name the setting and the fix.
#include "common/hostport.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet {
namespace {

using ::testing::HasSubstr;

std::string Error(const absl::Status& s) { return std::string(s.message()); }

TEST(ParsePort, AcceptsTheRange) {
  EXPECT_EQ(*ParsePort("1", "port"), 1);
  EXPECT_EQ(*ParsePort("123", "port"), 123);
  EXPECT_EQ(*ParsePort("65535", "port"), 65535);
  EXPECT_EQ(*ParsePort("0", "--port", /*allow_zero=*/true), 0);
}

TEST(ParsePort, RejectsWhatIsNotAPort) {
  for (const char* text : {"0", "-5", "65536", "99999", "12a", "", " 1", "+1",
                           "99999999999999999999999"}) {
    absl::StatusOr<int> p = ParsePort(text, "port");
    EXPECT_TRUE(absl::IsInvalidArgument(p.status())) << text;
    EXPECT_THAT(Error(p.status()), HasSubstr("port:")) << text;
    EXPECT_THAT(Error(p.status()), HasSubstr("1..65535")) << text;
  }
  EXPECT_EQ(Error(ParsePort("70000", "--port", true).status()),
            "--port: 70000 is not a port (1..65535, or 0 for any free port)");
  EXPECT_EQ(Error(ParsePort("99999", "port").status()),
            "port: 99999 is not a port (1..65535)");
  EXPECT_EQ(Error(ParsePort("12a", "port").status()),
            "port: '12a' is not a port (1..65535)");
  EXPECT_THAT(Error(ParsePort("", "port").status()), HasSubstr("missing"));
}

TEST(CheckPort, SameRulesForNumbers) {
  EXPECT_EQ(*CheckPort(7123, "--port"), 7123);
  EXPECT_EQ(*CheckPort(0, "--port", true), 0);
  EXPECT_FALSE(CheckPort(0, "--port").ok());
  EXPECT_EQ(Error(CheckPort(-5, "--port", true).status()),
            "--port: -5 is not a port (1..65535, or 0 for any free port)");
  EXPECT_FALSE(CheckPort(65536, "--port", true).ok());
  EXPECT_FALSE(CheckPort(1LL << 40, "--port", true).ok());
}

TEST(ParseHostPort, TheFormsGrpcTakes) {
  absl::StatusOr<HostPort> a = ParseHostPort("127.0.0.1:7123", "controller");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7123);
  a = ParseHostPort("ctl.example.com:443", "controller");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "ctl.example.com");
  a = ParseHostPort("[::1]:123", "controller");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 123);
  a = ParseHostPort("dns:///h:1", "controller");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "h");
  EXPECT_EQ(a->port, 1);
  a = ParseHostPort("ipv4:10.0.0.1:9", "controller");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "10.0.0.1");
  a = ParseHostPort("ipv6:[fe80::1]:9", "controller");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "fe80::1");
  a = ParseHostPort("0.0.0.0:0", "--listen", /*allow_zero=*/true);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->port, 0);
}

TEST(ParseHostPort, MissingParts) {
  EXPECT_THAT(Error(ParseHostPort("host:", "controller").status()),
              HasSubstr("controller: the port is missing"));
  EXPECT_THAT(Error(ParseHostPort(":123", "controller").status()),
              HasSubstr("has no host"));
  EXPECT_THAT(Error(ParseHostPort("host", "controller").status()),
              HasSubstr("has no port; write HOST:PORT"));
  EXPECT_THAT(Error(ParseHostPort("", "controller").status()),
              HasSubstr("has no port"));
  EXPECT_THAT(Error(ParseHostPort("[::1]", "controller").status()),
              HasSubstr("write [::1]:PORT"));
  EXPECT_THAT(Error(ParseHostPort("[::1", "controller").status()),
              HasSubstr("no ']'"));
  EXPECT_THAT(Error(ParseHostPort("[]:123", "controller").status()),
              HasSubstr("has no host"));
  EXPECT_THAT(Error(ParseHostPort("dns:///:1", "controller").status()),
              HasSubstr("has no host"));
}

TEST(ParseHostPort, AmbiguousIpv6) {
  absl::StatusOr<HostPort> a = ParseHostPort("::1:123", "controller");
  EXPECT_TRUE(absl::IsInvalidArgument(a.status()));
  EXPECT_THAT(Error(a.status()), HasSubstr("ambiguous"));
  EXPECT_THAT(Error(a.status()), HasSubstr("[::1]:123"));
}

TEST(ParseHostPort, OutOfRangeInEveryForm) {
  for (const char* address :
       {"h:0", "h:-5", "h:65536", "h:99999", "h:12a", "[::1]:0", "[::1]:70000",
        "dns:///h:0", "dns:///h:65536", "ipv4:1.2.3.4:99999",
        "ipv6:[::1]:65536"}) {
    absl::StatusOr<HostPort> a = ParseHostPort(address, "controller");
    EXPECT_TRUE(absl::IsInvalidArgument(a.status())) << address;
    EXPECT_THAT(Error(a.status()), HasSubstr("controller:")) << address;
    EXPECT_THAT(Error(a.status()), HasSubstr("is not a port")) << address;
  }
  EXPECT_FALSE(ParseHostPort("h:70000", "--listen", true).ok());
}

TEST(IsLoopbackHost, Loopbacks) {
  for (const char* h : {"localhost", "LocalHost", "127.0.0.1", "127.1.2.3",
                        "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(h)) << h;
  }
  for (const char* h : {"10.0.0.1", "128.0.0.1", "::2", "example.com", "",
                        "localhost.example.com", "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackHost(h)) << h;
  }
}

}  // namespace
}  // namespace ntpfleet
