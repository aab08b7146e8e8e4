// common/grpc_log: gRPC's own lines come out as ours. A real gRPC error (a
// server that cannot bind a port held by another socket) is captured from fd 2
// and must be one formatted WARN line, not gRPC's "E1204 ... chttp2_server.cc"
// format; gRPC's INFO is dropped unless verbose.
#include "common/grpc_log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/log.h"
#include "gtest/gtest.h"

namespace ntpfleet {
namespace {

// Everything written to fd 2 while it lives, read back by Text().
class CapturedStderr {
 public:
  CapturedStderr() {
    const char* dir = std::getenv("TEST_TMPDIR");
    path_ = std::string(dir != nullptr ? dir : "/tmp") + "/stderr.XXXXXX";
    const int fd = mkstemp(path_.data());
    std::fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  ~CapturedStderr() { Restore(); }
  std::string Text() {
    Restore();
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  void Restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    saved_ = -1;
  }
  std::string path_;
  int saved_ = -1;
};

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// gRPC's own format: severity letter, MMDD, time, thread, file:line].
const std::regex kGrpcNative(R"(^[DIE]\d{4} \d\d:\d\d:\d\d\.\d+ .*\])");
// Ours (common/log.cc).
const std::regex kOurs(
    R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARN |ERROR) grpc_log_test: grpc: .+ \([a-z_0-9]+\.cc:\d+\)$)");

class GrpcLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("GRPC_VERBOSITY");
    SetLogProgram("grpc_log_test");
    SetLogLevel(LogLevel::kInfo);
    RouteGrpcLogging(/*verbose=*/false);
  }
};

TEST_F(GrpcLogTest, BindFailureIsOneFormattedWarnLine) {
  // A listening TCP socket on 127.0.0.1 holds the port; gRPC's server must
  // then fail to bind it (no SO_REUSEPORT) and log why from chttp2_server.cc.
  const int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  std::string text;
  {
    CapturedStderr captured;
    grpc::ServerBuilder builder;
    int selected = 0;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port),
                             grpc::InsecureServerCredentials(), &selected);
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    EXPECT_EQ(selected, 0);
    if (server != nullptr) server->Shutdown();
    text = captured.Text();
  }
  close(holder);

  // Before RouteGrpcLogging existed this was "E1204 ...  chttp2_server.cc:
  // 1045] UNKNOWN:..." lines in gRPC's own format.
  bool chttp2 = false;
  for (const std::string& line : Lines(text)) {
    EXPECT_FALSE(std::regex_search(line, kGrpcNative)) << line;
    EXPECT_TRUE(std::regex_search(line, kOurs)) << line;
    if (line.find(" WARN  grpc_log_test: grpc: ") != std::string::npos &&
        line.find("(chttp2_server.cc:") != std::string::npos) {
      chttp2 = true;
    }
  }
  EXPECT_TRUE(chttp2) << "no WARN line from chttp2_server.cc in:\n" << text;
}

TEST_F(GrpcLogTest, InfoOnlyWhenVerbose) {
  {
    CapturedStderr captured;
    gpr_log(GPR_INFO, "an info line %d", 1);
    gpr_log(GPR_DEBUG, "a debug line %d", 1);
    gpr_log(GPR_ERROR, "an error line %d", 1);
    const std::vector<std::string> lines = Lines(captured.Text());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_TRUE(std::regex_search(lines[0], kOurs)) << lines[0];
    EXPECT_NE(lines[0].find(" WARN  grpc_log_test: grpc: an error line 1 ("),
              std::string::npos)
        << lines[0];
  }
  {
    RouteGrpcLogging(/*verbose=*/true);
    SetLogLevel(LogLevel::kDebug);
    CapturedStderr captured;
    gpr_log(GPR_INFO, "an info line %d", 2);
    gpr_log(GPR_DEBUG, "a debug line %d", 2);  // still not: GRPC_VERBOSITY
    const std::vector<std::string> lines = Lines(captured.Text());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find(" DEBUG grpc_log_test: grpc: an info line 2 ("),
              std::string::npos)
        << lines[0];
  }
}

TEST(FormatGrpcLogLineTest, KeepsTheFileNameAndDropsTrailingWhitespace) {
  const GrpcLogLine line = FormatGrpcLogLine(
      "./src/core/lib/iomgr/tcp_server_utils_posix_common.cc", 207,
      GPR_LOG_SEVERITY_ERROR, "Cannot bind\n", /*asked_for_by_env=*/false);
  EXPECT_EQ(line.level, LogLevel::kWarning);
  EXPECT_EQ(line.text,
            "grpc: Cannot bind (tcp_server_utils_posix_common.cc:207)");
  EXPECT_EQ(
      FormatGrpcLogLine("a.cc", 1, GPR_LOG_SEVERITY_INFO, "x", false).level,
      LogLevel::kDebug);
  EXPECT_EQ(
      FormatGrpcLogLine("a.cc", 1, GPR_LOG_SEVERITY_DEBUG, "x", true).level,
      LogLevel::kInfo);
}

}  // namespace
}  // namespace ntpfleet
