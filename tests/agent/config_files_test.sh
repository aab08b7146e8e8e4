#!/bin/bash
# The files ntpfleet-agent's configuration names, as a careless or hostile user meets them (#15):
# a FIFO or a directory as --config, includefile, driftfile, leapfile or keys is refused at once
# naming the flag or FILE:LINE (never a silent hang: each run is under `timeout`, and a hang fails
# the test); the keys file is checked by --check-config as the start checks it; binary junk is an
# error and control characters never reach the log raw.
set -uo pipefail
AGENT=$1
T=${TEST_TMPDIR:-$(mktemp -d)}/cf
rm -rf "$T" && mkdir -p "$T/dir" && mkfifo "$T/fifo"
fail() { echo "FAIL: $*"; exit 1; }

# expect RC TEXT ARGS...: runs the agent (10 s at most: 124 means it hung), checks the exit status
# and that TEXT is in its output.
expect() {
  local want_rc=$1 want=$2; shift 2
  timeout 10 "$AGENT" --clock=sim --control-socket "" "$@" >"$T/out" 2>&1
  local rc=$?
  cat "$T/out"
  [ "$rc" != 124 ] || fail "$*: hung (killed after 10 s)"
  [ "$rc" = "$want_rc" ] || fail "$*: exit status $rc, want $want_rc"
  grep -qF -- "$want" "$T/out" || fail "$*: no '$want' in the output"
}

echo "== a FIFO as --config, includefile, driftfile, leapfile, keys: exit 2 at once, named"
expect 2 "ntpfleet-agent: --config: cannot read $T/fifo: not a regular file (a FIFO)" \
  --config "$T/fifo" --check-config
expect 2 "ntpfleet-agent: --config: cannot read $T/fifo: not a regular file (a FIFO)" \
  --config "$T/fifo" --port 0
printf 'server 127.0.0.1:9\nincludefile fifo\n' >"$T/inc.conf"
expect 2 "$T/inc.conf:2: includefile $T/fifo: cannot read $T/fifo: not a regular file (a FIFO)" \
  --config "$T/inc.conf" --check-config
for directive in driftfile leapfile keys; do
  printf 'server 127.0.0.1:9\n%s %s\n' "$directive" "$T/fifo" >"$T/$directive.conf"
  expect 2 "$T/$directive.conf:2: $directive $T/fifo is a FIFO, not a regular file" \
    --config "$T/$directive.conf" --check-config
  # The start too, before any socket or clock.
  expect 2 "$T/$directive.conf:2: $directive $T/fifo is a FIFO, not a regular file" \
    --config "$T/$directive.conf" --port 0
done

echo "== keys: --check-config checks what the start checks"
printf 'server 127.0.0.1:9\n\nkeys %s\n' "$T/dir" >"$T/kdir.conf"
expect 2 "$T/kdir.conf:3: keys $T/dir is a directory, not a regular file" \
  --config "$T/kdir.conf" --check-config
printf '1 MD5 one\n2 SHA1 two\n1 MD5 again\n' >"$T/dup.keys"
chmod 600 "$T/dup.keys"
printf 'server 127.0.0.1:9 key 1\nkeys %s\n' "$T/dup.keys" >"$T/kdup.conf"
expect 2 "$T/dup.keys:3: key id 1 given twice (first at line 1)" --config "$T/kdup.conf" --check-config
printf '1 MD5 one two\n' >"$T/extra.keys"
printf 'keys %s\n' "$T/extra.keys" >"$T/kextra.conf"
expect 2 "$T/extra.keys:1: unexpected 'two' after the key" --config "$T/kextra.conf" --check-config
# A key the servers use that the file does not have: the start refuses it, so --check-config does.
printf '1 MD5 one\n' >"$T/ok.keys"
chmod 600 "$T/ok.keys"
printf 'server 127.0.0.1:9 key 7\nkeys %s\n' "$T/ok.keys" >"$T/kmissing.conf"
expect 2 "kmissing.conf:1: server 127.0.0.1 uses key 7, which is not in the keys file" \
  --config "$T/kmissing.conf" --check-config
chmod 644 "$T/ok.keys"
printf 'server 127.0.0.1:9 key 1\nkeys %s\n' "$T/ok.keys" >"$T/kmode.conf"
expect 0 "WARN  ntpfleet-agent: $T/kmode.conf:2: keys file $T/ok.keys: mode 0644: others can read the keys; chmod 600 $T/ok.keys" \
  --config "$T/kmode.conf" --check-config

echo "== binary junk: an error naming the line, nothing raw in the output"
printf 'server 127.0.0.1:9\n\0\0\0server 127.0.0.2\n\x1b[31mtinker\n' >"$T/junk.conf"
expect 2 "$T/junk.conf:2: binary data (a NUL byte) at column 1" --config "$T/junk.conf" --check-config
grep -q "unsupported directive" "$T/out" && fail "junk read as directives"
printf 'server 127.0.0.1:9\n# caf\xe9\n' >"$T/latin1.conf"
expect 2 "$T/latin1.conf:2: invalid UTF-8 (byte \\xe9) at column 6" --config "$T/latin1.conf" --check-config
# A control character in a file name reaches warnings: escaped on stderr and in the output.
esc=$T/$'esc\x1b[31m.conf'
printf 'server 127.0.0.1:9\nfrobnicate 1\n' >"$esc"
expect 0 'esc\x1b[31m.conf:2: unsupported directive' --config "$esc" --check-config
if LC_ALL=C grep -q $'\x1b' "$T/out"; then fail "a raw ESC reached the output"; fi

echo "PASS"
