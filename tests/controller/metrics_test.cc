// /metrics: the exposition text of hand-made fleets (per-node series kept for
// disconnected and inventory-only nodes with ntpfleet_node_up 0, base units,
// connection and flag dimensions apart, escaping, each family one group, the
// size of a 100 000-node page), and the HTTP server answering when descriptor
// numbers are past FD_SETSIZE, as they are with a thousand agents connected.
// tests/controller/metrics_scrape_test.py reads a served page with Prometheus'
// own parser.
#include "controller/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "common/version.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::Node MakeNode(const std::string& name, v1::ConnectionState connection,
                  bool with_status = true) {
  v1::Node n;
  n.set_name(name);
  n.set_connection(connection);
  n.mutable_hello()->set_node_name(name);
  n.mutable_hello()->set_agent_version("0.1.0");
  n.mutable_hello()->set_role(v1::ROLE_CLIENT);
  n.mutable_hello()->set_config_digest(std::string(64, 'a'));
  SetTimestamp(absl::FromUnixMillis(1700000000250), n.mutable_last_seen());
  if (with_status) {
    v1::SyncStatus* s = n.mutable_status();
    s->set_state(v1::SYNC_STATE_SYNCHRONISED);
    SetDuration(absl::Microseconds(12), s->mutable_offset());
    SetDuration(absl::Microseconds(340), s->mutable_error_bound());
    s->set_frequency_ppm(12.5);
    s->set_stratum(3);
    s->set_leap(v1::LEAP_NONE);
    SetDuration(absl::Microseconds(1500), s->mutable_root_delay());
    SetDuration(absl::Microseconds(250), s->mutable_root_dispersion());
    v1::PeerStatus* p = s->add_peers();
    p->set_mark(v1::SELECTION_MARK_SYSTEM_PEER);
    p->set_reach(0x7f);  // 7 of the last 8
  }
  return n;
}

// The page's sample lines, as "name{labels}" -> value text.
std::map<std::string, std::string> Samples(const std::string& page) {
  std::map<std::string, std::string> samples;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    samples[std::string(line.substr(0, space))] =
        std::string(line.substr(space + 1));
  }
  return samples;
}

std::string Render(const v1::Fleet& fleet) {
  return RenderFleetMetrics(fleet, ResyncCounters{});
}

TEST(RenderFleetMetricsTest, KeepsDisconnectedNodeWithUpZeroAndItsLastValues) {
  v1::Fleet fleet;
  *fleet.add_nodes() = MakeNode("db-1", v1::CONNECTION_STATE_CONNECTED);
  *fleet.add_nodes() = MakeNode("db-2", v1::CONNECTION_STATE_DISCONNECTED);
  *fleet.add_nodes() = MakeNode("db-3", v1::CONNECTION_STATE_STALE);
  const auto samples = Samples(Render(fleet));
  // The old page left db-2 out entirely: a "node not reporting" alert had no
  // series to fire on.
  EXPECT_EQ(samples.at("ntpfleet_node_up{node=\"db-1\"}"), "1");
  EXPECT_EQ(samples.at("ntpfleet_node_up{node=\"db-2\"}"), "0");
  EXPECT_EQ(samples.at("ntpfleet_node_up{node=\"db-3\"}"), "0");
  EXPECT_EQ(samples.at("ntpfleet_node_offset_seconds{node=\"db-2\"}"),
            "1.2e-05");
  EXPECT_EQ(
      samples.at("ntpfleet_node_last_seen_timestamp_seconds{node=\"db-2\"}"),
      "1700000000.25");
}

TEST(RenderFleetMetricsTest, InventoryOnlyNodeHasUpLastSeenAndInfoOnly) {
  v1::Fleet fleet;
  *fleet.add_nodes() =
      MakeNode("web-1", v1::CONNECTION_STATE_DISCONNECTED, false);
  const std::string page = Render(fleet);
  const auto samples = Samples(page);
  EXPECT_EQ(samples.at("ntpfleet_node_up{node=\"web-1\"}"), "0");
  EXPECT_EQ(samples.count(
                "ntpfleet_node_last_seen_timestamp_seconds{node=\"web-1\"}"),
            1u);
  EXPECT_EQ(samples.at("ntpfleet_node_info{node=\"web-1\",agent_version="
                       "\"0.1.0\",role=\"client\",config_digest=\"" +
                       std::string(64, 'a') + "\"}"),
            "1");
  EXPECT_EQ(samples.at("ntpfleet_node_flagged{node=\"web-1\"}"), "0");
  // No status since the controller started: nothing to say, and no made-up
  // zero offset.
  EXPECT_THAT(page, Not(HasSubstr("ntpfleet_node_offset_seconds{")));
  EXPECT_THAT(page, Not(HasSubstr("ntpfleet_node_sync_state{")));
}

TEST(RenderFleetMetricsTest, StatusSeriesAreInBaseUnits) {
  v1::Fleet fleet;
  *fleet.add_nodes() = MakeNode("db-1", v1::CONNECTION_STATE_CONNECTED);
  const std::string page = Render(fleet);
  const auto samples = Samples(page);
  // 12.5 ppm as a ratio; the old page had ntpfleet_node_frequency_ppm 12.5.
  EXPECT_EQ(samples.at("ntpfleet_node_frequency_ratio{node=\"db-1\"}"),
            "1.25e-05");
  EXPECT_THAT(page, Not(HasSubstr("_ppm")));
  EXPECT_EQ(samples.at("ntpfleet_node_error_bound_seconds{node=\"db-1\"}"),
            "0.00034");
  EXPECT_EQ(samples.at("ntpfleet_node_root_delay_seconds{node=\"db-1\"}"),
            "0.0015");
  EXPECT_EQ(samples.at("ntpfleet_node_root_dispersion_seconds{node=\"db-1\"}"),
            "0.00025");
  EXPECT_EQ(samples.at("ntpfleet_node_stratum{node=\"db-1\"}"), "3");
  EXPECT_EQ(samples.at("ntpfleet_node_leap_indicator{node=\"db-1\"}"), "0");
  EXPECT_EQ(samples.at("ntpfleet_node_reachability_ratio{node=\"db-1\"}"),
            "0.875");
  EXPECT_EQ(samples.at("ntpfleet_node_sync_state{node=\"db-1\",state="
                       "\"synchronised\"}"),
            "1");
  EXPECT_EQ(samples.at(absl::StrCat("ntpfleet_build_info{version=\"",
                                    NTPFLEET_VERSION, "\"}")),
            "1");
}

TEST(RenderFleetMetricsTest, UnsynchronisedNodeHasInfiniteBoundAndItsState) {
  v1::Fleet fleet;
  v1::Node n = MakeNode("cache-1", v1::CONNECTION_STATE_CONNECTED);
  n.mutable_status()->set_state(v1::SYNC_STATE_UNSYNCHRONISED);
  n.mutable_status()->clear_error_bound();
  n.mutable_status()->set_leap(v1::LEAP_ALARM);
  *fleet.add_nodes() = n;
  const auto samples = Samples(Render(fleet));
  EXPECT_EQ(samples.at("ntpfleet_node_error_bound_seconds{node=\"cache-1\"}"),
            "+Inf");
  EXPECT_EQ(samples.at("ntpfleet_node_sync_state{node=\"cache-1\",state="
                       "\"unsynchronised\"}"),
            "1");
  EXPECT_EQ(samples.at("ntpfleet_node_leap_indicator{node=\"cache-1\"}"), "3");
}

TEST(RenderFleetMetricsTest, ConnectionAndFlagAreSeparateDimensions) {
  v1::Fleet fleet;
  v1::Node a = MakeNode("a", v1::CONNECTION_STATE_CONNECTED);
  a.set_flagged(true);
  *fleet.add_nodes() = a;
  *fleet.add_nodes() = MakeNode("b", v1::CONNECTION_STATE_CONNECTED);
  *fleet.add_nodes() = MakeNode("c", v1::CONNECTION_STATE_STALE);
  *fleet.add_nodes() = MakeNode("d", v1::CONNECTION_STATE_DISCONNECTED);
  *fleet.add_nodes() = MakeNode("e", v1::CONNECTION_STATE_DISCONNECTED, false);
  fleet.set_flagged_count(1);
  const std::string page = Render(fleet);
  const auto samples = Samples(page);
  // Summing ntpfleet_nodes gives the number of nodes: the old page added the
  // flagged ones a second time as state="flagged".
  EXPECT_EQ(samples.at("ntpfleet_nodes{connection=\"connected\"}"), "2");
  EXPECT_EQ(samples.at("ntpfleet_nodes{connection=\"stale\"}"), "1");
  EXPECT_EQ(samples.at("ntpfleet_nodes{connection=\"disconnected\"}"), "2");
  EXPECT_EQ(samples.at("ntpfleet_nodes_flagged"), "1");
  EXPECT_EQ(samples.at("ntpfleet_node_flagged{node=\"a\"}"), "1");
  EXPECT_THAT(page, Not(HasSubstr("state=\"flagged\"")));
}

TEST(RenderFleetMetricsTest, CrosscheckSeries) {
  v1::Fleet fleet;
  v1::Node a = MakeNode("a", v1::CONNECTION_STATE_CONNECTED);
  a.mutable_crosscheck()->set_flagged(true);
  SetDuration(absl::Milliseconds(5),
              a.mutable_crosscheck()->mutable_disagreement());
  SetDuration(absl::Microseconds(-30),
              a.mutable_crosscheck()->mutable_measured_offset());
  *fleet.add_nodes() = a;
  *fleet.add_nodes() = MakeNode("b", v1::CONNECTION_STATE_CONNECTED);
  fleet.set_crosscheck_flagged_count(1);
  SetDuration(absl::Microseconds(700), fleet.mutable_fleet_bound());
  SetDuration(absl::Microseconds(10), fleet.mutable_mesh_skew_p50());
  SetDuration(absl::Microseconds(40), fleet.mutable_mesh_skew_p99());
  SetDuration(absl::Microseconds(50), fleet.mutable_mesh_skew_max());
  const std::string page = Render(fleet);
  const auto samples = Samples(page);
  EXPECT_EQ(samples.at("ntpfleet_node_crosscheck_flagged{node=\"a\"}"), "1");
  EXPECT_EQ(
      samples.at("ntpfleet_node_crosscheck_disagreement_seconds{node=\"a\"}"),
      "0.005");
  EXPECT_EQ(samples.at(
                "ntpfleet_node_crosscheck_measured_offset_seconds{node=\"a\"}"),
            "-3e-05");
  // b was never measured: no crosscheck series at all, not a made-up 0.
  EXPECT_EQ(samples.count("ntpfleet_node_crosscheck_flagged{node=\"b\"}"), 0u);
  EXPECT_EQ(samples.at("ntpfleet_crosscheck_flagged_nodes"), "1");
  EXPECT_EQ(samples.at("ntpfleet_fleet_bound_seconds"), "7e-04");
  EXPECT_EQ(samples.at("ntpfleet_mesh_skew_seconds{quantile=\"0.5\"}"),
            "1e-05");
  EXPECT_EQ(samples.at("ntpfleet_mesh_skew_seconds{quantile=\"0.99\"}"),
            "4e-05");
  EXPECT_EQ(samples.at("ntpfleet_mesh_skew_seconds{quantile=\"1\"}"), "5e-05");
  // Without a mesh measurement, no quantile samples.
  EXPECT_THAT(Render(v1::Fleet()),
              Not(HasSubstr("ntpfleet_mesh_skew_seconds{")));
}

TEST(RenderFleetMetricsTest, EscapesLabelValues) {
  v1::Fleet fleet;
  v1::Node n = MakeNode("db-1", v1::CONNECTION_STATE_CONNECTED);
  n.mutable_hello()->set_agent_version("1.0 \"beta\" C:\\agent\nx");
  *fleet.add_nodes() = n;
  EXPECT_THAT(Render(fleet),
              HasSubstr("agent_version=\"1.0 \\\"beta\\\" C:\\\\agent\\nx\""));
}

TEST(RenderFleetMetricsTest, DuplicateNamesStayDistinctSeries) {
  v1::Fleet fleet;
  for (const char* peer : {"ipv4:10.0.0.7:5123", "ipv4:10.0.0.8:5123"}) {
    v1::Node n = MakeNode("dup", v1::CONNECTION_STATE_CONNECTED);
    n.set_duplicate_name(true);
    n.set_peer(peer);
    *fleet.add_nodes() = n;
  }
  const auto samples = Samples(Render(fleet));
  EXPECT_EQ(samples.count(
                "ntpfleet_node_up{node=\"dup\",peer=\"ipv4:10.0.0.7:5123\"}"),
            1u);
  EXPECT_EQ(samples.count(
                "ntpfleet_node_up{node=\"dup\",peer=\"ipv4:10.0.0.8:5123\"}"),
            1u);
}

TEST(RenderFleetMetricsTest, CountsEveryResyncOutcomeFromZero) {
  ResyncCounters counters;
  counters.requests = 2;
  counters.node_results["RESYNC_OUTCOME_OK"] = 5;
  const auto samples = Samples(RenderFleetMetrics(v1::Fleet(), counters));
  EXPECT_EQ(samples.at("ntpfleet_resync_requests_total"), "2");
  EXPECT_EQ(samples.at("ntpfleet_resync_node_results_total{outcome=\"ok\"}"),
            "5");
  EXPECT_EQ(
      samples.at("ntpfleet_resync_node_results_total{outcome=\"timed_out\"}"),
      "0");
}

// Every family: one HELP, one TYPE, then all its samples together (the format
// requires one group per family); no sample line twice.
TEST(RenderFleetMetricsTest, EachFamilyIsOneGroup) {
  v1::Fleet fleet;
  *fleet.add_nodes() = MakeNode("a", v1::CONNECTION_STATE_CONNECTED);
  *fleet.add_nodes() = MakeNode("b", v1::CONNECTION_STATE_DISCONNECTED);
  *fleet.add_nodes() = MakeNode("c", v1::CONNECTION_STATE_DISCONNECTED, false);
  std::set<std::string> typed;
  std::set<std::string> lines;
  std::string current;
  for (absl::string_view line : absl::StrSplit(Render(fleet), '\n')) {
    if (line.empty()) continue;
    if (absl::StartsWith(line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      current = parts[2];
      EXPECT_TRUE(typed.insert(current).second) << "TYPE twice: " << line;
      continue;
    }
    if (line[0] == '#') continue;
    EXPECT_TRUE(lines.insert(std::string(line)).second) << "twice: " << line;
    const std::string name(line.substr(0, line.find_first_of("{ ")));
    EXPECT_EQ(name, current) << "sample outside its family's group: " << line;
  }
}

// 100 000 known nodes, all reporting: the page's size per node and its cost
// (printed for docs/CONTROLLER.md; only the size is checked, the time depends
// on the machine). Exactly one sample per per-node series and node: a
// renderer that repeated or dropped a node's samples changes the count.
TEST(RenderFleetMetricsTest, HundredThousandNodesOnePage) {
  constexpr int kNodes = 100000;
  v1::Fleet fleet;
  fleet.mutable_nodes()->Reserve(kNodes);
  for (int i = 0; i < kNodes; ++i) {
    v1::Node n = MakeNode(absl::StrCat("rack", i / 40, "-node", i % 40, ".dc1"),
                          v1::CONNECTION_STATE_CONNECTED);
    SetDuration(absl::Nanoseconds(1000 + 37 * i),
                n.mutable_status()->mutable_offset());
    *fleet.add_nodes() = std::move(n);
  }
  const std::string empty = Render(v1::Fleet());
  // CPU time of this thread (the machine may be busy with other work).
  auto cpu_ms = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  };
  const double start = cpu_ms();
  const std::string page = Render(fleet);
  const double ms = cpu_ms() - start;
  const double per_node =
      static_cast<double>(page.size() - empty.size()) / kNodes;
  std::printf(
      "100000 nodes: %zu bytes (%.0f bytes per node), rendered in %.0f ms of "
      "CPU\n",
      page.size(), per_node, ms);
  size_t node_samples = 0;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (absl::StartsWith(line, "ntpfleet_node_")) ++node_samples;
  }
  constexpr size_t kPerNodeSeries = 13;
  EXPECT_EQ(node_samples, kPerNodeSeries * kNodes);
  // Names of ~20 bytes, a 64-byte config digest: about 1 KB per node; twice
  // that would mean something is written more than once.
  EXPECT_LT(per_node, 1500);
}

// --- the HTTP server past FD_SETSIZE ---------------------------------------

// Raises the soft descriptor limit to the hard one and holds `count` open
// descriptors (/dev/null), so the next ones are numbered past them.
class DescriptorFiller {
 public:
  explicit DescriptorFiller(int count) {
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    for (int i = 0; i < count; ++i) {
      const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      fds_.push_back(fd);
    }
  }
  ~DescriptorFiller() {
    for (int fd : fds_) close(fd);
  }
  size_t size() const { return fds_.size(); }

 private:
  std::vector<int> fds_;
};

// GET /metrics on 127.0.0.1:port, HTTP/1.0: the whole response, or "" with
// *error set. *client_fd: the descriptor number the client socket had.
std::string Get(uint16_t port, int* client_fd, std::string* error) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  *client_fd = fd;
  if (fd < 0) {
    *error = "socket() failed";
    return "";
  }
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    *error = "connect() failed";
  } else {
    const std::string request =
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      *error = "send() failed";
    }
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, n);
    if (n < 0) *error = "recv() failed (reset or timed out)";
  }
  close(fd);
  return response;
}

// More than FD_SETSIZE (1024): the 1 100 agents, one connection each.
constexpr int kFiller = 1100;

// select() cannot watch descriptor FD_SETSIZE or above; libmicrohttpd in its
// select mode closes such a connection at once ("New connection socket
// descriptor (1024) is not less than FD_SETSIZE") and the scrape reads
// nothing.
TEST(MetricsServerTest, AnswersWhenScrapeDescriptorsArePastFdSetsize) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", [] { return "ntpfleet_x 1\n"; });
  ASSERT_TRUE(server.ok()) << server.status();
  DescriptorFiller filler(kFiller);
  ASSERT_EQ(filler.size(), static_cast<size_t>(kFiller))
      << "cannot open " << kFiller
      << " descriptors: the hard RLIMIT_NOFILE is too low for this test";
  for (int i = 0; i < 3; ++i) {
    int client_fd = -1;
    std::string error;
    const std::string response = Get((*server)->port(), &client_fd, &error);
    EXPECT_GE(client_fd, FD_SETSIZE) << "the test did not reach FD_SETSIZE";
    EXPECT_EQ(error, "");
    EXPECT_THAT(response, HasSubstr(" 200 "));
    EXPECT_THAT(response, HasSubstr("\r\n\r\nntpfleet_x 1\n"));
  }
}

// The same, with the listening socket itself numbered past FD_SETSIZE (a
// select()-mode daemon does not start at all).
TEST(MetricsServerTest, StartsWhenItsListenDescriptorIsPastFdSetsize) {
  DescriptorFiller filler(kFiller);
  ASSERT_EQ(filler.size(), static_cast<size_t>(kFiller))
      << "cannot open " << kFiller
      << " descriptors: the hard RLIMIT_NOFILE is too low for this test";
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", [] { return "ntpfleet_x 1\n"; });
  ASSERT_TRUE(server.ok()) << server.status();
  int client_fd = -1;
  std::string error;
  const std::string response = Get((*server)->port(), &client_fd, &error);
  EXPECT_EQ(error, "");
  EXPECT_THAT(response, HasSubstr(" 200 "));
  EXPECT_THAT(response, HasSubstr("text/plain; version=0.0.4"));
}

TEST(MetricsServerTest, RefusesOtherPathsAndMethods) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", [] { return "ntpfleet_x 1\n"; });
  ASSERT_TRUE(server.ok()) << server.status();
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((*server)->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[1024];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, n);
  close(fd);
  EXPECT_THAT(response, HasSubstr(" 404 "));
  EXPECT_THAT(response, HasSubstr("metrics are at /metrics"));
}

TEST(MetricsServerTest, RejectsBadAddresses) {
  EXPECT_FALSE(MetricsServer::Start("127.0.0.1", [] { return ""; }).ok());
  EXPECT_FALSE(MetricsServer::Start("::1:0", [] { return ""; }).ok());
  EXPECT_FALSE(MetricsServer::Start("127.0.0.1:70000", [] { return ""; }).ok());
}

}  // namespace
}  // namespace ntpfleet::controller
