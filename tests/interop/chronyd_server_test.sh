#!/bin/bash
# Our agent as a client of chronyd 4.3 (`chronyd -x`: serves `local stratum 10`, never touches
# the clock). Each agent runs on a SimClock 80 ms ahead and 50 ppm fast, with
# `server 127.0.0.1:PORT iburst`:
#   * no key, key 1 (MD5), key 2 (SHA1) (`keys FILE`, `trustedkey 1 2`): each logs
#     "synchronised: system peer 127.0.0.1" and `ntpfleetctl peers` shows '*' with |offset| < 1 ms;
#     chronyd's own counters show it verified our MACs ("Authenticated NTP packets");
#   * key 1 / key 2 with a WRONG secret (same ids): chronyd drops every request it cannot verify
#     (it sends nothing back, not even a crypto-NAK), so the agent gets no reply at all: it must
#     never synchronise, reach stays 0, and chronyd counts our requests without authenticating any.
source "$(dirname "$0")/lib.sh"
interop_init "$@"

P=12300
CHRONYC=("$PEERS/bin/chronyc" -h "$WORK/chronyd.sock")

cat >"$WORK/chronyd.conf" <<EOF
local stratum 10
allow all
port $P
cmdport 0
bindcmdaddress $WORK/chronyd.sock
pidfile $WORK/chronyd.pid
driftfile $WORK/chronyd.drift
keyfile $WORK/chrony.keys
EOF
chmod 700 "$WORK"  # chronyd refuses a command socket in a directory others can write to
start chronyd "$PEERS/bin/chronyd" -x -u root -d -f "$WORK/chronyd.conf"
# serverstats VAR: one counter of `chronyc serverstats` (over chronyd's unix command socket).
serverstat() {
  safe "${CHRONYC[@]}" serverstats | sed -n "s/^$1 *: *\([0-9]*\).*/\1/p"
}
wait_until 10 "chronyd answers chronyc on its command socket" serverstat "NTP packets received"

agent_conf() {  # NAME KEY_ID KEYS_FILE (KEY_ID empty: no authentication)
  if [ -z "$2" ]; then
    printf 'server 127.0.0.1:%s iburst\n' "$P" >"$WORK/$1.conf"
  else
    printf 'server 127.0.0.1:%s iburst key %s\nkeys %s\ntrustedkey 1 2\n' "$P" "$2" "$3" >"$WORK/$1.conf"
  fi
}
SIM=(--port 0 --sim-offset=80ms --sim-freq-ppm=50)

# 1. Agents that must synchronise, all at once.
agent_conf plain "" ""
agent_conf md5 1 "$WORK/ntp.keys"
agent_conf sha1 2 "$WORK/ntp.keys"
for a in plain md5 sha1; do start_agent "$a" "$WORK/$a.conf" "${SIM[@]}"; done
for a in plain md5 sha1; do
  wait_until 30 "$a logs 'synchronised: system peer 127.0.0.1'" logged "$a" "synchronised: system peer 127.0.0.1"
  wait_until 30 "$a: ntpfleetctl peers shows '*' with |offset| < 1 ms" synced_within "$a" 1
  peers "$a" | sed "s/^/    $a: /"
  peers_match "$a" '^\*127\.0\.0\.1 +127\.127\.1\.1 +10 u ' ||
    fail "$a: expected the system peer row '*127.0.0.1  127.127.1.1  10 u' (chrony's local refid, stratum 10)"
done
# The first offset the agents measured is the simulated error: chronyd is 80 ms behind them.
for a in plain md5 sha1; do
  off=$(sed -n 's/.*system peer 127\.0\.0\.1.*offset \([-+0-9.]*\) s.*/\1/p' "$WORK/$a.log" | head -n 1)
  abs_lt "$(awk -v o="$off" 'BEGIN { print o + 0.080 }')" 0.005 ||
    fail "$a: first offset to chronyd $off s, expected about -0.080 s (the agent's clock starts 80 ms ahead)"
done
log "ok: first measured offsets about -80 ms, then synchronised within 1 ms"
auth_before=$(serverstat "Authenticated NTP packets")
[ "${auth_before:-0}" -ge 2 ] ||
  fail "chronyd authenticated only ${auth_before:-0} NTP packets: the MD5/SHA1 agents' MACs were not verified by chronyd"
log "ok: chronyd verified $auth_before MAC-signed requests from the key 1 / key 2 agents"
for a in plain md5 sha1; do
  alive "$a" || fail "$a died"
  stop "$a"
done

# 2. Wrong secrets: chronyd must see our requests, verify none, and the agents must never sync.
received_before=$(serverstat "NTP packets received")
auth_before=$(serverstat "Authenticated NTP packets")
agent_conf wrongmd5 1 "$WORK/ntp-wrong.keys"
agent_conf wrongsha1 2 "$WORK/ntp-wrong.keys"
for a in wrongmd5 wrongsha1; do start_agent "$a" "$WORK/$a.conf" "${SIM[@]}"; done
# Until chronyd has received both agents' whole iburst (8 requests each, 2 s apart), no '*' ever.
never_synced() {
  local a
  for a in wrongmd5 wrongsha1; do
    if [ -n "$(system_peer_row "$a")" ]; then fail "$a synchronised although its key has the wrong secret"; fi
  done
}
bursts_received() {
  never_synced
  local n
  n=$(serverstat "NTP packets received")
  [ "$((n - received_before))" -ge 16 ]
}
# Quiet machine: 14.4 s (the iburst itself: 8 requests 2 s apart); 60 s >= 4x.
wait_until 60 "chronyd received both wrong-key agents' iburst (16 requests)" bursts_received
never_synced
auth_after=$(serverstat "Authenticated NTP packets")
[ "$auth_after" = "$auth_before" ] || fail "chronyd authenticated $((auth_after - auth_before)) requests signed with a wrong secret"
for a in wrongmd5 wrongsha1; do
  peers "$a" | sed "s/^/    $a: /"
  ! logged "$a" "synchronised" || fail "$a logged 'synchronised'"
  ! logged "$a" "syncing" || fail "$a logged 'syncing'"
  reach=$(peer_field "$a" 127.0.0.1 7)
  [ "$reach" = 0 ] || fail "$a: reach $reach, expected 0 (chronyd never answers a request it cannot verify)"
  alive "$a" || fail "$a died"
done
log "ok: wrong secrets: chronyd verified none of $(($(serverstat "NTP packets received") - received_before)) requests, answered none, and neither agent synchronised"
alive chronyd || fail "chronyd died"
log "PASS"
