// The parts of doctor's gatherer that have logic of their own: reading
// /proc/PID/status, finding ntpdate in crontabs and enabled daemons in /etc,
// and classifying an NTP reply (RFC 5905 §7.3, §7.4, §8).
#include "ctl/doctor_gather.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/ntp/packet.h"
#include "common/ntp/timestamp.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet::ctl {
namespace {

using ::testing::ElementsAre;

constexpr char kStatus[] =
    "Name:\tntpfleet-agent\n"
    "Uid:\t0\t998\t998\t998\n"
    "CapInh:\t0000000000000000\n"
    "CapEff:\t0000000002000400\n";

TEST(DoctorGatherTest, ReadsCapEffAndEffectiveUid) {
  ASSERT_TRUE(ParseCapEff(kStatus).has_value());
  EXPECT_EQ(*ParseCapEff(kStatus), 0x2000400u);  // CAP_SYS_TIME, NET_BIND
  EXPECT_EQ((*ParseCapEff(kStatus) >> kCapSysTime) & 1, 1u);
  EXPECT_EQ(ParseEffectiveUid(kStatus), 998u);
  EXPECT_FALSE(ParseCapEff("Name:\tx\n").has_value());
}

TEST(DoctorGatherTest, FindsTimeToolsInCrontabs) {
  const std::string crontab =
      "# */10 * * * * /usr/sbin/ntpdate 192.168.242.51\n"
      "SHELL=/bin/sh\n"
      "*/10 * * * * /usr/sbin/ntpdate 192.168.242.51\n"
      "0 * * * * root chronyc -a makestep >/dev/null\n"
      "5 * * * * root /usr/bin/ntpdate-debian-wrapper\n"
      "@reboot sleep 5 && sntp -S pool\n";
  EXPECT_THAT(CronTimeLines(crontab, "/etc/crontab"),
              ElementsAre("/etc/crontab:3: */10 * * * * /usr/sbin/ntpdate "
                          "192.168.242.51",
                          "/etc/crontab:4: 0 * * * * root chronyc -a makestep "
                          ">/dev/null",
                          "/etc/crontab:6: @reboot sleep 5 && sntp -S pool"));
}

TEST(DoctorGatherTest, FindsEnabledDaemonsInEtcWithoutSystemd) {
  const std::string root =
      std::string(std::getenv("TEST_TMPDIR")) + "/etc_enabled";
  ASSERT_EQ(system(("rm -rf " + root).c_str()), 0);
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  for (const char* d : {"/systemd", "/systemd/system",
                        "/systemd/system/multi-user.target.wants", "/rc3.d"}) {
    ASSERT_EQ(mkdir((root + d).c_str(), 0755), 0) << d;
  }
  ASSERT_EQ(symlink("/usr/lib/systemd/system/chronyd.service",
                    (root + "/systemd/system/multi-user.target.wants/"
                            "chronyd.service")
                        .c_str()),
            0);
  ASSERT_EQ(symlink("/usr/lib/systemd/system/sshd.service",
                    (root + "/systemd/system/multi-user.target.wants/"
                            "sshd.service")
                        .c_str()),
            0);
  ASSERT_EQ(symlink("../init.d/ntpd", (root + "/rc3.d/S58ntpd").c_str()), 0);
  ASSERT_EQ(symlink("../init.d/ntpd", (root + "/rc3.d/K74ntpdx").c_str()), 0);
  EXPECT_THAT(EnabledInEtc(root),
              ElementsAre(root + "/systemd/system/multi-user.target.wants/"
                                 "chronyd.service",
                          root + "/rc3.d/S58ntpd"));
}

ntp::NtpPacket Reply(int stratum, ntp::Leap leap) {
  ntp::NtpPacket p;
  p.mode = ntp::Mode::kServer;
  p.stratum = static_cast<uint8_t>(stratum);
  p.leap = leap;
  return p;
}

TEST(DoctorGatherTest, ClassifiesAnUnsynchronisedServer) {
  const absl::Time t1 = absl::FromUnixSeconds(1700000000);
  EXPECT_EQ(
      ClassifyReply(Reply(16, ntp::Leap::kUnsynchronized), t1, t1).outcome,
      ProbeOutcome::kUnsynchronised);
  // Leap 3 alone is enough (ntpd at stratum 3 with no peer left).
  EXPECT_EQ(ClassifyReply(Reply(3, ntp::Leap::kUnsynchronized), t1, t1).outcome,
            ProbeOutcome::kUnsynchronised);
  // Stratum 0 without a kiss code.
  ntp::NtpPacket zero = Reply(0, ntp::Leap::kUnsynchronized);
  zero.reference_id = ntp::RefId::FromRaw(0);
  EXPECT_EQ(ClassifyReply(zero, t1, t1).outcome, ProbeOutcome::kUnsynchronised);
}

TEST(DoctorGatherTest, ClassifiesKissCodes) {
  const absl::Time t1 = absl::FromUnixSeconds(1700000000);
  ntp::NtpPacket deny = Reply(0, ntp::Leap::kUnsynchronized);
  deny.reference_id = ntp::RefId::FromCode("DENY");
  const ProbeResult r = ClassifyReply(deny, t1, t1);
  EXPECT_EQ(r.outcome, ProbeOutcome::kKissOfDeath);
  EXPECT_EQ(r.kiss_code, "DENY");
}

TEST(DoctorGatherTest, ComputesOffsetAndDelay) {
  // The server is 5 ms ahead; 1 ms each way; it holds the request 0.2 ms.
  const absl::Time t1 = absl::FromUnixSeconds(1700000000);
  const absl::Time t2 = t1 + absl::Milliseconds(6);
  const absl::Time t3 = t2 + absl::Microseconds(200);
  const absl::Time t4 = t1 + absl::Microseconds(2200);
  ntp::NtpPacket p = Reply(2, ntp::Leap::kNone);
  p.receive = ntp::NtpTimestamp::FromTime(t2);
  p.transmit = ntp::NtpTimestamp::FromTime(t3);
  const ProbeResult r = ClassifyReply(p, t1, t4);
  EXPECT_EQ(r.outcome, ProbeOutcome::kAnswered);
  EXPECT_NEAR(absl::ToDoubleMilliseconds(r.offset), 5.0, 1e-6);
  EXPECT_NEAR(absl::ToDoubleMilliseconds(r.delay), 2.0, 1e-6);
  EXPECT_EQ(r.stratum, 2);
}

}  // namespace
}  // namespace ntpfleet::ctl
