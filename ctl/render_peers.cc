#include "ctl/render_peers.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "ctl/printable.h"
#include "google/protobuf/duration.pb.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::v1::PeerStatus;
using ::ntpfleet::v1::PeerType;
using ::ntpfleet::v1::SelectionMark;
using ::ntpfleet::v1::SyncStatus;

// ntpq 4.2.6's header and rule, 78 characters each.
constexpr absl::string_view kHeader =
    "     remote           refid      st t when poll reach   delay   offset  "
    "jitter\n";
constexpr absl::string_view kRule =
    "=========================================================================="
    "====\n";

constexpr size_t kNameWidth = 15;   // remote and refid
constexpr size_t kNumberWidth = 7;  // delay, offset, jitter: ntpq's "%7.7s"

char Tally(SelectionMark mark) {
  switch (mark) {
    case v1::SELECTION_MARK_FALSETICKER:
      return 'x';
    case v1::SELECTION_MARK_EXCESS:
      return '.';
    case v1::SELECTION_MARK_OUTLIER:
      return '-';
    case v1::SELECTION_MARK_CANDIDATE:
      return '+';
    case v1::SELECTION_MARK_BACKUP:
      return '#';
    case v1::SELECTION_MARK_SYSTEM_PEER:
      return '*';
    default:  // REJECT, UNSPECIFIED, values from a newer API.
      return ' ';
  }
}

char TypeLetter(PeerType type) {
  switch (type) {
    case v1::PEER_TYPE_UNICAST:
      return 'u';
    case v1::PEER_TYPE_POOL:
      return 'p';
    case v1::PEER_TYPE_LOCAL_CLOCK:
      return 'l';
    case v1::PEER_TYPE_BROADCAST:
      return 'b';
    case v1::PEER_TYPE_MANYCAST:
      return 'm';
    default:
      return '-';
  }
}

// ntpq's "%-15.15s": the first 15 bytes, left-aligned, padded to 15.
std::string NameColumn(absl::string_view s) {
  return absl::StrFormat("%-*s", kNameWidth,
                         Printable(s.substr(0, kNameWidth)));
}

// ntpq's prettyinterval(): whole seconds up to 2048, then minutes up to 300,
// hours up to 96, then days, each rounded to nearest (half up) from the unit
// before: 2049 s is "34m", 18031 s is "5h", 347431 s is "4d". Zero or less is
// "-". Written as q + (r + half) / unit so that no sum can overflow.
std::string PrettyInterval(int64_t seconds) {
  if (seconds <= 0) return "-";
  if (seconds <= 2048) return absl::StrCat(seconds);
  const int64_t minutes = seconds / 60 + (seconds % 60 + 29) / 60;
  if (minutes <= 300) return absl::StrCat(minutes, "m");
  const int64_t hours = minutes / 60 + (minutes % 60 + 29) / 60;
  if (hours <= 96) return absl::StrCat(hours, "h");
  const int64_t days = hours / 24 + (hours % 24 + 11) / 24;
  return absl::StrCat(days, "d");
}

// ntpq's lfptoms(x, 3): milliseconds with 3 decimals. The magnitude is rounded
// half up; the sign is that of the value before rounding, so -0.2 us is
// "-0.000", as ntpq shows it. Saturates beyond about 9.2e12 s (NumberText
// does not use it there).
std::string Milliseconds(absl::Duration d) {
  const bool negative = d < absl::ZeroDuration();
  const int64_t micros =
      absl::ToInt64Microseconds(absl::AbsDuration(d) + absl::Nanoseconds(500));
  return absl::StrFormat("%s%d.%03d", negative ? "-" : "", micros / 1000,
                         micros % 1000);
}

// A value too wide for milliseconds, in seconds: whole seconds ("-2000s") if
// they fit in kNumberWidth characters, else in powers of ten ("-2.0e9s",
// "9e18s"), else (infinite) "inf"/"-inf".
std::string WideSeconds(absl::Duration d) {
  const char* sign = d < absl::ZeroDuration() ? "-" : "";
  const double seconds = absl::ToDoubleSeconds(absl::AbsDuration(d));
  if (!std::isfinite(seconds)) return absl::StrCat(sign, "inf");
  const std::string whole =
      absl::StrFormat("%s%.0fs", sign, std::round(seconds));
  if (whole.size() <= kNumberWidth) return whole;
  std::string text;
  for (int precision : {1, 0}) {
    // "%.1e" gives "2.0e+09": drop the '+' and the exponent's leading zeros.
    const std::string e = absl::StrFormat("%.*e", precision, seconds);
    const size_t at = e.find('e');
    int exponent = 0;
    if (at == std::string::npos ||
        !absl::SimpleAtoi(absl::string_view(e).substr(at + 1), &exponent)) {
      return absl::StrCat(sign, "inf");  // cannot happen for a finite value
    }
    text = absl::StrCat(sign, e.substr(0, at), "e", exponent, "s");
    if (text.size() <= kNumberWidth) break;
  }
  return text;
}

// A delay, offset or jitter, at most kNumberWidth characters. ntpq's form
// while the whole milliseconds fit (the decimals cut as ntpq's "%7.7s" does:
// 1523.457 ms is "1523.45", never rounded up to a wider number); beyond that
// ntpq would cut digits off the whole number itself (-2000 s would read as
// "-200000", 10x too small), so the value switches to seconds instead.
std::string NumberText(const google::protobuf::Duration& proto) {
  const absl::Duration d = FromProto(proto);
  const std::string ms = Milliseconds(d);
  if (ms.find('.') <= kNumberWidth) return ms.substr(0, kNumberWidth);
  return WideSeconds(d);
}

// printf's "%W.7s" of a NumberText (which is never longer than 7).
std::string NumberColumn(const std::string& s, int width) {
  return absl::StrFormat("%*s", width, s);
}

// printf's "%4.4s".
std::string IntervalColumn(int64_t seconds) {
  return absl::StrFormat(
      "%4s", absl::string_view(PrettyInterval(seconds)).substr(0, 4));
}

// The configured name, or the resolved address if no name was given.
const std::string& DisplayName(const PeerStatus& peer) {
  return peer.remote().empty() ? peer.address() : peer.remote();
}

// One row: ntpq's "%c%-15.15s %-15s %2ld %c %4.4s %4.4s  %3lo  %7.7s %8.7s
// %7.7s\n" (the refid there padded, here also cut, to 15).
void AppendRow(const PeerStatus& peer, std::string* out) {
  const int64_t when =
      peer.has_when() ? absl::ToInt64Seconds(FromProto(peer.when())) : 0;
  const int64_t poll = absl::ToInt64Seconds(FromProto(peer.poll()));
  absl::StrAppendFormat(
      out, "%c%s %s %2d %c %s %s  %3o  %s %s %s\n", Tally(peer.mark()),
      NameColumn(DisplayName(peer)), NameColumn(peer.refid()), peer.stratum(),
      TypeLetter(peer.type()), IntervalColumn(when), IntervalColumn(poll),
      peer.reach() & 0xffu, NumberColumn(NumberText(peer.delay()), 7),
      NumberColumn(NumberText(peer.offset()), 8),
      NumberColumn(NumberText(peer.jitter()), 7));
}

}  // namespace

std::string RenderPeers(const SyncStatus& status) {
  std::string out = absl::StrCat(kHeader, kRule);
  for (const PeerStatus& peer : status.peers()) AppendRow(peer, &out);
  return out;
}

std::string RenderPeersWithReasons(const SyncStatus& status) {
  std::string out = RenderPeers(status);
  bool have_system_peer = false;
  for (const PeerStatus& peer : status.peers()) {
    if (peer.mark() == v1::SELECTION_MARK_SYSTEM_PEER) have_system_peer = true;
    if (peer.unusable_reason().empty()) continue;
    absl::StrAppend(&out, "  ", Printable(DisplayName(peer)), ": ",
                    Printable(peer.unusable_reason()), "\n");
  }
  if (!status.reason().empty()) {
    // The node's own verdict (e.g. its clock is beyond the panic threshold),
    // which no server's reason explains.
    absl::StrAppend(&out, Printable(status.reason()), "\n");
  } else if (!have_system_peer) {
    absl::StrAppend(
        &out,
        "no server suitable for synchronization: see the reasons above\n");
  }
  return out;
}

}  // namespace ntpfleet::ctl
