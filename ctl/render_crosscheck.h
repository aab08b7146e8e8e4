// `ntpfleetctl crosscheck`: what the mesh of probes measured of each node's
// clock beside what the node reports (FleetService.Crosscheck,
// docs/CROSSCHECK.md). A pure function of the CrosscheckResponse: no IO, no
// clock (the caller passes "now").
//
// clang-format off
//   crosscheck  as of 2026-11-25 23:41:06 UTC (4.0s ago)
//   reference   srv-1 (offsets are reference minus local: '+' means behind it)
//   probes      3 per node every 64s: 3 x 2 x 90 B = 8.4 B/s per node; 15 exchanges = 42.2 B/s for the fleet
//   pairwise    |Ci - Cj| over 5 measured nodes: p50 1.200ms  p99 5.010ms  max 5.020ms
//   closure     RMS 14µs (residuals of the edges: small when the loops close)
//   verdict     1 of 3 judged nodes FLAGGED: liar
//
//   NODE   STATE             REPORTED    MEASURED  ±UNCERT    DISAGREE    BOUND  PROBED-BY  VERDICT
//   liar   synchronised      +5.000ms        -3µs     ±9µs    +5.003ms    312µs          3  FLAGGED
//   c-1    synchronised        +700µs      -200µs     ±9µs      +900µs  2.000ms          3  ok
//   c-3    unsynchronised       +40µs       +35µs     ±9µs        +5µs        -          3  not judged
//   new    synchronised             -           -        -           -    100µs          -  not measured
//   srv-1  local clock           +0µs        +0µs     ±0µs        +0µs        -          3  reference
//
//   liar: |disagreement| 5.003ms > bound 312µs + 3 x 9µs
//   c-3: no error bound: not synchronised
//   srv-1: the reference
// (a canned response: tests/ctl/render_crosscheck_test.cc)
// clang-format on
//
// Rows: flagged first (largest |disagreement| first), then by name. VERDICT:
// "FLAGGED" (the node's report and the mesh's measurement of its clock
// disagree by more than its own bound plus 3 x the measurement's uncertainty),
// "ok" (judged, agrees), "reference" (the node the offsets are relative to),
// "not judged" (measured but no bound, not probed, ...: the reason below the
// table says why), "not measured" (no node's probe of it is in the solve).
// Under the table, "NODE: REASON" for every row with a reason. With `edges`,
// the probe graph after that: FROM, TO, OFFSET (C(to) - C(from)), DELAY,
// RESIDUAL (offset minus what the solution says), AGE, sorted by FROM, TO.
//
// Units and colours as ctl/render_fleet.h (FormatOffset, FormatDuration).
//
// Thread safety: pure functions of their arguments; safe to call concurrently.
#ifndef NTPFLEET_CTL_RENDER_CROSSCHECK_H_
#define NTPFLEET_CTL_RENDER_CROSSCHECK_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {

// One NTP packet on the wire: a 48-octet NTP header (RFC 5905 §7.3, no
// extension fields, no MAC) + 8 UDP + 20 IPv4 + 14 Ethernet (no preamble, no
// FCS) = 90 octets; over IPv6 it is 110.
inline constexpr int64_t kNtpPacketOnWireBytes = 48 + 8 + 20 + 14;

// The bandwidth of `exchanges` NTP exchanges (a request and its response,
// kNtpPacketOnWireBytes each) per `interval`, in bytes per second. 0 for a
// non-positive interval.
double ProbeBytesPerSecond(int64_t exchanges, absl::Duration interval);

// Whether the response flags any node (the command's exit 3).
bool AnyCrosscheckFlagged(const v1::CrosscheckResponse& response);

struct CrosscheckRenderOptions {
  absl::Time now;      // for "as of ... (Ns ago)" and the edges' ages
  bool color = false;  // ANSI colours (only for a terminal)
  bool edges = false;  // --edges: the probe graph too
  // The controller the answer came from, said in the header when non-empty
  // (ntpfleetctl asked several).
  std::string controller;
};

std::string RenderCrosscheck(const v1::CrosscheckResponse& response,
                             const CrosscheckRenderOptions& opts);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_RENDER_CROSSCHECK_H_
