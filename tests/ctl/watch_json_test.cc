// `ntpfleetctl --output json watch`, the built binary against a fake
// controller on 127.0.0.1 port 0: one JSON document per update, each on one
// line and flushed as it comes (read here while the stream is still open);
// and a fleet that cannot be written as JSON ends the watch with the reason
// and exit 1 (it used to print nothing and keep running).
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "tests/testing/local_grpc_server.h"

namespace ntpfleet::ctl {
namespace {

using ::testing::HasSubstr;

// Generous: only a machine that stalls for this long fails a correct watch.
constexpr absl::Duration kPatience = absl::Seconds(20);

v1::Fleet GoodFleet(int64_t as_of_s) {
  v1::Fleet f;
  SetTimestamp(absl::FromUnixSeconds(as_of_s), f.mutable_as_of());
  v1::Node* n = f.add_nodes();
  n->set_name("web-1");
  SetDuration(absl::Microseconds(-12), n->mutable_status()->mutable_offset());
  f.set_connected_count(1);
  return f;
}

// Streams `fleets`, then holds the stream open until the client goes away.
class FakeController final : public v1::FleetService::Service {
 public:
  explicit FakeController(std::vector<v1::Fleet> fleets)
      : fleets_(std::move(fleets)) {}
  grpc::Status WatchFleet(grpc::ServerContext* context,
                          const v1::WatchFleetRequest*,
                          grpc::ServerWriter<v1::Fleet>* writer) override {
    for (const v1::Fleet& f : fleets_) {
      if (!writer->Write(f)) return grpc::Status::CANCELLED;
    }
    // Waits for the client to cancel or vanish (or the test's shutdown).
    while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
    return grpc::Status::CANCELLED;
  }

 private:
  const std::vector<v1::Fleet> fleets_;
};

// The ntpfleetctl binary, started with stdout and stderr on pipes.
class Ctl {
 public:
  explicit Ctl(const std::vector<std::string>& args) {
    const char* srcdir = std::getenv("TEST_SRCDIR");
    const std::string binary =
        absl::StrCat(srcdir ? srcdir : ".", "/ntpfleet/ctl/ntpfleetctl");
    int out[2], err[2];
    EXPECT_EQ(pipe(out), 0);
    EXPECT_EQ(pipe(err), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      close(out[0]);
      close(err[0]);
      std::vector<char*> argv = {const_cast<char*>(binary.c_str())};
      for (const std::string& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Ctl() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
    close(err_);
  }

  // The next whole line of stdout (without '\n'), or "" at the deadline or
  // end of file.
  std::string ReadLine(absl::Time deadline) {
    while (true) {
      const size_t nl = out_buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = out_buffer_.substr(0, nl);
        out_buffer_.erase(0, nl + 1);
        return line;
      }
      if (!ReadSome(out_, &out_buffer_, deadline)) return "";
    }
  }

  // Waits for the exit (until `deadline`); the exit code, or -1 if it is
  // still running. Collects the rest of stdout and stderr.
  int Wait(absl::Time deadline) {
    while (ReadSome(err_, &err_buffer_, deadline)) {
    }
    while (ReadSome(out_, &out_buffer_, deadline)) {
    }
    while (absl::Now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return -1;
  }
  const std::string& err() const { return err_buffer_; }
  const std::string& rest_of_out() const { return out_buffer_; }

 private:
  // Reads what is there, waiting until `deadline`; false at EOF or deadline.
  static bool ReadSome(int fd, std::string* into, absl::Time deadline) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left))) <= 0) {
      return false;
    }
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return false;
    into->append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  bool exited_ = false;
  int out_ = -1;
  int err_ = -1;
  std::string out_buffer_;
  std::string err_buffer_;
};

using Running = ::ntpfleet::testing::LocalGrpcServer;
Running Start(grpc::Service* service) {
  return ::ntpfleet::testing::StartLocalGrpcServer(service);
}

// Three updates: three lines, each a whole Fleet, readable while the stream is
// still open (a watch that buffered, or pretty-printed over many lines, fails
// here).
TEST(WatchJsonTest, PrintsOneLineOfJsonPerUpdateAsItComes) {
  FakeController service({GoodFleet(1'800'000'000), GoodFleet(1'800'000'001),
                          GoodFleet(1'800'000'002)});
  Running controller = Start(&service);
  ASSERT_NE(controller.server, nullptr);
  {
    Ctl ctl({"--controller", controller.address, "--output", "json", "watch"});
    const absl::Time deadline = absl::Now() + kPatience;
    for (int64_t i = 0; i < 3; ++i) {
      const std::string line = ctl.ReadLine(deadline);
      ASSERT_FALSE(line.empty())
          << "update " << i << " not printed; stderr: " << ctl.err();
      v1::Fleet fleet;
      ASSERT_TRUE(
          google::protobuf::util::JsonStringToMessage(line, &fleet).ok())
          << "not one JSON document: " << line;
      EXPECT_EQ(fleet.as_of().seconds(), 1'800'000'000 + i);
      ASSERT_EQ(fleet.nodes_size(), 1);
      EXPECT_EQ(fleet.nodes(0).name(), "web-1");
    }
    // Still watching: it has not exited.
    EXPECT_EQ(ctl.Wait(absl::Now() + absl::Milliseconds(200)), -1) << ctl.err();
  }
  controller.server->Shutdown(absl::ToChronoTime(absl::Now()));
}

// A node's offset beyond what a protobuf Duration may hold in JSON (±10 000
// years): the watch prints the good update, then stops with the reason.
TEST(WatchJsonTest, AFleetThatCannotBeJsonEndsTheWatchWithTheReason) {
  v1::Fleet bad = GoodFleet(1'800'000'001);
  bad.mutable_nodes(0)->mutable_status()->mutable_offset()->set_seconds(
      400'000'000'000);
  FakeController service({GoodFleet(1'800'000'000), bad});
  Running controller = Start(&service);
  ASSERT_NE(controller.server, nullptr);
  {
    Ctl ctl({"--controller", controller.address, "--output", "json", "watch"});
    const absl::Time deadline = absl::Now() + kPatience;
    const std::string first = ctl.ReadLine(deadline);
    v1::Fleet fleet;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(first, &fleet).ok())
        << first << "; stderr: " << ctl.err();
    EXPECT_EQ(ctl.Wait(deadline), 1) << "stderr: " << ctl.err();
    EXPECT_THAT(ctl.err(),
                HasSubstr("ntpfleetctl: cannot write ntpfleet.v1.Fleet as "
                          "JSON: "));
    EXPECT_EQ(ctl.rest_of_out(), "");  // nothing half-written
  }
  controller.server->Shutdown(absl::ToChronoTime(absl::Now()));
}

}  // namespace
}  // namespace ntpfleet::ctl
