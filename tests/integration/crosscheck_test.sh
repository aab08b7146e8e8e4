#!/bin/bash
# The fleet checks itself (#14, docs/CROSSCHECK.md), end to end on loopback: a controller with
# --crosscheck-interval 64s, the server agent and five client agents, every one on a simulated
# clock (different --sim-offset and --sim-freq-ppm), NTP on ports the kernel picks.
#   - liar:    a synchronised client started with --sim-report-bias 5ms: its clock is as good
#              as the others', its reports say 5 ms more;
#   - drifter: a client whose only upstream never answers (a UDP port nobody serves): it stays
#              unsynchronised, its clock free-running 20 ms ahead. No report shows that (it
#              has no offset to report), but its NTP server answers (stratum 16) and the mesh
#              measures its clock: it gives the fleet a true skew of ~20 ms for the mesh to
#              find, so that a mesh that measured nothing (all zeros) or only echoed the
#              reports cannot pass the comparison below;
#   - client-1..3: honest clients.
# Asserted:
#   (a) within 5 minutes, `ntpfleetctl crosscheck --output json` flags liar (exit 3), and in
#       that same answer no other node is flagged;
#   (b) the mesh's pairwise p99 of |Ci - Cj| agrees with the true pairwise p99 of the
#       simulated clocks (each agent's LocalStatus.sim_true_offset, read through its control
#       socket) within the probes' own error (the tolerance is derived where it is computed);
#   (c) `ntpfleetctl crosscheck` (table) names liar FLAGGED, `--edges` lists the probe graph;
#   (d) `ntpfleetctl status` shows the fleet bound and mesh p99 line and marks liar CROSSCHECK;
#       its health check fails on the rule `crosscheck` naming liar, and passes with
#       --allow crosscheck (and the rules the liar's and the drifter's reports break anyway).
# Quiet-machine time: the first probes go out when the agents get their assignment and every
# 64 s after; liar is flagged once the mesh has measured it (about a minute or two).
source "$(dirname "$0")/lib.sh"
it_init "$@"
LOCAL_STATUS="$(abspath "$(dirname "$0")/../faults/local_status")"
[ -x "$LOCAL_STATUS" ] || fail "no local_status binary at $LOCAL_STATUS"

CONTROLLER_FLAGS+=(--crosscheck-interval=64s)
start_controller controller
start_server_agent

# client NAME SIM_OFFSET SIM_FREQ_PPM [UPSTREAM [AGENT_FLAGS...]]: a client agent whose node is
# NAME, of the server agent unless UPSTREAM (HOST:PORT) is given.
client() {
  local name="$1" offset="$2" ppm="$3" upstream="${4:-127.0.0.1:$SPORT}"
  shift 3
  if [ "$#" -gt 0 ]; then shift; fi
  start_agent "$name" "# A client for the crosscheck test.
server $upstream iburst minpoll 4
controller 127.0.0.1:$CPORT
node_name $name
label rack=a" --sim-offset="$offset" --sim-freq-ppm="$ppm" "$@"
}
client client-1 +3ms 2
client client-2 -2ms -4
client client-3 +1ms 5
client liar -1ms 1 "127.0.0.1:$SPORT" --sim-report-bias=5ms
# The controller's gRPC port is TCP: nothing answers UDP there.
client drifter +20ms 0 "127.0.0.1:$CPORT"
grep -q "sim: reporting offsets 5ms off the truth (--sim-report-bias)" "$WORK/liar.log" ||
  fail "liar did not log its --sim-report-bias"

NODES=(server client-1 client-2 client-3 liar drifter)

# The honest clients and the liar synchronised (|reported offset| < 1 ms for the honest ones),
# the drifter connected: the crosscheck is judged on clocks that have stopped slewing.
wait_until 120 "6 nodes connected; client-1..3 and liar synchronised" fleet_is '
  len(d["nodes"]) == 6 and d["connected_count"] == 6
  and all(state(named(d, n)[0]) == "SYNCHRONISED" for n in ("client-1", "client-2",
          "client-3", "liar"))
  and all(abs(dur(named(d, n)[0]["status"]["offset"])) < 0.001 for n in ("client-1",
          "client-2", "client-3"))'
ctl status || true

T_CONV=${EPOCHREALTIME%.*}  # when the clocks had converged, in Unix seconds

# crosscheck_json: `ntpfleetctl crosscheck --output json` (exit 0, or 3 when a node is
# flagged; anything else fails the caller).
crosscheck_json() {
  local rc=0 out
  out=$(ctl crosscheck --output json) || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 3 ] || return 1
  printf '%s\n' "$out"
}
# record_truth: appends "UNIX_SECONDS NAME SIM_TRUE_OFFSET_SECONDS" for every agent to
# $WORK/truth.txt (true minus local, read through each agent's control socket): the truth's
# history, from which the comparison below bounds how far each clock moved since its probes.
record_truth() {
  local n now value
  for n in "${NODES[@]}"; do
    now=$EPOCHREALTIME
    value=$(safe "$LOCAL_STATUS" "$SOCKS/$n.sock" | jget 'dur(d.get("sim_true_offset", ""))') ||
      return 1
    printf '%s %s %s\n' "$now" "$n" "$value" >>"$WORK/truth.txt"
  done
}
# flagged_now: liar flagged in the latest solve (its answer kept in $WORK/crosscheck.json).
flagged_now() {
  crosscheck_json >"$WORK/crosscheck.json" || return 1
  jcheck '[r["name"] for r in d.get("nodes", []) if r.get("crosscheck", {}).get("flagged")]
          .count("liar") == 1' <"$WORK/crosscheck.json"
}
# edges_since UNIX_SECONDS: every node is measured in the latest solve (edges measured before a
# node's last state change are left out until its next probes, up to an interval), and every
# edge of it was measured after that time.
edges_since() {
  crosscheck_json >"$WORK/crosscheck.json" || return 1
  jcheck 'len(d.get("edges", [])) > 0 and sum(
            "measured_offset" in r.get("crosscheck", {}) for r in d["nodes"]) == 6 and all(
            __import__("calendar").timegm(__import__("time").strptime(e["measured_at"][:19],
            "%Y-%m-%dT%H:%M:%S")) > int(a[0]) for e in d["edges"])' "$1" \
    <"$WORK/crosscheck.json"
}
# poll_until SECONDS DESCRIPTION CMD...: CMD every 2 s (a solve changes at most every 5 s),
# recording the truth each time, until it succeeds; fails after SECONDS.
poll_until() {
  local limit="$1" what="$2"
  shift 2
  local start_us=${EPOCHREALTIME/./}
  local deadline_us=$((start_us + limit * 1000000))
  record_truth || fail "cannot read the agents' sim_true_offset"
  until "$@"; do
    [ "${EPOCHREALTIME/./}" -lt "$deadline_us" ] ||
      fail "timed out after ${limit}s waiting for: $what; the last answer:
$(cat "$WORK/crosscheck.json" 2>/dev/null)"
    sleep 2
    record_truth || fail "cannot read the agents' sim_true_offset"
  done
  log "ok after $(((${EPOCHREALTIME/./} - start_us) / 1000000))s (limit ${limit}s): $what"
}

# --- (a) liar flagged within 5 minutes, nobody else ------------------------------------------
poll_until 300 "liar flagged by the crosscheck" flagged_now
json=$(cat "$WORK/crosscheck.json")
jcheck '
  [r["name"] for r in d["nodes"] if r.get("crosscheck", {}).get("flagged")] == ["liar"]
  and d["flagged_count"] == 1 and d["reference"] == "server"
' <<<"$json" || fail "a node other than liar is flagged, or the reference is not the server:
$json"
# What flagged it: its disagreement is the bias it was given (5 ms), within its bound plus the
# measurement's error (the flag rule's own terms). A crosscheck that flagged liar for another
# reason (e.g. reading its report with the wrong sign: -5 ms) fails here.
jcheck '
  abs(dur(named(d, "liar")[0]["crosscheck"]["disagreement"]) - 0.005) <=
    dur(named(d, "liar")[0].get("error_bound", "")) +
    3 * dur(named(d, "liar")[0]["crosscheck"]["uncertainty"])
' <<<"$json" || fail "liar's disagreement is not its 5 ms bias:
$json"
expect_exit 3 ctl crosscheck --output json  # the exit code says it too

# --- (b) the mesh's pairwise p99 against the simulated clocks' truth -------------------------
# A solve whose every edge was measured after the clocks had converged (each edge is renewed
# every 64 s): the clocks then move only by their residual rates, which the truth's history
# bounds.
poll_until 200 "a solve of edges all measured after the clocks converged" \
  edges_since "$((T_CONV + 1))"
cp "$WORK/crosscheck.json" "$WORK/solve.json"
record_truth || fail "cannot read the agents' sim_true_offset"
python3 - "$WORK/solve.json" "$WORK/truth.txt" <<'EOF' ||
import calendar, collections, itertools, json, math, sys, time

def dur(s):
    return float(s[:-1]) if s else 0.0

def unix(ts):  # "2026-11-25T23:41:10.250123456Z" -> seconds
    whole = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
    frac = ts[19:].rstrip("Z")
    return whole + (float(frac) if frac.startswith(".") else 0.0)

solve = json.load(open(sys.argv[1]))
series = collections.defaultdict(list)  # name -> [(unix seconds, true minus local)]
for line in open(sys.argv[2]):
    t, name, value = line.split()
    series[name].append((float(t), float(value)))
truth = {n: s[-1][1] for n, s in series.items()}  # read just after the solve

# The nodes the mesh measured (the controller's p99 is over them): every agent.
measured = [r["name"] for r in solve["nodes"] if "measured_offset" in r.get("crosscheck", {})]
assert sorted(measured) == sorted(truth), "measured %s, agents %s" % (measured, sorted(truth))

def p99(values):
    # Nearest rank, as the controller's "smallest d with 99% of the pairs within d".
    v = sorted(values)
    return v[math.ceil(0.99 * len(v)) - 1]

# C_i - C_j = sim_true_offset_j - sim_true_offset_i (each is true minus local).
true_p99 = p99([abs(truth[i] - truth[j]) for i, j in itertools.combinations(measured, 2)])
mesh_p99 = dur(solve["pairwise_p99"])
u_max = max(dur(r["crosscheck"].get("uncertainty", "")) for r in solve["nodes"]
            if r["name"] in measured)
oldest = min(unix(e["measured_at"]) for e in solve["edges"]) - 5  # 5 s: the probers' clocks
# How far each clock moved between its oldest probe in the solve and the truth read, from the
# truth's history (sampled every ~2 s; between two samples a clock may have gone further than
# either shows, so each move is counted twice).
moved = {n: 2 * max(abs(v - truth[n]) for t, v in series[n] if t >= oldest)
         for n in measured}

# Tolerance, derived:
# - measurement: each node's measured offset has a 1-sigma uncertainty u_i (from its probes'
#   delays, each probe's error taken as half its round-trip delay, the most a path asymmetry
#   can make it); |y_i - y_j| is then off by at most 3 u_i + 3 u_j at 3 sigma each, <= 6 u_max;
# - motion: a pair's truth moved by at most moved_i + moved_j since the probes the solve used
#   (the two largest moves);
# - the p99 of a set of values each off by at most e is itself off by at most e (an order
#   statistic moves no more than the values do).
# On a quiet machine u_max is tens of microseconds and the converged clocks move by
# microseconds: a tolerance well under a millisecond. A broken mesh is off by milliseconds: one
# that measured nothing gives 0 against the drifter's ~20 ms; one that echoed the reports sees
# neither the drifter (no offset to report) nor the liar's true clock (5 ms off); a sign error
# in an edge breaks the loops and moves the drifter's row by its 20 ms.
tolerance = 2 * 3 * u_max + sum(sorted(moved.values())[-2:])
print("mesh pairwise p99 %.6f s, true p99 %.6f s, |diff| %.6f s, tolerance %.6f s "
      "(u_max %.6f s, clocks moved up to %s)" % (mesh_p99, true_p99, abs(mesh_p99 - true_p99),
                                                tolerance, u_max,
                                                {n: round(m, 7) for n, m in moved.items()}))
# The comparison means something only if the truth is large beside the tolerance.
assert true_p99 > 0.010, "true p99 %.6f s: the drifter is not 20 ms off?" % true_p99
assert tolerance < 0.25 * true_p99, "tolerance %.6f s: too loose to tell a broken mesh" % tolerance
sys.exit(0 if abs(mesh_p99 - true_p99) <= tolerance else 1)
EOF
  fail "the mesh's pairwise p99 disagrees with the truth (above)"
log "ok: the mesh's pairwise p99 matches the simulated clocks'"

# --- (c) the table and the edges -------------------------------------------------------------
expect_exit 3 ctl crosscheck
grep -Eq "^liar +.*FLAGGED$" <<<"$OUT" || fail "liar is not FLAGGED in the table: $OUT"
[ "$(grep -c "FLAGGED$" <<<"$OUT")" = 1 ] || fail "more than one FLAGGED row: $OUT"
grep -q "^reference   server " <<<"$OUT" || fail "no reference line: $OUT"
grep -Eq "^probes      [0-9]+ per node every 64s: " <<<"$OUT" || fail "no probe load: $OUT"
grep -q "^verdict     1 of [0-9]* judged nodes FLAGGED: liar$" <<<"$OUT" ||
  fail "no verdict line: $OUT"
expect_exit 3 ctl crosscheck --edges
grep -Eq "^[0-9]+ edges \(OFFSET is C\(to\) - C\(from\)" <<<"$OUT" || fail "no edges: $OUT"
grep -Eq "^drifter +(server|client-[123]|liar) " <<<"$OUT" ||
  fail "the drifter's probes are not in the graph: $OUT"

# --- (d) status: the fleet bound line, the mark, the health rule -----------------------------
expect_exit 0 ctl status
grep -Eq "^fleet bound ±[0-9.]+(µs|ms|s) \(two largest bounds\)  mesh p99 [0-9.]+(µs|ms|s) \(6 nodes measured\), 1 crosscheck-flagged$" <<<"$OUT" ||
  fail "no fleet bound / mesh p99 line in status: $OUT"
grep -Eq "^liar .*CROSSCHECK" <<<"$OUT" || fail "liar not marked CROSSCHECK in status: $OUT"
[ "$(grep -c "CROSSCHECK" <<<"$OUT")" = 1 ] || fail "another node marked CROSSCHECK: $OUT"
fleet_is 'd["crosscheck_flagged_count"] == 1 and "fleet_bound" in d and "mesh_skew_p99" in d
          and named(d, "liar")[0]["crosscheck"]["flagged"] is True' ||
  fail "status --output json lacks the crosscheck fields"
expect_exit 3 ctl status --max-skew 1s --allow unsynchronised,flagged
grep -q "unhealthy: crosscheck: 1 node .*: liar (reports" <<<"$OUT" ||
  fail "the health check does not name liar under the rule crosscheck: $OUT"
expect_exit 0 ctl status --max-skew 1s --allow unsynchronised,flagged,crosscheck
grep -q "allowed (--allow crosscheck): crosscheck: " <<<"$OUT" ||
  fail "an allowed crosscheck is not listed: $OUT"
expect_exit 0 ctl status --state crosscheck
grep -q "^1 of 6 nodes shown (state crosscheck)$" <<<"$OUT" || fail "--state crosscheck: $OUT"

log "PASS $TEST_NAME"
