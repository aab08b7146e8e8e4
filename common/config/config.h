// The agent's configuration: a drop-in reader for classic ntpd ntp.conf files
// (ntpd 4.2.8 and NTPsec syntax) plus ntpfleet's own directives, parsed into a
// typed AgentConfig.
//
// Parsing is pure: it never touches the file system. `includefile` contents
// come from an IncludeLoader, so tests and the fuzzer need no files;
// config_file.h has the one function that reads from disk.
//
//   absl::StatusOr<AgentConfig> config =
//       ParseConfig(text, "agent.conf", NoIncludeFiles());
//   if (!config.ok()) {
//     // config.status() is InvalidArgument "agent.conf:7: unknown restrict
//     // flag 'nomodfy' (did you mean 'nomodify'?)": print it and exit
//     non-zero.
//   }
//   for (const std::string& w : config->warnings) print w;  // "FILE:LINE: ..."
//   std::cout << FormatEffectiveConfig(*config);             // --check-config
//
// The rules, like ntpd's:
// - One directive per line; '#' starts a comment (also after a directive);
//   blank lines, tabs and CRLF line endings are fine; directive and option
//   names are case-sensitive. A token may be double-quoted ("a b").
// - The first error stops parsing: a syntax error, a value out of range, a
//   misspelt option or restrict flag, a missing argument. Errors are
//   InvalidArgument "FILE:LINE: message".
// - The file must be text: a NUL byte, invalid UTF-8 or a control character
//   other than tab, CR, LF, VT and FF is an error naming the line and column
//   ("binary data", "invalid UTF-8"), before any line is acted on. A UTF-8
//   byte order mark at the start is skipped.
// - Parsing is linear in the number of lines: at most kMaxSources sources and
//   kMaxRestrictRules restrict rules (errors that name the limit).
// - Anything accepted but not acted on is a warning "FILE:LINE: message" in
//   AgentConfig::warnings, never silently different behaviour: unknown or
//   unsupported directives (ntpd too ignores them with a message), ntpd options
//   the agent does not implement, a missing `includefile`.
// - Host names are kept as written; resolving them is the agent's job at run
//   time (it retries names that do not resolve).
//
// Thread safety: the functions here are pure and safe to call concurrently.
#ifndef NTPFLEET_COMMON_CONFIG_CONFIG_H_
#define NTPFLEET_COMMON_CONFIG_CONFIG_H_

#include <array>
#include <bitset>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ntpfleet::config {

// Where a directive was written, for diagnostics: "agent.conf:7".
struct Location {
  std::string file;
  int line = 0;
  std::string ToString() const;
};

enum class AddressFamily {
  kAny,   // no -4/-6: a host name may resolve to either; `restrict default`
  kIpv4,  // -4, or an IPv4 address
  kIpv6,  // -6, or an IPv6 address
};

// One `server` or `pool` line (ntpd's `peer` is read as `server`, with a
// warning). Defaults are ntpd's.
struct ServerEntry {
  // As written, without a ":port" suffix or IPv6 brackets: "ntp1.aliyun.com",
  // "192.168.242.51", "::1". Not resolved here.
  std::string host;
  // The server's UDP port. ntpd has no syntax for it (always 123); ntpfleet
  // accepts "host:port" and "[v6addr]:port", e.g. for tests on loopback.
  int port = 123;
  AddressFamily family = AddressFamily::kAny;  // `server -4 HOST` / `-6`
  bool is_pool = false;  // `pool`: the name stands for several servers
  bool iburst = false;
  bool burst = false;
  bool prefer = false;
  int minpoll = 6;                 // log2 s, 3..17
  int maxpoll = 10;                // log2 s, 3..17, >= minpoll
  std::optional<uint32_t> key_id;  // `key N`: symmetric key 1..65535
  int version = 4;                 // NTP version of requests, 1..4
  Location location;
};

// The undisciplined local clock as a last-resort source (`server 127.127.1.0`
// and `fudge 127.127.1.0 stratum 10`, or the same on a loopback address
// such as `server 127.0.0.1` + `fudge 127.0.0.1 stratum 10`): with no usable
// upstream, the agent serves its own clock at this stratum (like chrony's
// `local stratum N`; ntpd would add one). A loopback `server` without a
// `fudge ... stratum` is an ordinary upstream.
struct LocalClock {
  std::string host;   // the server line's address as written: "127.127.1.0"
  int stratum = 10;   // 1..15; 10 for 127.127.1.x without a fudge stratum
  Location location;  // of the server line
};

// The restrict flags the agent knows (ntpd's names). Unknown names are errors;
// real ntpd flags not listed here (mssntp, noepeer, ippeerlimit,
// serverresponse, flake) are accepted with a warning.
enum class RestrictFlag {
  kIgnore,       // ignore
  kNoModify,     // nomodify
  kNoQuery,      // noquery
  kNoTrap,       // notrap
  kNoPeer,       // nopeer
  kNoTrust,      // notrust
  kKod,          // kod
  kLimited,      // limited
  kNoServe,      // noserve
  kLowPrioTrap,  // lowpriotrap
  kNoMruList,    // nomrulist
  kVersion,      // version
  kNtpPort,      // ntpport
};
inline constexpr int kRestrictFlagCount = 13;
using RestrictFlags = std::bitset<kRestrictFlagCount>;
// ntpd's name for a flag: "nomodify".
const char* RestrictFlagName(RestrictFlag flag);

// One access rule (`restrict ADDR [mask M] FLAGS...`). Rules for the same
// family/address/mask are merged (flags OR'ed), as ntpd does; `unrestrict`
// (NTPsec) removes flags or the whole rule. As in ntpd, the rule that applies
// to an address is the matching one with the longest mask; `restrict default`
// is the default of both families, so its flags combine with those of a
// `restrict -4 default` for IPv4 addresses.
struct RestrictRule {
  // `restrict default`: matches every address of `family` (kAny: both).
  bool is_default = false;
  // kIpv4 or kIpv6 for an address; kAny only for `default` without -4/-6.
  AddressFamily family = AddressFamily::kAny;
  // Network byte order; IPv4 uses the first 4 bytes and leaves the rest zero.
  // The address is stored masked (host bits cleared, with a warning if any
  // were set). Both are all zero for `default`.
  std::array<uint8_t, 16> address{};
  // From `mask M` (or "ADDR/LEN"); the host mask (all ones) when absent.
  std::array<uint8_t, 16> mask{};
  RestrictFlags flags;
  Location location;  // of the first line that created the rule

  bool Has(RestrictFlag flag) const {
    return flags.test(static_cast<size_t>(flag));
  }
  // "default", "192.168.0.0", "::1" (without the mask).
  std::string AddressString() const;
  // "255.255.0.0"; empty for `default`.
  std::string MaskString() const;
};

// `enable` / `disable` flags, with ntpd's defaults.
struct SystemFlags {
  bool auth = true;     // require authentication of peers with keys
  bool kernel = true;   // use the kernel discipline (clock_adjtime PLL)
  bool monitor = true;  // the MRU list (ntpq mrulist; ntpd's monlist)
  bool ntp = true;      // discipline the clock at all
  bool stats = true;    // write the `statistics` files
};

// `leapsecmode` (chrony's directive): who carries out a leap second.
enum class LeapSecMode {
  kSystem,  // the kernel inserts/deletes it (23:59:60 repeats a second)
  kSlew,    // the kernel is not told; the agent slews the clock 1 s after it
};

struct AgentConfig {
  // --- NTP sources
  std::vector<ServerEntry> servers;       // in file order, duplicates dropped
  std::optional<LocalClock> local_clock;  // not in `servers`

  // --- files (empty: not configured)
  std::string driftfile;  // `driftfile PATH`
  std::string leapfile;   // `leapfile PATH`
  std::string keys_file;  // `keys PATH`
  // The lines that set them (the last one), for messages about the file:
  // "agent.conf:4: keys /etc/ntp/keys: ...". line 0: not set.
  Location driftfile_location;
  Location leapfile_location;
  Location keys_location;
  // `clockbound_shm PATH|none`: where the agent writes its ClockBound shared
  // memory segment (docs/CLOCKBOUND.md). nullopt: not configured (the agent's
  // default: /var/run/clockbound/shm0 on the system clock, none on a simulated
  // one); empty: `none`.
  std::optional<std::string> clockbound_shm;

  // `leapsecmode system|slew`
  LeapSecMode leap_sec_mode = LeapSecMode::kSystem;

  // --- access control
  std::vector<RestrictRule> restrictions;  // in file order

  // --- authentication: key ids 1..65535
  std::vector<uint32_t> trusted_keys;   // sorted, unique
  std::optional<uint32_t> request_key;  // `requestkey N`
  std::optional<uint32_t> control_key;  // `controlkey N`

  SystemFlags flags;

  // --- statistics
  std::vector<std::string> statistics;  // `statistics loopstats peerstats`
  std::string statsdir;

  // --- tinker / tos (nullopt: the engine's default)
  std::optional<absl::Duration> panic_threshold;  // `tinker panic N`, s; 0: off
  std::optional<absl::Duration> step_threshold;  // `tinker step N`, s; 0: never
  std::optional<int> orphan_stratum;             // `tos orphan N`, 1..15
  std::optional<int> min_sane;                   // `tos minsane N`
  std::optional<int> min_clock;                  // `tos minclock N`
  std::optional<absl::Duration> max_distance;    // `tos maxdist D`, s

  // --- ntpfleet's own directives
  // `controller HOST:PORT` ("[v6]:PORT", gRPC's "dns:///HOST:PORT"), port
  // 1..65535; one per line, in file order, at most kMaxControllers, no two
  // naming the same host and port (an error). The agent reports to every one
  // over its own stream (docs/CONTROLLER.md "More than one controller");
  // empty: no reporting.
  std::vector<std::string> controllers;
  std::string node_name;  // `node_name NAME`; empty: the host name
  absl::Duration report_interval = absl::Seconds(1);  // 100ms..24h
  std::map<std::string, std::string> labels;          // `label KEY=VALUE`
  bool rtcsync = false;    // `rtcsync`: let the kernel copy time to the RTC
  int server_threads = 1;  // `server_threads N`, 1..256
  // Mutual TLS to the controller: all three or none (a partial set is an
  // error, never a silent fall back to plaintext).
  std::string tls_ca;    // `tls_ca FILE`: the fleet's CA certificate
  std::string tls_cert;  // `tls_cert FILE`: this agent's certificate
  std::string tls_key;   // `tls_key FILE`: its private key
  int port = 123;  // `port N`: the UDP port the server answers on, 1..65535
  // `resync_max_step SECONDS`: the largest |offset| a resync asked for by the
  // controller may correct by stepping the clock (default 1000 s, ntpd's panic
  // threshold; 0: never step on a remote resync). A larger offset is not
  // corrected at all and the resync fails saying why. `ntpfleetctl sync` on
  // the node itself (root) is not limited.
  absl::Duration resync_max_step = absl::Seconds(1000);

  // The files read through `includefile`, resolved, in the order read.
  std::vector<std::string> included_files;
  // "FILE:LINE: message": line by line, then those about `fudge` lines and
  // the local clock (which are settled once all lines are read).
  std::vector<std::string> warnings;

  // Whether `id` is listed by `trustedkey`.
  bool IsTrustedKey(uint32_t id) const;
};

// Where `includefile` contents come from: the disk (config_file.h), a map in
// tests, the input itself in the fuzzer.
class IncludeLoader {
 public:
  virtual ~IncludeLoader() = default;
  // The contents of the file at `path` (already resolved: a relative path is
  // joined to the including file's directory). NotFound or PermissionDenied:
  // the include is skipped with a warning (as ntpd does; Red Hat's default
  // ntp.conf includes a root-only /etc/ntp/crypto/pw); any other error stops
  // parsing.
  virtual absl::StatusOr<std::string> Load(const std::string& path) const = 0;
};

// A loader that finds no files (every `includefile` is skipped with a
// warning): for text that did not come from a file, such as a test's.
class NoIncludeFiles : public IncludeLoader {
 public:
  absl::StatusOr<std::string> Load(const std::string& path) const override;
};

// `includefile` may nest this deep (ntpd's MAXINCLUDELEVEL); an include cycle
// is an error.
inline constexpr int kMaxIncludeDepth = 5;
// At most this many files are included in all (a guard against fan-out).
inline constexpr int kMaxIncludedFiles = 100;

// The most sources (`server`, `pool` and `peer` lines, duplicates not
// counted): each is polled, holds state and logs; a configuration with more is
// a generated or runaway file, refused rather than run.
inline constexpr int kMaxSources = 1000;
// The most `restrict` rules (lines for the same address and mask are one rule):
// the server checks every request against each of them; long lists of
// addresses belong in a firewall (an nftables set).
inline constexpr int kMaxRestrictRules = 1000;
// At most this many warnings are kept; the rest are counted in one last
// warning ("N more warnings not listed").
inline constexpr int kMaxWarnings = 1000;

// The most `controller` lines: each is a stream, two threads and a
// connection of the agent's, and a fleet is split over a handful of failure
// domains, not dozens.
inline constexpr int kMaxControllers = 8;

// Parses ntp.conf-style `text`; `filename` names it in diagnostics and is the
// base for relative `includefile` paths.
absl::StatusOr<AgentConfig> ParseConfig(absl::string_view text,
                                        absl::string_view filename,
                                        const IncludeLoader& loader);

// The effective configuration in the same directive syntax, normalised: one
// directive per line, includes flattened, every server and rule on its own
// line, ntpfleet's settings with their effective values, then the warnings as
// comments. ParseConfig() reads it back to the same configuration, without
// warnings.
std::string FormatEffectiveConfig(const AgentConfig& config);

// FormatEffectiveConfig() without what names this one node (node_name and its
// labels): the part nodes of one role are meant to share. Its SHA-256 is the
// Hello's config_digest, so `ntpfleetctl drift` compares configurations, not
// identities.
std::string FormatSharedConfig(const AgentConfig& config);

}  // namespace ntpfleet::config

#endif  // NTPFLEET_COMMON_CONFIG_CONFIG_H_
