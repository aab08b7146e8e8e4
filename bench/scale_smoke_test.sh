#!/usr/bin/env bash
# Smoke test of the controller-scale and agent-footprint benchmarks: both scripts with --smoke
# must print their tables with rows. Not a benchmark: the numbers are not checked, but the paths
# the real run takes are: controller-scale's 24 agents connect with mutual TLS, a node certificate
# and a TCP connection each (in a network namespace of its own when root, as in CI), /metrics is
# scraped throughout and must always answer; 40 agents share 10 plain-text connections (the path
# past the descriptor limit). The agent pair is measured for 20 s.
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
# The benchmark CA and node certificates in the test's own directory, never a shared cache.
out=$(bash "$scale" --smoke --controller "$controller" --ctl "$ctl" --fleetload "$fleetload" \
  --work "$tmp/scale" --cert-cache "$tmp/certs")
echo "$out"
grep -q '^## Controller scale' <<<"$out" || fail "no section heading"
grep -q '^| agents, reporting | TCP connections | controller CPU' <<<"$out" ||
  fail "no controller-scale table header"
for spec in "24 every 1 s | 24 (TLS)" "40 every 2 s | 10 (plain)"; do
  row=$(grep -F "| $spec |" <<<"$out" | head -1) || fail "no row '$spec'"
  # Every measured column has a number (a failed phase prints –).
  cols=$(awk -F'|' '{print $4 $5 $6 $7 $8 $9 $11}' <<<"$row")
  grep -q '–' <<<"$cols" && fail "a column of row '$spec' was not measured: $row"
  grep -q 'only .* connected\|dropped\|reopened\|status failed\|resync: \|/metrics:' <<<"$row" &&
    fail "row '$spec' was not served cleanly: $row"
  grep -q '| 0 of [1-9][0-9]* failed, slowest' <<<"$row" || fail "/metrics did not answer throughout: $row"
done
# One TCP connection per TLS agent: the controller held a descriptor for each.
r24=$(grep '^RESULT ' "$tmp/scale/n24/fleetload.out")
grep -q ' connections=24 .*tls=1 ' <<<"$r24" || fail "24 agents not on 24 TLS connections: $r24"
fds=$(sed -n 's/.* controller_fds=\([0-9]*\) .*/\1/p' <<<"$r24")
[ "${fds:-0}" -ge 24 ] || fail "the controller held $fds descriptors for 24 connections"
r40=$(grep '^RESULT ' "$tmp/scale/n40/fleetload.out")
grep -q ' connections=10 .*tls=0 ' <<<"$r40" || fail "40 agents not on 10 plain connections: $r40"
if [ "$(id -u)" = 0 ]; then
  grep -q 'network namespace of their own' <<<"$out" || fail "root, yet no network namespace"
  grep -q ' addresses=2 ' <<<"$r24" || fail "TLS agents in the namespace dialled one address: $r24"
fi
grep -q '^| goal | target | measured | verdict |' <<<"$out" || fail "no goals table"
grep -q 'waves of [0-9][0-9]* nodes a second' <<<"$out" || fail "the controller's wave rate not read"
[ "$(grep -cE '^\| (10|100) 000 agents: ' <<<"$out")" = 10 ] || fail "not ten goal rows"

echo "== bench/agent_footprint.sh --smoke"
out=$(bash "$footprint" --smoke --agent "$agent" --controller "$controller" --ctl "$ctl" \
  --work "$tmp/footprint")
echo "$out"
grep -q '^| agent (poll 64 s' <<<"$out" || fail "no agent-footprint table header"
grep -Eq '^\| reporting every 1 s .*\| (MET|MISSED) \|' <<<"$out" || fail "no row for the reporting agent"
grep -Eq '^\| no controller .*\| (MET|MISSED) \|' <<<"$out" || fail "no row for the standalone agent"
echo PASS
