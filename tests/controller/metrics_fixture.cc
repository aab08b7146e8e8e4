// For tests/controller/metrics_scrape_test.py: a ControllerCore over a real
// Registry and Store, with nodes in every state the page has to show, serving
// /metrics exactly as ntpfleet-controller does (MetricsServer with
// RenderMetrics(core)) on 127.0.0.1, a free port. Prints the port on one line,
// then serves until its standard input closes.
//
//   metrics_fixture DB_PATH
//
// The nodes (fake clocks: wall 2023-11-14T22:13:20Z, so nothing depends on
// when the test runs):
//   db-1     CONNECTED, synchronised, 12 us offset, +12.5 ppm, leap none; its
//            agent version has a double quote and a backslash (escaping)
//   db-2     reported once, then its stream ended: DISCONNECTED, last values
//   web-1    known from the inventory only (no status since the start)
//   web-2    reported, then silent for 5 report intervals: STALE
//   cache-1  CONNECTED, unsynchronised (no error bound), leap alarm
//   dup      two live agents with the same name (two series, told apart by
//            their peer address)
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/proto_time.h"
#include "controller/metrics.h"
#include "controller/registry.h"
#include "controller/service.h"
#include "controller/store.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/fake_clock.h"

namespace {

using ntpfleet::SetDuration;
using ntpfleet::SetTimestamp;
namespace v1 = ntpfleet::v1;

v1::Hello Hello(const std::string& name, const std::string& instance) {
  v1::Hello hello;
  hello.set_node_name(name);
  hello.set_instance_id(instance);
  hello.set_agent_version("0.1.0");
  hello.set_role(v1::ROLE_CLIENT);
  hello.set_config_digest(std::string(64, 'c'));
  SetDuration(absl::Seconds(1), hello.mutable_report_interval());
  return hello;
}

v1::SyncStatus Status(absl::Duration offset, double frequency_ppm) {
  v1::SyncStatus s;
  SetTimestamp(absl::FromUnixSeconds(1700000000), s.mutable_sampled_at());
  s.set_state(v1::SYNC_STATE_SYNCHRONISED);
  SetDuration(offset, s.mutable_offset());
  SetDuration(absl::Microseconds(340), s.mutable_error_bound());
  s.set_frequency_ppm(frequency_ppm);
  s.set_stratum(3);
  s.set_leap(v1::LEAP_NONE);
  SetDuration(absl::Microseconds(1500), s.mutable_root_delay());
  SetDuration(absl::Microseconds(250), s.mutable_root_dispersion());
  return s;
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "metrics_fixture: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using ntpfleet::controller::ControllerCore;
  using ntpfleet::controller::Registry;
  using ntpfleet::controller::Store;
  if (argc != 2) return Fail("usage: metrics_fixture DB_PATH");
  ntpfleet::testing::FakeClock clock(absl::FromUnixSeconds(1700000000));
  ntpfleet::testing::FakeMonotonicClock mono;
  Registry registry(&clock, &mono);
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(argv[1]);
  if (!store.ok()) return Fail(std::string(store.status().message()));

  registry.AddKnownNode(Hello("web-1", ""), absl::FromUnixSeconds(1699990000));
  auto connect = [&](v1::Hello hello, const std::string& peer) -> uint64_t {
    absl::StatusOr<uint64_t> c = registry.Connect(hello, peer);
    if (!c.ok()) {
      std::fprintf(stderr, "metrics_fixture: %s\n",
                   std::string(c.status().message()).c_str());
      std::exit(1);
    }
    return *c;
  };
  auto report = [&](uint64_t connection, const v1::SyncStatus& status) {
    if (absl::Status s = registry.Report(connection, status); !s.ok()) {
      std::fprintf(stderr, "metrics_fixture: %s\n",
                   std::string(s.message()).c_str());
      std::exit(1);
    }
  };

  const uint64_t web2 = connect(Hello("web-2", "w2"), "ipv4:127.0.0.1:40004");
  report(web2, Status(absl::Microseconds(-20), -3));
  const uint64_t db2 = connect(Hello("db-2", "d2"), "ipv4:127.0.0.1:40002");
  report(db2, Status(absl::Microseconds(30), 7.25));
  registry.Disconnect(db2);
  // web-2 turns STALE (3 report intervals of silence); the rest report after.
  mono.Advance(absl::Seconds(5));
  clock.Advance(absl::Seconds(5));

  v1::Hello db1_hello = Hello("db-1", "d1");
  db1_hello.set_agent_version("0.1.0 \"lab\" C:\\agent");
  const uint64_t db1 = connect(db1_hello, "ipv4:127.0.0.1:40001");
  report(db1, Status(absl::Microseconds(12), 12.5));
  const uint64_t cache1 =
      connect(Hello("cache-1", "c1"), "ipv4:127.0.0.1:40005");
  v1::SyncStatus unsynced = Status(absl::ZeroDuration(), 0);
  unsynced.set_state(v1::SYNC_STATE_UNSYNCHRONISED);
  unsynced.clear_error_bound();
  unsynced.set_leap(v1::LEAP_ALARM);
  unsynced.set_stratum(16);
  report(cache1, unsynced);
  for (const char* i : {"x1", "x2"}) {
    const uint64_t dup =
        connect(Hello("dup", i), std::string("ipv4:127.0.0.1:4100") + i[1]);
    report(dup, Status(absl::Microseconds(5), 1));
  }

  // Snapshots rebuilt on every read, so the crosscheck's solve below shows.
  ntpfleet::controller::ControllerOptions options;
  options.snapshot_interval = absl::ZeroDuration();
  ControllerCore core(&clock, &registry, store->get(), options);
  // The crosscheck: db-1, web-2 and cache-1 probe each other (three nodes,
  // K = 3: all pairs). Their clocks at y = 12 us, -20 us, 0 (reference
  // minus local); theta_ij = y_i - y_j. One result for a target nobody
  // assigned is dropped.
  {
    auto& hub = core.crosscheck_hub();
    // The controller has seen every node in its sync state for longer than a
    // probe report's delay: their probes count (crosscheck::NodeInput
    // .state_since).
    for (const v1::Node& n : core.Fleet()->nodes()) {
      hub.StateSince(
          n.name(),
          n.has_status() ? n.status().state() : v1::SYNC_STATE_UNSPECIFIED,
          clock.Now() - ntpfleet::controller::crosscheck::kProbeReportDelay);
    }
    hub.UpdateMesh({{"db-1", "127.0.0.1:40001"},
                    {"web-2", "127.0.0.1:40004"},
                    {"cache-1", "127.0.0.1:40005"}},
                   clock.Now());
    const std::map<std::string, std::pair<int, std::string>> y = {
        {"db-1", {12, "127.0.0.1:40001"}},
        {"web-2", {-20, "127.0.0.1:40004"}},
        {"cache-1", {0, "127.0.0.1:40005"}}};
    for (const auto& [from, fy] : y) {
      v1::ProbeReport report;
      for (const auto& [to, ty] : y) {
        if (to == from) continue;
        v1::ProbeResult* r = report.add_results();
        r->set_node(to);
        r->set_address(ty.second);
        SetDuration(absl::Microseconds(fy.first - ty.first),
                    r->mutable_offset());
        SetDuration(absl::Microseconds(200), r->mutable_delay());
        SetTimestamp(clock.Now(), r->mutable_measured_at());
      }
      if (from == "db-1") {
        v1::ProbeResult* r = report.add_results();
        r->set_node("ghost");
        r->set_address("127.0.0.1:1");
        SetDuration(absl::Microseconds(1), r->mutable_offset());
        SetDuration(absl::Microseconds(200), r->mutable_delay());
      }
      if (!hub.Accept(from, report, clock.Now()).ok()) {
        return Fail("probe report refused");
      }
    }
    core.SolveCrosscheck(/*force=*/true);
  }
  absl::StatusOr<std::unique_ptr<ntpfleet::controller::MetricsServer>> server =
      ntpfleet::controller::MetricsServer::Start("127.0.0.1:0", [&core] {
        return ntpfleet::controller::RenderMetrics(core);
      });
  if (!server.ok()) return Fail(std::string(server.status().message()));
  std::printf("%d\n", (*server)->port());
  std::fflush(stdout);
  while (std::getchar() != EOF) {
  }
  return 0;
}
