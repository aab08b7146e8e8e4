#include "tests/testing/sim_agent.h"

#include <utility>

#include "absl/status/statusor.h"
#include "common/config/config.h"
#include "gtest/gtest.h"

namespace ntpfleet::testing {

SimAgent::SimAgent(const SimAgentOptions& o) {
  const clock::MonotonicClock* mono = o.mono ? o.mono : &system_mono_;
  absl::StatusOr<config::AgentConfig> cfg =
      config::ParseConfig(o.config_text, "test.conf", config::NoIncludeFiles());
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  clock::SimClockParams params;
  params.initial_offset = o.initial_offset;
  clock_ = std::make_unique<clock::SimClock>(
      mono, clock::AnchorToRealtime(*mono), params);
  if (!cfg.ok()) return;
  net::AgentOptions options;
  options.config = *cfg;
  options.node_name = o.node_name;
  options.port = 0;
  options.listen_address = "127.0.0.1";
  options.control_socket = o.socket;
  options.clock = clock_.get();
  options.mono = mono;
  options.report_bias = o.report_bias;
  const clock::SimClock* sim = clock_.get();
  options.sim_true_offset = [sim] { return -sim->Phase(); };
  absl::StatusOr<std::unique_ptr<net::AgentLoop>> loop =
      net::AgentLoop::Create(std::move(options));
  EXPECT_TRUE(loop.ok()) << loop.status();
  if (!loop.ok()) return;
  loop_ = *std::move(loop);
  if (o.start) Start();
}

void SimAgent::Start() {
  if (!loop_ || thread_.joinable()) return;
  thread_ = std::thread([this] { EXPECT_TRUE(loop_->Run().ok()); });
}

void SimAgent::Stop() {
  if (loop_) loop_->RequestStop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ntpfleet::testing
