#!/usr/bin/env bash
# The demo fleet: a controller, one agent as the fleet's NTP server (its local clock at stratum
# 10, as at a site without internet) and 8 client agents whose clocks start seconds off and
# hundreds of ppm fast or slow — all on simulated clocks, speaking real NTP over loopback UDP and
# real gRPC. Watch the fleet's skew fall from seconds to microseconds; then one node's clock is
# knocked off and a forced resync brings it back. Everything speaks mutual TLS with certificates
# made at start (`ntpfleetctl certs`): each agent reports only as the node its certificate names,
# and what a person may do follows from the role in theirs. This machine's clock is never touched.
#
#   scripts/demo.sh               # the story, then a live dashboard until Ctrl-C
#   scripts/demo.sh --no-wait     # the story only, then stop (for scripts)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

wait_forever=1
[ "${1:-}" = "--no-wait" ] && wait_forever=0
[ -t 1 ] || wait_forever=0

# Never the machine's clock: every process below runs without CAP_SYS_TIME.
if [ "$(id -u)" = 0 ] && [ -z "${NTPFLEET_NO_SYS_TIME:-}" ]; then
  NTPFLEET_NO_SYS_TIME=1 exec setpriv --inh-caps=-sys_time --bounding-set=-sys_time -- "$0" "$@"
fi

bash scripts/setup.sh
echo "== building ntpfleet (first build takes a few minutes on 2 cores)"
bazel build -c opt //agent:ntpfleet-agent //controller:ntpfleet-controller //ctl:ntpfleetctl
BIN=$(bazel info -c opt bazel-bin 2>/dev/null)
AGENT=$BIN/agent/ntpfleet-agent
CONTROLLER=$BIN/controller/ntpfleet-controller
CTL=$BIN/ctl/ntpfleetctl

DIR=$(mktemp -d "${TMPDIR:-/tmp}/ntpfleet-demo.XXXXXX")
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "== stopping the demo fleet"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "logs and the controller's database were in $DIR (removed)"
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until FILE has a line matching REGEX and prints the first capture group.
await_log() {
  local file=$1 regex=$2
  for _ in $(seq 1 200); do
    if [ -f "$file" ] && grep -qE "$regex" "$file"; then
      sed -nE "s#.*$regex.*#\1#p" "$file" | head -1
      return 0
    fi
    sleep 0.05
  done
  echo "demo: timed out waiting for '$regex' in $file:" >&2
  cat "$file" >&2
  return 1
}

echo "== making the fleet's certificates (ntpfleetctl certs): a CA, the controller, 9 nodes, 2 people"
TLS=$DIR/tls
"$CTL" certs init --dir "$TLS" >/dev/null
"$CTL" certs issue --dir "$TLS" --controller 127.0.0.1,localhost >/dev/null
for node in ntp-server $(printf "node-%02d " $(seq 1 8)); do
  "$CTL" certs issue --dir "$TLS" --node "$node" >/dev/null
done
"$CTL" certs issue --dir "$TLS" --user alice --role operator >/dev/null
"$CTL" certs issue --dir "$TLS" --user root-admin --role admin >/dev/null
echo "   $TLS: ca.pem, 127.0.0.1.pem (controller), ntp-server.pem node-01.pem ... (nodes),"
echo "   alice.pem (operator), root-admin.pem (admin)"
# ntpfleetctl reads its certificate from the environment: alice, an operator, unless said otherwise.
export NTPFLEET_TLS_CA=$TLS/ca.pem NTPFLEET_TLS_CERT=$TLS/alice.pem NTPFLEET_TLS_KEY=$TLS/alice.key
as_admin() { NTPFLEET_TLS_CERT=$TLS/root-admin.pem NTPFLEET_TLS_KEY=$TLS/root-admin.key "$@"; }
# An agent's TLS lines: its own certificate and the fleet's CA.
tls_conf() {
  printf 'tls_cert %s/%s.pem\ntls_key %s/%s.key\ntls_ca %s/ca.pem\n' "$TLS" "$1" "$TLS" "$1" "$TLS"
}

echo "== starting the controller (mutual TLS)"
"$CONTROLLER" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --db "$DIR/controller.db" \
  --tls-cert "$TLS/127.0.0.1.pem" --tls-key "$TLS/127.0.0.1.key" --tls-ca "$TLS/ca.pem" \
  --resync-min-interval 1s >"$DIR/controller.log" 2>&1 &
PIDS+=($!)
CPORT=$(await_log "$DIR/controller.log" 'listening on 127\.0\.0\.1:([0-9]+)')
MPORT=$(await_log "$DIR/controller.log" 'metrics on http://127\.0\.0\.1:([0-9]+)')
export NTPFLEET_CONTROLLER=127.0.0.1:$CPORT

echo "== starting the fleet's NTP server (local clock, stratum 10)"
cat >"$DIR/server.conf" <<CONF
# The designated NTP server of a site without internet: its own clock at stratum 10.
server 127.127.1.0
fudge 127.127.1.0 stratum 10
controller 127.0.0.1:$CPORT
node_name ntp-server
label role=server
$(tls_conf ntp-server)
CONF
"$AGENT" --config "$DIR/server.conf" --clock=sim --port 0 --listen 127.0.0.1 \
  --control-socket "$DIR/ntp-server.sock" >"$DIR/ntp-server.log" 2>&1 &
PIDS+=($!)
NTPPORT=$(await_log "$DIR/ntp-server.log" 'serving NTP on UDP port ([0-9]+)')

echo "== starting 8 nodes whose clocks are seconds off and hundreds of ppm fast or slow"
offsets=(2.7s -1.9s 850ms -3.2s 1.4s -600ms 4.1s -2.4s)
freqs=(310 -250 180 -420 90 -330 460 -150)
for i in $(seq 1 8); do
  node=$(printf "node-%02d" "$i")
  cat >"$DIR/$node.conf" <<CONF
server 127.0.0.1:$NTPPORT iburst minpoll 4 maxpoll 6
controller 127.0.0.1:$CPORT
node_name $node
label rack=r$(( (i - 1) / 4 + 1 ))
clockbound_shm $DIR/$node.clockbound
$(tls_conf "$node")
CONF
  "$AGENT" --config "$DIR/$node.conf" --clock=sim --port 0 --listen 127.0.0.1 \
    --sim-offset="${offsets[i-1]}" --sim-freq-ppm="${freqs[i-1]}" \
    --control-socket "$DIR/$node.sock" >"$DIR/$node.log" 2>&1 &
  PIDS+=($!)
  printf "   %s: clock %+s off, %+d ppm\n" "$node" "${offsets[i-1]}" "${freqs[i-1]}"
done

skew_line() { "$CTL" status 2>/dev/null | head -1; }

echo
echo "== the fleet converging (ntpfleetctl status, first line, every half second)"
echo "   (a node seconds off steps at its first reply; what remains is slewed away, at most 500 ppm)"
start=$(date +%s.%N)
for _ in $(seq 1 40); do
  line=$(skew_line || true)
  printf "  t=%4.1fs  %s\n" "$(echo "$(date +%s.%N) - $start" | bc)" "${line:-(waiting for reports)}"
  sleep 0.5
done
echo
"$CTL" status
echo
echo "== knocking node-05's clock 800 ms off (as if someone ran date -s on it)"
"$CTL" --control-socket "$DIR/node-05.sock" sim-step -- 800ms
echo
echo "== ntpfleetctl resync node-05 --step, as alice (operator): measured, but 800 ms is beyond"
echo "   the 128 ms an operator may step, so node-05's agent refuses and says why"
"$CTL" resync node-05 --step || true
echo
echo "== the same with --force, as root-admin (admin): measure at once and correct, nothing to stop"
sleep 1.2  # one resync per node per --resync-min-interval (1 s here; 5 s by default)
as_admin "$CTL" resync node-05 --step --force || true
sleep 2
echo
echo "== ntpfleetctl audit: who asked what (the identity in their certificate, not a claim)"
"$CTL" audit
echo
"$CTL" status
echo
echo "The fleet's peers as ntpq -p shows them (ntpfleetctl peers node-01):"
"$CTL" peers node-01
echo
echo "== what an application on node-01 reads: the ClockBound segment its agent writes"
echo "   (ntpfleetctl now; ClockBound's client libraries read the same file, docs/CLOCKBOUND.md)"
"$CTL" now --shm "$DIR/node-01.clockbound" || true
echo
echo "== the fleet checks itself: every node measures 3 others' NTP servers once per 64 s, and the"
echo "   controller solves for each clock (ntpfleetctl crosscheck, docs/CROSSCHECK.md); probes taken"
echo "   before a node settled are replaced at its next round: waiting for a solve of all 9"
mesh_done() {
  "$CTL" crosscheck --output json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if sum("measured_offset" in r.get("crosscheck", {}) for r in d.get("nodes", [])) == 9
         else 1)'
}
for _ in $(seq 1 120); do mesh_done && break; sleep 1; done
"$CTL" crosscheck || true
echo
echo "Prometheus metrics: curl http://127.0.0.1:$MPORT/metrics"
echo "ntpfleetctl here: NTPFLEET_CONTROLLER=$NTPFLEET_CONTROLLER NTPFLEET_TLS_CA=$NTPFLEET_TLS_CA"
echo "  NTPFLEET_TLS_CERT=$NTPFLEET_TLS_CERT NTPFLEET_TLS_KEY=$NTPFLEET_TLS_KEY"
if [ "$wait_forever" = 1 ]; then
  echo "Live dashboard follows; Ctrl-C stops the whole demo fleet."
  sleep 3
  "$CTL" watch || true
fi
