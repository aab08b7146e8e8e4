#include "common/local_control.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ntpfleet::local_control {

std::string Frame(const google::protobuf::Message& message) {
  const std::string body = message.SerializeAsString();
  std::string out(4, '\0');
  const uint32_t n = static_cast<uint32_t>(body.size());
  out[0] = static_cast<char>(n >> 24);
  out[1] = static_cast<char>(n >> 16);
  out[2] = static_cast<char>(n >> 8);
  out[3] = static_cast<char>(n);
  return out + body;
}

std::optional<uint32_t> FrameLength(const std::string& buffer) {
  if (buffer.size() < 4) return std::nullopt;
  uint32_t len = 0;
  for (int i = 0; i < 4; ++i)
    len = (len << 8) | static_cast<uint8_t>(buffer[i]);
  return len;
}

absl::StatusOr<v1::LocalResponse> CallAgent(const std::string& socket_path,
                                            const v1::LocalRequest& request,
                                            absl::Duration timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("control socket path too long: " +
                                      socket_path);
  }
  strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    const int err = errno;
    close(fd);
    if (err == EACCES) {
      return absl::PermissionDeniedError(
          absl::StrFormat("cannot talk to the agent: permission denied on %s "
                          "(it needs root or the ntpfleet group: use sudo)",
                          socket_path));
    }
    return absl::UnavailableError(absl::StrFormat(
        "no ntpfleet-agent is running here (nothing listens on %s: %s)",
        socket_path, strerror(err)));
  }
  const std::string frame = Frame(request);
  if (send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(frame.size())) {
    close(fd);
    return absl::UnavailableError("cannot send to the agent: " +
                                  std::string(strerror(errno)));
  }
  std::string in;
  const absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (true) {
    const int wait_ms = static_cast<int>(std::max<int64_t>(
        0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0) {
      close(fd);
      return absl::DeadlineExceededError("the agent did not answer in time");
    }
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > 4 + kMaxMessage) {
      close(fd);
      return absl::DataLossError("answer from the agent too large");
    }
  }
  close(fd);
  const std::optional<uint32_t> len = FrameLength(in);
  if (!len.has_value())
    return absl::UnavailableError("the agent closed the connection");
  v1::LocalResponse response;
  if (*len > kMaxMessage || in.size() < 4 + size_t{*len} ||
      !response.ParseFromString(in.substr(4, *len))) {
    return absl::DataLossError("malformed answer from the agent");
  }
  // The agent's words, as they are ("permission denied: `resync` needs root
  // (you are uid 1000)").
  if (absl::StartsWith(response.error(), "permission denied"))
    return absl::PermissionDeniedError(response.error());
  if (!response.error().empty())
    return absl::FailedPreconditionError(response.error());
  return response;
}

}  // namespace ntpfleet::local_control
