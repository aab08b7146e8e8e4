#!/bin/bash
# The fully static programs of the tarball and the RPMs (#12): //agent:ntpfleet-agent-static,
# //controller:ntpfleet-controller-static, //ctl:ntpfleetctl-static. Checks, each of which a
# dynamic or NSS-using build fails:
#   (a) each is an ELF executable with no interpreter (PT_INTERP) and no dynamic section (so no
#       NEEDED library), and has no glibc NSS module loader inside ("libnss_%s.so": getpwnam,
#       getaddrinfo and friends would load the host's NSS modules). The checker is first shown
#       to fail on the dynamic agent.
#   (b) in an otherwise EMPTY root (the program and its configuration, nothing else: no libc, no
#       /etc/nsswitch.conf, no /dev), all three answer --help, and `ntpfleet-agent --check-config`
#       accepts an ntp.conf with a numeric server, a name, the local clock, restrict lines and a
#       driftfile, and prints them back.
#   (c) a name from the root's OWN /etc/hosts: the agent resolves `server ntp.test` to the
#       loopback address written there (127.1.2.3, which no other source would give), and the
#       DNS server the root's resolv.conf names (a trap on 127.0.0.53 that counts queries) is not
#       asked; a name not in the hosts file is (the control: the trap can count). The agent's
#       control socket gets the group `ntpfleet` from the root's own /etc/group (0660, gid 4242).
#   (d) as on CentOS 7's kernel 3.10 (tests/static/kernel_3_10.cc: every system call newer than
#       3.10 fails with ENOSYS, uname says 2.6): in the root, with loopback up and only
#       /dev/{null,random,urandom} added, `ntpfleetctl certs` makes a CA and certificates
#       (OpenSSL's random numbers), the controller serves on mutual TLS, the agent reports to it
#       by name (controller.test from the root's /etc/hosts, through gRPC's c-ares resolver),
#       `ntpfleetctl status` over mutual TLS lists the node as connected, a client without a
#       certificate is refused, and /metrics answers over HTTP.
# Everything runs in the test's own network, mount (and, not as root, user) namespaces, every
# program without CAP_SYS_TIME.
#
# Usage: static_binaries_test.sh AGENT_STATIC CONTROLLER_STATIC CTL_STATIC AGENT_DYNAMIC
#        KERNEL_3_10 PROC_SH
set -uo pipefail
# chroot(8) and ip(8) live in sbin, which Bazel's test PATH leaves out.
export PATH="$PATH:/usr/sbin:/sbin"

abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

if [ -z "${NTPFLEET_STATIC_INSIDE:-}" ]; then
  args=()
  for a in "$@"; do args+=("$(abspath "$a")"); done
  export NTPFLEET_STATIC_INSIDE=1
  userns=()
  [ "$(id -u)" = 0 ] || userns=(--map-root-user)
  # --kill-child: if unshare dies (bazel's timeout), the kernel ends everything inside.
  exec unshare "${userns[@]}" --net --mount --fork --kill-child -- bash "$0" "${args[@]}"
fi

AGENT="$1" CONTROLLER="$2" CTL="$3" AGENT_DYNAMIC="$4" KERNEL_3_10="$5"
# shellcheck source=tests/testing/proc.sh
source "$6"
WORK="${TEST_TMPDIR:-$(mktemp -d)}/static"
rm -rf "$WORK"
mkdir -p "$WORK"
trap stop_all EXIT
mount --make-rprivate /
CHROOT=$(command -v chroot) || fail "no chroot(8)"

# --- (a) the files themselves ------------------------------------------------------------------
# static_elf FILE: succeeds only for an ELF executable without interpreter, dynamic section or
# NSS loader.
static_elf() {
  local f="$1"
  readelf -hW "$f" 2>/dev/null | grep -q 'Type:[[:space:]]*EXEC' || return 1
  if readelf -lW "$f" | grep -q 'INTERP'; then return 1; fi
  if readelf -dW "$f" | grep -q 'NEEDED'; then return 1; fi
  readelf -dW "$f" | grep -q 'There is no dynamic section' || return 1
  if grep -qa 'libnss_%s.so' "$f"; then return 1; fi
  return 0
}
static_elf "$AGENT_DYNAMIC" && fail "the checker takes the dynamic agent for a static one"
readelf -lW "$AGENT_DYNAMIC" | grep -q 'Requesting program interpreter' ||
  fail "the dynamic agent has no interpreter?"
for b in "$AGENT" "$CONTROLLER" "$CTL"; do
  static_elf "$b" || {
    readelf -lW "$b" | grep -i interp
    readelf -dW "$b" | head -20
    fail "$b is not fully static (interpreter, NEEDED or glibc's NSS loader inside)"
  }
  log "ok: $(basename "$b") is static: no interpreter, no dynamic section, no NSS ($(stat -L -c %s "$b") bytes)"
done

# --- (b) an empty root: the program and its configuration -------------------------------------
ROOT="$WORK/root"
mkdir -p "$ROOT/bin" "$ROOT/etc/ntpfleet"
cp "$AGENT" "$ROOT/bin/ntpfleet-agent"
cp "$CONTROLLER" "$ROOT/bin/ntpfleet-controller"
cp "$CTL" "$ROOT/bin/ntpfleetctl"
in_root() { safe "$CHROOT" "$ROOT" "$@"; }

for b in ntpfleet-agent ntpfleet-controller ntpfleetctl; do
  # --help exits 0 (common/flags.cc); a crash or a missing library would be 127 or a signal's
  # 128+N, and no usage text.
  rc=0
  in_root "/bin/$b" --help >"$WORK/$b.help" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { cat "$WORK/$b.help"; fail "$b --help exited $rc in the empty root"; }
  grep -q "^$b: " "$WORK/$b.help" || { cat "$WORK/$b.help"; fail "$b --help printed no usage"; }
  grep -q "Flags from .*main.cc" "$WORK/$b.help" || fail "$b --help lists no flags"
  log "ok: $b --help in the empty root"
done

cat >"$ROOT/etc/ntpfleet/agent.conf" <<'EOF'
# A classic ntp.conf, as on a CentOS 7 node.
driftfile /var/lib/ntpfleet/drift
restrict default kod nomodify notrap nopeer noquery
restrict 127.0.0.1
server 127.0.0.1 iburst
server ntp.test iburst
server 127.127.1.0
fudge 127.127.1.0 stratum 10
EOF
[ "$(find "$ROOT" -type f | wc -l)" = 4 ] || fail "the root is not empty: $(find "$ROOT")"
in_root /bin/ntpfleet-agent --check-config --config /etc/ntpfleet/agent.conf \
  >"$WORK/check.out" 2>&1 || { cat "$WORK/check.out"; fail "--check-config failed in the empty root"; }
cat "$WORK/check.out"
for line in "server 127.0.0.1 iburst" "server ntp.test iburst" "server 127.127.1.0" \
  "fudge 127.127.1.0 stratum 10" "driftfile /var/lib/ntpfleet/drift" "restrict 127.0.0.1"; do
  grep -qxF "$line" "$WORK/check.out" || fail "--check-config lost '$line'"
done
grep -q "^restrict default .*nomodify" "$WORK/check.out" || fail "--check-config lost restrict default"
log "ok: ntpfleet-agent --check-config in the empty root"

# --- (c) a name from the root's own /etc/hosts, no DNS query -------------------------------------
# The root's resolv.conf names a DNS server on 127.0.0.53 that is a trap: it counts the queries
# it gets and never answers.
ip link set lo up
mkdir -p "$ROOT/tmp"
printf '127.1.2.3 ntp.test\n' >"$ROOT/etc/hosts"
printf 'nameserver 127.0.0.53\noptions timeout:1 attempts:1\n' >"$ROOT/etc/resolv.conf"
DNS_COUNT="$WORK/dns.count"
start dns_trap python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.53", 53))
n = 0
open(sys.argv[1], "w").write("0")
while True:
    s.recv(4096)
    n += 1
    open(sys.argv[1], "w").write(str(n))
' "$DNS_COUNT"
wait_until 20 "the DNS trap listens" test -s "$DNS_COUNT"
queries() { cat "$DNS_COUNT"; }
# The control: a name that is not in the hosts file goes to the DNS server.
printf 'server nowhere.test iburst\n' >"$ROOT/etc/ntpfleet/nowhere.conf"
start nowhere "$CHROOT" "$ROOT" /bin/ntpfleet-agent --config /etc/ntpfleet/nowhere.conf \
  --clock=sim --port 0 --listen 127.0.0.1 --control-socket ""
wait_until 60 "the agent gives up on nowhere.test" grep -q "cannot resolve nowhere.test" "$WORK/nowhere.log"
stop nowhere
[ "$(queries)" -ge 1 ] || fail "the DNS trap saw no query for nowhere.test: it cannot tell"
log "ok: nowhere.test (not in the hosts file) asked the DNS server ($(queries) queries)"
before=$(queries)
printf 'server ntp.test iburst\n' >"$ROOT/etc/ntpfleet/resolve.conf"
# The root's own /etc/group names the ntpfleet group: the control socket gets it.
printf 'root:x:0:\nntpfleet:x:4242:\n' >"$ROOT/etc/group"
start resolve "$CHROOT" "$ROOT" /bin/ntpfleet-agent --config /etc/ntpfleet/resolve.conf \
  --clock=sim --port 0 --listen 127.0.0.1 --control-socket /tmp/agent.sock
wait_until 60 "the agent resolves ntp.test from the root's /etc/hosts" \
  grep -q "ntp.test is 127.1.2.3:123" "$WORK/resolve.log"
wait_until 20 "the control socket" test -S "$ROOT/tmp/agent.sock"
if [ "$(id -u)" = 0 ] && [ -z "$(cat /proc/self/uid_map | awk '$1 == 0 && $2 != 0')" ]; then
  # (A user namespace that maps only root cannot chown to gid 4242.)
  [ "$(stat -c '%a %g' "$ROOT/tmp/agent.sock")" = "660 4242" ] ||
    fail "control socket $(stat -c '%a %g' "$ROOT/tmp/agent.sock"), want 660 4242 (group ntpfleet from the root's /etc/group)"
  log "ok: the control socket is 0660 group ntpfleet (4242) from the root's /etc/group"
fi
stop resolve
stop dns_trap
cat "$WORK/resolve.log"
[ "$(queries)" = "$before" ] || fail "resolving ntp.test asked the DNS server ($(queries) - $before queries)"
log "ok: ntp.test resolved from the root's /etc/hosts, no DNS query"

# --- (d) as on kernel 3.10: mutual TLS, gRPC's resolver, /metrics -----------------------------
mkdir -p "$ROOT/dev" "$ROOT/var/lib/ntpfleet" "$ROOT/etc/ntpfleet/tls"
for d in null random urandom; do
  : >"$ROOT/dev/$d"
  mount --bind "/dev/$d" "$ROOT/dev/$d" || fail "cannot bind /dev/$d into the root"
done
printf '127.0.0.1 controller.test\n' >>"$ROOT/etc/hosts"
old() { safe "$KERNEL_3_10" "$CHROOT" "$ROOT" "$@"; }
old /bin/ntpfleet-agent --check-config --config /etc/ntpfleet/agent.conf >/dev/null 2>&1 ||
  fail "--check-config fails as on kernel 3.10"
TLS=/etc/ntpfleet/tls
for c in "init --dir $TLS" "issue --dir $TLS --controller controller.test" \
  "issue --dir $TLS --node node-a" "issue --dir $TLS --user vera --role viewer"; do
  # shellcheck disable=SC2086
  old /bin/ntpfleetctl certs $c >>"$WORK/certs.log" 2>&1 || { cat "$WORK/certs.log"; fail "certs $c"; }
done
start controller "$KERNEL_3_10" "$CHROOT" "$ROOT" /bin/ntpfleet-controller \
  --listen 127.0.0.1:0 --db /var/lib/ntpfleet/controller.db --metrics-listen 127.0.0.1:0 \
  --tls-cert "$TLS/controller.test.pem" --tls-key "$TLS/controller.test.key" --tls-ca "$TLS/ca.pem"
wait_until 60 "the controller listens" grep -q "listening on 127.0.0.1:" "$WORK/controller.log"
CPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/controller.log" | head -1)
MPORT=$(sed -n 's/.*metrics on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/controller.log" | head -1)
[ -n "$CPORT" ] && [ -n "$MPORT" ] || fail "no ports in the controller's log"
cat >"$ROOT/etc/ntpfleet/node-a.conf" <<EOF
server 127.127.1.0
fudge 127.127.1.0 stratum 10
controller controller.test:$CPORT
node_name node-a
tls_cert $TLS/node-a.pem
tls_key $TLS/node-a.key
tls_ca $TLS/ca.pem
EOF
start agent "$KERNEL_3_10" "$CHROOT" "$ROOT" /bin/ntpfleet-agent --config /etc/ntpfleet/node-a.conf \
  --clock=sim --port 0 --listen 127.0.0.1 --control-socket ""
status() {
  old /bin/ntpfleetctl --controller "controller.test:$CPORT" --color never --tls-ca "$TLS/ca.pem" \
    --tls-cert "$TLS/vera.pem" --tls-key "$TLS/vera.key" status >"$WORK/status.out" 2>&1
}
connected() { status && grep -qE '^node-a +local clock' "$WORK/status.out"; }
wait_until 90 "node-a reports over mutual TLS and ntpfleetctl sees it" connected
cat "$WORK/status.out"
grep -q "1 node: 1 connected" "$WORK/status.out" || fail "status: node-a not connected"
grep -q "node-a connected from node:node-a" "$WORK/controller.log" ||
  fail "the controller did not verify node-a's certificate"
rc=0
old /bin/ntpfleetctl --controller "controller.test:$CPORT" status >"$WORK/plain.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || { cat "$WORK/plain.out"; fail "a client without a certificate: exit $rc, want 1"; }
grep -q "cannot reach the controller" "$WORK/plain.out" || fail "plain text: $(cat "$WORK/plain.out")"
exec 3<>"/dev/tcp/127.0.0.1/$MPORT" || fail "cannot connect to /metrics"
printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
cat <&3 >"$WORK/metrics.out"
exec 3<&-
grep -q '^HTTP/1.[01] 200' "$WORK/metrics.out" || { head "$WORK/metrics.out"; fail "/metrics"; }
grep -q '^ntpfleet_controller_insecure 0' "$WORK/metrics.out" || fail "/metrics has no insecure gauge"
for p in controller agent; do alive "$p" || fail "$p died"; done
log "ok: as on kernel 3.10: certificates, mutual TLS by name, status, refusal, /metrics"
log "PASS"
