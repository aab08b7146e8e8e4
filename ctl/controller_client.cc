#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "common/grpc_status.h"
#include "common/hostport.h"
#include "common/tls.h"
#include "ctl/commands.h"
#include "ctl/fleet_client.h"

namespace ntpfleet::ctl {

absl::StatusOr<std::unique_ptr<v1::FleetService::Stub>> ConnectController(
    const CommonOptions& o) {
  absl::StatusOr<HostPort> at = ParseHostPort(o.controller, "--controller");
  if (!at.ok()) return at.status();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      FleetCredentials(TlsFiles{o.tls_cert, o.tls_key, o.tls_ca});
  if (!credentials.ok()) return credentials.status();
  return NewFleetStub(o.controller, *std::move(credentials));
}

absl::StatusOr<std::unique_ptr<FleetClient>> ConnectFleet(
    const CommonOptions& o) {
  return FleetClient::Connect(o.controller,
                              TlsFiles{o.tls_cert, o.tls_key, o.tls_ca});
}

int PrintError(const absl::Status& status) {
  std::fprintf(stderr, "ntpfleetctl: %s\n",
               std::string(status.message()).c_str());
  return 1;
}

int ControllerError(const std::string& address, const absl::Status& status) {
  // --controller A,B: every one of them failed (each is named above).
  const bool several = address.find(',') != std::string::npos;
  if (absl::IsUnauthenticated(status) || absl::IsPermissionDenied(status)) {
    std::fprintf(stderr, "ntpfleetctl: the controller%s at %s refused: %s\n",
                 several ? "s" : "", address.c_str(),
                 std::string(status.message()).c_str());
    return 1;
  }
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    std::fprintf(stderr,
                 "ntpfleetctl: cannot reach %s at %s (%s).\n"
                 "Is ntpfleet-controller running there? Point at it with "
                 "--controller HOST:PORT[,HOST:PORT...] "
                 "or $NTPFLEET_CONTROLLER.\n",
                 several ? "any of the controllers" : "the controller",
                 address.c_str(), std::string(status.message()).c_str());
    return 1;
  }
  return PrintError(status);
}

}  // namespace ntpfleet::ctl

namespace ntpfleet::ctl {

v1::Fleet* FetchFleet(const CommonOptions& o, bool summary,
                      google::protobuf::Arena* arena) {
  absl::StatusOr<std::unique_ptr<FleetClient>> client = ConnectFleet(o);
  if (!client.ok()) {
    PrintError(client.status());
    return nullptr;
  }
  v1::Fleet* fleet = google::protobuf::Arena::CreateMessage<v1::Fleet>(arena);
  v1::GetFleetRequest request;
  request.set_summary(summary);
  // One controller's, or several merged (ctl/fleet_client.h).
  if (absl::Status s = (*client)->GetFleet(request, absl::Seconds(10), fleet);
      !s.ok()) {
    ControllerError(o.controller, s);
    return nullptr;
  }
  return fleet;
}

}  // namespace ntpfleet::ctl
