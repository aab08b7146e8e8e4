// Lets flags be written with dashes, as the rest of the Unix world does
// (--control-socket), while Abseil names them with underscores
// (--control_socket): rewrites "--a-b[=v]" to "--a_b[=v]" before
// absl::ParseCommandLine. Arguments after "--" are left alone. `--help`
// prints the usage message and the flags of our main.cc files and exits 0.
#ifndef NTPFLEET_COMMON_FLAGS_H_
#define NTPFLEET_COMMON_FLAGS_H_

#include <string>
#include <vector>

namespace ntpfleet {

class DashedFlags {
 public:
  DashedFlags(int argc, char** argv);
  int argc() const { return static_cast<int>(pointers_.size()) - 1; }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> storage_;
  std::vector<char*> pointers_;
};

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_FLAGS_H_
