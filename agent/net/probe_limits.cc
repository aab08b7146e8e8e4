#include "agent/net/probe_limits.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/node_name.h"

namespace ntpfleet::net {

absl::StatusOr<Endpoint> ParseProbeAddress(absl::string_view text) {
  if (text.size() > kMaxProbeAddressBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("longer than ", kMaxProbeAddressBytes, " bytes"));
  }
  absl::string_view host;
  absl::string_view port;
  if (absl::ConsumePrefix(&text, "[")) {
    const size_t close = text.find("]:");
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("not [IPv6]:port");
    }
    host = text.substr(0, close);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.find(':');
    if (colon == absl::string_view::npos ||
        text.find(':', colon + 1) != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          "not IP:port (an IPv6 address goes in brackets)");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  absl::StatusOr<ntp::IpAddress> ip = ntp::IpAddress::Parse(host);
  if (!ip.ok()) return absl::InvalidArgumentError("not an IP address");
  int number = 0;
  if (!absl::SimpleAtoi(port, &number) || number < 1 || number > 65535) {
    return absl::InvalidArgumentError("no valid port");
  }
  return Endpoint{*ip, static_cast<uint16_t>(number)};
}

std::string QuoteForLog(absl::string_view text, size_t max) {
  const bool cut = text.size() > max;
  return absl::StrCat("'", absl::CHexEscape(text.substr(0, max)),
                      cut ? "'..." : "'");
}

BoundedAssignment BoundProbeAssignment(const v1::ProbeAssignment& in) {
  BoundedAssignment out;
  if (in.has_interval()) *out.assignment.mutable_interval() = in.interval();
  for (const v1::ProbeTarget& t : in.targets()) {
    std::string why;
    if (!IsValidNodeName(t.node())) {
      why = "not a node name";
    } else if (absl::StatusOr<Endpoint> e = ParseProbeAddress(t.address());
               !e.ok()) {
      why = std::string(e.status().message());
    }
    if (!why.empty()) {
      if (out.invalid++ == 0) {
        out.first_invalid =
            absl::StrCat("node ", QuoteForLog(t.node()), " address ",
                         QuoteForLog(t.address()), ": ", why);
      }
      continue;
    }
    if (out.assignment.targets_size() >= kMaxProbeTargets) {
      ++out.excess;
      continue;
    }
    *out.assignment.add_targets() = t;
  }
  return out;
}

ProbeSendLimiter::ProbeSendLimiter(int budget) : budget_(std::max(budget, 1)) {}

void ProbeSendLimiter::Prune(clock::MonoTime now) {
  while (!sent_.empty() && sent_.front() + kProbeSpacing <= now) {
    sent_.pop_front();
  }
  for (auto it = not_before_.begin(); it != not_before_.end();) {
    it = it->second <= now ? not_before_.erase(it) : std::next(it);
  }
}

ProbeSendLimiter::Verdict ProbeSendLimiter::Admit(const std::string& address,
                                                  clock::MonoTime now) {
  Prune(now);
  if (const auto it = not_before_.find(address);
      it != not_before_.end() && now < it->second) {
    return kTooSoon;
  }
  if (sent_.size() >= static_cast<size_t>(budget_)) return kOverBudget;
  sent_.push_back(now);
  HoldUntil(address, now + kProbeSpacing);
  return kSend;
}

clock::MonoTime ProbeSendLimiter::NotBefore(const std::string& address) const {
  const auto it = not_before_.find(address);
  return it == not_before_.end() ? clock::MonoTime() : it->second;
}

void ProbeSendLimiter::HoldUntil(const std::string& address,
                                 clock::MonoTime until) {
  auto [it, added] = not_before_.emplace(address, until);
  if (!added) {
    it->second = std::max(it->second, until);
    return;
  }
  if (not_before_.size() <= kMaxAddresses) return;
  // Full: forget the hold that ends first.
  auto first = not_before_.begin();
  for (auto i = not_before_.begin(); i != not_before_.end(); ++i) {
    if (i->second < first->second) first = i;
  }
  not_before_.erase(first);
}

}  // namespace ntpfleet::net
