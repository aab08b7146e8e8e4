# shellcheck shell=bash
# Shared helpers for the fault tests (tests/faults/*_test.sh; issue #10 part 8).
#
# Built on tests/integration/lib.sh (sourced here: ctl, jcheck/jget, fleet_is, start_agent,
# start_server_agent, start_client, CONVERGED, the exit trap that prints every log on failure).
# Each test calls `faults_init "$@"` with the paths of ntpfleet-controller, ntpfleet-agent and
# ntpfleetctl. With FAULTS_NAMESPACE=1 set before that call, the test first re-runs itself
# inside new network, PID and mount namespaces (root only; the BUILD tags such tests
# no-sandbox): its traffic then stays on that namespace's own loopback and on the addresses
# the test gives to links it creates there, and when the test ends, however it ends, the
# kernel kills every process it started.
#
# The controller is started ONLY through start_controller below, so that flags every
# controller of these tests needs (e.g. --insecure for plain text on a non-loopback address)
# are added in one place: CONTROLLER_EXTRA_FLAGS.

HERE_FAULTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE_FAULTS/../integration/lib.sh"

# Flags given to every controller these tests start (an array): the tests resync the same
# nodes in quick succession (the per-node interval is tested in tests/controller/service_test).
CONTROLLER_EXTRA_FLAGS=(--resync-min-interval=0s)

# start_controller NAME [LISTEN] [EXTRA_ARGS...]: the controller on LISTEN (default
# 127.0.0.1:0; an IPv4 address) with its database at $DB; sets CPORT (its port) and CADDR
# (ADDRESS:PORT, for the agents' `controller` lines and ntpfleetctl). Overrides the one in
# tests/integration/lib.sh, which knows only 127.0.0.1.
CADDR=""
start_controller() {
  local name="$1" listen="${2:-127.0.0.1:0}"
  shift $(($# >= 2 ? 2 : 1))
  local host="${listen%:*}"
  start "$name" "$CONTROLLER" --listen "$listen" --db "$DB" --metrics-listen 127.0.0.1:0 \
    "${CONTROLLER_EXTRA_FLAGS[@]}" "$@"
  wait_until 15 "$name listens" grep -q "listening on $host:" "$WORK/$name.log"
  CPORT=$(sed -n "s/.*listening on ${host//./\\.}:\([0-9][0-9]*\).*/\1/p" "$WORK/$name.log" | tail -1)
  [ -n "$CPORT" ] || fail "no port in $name's log"
  CADDR="$host:$CPORT"
  log "$name on $CADDR"
}
# ntpfleetctl against the current controller, wherever it listens.
ctl() { safe "$CTL" --controller "$CADDR" --color never "$@"; }

# local_json NAME: agent NAME's SyncStatus (`ntpfleetctl peers --output json` through its
# control socket: state, frequency_ppm, offset, peers...).
local_json() { safe "$CTL" --control-socket "$SOCKS/$1.sock" --output json peers; }
# local_status NAME: agent NAME's whole LocalStatus (node, status, server_counters), by
# tests/faults/local_status.
local_status() { safe "$LOCAL_STATUS" "$SOCKS/$1.sock"; }
# local_is NAME EXPR [ARG...]: agent NAME's LocalStatus satisfies EXPR (see jcheck).
local_is() {
  local name="$1" json
  shift
  json=$(local_json "$name") || return 1
  jcheck "$@" <<<"$json"
}
# counter NAME KEY: agent NAME's server counter KEY (0 when absent: proto3 JSON omits zeros).
counter() { local_status "$1" | jget 'int(d.get("server_counters", {}).get(a[0], 0))' "$2"; }

# rss_kib PID: resident set size in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# faults_init CONTROLLER_PATH AGENT_PATH CTL_PATH
faults_init() {
  if [ "${FAULTS_NAMESPACE:-0}" = 1 ] && [ -z "${NTPFLEET_FAULTS_INSIDE:-}" ]; then
    [ "$(id -u)" = 0 ] || fail "$TEST_NAME needs root (network namespaces); it is tagged no-sandbox"
    local args=() a rc=0
    for a in "$@"; do args+=("$(abspath "$a")"); done
    export NTPFLEET_FAULTS_INSIDE=1
    # --kill-child: if unshare dies (bazel's timeout), the kernel kills everything inside.
    "${SAFE[@]}" unshare --net --pid --mount --fork --kill-child --mount-proc -- \
      bash "$0" "${args[@]}" || rc=$?
    exit "$rc"
  fi
  it_init "$@"
  TOOL="$HERE_FAULTS/ntp_tool.py"
  LOCAL_STATUS="$HERE_FAULTS/local_status"
  [ -x "$LOCAL_STATUS" ] || fail "no local_status binary at $LOCAL_STATUS"
  if [ -n "${NTPFLEET_FAULTS_INSIDE:-}" ]; then
    mount --make-rprivate /
    ip link set lo up
    log "in private network, PID and mount namespaces"
  fi
  command -v sqlite3 >/dev/null || fail "the sqlite3 command-line tool is needed (apt-get install sqlite3)"
}
