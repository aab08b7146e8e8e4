#!/bin/bash
# ntpfleetctl's usage errors, the built binary: each bad invocation exits 2 (docs/CONTROLLER.md
# "Exit codes": 0 fine, 1 error, 2 usage, 3 check failed) with a message that says what was
# expected, before anything is asked (no controller runs here: $NTPFLEET_CONTROLLER points at a
# closed loopback port, so a check that is missing shows as exit 1 "cannot reach"). Then
# sim-step against an agent on a simulated clock (loopback, port 0; as root only, which sim-step
# needs): out of range is refused, and a step prints where the clock now reads.
set -uo pipefail
CTL=$1
AGENT=$2
export NTPFLEET_CONTROLLER=127.0.0.1:1
T=${TEST_TMPDIR:-$(mktemp -d)}
FAILED=0

# expect CODE SUBSTRING ARGS...: runs ntpfleetctl ARGS; its exit code must be CODE and its stderr
# must contain SUBSTRING (fixed string).
expect() {
  local code=$1 want=$2
  shift 2
  "$CTL" "$@" >"$T/out" 2>"$T/err" </dev/null
  local got=$?
  if [ "$got" != "$code" ] || ! grep -qF -- "$want" "$T/err"; then
    echo "FAIL: ntpfleetctl $*: exit $got (want $code), stderr:"
    sed 's/^/    /' "$T/err" | head -5
    echo "  want stderr containing: $want"
    FAILED=1
  else
    echo "ok: ntpfleetctl $* -> $code"
  fi
}

echo "== flag values: not a value, or out of range (exit 2, an example shown)"
expect 2 "--max-skew: \`banana\` is not a duration" status --max-skew=banana
expect 2 "e.g. --max-skew=1ms" status --max-skew=banana
expect 2 "--max-skew: \`-1ms\` is negative" status --max-skew=-1ms
expect 2 "--max-skew: \`inf\` is not a finite duration" status --max-skew=inf
expect 2 "--since: \`banana\` is not a duration" history --since=banana
expect 2 "--since: \`-5h\` is negative: it must be above 0, e.g. --since=24h" history --since=-5h
expect 2 "--since: \`0s\` is zero" audit --since 0s
expect 2 "--interval: \`-1s\` is negative" watch --interval=-1s
expect 2 "--min-nodes: \`many\` is not a whole number, e.g. --min-nodes=3" status --min-nodes=many
expect 2 "--min-nodes: must be at least 1, not 0" status --min-nodes=0
expect 2 "--days: \`x\` is not a whole number" certs init --dir "$T/ca" --days x
expect 2 "--color: \`purple\` is not \`auto\`" --color=purple status

echo "== flags Abseil would refuse with exit 1: unknown, without a value, a value of another type"
expect 2 "ntpfleetctl: unknown flag --max-skw; did you mean --max-skew? (see ntpfleetctl --help)" \
  status --max-skw=1ms
expect 2 "unknown flag --frobnicate (see ntpfleetctl --help)" status --frobnicate
expect 2 "--step=maybe: not a value this flag takes, e.g. --step=true" resync --all --step=maybe
expect 2 "--output needs a value, e.g. --output=table" status --output
expect 2 "unknown flag --5s; a negative value goes after --, e.g. -- -5s" sim-step -5s

echo "== arguments: missing or extra (exit 2, the command's form shown)"
expect 2 "sim-step needs an argument: ntpfleetctl sim-step -- DURATION" sim-step
expect 2 "sim-step takes one argument, not \`1s\` \`2s\`" sim-step -- 1s 2s
expect 2 "audit takes no arguments, not \`extra\`: ntpfleetctl audit [--since 24h]" audit extra
expect 2 "crosscheck takes no arguments" crosscheck x
expect 2 "forget needs an argument: ntpfleetctl forget NODE" forget
expect 2 "peers takes at most one argument, not \`a\` \`b\`" peers a b
expect 2 "sync takes no arguments" sync now
expect 2 "unknown command \`frobnicate\`" frobnicate
expect 2 "resync: --label \`garbage\` is not KEY=VALUE" resync --label garbage
expect 2 "is not KEY=VALUE" resync --label=garbage

echo "== sim-step: what the simulated clock can be moved by (exit 2, the range named)"
expect 2 "sim-step: \`100000000h\` is out of range: a simulated clock is moved by at most 596523h" \
  sim-step -- 100000000h
expect 2 "at most 596523h (2^31 s, 68 years) either way" sim-step -- inf
expect 2 "at most 596523h" sim-step -- -596524h
expect 2 "sim-step: \`soon\` is not a duration" sim-step -- soon

echo "== --controller and \$NTPFLEET_CONTROLLER: HOST:PORT, [IPV6]:PORT or a list (exit 2)"
expect 2 "--controller takes HOST:PORT, [IPV6]:PORT, or several comma-separated" \
  --controller ::: status
expect 2 "':::' is not an IPv6 address" --controller '[:::]:7123' nodes
expect 2 "'a b' is not a host name or IPv4 address" --controller 'a b:7123' peers n1
expect 2 "has no port; write HOST:PORT" --controller ctl.example resync n1
expect 2 "99999 is not a port" --controller 127.0.0.1:7123,ctl:99999 history
NTPFLEET_CONTROLLER=':::' expect 2 "\$NTPFLEET_CONTROLLER takes HOST:PORT" drift

echo "== still fine: a valid invocation reaches the (absent) controller: exit 1, not 2"
expect 1 "cannot reach the controller at 127.0.0.1:1" status --max-skew=0 --since=5h --color=never
expect 1 "cannot reach" history --since=30m
"$CTL" --help >"$T/help" 2>&1
grep -q "Exit codes: 0 fine, 1 error, 2 usage" "$T/help" || {
  echo "FAIL: --help lost its text"
  FAILED=1
}

if [ "$(id -u)" = 0 ]; then
  echo "== sim-step against an agent on a simulated clock: prints where the clock now reads"
  S=$(mktemp -d /tmp/ntpfleet-usage.XXXXXX)
  printf 'server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n' >"$T/agent.conf"
  setpriv --inh-caps=-sys_time --bounding-set=-sys_time -- "$AGENT" --config "$T/agent.conf" \
    --clock=sim --listen 127.0.0.1:0 --control-socket "$S/agent.sock" >"$T/agent.log" 2>&1 &
  APID=$!
  trap 'kill $APID 2>/dev/null; wait 2>/dev/null; rm -rf "$S"' EXIT
  for _ in $(seq 1 600); do [ -S "$S/agent.sock" ] && break; sleep 0.05; done
  [ -S "$S/agent.sock" ] || { cat "$T/agent.log"; echo "FAIL: the agent did not start"; exit 1; }
  expect 2 "out of range" --control-socket "$S/agent.sock" sim-step -- 100000000h
  "$CTL" --control-socket "$S/agent.sock" sim-step -- -2s >"$T/step.out" 2>&1
  rc=$?
  cat "$T/step.out"
  # The agent was started just now on a clock without offset or drift (--sim-* defaults): it
  # reads within a millisecond of -2 s from true time. A ctl that printed only the step asked
  # for, or an agent that did not move, fails here.
  if [ "$rc" != 0 ] || ! grep -qE \
    '^moved the simulated clock by -2\.000s; it now reads -(1\.99[89]|2\.00[01])s from true time$' \
    "$T/step.out"; then
    echo "FAIL: sim-step -- -2s: exit $rc"
    FAILED=1
  fi
  grep -q "simulated clock moved by -2s (sim-step)" "$T/agent.log" || {
    echo "FAIL: the agent did not log the step"
    FAILED=1
  }
  [ "$(grep -c 'simulated clock moved' "$T/agent.log")" = 1 ] || {
    echo "FAIL: a refused step reached the agent"
    FAILED=1
  }
else
  echo "== (not root: the sim-step against an agent is skipped; it needs root)"
fi

[ "$FAILED" = 0 ] && echo PASS
exit "$FAILED"
