// Lets flags be written with dashes, as the rest of the Unix world does
// (--control-socket), while Abseil names them with underscores
// (--control_socket): rewrites "--a-b[=v]" to "--a_b[=v]" before
// absl::ParseCommandLine. Arguments after "--" are left alone. `--help`
// prints the usage message and the flags of our main.cc files and exits 0.
// An unknown flag, a flag without its value, or a value its flag cannot take
// (`--step=maybe`) is a usage error: one line naming the flag and a valid
// example, and exit 2, as every other usage error of our programs (Abseil's
// own parser would print "ERROR: ..." and exit 1).
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

// The usage error in `args` (argv[0] first, flags already dashes-to-
// underscores), or "" when Abseil's parser will accept every flag: each
// "--name[=value]" / "-name" before "--" names a registered flag ("--noname"
// for a yes/no flag), a flag that takes a value has one ("--name=V" or
// "--name V"), and the value parses as the flag's type. Checking a value sets
// the flag to it, as absl::ParseCommandLine then does again. Flags read from
// a --flagfile/--fromenv are left to Abseil, and with --undefok unknown names
// are too.
std::string FlagUsageError(const std::vector<std::string>& args);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_FLAGS_H_
