#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "common/grpc_status.h"
#include "common/hostport.h"
#include "common/tls.h"
#include "ctl/commands.h"

namespace ntpfleet::ctl {

absl::StatusOr<std::unique_ptr<v1::FleetService::Stub>> ConnectController(
    const CommonOptions& o) {
  absl::StatusOr<HostPort> at = ParseHostPort(o.controller, "--controller");
  if (!at.ok()) return at.status();
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  TlsFiles tls{o.tls_cert, o.tls_key, o.tls_ca};
  if (tls.empty()) {
    // Plain text: only a controller on loopback (or one started with
    // --insecure) answers it.
    credentials = grpc::InsecureChannelCredentials();
  } else {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> c =
        ClientCredentials(tls, "--tls-cert/--tls-key/--tls-ca");
    if (!c.ok()) return c.status();
    credentials = *std::move(c);
  }
  grpc::ChannelArguments args;
  // A fleet of 10 000 nodes with their peers is several MiB: lift gRPC's
  // 4 MiB default for what the controller sends back.
  args.SetMaxReceiveMessageSize(256 << 20);
  return v1::FleetService::NewStub(
      grpc::CreateCustomChannel(o.controller, credentials, args));
}

int PrintError(const absl::Status& status) {
  std::fprintf(stderr, "ntpfleetctl: %s\n",
               std::string(status.message()).c_str());
  return 1;
}

int ControllerError(const std::string& address, const absl::Status& status) {
  if (absl::IsUnauthenticated(status) || absl::IsPermissionDenied(status)) {
    std::fprintf(stderr, "ntpfleetctl: the controller at %s refused: %s\n",
                 address.c_str(), std::string(status.message()).c_str());
    return 1;
  }
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

namespace ntpfleet::ctl {

v1::Fleet* FetchFleet(const CommonOptions& o, bool summary,
                      google::protobuf::Arena* arena) {
  absl::StatusOr<std::unique_ptr<v1::FleetService::Stub>> stub =
      ConnectController(o);
  if (!stub.ok()) {
    PrintError(stub.status());
    return nullptr;
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::Fleet* fleet = google::protobuf::Arena::CreateMessage<v1::Fleet>(arena);
  v1::GetFleetRequest request;
  request.set_summary(summary);
  if (grpc::Status s = (*stub)->GetFleet(&context, request, fleet); !s.ok()) {
    ControllerError(o.controller, FromGrpcStatus(s));
    return nullptr;
  }
  return fleet;
}

}  // namespace ntpfleet::ctl
