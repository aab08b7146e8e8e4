# Shared helpers for the interoperability tests (sourced by each *_test.sh; see README.md).
#
# Each test calls `interop_init "$@"` first. That
#   * fails (never skips) when the real peers are missing: run scripts/fetch_peers.sh;
#   * re-runs the test inside new network, PID and mount namespaces, with CAP_SYS_TIME dropped:
#     traffic stays on the namespace's own loopback (and addresses the test adds to it), port 123
#     collides with nothing, and when the test ends, however it ends, the kernel kills every
#     process it started (the test is PID 1 of its namespace; unshare --kill-child);
#   * sets AGENT, CTL, PEERS, WORK (a scratch directory) and a trap that stops everything and
#     prints the logs of every process if the test fails.
#
# Every program is started through `safe` (setpriv without CAP_SYS_TIME): nothing here can move
# this machine's clock. Our agent always runs with --clock=sim.

set -euo pipefail
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export LC_ALL=C

source "$(dirname "${BASH_SOURCE[0]}")/../testing/proc.sh"
PEERS="${NTPFLEET_PEERS_DIR:-/var/cache/ntpfleet/peers}"
TEST_NAME="$(basename "$0" .sh)"

# The throwaway test keys, the same as tests/agent/ntp/testdata/{ntp,chrony}.keys:
# key 1 = MD5, ASCII "ntpfleet-test-md5"; key 2 = SHA1, 20 bytes spelling "ntpfleet-test-sha1!!".
# *_WRONG: the same key ids and types with other secrets.
write_keys() {  # DIR: writes ntp.keys, chrony.keys, ntp-wrong.keys, chrony-wrong.keys
  local d="$1"
  cat >"$d/ntp.keys" <<'EOF'
# ntpd/NTPsec/ntpfleet keys file (keyid type key). Throwaway test keys.
1 MD5 ntpfleet-test-md5
2 SHA1 6e7470666c6565742d746573742d736861312121
EOF
  cat >"$d/chrony.keys" <<'EOF'
# chrony keyfile: the same keys (chrony needs HEX: for a hex key).
1 MD5 ntpfleet-test-md5
2 SHA1 HEX:6e7470666c6565742d746573742d736861312121
EOF
  cat >"$d/ntp-wrong.keys" <<'EOF'
# Same ids and types, different secrets.
1 MD5 not-the-test-md5
2 SHA1 0123456789abcdef0123456789abcdef01234567
EOF
  cat >"$d/chrony-wrong.keys" <<'EOF'
1 MD5 not-the-test-md5
2 SHA1 HEX:0123456789abcdef0123456789abcdef01234567
EOF
}

# --- our agent --------------------------------------------------------------------------------
# start_agent NAME CONFIG ARGS...: the agent on a simulated clock with its control socket at
# $WORK/NAME.sock; waits until the control socket answers.
start_agent() {
  local name="$1" config="$2"
  shift 2
  start "$name" "$AGENT" --config "$config" --clock=sim --control-socket "$WORK/$name.sock" "$@"
  wait_until 10 "$name answers on its control socket" peers "$name"
}
peers() { safe "$CTL" --control-socket "$WORK/$1.sock" peers; }

# peers_match NAME REGEX: `ntpfleetctl peers` of agent NAME has a line matching REGEX (grep -E).
peers_match() { peers "$1" | grep -Eq -- "$2"; }
# The system peer's row ('*' in the tally column), or nothing.
system_peer_row() { peers "$1" | grep '^\*' || true; }
# Field N (1-based, ntpq -p columns) of the row for REMOTE (the tally character stripped).
peer_field() {  # AGENT_NAME REMOTE N
  peers "$1" | awk -v r="$2" -v n="$3" 'NR > 2 && substr($0, 2, length(r)) == r { $0 = substr($0, 2); print $n; exit }'
}
# abs_lt X LIMIT: |X| < LIMIT (decimal numbers).
abs_lt() { awk -v x="$1" -v l="$2" 'BEGIN { if (x < 0) x = -x; exit !(x + 0 < l + 0) }'; }
# The agent NAME has a system peer whose offset (ms) is below LIMIT_MS in magnitude.
synced_within() {  # NAME LIMIT_MS
  local row off
  row=$(system_peer_row "$1")
  [ -n "$row" ] || return 1
  off=$(awk '{ print $9 }' <<<"${row#\*}")
  abs_lt "$off" "$2"
}
logged() { grep -q -- "$2" "$WORK/$1.log"; }  # NAME PATTERN

# --- setup ------------------------------------------------------------------------------------
on_exit() {
  local rc=$?
  stop_all
  if [ "$rc" != 0 ]; then
    echo "===== $TEST_NAME FAILED (exit $rc); logs of every process follow ====="
    local f
    for f in "$WORK"/*.log "$WORK"/*.conf; do
      [ -f "$f" ] || continue
      echo "----- $(basename "$f")"
      cat "$f"
    done
    if [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
      cp "$WORK"/*.log "$WORK"/*.conf "$TEST_UNDECLARED_OUTPUTS_DIR"/ 2>/dev/null || true
    fi
  fi
}

# interop_init AGENT_PATH CTL_PATH: see the top of this file.
interop_init() {
  local agent="$1" ctl="$2"
  if [ -z "${NTPFLEET_INTEROP_INSIDE:-}" ]; then
    [ "$(id -u)" = 0 ] || fail "the interop tests need root (network namespaces); they are tagged 'local' to run unsandboxed"
    local missing=() p
    for p in bin/chronyd bin/ntpd bin/ntpdig root/usr/sbin/chronyd root/usr/sbin/ntpd root/usr/bin/ntpdig; do
      [ -x "$PEERS/$p" ] || missing+=("$PEERS/$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
      fail "the real NTP peers are missing (${missing[*]}).
Run: sudo scripts/fetch_peers.sh   (it unpacks chrony and NTPsec into /var/cache/ntpfleet/peers)
Elsewhere: NTPFLEET_PEERS_DIR=/path sudo -E scripts/fetch_peers.sh, then run bazel test with the same
NTPFLEET_PEERS_DIR in its environment (the interop tests inherit it)."
    fi
    # Absolute paths: the namespace keeps the same file system and working directory anyway.
    agent=$(readlink -f "$agent")
    ctl=$(readlink -f "$ctl")
    # Scratch space (short path: it holds unix sockets), removed afterwards.
    local work rc=0
    work=$(mktemp -d /tmp/ntpfleet-interop.XXXXXX)
    export NTPFLEET_INTEROP_INSIDE=1 NTPFLEET_PEERS_DIR="$PEERS" NTPFLEET_INTEROP_WORK="$work"
    # New network + PID + mount namespaces (and a fresh /proc for the new PID namespace).
    # --kill-child: if unshare dies (bazel's timeout), the kernel kills everything inside.
    "${SAFE[@]}" unshare --net --pid --fork --kill-child --mount-proc -- \
      bash "$0" "$agent" "$ctl" || rc=$?
    rm -rf "$work"
    exit "$rc"
  fi
  AGENT="$agent"
  CTL="$ctl"
  [ -x "$AGENT" ] || fail "no agent binary at $AGENT"
  [ -x "$CTL" ] || fail "no ntpfleetctl binary at $CTL"
  # Belt and braces: this process must not be able to set the clock.
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  if (((0x$bnd >> 25) & 1)); then fail "CAP_SYS_TIME is still in the bounding set"; fi
  # unshare already made this mount namespace private; say so explicitly before any test mounts.
  mount --make-rprivate /
  ip link set lo up
  WORK="$NTPFLEET_INTEROP_WORK"
  trap on_exit EXIT
  trap 'exit 143' TERM INT
  write_keys "$WORK"
  log "$TEST_NAME: in private namespaces (net, pid, mount); peers from $PEERS; work dir $WORK"
  if [ -f "$PEERS/VERSIONS" ]; then log "peer versions: $(tr '\n' ';' <"$PEERS/VERSIONS")"; fi
}
