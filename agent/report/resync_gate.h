// One agent, several controllers (a `controller` line each): the resyncs they
// ask for pass through one ResyncGate, so that two controllers cannot make a
// node resync twice as often as one would.
//
// Each controller already holds back its own repeats (ntpfleet-controller
// --resync-min-interval, 5 s by default). What no single controller can see
// is another controller's request: the gate refuses a resync asked for by
// controller C while a resync asked for by a DIFFERENT controller was
// admitted less than `min_interval` ago. The refused request is answered at
// once with RESYNC_OUTCOME_RATE_LIMITED naming the other controller; nothing
// is measured or corrected. So within any window of `min_interval`, all the
// resyncs a node carries out come from one controller, and the node's rate is
// at most that of the busiest controller. Repeats from the SAME controller
// are left to that controller's own limit (an agent with one controller
// behaves exactly as before the gate existed).
//
// The local control socket's resync (`ntpfleetctl sync`, root on the node)
// does not pass through the gate.
//
//   ResyncGate gate(kControllerResyncMinInterval);
//   if (std::optional<std::string> refused = gate.Admit("ctl-b:7123", now)) {
//     // answer RATE_LIMITED with *refused as the error
//   }
//
// Thread safety: thread-safe (each controller's stream calls it from its own
// reader thread).
#ifndef NTPFLEET_AGENT_REPORT_RESYNC_GATE_H_
#define NTPFLEET_AGENT_REPORT_RESYNC_GATE_H_

#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace ntpfleet::report {

// The controller's default --resync-min-interval: the agent holds resyncs
// from different controllers this far apart.
inline constexpr absl::Duration kControllerResyncMinInterval = absl::Seconds(5);

class ResyncGate {
 public:
  explicit ResyncGate(absl::Duration min_interval)
      : min_interval_(min_interval) {}

  // A resync asked for by `controller` (its address as configured) at `now`
  // (monotonic): nullopt when admitted (and recorded), else why not, e.g.
  // "resynced at the request of controller 10.0.0.1:7123 1.2s ago; at most
  // one resync every 5s from different controllers".
  std::optional<std::string> Admit(const std::string& controller,
                                   clock::MonoTime now);

 private:
  const absl::Duration min_interval_;
  absl::Mutex mu_;
  // Controller address -> when a resync it asked for was last admitted.
  std::map<std::string, clock::MonoTime> last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ntpfleet::report

#endif  // NTPFLEET_AGENT_REPORT_RESYNC_GATE_H_
