#!/bin/bash
# Fault: the controller SIGKILLed with 4 agents reporting (issue #10 part 8), twice:
#   1. after a few resyncs: restarted at once on the same port and --db, every agent must be
#      CONNECTED again within 5 s of the restart (the restart = the new controller listening),
#      and the audit must hold exactly one resync_audit row per resync request (by request_id);
#   2. with a resync in flight (its only node SIGSTOPped first, so that it cannot answer before
#      the kill; the controller's default resync deadline is 10 s): the same, and the in-flight
#      request must have exactly one audit row too (issue #10 item 7: "the audit record of a
#      resync is on disk before the resync is sent").
# What a broken controller/agent shows here: an agent still DISCONNECTED 5 s after the restart
# (a reconnect backoff grown too long, or a reconnect that never happens); an audit row lost in
# the crash (a request_id with 0 rows) or written twice (2 rows, e.g. replayed after restart).
source "$(dirname "$0")/lib.sh"
faults_init "$@"

NODES="client-1 client-2 client-3 server"
start_controller controller
start_server_agent
start_client client-1 client-1 +30ms
start_client client-2 client-2 -45ms
start_client client-3 client-3 +15ms
wait_until 60 "4 nodes connected and synchronised, skew < 1 ms" converged 4

sql() { sqlite3 -batch -noheader "$DB" "$1"; }
REQUESTS=()  # every resync request_id made, in order
# resync ARGS...: a resync that must succeed; records its request_id.
resync() {
  local json id
  json=$(ctl --output json resync "$@") || fail "resync $* failed: $json"
  id=$(jget 'd["request_id"]' <<<"$json")
  [ -n "$id" ] || fail "no request_id in: $json"
  REQUESTS+=("$id")
  log "resync $* -> $id"
}
# audit_exactly_once: every request_id in REQUESTS has exactly one resync_audit row, and the
# table has no other rows.
audit_exactly_once() {
  local id n total
  for id in "${REQUESTS[@]}"; do
    n=$(sql "SELECT count(*) FROM resync_audit WHERE request_id = '$id'")
    [ "$n" = 1 ] || fail "resync $id has $n audit rows, expected exactly 1 ($( ((n == 0)) && echo lost || echo doubled))
audit table: $(sql 'SELECT id, request_id, selector FROM resync_audit')"
  done
  total=$(sql "SELECT count(*) FROM resync_audit")
  [ "$total" = "${#REQUESTS[@]}" ] || fail "resync_audit has $total rows for ${#REQUESTS[@]} requests:
$(sql 'SELECT id, request_id, selector FROM resync_audit')"
  log "ok: ${#REQUESTS[@]} resync requests, each audited exactly once"
}

every_agent_connected() {
  fleet_is 'd["connected_count"] == 4 and all(conn(n) == "CONNECTED" for n in d["nodes"])'
}
# restart_and_time NAME: restarts the controller on the same port and database; fails unless
# every agent is CONNECTED within 5 s of the new controller listening (polled every 0.1 s).
restart_and_time() {
  local name="$1" port="$CPORT" t0 t1 ms
  start_controller "$name" "127.0.0.1:$port"
  [ "$CPORT" = "$port" ] || fail "restarted on port $CPORT, not $port"
  t0=$(date +%s%N)
  while ! every_agent_connected >/dev/null 2>&1; do
    t1=$(date +%s%N)
    if (((t1 - t0) / 1000000 > 5000)); then
      ctl status || true
      fail "not every agent reconnected within 5 s of the restart ($name)"
    fi
    sleep 0.1
  done
  ms=$((($(date +%s%N) - t0) / 1000000))
  log "ok: every agent CONNECTED ${ms} ms after the restart ($name)"
}

# --- 1. a few resyncs, then kill -9 --------------------------------------------------------
resync client-1
resync --all
resync client-2 client-3
audit_exactly_once
signal controller KILL
reap controller
for a in $NODES; do alive "$a" || fail "agent $a died with the controller"; done
restart_and_time controller-2
audit_exactly_once

# --- 2. kill -9 with a resync in flight --------------------------------------------------------
signal client-3 STOP
asked_before=$(grep -c " nodes asked" "$WORK/controller-2.log" || true)
ctl --output json resync client-3 >"$WORK/inflight.out" 2>&1 &
inflight_pid=$!
# In flight: the controller has sent it (logged "resync-... by ...: 1 nodes asked"), and the
# stopped node cannot answer.
inflight_sent() { [ "$(grep -c " nodes asked" "$WORK/controller-2.log")" -gt "$asked_before" ]; }
wait_until 10 "the resync of the stopped client-3 sent" inflight_sent
inflight_id=$(grep " nodes asked" "$WORK/controller-2.log" | tail -1 | grep -o 'resync-[0-9]*-[0-9]*')
[ -n "$inflight_id" ] || fail "no request id in the controller's log"
REQUESTS+=("$inflight_id")
log "in flight: $inflight_id"
signal controller-2 KILL
reap controller-2
rc=0
wait "$inflight_pid" || rc=$?
[ "$rc" != 0 ] || fail "ntpfleetctl reported success for a resync whose controller was killed: $(cat "$WORK/inflight.out")"
log "the in-flight ntpfleetctl resync exited $rc: $(tr '\n' ' ' <"$WORK/inflight.out")"
signal client-3 CONT
restart_and_time controller-3
# A fresh resync after the second restart: audited once, and nothing replayed.
resync --all
# Expected to fail until issue #10 item 7 is in: today (controller/service.cc Deliver) the
# audit row is written when a resync completes, so the in-flight request's row is LOST.
audit_exactly_once
log "PASS"
