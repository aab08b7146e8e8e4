#!/bin/bash
# A whole fleet on loopback: the controller, a server agent on its local clock and three
# client agents started tens of milliseconds off (simulated clocks), all real binaries.
#   (a) the fleet converges: `status --output json` shows 4 nodes connected and synchronised
#       with skew < 1 ms; `status --max-skew 10ms` exits 0, `--max-skew 1ns` exits 3;
#   (b) resync: one node -> exit 0 with that node's result; --all -> every node has a result;
#       --dry-run asks nobody; an unknown node -> NOT CONNECTED and exit 3;
#   (f) --output json of status, resync and history parses and uses the proto's field names;
#   (h) `history NODE` shows that node's buckets (text and JSON), an unknown node is named;
#   (v) views: --label (repeatable), --state, name globs, --sort, --output wide and csv (read
#       back with Python's csv module), `nodes` (first seen), the health check's min-nodes rule
#       (a filter that matches nothing fails it), usage errors;
#   (d) drift: two agents with the same configuration and one with another: the odd one out
#       is named and the exit code is 3; the same two alone: no drift, exit 0;
#   and ntpfleetctl without a controller to talk to exits 1 saying so.
source "$(dirname "$0")/lib.sh"
it_init "$@"

start_controller controller
start_server_agent
start_client client-1 client-1 +40ms
start_client client-2 client-2 -25ms rack=b
start_client client-3 client-3 +70ms

# --- (a) convergence and --max-skew ---------------------------------------------------------
wait_until 45 "4 nodes connected and synchronised, skew < 1 ms" converged 4
ctl status
expect_exit 0 ctl status --max-skew 10ms
expect_exit 3 ctl status --max-skew 1ns
grep -q "exceeds --max-skew" <<<"$OUT" || fail "no reason given for exit 3: $OUT"
expect_exit 0 ctl skew --max-skew 10ms  # the alias

# --- (f) JSON output: parses, and speaks the proto's own field names ------------------------
json=$(status_json)
jcheck '
  all(k in d for k in ("as_of", "skew", "max_error_bound", "threshold", "nodes",
                        "flagged_count", "stale_count", "connected_count"))
  and d["threshold"] == "0.001s"
  and all(k in n for n in d["nodes"] for k in ("name", "connection", "hello", "status",
          "last_seen", "deviation", "flagged", "duplicate_name", "peer"))
  and all(k in n["status"] for n in d["nodes"] for k in ("sampled_at", "state", "offset",
          "error_bound", "frequency_ppm", "root_delay", "root_dispersion", "system_peer",
          "peers", "stratum", "refid", "leap", "poll"))
  and all(k in n["hello"] for n in d["nodes"] for k in ("node_name", "instance_id",
          "report_interval", "labels", "role", "config_digest", "agent_version"))
  and named(d, "server")[0]["hello"]["role"] == "ROLE_SERVER"
  and named(d, "client-2")[0]["hello"]["labels"] == {"rack": "b"}
  and named(d, "client-1")[0]["status"]["peers"][0]["mark"] == "SELECTION_MARK_SYSTEM_PEER"
  and all(k in named(d, "client-1")[0]["status"]["peers"][0] for k in ("remote", "address",
          "unusable_reason", "root_distance", "reach", "when"))
  and named(d, "client-1")[0]["flagged"] is False
  and named(d, "client-1")[0]["duplicate_name"] is False
' <<<"$json" || fail "status --output json lacks the proto field names:
$json"
# No lowerCamelCase anywhere (label keys are ours, and lower case).
python3 -c '
import json, re, sys
def keys(v):
    if isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from keys(x)
    elif isinstance(v, list):
        for x in v:
            yield from keys(x)
bad = sorted({k for k in keys(json.load(sys.stdin)) if re.search("[A-Z]", k)})
sys.exit("camelCase keys: %s" % bad if bad else 0)' <<<"$json"
log "ok: status --output json has the proto field names"

# --- (v) views -------------------------------------------------------------------------------
expect_exit 0 ctl status --label rack=a
grep -q "^2 of 4 nodes shown (label rack=a)$" <<<"$OUT" || fail "no 'shown' line: $OUT"
grep -q "^4 nodes: 4 connected" <<<"$OUT" || fail "the fleet-wide counts changed: $OUT"
grep -Eq "^client-2 " <<<"$OUT" && fail "client-2 (rack=b) shown: $OUT"
[ "$(grep -Ec '^client-[13] ' <<<"$OUT")" = 2 ] || fail "client-1 and client-3 not shown: $OUT"
expect_exit 0 ctl status --label rack=a --label role=server  # both must match: none does
grep -q "^0 of 4 nodes shown" <<<"$OUT" || fail "two labels: $OUT"
expect_exit 0 ctl status 'client-*' --state synchronised --sort name --output csv
python3 -c '
import csv, sys
rows = list(csv.DictReader(sys.stdin))
names = [r["name"] for r in rows]
assert names == ["client-1", "client-2", "client-3"], names
assert all(r["connection"] == "connected" and r["state"] == "synchronised" for r in rows), rows
assert [r["labels"] for r in rows] == ["rack=a", "rack=b", "rack=a"], rows
assert all(len(r["config_digest"]) == 64 and r["first_seen"].endswith("Z") for r in rows), rows
assert all(abs(float(r["offset"])) < 0.001 for r in rows), rows
' <<<"$OUT" || fail "status --output csv: $OUT"
digest=$(jget 'named(d, "server")[0]["hello"]["config_digest"][:12]' <<<"$(status_json)")
expect_exit 0 ctl status server --output wide
grep -Eq "^server .* server +[^ ]+ +[^ ]+ +role=server +$digest" <<<"$OUT" ||
  fail "status --output wide lacks the server's role, version, label or digest $digest: $OUT"
expect_exit 0 ctl status --state unhealthy --sort last-seen
grep -q "^0 of 4 nodes shown (state unhealthy)" <<<"$OUT" || fail "unhealthy nodes: $OUT"
expect_exit 0 ctl nodes
grep -q "FIRST SEEN" <<<"$OUT" || fail "nodes has no FIRST SEEN: $OUT"
expect_exit 0 ctl nodes --output json 'client-[12]'
jcheck 'sorted(n["name"] for n in d["nodes"]) == ["client-1", "client-2"]
        and all("first_seen" in n and n["hello"]["config_digest"] for n in d["nodes"])' \
  <<<"$OUT" || fail "nodes --output json: $OUT"
# The health check: --min-nodes counts the nodes shown that are in the skew.
expect_exit 0 ctl status --max-skew 10ms --min-nodes 4
expect_exit 3 ctl status --max-skew 10ms --min-nodes 5
grep -q "unhealthy: min-nodes: 4 nodes of 4 nodes are counted" <<<"$OUT" || fail "min-nodes: $OUT"
expect_exit 3 ctl status 'nobody-*' --max-skew 10ms
grep -q "unhealthy: min-nodes: no node of the 0 nodes shown is counted" <<<"$OUT" ||
  fail "a check of no node passed or said nothing: $OUT"
expect_exit 0 ctl status --min-nodes 2 --label rack=a  # the check without --max-skew
expect_exit 2 ctl status --state sleeping
grep -q "unknown state .sleeping." <<<"$OUT" || fail "bad --state: $OUT"
expect_exit 2 ctl status --label rack
expect_exit 2 ctl status --sort age
expect_exit 2 ctl history --output csv
expect_exit 2 ctl status --allow stale  # --allow is for the health check
expect_exit 2 ctl resync --label rack=a --label rack=b
log "ok: views and the health check's min-nodes rule"

# --- (b) resync -----------------------------------------------------------------------------
expect_exit 0 ctl resync client-1
grep -Eq '^client-1 +ok ' <<<"$OUT" || fail "no ok row for client-1:
$OUT"
grep -q "client-2" <<<"$OUT" && fail "client-2 was not asked, but is listed:
$OUT"

expect_exit 0 ctl --output json resync client-2
jcheck '
  d["request_id"] != "" and len(d["results"]) == 1
  and d["results"][0]["node"] == "client-2"
  and d["results"][0]["result"]["outcome"] == "RESYNC_OUTCOME_OK"
  and d["results"][0]["result"]["request_id"] == d["request_id"]
  and all(k in d["results"][0]["result"] for k in ("offset_before", "offset_after", "stepped",
                                                  "error"))
  and abs(dur(d["results"][0]["result"]["offset_after"])) < 0.001
' <<<"$OUT" || fail "resync --output json: $OUT"

expect_exit 0 ctl --output json resync --all --yes
jcheck 'sorted(r["node"] for r in d["results"]) == ["client-1", "client-2", "client-3", "server"]
        and all(r["result"]["outcome"] == "RESYNC_OUTCOME_OK" for r in d["results"])' \
  <<<"$OUT" || fail "resync --all: $OUT"

# The server was resynced too: its server threads still answer the clients' bursts.
expect_exit 0 ctl --output json resync --label rack=a
jcheck 'sorted(r["node"] for r in d["results"]) == ["client-1", "client-3"]
        and all(r["result"]["outcome"] == "RESYNC_OUTCOME_OK" for r in d["results"])' \
  <<<"$OUT" || fail "resync --label rack=a: $OUT"

expect_exit 0 ctl --output json resync --all --dry-run
jcheck 'len(d["results"]) == 4
        and all(r["result"]["outcome"] == "RESYNC_OUTCOME_DRY_RUN" for r in d["results"])' \
  <<<"$OUT" || fail "resync --all --dry-run: $OUT"

expect_exit 3 ctl resync ghost
grep -Eq '^ghost +NOT CONNECTED' <<<"$OUT" || fail "ghost is not NOT CONNECTED:
$OUT"
expect_exit 3 ctl resync client-3 ghost
grep -Eq '^client-3 +ok ' <<<"$OUT" || fail "client-3 missing beside ghost:
$OUT"
expect_exit 2 ctl resync  # nothing selected: a usage error
expect_exit 2 ctl resync --all  # everything, without a terminal and without --yes

# --- history JSON ---------------------------------------------------------------------------
expect_exit 0 ctl --output json history
jcheck '"points" in d and all(set(p) == {"time", "skew", "max_error_bound", "nodes", "flagged"}
                               for p in d["points"])' <<<"$OUT" || fail "history json: $OUT"

# --- per-node history -----------------------------------------------------------------------
# The buckets still filling are served from memory, the closed ones from the store.
expect_exit 0 ctl history client-1 --since 10m
printf '%s\n' "$OUT"  # for the log
grep -q "^client-1: .* UTC at 1s resolution" <<<"$OUT" || fail "history client-1: $OUT"
grep -q "^offset  .*  min .*  max .*  last " <<<"$OUT" || fail "no offset sparkline: $OUT"
grep -q "^TIME (UTC) .* WORST STATE" <<<"$OUT" || fail "no history table: $OUT"
expect_exit 0 ctl --output json history client-1 --since 24h
# A minute of unsynchronised reports only (the run began near a minute's end) has no error
# bound to show, and leaves max_error_bound out; a minute all synchronised must show it.
jcheck 'd["resolution"] == "60s" and len(d["node_points"]) >= 1
        and all(k in p for p in d["node_points"] for k in ("time", "offset_min", "offset_max",
                "offset_last", "max_stratum", "worst_state", "reports"))
        and all("max_error_bound" in p for p in d["node_points"]
                if p["worst_state"] == "SYNC_STATE_SYNCHRONISED")
        and "max_error_bound" in d["node_points"][-1]
        and d["node_points"][-1]["worst_state"].startswith("SYNC_STATE_")' <<<"$OUT" \
  || fail "history NODE json: $OUT"
expect_exit 1 ctl history no-such-node
grep -q "no node named 'no-such-node'" <<<"$OUT" || fail "unknown node not named: $OUT"

# --- no controller --------------------------------------------------------------------------
free_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect_exit 1 safe "$CTL" --controller "127.0.0.1:$free_port" status
grep -q "cannot reach the controller" <<<"$OUT" || fail "unhelpful error: $OUT"

# The fleet is still converged after all the resyncs.
wait_until 20 "still converged" converged 4

# --- (d) drift --------------------------------------------------------------------------------
# Each agent's digest covers its whole configuration, node_name included: the twins take their
# names from --node-name, so that twin-a and twin-b have one configuration between them.
TWIN="# Identical on twin-a and twin-b.
server 127.0.0.1:$SPORT iburst minpoll 4
controller 127.0.0.1:$CPORT
label rack=t"
start_agent twin-a "$TWIN" --node-name twin-a --sim-offset=+5ms
start_agent twin-b "$TWIN" --node-name twin-b --sim-offset=-5ms
start_agent twin-c "${TWIN/minpoll 4/minpoll 5}" --node-name twin-c --sim-offset=+1ms
wait_until 30 "the twins connected" fleet_is \
  'sorted(n["name"] for n in d["nodes"] if conn(n) == "CONNECTED" and n["name"].startswith("twin-")) == ["twin-a", "twin-b", "twin-c"]'
expect_exit 3 ctl drift 'twin-*'
grep -Eq "^twin-c +client +[0-9a-f]{12} +[0-9a-f]{12} \(2 of 3\)$" <<<"$OUT" ||
  fail "drift does not name twin-c as the odd one out: $OUT"
grep -Eq "^twin-[ab] " <<<"$OUT" && fail "drift names a twin with the common configuration: $OUT"
expect_exit 3 ctl drift --by-label rack --output json --label rack=t
jcheck '[o["node"] for o in d["odd_ones_out"]] == ["twin-c"] and d["by"] == "label rack"
        and d["odd_ones_out"][0]["cohort"] == "rack=t"' <<<"${OUT%%ntpfleetctl: drift*}" ||
  fail "drift --output json: $OUT"
expect_exit 0 ctl drift 'twin-[ab]'
grep -q "^no drift" <<<"$OUT" || fail "twin-a and twin-b differ: $OUT"
log "PASS"
