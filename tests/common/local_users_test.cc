#include "common/local_users.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ntpfleet {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/bash\n"
    "# a comment\n"
    "broken line\n"
    "ntpfleet:x:998:997::/var/lib/ntpfleet:/usr/sbin/nologin\n"
    "alice:x:1000:1000::/home/alice:/bin/bash\n";
constexpr char kGroup[] =
    "root:x:0:\n"
    "ntpfleet:x:997:\n"
    "alice:x:1000:\n"
    "adm:x:4:alice,bob\n"
    "badgid:x:notanumber:alice\n"
    "ntpfleet-readers:x:2000:bob,alice\n";

TEST(LocalUsersTest, FindsUsersByNameAndId) {
  LocalUsers u = LocalUsers::Parse(kPasswd, kGroup);
  std::optional<LocalUser> n = u.UserByName("ntpfleet");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->uid, 998u);
  EXPECT_EQ(n->gid, 997u);
  EXPECT_EQ(u.UserById(1000)->name, "alice");
  EXPECT_FALSE(u.UserByName("broken line").has_value());
  EXPECT_FALSE(u.UserById(4242).has_value());
}

TEST(LocalUsersTest, GroupsByNameIdAndMembership) {
  LocalUsers u = LocalUsers::Parse(kPasswd, kGroup);
  EXPECT_THAT(u.GroupId("ntpfleet"), Optional(997u));
  EXPECT_THAT(u.GroupName(4), Optional(std::string("adm")));
  EXPECT_FALSE(u.GroupId("badgid").has_value());
  EXPECT_THAT(u.GroupsOf(*u.UserByName("alice")),
              ElementsAre(1000u, 4u, 2000u));
  EXPECT_THAT(u.GroupsOf(*u.UserByName("ntpfleet")), ElementsAre(997u));
}

TEST(LocalUsersTest, ReadsTheFilesUnderARoot) {
  const std::string root = ::testing::TempDir() + "/lu_root";
  ASSERT_EQ(system(("mkdir -p " + root + "/etc").c_str()), 0);
  std::ofstream(root + "/etc/passwd") << kPasswd;
  std::ofstream(root + "/etc/group") << kGroup;
  LocalUsers u = LocalUsers::Read(root);
  EXPECT_THAT(u.GroupId("ntpfleet"), Optional(997u));
  // A root without the files: nothing, no error.
  EXPECT_FALSE(LocalUsers::Read(root + "/nowhere").UserByName("root"));
}

}  // namespace
}  // namespace ntpfleet
