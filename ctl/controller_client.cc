#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_format.h"
#include "ctl/commands.h"

namespace ntpfleet::ctl {

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::unique_ptr<v1::FleetService::Stub> ConnectController(
    const CommonOptions& o) {
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  if (!o.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(o.tls_ca);
    if (!o.tls_cert.empty()) ssl.pem_cert_chain = ReadFile(o.tls_cert);
    if (!o.tls_key.empty()) ssl.pem_private_key = ReadFile(o.tls_key);
    credentials = grpc::SslCredentials(ssl);
  }
  return v1::FleetService::NewStub(
      grpc::CreateChannel(o.controller, credentials));
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
