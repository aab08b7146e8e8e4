#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "common/files.h"
#include "ctl/commands.h"

namespace ntpfleet::ctl {

std::unique_ptr<v1::FleetService::Stub> ConnectController(
    const CommonOptions& o) {
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  if (!o.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    // An unreadable file leaves that part empty: the TLS handshake then fails
    // with gRPC's own error, which names the problem.
    ssl.pem_root_certs = ReadFile(o.tls_ca).value_or("");
    if (!o.tls_cert.empty())
      ssl.pem_cert_chain = ReadFile(o.tls_cert).value_or("");
    if (!o.tls_key.empty())
      ssl.pem_private_key = ReadFile(o.tls_key).value_or("");
    credentials = grpc::SslCredentials(ssl);
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
