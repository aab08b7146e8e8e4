// The crosscheck probes' limits on their own (agent/net/probe_limits.h): what
// is kept of an assignment, and which requests the limiter lets leave.
#include "agent/net/probe_limits.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::net {
namespace {

clock::MonoTime At(absl::Duration d) {
  return clock::MonoTime::FromDuration(absl::Hours(1) + d);
}

TEST(ProbeLimitsTest, ParsesAddressLiteralsOnly) {
  EXPECT_TRUE(ParseProbeAddress("192.0.2.1:123").ok());
  EXPECT_TRUE(ParseProbeAddress("[2001:db8::1]:123").ok());
  EXPECT_FALSE(ParseProbeAddress("ntp.example:123").ok());
  EXPECT_FALSE(ParseProbeAddress("192.0.2.1").ok());
  EXPECT_FALSE(ParseProbeAddress("192.0.2.1:0").ok());
  EXPECT_FALSE(ParseProbeAddress("2001:db8::1:123").ok());
  // Longer than any literal: refused before it is parsed.
  EXPECT_FALSE(ParseProbeAddress(std::string(60, '0') + "1.2.3.4:123").ok());
}

TEST(ProbeLimitsTest, KeepsTheFirstSixteenValidTargets) {
  v1::ProbeAssignment in;
  in.mutable_interval()->set_seconds(128);
  for (int i = 0; i < 100; ++i) {
    v1::ProbeTarget* t = in.add_targets();
    t->set_node(i % 2 == 0 ? absl::StrCat("n", i) : std::string(300, 'x'));
    t->set_address(absl::StrCat("10.0.0.", i, ":123"));
  }
  const BoundedAssignment b = BoundProbeAssignment(in);
  ASSERT_EQ(b.assignment.targets_size(), kMaxProbeTargets);
  EXPECT_EQ(b.assignment.targets(0).node(), "n0");
  EXPECT_EQ(b.assignment.targets(15).node(), "n30");
  EXPECT_EQ(b.invalid, 50);
  EXPECT_EQ(b.excess, 34);
  EXPECT_EQ(b.assignment.interval().seconds(), 128);
  // The log's account of the first bad one is short and one line.
  EXPECT_LT(b.first_invalid.size(), 200u);
  EXPECT_EQ(b.first_invalid.find('\n'), std::string::npos);
}

TEST(ProbeLimitsTest, QuoteForLogEscapesAndCuts) {
  EXPECT_EQ(QuoteForLog("a\nb"), "'a\\nb'");
  EXPECT_EQ(QuoteForLog(std::string(100, 'a'), 3), "'aaa'...");
}

TEST(ProbeLimitsTest, OneRequestPerAddressPer64s) {
  ProbeSendLimiter limiter(16);
  EXPECT_EQ(limiter.Admit("a", At(absl::ZeroDuration())),
            ProbeSendLimiter::kSend);
  EXPECT_EQ(limiter.Admit("a", At(absl::Seconds(1))),
            ProbeSendLimiter::kTooSoon);
  EXPECT_EQ(limiter.Admit("a", At(absl::Seconds(63.999))),
            ProbeSendLimiter::kTooSoon);
  EXPECT_EQ(limiter.NotBefore("a"), At(absl::Seconds(64)));
  // Exactly the interval later: a monitor polling every 64 s is never refused.
  EXPECT_EQ(limiter.Admit("a", At(absl::Seconds(64))), ProbeSendLimiter::kSend);
  // Another address is not held back by it.
  EXPECT_EQ(limiter.Admit("b", At(absl::Seconds(64))), ProbeSendLimiter::kSend);
}

TEST(ProbeLimitsTest, AtMostTheBudgetInAny64s) {
  ProbeSendLimiter limiter(3);
  int sent = 0;
  // A new address every 100 ms for 64 s: 3 leave.
  for (int i = 0; i < 640; ++i) {
    sent += limiter.Admit(absl::StrCat("10.0.0.", i),
                          At(absl::Milliseconds(100 * i))) ==
            ProbeSendLimiter::kSend;
  }
  EXPECT_EQ(sent, 3);
  // 64 s after the first, a fourth may leave.
  EXPECT_EQ(limiter.Admit("x", At(absl::Seconds(64))), ProbeSendLimiter::kSend);
  EXPECT_EQ(limiter.Admit("y", At(absl::Seconds(64))),
            ProbeSendLimiter::kOverBudget);
}

TEST(ProbeLimitsTest, HoldsOnlyLengthenAndAreForgottenWhenOver) {
  ProbeSendLimiter limiter(16);
  limiter.HoldUntil("a", At(absl::Hours(1)));
  limiter.HoldUntil("a", At(absl::Seconds(10)));  // never shortens
  EXPECT_EQ(limiter.Admit("a", At(absl::Minutes(59))),
            ProbeSendLimiter::kTooSoon);
  EXPECT_EQ(limiter.Admit("a", At(absl::Hours(1))), ProbeSendLimiter::kSend);
  // Entries live only while they hold something back.
  EXPECT_EQ(limiter.Admit("b", At(absl::Hours(2))), ProbeSendLimiter::kSend);
  EXPECT_EQ(limiter.remembered(), 1u);
}

TEST(ProbeLimitsTest, MemoryIsBounded) {
  ProbeSendLimiter limiter(16);
  for (size_t i = 0; i < ProbeSendLimiter::kMaxAddresses + 100; ++i) {
    limiter.HoldUntil(
        absl::StrCat("a", i),
        At(absl::Hours(1) + absl::Seconds(static_cast<double>(i))));
  }
  EXPECT_EQ(limiter.remembered(), ProbeSendLimiter::kMaxAddresses);
  // The ones ending first went.
  EXPECT_EQ(limiter.NotBefore("a0"), clock::MonoTime());
  EXPECT_NE(limiter.NotBefore(
                absl::StrCat("a", ProbeSendLimiter::kMaxAddresses + 99)),
            clock::MonoTime());
}

}  // namespace
}  // namespace ntpfleet::net
