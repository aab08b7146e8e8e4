#!/bin/bash
# Our agent as a client of NTPsec 1.2.2 ntpd. ntpd serves on port 123 only, so it runs in this
# test's own network namespace, in orphan mode (`tos orphan 10 orphanwait 1`: stratum 10 with no
# upstream) with `disable ntp` + `disable kernel` (and no CAP_SYS_TIME: it cannot touch the clock).
#
# Its access control is Debian's stock line, rate limiting and KoD included:
#     restrict default kod limited nomodify noquery
#     restrict 127.0.0.1          (unrestricted: lets ntpq read ntpd's counters)
# Each agent queries ntpd at its own address 192.0.2.N (TEST-NET-1, added to this namespace's lo),
# so ntpd sees it as a separate client host with its own rate-limit state, and `limited` applies
# to it (127.0.0.1 would be exempt). An agent's iburst (8 requests 2 s apart) must be served
# without any KoD or rate limiting: that is the "restrict line that serves us".
#   * no key, key 1 (MD5), key 2 (SHA1): "synchronised", '*' and |offset| < 1 ms (the agents start
#     80 ms ahead, 50 ppm fast); ntpd answers "INIT" (unsynchronised) for its first seconds, which
#     the agents must wait out;
#   * wrong secrets for keys 1 and 2: ntpd counts "authentication failed" and answers nothing, so
#     the agents never synchronise (reach 0).
source "$(dirname "$0")/lib.sh"
interop_init "$@"

NTPQ="$PEERS/bin/ntpq"
AGENTS=(plain md5 sha1 wrongmd5 wrongsha1)
declare -A ADDR KEY KEYS
i=1
for a in "${AGENTS[@]}"; do
  ADDR[$a]="192.0.2.$i"
  ip addr add "${ADDR[$a]}/32" dev lo
  i=$((i + 1))
done
KEY=([plain]="" [md5]=1 [sha1]=2 [wrongmd5]=1 [wrongsha1]=2)
KEYS=([plain]="" [md5]="$WORK/ntp.keys" [sha1]="$WORK/ntp.keys" [wrongmd5]="$WORK/ntp-wrong.keys" [wrongsha1]="$WORK/ntp-wrong.keys")

cat >"$WORK/ntpd.conf" <<EOF
# Never touch the clock.
disable ntp
disable kernel
# A server with no upstream: orphan mode at stratum 10.
tos orphan 10 orphanwait 1
restrict default kod limited nomodify noquery
restrict 127.0.0.1
restrict ::1
keys $WORK/ntp.keys
trustedkey 1 2
driftfile $WORK/ntpd.drift
EOF
start ntpd "$PEERS/bin/ntpd" -n -c "$WORK/ntpd.conf" -p "$WORK/ntpd.pid"
# sysstat NAME: one counter of `ntpq -c sysstats` (mode 6, from 127.0.0.1).
sysstat() {
  safe timeout 10 "$NTPQ" -c sysstats 127.0.0.1 2>/dev/null | sed -n "s/^$1: *\([0-9]*\).*/\1/p"
}
has_sysstat() { [ -n "$(sysstat "$1")" ]; }
# Quiet machine: 1.2 s (ntpd's start-up: OpenSSL and the system's CA certificates for NTS, then
# the first mode-6 answer); on a loaded 2-core machine it took more than 15 s (issue #12): 60 s.
wait_until 60 "ntpd answers ntpq" has_sysstat "packets received"
for a in "${AGENTS[@]}"; do
  wait_until 10 "ntpd listens on ${ADDR[$a]}:123" grep -q "Listen normally on .* ${ADDR[$a]}:123" "$WORK/ntpd.log"
done

for a in "${AGENTS[@]}"; do
  if [ -z "${KEY[$a]}" ]; then
    printf 'server %s iburst\n' "${ADDR[$a]}" >"$WORK/$a.conf"
  else
    printf 'server %s iburst key %s\nkeys %s\ntrustedkey 1 2\n' "${ADDR[$a]}" "${KEY[$a]}" "${KEYS[$a]}" >"$WORK/$a.conf"
  fi
done
auth_failed_before=$(sysstat "authentication failed")
for a in "${AGENTS[@]}"; do start_agent "$a" "$WORK/$a.conf" --port 0 --sim-offset=80ms --sim-freq-ppm=50; done

wrong_never_synced() {
  local a
  for a in wrongmd5 wrongsha1; do
    if [ -n "$(system_peer_row "$a")" ]; then fail "$a synchronised although its key has the wrong secret"; fi
  done
}
synced_and_check() {  # NAME
  wrong_never_synced
  logged "$1" "synchronised: system peer ${ADDR[$1]}" && synced_within "$1" 1
}
for a in plain md5 sha1; do
  wait_until 40 "$a synchronised to ntpd (log line, '*', |offset| < 1 ms)" synced_and_check "$a"
  peers "$a" | sed "s/^/    $a: /"
  peers_match "$a" "^\*${ADDR[$a]//./\\.} +127\.0\.0\.1 +10 u " ||
    fail "$a: expected the system peer row '*${ADDR[$a]}  127.0.0.1  10 u' (NTPsec orphan: refid 127.0.0.1, stratum 10)"
  if logged "$a" "KoD"; then fail "$a was sent a KoD"; fi
done
log "ok: plain, MD5 and SHA1 agents synchronised to NTPsec"

# Wrong secrets: wait until ntpd has rejected both agents' whole iburst (8 requests each).
auth_rejected() {
  wrong_never_synced
  local n
  n=$(sysstat "authentication failed")
  [ -n "$n" ] && [ "$((n - auth_failed_before))" -ge 16 ]
}
wait_until 40 "ntpd counted 16 'authentication failed' (both wrong-key agents' iburst)" auth_rejected
wrong_never_synced
for a in wrongmd5 wrongsha1; do
  peers "$a" | sed "s/^/    $a: /"
  ! logged "$a" "synchronised" || fail "$a logged 'synchronised'"
  reach=$(peer_field "$a" "${ADDR[$a]}" 7)
  [ "$reach" = 0 ] || fail "$a: reach $reach, expected 0 (ntpd answers nothing it cannot authenticate)"
done
log "ok: wrong secrets: ntpd counted $(($(sysstat "authentication failed") - auth_failed_before)) authentication failures and neither agent synchronised"

safe timeout 10 "$NTPQ" -c sysstats 127.0.0.1 | sed 's/^/    ntpd: /'
for c in "rate limited" "KoD responses" "restricted"; do
  n=$(sysstat "$c")
  [ "$n" = 0 ] || fail "ntpd '$c' = $n: our agents' polling must not trip 'restrict default kod limited'"
done
log "ok: ntpd rate-limited nothing and sent no KoD"

# Control: the rule was live for these addresses. A client that ignores pacing (60 requests 20 ms
# apart, from 192.0.2.6) does get rate-limited and KoD'd.
ip addr add 192.0.2.6/32 dev lo
safe timeout 30 /usr/bin/python3 - <<'EOF' | sed 's/^/    /'
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.05)
answers = kods = 0
for i in range(60):
    req = bytearray(48)
    req[0] = 0x23  # LI 0, version 4, mode 3
    struct.pack_into('>Q', req, 40, int((time.time() + 2208988800) * 2**32) + i)
    s.sendto(bytes(req), ('192.0.2.6', 123))
    try:
        reply = s.recv(1024)
        answers += 1
        kods += reply[1] == 0 and reply[12:16] == b'RATE'
    except socket.timeout:
        pass
    time.sleep(0.02)
print("flood from 192.0.2.6: 60 requests, %d answers, %d of them KoD RATE" % (answers, kods))
EOF
limited=$(sysstat "rate limited")
[ "${limited:-0}" -gt 0 ] || fail "control failed: a 50 request/s flood was not rate-limited, so 'limited' was not in force"
log "ok: control: the flood was rate-limited ($limited requests), our agents were not"
for a in "${AGENTS[@]}"; do alive "$a" || fail "$a died"; done
alive ntpd || fail "ntpd died"
log "PASS"
