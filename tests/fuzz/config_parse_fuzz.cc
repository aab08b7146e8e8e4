// Fuzz target for the ntp.conf parser: no input may crash it, hang it or read
// out of bounds (ASan), whatever `includefile` returns: the loader answers
// every include with the input itself (so nesting, cycles and the depth limit
// are exercised), or NotFound for paths of odd length. And whatever it
// accepts, FormatEffectiveConfig() must print as a configuration that parses
// back without warnings to the same effective configuration.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/config/config.h"

namespace {

// The effective configuration without its comments (the warnings and the list
// of included files, which a re-parse does not reproduce).
std::string WithoutComments(const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (text[start] != '#') out.append(text, start, end - start + 1);
    start = end + 1;
  }
  return out;
}

// Every include is the input itself, except paths of odd length: NotFound.
class SelfLoader : public ntpfleet::config::IncludeLoader {
 public:
  explicit SelfLoader(absl::string_view text) : text_(text) {}
  absl::StatusOr<std::string> Load(const std::string& path) const override {
    if (path.size() % 2 == 1) return absl::NotFoundError(path);
    return std::string(text_);
  }

 private:
  absl::string_view text_;
};

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ntpfleet::config;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const SelfLoader loader(text);
  absl::StatusOr<AgentConfig> config = ParseConfig(text, "fuzz.conf", loader);
  if (!config.ok()) {
    if (config.status().code() != absl::StatusCode::kInvalidArgument) {
      Fail("unexpected status code", config.status().ToString());
    }
    return 0;
  }

  const std::string effective = FormatEffectiveConfig(*config);
  absl::StatusOr<AgentConfig> again =
      ParseConfig(effective, "effective.conf", NoIncludeFiles());
  if (!again.ok()) Fail(again.status().ToString().c_str(), effective);
  if (!again->warnings.empty()) Fail(again->warnings[0].c_str(), effective);
  const std::string effective_again = FormatEffectiveConfig(*again);
  if (WithoutComments(effective_again) != WithoutComments(effective)) {
    Fail("effective configuration changed on re-parse",
         effective + "\n----\n" + effective_again);
  }
  return 0;
}
