#!/bin/bash
# Two agents configured with the same node_name (a cloned VM, a copied config): the controller
# keeps both (different instance ids), lists both and flags both duplicate_name; a resync of
# the name reaches both; when one stops, the other is left, unflagged.
source "$(dirname "$0")/lib.sh"
it_init "$@"

start_controller controller
start_server_agent
start_client twin-a twin +25ms
start_client twin-b twin -40ms
start_client solo solo +10ms
wait_until 45 "4 nodes connected and synchronised, skew < 1 ms" converged 4

json=$(status_json)
jcheck 'len(named(d, "twin")) == 2
        and all(n["duplicate_name"] for n in named(d, "twin"))
        and named(d, "twin")[0]["peer"] != named(d, "twin")[1]["peer"]
        and all(n["hello"]["instance_id"] == "" for n in d["nodes"])
        and not named(d, "solo")[0]["duplicate_name"]
        and not named(d, "server")[0]["duplicate_name"]' <<<"$json" ||
  fail "both twins listed and flagged, no one else: $json"
ctl status | tee "$WORK/status.txt"
[ "$(grep -Ec '^twin .*DUPLICATE NAME' "$WORK/status.txt")" = 2 ] ||
  fail "the table does not flag both twins"
grep -q "2 duplicate names" "$WORK/status.txt" || fail "the summary does not count the twins"

expect_exit 0 ctl --output json resync twin
jcheck '[r["node"] for r in d["results"]] == ["twin", "twin"]
        and all(r["result"]["outcome"] == "RESYNC_OUTCOME_OK" for r in d["results"])' \
  <<<"$OUT" || fail "a resync of a duplicated name reaches both: $OUT"

# One twin stops cleanly: the name lives on in the other, unflagged.
signal twin-b TERM
reap twin-b
wait_until 10 "one twin left, unflagged" \
  fleet_is 'len(named(d, "twin")) == 1 and not named(d, "twin")[0]["duplicate_name"]
            and conn(named(d, "twin")[0]) == "CONNECTED"'
log "PASS"
