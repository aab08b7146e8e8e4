#!/bin/bash
# Guards agent/ntp's first rule: the engine does no IO and reads no real clock. Fails if any
# engine source, or any source of the wire format it builds on (common/ntp), includes or calls
# something that touches sockets, files, threads or real time.
set -uo pipefail
root="${TEST_SRCDIR:-.}/ntpfleet"
forbidden='#include <(sys/socket\.h|netinet/|unistd\.h|fcntl\.h|poll\.h|sys/epoll\.h|thread|mutex|future|chrono|fstream|iostream|ctime|time\.h|sys/time\.h|sys/timex\.h)>|absl::Now\(|absl/synchronization|clock_gettime|gettimeofday|std::rand\(|random_device|fopen|getenv'
files=""
for dir in "$root/agent/ntp" "$root/common/ntp"; do
  found=$(ls "$dir"/*.h "$dir"/*.cc 2>/dev/null)
  [ -n "$found" ] || { echo "no sources found under $dir"; exit 1; }
  files="$files $found"
done
# Comment lines may name these (e.g. usage examples); code may not.
if grep -nE "$forbidden" $files | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//'; then
  echo "agent/ntp and common/ntp must stay pure: no IO, threads or real clocks (see ARCHITECTURE.md)"
  exit 1
fi
echo "agent/ntp and common/ntp are pure: $(echo $files | wc -w) files checked"
