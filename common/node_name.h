// What may name a node (or a person) anywhere in ntpfleet: certificates,
// Hello.node_name, `ntpfleetctl certs issue`, the agent's node_name.
#ifndef NTPFLEET_COMMON_NODE_NAME_H_
#define NTPFLEET_COMMON_NODE_NAME_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace ntpfleet {

// The longest name: a DNS name's limit (RFC 1035 §2.3.4).
inline constexpr size_t kMaxNodeNameBytes = 253;

// Whether `name` may name a node: 1..253 bytes of DNS-like labels, each 1..63
// of [A-Za-z0-9_-], separated by single '.', no label starting or ending with
// '-'. No spaces, no control bytes, nothing a terminal or a log would render
// as something else.
bool IsValidNodeName(absl::string_view name);

}  // namespace ntpfleet

#endif  // NTPFLEET_COMMON_NODE_NAME_H_
