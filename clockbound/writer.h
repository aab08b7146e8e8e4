// Writes a ClockBound shared memory segment (protocol v2 plus ntpfleet's
// extension, segment.h) for ntpfleet-agent. One writer per path: the file is
// flock()ed while open, so a second ntpfleet-agent on the same path fails to
// start instead of fighting over it.
//
// Open() creates the directory if missing and either reuses a valid segment of
// the same layout in place — readers that have it mapped keep working across
// agent restarts, as with ClockBound's daemon — or creates a fresh one
// atomically: a temporary file in the same directory is sized, filled (status
// unknown), fsync()ed and renamed over the path, so that a reader never maps a
// half-made segment.
//
//   absl::StatusOr<std::unique_ptr<Writer>> w = Writer::Open(path);
//   clockbound::Contents c;  c.status = ClockStatus::kSynchronized; ...
//   (*w)->Write(c);
//
// Thread-compatible (one thread writes).
#ifndef NTPFLEET_CLOCKBOUND_WRITER_H_
#define NTPFLEET_CLOCKBOUND_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "clockbound/segment.h"

namespace ntpfleet::clockbound {

class Writer {
 public:
  static absl::StatusOr<std::unique_ptr<Writer>> Open(const std::string& path);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // One update under the generation protocol: odd, the fields, even (never 0:
  // after 65535 comes 2). A generation left odd by a writer that died
  // mid-update is completed, not incremented twice.
  void Write(const Contents& c);

  const std::string& path() const { return path_; }
  // Whether Open() found a valid segment and kept it.
  bool reused() const { return reused_; }
  uint16_t generation() const;

 private:
  Writer() = default;

  std::string path_;
  int fd_ = -1;
  Segment* segment_ = nullptr;
  bool reused_ = false;
};

}  // namespace ntpfleet::clockbound

#endif  // NTPFLEET_CLOCKBOUND_WRITER_H_
