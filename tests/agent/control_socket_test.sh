#!/bin/bash
# The agent's local control socket checks who asks (SO_PEERCRED): the status needs root or the
# ntpfleet group, resync (`ntpfleetctl sync`) and sim-step need root. A refused request gets a
# "permission denied" naming what it needs, is logged and counted. The socket is 0600 (0660 group
# ntpfleet when that group exists). Runs an agent on a simulated clock, loopback only; the
# unprivileged caller is uid/gid 65534 via setpriv (the test must run as root).
set -uo pipefail
AGENT=$1
CTL=$2
T=${TEST_TMPDIR:-$(mktemp -d)}
# Unix socket paths are short (108 bytes); the directory must be traversable by uid 65534.
S=$(mktemp -d /tmp/ntpfleet-ctl.XXXXXX)
chmod 0711 "$S"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$S"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# await FILE REGEX [SECONDS]: waits until REGEX appears in FILE (polling every 0.05 s; up to
# SECONDS, 60 by default: on a quiet machine the agent starts serving within 0.1 s, and a loaded
# 2-core machine must have at least 4x that), prints the first capture group, and logs to stderr
# how long it took.
await() {
  local limit="${3:-60}" start_us=${EPOCHREALTIME/./} now_us
  until grep -qE "$2" "$1" 2>/dev/null; do
    now_us=${EPOCHREALTIME/./}
    if ((now_us - start_us >= limit * 1000000)); then
      echo "timed out after ${limit}s waiting for '$2' in $1:"
      cat "$1"
      return 1
    fi
    sleep 0.05
  done
  now_us=${EPOCHREALTIME/./}
  printf 'ok after %d.%03ds (limit %ss): %s\n' $(((now_us - start_us) / 1000000)) \
    $(((now_us - start_us) / 1000 % 1000)) "$limit" "$2" >&2
  sed -nE "s#.*$2.*#\1#p" "$1" | head -1
}

[ "$(id -u)" = 0 ] || fail "this test needs root (it runs ntpfleetctl as uid 65534 with setpriv)"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
nobody true || fail "cannot run as uid 65534 here (setpriv)"

cat > "$T/server.conf" <<CONF
server 127.127.1.0
fudge 127.127.1.0 stratum 10
CONF
SOCK="$S/agent.sock"
"$AGENT" --config "$T/server.conf" --clock=sim --listen 127.0.0.1:0 --control-socket "$SOCK" \
  >"$T/agent.log" 2>&1 &
PIDS+=($!)
await "$T/agent.log" 'serving NTP on UDP port ([0-9]+)' >/dev/null || fail "agent did not start"
for _ in $(seq 1 200); do [ -S "$SOCK" ] && break; sleep 0.05; done

echo "== the socket: 0600, or 0660 group ntpfleet when that group exists"
mode=$(stat -c %a "$SOCK")
if getent group ntpfleet >/dev/null; then
  [ "$mode" = 660 ] || fail "socket mode $mode, want 660 (group ntpfleet exists)"
  [ "$(stat -c %G "$SOCK")" = ntpfleet ] || fail "socket group $(stat -c %G "$SOCK"), want ntpfleet"
else
  [ "$mode" = 600 ] || fail "socket mode $mode, want 600 (no ntpfleet group)"
fi

echo "== root may ask for the status"
"$CTL" --control-socket "$SOCK" peers >"$T/root.out" 2>&1 || { cat "$T/root.out"; fail "root refused"; }
grep -q "LOCAL(0)" "$T/root.out" || { cat "$T/root.out"; fail "no status for root"; }

echo "== an unprivileged user cannot even connect to a 0600 socket"
nobody "$CTL" --control-socket "$SOCK" peers >"$T/eacces.out" 2>&1 && fail "uid 65534 got the status"
cat "$T/eacces.out"
grep -q "permission denied on $SOCK" "$T/eacces.out" || fail "no permission-denied message"

echo "== with the socket opened to everyone, the agent itself refuses by the caller's uid"
chmod 0666 "$SOCK"
nobody "$CTL" --control-socket "$SOCK" peers >"$T/status.out" 2>&1 && fail "uid 65534 got the status"
cat "$T/status.out"
grep -qF "ntpfleetctl: permission denied: status needs root or the ntpfleet group (you are uid 65534)" \
  "$T/status.out" || fail "status refusal message"
nobody "$CTL" --control-socket "$SOCK" sim-step -- 5s >"$T/simstep.out" 2>&1 && fail "uid 65534 moved the clock"
cat "$T/simstep.out"
grep -qF 'permission denied: `sim-step` needs root (you are uid 65534)' "$T/simstep.out" \
  || fail "sim-step refusal message"
nobody "$CTL" --control-socket "$SOCK" sync >"$T/sync.out" 2>&1 && fail "uid 65534 resynced"
cat "$T/sync.out"
grep -qF 'permission denied: `resync` needs root (you are uid 65534)' "$T/sync.out" \
  || fail "sync refusal message"
grep -q 'control socket: refused `resync` from uid 65534' "$T/agent.log" || fail "refusal not logged"
[ "$(grep -c 'control socket: refused' "$T/agent.log")" = 3 ] || fail "not every refusal logged"

echo "== the clock did not move, and root still may (sim-step, sync)"
"$CTL" --control-socket "$SOCK" sim-step -- 2s >"$T/rootstep.out" 2>&1 \
  || { cat "$T/rootstep.out"; fail "root sim-step refused"; }
grep -q "simulated clock moved by 2s (sim-step)" "$T/agent.log" || fail "root's sim-step not applied"
[ "$(grep -c 'simulated clock moved' "$T/agent.log")" = 1 ] || fail "uid 65534's sim-step was applied"
"$CTL" --control-socket "$SOCK" sync >"$T/rootsync.out" 2>&1 || { cat "$T/rootsync.out"; fail "root sync"; }
cat "$T/rootsync.out"

if getent group ntpfleet >/dev/null; then
  echo "== a member of the ntpfleet group may ask for the status (not resync)"
  g=$(getent group ntpfleet | cut -d: -f3)
  setpriv --reuid=65534 --regid=65534 --groups="$g" -- "$CTL" --control-socket "$SOCK" peers \
    >"$T/group.out" 2>&1 || { cat "$T/group.out"; fail "ntpfleet group member refused"; }
fi

echo "PASS"
