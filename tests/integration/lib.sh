# Shared helpers for the multi-process integration tests (sourced by each *_test.sh).
#
# A test calls `it_init "$@"` with the paths of ntpfleet-controller, ntpfleet-agent and
# ntpfleetctl (the BUILD passes them). That sets CONTROLLER, AGENT, CTL, WORK (configs, logs and
# the controller's database, under $TEST_TMPDIR) and SOCKS (a short directory under /tmp for
# the agents' control sockets: a unix socket path must fit in 108 bytes, and $TEST_TMPDIR is
# longer than that), and a trap that stops every process the test started and, if the test
# failed, prints their logs.
#
# Everything runs on loopback with ports picked by the kernel: the controller listens on
# 127.0.0.1:0 and the test reads the port from its log; agents serve NTP on --port 0 and the
# test reads theirs the same way. Every program is started without CAP_SYS_TIME, and every
# agent runs on a simulated clock (--clock=sim): nothing here can move this machine's clock.

set -euo pipefail
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export LC_ALL=C

TEST_NAME="$(basename "$0" .sh)"

source "$(dirname "${BASH_SOURCE[0]}")/../testing/proc.sh"

# --- processes --------------------------------------------------------------------------------
# signal NAME SIG: sends SIG to NAME's process, by pid.
signal() {
  local pid
  pid=$(pid_of "$1")
  log "kill -$2 $1 (pid $pid)"
  kill "-$2" "$pid"
}
# reap NAME: waits (up to 5 s) for NAME's process to be gone.
reap() {
  local pid i
  pid=$(pid_of "$1")
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "$1 (pid $pid) did not exit"
  wait "$pid" 2>/dev/null || true
}
# expect_exit CODE CMD...: runs CMD, which must exit with CODE; its output is in $OUT.
OUT=""
expect_exit() {
  local want="$1" rc=0
  shift
  OUT=$("$@" 2>&1) || rc=$?
  if [ "$rc" != "$want" ]; then
    fail "expected exit $want, got $rc from: $* -- output:
$OUT"
  fi
  log "ok (exit $rc): ${*#"$CTL"}"
}

# --- JSON (ntpfleetctl --output json) ---------------------------------------------------------
# jcheck EXPR [ARG...]: the JSON on stdin is `d`, the ARGs are the list `a`; exits 0 when the
# Python expression EXPR is true. Helpers in EXPR: dur("0.000120s") -> seconds; named(d, "client-1") -> that name's nodes;
# conn(n) / state(n) -> a node's connection / sync state without the enum prefix.
JSON_HELPERS='
import json, sys
def dur(s): return float(s[:-1]) if s else 0.0
def named(d, name): return [n for n in d.get("nodes", []) if n["name"] == name]
def conn(n): return n["connection"].replace("CONNECTION_STATE_", "")
def state(n): return n.get("status", {}).get("state", "").replace("SYNC_STATE_", "")
a = sys.argv[2:]
d = json.load(sys.stdin)
'
jcheck() { python3 -c "$JSON_HELPERS"'
sys.exit(0 if eval("(" + sys.argv[1] + "\n)") else 1)' "$@"; }
# jget EXPR [ARG...]: prints the value of EXPR (same helpers).
jget() { python3 -c "$JSON_HELPERS"'
print(eval("(" + sys.argv[1] + "\n)"))' "$@"; }

# --- the fleet --------------------------------------------------------------------------------
# ctl ARGS...: ntpfleetctl against the current controller.
ctl() { safe "$CTL" --controller "127.0.0.1:$CPORT" --color never "$@"; }
status_json() { ctl status --output json; }
# fleet_is EXPR [ARG...]: `ntpfleetctl status --output json` satisfies EXPR (see jcheck).
fleet_is() {
  local json
  json=$(status_json) || return 1
  jcheck "$@" <<<"$json"
}

# start_controller NAME [LISTEN]: the controller on LISTEN (default 127.0.0.1:0) with its
# database at $DB and the flags in CONTROLLER_FLAGS; sets CPORT to the port it listens on.
# The tests resync the same nodes in quick succession: no per-node interval (the rate limit
# itself is tested in tests/controller/service_test).
DB=""
CPORT=""
CONTROLLER_FLAGS=(--resync-min-interval=0s)
start_controller() {
  local name="$1" listen="${2:-127.0.0.1:0}"
  start "$name" "$CONTROLLER" --listen "$listen" --db "$DB" --metrics-listen 127.0.0.1:0 \
    "${CONTROLLER_FLAGS[@]}"
  wait_until 15 "$name listens" grep -q "listening on 127.0.0.1:" "$WORK/$name.log"
  CPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/$name.log" | tail -1)
  [ -n "$CPORT" ] || fail "no port in $name's log"
  log "$name on 127.0.0.1:$CPORT"
}

# start_agent NAME CONFIG_TEXT ARGS...: an agent (simulated clock, NTP on a free loopback
# port, its own control socket) with that configuration; sets APORT to its NTP port.
APORT=""
start_agent() {
  local name="$1" config="$2"
  shift 2
  printf '%s\n' "$config" >"$WORK/$name.conf"
  : >"$WORK/$name.log"
  start "$name" "$AGENT" --config "$WORK/$name.conf" --clock=sim --port 0 --listen 127.0.0.1 \
    --control-socket "$SOCKS/$name.sock" "$@"
  wait_until 15 "$name serves NTP" grep -q "serving NTP on UDP port" "$WORK/$name.log"
  APORT=$(sed -n 's/.*serving NTP on UDP port \([0-9][0-9]*\).*/\1/p' "$WORK/$name.log" | head -1)
  [ -n "$APORT" ] && [ "$APORT" != 0 ] || fail "no NTP port in $name's log"
}

# start_server_agent: node "server", serving its local clock at stratum 10 from two server
# threads (SO_REUSEPORT), as a busy fleet server would; sets SPORT.
SPORT=""
start_server_agent() {
  start_agent server "# The fleet's designated NTP server: its own local clock.
server 127.127.1.0
fudge 127.127.1.0 stratum 10
server_threads 2
controller 127.0.0.1:$CPORT
node_name server
label role=server" --sim-offset=0
  SPORT="$APORT"
}

# start_client AGENT_NAME NODE_NAME SIM_OFFSET [LABEL]: a client of the server agent.
start_client() {
  local name="$1" node="$2" offset="$3" label="${4:-rack=a}"
  start_agent "$name" "# A client of the fleet's server agent.
server 127.0.0.1:$SPORT iburst minpoll 4
controller 127.0.0.1:$CPORT
node_name $node
label $label" --sim-offset="$offset" --sim-freq-ppm=3
}

# All N nodes connected, each synchronised (clients) or on its local clock (the server), and
# fleet skew below 1 ms.
CONVERGED='len(d["nodes"]) == int(a[0]) and d["connected_count"] == int(a[0]) and all(conn(n) == "CONNECTED" and state(n) in ("SYNCHRONISED", "LOCAL_CLOCK") and "deviation" in n for n in d["nodes"]) and dur(d["skew"]) < 0.001'
converged() { fleet_is "$CONVERGED" "$1"; }

# --- setup ------------------------------------------------------------------------------------
on_exit() {
  local rc=$?
  stop_all
  # Under --config=asan a daemon's sanitizer report fails the test, even when
  # what the test checked still held (the report is in the daemon's log).
  if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error: " "$WORK"/*.log 2>/dev/null; then
    echo "FAIL: a sanitizer reported an error in the logs above"
    rc=1
  fi
  if [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
    cp "$WORK"/*.log "$WORK"/*.conf "$TEST_UNDECLARED_OUTPUTS_DIR"/ 2>/dev/null || true
  fi
  if [ "$rc" != 0 ]; then
    echo "===== $TEST_NAME FAILED (exit $rc); the logs of every process follow ====="
    local f
    for f in "$WORK"/*.log "$WORK"/*.conf; do
      [ -f "$f" ] || continue
      echo "----- $(basename "$f")"
      tail -n 80 "$f"
    done
  fi
  rm -rf "$SOCKS"
  exit "$rc"
}

abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }

# it_init CONTROLLER_PATH AGENT_PATH CTL_PATH
it_init() {
  [ "$#" = 3 ] || fail "usage: $0 CONTROLLER AGENT CTL"
  CONTROLLER=$(abspath "$1")
  AGENT=$(abspath "$2")
  CTL=$(abspath "$3")
  local b
  for b in "$CONTROLLER" "$AGENT" "$CTL"; do
    [ -x "$b" ] || fail "no binary at $b"
  done
  command -v python3 >/dev/null || fail "python3 is needed to read --output json"
  WORK="${TEST_TMPDIR:-$(mktemp -d)}/$TEST_NAME"
  rm -rf "$WORK"
  mkdir -p "$WORK"
  SOCKS=$(mktemp -d /tmp/nfit.XXXXXX)
  DB="$WORK/controller.db"
  trap on_exit EXIT
  trap 'exit 143' TERM INT
  log "$TEST_NAME: work dir $WORK, sockets in $SOCKS"
}
