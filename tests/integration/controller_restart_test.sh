#!/bin/bash
# kill -9 of the controller, and a restart on the same --db (and the same port: the agents'
# `controller` lines name it):
#   * while it is down, ntpfleetctl exits 1 and says it cannot reach it; the agents go on;
#   * right after the restart, `status` lists every node (from the SQLite inventory), and
#     `nodes` shows the first-seen times from before the crash;
#   * the agents reconnect on their own (their backoff starts at 1 s) and report again;
#   * `history` still has the points written before the crash;
#   * the audit log of the resyncs made before the crash survives (checked with sqlite3 in the
#     store's own tables, resync_audit and resync_results).
source "$(dirname "$0")/lib.sh"
it_init "$@"

ALL='["client-1", "client-2", "client-3", "server"]'

start_controller controller
start_server_agent
start_client client-1 client-1 +30ms
start_client client-2 client-2 -45ms
start_client client-3 client-3 +15ms
wait_until 45 "4 nodes connected and synchronised, skew < 1 ms" converged 4

# Resyncs to audit: one node, then all.
expect_exit 0 ctl resync client-1
echo "$OUT"
expect_exit 0 ctl resync --all --yes
echo "$OUT"

# At least one skew point in the store: the housekeeper writes one per 10 s bucket, when the
# next bucket starts.
history_has() {  # MIN_POINTS
  local json
  json=$(ctl --output json history) || return 1
  jcheck 'len(d.get("points", [])) >= int(a[0]) and all(p["nodes"] == 4 for p in d["points"][-1:])' \
    "$1" <<<"$json"
}
wait_until 30 "a skew point in the history" history_has 1
before=$(ctl --output json history)
points_before=$(jget 'len(d["points"])' <<<"$before")
first_point=$(jget 'd["points"][0]["time"]' <<<"$before")
log "history before the crash: $points_before points, the first at $first_point"

sql() { sqlite3 -batch -noheader "$DB" "$1"; }
audit_before=$(sql "SELECT count(*) FROM resync_audit")
[ "$audit_before" = 2 ] || fail "expected 2 audited resyncs before the crash, found $audit_before"

# name -> first seen (RFC 3339), from `nodes --output csv`.
first_seen() { ctl nodes --output csv | python3 -c '
import csv, json, sys
print(json.dumps({r["name"]: r["first_seen"] for r in csv.DictReader(sys.stdin)}))'; }
first_seen_before=$(first_seen)
log "first seen before the crash: $first_seen_before"

# --- the crash ------------------------------------------------------------------------------
port="$CPORT"
signal controller KILL
reap controller
expect_exit 1 ctl status
grep -q "cannot reach the controller" <<<"$OUT" || fail "unhelpful error: $OUT"
for a in server client-1 client-2 client-3; do
  kill -0 "$(pid_of "$a")" || fail "agent $a died with the controller"
done

# --- the restart, same database, same port --------------------------------------------------
start_controller controller-2 "127.0.0.1:$port"
[ "$CPORT" = "$port" ] || fail "restarted on port $CPORT, not $port"
grep -q "4 known nodes" "$WORK/controller-2.log" || fail "the inventory was not loaded:
$(cat "$WORK/controller-2.log")"
# Every node is listed at once, from the inventory (disconnected until its agent is back).
json=$(status_json)
jcheck "sorted(n['name'] for n in d['nodes']) == $ALL" <<<"$json" ||
  fail "not every node listed right after the restart: $json"
jcheck 'all(n["hello"]["agent_version"] != "" and n["hello"]["role"] != "ROLE_UNSPECIFIED"
        and n["hello"]["instance_id"] == "" for n in d["nodes"])' <<<"$json" ||
  fail "the inventory lost the Hellos (or handed out an instance id): $json"

wait_until 40 "every agent reconnected and the fleet converged" converged 4
ctl status
# The inventory's first-seen times, not the reconnect's (over 10 s later: the history wait
# above). The registry stamps a new name when it connects and the store a few microseconds
# later, so they are compared to within a second.
first_seen_after=$(first_seen)
python3 -c '
import datetime, json, sys
def t(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
before, after = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert sorted(before) == ["client-1", "client-2", "client-3", "server"], before
assert all(before[n] for n in before), before
assert sorted(after) == sorted(before), after
assert all(abs((t(after[n]) - t(before[n])).total_seconds()) < 1 for n in before), (before, after)
' "$first_seen_before" "$first_seen_after" ||
  fail "first seen did not survive the restart: $first_seen_before -> $first_seen_after"
log "ok: first seen kept across the restart"

# History: the pre-crash points are still there.
after=$(ctl --output json history)
jcheck 'len(d["points"]) >= int(a[0]) and d["points"][0]["time"] == a[1]' \
  "$points_before" "$first_point" <<<"$after" ||
  fail "history lost points across the crash: before $before
after $after"
log "ok: history has $(jget 'len(d["points"])' <<<"$after") points, the first at $first_point"

# The audit of the pre-crash resyncs survived, with each node's result.
audit_after=$(sql "SELECT count(*) FROM resync_audit")
[ "$audit_after" -ge 2 ] || fail "audit entries lost: $audit_after"
rows=$(sql "SELECT a.id, r.node, r.outcome FROM resync_audit a JOIN resync_results r
            ON r.audit_id = a.id ORDER BY a.id, r.seq")
echo "$rows"
[ "$(sql "SELECT count(*) FROM resync_results r JOIN resync_audit a ON r.audit_id = a.id
          WHERE a.id = (SELECT min(id) FROM resync_audit)
            AND r.node = 'client-1' AND r.outcome = 'RESYNC_OUTCOME_OK'")" = 1 ] ||
  fail "the first resync's audit is gone"
[ "$(sql "SELECT count(*) FROM resync_results WHERE audit_id =
          (SELECT id FROM resync_audit ORDER BY id LIMIT 1 OFFSET 1)")" = 4 ] ||
  fail "the resync --all audit lost nodes"
log "ok: the audit log survived"

# And the restarted controller works: a new resync reaches every node and is audited too.
expect_exit 0 ctl resync --all --yes
[ "$(sql "SELECT count(*) FROM resync_audit")" = 3 ] || fail "the new resync was not audited"
log "PASS"
