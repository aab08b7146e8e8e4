#!/bin/bash
# Smoke test of the NTP server throughput benchmark: `throughput.sh --smoke` (bare responder and
# ntpfleet-agent only, two small rates of 1 s, in network namespaces of its own; no chrony/NTPsec
# needed) must print the table with a row per server and non-zero answered rates.
#   throughput_smoke_test.sh THROUGHPUT_SH AGENT LOADGEN RESPONDER
set -euo pipefail
script="$1" agent="$2" loadgen="$3" responder="$4"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
raw="${TEST_TMPDIR:-/tmp}/throughput_smoke_raw.$$"
rm -f "$raw"
out=$("$script" --smoke --agent "$agent" --loadgen "$loadgen" --responder "$responder" --raw "$raw")
echo "$out"
echo "--- raw"
cat "$raw"

grep -q '^## NTP server throughput' <<<"$out" || fail "no section heading"
for row in "bare responder" "ntpfleet-agent, 1 server thread"; do
  line=$(grep "^| $row" <<<"$out") || fail "no table row for '$row'"
  # Columns: server | highest rate < 1 % loss | answered at saturation | ...
  answered=$(awk -F'|' '{ gsub(/[ k]/, "", $4); print $4 }' <<<"$line")
  awk -v a="$answered" 'BEGIN { exit !(a + 0 > 0) }' || fail "row '$row' has no answered rate: $line"
done
for s in responder ntpfleet; do
  sat=$(sed -n "s/.*summary server=$s .*sat_rate=\([0-9]*\).*/\1/p" "$raw")
  [ -n "$sat" ] && [ "$sat" -gt 0 ] || fail "loadgen summary for $s has no answered rate"
done
grep -q '^round=1 counters server=ntpfleet .*answered=[1-9]' "$raw" || fail "no ntpfleet counters"
rm -f "$raw"
echo PASS
