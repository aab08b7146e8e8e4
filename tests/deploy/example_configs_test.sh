#!/bin/bash
# Keeps what deploy/ ships from rotting: every deploy/examples/*.conf, and the two classic CentOS 7
# ntpd configurations that users migrate from unchanged (the deployment guide's server and client
# ntp.conf, copied verbatim below from shared/seed/), must pass
#   ntpfleet-agent --check-config --config FILE
# with exit status 0 and without the word "error" anywhere in what it prints. Warnings (a missing
# includefile, an unsupported directive) are allowed: ntpd ignores those lines too.
#
# Also checks that the agent's systemd unit keeps its runtime directory where the agent puts its
# control socket by default, and that its ExecStart reads /etc/ntpfleet/agent.conf.
#
# Usage (from Bazel): example_configs_test.sh AGENT EXAMPLE.conf... [-- UNIT.service...]
set -uo pipefail
AGENT=$1
shift
EXAMPLES=()
UNITS=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then
    shift
    UNITS=("$@")
    break
  fi
  EXAMPLES+=("$1")
  shift
done
T=${TEST_TMPDIR:-$(mktemp -d)}
failures=0
checked=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# --check-config on FILE: exit 0, no "error" in stdout or stderr.
check() {
  local file=$1 name=$2
  local out="$T/$(echo "$name" | tr -c 'A-Za-z0-9.\n-' '_').out"
  checked=$((checked + 1))
  "$AGENT" --check-config --config "$file" >"$out" 2>&1
  local rc=$?
  if [ "$rc" != 0 ]; then
    fail "$name: exit status $rc"
    sed 's/^/    /' "$out"
    return
  fi
  if grep -qi "error" "$out"; then
    fail "$name: the output mentions an error"
    grep -i "error" "$out" | sed 's/^/    /'
    return
  fi
  if ! grep -q "^# ntpfleet effective configuration" "$out"; then
    fail "$name: no effective configuration printed"
    sed 's/^/    /' "$out"
    return
  fi
  echo "ok: $name ($(grep -c 'WARN' "$out") warnings)"
}

[ "${#EXAMPLES[@]}" -gt 0 ] || fail "no deploy/examples/*.conf given"
for f in "${EXAMPLES[@]}"; do
  check "$f" "deploy/examples/$(basename "$f")"
done

# The guide's server ntp.conf (shared/seed/server-ntp.conf), verbatim.
cat >"$T/seed-server-ntp.conf" <<'CONF'
driftfile /var/lib/ntp/drift
#restrict   default  nomodify notrap nopeer noquery
#restrict ::1
#restrict default ignore
#restrict 192.168.0.0 mask 255.255.0.0 nomodify notrap
#restrict 192.168.1.0 mask 255.255.255.0 nomodify notrap
server ntp1.aliyun.com iburst
server ntp2.aliyun.com iburst
#server 1.centos.pool.ntp.org iburst
#server 2.centos.pool.ntp.org iburst
includefile /etc/ntp/crypto/pw
keys /etc/ntp/keys
#trustedkey 4 8 42
#requestkey 8
#controlkey 8
#statistics clockstats cryptostats loopstats peerstats
disable monitor
CONF

# The guide's client ntp.conf (shared/seed/client-ntp.conf), verbatim.
cat >"$T/seed-client-ntp.conf" <<'CONF'
driftfile /var/lib/ntp/drift
restrict default nomodify notrap nopeer noquery
restrict 127.0.0.1
restrict ::1
server 192.168.242.51
restrict 192.168.242.51 nomodify notrap noquery
server 127.0.0.1
fudge 127.0.0.1 stratum 10
includefile /etc/ntp/crypto/pw
keys /etc/ntp/keys
disable monitor
CONF

check "$T/seed-server-ntp.conf" "seed server-ntp.conf"
check "$T/seed-client-ntp.conf" "seed client-ntp.conf"
# What the migration guide promises about the client's local-clock lines.
grep -q "^fudge 127.0.0.1 stratum 10$" "$T/seed_client-ntp.conf.out" ||
  fail "seed client-ntp.conf: 127.0.0.1 + fudge stratum 10 is not read as the local clock"

# The agent's systemd unit and the agent's own defaults must agree.
for unit in "${UNITS[@]}"; do
  [ "$(basename "$unit")" = "ntpfleet-agent.service" ] || continue
  checked=$((checked + 1))
  # "--control_socket (...); default: "/run/ntpfleet/agent.sock";" in --helpfull.
  help=$("$AGENT" --helpfull 2>&1 | tr '\n' ' ')
  socket=""
  if [[ "$help" == *"--control_socket "*'default: "'* ]]; then
    socket=${help#*--control_socket }
    socket=${socket#*default: \"}
    socket=${socket%%\"*}
  fi
  runtime_dir=$(sed -nE 's/^RuntimeDirectory=(.*)$/\1/p' "$unit")
  if [ -z "$socket" ]; then
    fail "cannot read the agent's default --control-socket from --helpfull"
  elif [[ " $runtime_dir " != *" $(basename "$(dirname "$socket")") "* ]] ||
    [ "$(dirname "$(dirname "$socket")")" != /run ]; then
    fail "ntpfleet-agent.service: RuntimeDirectory=$runtime_dir, but the agent's control socket is $socket"
  else
    echo "ok: ntpfleet-agent.service: RuntimeDirectory=$runtime_dir holds $socket"
  fi
  # The default ClockBound segment, /var/run/clockbound/shm0 (docs/CLOCKBOUND.md): its directory
  # is the unit's too, kept across restarts (readers keep the segment mapped).
  [[ " $runtime_dir " == *" clockbound "* ]] && grep -q '^RuntimeDirectoryPreserve=yes$' "$unit" &&
    grep -qE '^ReadWritePaths=.* /run/clockbound( |$)' "$unit" ||
    fail "ntpfleet-agent.service: /run/clockbound (the default clockbound_shm) is not the agent's, writable and preserved"
  grep -qE '^ExecStart=.*ntpfleet-agent --config /etc/ntpfleet/agent\.conf$' "$unit" ||
    fail "ntpfleet-agent.service: ExecStart does not run the agent with --config /etc/ntpfleet/agent.conf"
done

echo "$((checked - failures)) passed, $failures failed"
[ "$failures" = 0 ]
