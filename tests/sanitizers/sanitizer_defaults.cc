// Linked into every binary and test under --config=asan and --config=tsan
// (through
// --custom_malloc, see .bazelrc): hands the sanitizer runtimes the suppression
// lists in lsan.supp and tsan.supp, so no test needs a path to them in
// LSAN_OPTIONS/TSAN_OPTIONS. (The runtimes call these hooks at start-up when
// they are defined.)

extern "C" {

const char* __lsan_default_suppressions() {
  return
#include "tests/sanitizers/lsan_supp.inc"
      ;
}

const char* __tsan_default_suppressions() {
  return
#include "tests/sanitizers/tsan_supp.inc"
      ;
}

}  // extern "C"
