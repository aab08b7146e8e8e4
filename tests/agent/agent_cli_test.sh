#!/bin/bash
# ntpfleet-agent as a user meets it: messages for bad config lines, ports out of range, a taken
# port and names that do not resolve; --check-config; several server threads; --once. Agents run on
# simulated clocks.
set -uo pipefail
AGENT=$1
CTL=$2
SEED_DIR=$(dirname "$3")
T=${TEST_TMPDIR:-$(mktemp -d)}
# Unix socket paths must be short (108 bytes): keep the control sockets in a short directory.
S=$(mktemp -d /tmp/ntpfleet-test.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$S"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# await FILE REGEX [SECONDS]: waits until REGEX appears in FILE (polling every 0.05 s; up to
# SECONDS, 60 by default: on a quiet machine the slowest wait here, an iburst synchronisation,
# takes 2.1 s, and a loaded 2-core machine must have at least 4x that), prints the first capture
# group, and logs to stderr how long it took.
await() {
  local limit="${3:-60}" start_us=${EPOCHREALTIME/./} now_us
  until grep -qE "$2" "$1" 2>/dev/null; do
    now_us=${EPOCHREALTIME/./}
    if ((now_us - start_us >= limit * 1000000)); then
      echo "timed out after ${limit}s waiting for '$2' in $1:"
      cat "$1"
      return 1
    fi
    sleep 0.05
  done
  now_us=${EPOCHREALTIME/./}
  printf 'ok after %d.%03ds (limit %ss): %s\n' $(((now_us - start_us) / 1000000)) \
    $(((now_us - start_us) / 1000 % 1000)) "$limit" "$2" >&2
  sed -nE "s#.*$2.*#\1#p" "$1" | head -1
}

echo "== a misspelt restrict flag: FILE:LINE, a clear message, exit 2"
printf 'server 127.0.0.1:9 iburst\nrestrict default nomodfy\n' > "$T/bad.conf"
"$AGENT" --config "$T/bad.conf" --clock=sim --control-socket "" >"$T/bad.out" 2>&1
rc=$?
cat "$T/bad.out"
[ "$rc" = 2 ] || fail "exit code $rc, want 2"
grep -q "bad.conf:2: unknown restrict flag 'nomodfy'" "$T/bad.out" || fail "no FILE:LINE message"

echo "== ports and addresses are checked, never wrapped: exit 2, the flag or FILE:LINE named"
printf 'server 127.0.0.1:9 iburst\n' > "$T/ok.conf"
expect_usage_error() {  # EXPECTED-TEXT ARGS...
  local want=$1; shift
  "$AGENT" --clock=sim --control-socket "" "$@" >"$T/usage.out" 2>&1
  local rc=$?
  [ "$rc" = 2 ] || { cat "$T/usage.out"; fail "$*: exit code $rc, want 2"; }
  grep -qF -- "$want" "$T/usage.out" || { cat "$T/usage.out"; fail "$*: no '$want'"; }
}
# Flags Abseil would refuse with exit 1: usage errors here, the flag named.
expect_usage_error "ntpfleet-agent: unknown flag --confg; did you mean --config? (see ntpfleet-agent --help)" \
  --confg "$T/ok.conf"
expect_usage_error "--verbose=maybe: not a value this flag takes, e.g. --verbose=true" \
  --config "$T/ok.conf" --verbose=maybe
expect_usage_error "--config needs a value" --config
expect_usage_error "--port: -5 is not a port (1..65535, or 0 for any free port)" \
  --config "$T/ok.conf" --port=-5
expect_usage_error "--port: 70000 is not a port (1..65535, or 0 for any free port)" \
  --config "$T/ok.conf" --port 70000
expect_usage_error "--listen: 99999 is not a port" --config "$T/ok.conf" --listen 127.0.0.1:99999
expect_usage_error "--listen: 70000 is not a port" --config "$T/ok.conf" --listen "[::1]:70000"
expect_usage_error "--listen: 'nohost' is not an IP address" --config "$T/ok.conf" --listen nohost
expect_usage_error "name different ports" --config "$T/ok.conf" --listen 127.0.0.1:5 --port 6
# -1 is "not given": the config's port.
"$AGENT" --config "$T/ok.conf" --port=-1 --check-config >"$T/port.out" 2>&1 || fail "--port=-1 rejected"
grep -q "^port 123$" "$T/port.out" || fail "--port=-1 is not 'not given'"
printf 'server 127.0.0.1:9\nport 99999\n' > "$T/port.conf"
expect_usage_error "port.conf:2: port: 99999 is not a port (1..65535)" --config "$T/port.conf"
printf '# fleet\ncontroller ctl.example:0\n' > "$T/ctl0.conf"
expect_usage_error "ctl0.conf:2: controller: 0 is not a port (1..65535)" --config "$T/ctl0.conf"
printf 'controller ctl.example\n' > "$T/ctlnone.conf"
expect_usage_error "ctlnone.conf:1: controller: 'ctl.example' has no port" --config "$T/ctlnone.conf"
printf 'server 127.0.0.1:9\ntls_cert /etc/ntpfleet/agent.pem\ntls_key /etc/ntpfleet/agent.key\n' \
  > "$T/tls.conf"
expect_usage_error "tls.conf:2: tls_cert without tls_ca: mutual TLS needs tls_cert, tls_key and tls_ca; make them with \`ntpfleetctl certs\`" \
  --config "$T/tls.conf"
printf 'resync_max_step -1\n' > "$T/maxstep.conf"
expect_usage_error "maxstep.conf:1: resync_max_step must not be negative" --config "$T/maxstep.conf"
# A lying node is for tests only: never on the real clock (expect_usage_error
# passes --clock=sim first; the later --clock wins).
expect_usage_error "--sim-report-bias makes the agent report offsets that are not true: it is for tests, and only accepted with --clock=sim" \
  --config "$T/ok.conf" --clock=system --sim-report-bias 5ms
expect_usage_error "only accepted with --clock=sim" --config "$T/ok.conf" --clock=system --sim-report-bias=-2ms

echo "== a missing configuration file"
"$AGENT" --config "$T/none.conf" --clock=sim >"$T/none.out" 2>&1 && fail "started without a config"
grep -q "none.conf" "$T/none.out" || fail "the message does not name the file"

echo "== --check-config on the classic CentOS configs (unchanged)"
for f in server-ntp.conf client-ntp.conf; do
  "$AGENT" --config "$SEED_DIR/$f" --check-config >"$T/$f.out" 2>&1 || fail "$f rejected"
  grep -q "^driftfile /var/lib/ntp/drift" "$T/$f.out" || fail "$f: no effective driftfile"
done
grep -q "^server ntp1.aliyun.com" "$T/server-ntp.conf.out" || fail "server seed: servers missing"
grep -q "^resync_max_step 1000$" "$T/server-ntp.conf.out" || fail "no effective resync_max_step"
grep -qE "includefile /etc/ntp/crypto/pw (not found|.*skipped)" "$T/server-ntp.conf.out" \
  || fail "no warning about the missing includefile"

echo "== serving with two SO_REUSEPORT threads, and a local clock"
cat > "$T/server.conf" <<CONF
server 127.127.1.0
fudge 127.127.1.0 stratum 10
server_threads 2
CONF
"$AGENT" --config "$T/server.conf" --clock=sim --port 0 --listen 127.0.0.1 \
  --control-socket "$S/server.sock" >"$T/server.log" 2>&1 &
PIDS+=($!)
PORT=$(await "$T/server.log" 'serving NTP on UDP port ([0-9]+)') || fail "server did not start"
grep -q "with 2 threads" "$T/server.log" || fail "not serving with 2 threads"

echo "== the port is taken: the message names who holds it"
"$AGENT" --config "$T/server.conf" --clock=sim --port "$PORT" --listen 127.0.0.1 \
  --control-socket "$S/second.sock" >"$T/second.out" 2>&1 && fail "second agent started on a taken port"
cat "$T/second.out"
grep -q "UDP port $PORT is in use" "$T/second.out" || fail "no port-in-use message"
grep -q "another ntpfleet-agent is running (pid ${PIDS[0]})" "$T/second.out" \
  || fail "the message does not name the agent holding the port"

echo "== --once against the server (like ntpdate): a simulated clock 3 s off is stepped"
printf 'server 127.0.0.1:%s iburst\n' "$PORT" > "$T/client.conf"
"$AGENT" --config "$T/client.conf" --clock=sim --sim-offset=3s --control-socket "" --once \
  >"$T/once.out" 2>&1 || { cat "$T/once.out"; fail "--once failed"; }
cat "$T/once.out"
grep -qE "stepped the clock: offset was -(2\.999|3\.000)[0-9]* s" "$T/once.out" || fail "not stepped by -3 s"

echo "== a name that does not resolve: retried, never a crash or a busy loop"
printf 'server no-such-host.invalid iburst\nserver 127.0.0.1:%s iburst\ndriftfile %s\n' \
  "$PORT" "$T/drift" > "$T/dns.conf"
"$AGENT" --config "$T/dns.conf" --clock=sim --listen 127.0.0.1:0 --control-socket "$S/dns.sock" \
  >"$T/dns.log" 2>&1 &
DNS_PID=$!
PIDS+=($DNS_PID)
await "$T/dns.log" '(cannot resolve no-such-host\.invalid)[^,]*, retrying' >/dev/null || fail "no resolve message"
await "$T/dns.log" '(synchronised): system peer' >/dev/null || fail "did not synchronise to the other server"
sleep 2
kill -0 "$DNS_PID" || fail "agent died"
# CPU time (utime + stime, clock ticks) after ~3 s: a busy loop would use hundreds.
ticks=$(awk '{print $14 + $15}' "/proc/$DNS_PID/stat")
[ "$ticks" -lt 50 ] || fail "agent used $ticks ticks of CPU in 3 s: busy loop?"
"$CTL" --control-socket "$S/dns.sock" peers | tee "$T/peers.out"
grep -q "no-such-host.invalid: cannot resolve no-such-host.invalid" "$T/peers.out" \
  || fail "peers does not say why the unresolved server is unusable"
grep -q '^\*127.0.0.1' "$T/peers.out" || fail "no system peer marked *"

echo "== at exit the learned frequency is in the drift file (written whole: temp file + rename)"
"$AGENT" --config "$T/dns.conf" --check-config >/dev/null || fail "dns.conf rejected"
kill -TERM "$DNS_PID"
for _ in $(seq 1 100); do kill -0 "$DNS_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$DNS_PID" 2>/dev/null && fail "agent did not stop on SIGTERM"
grep -qE '^-?[0-9]+\.[0-9]{3}$' "$T/drift" || fail "drift file: '$(cat "$T/drift" 2>&1)'"
ls "$T" | grep -q 'drift.tmp' && fail "a temporary drift file was left behind"
echo "drift file: $(cat "$T/drift") ppm"

echo "PASS"
