#!/bin/bash
# A live agent's ClockBound segment, read by protocol_reader.py (written from aws/clock-bound's
# PROTOCOL.md) and by `ntpfleetctl now`: two agents on simulated clocks on loopback (port 0), the
# client writing its segment to a temporary directory (--clockbound-shm).
#   1. synchronised: status 1, a bound under 100 ms, and [earliest, latest] holds true time (the
#      simulated clocks' true time runs with CLOCK_REALTIME here; a reader that ignored the
#      simulated-clock extension, or a writer whose bound left out the offset, would miss it
#      after the step below);
#   2. `ntpfleetctl sim-step -- 5s` with the server paused (SIGSTOP): when it returns the segment
#      already has the bound grown by the 5 s step (a stale bound of a few ms would exclude true
#      time); with the server back the agent measures again, steps back, and the bound comes back
#      under 100 ms;
#   3. SIGTERM: status unknown at once; a restart reuses the same file (same inode);
#   4. SIGKILL: the last status stays until ClockBound's 5 s grace and --clockbound-validity
#      (3 s) pass, then unknown; `ntpfleetctl now` exits 1 naming the cause.
# No sleeps for luck: every wait polls with a deadline (60 s: the quiet time is ~2 s, so >= 4x).
set -uo pipefail
AGENT=$1
CTL=$2
READER=$3
T=${TEST_TMPDIR:-$(mktemp -d)}
S=$(mktemp -d /tmp/ntpfleet-cb.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$S"' EXIT
fail() { echo "FAIL: $*"; for f in "$T"/*.log; do echo "== $f"; tail -30 "$f"; done; exit 1; }
SHM="$T/run/clockbound/shm0"

# read_segment: the segment as protocol_reader.py sees it, in $T/seg.json.
read_segment() { python3 "$READER" "$SHM" >"$T/seg.json" 2>"$T/reader.err"; }
# [earliest, latest] holds true time (CLOCK_REALTIME here), read at the same instant up to the
# reader's pair_uncertainty_ns (microseconds: see protocol_reader.py).
HOLDS_TRUTH='f["earliest_ns"] - f["pair_uncertainty_ns"] <= f["realtime_ns"] <= f["latest_ns"] + f["pair_uncertainty_ns"]'
# check PYTHON-EXPRESSION over f (the JSON): true or false.
check() { python3 -c "import json,sys; f=json.load(open('$T/seg.json')); sys.exit(0 if ($1) else 1)"; }
# wait_for EXPR WHAT [SECONDS]
wait_for() {
  local limit=${3:-60} start=$SECONDS
  until read_segment && check "$1"; do
    ((SECONDS - start >= limit)) && { cat "$T/seg.json" "$T/reader.err"; fail "timed out: $2"; }
    sleep 0.05
  done
  echo "ok after $((SECONDS - start))s (limit ${limit}s): $2"
}
await_log() {
  local start=$SECONDS
  until grep -qE "$2" "$1" 2>/dev/null; do
    ((SECONDS - start >= 60)) && fail "timed out waiting for '$2' in $1"
    sleep 0.05
  done
  sed -nE "s#.*$2.*#\1#p" "$1" | head -1
}

cat >"$T/server.conf" <<CONF
server 127.127.1.0
fudge 127.127.1.0 stratum 10
CONF
"$AGENT" --config "$T/server.conf" --clock=sim --sim-wander=0 --listen 127.0.0.1:0 \
  --control-socket "" >"$T/server.log" 2>&1 &
SERVER=$!
PIDS+=($SERVER)
SPORT=$(await_log "$T/server.log" 'serving NTP on UDP port ([0-9]+)')
grep -q "ClockBound segment" "$T/server.log" && fail "a --clock=sim agent wrote a segment unasked"

cat >"$T/client.conf" <<CONF
server 127.0.0.1:$SPORT iburst minpoll 4
CONF
start_client() {
  "$AGENT" --config "$T/client.conf" --clock=sim --sim-offset=40ms --sim-wander=0 \
    --listen 127.0.0.1:0 --control-socket "$S/client.sock" --clockbound-shm "$SHM" \
    --clockbound-validity=3s >>"$T/client.log" 2>&1 &
  CLIENT=$!
  PIDS+=($CLIENT)
}
start_client

echo "== 1. synchronised"
wait_for 'f["clock_status"] == 1 and f["bound_ns"] < 100e6' "status synchronized, bound < 100 ms"
cat "$T/seg.json"
check 'f["version"] == 2 and f["segment_size"] >= 80 and f["generation"] % 2 == 0' \
  || fail "header"
check 'f["simulated"] and f["max_drift_ppb"] >= 15000' || fail "extension or max drift"
check "$HOLDS_TRUTH" \
  || fail "[earliest, latest] does not hold true time"
before=$(date +%s%N)
"$CTL" now --shm "$SHM" --output json >"$T/now.json" || fail "ntpfleetctl now exit $?"
after=$(date +%s%N)
cat "$T/now.json"
python3 - "$T/now.json" "$T/seg.json" "$before" "$after" <<'PY' || fail "ntpfleetctl now disagrees with the protocol reader"
import json, sys
n, f = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
before, after = int(sys.argv[3]), int(sys.argv[4])
assert n["status"] == "synchronized" and n["simulated"], n
# True time (CLOCK_REALTIME here) when ntpfleetctl read is inside its interval.
assert n["earliest_unix_ns"] <= after and n["latest_unix_ns"] >= before, (n, before, after)
# Read apart in time: the bounds agree up to what the agent rewrote since.
assert abs(n["bound_ns"] - f["bound_ns"]) < 10e6, (n, f)
PY
"$CTL" now --shm "$SHM" | grep -q "^status    synchronized" || fail "ntpfleetctl now (table)"

echo "== 2. a stepped clock"
# The server paused: the agent cannot measure again at once (on loopback it would within a
# millisecond), so what the segment says about the step itself is seen.
kill -STOP "$SERVER"
"$CTL" --control-socket "$S/client.sock" sim-step -- 5s >/dev/null || fail "sim-step"
read_segment || fail "read after step"
cat "$T/seg.json"
check 'f["bound_ns"] >= 5e9' || fail "the step is not in the bound when sim-step returns"
check "$HOLDS_TRUTH" \
  || fail "after the step, [earliest, latest] does not hold true time"
grep -q "not by this agent" "$T/client.log" || fail "the step was not logged"
kill -CONT "$SERVER"
wait_for 'f["clock_status"] == 1 and f["bound_ns"] < 100e6' "measured again: bound < 100 ms"
check "$HOLDS_TRUTH" || fail "after re-measuring"

echo "== 3. SIGTERM: unknown at once; a restart reuses the file"
inode=$(stat -c %i "$SHM")
kill -TERM "$CLIENT"
wait "$CLIENT"
read_segment || fail "read after SIGTERM"
check 'f["clock_status"] == 0' || { cat "$T/seg.json"; fail "status not unknown after SIGTERM"; }
"$CTL" now --shm "$SHM" >"$T/now.out" 2>&1 && fail "ntpfleetctl now exit 0 on unknown"
grep -q "status is unknown" "$T/now.out" || { cat "$T/now.out"; fail "ntpfleetctl now message"; }
start_client
wait_for 'f["clock_status"] == 1' "synchronised again after the restart"
[ "$(stat -c %i "$SHM")" = "$inode" ] || fail "the restarted agent replaced the segment"

echo "== 4. SIGKILL: unknown once void_after (and the 5 s grace) pass"
kill -KILL "$CLIENT"
wait "$CLIENT" 2>/dev/null
read_segment || fail "read after SIGKILL"
check 'f["clock_status"] == 1 and not f["void"]' || fail "status right after SIGKILL"
"$CTL" now --shm "$SHM" >/dev/null || fail "ntpfleetctl now within the grace"
wait_for 'f["status"] == 0 and f["void"]' "void after SIGKILL" 30
check 'f["as_of_age_ns"] >= 3e9' || fail "void before --clockbound-validity"
# ntpfleetctl now (ClockBound's client rules: the 5 s grace, then free running until void).
start=$SECONDS
until ! "$CTL" now --shm "$SHM" >"$T/now.out" 2>&1; do
  ((SECONDS - start >= 30)) && fail "ntpfleetctl now never reported the void segment"
  sleep 0.05
done
grep -q "is void" "$T/now.out" || { cat "$T/now.out"; fail "ntpfleetctl now: void message"; }
echo PASS
