#include "agent/config/access_list.h"

#include <algorithm>
#include <cstdint>
#include <utility>

namespace ntpfleet::config {

ntp::AccessList ToAccessList(const std::vector<config::RestrictRule>& rules) {
  ntp::AccessList list;
  for (const RestrictRule& r : rules) {
    uint32_t flags = 0;
    const std::pair<RestrictFlag, uint32_t> map[] = {
        {RestrictFlag::kIgnore, ntp::kIgnore},
        {RestrictFlag::kNoModify, ntp::kNoModify},
        {RestrictFlag::kNoQuery, ntp::kNoQuery},
        {RestrictFlag::kNoTrap, ntp::kNoTrap},
        {RestrictFlag::kNoPeer, ntp::kNoPeer},
        {RestrictFlag::kNoTrust, ntp::kNoTrust},
        {RestrictFlag::kKod, ntp::kKod},
        {RestrictFlag::kLimited, ntp::kLimited},
        {RestrictFlag::kNoServe, ntp::kNoServe},
    };
    for (const auto& [from, to] : map) {
      if (r.Has(from)) flags |= to;
    }
    auto add = [&](bool v6) {
      ntp::AccessRule rule;
      rule.address.v6 = v6;
      rule.flags = flags;
      if (r.is_default) {
        rule.prefix_length = 0;
      } else {
        std::copy(r.address.begin(), r.address.end(),
                  rule.address.octets.begin());
        ntp::IpAddress mask;
        mask.v6 = v6;
        std::copy(r.mask.begin(), r.mask.end(), mask.octets.begin());
        // The parser accepts only contiguous masks.
        size_t prefix = rule.address.bits();
        (void)ntp::AccessList::MaskToPrefix(mask, &prefix);
        rule.prefix_length = prefix;
      }
      list.Add(rule);
    };
    if (r.family != AddressFamily::kIpv6) add(false);
    if (r.family != AddressFamily::kIpv4) add(true);
  }
  return list;
}

}  // namespace ntpfleet::config
