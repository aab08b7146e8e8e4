#!/bin/bash
# NTPsec's ntpdig (1.2.2) and `ntpdate -q` as clients of our agent. ntpdig only talks to port 123,
# so the agent serves on 127.0.0.1:123 of this test's own network namespace.
#   * ntpdig -j: offset < 1 ms, stratum 10, leap "no-leap";
#   * `ntpdate -q 127.0.0.1` (Debian's ntpdate is a shim: -q runs `ntpdig -t 1 HOST`): the same in
#     ntpdate's one-line format;
#   * the reply's header as ntpdig received it (its -d -d hex dump): LI 0, version 4, mode 4,
#     stratum 10, refid 127.127.1.0, sane precision, root delay and root dispersion, reference
#     timestamp no later than the transmit timestamp, origin = the request's transmit timestamp;
#   * ntpdig -a 1 / -a 2 (MD5 / SHA1): ntpdig verifies our signed replies; a wrong secret gets no
#     reply ntpdig accepts; an id the agent does not have gets a crypto-NAK, and no time.
source "$(dirname "$0")/lib.sh"
interop_init "$@"

NTPDIG="$PEERS/bin/ntpdig"

cat >"$WORK/local.conf" <<EOF
server 127.127.1.0
fudge 127.127.1.0 stratum 10
keys $WORK/ntp.keys
trustedkey 1 2
EOF
start_agent agent "$WORK/local.conf" --port 123 --sim-offset=0 --sim-freq-ppm=0
wait_until 15 "agent has selected its local clock" peers_match agent '^\*LOCAL\(0\)'
logged agent "serving NTP on UDP port 123" || fail "the agent does not say it serves on port 123"

# dig NAME ARGS...: ntpdig ARGS 127.0.0.1, stdout in NAME.out, stderr in NAME.err; returns its status.
dig() {
  local name="$1"
  shift
  local rc=0
  log "ntpdig $* 127.0.0.1"
  safe timeout 20 "$NTPDIG" "$@" 127.0.0.1 >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  sed 's/^/    /' "$WORK/$name.out" "$WORK/$name.err"
  return "$rc"
}
json_field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" "$WORK/$1.out"; }

# A single ntpdig exchange measures the offset only to within its own error bound (half the round
# trip plus the server's precision; "+/-" in its output, "precision" in its JSON): on a busy
# 2-core CI machine a Python client can be descheduled between its timestamps and the packet. So a
# measurement counts only if that bound is under 1 ms; up to 5 tries for one that is.
PRECISE=0.001

# 1. ntpdig -j
for _ in 1 2 3 4 5; do
  dig json -j -t 2 || fail "ntpdig -j failed"
  bound=$(json_field json precision)
  abs_lt "$bound" "$PRECISE" && break
  log "error bound $bound s is too wide to judge a 1 ms offset; measuring again"
done
abs_lt "$bound" "$PRECISE" || fail "ntpdig -j: no measurement with an error bound under 1 ms in 5 tries"
offset=$(json_field json offset)
stratum=$(json_field json stratum)
leap=$(json_field json leap)
[ -n "$offset" ] || fail "no offset in ntpdig's JSON"
abs_lt "$offset" 0.001 || fail "ntpdig -j: offset $offset s (error bound $bound s), expected |offset| < 1 ms"
[ "$stratum" = 10 ] || fail "ntpdig -j: stratum '$stratum', expected 10"
[ "$leap" = no-leap ] || fail "ntpdig -j: leap '$leap', expected no-leap"
log "ok: ntpdig -j: offset $offset s (+/- $bound), stratum $stratum, leap $leap"

# 2. What `ntpdate -q 127.0.0.1` runs on Debian 12 (ntpsec-ntpdate's shim: -q => ntpdig -t 1).
# e.g. "2026-11-25 22:56:20.448140 (+0000) +0.000015 +/- 0.000070 127.0.0.1 s10 no-leap"
re='^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ \([+-][0-9]{4}\) ([+-][0-9.]+) \+/- ([0-9.]+) 127\.0\.0\.1 s10 no-leap$'
for _ in 1 2 3 4 5; do
  dig ntpdate -t 1 || fail "ntpdate -q (ntpdig -t 1) failed"
  line=$(tail -n 1 "$WORK/ntpdate.out")
  [[ "$line" =~ $re ]] || fail "ntpdate -q: unexpected line '$line' (expected '... 127.0.0.1 s10 no-leap')"
  abs_lt "${BASH_REMATCH[2]}" "$PRECISE" && break
  log "error bound ${BASH_REMATCH[2]} s is too wide to judge a 1 ms offset; measuring again"
done
abs_lt "${BASH_REMATCH[2]}" "$PRECISE" || fail "ntpdate -q: no measurement with an error bound under 1 ms in 5 tries"
abs_lt "${BASH_REMATCH[1]}" 0.001 || fail "ntpdate -q: offset ${BASH_REMATCH[1]} s, expected |offset| < 1 ms"
log "ok: ntpdate -q: offset ${BASH_REMATCH[1]} s, error bound ${BASH_REMATCH[2]} s, s10 no-leap"

# 3. The reply header, from ntpdig's own dump (on stdout) of the packets it sent and received.
dig debug -d -d -t 2 || fail "ntpdig -d -d failed"
/usr/bin/python3 - "$WORK/debug.out" >"$WORK/fields.txt" <<'EOF' || fail "could not decode ntpdig's packet dump"
import re, struct, sys
data = bytearray()
for line in open(sys.argv[1]):
    m = re.match(r'^((?:[0-9a-f]{2} ){1,16})', line)
    if m:
        data += bytes.fromhex(m.group(1).replace(' ', ''))
assert len(data) >= 96, "expected a 48-byte request and a 48-byte reply, got %d bytes" % len(data)
req, rep = data[:48], data[48:96]
li_vn_mode, stratum, poll, precision, rdelay, rdisp, refid = struct.unpack('>BBbbII4s', rep[:16])
ref, org, rec, xmt = struct.unpack('>QQQQ', rep[16:48])
req_xmt = struct.unpack('>Q', req[40:48])[0]
print("leap=%d" % (li_vn_mode >> 6))
print("version=%d" % ((li_vn_mode >> 3) & 7))
print("mode=%d" % (li_vn_mode & 7))
print("stratum=%d" % stratum)
print("precision=%d" % precision)
print("refid=%s" % '.'.join(str(b) for b in refid))
print("root_delay=%.6f" % (rdelay / 65536.0))
print("root_dispersion=%.6f" % (rdisp / 65536.0))
print("origin_is_request_transmit=%d" % (org == req_xmt))
print("reference_age=%.6f" % ((xmt - ref) / 2.0**32))
print("transmit_minus_receive=%.6f" % ((xmt - rec) / 2.0**32))
EOF
sed 's/^/    reply: /' "$WORK/fields.txt"
field() { sed -n "s/^$1=//p" "$WORK/fields.txt"; }
[ "$(field leap)" = 0 ] || fail "reply LI $(field leap), expected 0 (no warning)"
[ "$(field version)" = 4 ] || fail "reply version $(field version), expected 4"
[ "$(field mode)" = 4 ] || fail "reply mode $(field mode), expected 4 (server)"
[ "$(field stratum)" = 10 ] || fail "reply stratum $(field stratum), expected 10 (fudge stratum)"
[ "$(field refid)" = 127.127.1.0 ] || fail "reply refid $(field refid), expected 127.127.1.0 (the local clock)"
p=$(field precision)
[ "$p" -ge -30 ] && [ "$p" -le -6 ] || fail "reply precision $p, expected between -30 and -6"
# A local clock is its own reference: no delay, and a dispersion well under a second.
awk -v d="$(field root_delay)" 'BEGIN { exit !(d >= 0 && d < 0.001) }' ||
  fail "root delay $(field root_delay) s: expected 0 (< 1 ms) for a local clock"
awk -v d="$(field root_dispersion)" 'BEGIN { exit !(d >= 0 && d < 1) }' ||
  fail "root dispersion $(field root_dispersion) s: expected >= 0 and < 1 s"
[ "$(field origin_is_request_transmit)" = 1 ] || fail "reply origin is not the request's transmit timestamp"
awk -v a="$(field reference_age)" 'BEGIN { exit !(a >= 0 && a < 1100) }' ||
  fail "reference timestamp $(field reference_age) s before transmit: expected 0..1100 s"
awk -v a="$(field transmit_minus_receive)" 'BEGIN { exit !(a >= 0 && a < 0.1) }' ||
  fail "transmit - receive = $(field transmit_minus_receive) s: expected 0..0.1 s"
log "ok: reply header as configured (stratum 10, refid 127.127.1.0, LI 0) with sane root delay/dispersion"

# 4. Authentication.
for k in 1 2; do
  dig "auth$k" -a "$k" -k "$WORK/ntp.keys" -d -t 2 || fail "ntpdig -a $k failed"
  grep -q "MAC verification on reply from 127.0.0.1 succeeded" "$WORK/auth$k.err" ||
    fail "ntpdig -a $k: ntpdig did not verify our reply's MAC"
  grep -q ' 127\.0\.0\.1 s10 no-leap$' "$WORK/auth$k.out" || fail "ntpdig -a $k: no time reported"
  log "ok: ntpdig -a $k verified the agent's signed reply"
  if dig "wrong$k" -a "$k" -k "$WORK/ntp-wrong.keys" -t 2; then
    fail "ntpdig -a $k with a wrong secret got a time from the agent"
  fi
  if grep -q ' s10 ' "$WORK/wrong$k.out"; then fail "ntpdig -a $k (wrong secret) printed a time"; fi
  log "ok: wrong secret for key $k: no time"
done
# (ntpdig reads a key of more than 20 characters as hex: keep this one short.)
printf '3 MD5 notagentkey\n' >"$WORK/unknown.keys"
# The agent answers an unknown key id with a crypto-NAK: the reply header and key id 0 alone
# (RFC 5905 §7.3). NTPsec 1.2.2's ntpdig does not accept it (it even dies with an AttributeError
# in read_append, an ntpdig bug): either way, no time.
if dig unknown -a 3 -k "$WORK/unknown.keys" -d -d -t 2; then
  fail "ntpdig -a 3 (a key the agent does not have) got a time"
fi
if grep -q ' s10 ' "$WORK/unknown.out"; then fail "ntpdig -a 3 printed a time"; fi
/usr/bin/python3 - "$WORK/unknown.out" <<'EOF' ||
import re, sys
data = bytearray()
for line in open(sys.argv[1]):
    m = re.match(r'^((?:[0-9a-f]{2} ){1,16})', line)
    if m:
        data += bytes.fromhex(m.group(1).replace(' ', ''))
assert len(data) == 68 + 52, "%d bytes" % len(data)
assert data[48:52] == b'\0\0\0\3', "request key id"
assert data[68] & 7 == 4 and data[68 + 48:] == b'\0\0\0\0', "not a crypto-NAK"
EOF
  fail "ntpdig -a 3: expected a 68-byte request signed with key 3 and a 52-byte crypto-NAK in ntpdig's dump"
log "ok: unknown key id: the agent sent a crypto-NAK, and ntpdig took no time from it"

alive agent || fail "the agent died"
log "PASS"
