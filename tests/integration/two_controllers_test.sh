#!/bin/bash
# More than one controller (docs/CONTROLLER.md "More than one controller"): two controllers,
# each with its own database, and three agents (the server and two clients) that each have
# both `controller` lines.
#   * each controller alone lists all three nodes connected (every agent reports to each);
#   * `ntpfleetctl --controller A,B status --output json` lists the three, converged;
#   * `watch --output json` through A,B prints merged frames of the three;
#   * the agent's local view (`ntpfleetctl peers` on the node) shows both streams connected;
#   * `resync --all --dry-run` through A,B selects every node once, each through A (the first);
#   * SIGSTOP of controller A (a hung controller): B still hears every agent every report
#     interval, and status through A,B names A (after its 10 s deadline) and lists all three;
#   * kill -9 of controller A: through A,B the fleet is still fully visible (exit 0, A named on
#     stderr as not answering, every node still CONNECTED: B holds its stream), and
#     `resync --all` succeeds for every node, each through B; `peers NODE` still answers;
#     the agents' local view shows A not connected and B connected;
#   * with B killed too, no controller answers: exit 1, both named.
source "$(dirname "$0")/lib.sh"
it_init "$@"

# The two controllers, each on its own port and database.
DB="$WORK/controller-a.db"
start_controller controller-a
PORT_A="$CPORT"
DB="$WORK/controller-b.db"
start_controller controller-b
PORT_B="$CPORT"
A="127.0.0.1:$PORT_A"
B="127.0.0.1:$PORT_B"
BOTH="$A,$B"

# ctl_at ADDRESSES ARGS...: ntpfleetctl against ADDRESSES (one, or comma-separated).
ctl_at() {
  local at="$1"
  shift
  safe "$CTL" --controller "$at" --color never "$@"
}
# run_at ADDRESSES ARGS...: the same, stdout in $STDOUT, stderr in $STDERR, exit code in $RC.
STDOUT=""
STDERR=""
RC=0
run_at() {
  local at="$1"
  shift
  RC=0
  ctl_at "$at" "$@" >"$WORK/ctl.out" 2>"$WORK/ctl.err" || RC=$?
  STDOUT=$(cat "$WORK/ctl.out")
  STDERR=$(cat "$WORK/ctl.err")
  log "exit $RC: ntpfleetctl --controller $at $*"
}

# Three agents, each reporting to both controllers.
start_agent server "# The fleet's designated NTP server: its own local clock.
server 127.127.1.0
fudge 127.127.1.0 stratum 10
controller $A
controller $B
node_name server
label role=server" --sim-offset=0
SPORT="$APORT"
for spec in "client-1 +30ms" "client-2 -45ms"; do
  read -r name offset <<<"$spec"
  start_agent "$name" "# A client of the fleet's server agent, reporting to two controllers.
server 127.0.0.1:$SPORT iburst minpoll 4
controller $A
controller $B
node_name $name
label rack=a" --sim-offset="$offset" --sim-freq-ppm=3
done

ALL='["client-1", "client-2", "server"]'
# at_is ADDRESSES EXPR: `status --output json` through ADDRESSES satisfies EXPR (jcheck).
at_is() {
  local at="$1" json
  shift
  json=$(ctl_at "$at" status --output json 2>/dev/null) || return 1
  jcheck "$@" <<<"$json"
}

# --- both up -------------------------------------------------------------------------------
# Each controller on its own sees every node connected: the agents report to both.
wait_until 45 "A alone: 3 nodes connected, converged" at_is "$A" "$CONVERGED" 3
wait_until 15 "B alone: 3 nodes connected, converged" at_is "$B" "$CONVERGED" 3

run_at "$BOTH" status --output json
[ "$RC" = 0 ] || fail "status through A,B exited $RC: $STDERR"
[ -z "$STDERR" ] || fail "status through two live controllers complained: $STDERR"
jcheck "sorted(n['name'] for n in d['nodes']) == $ALL and d['connected_count'] == 3
        and all(conn(n) == 'CONNECTED' and 'deviation' in n for n in d['nodes'])
        and dur(d['skew']) < 0.001 and d['threshold'] == '0.001s'" <<<"$STDOUT" ||
  fail "status through A,B does not list the three nodes converged:
$STDOUT"
ctl_at "$BOTH" status

# watch through both: each controller's stream merged on every update. Two updates (of the
# controllers' 1 s streams) within 4 s, each listing the three nodes.
watch_out=$(timeout 4 "${SAFE[@]}" "$CTL" --controller "$BOTH" --color never watch --output json \
  2>"$WORK/watch.err") || [ $? = 124 ] || fail "watch through A,B failed: $(cat "$WORK/watch.err")"
python3 -c '
import json, sys
text, frames, i = sys.stdin.read(), [], 0
dec = json.JSONDecoder()
while text[i:].strip():
    while text[i].isspace(): i += 1
    d, i = dec.raw_decode(text, i)
    frames.append(d)
ok = len(frames) >= 2 and all(sorted(n["name"] for n in f["nodes"]) == ["client-1", "client-2", "server"]
                              and f["connected_count"] == 3 for f in frames)
sys.exit(0 if ok else 1)' <<<"$watch_out" || fail "watch through A,B: not two merged frames of 3 nodes:
$watch_out
$(cat "$WORK/watch.err")"
log "ok: watch through A,B merged $(grep -c '"as_of"' <<<"$watch_out") frames"

# The agent's own view of its two streams.
links_are() {  # AGENT WANT_A WANT_B
  local out
  out=$(safe "$CTL" --control-socket "$SOCKS/$1.sock" --color never peers) || return 1
  grep -q "^controller $A: $2" <<<"$out" && grep -q "^controller $B: $3" <<<"$out"
}
for agent in server client-1 client-2; do
  wait_until 10 "$agent's local view: both controllers connected" \
    links_are "$agent" connected connected
done
safe "$CTL" --control-socket "$SOCKS/client-1.sock" --color never peers

# A dry run through both selects each node once, through the first controller.
run_at "$BOTH" resync --all --dry-run --output json
[ "$RC" = 0 ] || fail "resync --all --dry-run through A,B exited $RC: $STDERR $STDOUT"
jcheck "sorted(r['node'] for r in d['results']) == $ALL
        and all(r['controller'] == a[0] and r['result']['outcome'] == 'RESYNC_OUTCOME_DRY_RUN'
                for r in d['results'])" "$A" <<<"$STDOUT" ||
  fail "the dry run did not go through A, once per node:
$STDOUT"

# --- controller A hangs (SIGSTOP): B keeps getting every agent's reports -------------------
# A stopped controller accepts nothing: the agents' streams to it stall (flow control), and
# nothing of that may hold up their reports to B. B's as_of when A stopped, then every node's
# last_seen on B must pass it by more than a report interval (1 s).
signal controller-a STOP
stopped_at=$(ctl_at "$B" status --output json | jget 'd["as_of"]')
iso='import datetime; t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))'
b_hears_all_after() {  # TIME
  local json
  json=$(ctl_at "$B" status --output json) || return 1
  python3 -c "$iso"'
import json, sys
d = json.loads(sys.argv[2])
since = t(sys.argv[1])
sys.exit(0 if len(d["nodes"]) == 3 and all(
    (t(n["last_seen"]) - since).total_seconds() > 1.5 for n in d["nodes"]) else 1)' "$1" "$json"
}
wait_until 10 "B hears every agent after A stopped" b_hears_all_after "$stopped_at"
# Through A,B: A is waited for up to the usual 10 s deadline, named, and the rest shown.
run_at "$BOTH" status --output json
[ "$RC" = 0 ] || fail "status through A,B with A stopped exited $RC: $STDERR"
grep -q "controller $A did not answer" <<<"$STDERR" ||
  fail "the stopped A is not named as not answering: $STDERR"
jcheck "sorted(n['name'] for n in d['nodes']) == $ALL and d['connected_count'] == 3" \
  <<<"$STDOUT" || fail "the fleet is not fully visible through A,B with A stopped:
$STDOUT"

# --- controller A dies ---------------------------------------------------------------------
signal controller-a KILL
reap controller-a

# The fleet is still fully visible through A,B: A is named, every node is listed, and each is
# still CONNECTED (B holds its stream); exit 0, as if A had answered (docs/CONTROLLER.md).
run_at "$BOTH" status --output json
[ "$RC" = 0 ] || fail "status through A,B with A dead exited $RC: $STDERR"
grep -q "controller $A did not answer" <<<"$STDERR" ||
  fail "A is not named as not answering: $STDERR"
jcheck "sorted(n['name'] for n in d['nodes']) == $ALL and d['connected_count'] == 3
        and all(conn(n) == 'CONNECTED' for n in d['nodes'])" <<<"$STDOUT" ||
  fail "the fleet is not fully visible through A,B with A dead:
$STDOUT"
ctl_at "$BOTH" status || fail "status (table) through A,B with A dead"

# A node's peers through A,B.
run_at "$BOTH" peers client-1
[ "$RC" = 0 ] || fail "peers client-1 through A,B exited $RC: $STDERR"
grep -q "127.0.0.1" <<<"$STDOUT" || fail "peers client-1 shows no upstream: $STDOUT"

# Resync of every node, each through B.
run_at "$BOTH" resync --all --yes --output json
[ "$RC" = 0 ] || fail "resync --all through A,B with A dead exited $RC:
$STDERR
$STDOUT"
grep -q "controller $A did not answer" <<<"$STDERR" ||
  fail "the resync does not name A as not answering: $STDERR"
jcheck "sorted(r['node'] for r in d['results']) == $ALL
        and all(r['controller'] == a[0] and r['result']['outcome'] == 'RESYNC_OUTCOME_OK'
                for r in d['results'])" "$B" <<<"$STDOUT" ||
  fail "not every node was resynced once, through B:
$STDOUT"
# The table says which controller served each node.
run_at "$BOTH" resync client-1 client-2
[ "$RC" = 0 ] || fail "resync by names through A,B exited $RC: $STDERR $STDOUT"
echo "$STDOUT"
grep -q "CONTROLLER" <<<"$STDOUT" && grep -q "client-2 .*$B" <<<"$STDOUT" ||
  fail "the resync table does not name the controller: $STDOUT"

# Each agent's local view: A not connected, B connected.
for agent in server client-1 client-2; do
  wait_until 15 "$agent's local view: A not connected, B connected" \
    links_are "$agent" "NOT CONNECTED" connected
done

# --- no controller left --------------------------------------------------------------------
signal controller-b KILL
reap controller-b
run_at "$BOTH" status
[ "$RC" = 1 ] || fail "status with no controller up exited $RC, not 1: $STDERR"
grep -q "controller $A did not answer" <<<"$STDERR" &&
  grep -q "controller $B did not answer" <<<"$STDERR" &&
  grep -q "cannot reach any of the controllers" <<<"$STDERR" ||
  fail "with both down, the error does not name both: $STDERR"

log "PASS"
