#!/bin/bash
# Guards agent/ntp's first rule: the engine does no IO and reads no real clock. Fails if any
# engine source includes or calls something that touches sockets, files, threads or real time.
set -uo pipefail
dir="${TEST_SRCDIR:-.}/ntpfleet/agent/ntp"
forbidden='#include <(sys/socket\.h|netinet/|unistd\.h|fcntl\.h|poll\.h|sys/epoll\.h|thread|mutex|future|chrono|fstream|iostream|ctime|time\.h|sys/time\.h|sys/timex\.h)>|absl::Now\(|absl/synchronization|clock_gettime|gettimeofday|std::rand\(|random_device|fopen|getenv'
files=$(ls "$dir"/*.h "$dir"/*.cc 2>/dev/null)
[ -n "$files" ] || { echo "no engine sources found under $dir"; exit 1; }
# Comment lines may name these (e.g. usage examples); code may not.
if grep -nE "$forbidden" $files | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//'; then
  echo "agent/ntp must stay pure: no IO, threads or real clocks (see ARCHITECTURE.md)"
  exit 1
fi
echo "agent/ntp is pure: $(echo "$files" | wc -l) files checked"
