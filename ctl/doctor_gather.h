// `ntpfleetctl doctor`'s facts, gathered from this node: the agent's config
// and control socket, /proc (who holds the UDP port, which time daemons run,
// the agent's capabilities), /etc and crontabs, the network (an NTP query to
// each upstream, a TLS handshake with the controller) and the kernel clock.
// ctl/doctor.h turns them into the report.
//
// Everything here only reads. The kernel clock is read with ntp_adjtime()
// with modes = 0, which never changes it; the NTP queries are single client
// packets from ephemeral ports.
//
//   GatherOptions o;
//   o.config_path = "/etc/ntpfleet/agent.conf";
//   absl::StatusOr<DoctorFacts> facts = GatherFacts(o);
//   if (!facts.ok()) { print facts.status(); return 1; }  // unreadable config
//
// The pieces with logic of their own are exposed for the tests.
//
// Thread safety: no shared state; GatherFacts may run concurrently with
// itself.
#ifndef NTPFLEET_CTL_DOCTOR_GATHER_H_
#define NTPFLEET_CTL_DOCTOR_GATHER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/ntp/packet.h"
#include "ctl/doctor.h"

namespace ntpfleet::ctl {

struct GatherOptions {
  std::string config_path = "/etc/ntpfleet/agent.conf";
  std::string control_socket;  // the agent's (ctl/local_client.h default)
  std::string proc_root = "/proc";
  std::string etc_root = "/etc";  // crontabs, *.wants and rc?.d links
  std::string spool_root = "/var/spool/cron";
  // How long each NTP query waits for its answer.
  absl::Duration probe_timeout = absl::Seconds(2);
  // TCP connect, TLS handshake, the controller's first HTTP/2 frame.
  absl::Duration connect_timeout = absl::Seconds(3);
  // To ask the controller which nodes a silent upstream answers (the firewall
  // check): ntpfleetctl's --tls-cert/--tls-key/--tls-ca (a user
  // certificate, role viewer at least). Empty: the agent's own tls_* lines,
  // which the controller refuses for that (a node certificate may only
  // report), or plain text when those are empty too.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
};

// Fails (FailedPrecondition naming the file) only when the config file cannot
// be read at all; everything else becomes a fact.
absl::StatusOr<DoctorFacts> GatherFacts(const GatherOptions& options);

// --- exposed for tests -------------------------------------------------------

// The CapEff mask of a /proc/PID/status text.
std::optional<uint64_t> ParseCapEff(absl::string_view proc_status);
// The effective uid (second field of "Uid:") of a /proc/PID/status text.
std::optional<uint32_t> ParseEffectiveUid(absl::string_view proc_status);

// "FILE:LINE: line" for each crontab line (not a comment, not an assignment)
// that runs ntpdate, chronyc or sntp.
std::vector<std::string> CronTimeLines(absl::string_view text,
                                       absl::string_view file);

// Time daemons enabled at boot, found without systemd: the
// ETC/systemd/system/*.wants/UNIT.service symlinks and ETC/rc?.d/S??NAME
// links; each as its path.
std::vector<std::string> EnabledInEtc(const std::string& etc_root);

// What one NTP reply says, doctor's way (RFC 5905 §7.3, §7.4): a kiss code, an
// unsynchronised server (leap 3, or stratum 0 without a kiss code, or 16 and
// more), or an answer with its offset and delay. t1: when the request left
// (the transmit timestamp it carried), t4: when the reply arrived, both this
// machine's clock.
ProbeResult ClassifyReply(const ntp::NtpPacket& reply, absl::Time t1,
                          absl::Time t4);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_DOCTOR_GATHER_H_
