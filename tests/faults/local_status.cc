// local_status: prints an agent's LocalStatus (node, status, server_counters)
// as JSON, read from its control socket. For the fault tests
// (tests/faults/*_test.sh), which need the server counters (`ntpfleetctl peers
// --output json` prints only the SyncStatus).
//
// Usage: local_status SOCKET_PATH. Exit 0 with the JSON on stdout, 1 with the
// error on stderr.
#include <cstdio>
#include <string>

#include "absl/time/time.h"
#include "common/local_control.h"
#include "google/protobuf/util/json_util.h"
#include "proto/ntpfleet.pb.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CONTROL_SOCKET\n", argv[0]);
    return 2;
  }
  ntpfleet::v1::LocalRequest request;
  request.mutable_status();
  absl::StatusOr<ntpfleet::v1::LocalResponse> response =
      ntpfleet::local_control::CallAgent(argv[1], request, absl::Seconds(5));
  if (!response.ok()) {
    std::fprintf(stderr, "local_status: %s\n",
                 std::string(response.status().message()).c_str());
    return 1;
  }
  if (!response->error().empty()) {
    std::fprintf(stderr, "local_status: %s\n", response->error().c_str());
    return 1;
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(response->status(), &json,
                                                   options)
           .ok()) {
    std::fprintf(stderr, "local_status: cannot print the status as JSON\n");
    return 1;
  }
  std::printf("%s\n", json.c_str());
  return 0;
}
