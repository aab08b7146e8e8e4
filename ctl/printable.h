// Text from the network (node names, refids, error messages) made safe for a
// terminal: ntpfleetctl's tables print nothing that can split a row or drive
// the terminal.
#ifndef NTPFLEET_CTL_PRINTABLE_H_
#define NTPFLEET_CTL_PRINTABLE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace ntpfleet::ctl {

// C0 controls, DEL and the C1 controls (U+0080..U+009F, which some terminals
// take as escape sequences) become '?'.
std::string Printable(absl::string_view s);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_PRINTABLE_H_
