#include "common/flags.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/internal/program_name.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "common/version.h"

namespace ntpfleet {

DashedFlags::DashedFlags(int argc, char** argv) {
  // --help lists the flags defined in our programs' main.cc files (Abseil's
  // default looks for files named after the program).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  // --version prints "ntpfleet-agent 0.1.0": the version in //:VERSION, which
  // the packages (deploy/packaging/) carry too.
  std::string program = argc > 0 ? argv[0] : "ntpfleet";
  program = program.substr(program.rfind('/') + 1);
  usage.version_string = [program] {
    return program + " " + NTPFLEET_VERSION + "\n";
  };
  absl::SetFlagsUsageConfig(usage);
  bool rest = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") rest = true;
    // --help asked for help and got it: exit 0, as every Unix tool does
    // (Abseil's own handling exits 1, which reads as a failure in scripts).
    if (!rest && i > 0 && (arg == "--help" || arg == "-help")) {
      // Its first line is "PROGRAM: usage", as Abseil's own --help.
      absl::flags_internal::SetProgramInvocationName(argv[0]);
      absl::flags_internal::FlagsHelp(
          std::cout, "main.cc",
          absl::flags_internal::HelpFormat::kHumanReadable,
          absl::ProgramUsageMessage());
      std::cout.flush();
      std::exit(0);
    }
    if (!rest && i > 0 && arg.size() > 2 && arg[0] == '-' && arg[1] == '-') {
      const size_t end = arg.find('=');
      for (size_t j = 2; j < std::min(end, arg.size()); ++j) {
        if (arg[j] == '-') arg[j] = '_';
      }
    }
    storage_.push_back(arg);
  }
  for (std::string& s : storage_) pointers_.push_back(s.data());
  pointers_.push_back(nullptr);  // argv[argc], as for main()
}

}  // namespace ntpfleet
