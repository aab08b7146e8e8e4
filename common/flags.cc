#include "common/flags.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/internal/program_name.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/nearest_word.h"
#include "common/version.h"

namespace ntpfleet {
namespace {

// How the user writes a flag: dashes, as --help shows them.
std::string Dashed(absl::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

// --help and its kind: not registered flags, Abseil's parser knows them by
// name (flags/internal/usage.cc DeduceUsageFlags), with or without "=VALUE".
constexpr absl::string_view kUsageFlags[] = {
    "help",   "helpfull",  "helpshort", "helppackage",
    "helpon", "helpmatch", "version",   "only_check_args"};

// The nearest flag our programs define (in a main.cc, as --help lists them)
// or of --help's kind, within 2 edits, else "".
std::string Nearest(absl::string_view name) {
  std::vector<absl::string_view> ours;
  for (const auto& [flag_name, flag] : absl::GetAllFlags()) {
    if (absl::EndsWith(flag->Filename(), "main.cc")) ours.push_back(flag_name);
  }
  ours.insert(ours.end(), std::begin(kUsageFlags), std::end(kUsageFlags));
  std::sort(ours.begin(), ours.end());  // equals: the first by name
  return NearestWord(name, ours);
}

// An example of a value `flag` takes: its default, unless that is empty.
std::string Example(const absl::CommandLineFlag& flag) {
  const std::string value = flag.DefaultValue();
  if (flag.IsOfType<bool>()) return "--" + Dashed(flag.Name()) + "=true";
  if (value.empty()) return "";
  return "--" + Dashed(flag.Name()) + "=" + value;
}

}  // namespace

std::string FlagUsageError(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (absl::StartsWith(arg, "--undefok") ||
        absl::StartsWith(arg, "-undefok")) {
      return "";  // Abseil's own rules then, unknown names allowed
    }
  }
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;  // positional, or "-"
    absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    const size_t eq = body.find('=');
    const absl::string_view name = body.substr(0, eq);
    const bool has_value = eq != absl::string_view::npos;
    absl::string_view value = has_value ? body.substr(eq + 1) : "";
    const std::string shown = "--" + Dashed(name);
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && absl::StartsWith(name, "no") && !has_value) {
      absl::CommandLineFlag* negated =
          absl::FindCommandLineFlag(name.substr(2));
      if (negated != nullptr && negated->IsOfType<bool>()) continue;
    }
    if (flag == nullptr &&
        std::find(std::begin(kUsageFlags), std::end(kUsageFlags), name) !=
            std::end(kUsageFlags)) {
      continue;
    }
    if (flag == nullptr || flag->IsRetired()) {
      std::string message = absl::StrCat("unknown flag ", shown);
      const std::string near = Nearest(name);
      if (!name.empty() && (absl::ascii_isdigit(name[0]) || name[0] == '.')) {
        absl::StrAppend(&message, "; a negative value goes after --, e.g. -- ",
                        arg);
      } else if (!near.empty()) {
        absl::StrAppend(&message, "; did you mean --", Dashed(near), "?");
      }
      return message;
    }
    if (name == "flagfile" || name == "fromenv" || name == "tryfromenv") {
      if (!has_value) ++i;
      continue;
    }
    if (flag->IsOfType<bool>() && !has_value) continue;
    if (!has_value) {
      if (i + 1 >= args.size()) {
        const std::string example = Example(*flag);
        return absl::StrCat(shown, " needs a value",
                            example.empty() ? "" : ", e.g. ", example);
      }
      value = args[++i];
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      const std::string example = Example(*flag);
      return absl::StrCat(shown, "=", value, ": not a value this flag takes",
                          example.empty() ? "" : ", e.g. ", example);
    }
  }
  return "";
}

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
  if (const std::string error = FlagUsageError(storage_); !error.empty()) {
    std::cerr << program << ": " << error << " (see " << program
              << " --help)\n";
    std::exit(2);
  }
  for (std::string& s : storage_) pointers_.push_back(s.data());
  pointers_.push_back(nullptr);  // argv[argc], as for main()
}

}  // namespace ntpfleet
