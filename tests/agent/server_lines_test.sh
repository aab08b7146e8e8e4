#!/bin/bash
# `ntpfleet-agent --check-config` on server lines that name one server several ways, in forms
# resolvers read differently, or at an address that can never answer (issue #15, items 3 and 13).
# Only --check-config: nothing is sent, no port is bound.
set -uo pipefail
AGENT=$1
T=${TEST_TMPDIR:-$(mktemp -d)}
fail() { echo "FAIL: $*"; exit 1; }

echo "== one server written several ways is one source, and the warning names the lines"
printf 'server 127.0.0.1:18200\nserver [::ffff:127.0.0.1]:18200 iburst prefer\nserver [0::ffff:7f00:1]:18200\n' \
  > "$T/same.conf"
"$AGENT" --config "$T/same.conf" --check-config --port 18299 >"$T/same.out" 2>"$T/same.err"
rc=$?
cat "$T/same.out" "$T/same.err"
[ "$rc" = 0 ] || fail "exit code $rc, want 0"
n=$(grep -c '^server ' "$T/same.out")
[ "$n" = 1 ] || fail "$n server lines in the effective configuration, want 1"
grep -qx 'server 127.0.0.1:18200 iburst prefer' "$T/same.out" || fail "iburst/prefer of the merged line lost"
grep -qF "same.conf:2: server [::ffff:127.0.0.1]:18200 is 127.0.0.1:18200, the same server as $T/same.conf:1 (server 127.0.0.1:18200): polled once" \
  "$T/same.err" || fail "no warning naming both lines"
grep -qF "same.conf:3: server [0::ffff:7f00:1]:18200 is 127.0.0.1:18200" "$T/same.err" ||
  fail "no warning for the third spelling"

echo "== forms that resolvers read differently are refused: exit 2, FILE:LINE and the standard form"
for host in 127.1 127.000.000.001 0x7f.1; do
  printf 'server 127.0.0.1:18200\nserver %s:18200\n' "$host" > "$T/aton.conf"
  "$AGENT" --config "$T/aton.conf" --check-config >"$T/aton.out" 2>&1
  rc=$?
  cat "$T/aton.out"
  [ "$rc" = 2 ] || fail "$host: exit code $rc, want 2"
  grep -qF "aton.conf:2: '$host' is not a standard IPv4 address" "$T/aton.out" ||
    fail "$host: no FILE:LINE message"
  grep -qF "inet_aton reads this one as 127.0.0.1" "$T/aton.out" || fail "$host: no standard form"
done

echo "== addresses that can never answer are named, with the reason"
printf 'server 0.0.0.0\nserver 255.255.255.255\nserver 239.1.2.3\nserver [::]:123\nserver 127.0.0.1:18299\nserver 127.0.0.1:18300\n' \
  > "$T/never.conf"
"$AGENT" --config "$T/never.conf" --check-config --port 18299 >"$T/never.out" 2>&1
rc=$?
cat "$T/never.out"
[ "$rc" = 0 ] || fail "exit code $rc, want 0 (warnings)"
for want in "never.conf:1: server 0.0.0.0:123 is never polled: the unspecified" \
  "never.conf:2: server 255.255.255.255:123 is never polled: the limited broadcast address" \
  "never.conf:3: server 239.1.2.3:123 is never polled: a multicast address" \
  "never.conf:4: server [::]:123 is never polled: the unspecified" \
  "never.conf:5: server 127.0.0.1:18299 is never polled: it is this agent's own NTP server (it serves on UDP port 18299)"; do
  grep -qF -- "$want" "$T/never.out" || fail "no '$want'"
done
grep -q "never.conf:6" "$T/never.out" && fail "127.0.0.1:18300 (another port) warned about"
echo PASS
