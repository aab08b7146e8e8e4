#!/bin/bash
# ntpfleet-controller as a user meets it (issue #15, items 8, 9 and 14): listen addresses checked
# before anything starts, naming the form with an example (exit 2), "in use" only when the port is;
# no line in gRPC's own format on stderr; a second controller on the same --db refused, naming the
# first's pid (exit 1); negative durations refused (exit 2). Loopback only, port 0.
set -uo pipefail
CONTROLLER=$1
T=${TEST_TMPDIR:-$(mktemp -d)}
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# await FILE REGEX [SECONDS]: waits until REGEX appears in FILE (polling every 0.05 s, up to
# SECONDS, 60 by default: a controller starts in ~0.05 s on a quiet machine), prints the first
# capture group.
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
  sed -nE "s#.*$2.*#\1#p" "$1" | head -1
}

# No line of stderr may be in gRPC's own format ("E1204 23:21:37.394923130 13497 file.cc:1045]").
no_raw_grpc_lines() {  # FILE
  if grep -qE '^[DIE][0-9]{4} [0-9:.]+ +[0-9]+ [^ ]+:[0-9]+\]' "$1"; then
    cat "$1"
    fail "a line in gRPC's own format in $1"
  fi
}

# run_controller OUT EXPECTED-EXIT EXPECTED-TEXT ARGS...: runs it to its exit (it must exit by
# itself: a check that lets it start would leave it running, so it gets 30 s at most).
run_controller() {
  local out=$1 want_rc=$2 want=$3
  shift 3
  timeout 30 "$CONTROLLER" --metrics-listen "" "$@" >"$out" 2>&1
  local rc=$?
  cat "$out"
  [ "$rc" = "$want_rc" ] || fail "$*: exit code $rc, want $want_rc"
  grep -qF -- "$want" "$out" || fail "$*: no '$want'"
  grep -q "port in use?" "$out" && fail "$*: still guesses 'port in use?'"
  no_raw_grpc_lines "$out"
}

FORM="--listen takes HOST:PORT or [IPV6]:PORT of this machine, e.g. 0.0.0.0:7123 (every IPv4 address), [::]:7123 (every address) or 127.0.0.1:7123 (this machine only); port 0 picks a free port"
MFORM="--metrics-listen takes IPV4:PORT of this machine, e.g. 0.0.0.0:7124 (every IPv4 address) or 127.0.0.1:7124 (this machine only)"

echo "== --listen without a port: usage error naming the form, with examples"
run_controller "$T/banana.out" 2 "--listen: 'banana' has no port; write HOST:PORT ($FORM)" \
  --db "$T/a.db" --listen banana

echo "== --listen on an address this machine does not have: usage, not 'port in use?'"
# 192.0.2.1 is TEST-NET-1 (RFC 5737): never assigned, nothing is sent (bind only).
run_controller "$T/notours.out" 2 \
  "--listen 192.0.2.1:7123: '192.0.2.1' is not an address of this machine (Cannot assign requested address); $FORM" \
  --db "$T/a.db" --listen 192.0.2.1:7123 --insecure
[ -e "$T/a.db" ] && fail "the database was opened before the listen address was checked"

echo "== --metrics-listen: checked before gRPC starts; an IPv4 address only"
run_controller "$T/mbanana.out" 2 "--metrics-listen banana:0: 'banana' is not an IPv4 address; $MFORM" \
  --db "$T/a.db" --listen 127.0.0.1:0 --metrics-listen banana:0
grep -q "listening on" "$T/mbanana.out" && fail "gRPC started before --metrics-listen was checked"
run_controller "$T/mnoport.out" 2 "--metrics-listen: 'banana' has no port; write HOST:PORT ($MFORM" \
  --db "$T/a.db" --listen 127.0.0.1:0 --metrics-listen banana

echo "== negative durations are refused"
run_controller "$T/skew.out" 2 "--skew-threshold -1ms: must be 0 or more, e.g. --skew-threshold=1ms" \
  --db "$T/a.db" --listen 127.0.0.1:0 --skew-threshold=-1ms
run_controller "$T/step.out" 2 "--operator-max-step -5ms: must be 0 or more" \
  --db "$T/a.db" --listen 127.0.0.1:0 --operator-max-step=-5ms

echo "== flags Abseil would refuse with exit 1 are usage errors (exit 2) naming the flag"
run_controller "$T/unknown.out" 2 \
  "ntpfleet-controller: unknown flag --skew-treshold; did you mean --skew-threshold? (see ntpfleet-controller --help)" \
  --db "$T/a.db" --listen 127.0.0.1:0 --skew-treshold=1ms
run_controller "$T/insecure.out" 2 "--insecure=maybe: not a value this flag takes, e.g. --insecure=true" \
  --db "$T/a.db" --listen 127.0.0.1:0 --insecure=maybe

echo "== a first controller on a.db (port 0, metrics on port 0)"
"$CONTROLLER" --db "$T/a.db" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  >"$T/first.out" 2>&1 &
FIRST=$!
PIDS+=("$FIRST")
PORT=$(await "$T/first.out" 'listening on 127\.0\.0\.1:([0-9]+)') || fail "the first did not start"
MPORT=$(await "$T/first.out" 'metrics on http://127\.0\.0\.1:([0-9]+)/') || fail "no metrics"
echo "first: pid $FIRST, gRPC port $PORT, metrics port $MPORT"

echo "== a second on the same --db: refused at start, naming the first's pid, exit 1"
run_controller "$T/second.out" 1 \
  "database $T/a.db is in use by ntpfleet-controller pid $FIRST (lock file $T/a.db.lock); stop it or use another --db" \
  --db "$T/a.db" --listen 127.0.0.1:0
grep -q "listening on" "$T/second.out" && fail "the second started serving"

echo "== a second on the first's gRPC port (another --db): 'in use', exit 1"
run_controller "$T/port.out" 1 \
  "--listen 127.0.0.1:$PORT: TCP port $PORT is in use (another ntpfleet-controller? \`ss -ltnp 'sport = :$PORT'\` shows who holds it); stop it or choose another port with --listen" \
  --db "$T/b.db" --listen "127.0.0.1:$PORT"
run_controller "$T/mport.out" 1 "--metrics-listen 127.0.0.1:$MPORT: TCP port $MPORT is in use" \
  --db "$T/b.db" --listen 127.0.0.1:0 --metrics-listen "127.0.0.1:$MPORT"

echo "== the lock goes with the process: after the first stops (even by SIGKILL), a.db is free"
kill -KILL "$FIRST"
wait "$FIRST" 2>/dev/null
"$CONTROLLER" --db "$T/a.db" --listen 127.0.0.1:0 --metrics-listen "" >"$T/third.out" 2>&1 &
THIRD=$!
PIDS+=("$THIRD")
await "$T/third.out" 'listening on 127\.0\.0\.1:([0-9]+)' >/dev/null || fail "a.db stayed locked"
grep -qx "$THIRD" "$T/a.db.lock" || fail "the lock file does not hold the new owner's pid"
kill -TERM "$THIRD"
wait "$THIRD"
rc=$?
[ "$rc" = 0 ] || fail "exit $rc after SIGTERM, want 0"
no_raw_grpc_lines "$T/third.out"
no_raw_grpc_lines "$T/first.out"

echo PASS
