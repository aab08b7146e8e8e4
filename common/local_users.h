// Users and groups from /etc/passwd and /etc/group, read directly instead of
// through getpwnam(3)/getgrnam(3)/getgrouplist(3): glibc's versions load the
// host's NSS modules at run time, which the fully static binaries (the
// tarball's and the RPMs', on CentOS 7's glibc 2.17) must never do. Only local
// accounts are seen — a user or group that exists only in LDAP or SSSD is not;
// the packages create `ntpfleet` and `ntpfleet-controller` in the local files.
//
// Example:
//   LocalUsers users = LocalUsers::Read();       // /etc/passwd, /etc/group
//   if (std::optional<LocalUser> u = users.UserByName("ntpfleet")) ...
//   std::optional<gid_t> g = users.GroupId("ntpfleet");
//
// Thread safety: a LocalUsers is immutable after Read().
#ifndef NTPFLEET_COMMON_LOCAL_USERS_H_
#define NTPFLEET_COMMON_LOCAL_USERS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace ntpfleet {

struct LocalUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;  // primary group
};

struct LocalGroup {
  std::string name;
  gid_t gid = 0;
  std::vector<std::string> members;  // supplementary members
};

class LocalUsers {
 public:
  // Reads ROOT/etc/passwd and ROOT/etc/group (ROOT "" is /). A missing,
  // unreadable or larger than 4 MiB file gives no entries (never a file cut
  // short); lines that do not parse are skipped.
  static LocalUsers Read(absl::string_view root = "");
  // From the files' text (tests).
  static LocalUsers Parse(absl::string_view passwd, absl::string_view group);

  std::optional<LocalUser> UserByName(absl::string_view name) const;
  std::optional<LocalUser> UserById(uid_t uid) const;
  std::optional<gid_t> GroupId(absl::string_view name) const;
  std::optional<std::string> GroupName(gid_t gid) const;
  // The user's primary group and every group listing it as a member, as
  // getgrouplist(3) with files only.
  std::vector<gid_t> GroupsOf(const LocalUser& user) const;

 private:
  std::vector<LocalUser> users_;
  std::vector<LocalGroup> groups_;
};

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_LOCAL_USERS_H_
