// `ntpfleetctl now [--shm PATH] [--output table|json]`: this node's bounded
// time from its ClockBound segment (docs/CLOCKBOUND.md), read as any
// application would (clockbound/reader.h): earliest, latest, the bound, the
// status and how old the bound is.
#ifndef NTPFLEET_CTL_CMD_NOW_H_
#define NTPFLEET_CTL_CMD_NOW_H_

#include <string>

#include "clockbound/reader.h"

namespace ntpfleet::ctl {

// The reading as text or JSON (pure).
std::string RenderNow(const clockbound::BoundedTime& t, const std::string& path,
                      bool json);
// Exit 0 when the status is synchronized or free running; 1, with why and
// the fix on stderr, when the segment is missing, invalid or void, or the
// status unknown or disrupted (the reading is still printed).
int RunNow(const std::string& path, bool json);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_CMD_NOW_H_
