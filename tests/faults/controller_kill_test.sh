#!/bin/bash
# Fault: the controller SIGKILLed with 4 agents reporting (issue #10 part 8), twice:
#   1. after a few resyncs: restarted at once on the same port and --db, every agent must be
#      CONNECTED again within 5 s of the restart (the restart = the new controller listening),
#      and the audit must hold exactly one resync_audit row per resync request (by request_id);
#   2. with a resync in flight (its only node SIGSTOPped first, so that it cannot answer before
#      the kill; the controller's default resync deadline is 10 s): the same, and the in-flight
#      request must have exactly one audit row too (issue #10 item 7: "the audit record of a
#      resync is on disk before the resync is sent");
#   3. down for 5 s before the restart, as the shipped systemd unit restarts it (RestartSec=5s):
#      the same 5 s bound.
# Reconnections slower than 5 s are collected and reported together at the end, so that every
# other assertion still runs.
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
INFLIGHT=""  # the request in flight at the second kill: checked on its own (a known gap)
# audit_exactly_once: every request_id in REQUESTS has exactly one resync_audit row, and the
# table has no other rows (but INFLIGHT's).
audit_exactly_once() {
  local id n total extra=0
  for id in "${REQUESTS[@]}"; do
    n=$(sql "SELECT count(*) FROM resync_audit WHERE request_id = '$id'")
    [ "$n" = 1 ] || fail "resync $id has $n audit rows, expected exactly 1 ($( ((n == 0)) && echo lost || echo doubled))
audit table: $(sql 'SELECT id, request_id, selector FROM resync_audit')"
  done
  [ -z "$INFLIGHT" ] || extra=$(sql "SELECT count(*) FROM resync_audit WHERE request_id = '$INFLIGHT'")
  total=$(sql "SELECT count(*) FROM resync_audit")
  [ "$total" = "$((${#REQUESTS[@]} + extra))" ] || fail "resync_audit has $total rows for ${#REQUESTS[@]} requests:
$(sql 'SELECT id, request_id, selector FROM resync_audit')"
  log "ok: ${#REQUESTS[@]} resync requests, each audited exactly once"
}

every_agent_connected() {
  fleet_is 'd["connected_count"] == 4 and all(conn(n) == "CONNECTED" for n in d["nodes"])'
}
# Slow reconnections, each named: recorded so that the rest of the test still runs, and
# reported together at the end, where the test fails if there are any.
GAPS=()
# restart_and_time NAME: restarts the controller on the same port and database; polls (every
# 0.1 s, up to 40 s) until every agent is CONNECTED; fails unless that took at most 5 s from
# the new controller listening. RECONNECT_MS: how long it took.
RECONNECT_MS=0
restart_and_time() {
  local name="$1" port="$CPORT" t0
  start_controller "$name" "127.0.0.1:$port"
  [ "$CPORT" = "$port" ] || fail "restarted on port $CPORT, not $port"
  t0=$(date +%s%N)
  while ! every_agent_connected >/dev/null 2>&1; do
    if (($(date +%s%N) - t0 > 40000000000)); then
      ctl status || true
      fail "not every agent reconnected within 40 s of the restart ($name)"
    fi
    sleep 0.1
  done
  RECONNECT_MS=$((($(date +%s%N) - t0) / 1000000))
  log "every agent CONNECTED ${RECONNECT_MS} ms after the restart ($name)"
}
within_5s() {  # WHAT
  if [ "$RECONNECT_MS" -gt 5000 ]; then
    GAPS+=("$1: the last agent reconnected ${RECONNECT_MS} ms after the restart, more than 5 s")
    log "NOT OK: $1: ${RECONNECT_MS} ms > 5 s"
  else
    log "ok: $1: every agent back within 5 s (${RECONNECT_MS} ms)"
  fi
}

# --- 1. a few resyncs, then kill -9 --------------------------------------------------------
resync client-1
resync --all --yes
resync client-2 client-3
audit_exactly_once
signal controller KILL
reap controller
for a in $NODES; do alive "$a" || fail "agent $a died with the controller"; done
restart_and_time controller-2
within_5s "restart right after the kill"
audit_exactly_once

# --- 2. kill -9 with a resync in flight --------------------------------------------------------
signal client-3 STOP
asked_before=$(grep -c " nodes asked" "$WORK/controller-2.log" || true)
ctl --output json resync client-3 >"$WORK/inflight.out" 2>&1 &
inflight_pid=$!
# In flight: the controller has recorded and sent it (logged "resync-...: on record; 1 nodes
# asked, ..."), and the stopped node cannot answer.
inflight_sent() { [ "$(grep -c " nodes asked" "$WORK/controller-2.log")" -gt "$asked_before" ]; }
wait_until 10 "the resync of the stopped client-3 sent" inflight_sent
inflight_id=$(grep " nodes asked" "$WORK/controller-2.log" | tail -1 | grep -o 'resync-[0-9]*-[0-9]*')
[ -n "$inflight_id" ] || fail "no request id in the controller's log"
INFLIGHT="$inflight_id"
log "in flight: $inflight_id"
signal controller-2 KILL
reap controller-2
rc=0
wait "$inflight_pid" || rc=$?
[ "$rc" != 0 ] || fail "ntpfleetctl reported success for a resync whose controller was killed: $(cat "$WORK/inflight.out")"
log "the in-flight ntpfleetctl resync exited $rc: $(tr '\n' ' ' <"$WORK/inflight.out")"
signal client-3 CONT
restart_and_time controller-3
within_5s "restart right after a kill with a resync in flight"
# A fresh resync after the second restart: audited once, and nothing replayed.
resync --all --yes
# The request in flight at the kill was recorded before it was sent: exactly one row, completed
# at the restart with an INTERRUPTED result for the node that never answered.
audit_exactly_once
n=$(sql "SELECT count(*) FROM resync_audit WHERE request_id = '$INFLIGHT'")
[ "$n" = 1 ] || fail "the in-flight resync $INFLIGHT has $n audit rows ($( ((n == 0)) && echo lost || echo doubled))"
outcome=$(sql "SELECT r.outcome FROM resync_results r JOIN resync_audit a ON r.audit_id = a.id
               WHERE a.request_id = '$INFLIGHT' AND r.node = 'client-3'")
[ "$outcome" = RESYNC_OUTCOME_INTERRUPTED ] ||
  fail "the in-flight resync's result for client-3 is '$outcome', not RESYNC_OUTCOME_INTERRUPTED"
log "ok: the in-flight resync $INFLIGHT is audited exactly once, client-3 INTERRUPTED"

# --- 3. kill -9, down for 5 s (deploy/systemd/ntpfleet-controller.service: RestartSec=5s) -------
# The agents' backoff (agent/report/reporter.cc: 1 s doubling up to 3 s, x U(0.5, 1) jitter):
# whenever the controller comes back, every agent tries again within 3 s. (With the earlier
# 30 s cap, 7 runs in 10 took longer than 5 s.)
signal controller-3 KILL
reap controller-3
sleep 5  # the unit's RestartSec: a deliberate outage, not a wait for a condition
restart_and_time controller-4
within_5s "restart 5 s after the kill, as the shipped systemd unit does"
audit_exactly_once

if [ "${#GAPS[@]}" -gt 0 ]; then
  printf 'TOO SLOW: %s\n' "${GAPS[@]}" >&2
  fail "${#GAPS[@]} reconnection(s) slower than 5 s, listed above"
fi
log "PASS"
