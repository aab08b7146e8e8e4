#!/usr/bin/env bash
# Smoke test of the controller-scale and agent-footprint benchmarks: both scripts with --smoke
# (20 fake agents for 5 s; one agent pair measured for 20 s) must print their tables with rows.
# Not a benchmark: the numbers are not checked.
#
#   scale_smoke_test.sh CONTROLLER_SCALE_SH AGENT_FOOTPRINT_SH CONTROLLER AGENT CTL FLEETLOAD
set -euo pipefail
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
[ "$#" = 6 ] || { echo "usage: $0 CONTROLLER_SCALE_SH AGENT_FOOTPRINT_SH CONTROLLER AGENT CTL FLEETLOAD" >&2; exit 2; }
abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
scale=$(abspath "$1") footprint=$(abspath "$2") controller=$(abspath "$3") agent=$(abspath "$4")
ctl=$(abspath "$5") fleetload=$(abspath "$6")
tmp="${TEST_TMPDIR:-$(mktemp -d)}"

fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== bench/controller_scale.sh --smoke"
out=$(bash "$scale" --smoke --controller "$controller" --ctl "$ctl" --fleetload "$fleetload" \
  --work "$tmp/scale")
echo "$out"
grep -q '^| agents | controller CPU' <<<"$out" || fail "no controller-scale table header"
row=$(grep '^| 20 |' <<<"$out") || fail "no row for 20 agents"
# Every measured column has a number (a failed phase prints –).
cols=$(awk -F'|' '{print $3 $4 $5 $6 $7 $8}' <<<"$row")
grep -q '–' <<<"$cols" && fail "a column of the 20-agent row was not measured: $row"
grep -q 'only .* connected\|dropped\|status failed\|resync: ' <<<"$row" && fail "20 agents were not served cleanly: $row"
grep -q '^| goal (10 000 agents' <<<"$out" || fail "no goals table"

echo "== bench/agent_footprint.sh --smoke"
out=$(bash "$footprint" --smoke --agent "$agent" --controller "$controller" --ctl "$ctl" \
  --work "$tmp/footprint")
echo "$out"
grep -q '^| agent (poll 64 s' <<<"$out" || fail "no agent-footprint table header"
grep -Eq '^\| reporting every 1 s .*\| (MET|MISSED) \|$' <<<"$out" || fail "no row for the reporting agent"
grep -Eq '^\| no controller .*\| (MET|MISSED) \|$' <<<"$out" || fail "no row for the standalone agent"
echo PASS
