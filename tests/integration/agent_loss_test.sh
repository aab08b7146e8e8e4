#!/bin/bash
# Losing an agent, as `status --output json` shows it:
#   * a hung agent (SIGSTOP: its stream stays open, nothing comes) turns STALE after 3 report
#     intervals (1 s each here), is counted in stale_count and no longer in the skew;
#   * killed (kill -9: the kernel closes its connection), it turns DISCONNECTED at once, keeps
#     its last status, and a resync of it answers NOT CONNECTED with exit 3;
#   * a restarted agent of that name takes the entry over;
#   * the health check (`status --max-skew`) fails on the stale node, then on the disconnected
#     one, naming it, unless --allow tolerates that rule.
source "$(dirname "$0")/lib.sh"
it_init "$@"

start_controller controller
start_server_agent
start_client client-1 client-1 +20ms
start_client client-2 client-2 -35ms
wait_until 45 "3 nodes connected and synchronised, skew < 1 ms" converged 3

node_is() {  # NAME CONNECTION
  fleet_is 'len(named(d, a[0])) == 1 and conn(named(d, a[0])[0]) == a[1]' "$1" "$2"
}

# --- hung: STALE ----------------------------------------------------------------------------
signal client-2 STOP
t0=$SECONDS
# Quiet machine: 3.2 s (3 report intervals of silence, then the next status call); 30 s.
wait_until 30 "client-2 STALE" node_is client-2 STALE
[ $((SECONDS - t0)) -ge 2 ] || fail "client-2 went stale before 3 report intervals of silence"
json=$(status_json)
jcheck 'd["stale_count"] == 1 and d["connected_count"] == 2
        and "deviation" not in named(d, "client-2")[0]' <<<"$json" ||
  fail "a stale node must not count as connected nor in the skew: $json"
ctl status | tee "$WORK/status-stale.txt"
grep -Eq '^client-2 +STALE' "$WORK/status-stale.txt" || fail "the table does not show STALE"
expect_exit 3 ctl status --max-skew 1s
grep -q "^ntpfleetctl: unhealthy: stale: 1 node connected but silent for 3 report intervals: client-2$" \
  <<<"$OUT" || fail "the health check does not name the stale node: $OUT"
expect_exit 0 ctl status --max-skew 1s --allow stale
grep -q "^ntpfleetctl: allowed (--allow stale): stale: .*: client-2$" <<<"$OUT" ||
  fail "an allowed stale node is not listed: $OUT"

# --- killed: DISCONNECTED -------------------------------------------------------------------
signal client-2 KILL
reap client-2
wait_until 10 "client-2 DISCONNECTED" node_is client-2 DISCONNECTED
json=$(status_json)
jcheck 'd["stale_count"] == 0 and d["connected_count"] == 2
        and "status" in named(d, "client-2")[0] and "last_seen" in named(d, "client-2")[0]' \
  <<<"$json" || fail "a disconnected node keeps its last status and last_seen: $json"
ctl status | tee "$WORK/status-disconnected.txt"
grep -Eq '^client-2 +DISCONNECTED' "$WORK/status-disconnected.txt" ||
  fail "the table does not show DISCONNECTED"
expect_exit 3 ctl status --max-skew 1s
grep -q "^ntpfleetctl: unhealthy: disconnected: 1 node not connected .*: client-2$" <<<"$OUT" ||
  fail "the health check does not name the disconnected node: $OUT"
expect_exit 0 ctl status --max-skew 1s --allow disconnected
expect_exit 0 ctl status --max-skew 1s --state connected  # or leave it out of the view
expect_exit 0 ctl nodes --state disconnected --output csv
python3 -c '
import csv, sys
rows = list(csv.DictReader(sys.stdin))
assert [(r["name"], r["connection"]) for r in rows] == [("client-2", "disconnected")], rows
assert rows[0]["last_seen"] and rows[0]["first_seen"], rows
' <<<"$OUT" || fail "nodes --state disconnected --output csv: $OUT"

expect_exit 3 ctl resync client-2
echo "$OUT"
grep -Eq '^client-2 +NOT CONNECTED' <<<"$OUT" || fail "resync of a dead node: $OUT"
expect_exit 3 ctl --output json resync --all --yes
jcheck '{r["node"]: r["result"]["outcome"] for r in d["results"]} == {
          "client-1": "RESYNC_OUTCOME_OK", "client-2": "RESYNC_OUTCOME_NOT_CONNECTED",
          "server": "RESYNC_OUTCOME_OK"}' <<<"$OUT" || fail "resync --all: $OUT"

# --- back: the same name connects again (a new instance) -----------------------------------
start_client client-2 client-2 -35ms
wait_until 45 "client-2 back, 3 nodes converged" converged 3
fleet_is 'len(named(d, "client-2")) == 1 and not named(d, "client-2")[0]["duplicate_name"]' ||
  fail "the restarted agent did not take its old entry over"
log "PASS"
