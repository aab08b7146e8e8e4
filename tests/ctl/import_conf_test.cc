// ImportNtpConf() / ImportChronyConf() / ConvertChronyKeys(): each mapping and
// each reason for dropping a line, then golden tests on the seed's two
// ntp.conf files, CentOS 7's stock ntp.conf and Debian 12's chrony.conf
// (testdata/import/README.md says where each comes from).
//
// Every output is also read by the agent's own parser (common/config): it must
// parse, and without a single warning — the importer's promise is that what
// it keeps, the agent acts on, and everything else is a comment.
#include "ctl/import_conf.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/ntp/auth.h"
#include "common/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// Files and directories in memory; everything else is NotFound.
class FakeFiles : public ImportFiles {
 public:
  std::map<std::string, std::string> files;
  std::map<std::string, std::vector<std::string>> dirs;
  std::vector<std::string> unreadable;

  absl::StatusOr<std::string> Read(const std::string& path) const override {
    for (const std::string& u : unreadable) {
      if (u == path) return absl::PermissionDeniedError(path + ": denied");
    }
    auto it = files.find(path);
    if (it == files.end()) return absl::NotFoundError(path);
    return it->second;
  }
  absl::StatusOr<std::vector<std::string>> List(
      const std::string& path) const override {
    auto it = dirs.find(path);
    if (it == dirs.end()) return absl::NotFoundError(path);
    return it->second;
  }
};

ImportResult Ntp(const std::string& text, const ImportFiles& files,
                 ImportOptions o = {}) {
  if (o.source_name.empty()) o.source_name = "ntp.conf";
  absl::StatusOr<ImportResult> r = ImportNtpConf(text, o, files);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : ImportResult{};
}
ImportResult Ntp(const std::string& text) { return Ntp(text, FakeFiles()); }

ImportResult Chrony(const std::string& text, const ImportFiles& files,
                    ImportOptions o = {}) {
  if (o.source_name.empty()) o.source_name = "chrony.conf";
  absl::StatusOr<ImportResult> r = ImportChronyConf(text, o, files);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : ImportResult{};
}
ImportResult Chrony(const std::string& text) {
  return Chrony(text, FakeFiles());
}

// The directive lines of an output (no comments, no blanks), trailing
// comments removed.
std::vector<std::string> Directives(const std::string& config) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(config, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t hash = line.find("  #");
    out.emplace_back(line.substr(0, hash));
  }
  return out;
}

// The comment lines starting with `prefix` ("# dropped: ", "# was: ").
std::vector<std::string> Comments(const std::string& config,
                                  absl::string_view prefix) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(config, '\n')) {
    if (absl::StartsWith(line, prefix)) out.emplace_back(line);
  }
  return out;
}

// The agent reads `config` with no error and no warning.
void ExpectAgentReadsCleanly(const std::string& config) {
  absl::StatusOr<config::AgentConfig> c =
      config::ParseConfig(config, "imported.conf", config::NoIncludeFiles());
  ASSERT_TRUE(c.ok()) << c.status() << "\n" << config;
  EXPECT_THAT(c->warnings, IsEmpty()) << config;
}

// ============================================================ ntpd

TEST(ImportNtpConf, KeepsServerOptionsTheAgentImplements) {
  const ImportResult r = Ntp(
      "server a.example.com iburst prefer minpoll 4 maxpoll 8 key 5 version "
      "3\nserver -6 2001:db8::1 burst\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("server a.example.com iburst prefer minpoll 4 "
                          "maxpoll 8 key 5 version 3",
                          "server -6 2001:db8::1 burst"));
  EXPECT_EQ(r.kept, 2);
  EXPECT_EQ(r.dropped, 0);
  ExpectAgentReadsCleanly(r.config);
}

// A CR or an escape sequence in the source must not reach the operator's
// terminal through the output's comments; tabs that align comments stay.
TEST(ImportNtpConf, ControlCharactersNeverReachTheOutputRaw) {
  const ImportResult r =
      Ntp("server \"10.0.0.3\rrestrict default ignore\"\n"
          "# colour \x1b[31mred\x1b[0m\tand a tab\n");
  EXPECT_EQ(r.config.find('\r'), std::string::npos) << r.config;
  EXPECT_EQ(r.config.find('\x1b'), std::string::npos) << r.config;
  EXPECT_THAT(r.config, HasSubstr("?[31mred?[0m\tand a tab"));
  for (const std::string& w : r.not_understood) {
    EXPECT_EQ(w.find('\r'), std::string::npos) << w;
  }
}

// ntpd's `ignore` also dropped upstream replies; the agent's does not: said.
TEST(ImportNtpConf, IgnoreRuleGetsANoteThatServersAreStillUsed) {
  const ImportResult r =
      Ntp("server 10.0.0.1 iburst\nrestrict default ignore\n");
  EXPECT_THAT(r.config, HasSubstr("the agent applies restrict rules only to "
                                  "the requests it serves"));
  EXPECT_THAT(Ntp("restrict default ignore\n").config,
              Not(HasSubstr("only to the requests it serves")));
}

TEST(ImportNtpConf, ClampsPollIntervalsAsNtpdDoes) {
  const ImportResult r = Ntp("server a.example.com minpoll 2 maxpoll 20\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("server a.example.com minpoll 3 maxpoll 17"));
  EXPECT_THAT(r.config, HasSubstr("# was: ntp.conf:1: server a.example.com "
                                  "minpoll 2 maxpoll 20 — minpoll 2: clamped "
                                  "to 3"));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ImportNtpConf, DropsNoselectServerRatherThanLetItSteer) {
  const ImportResult r = Ntp("server mon.example.com noselect\n");
  EXPECT_THAT(Directives(r.config), IsEmpty());
  EXPECT_THAT(r.config, HasSubstr("# dropped: ntp.conf:1: server "
                                  "mon.example.com noselect — noselect: the "
                                  "agent has no monitor-only sources"));
}

TEST(ImportNtpConf, RemovesUnsupportedServerOptionsSayingWhy) {
  const ImportResult r =
      Ntp("server a.example.com iburst xleave autokey preempt true ttl 3\n");
  EXPECT_THAT(Directives(r.config), ElementsAre("server a.example.com iburst"));
  const std::vector<std::string> was = Comments(r.config, "# was: ");
  ASSERT_THAT(was, SizeIs(1));
  EXPECT_THAT(was[0], HasSubstr("xleave: no interleaved mode"));
  EXPECT_THAT(was[0], HasSubstr("polled WITHOUT authentication"));
  EXPECT_THAT(was[0], HasSubstr("preempt:"));
  EXPECT_THAT(was[0], HasSubstr("true:"));
  EXPECT_THAT(was[0], HasSubstr("ttl 3:"));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ImportNtpConf, PeerBecomesServerAndPoolKeepsANote) {
  const ImportResult r =
      Ntp("peer 10.0.0.2 key 3\npool pool.example.org iburst\n");
  EXPECT_THAT(Directives(r.config), ElementsAre("server 10.0.0.2 key 3",
                                                "pool pool.example.org "
                                                "iburst"));
  EXPECT_THAT(r.config, HasSubstr("symmetric active mode is not supported"));
  EXPECT_THAT(r.config, HasSubstr("# note: the agent polls ONE address of a "
                                  "pool"));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ImportNtpConf, DropsDuplicateServer) {
  const ImportResult r = Ntp("server 10.0.0.1\nserver 10.0.0.1 iburst\n");
  EXPECT_THAT(Directives(r.config), ElementsAre("server 10.0.0.1"));
  EXPECT_THAT(r.config, HasSubstr("— a duplicate of ntp.conf:1"));
}

TEST(ImportNtpConf, KeepsTheLocalClockAndItsStratum) {
  const ImportResult r =
      Ntp("server 127.127.1.0 minpoll 4\nfudge 127.127.1.0 stratum 8 refid "
          "GPS\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("server 127.127.1.0", "fudge 127.127.1.0 stratum 8"));
  EXPECT_THAT(r.config, HasSubstr("options on the local clock line do "
                                  "nothing"));
  EXPECT_THAT(r.config, HasSubstr("refid GPS: only the local clock's stratum "
                                  "applies"));
  EXPECT_THAT(r.config, HasSubstr("ntpd served one more"));
  ExpectAgentReadsCleanly(r.config);
  absl::StatusOr<config::AgentConfig> c =
      config::ParseConfig(r.config, "x", config::NoIncludeFiles());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->local_clock.has_value());
  EXPECT_EQ(c->local_clock->stratum, 8);
}

TEST(ImportNtpConf, LoopbackWithFudgeStratumIsTheLocalClock) {
  const ImportResult r =
      Ntp("server 127.0.0.1\nfudge 127.0.0.1 stratum 10\nfudge 10.1.1.1 "
          "stratum 3\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("server 127.0.0.1", "fudge 127.0.0.1 stratum 10"));
  EXPECT_THAT(r.config, HasSubstr("# dropped: ntp.conf:3: fudge 10.1.1.1 "
                                  "stratum 3 — fudge applies only to the "
                                  "local clock"));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ImportNtpConf, DropsOtherReferenceClocksWithTheirFudge) {
  const ImportResult r =
      Ntp("server 127.127.20.0 mode 17\nfudge 127.127.20.0 time1 0.42\n");
  EXPECT_THAT(Directives(r.config), IsEmpty());
  EXPECT_THAT(r.config, HasSubstr("reference clock driver 20 (NMEA) is not "
                                  "supported"));
  EXPECT_THAT(r.config, HasSubstr("its reference clock (driver 20) is not "
                                  "imported"));
}

TEST(ImportNtpConf, KeepsRestrictAndRemovesUnsupportedFlags) {
  const ImportResult r =
      Ntp("restrict default kod limited nomodify notrap nopeer noquery\n"
          "restrict -6 default ignore\n"
          "restrict 192.168.0.0 mask 255.255.0.0 nomodify notrap noepeer "
          "ippeerlimit 4\n"
          "restrict 10.0.0.0/8 noserve\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("restrict default kod limited nomodify notrap "
                          "nopeer noquery",
                          "restrict -6 default ignore",
                          "restrict 192.168.0.0 mask 255.255.0.0 nomodify "
                          "notrap",
                          "restrict 10.0.0.0/8 noserve"));
  EXPECT_THAT(r.config, HasSubstr("'noepeer' is not supported; 'ippeerlimit "
                                  "4' is not supported"));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ImportNtpConf, RestrictSourceAndHostNamesAreDropped) {
  const ImportResult r =
      Ntp("restrict source nomodify\nrestrict ntp.example.com noquery\n");
  EXPECT_THAT(Directives(r.config), IsEmpty());
  EXPECT_THAT(r.config, HasSubstr("never filters its own upstreams' replies"));
  EXPECT_THAT(r.config, HasSubstr("restrict by host name is not supported: "
                                  "write its address"));
  EXPECT_THAT(r.not_understood, IsEmpty());
}

TEST(ImportNtpConf, MisspeltRestrictFlagIsNotUnderstoodAndListed) {
  const ImportResult r = Ntp("restrict default nomodfy\n");
  EXPECT_THAT(Directives(r.config), IsEmpty());
  ASSERT_THAT(r.not_understood, SizeIs(1));
  EXPECT_THAT(r.not_understood[0],
              HasSubstr("ntp.conf:1: restrict default nomodfy — not "
                        "understood: unknown restrict flag 'nomodfy'"));
  EXPECT_THAT(r.config, HasSubstr("# dropped: ntp.conf:1: restrict default "
                                  "nomodfy — not understood"));
}

TEST(ImportNtpConf, NonContiguousMaskIsNotUnderstood) {
  const ImportResult r = Ntp("restrict 10.0.0.0 mask 255.0.255.0\n");
  ASSERT_THAT(r.not_understood, SizeIs(1));
  EXPECT_THAT(r.not_understood[0], HasSubstr("is not contiguous"));
}

TEST(ImportNtpConf, NotesThatAServersOwnRestrictIsNotNeeded) {
  const ImportResult r =
      Ntp("server 192.168.242.51\nrestrict 192.168.242.51 nomodify\n");
  EXPECT_THAT(r.config, HasSubstr("# note: this rule applies only to requests "
                                  "FROM 192.168.242.51"));
}

TEST(ImportNtpConf, MovesTheDriftFileSayingHowToKeepIt) {
  const ImportResult r = Ntp("driftfile /var/lib/ntp/drift\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("driftfile /var/lib/ntpfleet/drift"));
  EXPECT_THAT(r.config, HasSubstr("install -o ntpfleet -g ntpfleet -m 0644 "
                                  "/var/lib/ntp/drift "
                                  "/var/lib/ntpfleet/drift"));
  EXPECT_EQ(r.rewritten, 1);
  // Already in place: kept.
  EXPECT_EQ(Ntp("driftfile /var/lib/ntpfleet/drift\n").kept, 1);
}

TEST(ImportNtpConf, EnableDisableAreDroppedEachWithItsReason) {
  const ImportResult r = Ntp("disable monitor\ndisable ntp\nenable kernel\n");
  EXPECT_THAT(Directives(r.config), IsEmpty());
  EXPECT_THAT(r.config, HasSubstr("CVE-2013-5211"));
  EXPECT_THAT(r.config, HasSubstr("IT WOULD NOT STOP THE AGENT FROM "
                                  "DISCIPLINING THE CLOCK"));
  EXPECT_THAT(r.config, HasSubstr("the kernel's PLL is never used"));
  EXPECT_EQ(r.dropped, 3);
}

TEST(ImportNtpConf, TinkerAndTosKeepWhatTheAgentDoes) {
  const ImportResult r =
      Ntp("tinker panic 0\ntinker step 0.5 stepout 300\ntinker huffpuff 7200\n"
          "tos maxdist 2 orphan 10 minsane 2\ntos minclock 4\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("tinker panic 0", "tinker step 0.5",
                          "tos maxdist 2 minsane 2"));
  EXPECT_THAT(r.config, HasSubstr("stepout 300: the agent does not wait"));
  EXPECT_THAT(r.config, HasSubstr("# dropped: ntp.conf:3: tinker huffpuff"));
  EXPECT_THAT(r.config, HasSubstr("orphan 10: no orphan mode"));
  EXPECT_THAT(r.config, HasSubstr("# dropped: ntp.conf:5: tos minclock 4"));
  ExpectAgentReadsCleanly(r.config);
  // A non-zero panic threshold: the agent refuses instead of exiting.
  EXPECT_THAT(Ntp("tinker panic 600\n").config,
              HasSubstr("ntpd exits; the agent refuses the correction"));
}

TEST(ImportNtpConf, KeepsKeysAndTrustedkeyDropsRequestAndControlKey) {
  const ImportResult r =
      Ntp("keys /etc/ntp/keys\ntrustedkey 4 8 (10 ... 12)\nrequestkey 8\n"
          "controlkey 8\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("keys /etc/ntp/keys", "trustedkey 4 8 (10 ... 12)"));
  EXPECT_THAT(r.config, HasSubstr("no ntpdc/ntpq (mode 7/6) queries"));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ImportNtpConf, DropsWhatTheAgentDoesNotDo) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"statistics loopstats peerstats", "no statistics files"},
      {"statsdir /var/log/ntpstats/", "no statistics files"},
      {"filegen loopstats file loopstats type day enable",
       "no statistics files"},
      {"logfile /var/log/ntp.log", "logs to stderr (the journal)"},
      {"pidfile /var/run/ntpd.pid", "does not daemonise"},
      {"broadcastclient", "no broadcast, multicast or manycast"},
      {"discard average 4 minimum 2", "fixed at ntpd's defaults"},
      {"interface listen eth0", "--listen ADDR"},
      {"authenticate yes", "authentication follows"},
      {"mru maxdepth 100", "for ntpq/ntpdc"},
  };
  for (const auto& [line, why] : cases) {
    const ImportResult r = Ntp(line + "\n");
    EXPECT_THAT(Directives(r.config), IsEmpty()) << line;
    EXPECT_THAT(r.config,
                HasSubstr(absl::StrCat("# dropped: ntp.conf:1: ", line, " — ")))
        << line;
    EXPECT_THAT(r.config, HasSubstr(why)) << line;
    EXPECT_THAT(r.not_understood, IsEmpty()) << line;
  }
}

TEST(ImportNtpConf, NeverCopiesTheCryptoPassword) {
  const ImportResult r = Ntp("crypto pw s3cr3t randfile /dev/urandom\n");
  EXPECT_THAT(r.config, Not(HasSubstr("s3cr3t")));
  EXPECT_THAT(r.config, HasSubstr("# dropped: ntp.conf:1: crypto pw "
                                  "<redacted> randfile /dev/urandom — "
                                  "Autokey"));
}

TEST(ImportNtpConf, InlinesIncludefilesAndSaysWhenOneIsMissing) {
  FakeFiles files;
  files.files["/etc/ntp/extra.conf"] =
      "server 10.0.0.9 iburst\nincludefile inner.conf\n";
  files.files["/etc/ntp/inner.conf"] = "disable monitor\n";
  files.unreadable.push_back("/etc/ntp/crypto/pw");
  ImportOptions o;
  o.source_name = "/etc/ntp.conf";
  const ImportResult r =
      Ntp("includefile /etc/ntp/extra.conf\nincludefile /etc/ntp/crypto/pw\n"
          "includefile /etc/ntp/missing.conf\n",
          files, o);
  EXPECT_THAT(Directives(r.config), ElementsAre("server 10.0.0.9 iburst"));
  EXPECT_THAT(r.config, HasSubstr("# begin includefile /etc/ntp/extra.conf"));
  EXPECT_THAT(r.config, HasSubstr("# begin includefile /etc/ntp/inner.conf"));
  EXPECT_THAT(r.config,
              HasSubstr("# dropped: /etc/ntp/inner.conf:1: disable monitor"));
  EXPECT_THAT(r.config, HasSubstr("/etc/ntp/crypto/pw cannot be read"));
  EXPECT_THAT(r.config, HasSubstr("/etc/ntp/missing.conf not found when "
                                  "importing"));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ImportNtpConf, IncludeCycleIsNotUnderstood) {
  FakeFiles files;
  files.files["/a.conf"] = "includefile /a.conf\n";
  ImportOptions o;
  o.source_name = "/a.conf";
  const ImportResult r = Ntp("includefile /a.conf\n", files, o);
  EXPECT_THAT(r.not_understood, Not(IsEmpty()));
  EXPECT_THAT(r.not_understood[0], HasSubstr("includes itself"));
}

TEST(ImportNtpConf, UnknownDirectiveIsNotUnderstoodWithItsLine) {
  const ImportResult r = Ntp("server 10.0.0.1\nservr 10.0.0.2\n");
  ASSERT_THAT(r.not_understood, SizeIs(1));
  EXPECT_THAT(r.not_understood[0],
              HasSubstr("ntp.conf:2: servr 10.0.0.2 — not understood: "
                        "unknown directive 'servr'"));
  EXPECT_THAT(r.config, HasSubstr("# dropped: ntp.conf:2: servr 10.0.0.2"));
}

TEST(ImportNtpConf, KeepsCommentsAndTrailingComments) {
  const ImportResult r =
      Ntp("# the upstreams\nserver 10.0.0.1 iburst  # main\n#server x\n");
  EXPECT_THAT(r.config, HasSubstr("# the upstreams\nserver 10.0.0.1 iburst  "
                                  "# main\n#server x\n"));
}

TEST(ImportNtpConf, AddsControllerWithOrWithoutTls) {
  ImportOptions o;
  o.controller = "10.0.0.1:7123";
  ImportResult r =
      Ntp("server 10.0.0.1\ncontroller old:7123\n", FakeFiles(), o);
  EXPECT_THAT(Directives(r.config),
              ElementsAre("server 10.0.0.1", "controller 10.0.0.1:7123"));
  EXPECT_THAT(r.config, HasSubstr("replaced by --controller"));
  EXPECT_THAT(r.config, HasSubstr("the agent reports in plain text"));
  o.tls_dir = "/etc/ntpfleet/tls/";
  r = Ntp("server 10.0.0.1\n", FakeFiles(), o);
  EXPECT_THAT(Directives(r.config),
              ElementsAre("server 10.0.0.1", "controller 10.0.0.1:7123",
                          "tls_cert /etc/ntpfleet/tls/node.pem",
                          "tls_key /etc/ntpfleet/tls/node.key",
                          "tls_ca /etc/ntpfleet/tls/ca.pem"));
  ExpectAgentReadsCleanly(r.config);
}

// ============================================================ chrony

TEST(ImportChronyConf, MapsServerOptions) {
  const ImportResult r = Chrony(
      "server ntp.example.com iburst minpoll 4 maxpoll 9 prefer key 7 "
      "version 3 port 1123\nserver 2001:db8::5 port 1123\n"
      "server 10.0.0.1 iburst\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("server ntp.example.com:1123 iburst minpoll 4 "
                          "maxpoll 9 prefer key 7 version 3",
                          "server [2001:db8::5]:1123", "server 10.0.0.1 iburst",
                          "restrict default ignore", "tinker step 0"));
  EXPECT_EQ(r.kept, 1);
  EXPECT_EQ(r.rewritten, 2);
}

TEST(ImportChronyConf, ClampsChronysWiderPollRange) {
  const ImportResult r = Chrony("server 10.0.0.1 minpoll -2 maxpoll 20\n");
  EXPECT_THAT(Directives(r.config)[0], "server 10.0.0.1 minpoll 3 maxpoll 17");
  EXPECT_THAT(r.config, HasSubstr("minpoll -2: the agent polls every 2^3"));
}

TEST(ImportChronyConf, DropsOptionsWithoutAnEquivalent) {
  const ImportResult r = Chrony(
      "server 10.0.0.1 iburst burst nts xleave offset 0.0005 maxdelay 0.3 "
      "polltarget 20 trust require offline\n");
  EXPECT_EQ(Directives(r.config)[0], "server 10.0.0.1 iburst");
  const std::string was = Comments(r.config, "# was: ")[0];
  for (const char* why :
       {"burst: the agent already sends up to 8 requests",
        "nts: NTS is not supported; the server is now polled WITHOUT",
        "xleave:", "offset 0.0005: no per-source correction",
        "maxdelay 0.3: the agent's filter weighs",
        "polltarget 20:", "trust:", "require:", "offline:"}) {
    EXPECT_THAT(was, HasSubstr(why));
  }
}

TEST(ImportChronyConf, DropsNoselectAndKeyIdsNtpdCannotHold) {
  const ImportResult r =
      Chrony("server 10.0.0.1 noselect\nserver 10.0.0.2 key 70000\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("restrict default ignore", "tinker step 0"));
  EXPECT_THAT(r.config, HasSubstr("noselect: the agent has no monitor-only"));
  EXPECT_THAT(r.config, HasSubstr("key 70000: ntpd's keys file"));
}

TEST(ImportChronyConf, PoolAndPeer) {
  const ImportResult r =
      Chrony("pool pool.example.org iburst maxsources 3\npeer 10.0.0.7\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("pool pool.example.org iburst", "server 10.0.0.7",
                          "restrict default ignore", "tinker step 0"));
  EXPECT_THAT(r.config, HasSubstr("maxsources 3: the agent polls one address"));
  EXPECT_THAT(r.config, HasSubstr("symmetric mode is not supported"));
}

TEST(ImportChronyConf, LocalBecomesTheLocalClock) {
  const ImportResult r = Chrony("local stratum 8 orphan distance 0.1\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("server 127.127.1.0", "fudge 127.127.1.0 stratum 8",
                          "restrict default ignore", "tinker step 0"));
  EXPECT_THAT(r.config, HasSubstr("orphan: no orphan mode"));
  EXPECT_THAT(r.config, HasSubstr("distance 0.1: the agent serves its local "
                                  "clock once"));
  ExpectAgentReadsCleanly(r.config);
  EXPECT_THAT(Directives(Chrony("local\n").config),
              ::testing::Contains("fudge 127.127.1.0 stratum 10"));
}

// The access rules the agent ends up with, as `restrict` lines.
std::vector<std::string> Restricts(const ImportResult& r) {
  std::vector<std::string> out;
  for (const std::string& d : Directives(r.config)) {
    if (absl::StartsWith(d, "restrict")) out.push_back(d);
  }
  return out;
}

TEST(ImportChronyConf, WithoutAllowNobodyIsServed) {
  const ImportResult r = Chrony("server 10.0.0.1\n");
  EXPECT_THAT(Restricts(r), ElementsAre("restrict default ignore"));
  EXPECT_THAT(r.config, HasSubstr("There was no `allow`: nobody is served"));
}

TEST(ImportChronyConf, AllowAndDenyBecomeRestrictRules) {
  const ImportResult r = Chrony(
      "allow 192.168.1.0/24\ndeny 192.168.1.5\nallow 10\nallow "
      "2001:db8::/32\nallow 172.16.5\n");
  EXPECT_THAT(
      Restricts(r),
      ElementsAre(
          "restrict default ignore", "restrict 192.168.1.0 mask 255.255.255.0",
          "restrict 192.168.1.5 ignore", "restrict 10.0.0.0 mask 255.0.0.0",
          "restrict 2001:db8::/32", "restrict 172.16.5.0 mask 255.255.255.0"));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ImportChronyConf, AllowEverybodyPerFamily) {
  EXPECT_THAT(Restricts(Chrony("allow\n")), ElementsAre("restrict default"));
  EXPECT_THAT(Restricts(Chrony("allow 0/0\n")),
              ElementsAre("restrict -4 default", "restrict -6 default ignore"));
  const ImportResult r = Chrony("allow ::/0\ndeny 2001:db8::1\n");
  EXPECT_THAT(Restricts(r),
              ElementsAre("restrict -4 default ignore", "restrict -6 default",
                          "restrict 2001:db8::1 ignore"));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ImportChronyConf, AllowAllClearsTheRulesInsideIt) {
  // chrony.conf(5)'s own example: `allow all` overrides the earlier rules
  // for subnets within it; without `all` they stay.
  EXPECT_THAT(
      Restricts(Chrony("allow 1.2.3.4\ndeny 1.2.3.0/24\nallow 1.2.0.0/16\n")),
      ElementsAre("restrict default ignore", "restrict 1.2.3.4",
                  "restrict 1.2.3.0 mask 255.255.255.0 ignore",
                  "restrict 1.2.0.0 mask 255.255.0.0"));
  EXPECT_THAT(Restricts(Chrony(
                  "allow 1.2.3.4\ndeny 1.2.3.0/24\nallow all 1.2.0.0/16\n")),
              ElementsAre("restrict default ignore",
                          "restrict 1.2.0.0 mask 255.255.0.0"));
  // The same subnet again: the later line wins.
  EXPECT_THAT(Restricts(Chrony("allow 10.1.0.0/16\ndeny 10.1.0.0/16\n")),
              ElementsAre("restrict default ignore",
                          "restrict 10.1.0.0 mask 255.255.0.0 ignore"));
}

TEST(ImportChronyConf, AllowByHostNameIsDroppedSayingWhatThatOpens) {
  const ImportResult r = Chrony("allow 10.0.0.0/8\ndeny bad.example.com\n");
  EXPECT_THAT(r.config, HasSubstr("until then that host is served if an "
                                  "`allow` covers it"));
}

TEST(ImportChronyConf, RatelimitLimitsTheAllowedRules) {
  const ImportResult r = Chrony(
      "allow 10.0.0.0/8\ndeny 10.9.0.0/16\nratelimit interval 1 "
      "burst 16\n");
  EXPECT_THAT(Restricts(r), ElementsAre("restrict default ignore",
                                        "restrict 10.0.0.0 mask 255.0.0.0 "
                                        "limited",
                                        "restrict 10.9.0.0 mask 255.255.0.0 "
                                        "ignore"));
  EXPECT_THAT(r.config, HasSubstr("not kept: interval 1, burst 16"));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ImportChronyConf, MakestepAndMaxchange) {
  ImportResult r = Chrony("makestep 1 3\n");
  EXPECT_THAT(Directives(r.config), ::testing::Contains("tinker step 0"));
  EXPECT_THAT(r.config, HasSubstr("in its first 3 clock updates only"));
  r = Chrony("makestep 0.5 -1\n");
  EXPECT_THAT(Directives(r.config), ::testing::Contains("tinker step 0.5"));
  EXPECT_THAT(Directives(r.config), Not(::testing::Contains("tinker step 0")));
  // Without makestep chrony never steps: implied, with the reason.
  r = Chrony("server 10.0.0.1\n");
  EXPECT_THAT(Directives(r.config), ::testing::Contains("tinker step 0"));
  EXPECT_THAT(r.config, HasSubstr("chrony without `makestep` never steps"));
  EXPECT_THAT(r.config, HasSubstr("chrony without `maxchange` corrects any "
                                  "offset"));
  r = Chrony("maxchange 1000 1 2\nmakestep 1 3\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("tinker panic 1000", "tinker step 0",
                          "restrict default ignore"));
  EXPECT_THAT(r.config, Not(HasSubstr("what chrony's defaults imply")));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ImportChronyConf, DriftfileMovesAndTheSignIsExplained) {
  const ImportResult r = Chrony("driftfile /var/lib/chrony/chrony.drift\n");
  EXPECT_THAT(Directives(r.config)[0], "driftfile /var/lib/ntpfleet/drift");
  EXPECT_THAT(r.config, HasSubstr("OPPOSITE sign"));
  EXPECT_THAT(r.config, HasSubstr("-$1"));
}

TEST(ImportChronyConf, LeapAndOtherMappings) {
  const ImportResult r = Chrony(
      "leapsectz right/UTC\nleapsecmode slew\nmaxdistance 3\nminsources 2\n"
      "port 1123\nleapsecmode step\n");
  EXPECT_THAT(Directives(r.config),
              ElementsAre("leapfile /usr/share/zoneinfo/leap-seconds.list",
                          "leapsecmode slew", "tos maxdist 3", "tos minsane 2",
                          "port 1123", "leapsecmode system",
                          "restrict default ignore", "tinker step 0"));
}

TEST(ImportChronyConf, DropsWhatTheAgentDoesNotDo) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"rtcsync", "11-minute mode"},
      {"rtcfile /var/lib/chrony/rtc", "does not track the RTC"},
      {"logdir /var/log/chrony", "journal"},
      {"log tracking measurements statistics", "journal"},
      {"hwtimestamp eth0", "no hardware timestamping"},
      {"ntsdumpdir /var/lib/chrony", "NTS is not supported"},
      {"dumpdir /run/chrony", "no measurement history"},
      {"cmdallow 192.168.1.0/24", "control socket"},
      {"bindcmdaddress 127.0.0.1", "control socket"},
      {"bindaddress 192.168.1.1", "--listen ADDR"},
      {"refclock PPS /dev/pps0 lock NMEA", "reference clocks"},
      {"maxupdateskew 100.0", "no such setting"},
      {"maxslewrate 1000", "at most 500 ppm"},
      {"user _chrony", "systemd runs the agent"},
      {"initstepslew 30 a.example.com", "first correction after start"},
      {"smoothtime 400 0.001024 leaponly", "no server-side"},
      {"port 0", "answers nobody"},
      {"leapsecmode ignore", "always corrects a leap second"},
  };
  for (const auto& [line, why] : cases) {
    const ImportResult r = Chrony(line + "\n");
    EXPECT_THAT(r.config, HasSubstr(absl::StrCat(
                              "# dropped: chrony.conf:1: ", line, " — ")))
        << line;
    EXPECT_THAT(r.config, HasSubstr(why)) << line;
    EXPECT_THAT(r.not_understood, IsEmpty()) << line;
  }
}

TEST(ImportChronyConf, UnknownDirectiveIsNotUnderstood) {
  const ImportResult r = Chrony("sever 10.0.0.1\n");
  ASSERT_THAT(r.not_understood, SizeIs(1));
  EXPECT_THAT(r.not_understood[0],
              HasSubstr("chrony.conf:1: sever 10.0.0.1 — not understood"));
}

TEST(ImportChronyConf, ChronysCommentCharacters) {
  const ImportResult r = Chrony("! a\n; b\n% c\n# d\nserver 10.0.0.1\n");
  EXPECT_THAT(r.not_understood, IsEmpty());
  EXPECT_THAT(r.config, HasSubstr("! a\n; b\n% c\n# d\n"));
}

TEST(ImportChronyConf, FollowsConfdirSourcedirAndInclude) {
  FakeFiles files;
  files.dirs["/etc/chrony/conf.d"] = {"README", "20-b.conf", "10-a.conf"};
  files.dirs["/usr/lib/chrony.d"] = {"10-a.conf", "30-c.conf"};
  files.files["/etc/chrony/conf.d/10-a.conf"] = "local stratum 9\n";
  files.files["/etc/chrony/conf.d/20-b.conf"] = "allow 10.0.0.0/8\n";
  files.files["/usr/lib/chrony.d/10-a.conf"] = "local stratum 3\n";
  files.files["/usr/lib/chrony.d/30-c.conf"] = "rtcsync\n";
  files.dirs["/etc/chrony/sources.d"] = {"a.sources", "README"};
  files.files["/etc/chrony/sources.d/a.sources"] =
      "server 10.1.1.1 iburst\nrtcsync\n";
  files.dirs["/etc/chrony/inc"] = {"x.conf", "y.txt"};
  files.files["/etc/chrony/inc/x.conf"] = "maxchange 100 1 1\n";
  ImportOptions o;
  o.source_name = "/etc/chrony/chrony.conf";
  const ImportResult r = Chrony(
      "confdir /etc/chrony/conf.d /usr/lib/chrony.d\nsourcedir "
      "/etc/chrony/sources.d /run/chrony-dhcp\ninclude "
      "/etc/chrony/inc/*.conf\n",
      files, o);
  EXPECT_THAT(Directives(r.config),
              ElementsAre("server 127.127.1.0", "fudge 127.127.1.0 stratum 9",
                          "server 10.1.1.1 iburst", "tinker panic 100",
                          "restrict default ignore",
                          "restrict 10.0.0.0 mask 255.0.0.0", "tinker step 0"));
  // The first directory's 10-a.conf hides the second's; 30-c.conf is read.
  EXPECT_THAT(r.config, Not(HasSubstr("stratum 3")));
  EXPECT_THAT(r.config, HasSubstr("# dropped: /usr/lib/chrony.d/30-c.conf:1: "
                                  "rtcsync"));
  // A .sources file holds only sources.
  ASSERT_THAT(r.not_understood, SizeIs(1));
  EXPECT_THAT(r.not_understood[0],
              HasSubstr("/etc/chrony/sources.d/a.sources:2: rtcsync"));
  EXPECT_THAT(r.config, HasSubstr("/run/chrony-dhcp not found"));
  EXPECT_THAT(r.config, HasSubstr("the agent takes no servers from DHCP"));
}

TEST(ImportChronyConf, KeyfileWithoutConversion) {
  ImportResult r = Chrony("keyfile /etc/chrony/chrony.keys\n");
  EXPECT_THAT(r.config, HasSubstr("# dropped: chrony.conf:1: keyfile "
                                  "/etc/chrony/chrony.keys — chrony's key "
                                  "file format"));
  EXPECT_THAT(r.config, HasSubstr("--keys-out /etc/ntpfleet/ntp.keys"));
  // A server uses a key: the agent must not start without it (fail closed).
  r = Chrony("keyfile /etc/chrony/chrony.keys\nserver 10.0.0.1 key 5\n");
  EXPECT_THAT(Directives(r.config),
              ::testing::Contains("keys /etc/ntpfleet/ntp.keys"));
}

TEST(ImportChronyConf, KeyfileConverted) {
  FakeFiles files;
  files.files["/etc/chrony/chrony.keys"] =
      "1 MD5 ASCII:crocus\n2 SHA1 "
      "HEX:933F62BE1D604E68A81B557F18CFA200483F5B70\n"
      "3 SHA256 HEX:00112233445566778899AABBCCDDEEFF\n";
  ImportOptions o;
  o.keys_out = "/etc/ntpfleet/ntp.keys";
  const ImportResult r = Chrony(
      "keyfile /etc/chrony/chrony.keys\nserver 10.0.0.1 key 2\n", files, o);
  EXPECT_THAT(Directives(r.config),
              ElementsAre("keys /etc/ntpfleet/ntp.keys", "trustedkey 1 2",
                          "server 10.0.0.1 key 2", "restrict default ignore",
                          "tinker step 0"));
  EXPECT_THAT(r.config, HasSubstr("# dropped: /etc/chrony/chrony.keys:3: key "
                                  "3 — type SHA256 is not supported"));
  EXPECT_THAT(r.config, Not(HasSubstr("crocus")));
  EXPECT_THAT(r.keys, HasSubstr("1 MD5 crocus\n"));
  ExpectAgentReadsCleanly(r.config);
}

TEST(ConvertChronyKeys, TheAgentReadsTheSameSecrets) {
  const KeyConversion k = ConvertChronyKeys(
      "# comment\n"
      "10 tulip\n"                                        // MD5, ASCII
      "20 MD5 ASCII:a-very-long-ascii-key-of-30-chars\n"  // > 20: hex
      "25 SHA1 HEX:933F62BE1D604E68A81B557F18CFA200483F5B70\n"
      "30 AES128 HEX:7EA62AE64D190114D46D5A082F948EC1\n"
      "31 AES256 HEX:37DDCBC67BB902BCB8E995977FAB4D2B5642F5B32EBCEEE421921D97"
      "E5CBFE39\n"
      "70000 MD5 HEX:0011\n"
      "40 MD5 HEX:0023\n"  // 2 octets, one not printable: no ntpd form
      "41 MD5 ab#c\n",     // '#' would start a comment in ntpd's file
      "chrony.keys");
  EXPECT_THAT(k.ids, ElementsAre(10, 20, 25, 30));
  ASSERT_THAT(k.dropped, SizeIs(4));
  EXPECT_THAT(k.dropped[0], HasSubstr("chrony.keys:6: key 31 — type AES256"));
  EXPECT_THAT(k.dropped[1], HasSubstr("key 70000 — ntpd's keys file holds "
                                      "ids up to 65535"));
  EXPECT_THAT(k.dropped[2], HasSubstr("key 40 — a key of 10 octets or fewer"));
  EXPECT_THAT(k.dropped[3], HasSubstr("key 41"));
  for (const std::string& d : k.dropped) {
    EXPECT_THAT(d, Not(HasSubstr("ab#c")));
    EXPECT_THAT(d, Not(HasSubstr("37DDCB")));
  }
  absl::StatusOr<ntp::KeyStore> store =
      ntp::KeyStore::Parse(k.text, "ntp.keys");
  ASSERT_TRUE(store.ok()) << store.status() << "\n" << k.text;
  auto secret = [&](uint32_t id) {
    const ntp::Key* key = store->Find(id);
    return key == nullptr ? std::string("<none>")
                          : std::string(key->secret.begin(), key->secret.end());
  };
  EXPECT_EQ(secret(10), "tulip");
  EXPECT_EQ(secret(20), "a-very-long-ascii-key-of-30-chars");
  EXPECT_EQ(secret(25).size(), 20u);
  EXPECT_EQ(static_cast<uint8_t>(secret(25)[0]), 0x93);
  EXPECT_EQ(secret(30).size(), 16u);
  EXPECT_EQ(store->Find(30)->type, ntp::KeyType::kAes128Cmac);
  EXPECT_EQ(store->Find(25)->type, ntp::KeyType::kSha1);
}

// ============================================================ goldens

std::string ReadTestdata(const std::string& name) {
  const std::string path = absl::StrCat(std::getenv("TEST_SRCDIR"), "/",
                                        std::getenv("TEST_WORKSPACE"),
                                        "/tests/ctl/testdata/import/", name);
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The number of directive lines of a file (chrony's or ntpd's comment rules).
int DirectiveLines(const std::string& text, bool chrony) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const absl::string_view s = absl::StripLeadingAsciiWhitespace(line);
    if (s.empty() || s[0] == '#' ||
        (chrony && (s[0] == '!' || s[0] == ';' || s[0] == '%'))) {
      continue;
    }
    ++n;
  }
  return n;
}

struct Golden {
  const char* input;
  const char* source_name;
  bool chrony;
  const char* golden;
};

class GoldenTest : public ::testing::TestWithParam<Golden> {};

TEST_P(GoldenTest, MatchesAndTheAgentReadsItCleanly) {
  const Golden& g = GetParam();
  const std::string input = ReadTestdata(g.input);
  // What Debian's chrony package installs under /etc/chrony (for chrony).
  FakeFiles files;
  files.dirs["/etc/chrony/conf.d"] = {"README"};
  files.dirs["/etc/chrony/sources.d"] = {"README"};
  ImportOptions o;
  o.source_name = g.source_name;
  o.controller = "192.168.242.51:7123";
  o.tls_dir = "/etc/ntpfleet/tls";
  const ImportResult r =
      g.chrony ? Chrony(input, files, o) : Ntp(input, files, o);
  EXPECT_THAT(r.not_understood, IsEmpty());
  // Nothing silently lost: every directive of the source is kept, rewritten
  // or dropped (none of these inputs includes a file that exists).
  EXPECT_EQ(r.kept + r.rewritten + r.dropped, DirectiveLines(input, g.chrony));
  ExpectAgentReadsCleanly(r.config);
  const std::string want = ReadTestdata(g.golden);
  EXPECT_EQ(r.config, want)
      << "to accept the new output (after reviewing it), copy it from "
         "$TEST_UNDECLARED_OUTPUTS_DIR/"
      << g.golden;
  if (r.config != want) {
    if (const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR")) {
      std::ofstream(absl::StrCat(dir, "/", g.golden)) << r.config;
    }
  }
  // Deterministic: the same bytes again.
  const ImportResult again =
      g.chrony ? Chrony(input, files, o) : Ntp(input, files, o);
  EXPECT_EQ(again.config, r.config);
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, GoldenTest,
    ::testing::Values(Golden{"seed-client-ntp.conf", "/etc/ntp.conf", false,
                             "seed-client-ntp.agent.conf"},
                      Golden{"seed-server-ntp.conf", "/etc/ntp.conf", false,
                             "seed-server-ntp.agent.conf"},
                      Golden{"centos7-ntp.conf", "/etc/ntp.conf", false,
                             "centos7-ntp.agent.conf"},
                      Golden{"debian12-chrony.conf", "/etc/chrony/chrony.conf",
                             true, "debian12-chrony.agent.conf"}),
    [](const ::testing::TestParamInfo<Golden>& info) {
      std::string name = info.param.golden;
      name = name.substr(0, name.find('.'));
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      return name;
    });

}  // namespace
}  // namespace ntpfleet::ctl
