// static_libc.cc's definitions, linked into this ordinary test binary: its own
// getaddrinfo etc. come before libc.so's, as they come before libc.a's in a
// static binary. Only numeric addresses here (names: tests/static).
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

struct Entry {
  int family;
  int socktype;
  int protocol;
  std::string address;
  int port;
};

// getaddrinfo's answer as values (freed with freeaddrinfo).
std::vector<Entry> Lookup(const char* node, const char* service,
                          const addrinfo& hints, int* rc) {
  addrinfo* result = nullptr;
  *rc = getaddrinfo(node, service, &hints, &result);
  std::vector<Entry> out;
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    int port = 0;
    if (ai->ai_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
      inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
      port = ntohs(sin->sin_port);
      EXPECT_EQ(ai->ai_addrlen, sizeof(sockaddr_in));
    } else {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
      inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
      port = ntohs(sin6->sin6_port);
      EXPECT_EQ(ai->ai_addrlen, sizeof(sockaddr_in6));
    }
    out.push_back(
        {ai->ai_family, ai->ai_socktype, ai->ai_protocol, text, port});
  }
  freeaddrinfo(result);
  return out;
}

bool ServicesHasNtp() {
  std::ifstream in("/etc/services");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("ntp", 0) == 0 && line.find("123/udp") != std::string::npos)
      return true;
  }
  return false;
}

MATCHER_P5(IsEntry, family, socktype, protocol, address, port, "") {
  return arg.family == family && arg.socktype == socktype &&
         arg.protocol == protocol && arg.address == address && arg.port == port;
}

using ::testing::ElementsAre;

TEST(GetaddrinfoTest, NumericHostAndPortForOneSocketType) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  int rc = -1;
  EXPECT_THAT(
      Lookup("192.0.2.1", "123", hints, &rc),
      ElementsAre(IsEntry(AF_INET, SOCK_DGRAM, IPPROTO_UDP, "192.0.2.1", 123)));
  EXPECT_EQ(rc, 0);
}

TEST(GetaddrinfoTest, EverySocketTypeWhenNoneIsNamed) {
  addrinfo hints{};
  int rc = -1;
  EXPECT_THAT(
      Lookup("2001:db8::1", "8443", hints, &rc),
      ElementsAre(
          IsEntry(AF_INET6, SOCK_STREAM, IPPROTO_TCP, "2001:db8::1", 8443),
          IsEntry(AF_INET6, SOCK_DGRAM, IPPROTO_UDP, "2001:db8::1", 8443),
          IsEntry(AF_INET6, SOCK_RAW, 0, "2001:db8::1", 8443)));
  EXPECT_EQ(rc, 0);
}

TEST(GetaddrinfoTest, NullNodeIsWildcardToBindOrLoopback) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  int rc = -1;
  EXPECT_THAT(
      Lookup(nullptr, "50051", hints, &rc),
      ElementsAre(
          IsEntry(AF_INET6, SOCK_STREAM, IPPROTO_TCP, "::", 50051),
          IsEntry(AF_INET, SOCK_STREAM, IPPROTO_TCP, "0.0.0.0", 50051)));
  hints.ai_flags = 0;
  hints.ai_family = AF_INET;
  EXPECT_THAT(Lookup(nullptr, "50051", hints, &rc),
              ElementsAre(IsEntry(AF_INET, SOCK_STREAM, IPPROTO_TCP,
                                  "127.0.0.1", 50051)));
}

TEST(GetaddrinfoTest, ServiceByNameFromEtcServices) {
  if (!ServicesHasNtp()) GTEST_SKIP() << "no ntp 123/udp in /etc/services";
  addrinfo hints{};
  int rc = -1;
  // ntp is a UDP service only: no TCP or raw entry.
  EXPECT_THAT(
      Lookup("192.0.2.1", "ntp", hints, &rc),
      ElementsAre(IsEntry(AF_INET, SOCK_DGRAM, IPPROTO_UDP, "192.0.2.1", 123)));
  EXPECT_EQ(rc, 0);
}

TEST(GetaddrinfoTest, Errors) {
  addrinfo hints{};
  int rc = 0;
  Lookup(nullptr, nullptr, hints, &rc);
  EXPECT_EQ(rc, EAI_NONAME);
  Lookup("192.0.2.1", "no-such-service-xyz", hints, &rc);
  EXPECT_EQ(rc, EAI_SERVICE);
  Lookup("192.0.2.1", "70000", hints, &rc);
  EXPECT_EQ(rc, EAI_SERVICE);
  hints.ai_flags = AI_NUMERICSERV;
  Lookup("192.0.2.1", "ntp", hints, &rc);
  EXPECT_EQ(rc, EAI_NONAME);
  hints.ai_flags = AI_NUMERICHOST;
  Lookup("ntp.example.net", "123", hints, &rc);
  EXPECT_EQ(rc, EAI_NONAME);
  hints.ai_flags = 0x40000000;
  Lookup("192.0.2.1", "123", hints, &rc);
  EXPECT_EQ(rc, EAI_BADFLAGS);
  hints.ai_flags = 0;
  hints.ai_family = AF_UNIX;
  Lookup("192.0.2.1", "123", hints, &rc);
  EXPECT_EQ(rc, EAI_FAMILY);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_SEQPACKET;
  Lookup("192.0.2.1", "123", hints, &rc);
  EXPECT_EQ(rc, EAI_SOCKTYPE);
}

TEST(GetaddrinfoTest, CanonicalNameIsFreedWithTheList) {
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* result = nullptr;
  ASSERT_EQ(getaddrinfo("192.0.2.1", "123", &hints, &result), 0);
  ASSERT_NE(result, nullptr);
  ASSERT_NE(result->ai_canonname, nullptr);
  EXPECT_STREQ(result->ai_canonname, "192.0.2.1");
  freeaddrinfo(result);  // The ASan pass reports a leak or a bad free here.
}

TEST(GetnameinfoTest, NumericHostAndService) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(123);
  inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  ASSERT_EQ(getnameinfo(reinterpret_cast<sockaddr*>(&sin), sizeof(sin), host,
                        sizeof(host), service, sizeof(service),
                        NI_NUMERICHOST | NI_NUMERICSERV),
            0);
  EXPECT_STREQ(host, "192.0.2.1");
  EXPECT_STREQ(service, "123");
  // Too small a buffer for "192.0.2.1".
  EXPECT_EQ(getnameinfo(reinterpret_cast<sockaddr*>(&sin), sizeof(sin), host, 5,
                        nullptr, 0, NI_NUMERICHOST),
            EAI_OVERFLOW);
}

TEST(GetnameinfoTest, Ipv6ScopeAndServiceName) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(123);
  sin6.sin6_scope_id = 2;
  inet_pton(AF_INET6, "fe80::1", &sin6.sin6_addr);
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  ASSERT_EQ(getnameinfo(reinterpret_cast<sockaddr*>(&sin6), sizeof(sin6), host,
                        sizeof(host), service, sizeof(service),
                        NI_NUMERICHOST | NI_DGRAM),
            0);
  EXPECT_STREQ(host, "fe80::1%2");
  if (ServicesHasNtp()) {
    EXPECT_STREQ(service, "ntp");
  }
}

TEST(GetnameinfoTest, RefusesOtherFamilies) {
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  char host[NI_MAXHOST];
  EXPECT_EQ(getnameinfo(reinterpret_cast<sockaddr*>(&ss), sizeof(ss), host,
                        sizeof(host), nullptr, 0, NI_NUMERICHOST),
            EAI_FAMILY);
}

TEST(GetservbyportTest, FillsTheCallersBufferOrSaysErange) {
  if (!ServicesHasNtp()) GTEST_SKIP() << "no ntp 123/udp in /etc/services";
  servent entry{};
  servent* found = nullptr;
  char buffer[256];
  ASSERT_EQ(getservbyport_r(htons(123), "udp", &entry, buffer, sizeof(buffer),
                            &found),
            0);
  ASSERT_EQ(found, &entry);
  EXPECT_STREQ(entry.s_name, "ntp");
  EXPECT_STREQ(entry.s_proto, "udp");
  EXPECT_EQ(entry.s_port, htons(123));
  EXPECT_EQ(getservbyport_r(htons(123), "udp", &entry, buffer, 8, &found),
            ERANGE);
  EXPECT_EQ(found, nullptr);
  // No such port: 0 and no entry.
  EXPECT_EQ(
      getservbyport_r(htons(1), "udp", &entry, buffer, sizeof(buffer), &found),
      0);
  EXPECT_EQ(found, nullptr);
  servent* by_name = getservbyname("ntp", "udp");
  ASSERT_NE(by_name, nullptr);
  EXPECT_EQ(by_name->s_port, htons(123));
  EXPECT_EQ(getservbyname("ntp", "tcp"), nullptr);
}

TEST(DlopenTest, LoadsNothing) {
  EXPECT_EQ(dlopen("libc.so.6", RTLD_NOW), nullptr);
}

}  // namespace
