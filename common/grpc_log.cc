#include "common/grpc_log.h"

#include <grpc/support/log.h>

#include <atomic>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

namespace ntpfleet {
namespace {

// Whether GRPC_VERBOSITY was set when RouteGrpcLogging ran.
std::atomic<bool> verbosity_from_env{false};

void Forward(gpr_log_func_args* args) {
  const GrpcLogLine out =
      FormatGrpcLogLine(args->file != nullptr ? args->file : "?", args->line,
                        static_cast<int>(args->severity),
                        args->message != nullptr ? args->message : "",
                        verbosity_from_env.load(std::memory_order_relaxed));
  LogLine(out.level, out.text);
}

}  // namespace

GrpcLogLine FormatGrpcLogLine(absl::string_view file, int line,
                              int gpr_severity, absl::string_view message,
                              bool asked_for_by_env) {
  const size_t slash = file.rfind('/');
  if (slash != absl::string_view::npos) file.remove_prefix(slash + 1);
  GrpcLogLine out;
  if (gpr_severity >= GPR_LOG_SEVERITY_ERROR) {
    out.level = LogLevel::kWarning;
  } else {
    out.level = asked_for_by_env ? LogLevel::kInfo : LogLevel::kDebug;
  }
  out.text =
      absl::StrFormat("grpc: %s (%s:%d)",
                      absl::StripTrailingAsciiWhitespace(message), file, line);
  return out;
}

void RouteGrpcLogging(bool verbose) {
  const char* env = std::getenv("GRPC_VERBOSITY");
  const bool from_env = env != nullptr && *env != '\0';
  verbosity_from_env.store(from_env, std::memory_order_relaxed);
  // gRPC reads GRPC_VERBOSITY only while its verbosity is unset
  // (gpr_log_verbosity_init): setting it here, before grpc_init, wins over
  // the default (ERROR), so leave it alone when the user chose.
  if (!from_env) {
    // INFO, not DEBUG, at --verbose: gRPC's DEBUG lines are for its own
    // developers (GRPC_VERBOSITY=DEBUG still gets them).
    gpr_set_log_verbosity(verbose ? GPR_LOG_SEVERITY_INFO
                                  : GPR_LOG_SEVERITY_ERROR);
  }
  gpr_set_log_function(&Forward);
}

}  // namespace ntpfleet
