#!/bin/bash
# The controller over TLS: an agent reports through it (tls_ca in its config), ntpfleetctl reads
# through it (--tls-ca), and a plaintext client is refused. Certificates are made here with the
# openssl CLI; everything on loopback, agents on simulated clocks.
set -uo pipefail
CONTROLLER=$1
AGENT=$2
CTL=$3
T=${TEST_TMPDIR:-$(mktemp -d)}
S=$(mktemp -d /tmp/nftls.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$S"' EXIT
fail() { echo "FAIL: $*"; for f in "$T"/*.log; do echo "--- $f"; cat "$f"; done; exit 1; }
await() {
  for _ in $(seq 1 200); do
    if grep -qE "$2" "$1" 2>/dev/null; then sed -nE "s#.*$2.*#\1#p" "$1" | head -1; return 0; fi
    sleep 0.05
  done
  return 1
}

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null \
  || fail "openssl could not make a certificate"

"$CONTROLLER" --listen 127.0.0.1:0 --metrics-listen "" --db "$T/c.db" \
  --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" >"$T/controller.log" 2>&1 &
PIDS+=($!)
PORT=$(await "$T/controller.log" 'listening on 127\.0\.0\.1:([0-9]+)') || fail "controller did not start"

cat >"$T/agent.conf" <<CONF
server 127.127.1.0
fudge 127.127.1.0 stratum 10
controller localhost:$PORT
tls_ca $T/cert.pem
node_name tls-node
CONF
"$AGENT" --config "$T/agent.conf" --clock=sim --port 0 --listen 127.0.0.1 --control-socket "$S/a.sock" \
  >"$T/agent.log" 2>&1 &
PIDS+=($!)

for _ in $(seq 1 100); do
  "$CTL" --controller "localhost:$PORT" --tls-ca "$T/cert.pem" status >"$T/status.out" 2>&1 \
    && grep -q "^tls-node .*local clock" "$T/status.out" && break
  sleep 0.1
done
cat "$T/status.out"
grep -q "^tls-node .*local clock" "$T/status.out" || fail "the agent's report did not arrive over TLS"

# Without TLS the controller cannot be read.
"$CTL" --controller "localhost:$PORT" status >"$T/plain.out" 2>&1 && fail "plaintext client was served"
cat "$T/plain.out"

# A missing certificate file is a clear error at start.
"$CONTROLLER" --listen 127.0.0.1:0 --metrics-listen "" --db "$T/d.db" \
  --tls-cert "$T/none.pem" --tls-key "$T/key.pem" >"$T/bad.out" 2>&1 && fail "started without its certificate"
grep -q "cannot read $T/none.pem" "$T/bad.out" || fail "the error does not name the file"
echo PASS
