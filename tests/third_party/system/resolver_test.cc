#include "third_party/system/resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::system {
namespace {

using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::SizeIs;

std::string Text(const ResolvedAddress& a) {
  char text[INET6_ADDRSTRLEN] = {};
  const void* bytes =
      a.family() == AF_INET
          ? static_cast<const void*>(
                &reinterpret_cast<const sockaddr_in*>(&a.address)->sin_addr)
          : static_cast<const void*>(
                &reinterpret_cast<const sockaddr_in6*>(&a.address)->sin6_addr);
  inet_ntop(a.family(), bytes, text, sizeof(text));
  return text;
}

TEST(ResolveHostTest, ReturnsLiteralIpv4AsItIs) {
  absl::StatusOr<std::vector<ResolvedAddress>> r =
      ResolveHost("192.0.2.7", AF_UNSPEC);
  ASSERT_THAT(r, IsOk());
  ASSERT_THAT(*r, SizeIs(1));
  EXPECT_EQ((*r)[0].family(), AF_INET);
  EXPECT_EQ((*r)[0].length, sizeof(sockaddr_in));
  EXPECT_EQ(Text((*r)[0]), "192.0.2.7");
  EXPECT_EQ(reinterpret_cast<const sockaddr_in*>(&(*r)[0].address)->sin_port,
            0);
}

TEST(ResolveHostTest, ReturnsLiteralIpv6AsItIs) {
  absl::StatusOr<std::vector<ResolvedAddress>> r =
      ResolveHost("2001:db8::7", AF_UNSPEC, /*numeric_only=*/true);
  ASSERT_THAT(r, IsOk());
  ASSERT_THAT(*r, SizeIs(1));
  EXPECT_EQ((*r)[0].family(), AF_INET6);
  EXPECT_EQ(Text((*r)[0]), "2001:db8::7");
}

TEST(ResolveHostTest, RefusesNamesWhenNumericOnly) {
  EXPECT_THAT(ResolveHost("ntp.example.net", AF_UNSPEC, /*numeric_only=*/true),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST(ResolveHostTest, RefusesNonIpFamilies) {
  EXPECT_THAT(ResolveHost("192.0.2.7", AF_UNIX),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("not IP")));
}

TEST(ResolveAddressTest, RefusesNonIpFamilies) {
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  EXPECT_THAT(ResolveAddress(reinterpret_cast<sockaddr*>(&ss), sizeof(ss)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("not IP")));
}

}  // namespace
}  // namespace ntpfleet::system
