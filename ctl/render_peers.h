// The peers table of `ntpfleetctl peers`: a node's upstreams laid out exactly
// like `ntpq -p` of classic ntpd 4.2.6 (the ntpq of CentOS 7), so that admins
// and their scripts read it the way they always have.
//
// clang-format off
//      remote           refid      st t when poll reach   delay   offset  jitter
// ==============================================================================
// *192.168.242.51  LOCAL(0)        11 u   36   64  377    0.311   -0.012   0.021
// clang-format on
//
// Columns, as ntpq 4.2.6 prints them (ntpq/ntpq-subs.c, dopeers() and
// doprintpeers()):
// - tally: from PeerStatus.mark: ' ' reject, 'x' falseticker, '.' excess,
//   '-' outlier, '+' candidate, '#' backup, '*' system peer (' ' if
//   unspecified).
// - remote: PeerStatus.remote (the configured name; the resolved address if
//   remote is empty), cut to its first 15 bytes, padded to 15.
// - refid: PeerStatus.refid as given (".INIT.", ".LOCL.", "LOCAL(0)",
//   "131.188.3.222", ...), cut to 15, padded to 15.
// - st: the stratum, right-aligned in 2.
// - t: from PeerStatus.type: u, p, l, b, m ('-' if unspecified).
// - when, poll: whole seconds, right-aligned in 4, in ntpq's "pretty interval"
//   form: "-" for 0 or less (and for an absent `when`: never heard from);
//   seconds up to 2048; then minutes rounded to nearest, "35m", up to 300m;
//   then hours, "5h", up to 96h; then days, "3d".
// - reach: the low 8 bits of the reach register in octal, right-aligned in 3.
// - delay, offset, jitter: milliseconds with 3 decimals (rounded half up on the
//   magnitude; a negative value keeps its '-', even "-0.000"), right-aligned
//   in 7, 8 and 7. As in ntpq, decimals that do not fit are CUT to 7
//   characters, not rounded: an offset of 1523.457 ms shows as "1523.45", and
//   one of 447024.123 ms as "447024.". Positive offsets carry no '+' (later
//   ntpq versions print one; 4.2.6 does not). Unlike ntpq, whose cut would
//   drop digits of the whole number itself (-2000 s as "-200000", 10x too
//   small), a value whose whole milliseconds do not fit in 7 characters
//   (from -1000 s and +10000 s on) is shown in seconds with an 's': "-2000s",
//   "86400s"; too wide for that (past -99999 s and +999999 s), in powers of
//   ten: "-2.0e9s", "9e18s". Every such value has its unit, so it cannot be
//   read as milliseconds. --output json has every value in full.
// Control characters in names, refids and reasons are shown as '?' so that a
// hostile or broken name cannot break the table's lines. Every line, the last
// included, ends with '\n'.
//
// Example:
//   ntpfleet::v1::SyncStatus status = ...;  // From FleetService.GetNode.
//   std::cout << ntpfleet::ctl::RenderPeersWithReasons(status);
//
// Thread safety: pure functions of their argument; safe to call concurrently.
#ifndef NTPFLEET_CTL_RENDER_PEERS_H_
#define NTPFLEET_CTL_RENDER_PEERS_H_

#include <string>

#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {

// The header, the "=" rule and one row per peer, in the order of
// status.peers().
std::string RenderPeers(const ntpfleet::v1::SyncStatus& status);

// RenderPeers(status), then "  REMOTE: REASON" for every peer whose
// unusable_reason is set (REMOTE in full, not cut to 15), then, if no peer is
// marked as the system peer, the line
// "no server suitable for synchronization: see the reasons above".
// This is ntpdate's "no server suitable for synchronization found", with the
// reason given per server.
std::string RenderPeersWithReasons(const ntpfleet::v1::SyncStatus& status);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_RENDER_PEERS_H_
