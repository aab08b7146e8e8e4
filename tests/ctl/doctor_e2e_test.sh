#!/usr/bin/env bash
# `ntpfleetctl doctor` against real processes on loopback: the seed's two classic failures and
# the other things doctor must tell apart.
#   (a) "the NTP socket is in use": a process named ntpd holds the agent's UDP port -> FAIL
#       naming ntpd and its pid (and the agent, started on that config, fails the same way).
#   (b) "no server suitable for synchronization found": the only upstream is an agent with no
#       source and no local clock (it answers at stratum 16) -> FAIL "server answers but is
#       itself unsynchronised", not "no reply"; and the client agent's own reason beside it.
#   (c) a server whose `restrict` refuses this node (noserve): dropped without a word (or, once
#       `noserve kod` answers KoD DENY, "refused by the server") -> FAIL, never "answers".
#   (d) a healthy client: the upstream, port and agent lines OK; --output json.
#   (e) the controller: half TLS, unreachable, TLS with the wrong CA, a name not in the
#       controller's certificate, and the right setup.
#   (f) exit 1 for an unreadable config, 2 for a usage error.
# Everything on 127.0.0.1 with kernel-chosen ports; every process without CAP_SYS_TIME; agents
# on simulated clocks. Host-wide checks (time daemons, kernel clock) depend on the machine, so
# the test asserts on the lines it controls, not on a clean bill of health.
#
# Usage: doctor_e2e_test.sh AGENT CTL CONTROLLER
set -euo pipefail
export LC_ALL=C
WORK="${TEST_TMPDIR:-$(mktemp -d)}/doctor_e2e"
rm -rf "$WORK"
mkdir -p "$WORK/bin"
source "$(dirname "$0")/../testing/proc.sh"
abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
AGENT=$(abspath "$1")
CTL=$(abspath "$2")
CONTROLLER=$(abspath "$3")
SOCKS=$(mktemp -d /tmp/nfdoc.XXXXXX)
on_exit() {
  local rc=$?
  stop_all
  if [ "$rc" != 0 ]; then
    echo "===== doctor_e2e_test FAILED (exit $rc); logs follow ====="
    for f in "$WORK"/*.log "$WORK"/*.conf; do
      [ -f "$f" ] || continue
      echo "----- $(basename "$f")"
      tail -n 40 "$f"
    done
  fi
  rm -rf "$SOCKS"
  exit "$rc"
}
trap on_exit EXIT

# port_of NAME: the NTP port in NAME's log.
port_of() { sed -n 's/.*serving NTP on UDP port \([0-9][0-9]*\).*/\1/p' "$WORK/$1.log" | head -1; }
# start_ntp NAME BINARY CONFIG_TEXT [ARGS...]: an agent binary (perhaps under another name) on
# a free loopback port; sets PORT.
PORT=""
start_ntp() {
  local name="$1" bin="$2" config="$3"
  shift 3
  printf '%s\n' "$config" >"$WORK/$name.conf"
  start "$name" "$bin" --config "$WORK/$name.conf" --clock=sim --port 0 --listen 127.0.0.1 "$@"
  wait_until 60 "$name serves NTP" grep -q "serving NTP on UDP port" "$WORK/$name.log"
  PORT=$(port_of "$name")
  [ -n "$PORT" ] || fail "no NTP port in $name's log"
}
# doctor WANT_EXIT CONFIG_NAME [ARGS...]: runs doctor on $WORK/CONFIG_NAME.conf; must exit
# WANT_EXIT (`any`: 0 or 3, where a host-wide check may FAIL on its own); the report is in $OUT.
OUT=""
doctor() {
  local want="$1" conf="$2" rc=0
  shift 2
  OUT=$(safe "$CTL" doctor --config "$WORK/$conf.conf" "$@" 2>&1) || rc=$?
  printf '%s\n' "$OUT" >"$WORK/doctor-$conf.log"
  if [ "$want" = any ] && { [ "$rc" = 0 ] || [ "$rc" = 3 ]; }; then want="$rc"; fi
  [ "$rc" = "$want" ] || fail "doctor on $conf.conf exited $rc, expected $want:
$OUT"
  log "doctor on $conf.conf: exit $rc"
}
# has REGEX: a line of $OUT matches the extended REGEX.
has() { grep -Eq -- "$1" <<<"$OUT" || fail "no line matching /$1/ in:
$OUT"; }
hasnt() { ! grep -Eq -- "$1" <<<"$OUT" || fail "a line matches /$1/ in:
$OUT"; }

NONE="$SOCKS/none.sock" # no agent listens here
# peers_show SOCKET REGEX: `ntpfleetctl peers` of the agent on SOCKET has a line matching REGEX.
peers_show() { safe "$CTL" peers --control-socket "$1" | grep -Eq -- "$2"; }

# --- (a) the NTP socket is in use: ntpd holds the port -------------------------------------------
# A real process whose name (/proc/PID/comm) is ntpd: the agent binary under that name.
ln -s "$AGENT" "$WORK/bin/ntpd"
start_ntp ntpd "$WORK/bin/ntpd" "server 127.127.1.0
fudge 127.127.1.0 stratum 10" --control-socket=
NTPD_PORT="$PORT"
NTPD_PID=$(pid_of ntpd)
[ "$(cat /proc/"$NTPD_PID"/comm)" = ntpd ] || fail "the stand-in is not named ntpd"
printf 'port %s\nserver 127.127.1.0\nfudge 127.127.1.0 stratum 10\n' "$NTPD_PORT" >"$WORK/busy.conf"
doctor 3 busy --control-socket "$NONE"
has "^FAIL  udp port: UDP port $NTPD_PORT \(from agent.conf\) is held by ntpd \(pid $NTPD_PID\)"
has "the NTP socket is in use"
has "^      fix: stop it and keep it stopped: `systemctl disable --now ntpd`"
has "^FAIL  time daemons: running: .*ntpd \(pid $NTPD_PID\)"
has "^WARN  agent: no ntpfleet-agent is running here"
# The agent on the same config refuses to start, naming the same process.
rc=0
safe "$AGENT" --config "$WORK/busy.conf" --clock=sim --listen 127.0.0.1 --control-socket= \
  >"$WORK/busy-agent.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "the agent started on a port ntpd holds (exit $rc)"
grep -q "UDP port $NTPD_PORT is in use by ntpd (pid $NTPD_PID)" "$WORK/busy-agent.log" ||
  fail "the agent did not name ntpd: $(cat "$WORK/busy-agent.log")"
stop ntpd

# --- (b) no server suitable: the only upstream is itself unsynchronised -------------------------
start_ntp lonely "$AGENT" "# no server, no local clock: it answers at stratum 16" --control-socket=
LONELY_PORT="$PORT"
start_ntp client_b "$AGENT" "server 127.0.0.1:$LONELY_PORT iburst minpoll 4" \
  --control-socket "$SOCKS/b.sock"
# The client agent's own reason first (its first replies come within the iburst).
wait_until 60 "client_b sees its upstream unsynchronised" \
  peers_show "$SOCKS/b.sock" "unsynchronised \(stratum 16"
doctor 3 client_b --control-socket "$SOCKS/b.sock"
has "^FAIL  upstream 127.0.0.1:$LONELY_PORT: server answers but is itself unsynchronised \(stratum 16, leap 3 alarm\).*no server suitable for synchronization found.*the agent: unsynchronised \(stratum 16"
has "^      fix: the server itself has no time source: give it upstreams .*server 127.127.1.0.*shows '\*'"
hasnt "^FAIL  upstream .*(no reply|unreachable)"
has "^OK    agent: pid $(pid_of client_b), unsynchronised, simulated clock"
has "^OK    udp port: UDP port [0-9]+ \(the running agent's\) is held by ntpfleet-agent \(pid $(pid_of client_b)\)"
# Without the agent (doctor's own query alone) the diagnosis is the same.
doctor 3 client_b --control-socket "$NONE"
has "^FAIL  upstream 127.0.0.1:$LONELY_PORT: server answers but is itself unsynchronised"

# --- (c) the server's restrict refuses this node ------------------------------------------------
start_ntp strict "$AGENT" "server 127.127.1.0
fudge 127.127.1.0 stratum 10
restrict default noserve" --control-socket=
printf 'server 127.0.0.1:%s iburst\n' "$PORT" >"$WORK/refused.conf"
doctor 3 refused --control-socket "$NONE"
has "^FAIL  upstream 127.0.0.1:$PORT: (no reply|refused by the server)"
hasnt "^(OK  |WARN)  upstream"
# Silent (not refused out loud): nothing tells a firewall from a dead server here.
if grep -q "^FAIL  upstream 127.0.0.1:$PORT: no reply" <<<"$OUT"; then
  has "^WARN  firewall: no reply from 127.0.0.1:$PORT, and nothing shows it answers anyone else"
fi

# --- (c2) a server whose own restrict refuses its own address -----------------------------------
# Silent by design, not a firewall: the running agent says so (the serve check on its control
# socket), so doctor needs no copy of the agent's access control.
start_ntp closed "$AGENT" "server 127.127.1.0
fudge 127.127.1.0 stratum 10
restrict default ignore" --control-socket "$SOCKS/closed.sock"
doctor any closed --control-socket "$SOCKS/closed.sock"
has "^OK    firewall: no sign of NTP being dropped: its restrict rules do not serve 127.0.0.1:$PORT"
stop closed

# --- (d) a healthy client, and JSON -------------------------------------------------------------
start_ntp server "$AGENT" "server 127.127.1.0
fudge 127.127.1.0 stratum 10" --control-socket "$SOCKS/server.sock"
SERVER_PORT="$PORT"
start_ntp client_d "$AGENT" "server 127.0.0.1:$SERVER_PORT iburst minpoll 4
driftfile $WORK/drift/client_d.drift" --control-socket "$SOCKS/d.sock"
mkdir -p "$WORK/drift"
wait_until 60 "client_d synchronised" peers_show "$SOCKS/d.sock" '^\*'
doctor any client_d --control-socket "$SOCKS/d.sock"
has "^OK    upstream 127.0.0.1:$SERVER_PORT: answers: stratum 10, .*offset .*delay .*the agent: system peer \(\*\)"
has "^OK    agent: pid $(pid_of client_d), (syncing|synchronised), simulated clock"
has "^OK    drift file: $WORK/drift is writable by root"
has "^OK    firewall: no sign of NTP being dropped: this agent answers on 127.0.0.1:[0-9]+"
has "^(OK  |WARN)  kernel clock: (un)?synchronised.*maxerror .*frequency .*11-minute RTC mode (on|off)"
# The server node itself: its only upstream is its local clock.
printf 'server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n' >"$WORK/server_only.conf"
doctor any server_only --control-socket "$SOCKS/server.sock"
has "^OK    upstreams: none: this node serves its local clock at stratum 10"
doctor 3 client_b --control-socket "$SOCKS/b.sock" --output json
python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["exit_code"] == 3, d["exit_code"]
up = [c for c in d["checks"] if c["check"].startswith("upstream ")]
assert len(up) == 1 and up[0]["level"] == "FAIL", up
assert "itself unsynchronised" in up[0]["found"] and up[0]["fix"], up
' <<<"$OUT" || fail "bad JSON report: $OUT"

# --- (e) the controller --------------------------------------------------------------------------
safe "$CTL" certs init --dir "$WORK/ca" >/dev/null
safe "$CTL" certs issue --dir "$WORK/ca" --controller 127.0.0.1 >/dev/null
safe "$CTL" certs issue --dir "$WORK/ca" --node n1 >/dev/null
safe "$CTL" certs init --dir "$WORK/other_ca" >/dev/null
start controller "$CONTROLLER" --listen 127.0.0.1:0 --db "$WORK/controller.db" \
  --metrics-listen 127.0.0.1:0 --tls-cert "$WORK/ca/127.0.0.1.pem" \
  --tls-key "$WORK/ca/127.0.0.1.key" --tls-ca "$WORK/ca/ca.pem"
wait_until 60 "the controller listens" grep -q "listening on 127.0.0.1:" "$WORK/controller.log"
CPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/controller.log" | tail -1)
base="server 127.127.1.0
fudge 127.127.1.0 stratum 10"
tls() { printf 'tls_cert %s/ca/n1.pem\ntls_key %s/ca/n1.key\ntls_ca %s\n' "$WORK" "$WORK" "$1"; }

printf '%s\ncontroller 127.0.0.1:%s\ntls_cert %s/ca/n1.pem\n' "$base" "$CPORT" "$WORK" >"$WORK/half.conf"
doctor 3 half --control-socket "$NONE"
has "^FAIL  controller: half-configured TLS: .*tls_cert without tls_key and tls_ca"
has "^FAIL  config: .*mutual TLS needs"

printf '%s\ncontroller 127.0.0.1:%s\n%s\n' "$base" "$CPORT" "$(tls "$WORK/ca/ca.pem")" >"$WORK/tls_ok.conf"
doctor any tls_ok --control-socket "$NONE"
has "^OK    controller: reachable at 127.0.0.1:$CPORT, mutual TLS verified"

printf '%s\ncontroller 127.0.0.1:%s\n%s\n' "$base" "$CPORT" "$(tls "$WORK/other_ca/ca.pem")" >"$WORK/wrong_ca.conf"
doctor 3 wrong_ca --control-socket "$NONE"
has "^FAIL  controller: TLS handshake with 127.0.0.1:$CPORT failed: .*not signed by $WORK/other_ca/ca.pem \(wrong CA\)"

printf '%s\ncontroller localhost:%s\n%s\n' "$base" "$CPORT" "$(tls "$WORK/ca/ca.pem")" >"$WORK/wrong_name.conf"
doctor 3 wrong_name --control-socket "$NONE"
has "^FAIL  controller: TLS handshake with localhost:$CPORT failed: .*dialled localhost, the certificate is for 127.0.0.1"

printf '%s\ncontroller 127.0.0.1:%s\n' "$base" "$CPORT" >"$WORK/plain_to_tls.conf"
doctor 3 plain_to_tls --control-socket "$NONE"
has "^FAIL  controller: 127.0.0.1:$CPORT: .*requires TLS"

stop controller
doctor 3 tls_ok --control-socket "$NONE"
has "^FAIL  controller: cannot reach 127.0.0.1:$CPORT: .*connection refused"

# --- (f) doctor itself cannot run; usage --------------------------------------------------------
rc=0
OUT=$(safe "$CTL" doctor --config "$WORK/does-not-exist.conf" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "unreadable config: exit $rc, expected 1: $OUT"
has "cannot read the agent's configuration"
rc=0
safe "$CTL" doctor extra >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "doctor with an argument: exit $rc, expected 2"
OUT=$(safe "$CTL" doctor --help)
has "^  udp port "
has "^Exit status: 0 nothing FAILed"

log "PASS"
