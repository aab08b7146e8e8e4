#!/bin/bash
# The layering ARCHITECTURE.md draws, checked without building anything:
#   - controller/ and ctl/ include nothing from agent/ (what more than one binary
#     uses lives in common/), nor from each other;
#   - common/ includes nothing from agent/, controller/ or ctl/ (it is the bottom);
#   - clockbound/ (the ClockBound reader applications link) includes nothing of ntpfleet's.
# Both #include lines in sources and labels in BUILD files count; comment lines
# do not.
#
# Under Bazel the sources come from runfiles (//tests:layering_test); from a
# checkout, run it directly: `bash tests/layering_test.sh [REPO_ROOT]`.
set -uo pipefail
if [ $# -ge 1 ]; then
  root="$1"
elif [ -n "${TEST_SRCDIR:-}" ]; then
  root="$TEST_SRCDIR/ntpfleet"
else
  root="$(cd "$(dirname "$0")/.." && pwd)"
fi

failed=0
# check DIR PATTERN: every line of DIR's sources (recursive) and BUILD files
# that matches PATTERN outside a comment is a violation.
check() {
  local dir="$1" forbidden="$2" why="$3"
  [ -d "$root/$dir" ] || { echo "missing $root/$dir"; failed=1; return; }
  local srcs builds hits
  srcs=$(find -L "$root/$dir" -name '*.h' -o -name '*.cc' | sort)
  builds=$(find -L "$root/$dir" -name 'BUILD' -o -name 'BUILD.bazel' | sort)
  [ -n "$srcs" ] || { echo "no sources found under $root/$dir"; failed=1; return; }
  [ -n "$builds" ] || { echo "no BUILD file found under $root/$dir"; failed=1; return; }
  hits=$( (grep -nHE "^[[:space:]]*#[[:space:]]*include[[:space:]]+\"($forbidden)/" $srcs
           grep -nHE "\"//($forbidden)[:/\"]" $builds) |
         grep -vE '^[^:]+:[0-9]+:[[:space:]]*(//|#[^i])')
  if [ -n "$hits" ]; then
    echo "$hits" | sed "s#^$root/##"
    echo "FAIL: $dir/ must not depend on $(echo "$forbidden" | sed 's:|:/, :g')/: $why"
    echo
    failed=1
  else
    echo "ok: $dir/ ($(echo "$srcs" | wc -l) sources, $(echo "$builds" | wc -l) BUILD files) uses nothing from $(echo "$forbidden" | sed 's:|:/, :g')/"
  fi
}

check controller 'agent|ctl' \
  "move what both need to common/ (ARCHITECTURE.md, Layout)"
check ctl 'agent|controller' \
  "move what both need to common/, or ask the agent over its control socket"
check common 'agent|controller|ctl' \
  "common/ is what every binary builds on; it includes no binary's code"
check clockbound 'agent|controller|ctl|common|proto' \
  "applications link //clockbound:reader alone: it must stay free of ntpfleet's code"

if [ "$failed" != 0 ]; then
  echo "layering broken (see README.md, 'Layout')"
  exit 1
fi
echo "layering holds"
