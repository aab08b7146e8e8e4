#!/bin/bash
# Smoke test of the ClockBound read benchmark: a tiny run prints the section with a number in
# each row and no failed reads.
set -euo pipefail
out=$("$1" --reads 1000 --repeats 3)
echo "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }
grep -q '^## ClockBound read' <<<"$out" || fail "no heading"
for row in "Reader::Now() |" "Reader::Now(), with a writer" "clock_gettime"; do
  grep -qE "^\| $(sed 's/[()|]/\\&/g' <<<"$row").*\| [0-9]+\.[0-9] \|" <<<"$out" || fail "row $row"
done
grep -q "^Failed reads: 0\." <<<"$out" || fail "failed reads"
