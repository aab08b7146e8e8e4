// The crosscheck probes' limits (docs/AGENT.md "Crosscheck probes",
// docs/CROSSCHECK.md): what an agent keeps of a controller's ProbeAssignment,
// and what it lets leave. Trust fails closed: a controller (or whoever holds
// its stream) chooses the targets, so the agent bounds what it stores, and
// bounds the requests where they are sent, so that no pattern of assignments
// (alternating, reconnecting, changing intervals) gets around it.
//
//   BoundedAssignment b = BoundProbeAssignment(assignment);  // <= 16 targets
//   ProbeSendLimiter limiter(kMaxProbeTargets * controllers);
//   if (limiter.Admit("192.0.2.1:123", now) == ProbeSendLimiter::kSend) send;
//
// Pure: no sockets, no clocks (monotonic time is passed in).
#ifndef NTPFLEET_AGENT_NET_PROBE_LIMITS_H_
#define NTPFLEET_AGENT_NET_PROBE_LIMITS_H_

#include <cstddef>
#include <deque>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/net/udp.h"
#include "common/clock.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::net {

// At most this many targets per controller (ProbeAssignment.targets).
inline constexpr int kMaxProbeTargets = 16;
// The longest ProbeTarget.address kept: "[IPv6]:port" is at most 53 bytes.
inline constexpr size_t kMaxProbeAddressBytes = 64;
// At most one request to an address per this long, whatever the assignments
// (= ntp::kMinMonitorInterval); and the window of the agent-wide budget.
inline constexpr absl::Duration kProbeSpacing = absl::Seconds(64);
// An address that answered KoD DENY or RSTR (RFC 5905 §7.4) gets no request
// for this long, even from a monitor created anew.
inline constexpr absl::Duration kProbeDenyHold = absl::Hours(1);

// A probe target's address: "IP:port" or "[IPv6]:port", literals only (no
// names: the controller sends the address it sees the node at), port 1..65535,
// at most kMaxProbeAddressBytes.
absl::StatusOr<Endpoint> ParseProbeAddress(absl::string_view text);

// What is kept of an assignment: the first kMaxProbeTargets valid targets
// (node a valid node name, common/node_name.h; address per
// ParseProbeAddress), as the controller wrote them, and its interval.
struct BoundedAssignment {
  v1::ProbeAssignment assignment;
  int invalid = 0;  // targets skipped as malformed
  int excess = 0;   // valid targets beyond kMaxProbeTargets
  // The first malformed target and why, quoted and cut short for a log line
  // (empty if none).
  std::string first_invalid;
};
BoundedAssignment BoundProbeAssignment(const v1::ProbeAssignment& in);

// "'text'" with C escapes, at most `max` bytes of `text` (then "..."): an
// untrusted string as a log line may show it.
std::string QuoteForLog(absl::string_view text, size_t max = 64);

// Where monitor requests leave: per address ("ip:port", Endpoint::ToString),
// no request less than kProbeSpacing after the last one (or while a KoD
// holds it); in all, at most `budget` requests in any kProbeSpacing. The
// memory of an address outlives the monitor that sent to it (a monitor torn
// down and created again is still held to the spacing) and is bounded: an
// entry is kept until it no longer holds anything back, and never more than
// kMaxAddresses entries (the one expiring first goes).
//
// Not thread-safe (the agent's loop thread only).
class ProbeSendLimiter {
 public:
  enum Verdict { kSend, kTooSoon, kOverBudget };
  static constexpr size_t kMaxAddresses = 4096;

  // `budget`: requests per kProbeSpacing in all (at least 1).
  explicit ProbeSendLimiter(int budget);

  // Whether a request to `address` may leave at `now` (non-decreasing); if
  // so (kSend) it is recorded as sent. `now`: when the request was made (the
  // engine's timer time), so that a monitor polling every kProbeSpacing is
  // never refused.
  Verdict Admit(const std::string& address, clock::MonoTime now);
  // The earliest a request to `address` may leave, as far as this address is
  // concerned (the budget aside); MonoTime() if nothing holds it back.
  clock::MonoTime NotBefore(const std::string& address) const;
  // No request to `address` before `until` (a KoD); never shortens a hold.
  void HoldUntil(const std::string& address, clock::MonoTime until);

  int budget() const { return budget_; }
  size_t remembered() const { return not_before_.size(); }

 private:
  void Prune(clock::MonoTime now);

  int budget_;
  std::deque<clock::MonoTime> sent_;  // the requests within kProbeSpacing
  std::map<std::string, clock::MonoTime> not_before_;
};

}  // namespace ntpfleet::net

#endif  // NTPFLEET_AGENT_NET_PROBE_LIMITS_H_
