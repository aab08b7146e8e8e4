#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "ctl/commands.h"

namespace ntpfleet::ctl {

std::unique_ptr<v1::FleetService::Stub> ConnectController(
    const std::string& address) {
  return v1::FleetService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

int PrintError(const absl::Status& status) {
  std::fprintf(stderr, "ntpfleetctl: %s\n",
               std::string(status.message()).c_str());
  return 1;
}

int ControllerError(const std::string& address, const absl::Status& status) {
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    std::fprintf(stderr,
                 "ntpfleetctl: cannot reach the controller at %s (%s).\n"
                 "Is ntpfleet-controller running there? Point at it with "
                 "--controller HOST:PORT "
                 "or $NTPFLEET_CONTROLLER.\n",
                 address.c_str(), std::string(status.message()).c_str());
    return 1;
  }
  return PrintError(status);
}

}  // namespace ntpfleet::ctl
