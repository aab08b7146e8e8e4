#include "common/local_users.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"

namespace ntpfleet {
namespace {

constexpr size_t kMaxFileBytes = 4 << 20;

// The whole file, or "" when it cannot be read or is larger than the limit:
// a file cut short could end in a line that parses to the wrong id
// ("name:x:1000:..." cut to "name:x:10").
std::string ReadSmallFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path, kMaxFileBytes);
  return text.ok() ? *std::move(text) : std::string();
}

}  // namespace

LocalUsers LocalUsers::Read(absl::string_view root) {
  return Parse(ReadSmallFile(absl::StrCat(root, "/etc/passwd")),
               ReadSmallFile(absl::StrCat(root, "/etc/group")));
}

LocalUsers LocalUsers::Parse(absl::string_view passwd,
                             absl::string_view group) {
  LocalUsers out;
  // name:password:uid:gid:gecos:home:shell
  for (absl::string_view line : absl::StrSplit(passwd, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    uint32_t uid = 0, gid = 0;
    if (f.size() < 4 || f[0].empty() || f[0][0] == '#' ||
        !absl::SimpleAtoi(f[2], &uid) || !absl::SimpleAtoi(f[3], &gid))
      continue;
    out.users_.push_back(
        {std::string(f[0]), static_cast<uid_t>(uid), static_cast<gid_t>(gid)});
  }
  // name:password:gid:member,member
  for (absl::string_view line : absl::StrSplit(group, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    uint32_t gid = 0;
    if (f.size() < 3 || f[0].empty() || f[0][0] == '#' ||
        !absl::SimpleAtoi(f[2], &gid))
      continue;
    LocalGroup g{std::string(f[0]), static_cast<gid_t>(gid), {}};
    if (f.size() >= 4) {
      for (absl::string_view m : absl::StrSplit(f[3], ',', absl::SkipEmpty()))
        g.members.emplace_back(m);
    }
    out.groups_.push_back(std::move(g));
  }
  return out;
}

std::optional<LocalUser> LocalUsers::UserByName(absl::string_view name) const {
  for (const LocalUser& u : users_)
    if (u.name == name) return u;
  return std::nullopt;
}

std::optional<LocalUser> LocalUsers::UserById(uid_t uid) const {
  for (const LocalUser& u : users_)
    if (u.uid == uid) return u;
  return std::nullopt;
}

std::optional<gid_t> LocalUsers::GroupId(absl::string_view name) const {
  for (const LocalGroup& g : groups_)
    if (g.name == name) return g.gid;
  return std::nullopt;
}

std::optional<std::string> LocalUsers::GroupName(gid_t gid) const {
  for (const LocalGroup& g : groups_)
    if (g.gid == gid) return g.name;
  return std::nullopt;
}

std::vector<gid_t> LocalUsers::GroupsOf(const LocalUser& user) const {
  std::vector<gid_t> out{user.gid};
  for (const LocalGroup& g : groups_) {
    if (std::find(g.members.begin(), g.members.end(), user.name) !=
            g.members.end() &&
        std::find(out.begin(), out.end(), g.gid) == out.end())
      out.push_back(g.gid);
  }
  return out;
}

}  // namespace ntpfleet
