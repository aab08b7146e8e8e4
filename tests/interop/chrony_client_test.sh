#!/bin/bash
# chronyd (4.3) as a client of our agent: chronyd -Q measures the agent's time and prints
# "System clock wrong by X seconds (ignored)" without touching any clock.
#   * agent serving its local clock (stratum 10) on a SimClock with no error: |X| < 1 ms,
#     unauthenticated, and signed with key 1 (MD5) and key 2 (SHA1) from chrony's keyfile;
#   * a wrong secret for key 1 / key 2: the agent must not answer with anything chrony accepts;
#     an id the agent does not know (3): the agent's crypto-NAK must not be accepted either;
#   * an agent whose SimClock runs 50 ms ahead: chronyd sees +0.050 s (the served time really is
#     the agent's clock, with the sign chrony expects).
source "$(dirname "$0")/lib.sh"
interop_init "$@"

P=12300      # the agent under test
P_AHEAD=12301  # an agent 50 ms ahead

cat >"$WORK/local.conf" <<EOF
# Local clock only, as a fleet's top server without upstreams.
server 127.127.1.0
fudge 127.127.1.0 stratum 10
keys $WORK/ntp.keys
trustedkey 1 2
EOF

start_agent agent "$WORK/local.conf" --port "$P" --sim-offset=0 --sim-freq-ppm=0
start_agent ahead "$WORK/local.conf" --port "$P_AHEAD" --sim-offset=50ms --sim-freq-ppm=0
for a in agent ahead; do
  wait_until 15 "$a has selected its local clock" peers_match "$a" '^\*LOCAL\(0\)'
done

# chrony_q NAME DIRECTIVE...: runs chronyd -Q with these config lines; output in $WORK/NAME.log.
chrony_q() {
  local name="$1"
  shift
  local rc=0
  log "chronyd -Q $*"
  safe timeout 20 "$PEERS/bin/chronyd" -Q -u root -t 5 "$@" >"$WORK/$name.log" 2>&1 || rc=$?
  sed 's/^/    /' "$WORK/$name.log"
  return "$rc"
}
# The offset chronyd printed, in seconds.
chrony_offset() { sed -n 's/.*System clock wrong by \([-+0-9.e]*\) seconds.*/\1/p' "$WORK/$1.log" | tail -n 1; }

# measure NAME EXPECTED LIMIT DIRECTIVE...: chronyd -Q must get an answer whose offset is within
# LIMIT of EXPECTED. One sample is only as good as its round trip: on a busy 2-core CI machine a
# process can be descheduled mid-exchange, so a sample outside the limit is retaken (3 tries);
# a server really off by more than the limit fails all of them.
measure() {
  local name="$1" expected="$2" limit="$3" off
  shift 3
  for _ in 1 2 3; do
    chrony_q "$name" "$@" || fail "$name: chronyd -Q got no usable answer"
    off=$(chrony_offset "$name")
    [ -n "$off" ] || fail "$name: chronyd printed no offset"
    if abs_lt "$(awk -v a="$off" -v b="$expected" 'BEGIN { printf "%.9f", a - b }')" "$limit"; then
      log "ok: $name: chronyd measured $off s (expected $expected ± $limit)"
      return 0
    fi
    log "$name: chronyd measured $off s, expected $expected ± $limit; measuring again"
  done
  fail "$name: chronyd measured $off s in the last of 3 tries, expected $expected s within $limit s"
}

# 1. Plain NTP.
measure plain 0 0.001 "server 127.0.0.1 port $P iburst maxsamples 1"

# 2. Authenticated: chronyd only accepts a reply carrying a valid MAC with its key.
measure md5 0 0.001 "keyfile $WORK/chrony.keys" "server 127.0.0.1 port $P iburst maxsamples 1 key 1"
measure sha1 0 0.001 "keyfile $WORK/chrony.keys" "server 127.0.0.1 port $P iburst maxsamples 1 key 2"

# 3. Wrong secrets and an unknown key id: no time may be accepted.
for k in 1 2; do
  if chrony_q "wrong$k" "keyfile $WORK/chrony-wrong.keys" "server 127.0.0.1 port $P iburst maxsamples 1 key $k"; then
    fail "chronyd -Q accepted an answer although its key $k has the wrong secret"
  fi
  grep -q "Timeout reached" "$WORK/wrong$k.log" || fail "wrong$k: expected chronyd's 'Timeout reached'"
  log "ok: wrong secret for key $k: chronyd got no acceptable answer"
done
printf '3 MD5 a-key-the-agent-does-not-have\n' >"$WORK/chrony-unknown.keys"
if chrony_q unknown "keyfile $WORK/chrony-unknown.keys" "server 127.0.0.1 port $P iburst maxsamples 1 key 3"; then
  fail "chronyd -Q accepted an answer to key 3, which the agent does not have (a crypto-NAK must not be usable)"
fi
log "ok: unknown key id: chronyd got no acceptable answer"

# 4. The time served is the agent's own (simulated) clock: 50 ms ahead.
measure ahead_q 0.050 0.002 "server 127.0.0.1 port $P_AHEAD iburst maxsamples 1"

# The agents are still running and still serve their local clock.
for a in agent ahead; do alive "$a" || fail "$a died"; done
[ -n "$(system_peer_row agent)" ] || fail "agent lost its local clock"
log "PASS"
