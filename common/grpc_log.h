// gRPC's own log lines through the project's logger (common/log.h). Without
// this, gRPC (1.51, Debian 12) writes its own format straight to stderr:
//   E1204 23:21:37.394923130   13497 chttp2_server.cc:1045]   UNKNOWN:Name ...
// With it, the same message reads like every other line of the program:
//   2026-12-04T23:21:37.394Z WARN  ntpfleet-controller: grpc: UNKNOWN:Name
//   ... (chttp2_server.cc:1045)
//
// Levels: gRPC's ERROR becomes our WARN (gRPC calls many recoverable things
// errors; the program logs the consequence itself at the level it deserves).
// gRPC's INFO and DEBUG are not even formatted (gpr_set_log_verbosity) unless
// `verbose` (then gRPC's INFO comes as our DEBUG lines, printed at --verbose)
// or the user set GRPC_VERBOSITY, which is then honoured as gRPC documents it
// (INFO and DEBUG then come as our INFO lines: asked for explicitly).
//
//   int main(int argc, char** argv) {
//     ... parse flags ...
//     ntpfleet::SetLogProgram("ntpfleet-agent");
//     ntpfleet::RouteGrpcLogging(absl::GetFlag(FLAGS_verbose));
//
// Call it once, early, before any gRPC object is made (gRPC reads
// GRPC_VERBOSITY when it first initialises). Thread-safe afterwards: gRPC calls
// the forwarder from its own threads, and LogLine writes each line with one
// write(2). Uses only gpr_* calls: starts no thread, opens nothing (the
// agent's one-thread promise, docs/ARCHITECTURE.md, holds).
#ifndef NTPFLEET_COMMON_GRPC_LOG_H_
#define NTPFLEET_COMMON_GRPC_LOG_H_

#include <string>

#include "absl/strings/string_view.h"
#include "common/log.h"

namespace ntpfleet {

void RouteGrpcLogging(bool verbose);

// Exposed for tests: the line RouteGrpcLogging logs for one gRPC message, and
// at which level. `file` as gRPC gives it (a path; only its last component is
// kept); trailing whitespace of `message` dropped.
struct GrpcLogLine {
  LogLevel level;
  std::string text;  // "grpc: <message> (<file>:<line>)"
};
GrpcLogLine FormatGrpcLogLine(absl::string_view file, int line,
                              int gpr_severity, absl::string_view message,
                              bool asked_for_by_env);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_GRPC_LOG_H_
