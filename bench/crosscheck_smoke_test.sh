#!/bin/bash
# Smoke test of the crosscheck benchmark: tiny fleets, one on the dense path (200 nodes) and one on
# the iterative path (1 500 > 1 000 nodes), print the section with times in every row, every node
# measured, none flagged and the solve accurate.
set -euo pipefail
out=$("$1" --sizes 200,1500 --repeats 2)
echo "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }
grep -q '^## Crosscheck solve' <<<"$out" || fail "no heading"
grep -qE '^\| 200 \| 600 \| dense, exact σ \|( [0-9]+\.[0-9] \|){4} 200 / 0 \|.*\| yes \| (MET|MISSED) \|$' \
  <<<"$out" || fail "200-node row"
grep -qE '^\| 1 500 \| 4 500 \| CG, approx. σ \|( [0-9]+\.[0-9] \|){4} 1 500 / 0 \|.*\| yes \| (MET|MISSED) \|$' \
  <<<"$out" || fail "1 500-node row"
