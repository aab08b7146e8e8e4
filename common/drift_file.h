// The drift file: the clock's learned frequency correction, kept across
// restarts so that the agent starts close to the right frequency instead of
// spending hours relearning it.
//
// The format is ntpd's (/var/lib/ntp/drift): one number on one line, the
// frequency correction in ppm with adjtimex's sign (positive makes the clock
// run faster; the value of AdjustableClock::FrequencyAdjustment()), written as
// "%.3f\n". A node migrating from ntpd can point the agent at ntpd's file and
// keep its learned frequency.
//
// Anything after the first number on the line is ignored, so chrony's "<freq>
// <skew>" lines parse too. Beware: chrony's number has the OPPOSITE sign
// (chrony's sys_timex.c sets timex.freq = -freq_ppm * 65536), so a value taken
// over from chrony must be negated by the caller.
//
// Writes are crash-safe: the new content goes to a temporary file in the same
// directory, is fsync'ed, and is renamed over the old file, and then the
// directory is fsync'ed. A reader (or the agent after a crash or power loss)
// sees either the old or the new complete file, never a mix.
//
// Example:
//   absl::StatusOr<double> ppm = ReadDriftFile("/var/lib/ntpfleet/drift");
//   if (ppm.ok()) {
//     (void)clock.SetFrequencyAdjustment(*ppm);
//   } else if (!absl::IsNotFound(ppm.status())) {
//     // Log ppm.status(): it names the file, the line and what is wrong with
//     it.
//   }
//   ...
//   absl::Status saved = WriteDriftFile("/var/lib/ntpfleet/drift",
//   clock.FrequencyAdjustment());
//
// Thread safety: both functions are safe to call concurrently (each write uses
// its own uniquely named temporary file); concurrent writers of the same path
// race only in which one wins.
#ifndef NTPFLEET_COMMON_DRIFT_FILE_H_
#define NTPFLEET_COMMON_DRIFT_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ntpfleet::clock {

// Returns the frequency correction in ppm stored at `path`.
// - NotFound if there is no file (normal on first start: start from 0 ppm).
// - InvalidArgument "PATH:1: ..." if the first line does not start with a
// number, or the number is
//   not finite or is beyond kMaxFrequencyPpm (500 ppm) either way.
// - InvalidArgument if it is not a regular file (never waits on a FIFO).
// - Another code (from errno) if the file exists but cannot be read.
absl::StatusOr<double> ReadDriftFile(const std::string& path);

// Replaces the file at `path` with `ppm` ("%.3f\n"), crash-safely (see above).
// The temporary file is PATH.tmp.XXXXXX; it is removed on every error.
// InvalidArgument (and nothing written) if `ppm` is not finite or beyond
// kMaxFrequencyPpm; otherwise errors name the path and the system error.
absl::Status WriteDriftFile(const std::string& path, double ppm);

// Whether the agent will be able to write the drift file at `path`, checked at
// start rather than found an hour later or at exit: creates the temporary file
// WriteDriftFile() would (PATH.tmp.XXXXXX) and removes it again, so the
// answer is the kernel's for this process (root included: mode bits do not
// stop root, a missing directory or a read-only filesystem does). Errors say
// what to fix: NotFound "drift file /x/drift: the directory /x does not
// exist: create it ...", PermissionDenied, FailedPrecondition (a path under a
// regular file, or PATH a directory), or the errno's code.
absl::Status CheckDriftFileWritable(const std::string& path);

}  // namespace ntpfleet::clock

#endif  // NTPFLEET_COMMON_DRIFT_FILE_H_
