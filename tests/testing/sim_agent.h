// SimAgent: a live AgentLoop for the tests, on a SimClock whose true time is
// anchored to CLOCK_REALTIME (clock::AnchorToRealtime), serving NTP on
// 127.0.0.1 (port 0), with a control socket; its loop on a thread of its own.
//
//   testing::SimAgentOptions o;
//   o.socket = dir + "/agent.sock";
//   o.initial_offset = absl::Milliseconds(30);
//   testing::SimAgent agent(o);       // running
//   agent.clock().Phase();             // local minus true
//   agent.loop()->PostProbes(...);
#ifndef NTPFLEET_TESTS_TESTING_SIM_AGENT_H_
#define NTPFLEET_TESTS_TESTING_SIM_AGENT_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "agent/clock/clock.h"
#include "agent/clock/sim_clock.h"
#include "agent/clock/system_clock.h"
#include "agent/net/agent_loop.h"

namespace ntpfleet::testing {

struct SimAgentOptions {
  // A node serving its local clock at stratum 10 by default.
  std::string config_text =
      "server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n";
  std::string socket;  // the control socket's path
  std::string node_name = "test";
  absl::Duration initial_offset;  // the SimClock's, local minus true
  absl::Duration report_bias;     // --sim-report-bias
  // The clock the SimClock and the loop run on; null: CLOCK_MONOTONIC. Must
  // outlive the SimAgent.
  const clock::MonotonicClock* mono = nullptr;
  bool start = true;  // run the loop at once, else at Start()
};

class SimAgent {
 public:
  // A configuration or start failure is a test failure (EXPECT); loop() is
  // then null.
  explicit SimAgent(const SimAgentOptions& options);
  ~SimAgent() { Stop(); }
  SimAgent(const SimAgent&) = delete;
  SimAgent& operator=(const SimAgent&) = delete;

  void Start();
  // Stops the loop and waits for Run() to return (the clock stays readable).
  void Stop();
  net::AgentLoop* loop() { return loop_.get(); }
  clock::SimClock& clock() { return *clock_; }

 private:
  clock::SystemMonotonicClock system_mono_;
  std::unique_ptr<clock::SimClock> clock_;
  std::unique_ptr<net::AgentLoop> loop_;
  std::thread thread_;
};

}  // namespace ntpfleet::testing

#endif  // NTPFLEET_TESTS_TESTING_SIM_AGENT_H_
