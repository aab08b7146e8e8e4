#!/bin/bash
# Fault: a network partition (issue #10 part 8). Two network namespaces joined by a veth pair,
# addresses only inside them: this test's own namespace ("near": 10.200.0.1/24 on veth-near)
# and "far" (10.200.0.2/24 on veth-far). Near: the controller on 10.200.0.1 (plain text on a
# non-loopback address: CONTROLLER_EXTRA_FLAGS in lib.sh is where --insecure goes), the fleet's
# server agent (local clock) serving NTP on 10.200.0.1, and a client of it. Far: a client
# agent, syncing to and reporting over the link.
# Asserted:
#   * all 3 CONNECTED and converged; then `ip link set veth-far down` in the far namespace;
#   * just before the cut, the far clock is moved back 5 ms and measured (its last report: an
#     offset of about +5 ms, a fleet skew > 3 ms);
#   * the far node turns STALE within 3 report intervals (+ slack) and while STALE it is NOT
#     counted: stale_count 1, connected_count 2, no deviation, and the fleet skew is that of the
#     two near nodes alone (within 1 µs of max-min of their offsets; < 1 ms, not its 5 ms);
#   * it turns DISCONNECTED when the keepalive ends the stream (the controller pings every
#     10 s and gives up 5 s later), and stays uncounted;
#   * the link restored, it is CONNECTED again and converged.
# What a broken controller shows: the far node still CONNECTED with its old numbers, or STALE
# but with a deviation / counted in the skew or in connected_count; never DISCONNECTED (a dead
# stream kept forever); or not back after the link returns.
FAULTS_NAMESPACE=1
source "$(dirname "$0")/lib.sh"
faults_init "$@"

NEAR=10.200.0.1
FAR=10.200.0.2
# The far namespace, named in this test's own mount namespace only.
mkdir -p /run/netns
mount -t tmpfs -o size=1m ntpfleet-faults-netns /run/netns
ip netns add far
ip link add veth-near type veth peer name veth-far
ip link set veth-far netns far
ip addr add "$NEAR/24" dev veth-near
ip link set veth-near up
ip netns exec far ip link set lo up
ip netns exec far ip addr add "$FAR/24" dev veth-far
ip netns exec far ip link set veth-far up
link_up() { ip netns exec far ip link show veth-far | grep -q "LOWER_UP"; }
wait_until 10 "veth-far up" link_up
log "veth: $NEAR (here) <-> $FAR (namespace far)"

# Plain text on a namespace address: the controller refuses that without --insecure (this test
# is about partitions; trust has its own tests).
start_controller controller "$NEAR:0" --insecure
start_agent server "# The fleet's server: its local clock, served on $NEAR.
server 127.127.1.0
fudge 127.127.1.0 stratum 10
controller $CADDR
node_name server" --sim-offset=0 --listen "$NEAR"
SPORT="$APORT"
start_agent near "# A client next to the server.
server $NEAR:$SPORT iburst minpoll 4 maxpoll 4
controller $CADDR
node_name near" --sim-offset=+10ms
# The far client, in namespace far (start_agent's command, under ip netns exec).
printf '%s\n' "# A client across the link.
server $NEAR:$SPORT iburst minpoll 4 maxpoll 4
controller $CADDR
node_name far" >"$WORK/far.conf"
start far ip netns exec far "$AGENT" --config "$WORK/far.conf" --clock=sim --port 0 \
  --listen "$FAR" --control-socket "$SOCKS/far.sock" --sim-offset=-20ms
wait_until 60 "3 nodes connected and converged" converged 3
ctl status

node_is() {  # NAME CONNECTION
  fleet_is 'len(named(d, a[0])) == 1 and conn(named(d, a[0])[0]) == a[1]' "$1" "$2"
}
# uncounted: the far node is in state $1 and is not counted: no deviation, not connected, and
# the skew is that of the two near nodes alone.
UNCOUNTED='conn(named(d, "far")[0]) == a[0] and "deviation" not in named(d, "far")[0]
  and d["connected_count"] == 2 and dur(d["skew"]) < 0.001
  and abs(dur(d["skew"]) - (max(dur(n["status"]["offset"]) for n in d["nodes"] if n["name"] != "far")
                            - min(dur(n["status"]["offset"]) for n in d["nodes"] if n["name"] != "far"))) < 1e-6'

# Old numbers that would show if counted: the far clock moved back 5 ms (its simulated clock;
# ntpfleetctl sim-step through its control socket, a path, reachable from here); it reports the
# +5 ms it measures at its next poll (<= 16 s), a fleet skew of about 5 ms.
safe "$CTL" --control-socket "$SOCKS/far.sock" sim-step -- -5ms
wait_until 40 "far reports its +5 ms offset" fleet_is 'dur(named(d, "far")[0]["status"]["offset"]) > 0.003 and dur(d["skew"]) > 0.003'
ctl status

# --- the cut ----------------------------------------------------------------------------------
ip netns exec far ip link set veth-far down
t0=$SECONDS
log "link cut (veth-far down)"
wait_until 15 "far STALE" node_is far STALE
log "far STALE after $((SECONDS - t0)) s"
json=$(status_json)
jcheck 'd["stale_count"] == 1' <<<"$json" || fail "stale_count is not 1: $json"
jcheck "$UNCOUNTED" STALE <<<"$json" || fail "a STALE node is counted as if current: $json"
ctl status | tee "$WORK/status-stale.txt"
grep -Eq '^far +STALE' "$WORK/status-stale.txt" || fail "the table does not show far STALE"
# Every look until it is DISCONNECTED: never CONNECTED, never counted.
disconnected_and_uncounted() {
  local json
  json=$(status_json) || return 1
  if jcheck 'conn(named(d, "far")[0]) in ("CONNECTED",)' <<<"$json"; then
    fail "far shown CONNECTED while the link is down: $json"
  fi
  jcheck "$UNCOUNTED" "$(jget 'conn(named(d, "far")[0])' <<<"$json")" <<<"$json" ||
    fail "far counted while partitioned: $json"
  jcheck 'conn(named(d, "far")[0]) == "DISCONNECTED"' <<<"$json"
}
wait_until 60 "far DISCONNECTED (the keepalive ended its stream)" disconnected_and_uncounted
log "far DISCONNECTED after $((SECONDS - t0)) s"
json=$(status_json)
jcheck "$UNCOUNTED" DISCONNECTED <<<"$json" || fail "a DISCONNECTED node is counted: $json"

# --- the link back --------------------------------------------------------------------------------
ip netns exec far ip link set veth-far up
log "link restored"
wait_until 60 "far CONNECTED again" node_is far CONNECTED
wait_until 60 "3 nodes converged again" converged 3
ctl status
for a in server near far; do alive "$a" || fail "$a died"; done
log "PASS"
