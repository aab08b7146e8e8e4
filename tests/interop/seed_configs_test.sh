#!/bin/bash
# The deployment guide's two ntp.conf files (seed-server-ntp.conf, seed-client-ntp.conf: byte-for-
# byte copies of /work/shared/seed/*.conf), run UNCHANGED by our agent on the guide's two hosts,
# 192.168.242.51 (server) and 192.168.242.52 (client). Those addresses exist only on the loopback
# of this test's own network namespace: nothing is ever sent to a real 192.168.242.51. There is no
# network and no DNS here. In this test's own mount namespace, /etc/ntp and /var/lib/ntp are empty
# tmpfs mounts (over a tmpfs-backed overlay of /etc and /var/lib, since the directories need not
# exist on this machine), so the configs' driftfile, keys and includefile touch nothing real.
#
# What is correct, and asserted (see README.md for the reasoning):
#   * both configs load with warnings only (missing includefile and keys file), never an error;
#   * server (no local clock, upstreams ntp1/ntp2.aliyun.com): logs "cannot resolve
#     ntp1.aliyun.com ..., retrying", keeps running and serving on 192.168.242.51:123, and, having
#     no source, answers as an unsynchronised server: LI 3 (alarm), stratum 16 (or 0). A real
#     client (ntpdig) refuses that answer;
#   * client: queries 192.168.242.51, gets that reply (reach 1), shows it unusable with the reason
#     "unsynchronised ..." in `ntpfleetctl peers`, and selects its local clock
#     (`server 127.0.0.1` + `fudge 127.0.0.1 stratum 10`: the guide's way of writing ntpd's
#     127.127.1.0): '*LOCAL(0)' at stratum 10. It then serves its own clock at stratum 10, LI 0,
#     on 192.168.242.52:123: ntpdig sees its simulated +30 ms.
source "$(dirname "$0")/lib.sh"
interop_init "$@"

HERE="$(cd "$(dirname "$0")" && pwd)"
SERVER_CONF="$HERE/seed-server-ntp.conf"
CLIENT_CONF="$HERE/seed-client-ntp.conf"
SERVER=192.168.242.51
CLIENT=192.168.242.52
NTPDIG="$PEERS/bin/ntpdig"

# The guide's hosts, on this namespace's loopback only.
ip addr add "$SERVER/32" dev lo
ip addr add "$CLIENT/32" dev lo
# /etc/ntp and /var/lib/ntp: empty tmpfs in this mount namespace only.
mkdir -p "$WORK/ovl"
mount -t tmpfs -o size=16m,mode=0700 ntpfleet-ovl "$WORK/ovl"
for d in /etc /var/lib; do
  n=${d//\//_}
  mkdir -p "$WORK/ovl/upper$n" "$WORK/ovl/work$n"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$WORK/ovl/upper$n,workdir=$WORK/ovl/work$n" "$d"
done
mkdir -p /etc/ntp /var/lib/ntp
mount -t tmpfs -o size=1m ntpfleet-etc-ntp /etc/ntp
mount -t tmpfs -o size=1m ntpfleet-var-lib-ntp /var/lib/ntp
log "private $SERVER and $CLIENT on lo; /etc/ntp and /var/lib/ntp are empty tmpfs here"

# 1. Both configs are accepted, with warnings only.
for c in "$SERVER_CONF" "$CLIENT_CONF"; do
  name=check-$(basename "$c" .conf)
  rc=0
  safe "$AGENT" --config "$c" --check-config >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  sed 's/^/    /' "$WORK/$name.out" "$WORK/$name.err"
  [ "$rc" = 0 ] || fail "$(basename "$c"): --check-config exit status $rc, expected 0"
  if grep -v ' WARN ' "$WORK/$name.err" | grep -q .; then
    fail "$(basename "$c"): --check-config printed more than warnings"
  fi
  grep -q "includefile /etc/ntp/crypto/pw not found" "$WORK/$name.err" ||
    fail "$(basename "$c"): expected a warning about the missing includefile"
done
grep -q '^server ntp1.aliyun.com iburst$' "$WORK/check-seed-server-ntp.out" || fail "server config: ntp1.aliyun.com missing"
grep -q '^server ntp2.aliyun.com iburst$' "$WORK/check-seed-server-ntp.out" || fail "server config: ntp2.aliyun.com missing"
grep -q '^server 192.168.242.51$' "$WORK/check-seed-client-ntp.out" || fail "client config: 192.168.242.51 missing"
grep -q '^fudge 127.0.0.1 stratum 10$' "$WORK/check-seed-client-ntp.out" || fail "client config: local clock at stratum 10 missing"
log "ok: both seed configs load with warnings only"

# 2. The server.
start_agent server "$SERVER_CONF" --listen "$SERVER" --port 123
wait_until 10 "server serves on port 123" logged server "serving NTP on UDP port 123"
for h in ntp1.aliyun.com ntp2.aliyun.com; do
  wait_until 10 "server logs 'cannot resolve $h', retrying" logged server "cannot resolve $h.*retrying"
  peers_match server "^  $h: cannot resolve $h" || fail "ntpfleetctl peers on the server shows no 'cannot resolve' reason for $h"
done
peers server | sed 's/^/    server: /'
[ -z "$(system_peer_row server)" ] || fail "the server has a system peer, but it has no usable source"
if grep -q ' ERROR ' "$WORK/server.log"; then fail "the server logged an error"; fi
grep -q "keys file /etc/ntp/keys" "$WORK/server.log" || fail "the server does not warn about the missing keys file"

# A real client: NTPsec's ntpdig asks the server and must refuse the unsynchronised answer.
rc=0
safe timeout 20 "$NTPDIG" -d -d -t 2 "$SERVER" >"$WORK/dig-server.out" 2>"$WORK/dig-server.err" || rc=$?
sed 's/^/    /' "$WORK/dig-server.out" "$WORK/dig-server.err"
[ "$rc" != 0 ] || fail "ntpdig accepted a time from the seed server, which has no source"
/usr/bin/python3 - "$WORK/dig-server.out" >"$WORK/server-reply.txt" <<'EOF' || fail "no reply from the seed server in ntpdig's dump"
import re, sys
data = bytearray()
for line in open(sys.argv[1]):
    m = re.match(r'^((?:[0-9a-f]{2} ){1,16})', line)
    if m:
        data += bytes.fromhex(m.group(1).replace(' ', ''))
assert len(data) >= 96, "%d bytes" % len(data)
rep = data[48:96]
print("leap=%d mode=%d stratum=%d" % (rep[0] >> 6, rep[0] & 7, rep[1]))
EOF
reply=$(cat "$WORK/server-reply.txt")
log "seed server's reply: $reply"
[[ "$reply" =~ ^leap=3\ mode=4\ stratum=(16|0)$ ]] ||
  fail "the seed server answered '$reply'; an unsynchronised server must answer LI 3 with stratum 16 (or 0)"
log "ok: server: cannot resolve its upstreams, keeps running, answers as unsynchronised; ntpdig refuses it"

# 3. The client.
start_agent client "$CLIENT_CONF" --listen "$CLIENT" --port 123 --sim-offset=30ms
got_reply() { [ "$(peer_field client "$SERVER" 7)" != 0 ] && [ -n "$(peer_field client "$SERVER" 7)" ]; }
wait_until 15 "client got a reply from $SERVER (reach != 0)" got_reply
wait_until 15 "client shows why $SERVER is unusable" peers_match client "^  $SERVER: unsynchronised"
wait_until 15 "client selected its local clock: '*LOCAL(0)' stratum 10" peers_match client '^\*LOCAL\(0\) +\.LOCL\. +10 l '
peers client | sed 's/^/    client: /'
row=$(peers client | grep "^ $SERVER ")
[ "$(awk '{print $3}' <<<"$row")" = 16 ] || fail "client shows $SERVER at stratum $(awk '{print $3}' <<<"$row"), expected 16"
logged client "local clock (stratum 10)" || fail "the client does not log that it runs on its local clock"
if grep -q ' ERROR ' "$WORK/client.log"; then fail "the client logged an error"; fi
log "ok: client: $SERVER answered unsynchronised (shown with its reason), fell back to its local clock"

# The client now serves its own clock: stratum 10, no leap warning, its own (+30 ms) time.
for _ in 1 2 3 4 5; do
  rc=0
  safe timeout 20 "$NTPDIG" -j -t 2 "$CLIENT" >"$WORK/dig-client.out" 2>"$WORK/dig-client.err" || rc=$?
  sed 's/^/    /' "$WORK/dig-client.out" "$WORK/dig-client.err"
  [ "$rc" = 0 ] || fail "ntpdig got no time from the client"
  bound=$(sed -n 's/.*"precision":\([0-9.]*\).*/\1/p' "$WORK/dig-client.out")
  abs_lt "$bound" 0.002 && break
done
grep -q '"stratum":10,"leap":"no-leap"' "$WORK/dig-client.out" || fail "the client does not serve stratum 10, no-leap"
offset=$(sed -n 's/.*"offset":\([-0-9.]*\).*/\1/p' "$WORK/dig-client.out")
abs_lt "$(awk -v o="$offset" 'BEGIN { print o - 0.030 }')" 0.003 ||
  fail "ntpdig sees the client at $offset s, expected its simulated +0.030 s"
log "ok: client serves its local clock on $CLIENT:123 (stratum 10, offset $offset s = its simulated +30 ms)"

for a in server client; do alive "$a" || fail "$a died"; done
log "PASS"
