// ResyncGate: resyncs from different controllers are held apart; repeats from
// one controller are that controller's business.
#include "agent/report/resync_gate.h"

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet::report {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

clock::MonoTime At(double seconds) {
  return clock::MonoTime::FromDuration(absl::Seconds(seconds));
}

TEST(ResyncGateTest, OneControllerIsNeverHeldBack) {
  // An agent with one controller behaves as before: that controller's own
  // --resync-min-interval (0 s in the integration tests) decides.
  ResyncGate gate(absl::Seconds(5));
  for (double t : {0.0, 0.1, 0.2, 1.0, 4.9}) {
    EXPECT_EQ(gate.Admit("a:7123", At(t)), std::nullopt) << t;
  }
}

TEST(ResyncGateTest, AnotherControllerWithinTheIntervalIsRefusedSayingWhy) {
  ResyncGate gate(absl::Seconds(5));
  EXPECT_EQ(gate.Admit("a:7123", At(100)), std::nullopt);
  EXPECT_THAT(gate.Admit("b:7123", At(101.25)),
              Optional(std::string(
                  "resynced at the request of controller a:7123 1.2s ago; at "
                  "most one resync every 5s from different controllers")));
  // A refusal is not an admission: a's next request is still fine.
  EXPECT_EQ(gate.Admit("a:7123", At(102)), std::nullopt);
  // b waits for min_interval after a's LAST admitted request (102 s).
  EXPECT_THAT(gate.Admit("b:7123", At(106.9)), Optional(HasSubstr("4.9s ago")));
  EXPECT_EQ(gate.Admit("b:7123", At(107)), std::nullopt);
  // And now a is held back by b.
  EXPECT_THAT(gate.Admit("a:7123", At(108)),
              Optional(HasSubstr("controller b:7123 1s ago")));
}

TEST(ResyncGateTest, TwoControllersAskingInTurnsGetNoMoreThanOne) {
  // a and b each ask every second, alternately, for a minute. A gate that let
  // both through would admit 60; one per controller-interval would admit 60
  // too. With the gate, every admitted resync from one controller after one
  // from the other is at least 5 s later: at most 60 / 5 + 1 = 13 switches,
  // and all but those come from one controller in a row.
  ResyncGate gate(absl::Seconds(5));
  int admitted = 0;
  std::string last_admitted;
  double last_switch = -100;
  for (int t = 0; t < 60; ++t) {
    const std::string who = t % 2 == 0 ? "a:1" : "b:1";
    if (gate.Admit(who, At(t)) == std::nullopt) {
      ++admitted;
      if (who != last_admitted) {
        EXPECT_GE(t - last_switch, 5) << "at " << t;
        last_switch = t;
      }
      last_admitted = who;
    }
  }
  // The first to ask (a) keeps the node: b is always within 1 s of a's last.
  EXPECT_EQ(admitted, 30);
  EXPECT_EQ(last_admitted, "a:1");
}

}  // namespace
}  // namespace ntpfleet::report
