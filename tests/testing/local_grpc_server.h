// An in-process gRPC server on 127.0.0.1, port chosen by the kernel, plain
// text: the fake controllers of the tests.
//
//   FakeController service;
//   LocalGrpcServer server = StartLocalGrpcServer(&service);
//   ASSERT_NE(server.server, nullptr);   // then dial server.address
#ifndef NTPFLEET_TESTS_TESTING_LOCAL_GRPC_SERVER_H_
#define NTPFLEET_TESTS_TESTING_LOCAL_GRPC_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"

namespace ntpfleet::testing {

struct LocalGrpcServer {
  std::unique_ptr<grpc::Server> server;  // null if it could not start
  std::string address;                   // "127.0.0.1:PORT"
  int port = 0;
};

inline LocalGrpcServer StartLocalGrpcServer(grpc::Service* service) {
  grpc::ServerBuilder builder;
  LocalGrpcServer r;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &r.port);
  builder.RegisterService(service);
  r.server = builder.BuildAndStart();
  r.address = absl::StrCat("127.0.0.1:", r.port);
  return r;
}

}  // namespace ntpfleet::testing

#endif  // NTPFLEET_TESTS_TESTING_LOCAL_GRPC_SERVER_H_
