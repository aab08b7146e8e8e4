#!/bin/bash
# `ntpfleetctl import-ntp-conf` / `import-chrony-conf` end to end, on the seed's two ntp.conf files,
# CentOS 7's stock ntp.conf and Debian 12's chrony.conf (testdata/import/README.md): for each, the
# command writes the agent's configuration (--out-file, atomically), `ntpfleet-agent --check-config`
# accepts it with exit 0 and without a warning, and the agent STARTS on it: simulated clock, NTP on
# a free loopback port, its own control socket; `ntpfleetctl peers --output json` lists every
# configured source (none reachable), and SIGTERM stops it with exit 0. Then the command's errors:
# an unreadable file (exit 1, naming it) and usage errors (exit 2).
#
# The configurations name public pools and the seed's 192.168.x servers. The agent must never
# resolve or reach them from this machine's network: the whole test runs in a network namespace
# of its own that has nothing but loopback (`unshare -n` as root, `unshare -rn` otherwise), which
# it checks before starting anything; if no such namespace can be made, the test FAILS rather than
# run in the real one. Every program runs without CAP_SYS_TIME (tests/testing/proc.sh) and every
# agent on --clock=sim: nothing here can move this machine's clock.
#
# Usage (from Bazel): import_e2e_test.sh AGENT CTL PROC_SH TESTDATA_FILE...
set -euo pipefail
export LC_ALL=C

if [ "${NTPFLEET_IMPORT_NETNS:-}" != 1 ]; then
  # Re-run this script inside a new network namespace (loopback only).
  export NTPFLEET_IMPORT_NETNS=1
  if [ "$(id -u)" = 0 ]; then
    exec unshare -n -- "$0" "$@"
  fi
  exec unshare -rn -- "$0" "$@"
  echo "FAIL: cannot create a network namespace (unshare); refusing to run in the real one" >&2
  exit 1
fi

AGENT=$(realpath "$1")
CTL=$(realpath "$2")
WORK="${TEST_TMPDIR:-$(mktemp -d)}/import_e2e"
rm -rf "$WORK"
mkdir -p "$WORK"
# shellcheck source=../testing/proc.sh
source "$3"
shift 3
DATA=()
for f in "$@"; do DATA+=("$(realpath "$f")"); done
data() { # data NAME: the testdata file NAME
  local f
  for f in "${DATA[@]}"; do
    if [ "$(basename "$f")" = "$1" ]; then
      echo "$f"
      return 0
    fi
  done
  fail "no testdata file $1"
}
SOCKS=$(mktemp -d /tmp/nfimp.XXXXXX) # a unix socket path must fit in 108 bytes
trap 'stop_all; rm -rf "$SOCKS"' EXIT

# --- the namespace: loopback and nothing else, no route anywhere else --------------------------
ip link set lo up || fail "cannot bring up loopback in the test's network namespace"
links=$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
[ "$links" = "lo " ] || fail "the test's network namespace has more than loopback: $links"
if ip route get 192.168.242.51 >/dev/null 2>&1; then
  fail "192.168.242.51 is routable from the test's network namespace"
fi
log "network namespace: only loopback ($links), 192.168.242.51 unroutable"

failures=0
check_failed() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# import KIND NAME [ARGS...]: imports testdata NAME with `ntpfleetctl import-KIND-conf`, checks it,
# starts the agent on it, lists its peers, stops it. EXPECT_SOURCES: the `remote` names peers must
# list.
import_and_run() {
  local kind=$1 name=$2
  shift 2
  local out="$WORK/$name.agent.conf" rc=0
  log "== $name"
  safe "$CTL" "import-$kind-conf" "$(data "$name")" --out-file "$out" \
    --controller 127.0.0.1:9 "$@" 2>"$WORK/$name.import.err" || rc=$?
  if [ "$rc" != 0 ]; then
    check_failed "$name: import exited $rc: $(cat "$WORK/$name.import.err")"
    return
  fi
  grep -q "directives kept" "$WORK/$name.import.err" ||
    check_failed "$name: no summary on stderr"
  [ "$(stat -c %a "$out")" = 644 ] || check_failed "$name: --out-file is not mode 0644"
  ls "$WORK" | grep -q '\.tmp\.' && check_failed "$name: a temporary file was left behind"

  # --check-config: exit 0, no warning. It opens the keys file as the start does: the imported
  # `keys /etc/ntp/keys` does not exist on the test machine, and that one warning is expected.
  rc=0
  safe "$AGENT" --check-config --config "$out" >"$WORK/$name.check" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    check_failed "$name: --check-config exited $rc: $(cat "$WORK/$name.check")"
    return
  fi
  if grep -E "^# warning:|WARN" "$WORK/$name.check" |
    grep -v "keys file /etc/ntp/keys: cannot read /etc/ntp/keys: No such file or directory"; then
    check_failed "$name: --check-config warns about the imported configuration"
  fi

  # Start it. The drift file goes to the work directory (the imported path, /var/lib/ntpfleet,
  # belongs to the installed package).
  local run="$WORK/$name.run.conf" sock="$SOCKS/$name.sock"
  sed "s|^driftfile .*|driftfile $WORK/$name.drift|" "$out" >"$run"
  : >"$WORK/$name.log"
  start "$name" "$AGENT" --config "$run" --clock=sim --port 0 --listen 127.0.0.1 \
    --control-socket "$sock"
  if ! wait_until 60 "$name serves NTP" grep -q "serving NTP on UDP port" "$WORK/$name.log"; then
    check_failed "$name: the agent did not start: $(tail -5 "$WORK/$name.log")"
    return
  fi
  # Every configured source is listed; none is reachable in this namespace.
  local json ok=0
  for _ in $(seq 100); do
    json=$(safe "$CTL" peers --control-socket "$sock" --output json 2>&1) || true
    if python3 - "$json" "${EXPECT_SOURCES[@]}" <<'PY'; then
import json, sys
d = json.loads(sys.argv[1])
peers = {p.get("remote", ""): p for p in d.get("peers", [])}
want = sys.argv[2:]
missing = [w for w in want if w not in peers]
reached = [r for r, p in peers.items() if p.get("reach", 0) and r != "LOCAL(0)"]
sys.exit(1 if missing or reached or len(peers) != len(want) else 0)
PY
      ok=1
      break
    fi
    sleep 0.1
  done
  if [ "$ok" = 1 ]; then
    log "$name: peers lists ${EXPECT_SOURCES[*]}, none reachable"
  else
    check_failed "$name: peers does not list exactly ${EXPECT_SOURCES[*]} (unreached): $json"
  fi
  alive "$name" || check_failed "$name: the agent died: $(tail -5 "$WORK/$name.log")"
  local pid
  pid=$(pid_of "$name")
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] || check_failed "$name: the agent exited $rc on SIGTERM"
}

EXPECT_SOURCES=(192.168.242.51 "LOCAL(0)")
import_and_run ntp seed-client-ntp.conf
EXPECT_SOURCES=(ntp1.aliyun.com ntp2.aliyun.com)
import_and_run ntp seed-server-ntp.conf
EXPECT_SOURCES=(0.centos.pool.ntp.org 1.centos.pool.ntp.org 2.centos.pool.ntp.org
  3.centos.pool.ntp.org)
import_and_run ntp centos7-ntp.conf
# --root: what Debian's chrony package installs under /etc/chrony (conf.d, sources.d, the keys
# file), not this machine's /etc; --keys-out converts the keys file (Debian's has no key).
EXPECT_SOURCES=(2.debian.pool.ntp.org)
root=$(dirname "$(dirname "$(dirname "$(dirname "$(data README)")")")")
[ -f "$root/etc/chrony/chrony.keys" ] || fail "no debian12-root/etc/chrony/chrony.keys"
import_and_run chrony debian12-chrony.conf --root "$root" --keys-out "$WORK/ntp.keys"
# 0640 group ntpfleet (the agent's user reads it) where that group exists, else 0600.
if grep -q '^ntpfleet:' /etc/group; then want_mode=640; else want_mode=600; fi
[ "$(stat -c %a "$WORK/ntp.keys")" = "$want_mode" ] || check_failed "--keys-out is not mode 0$want_mode"
grep -q "^keys $WORK/ntp.keys$" "$WORK/debian12-chrony.conf.agent.conf" ||
  check_failed "the chrony import does not use the converted keys file"

# --- errors ----------------------------------------------------------------------------------
rc=0
err=$(safe "$CTL" import-ntp-conf "$WORK/no-such.conf" 2>&1) || rc=$?
[ "$rc" = 1 ] || check_failed "unreadable file: exit $rc, want 1"
[[ "$err" == *"cannot read $WORK/no-such.conf"* ]] || check_failed "unreadable file: $err"
for args in "import-ntp-conf" "import-ntp-conf a b" \
  "import-ntp-conf $(data seed-client-ntp.conf) --controller nohostport" \
  "import-ntp-conf $(data seed-client-ntp.conf) --tls-dir /etc/ntpfleet/tls" \
  "import-ntp-conf $(data seed-client-ntp.conf) --keys-out $WORK/k"; do
  rc=0
  # shellcheck disable=SC2086
  err=$(safe "$CTL" $args 2>&1) || rc=$?
  [ "$rc" = 2 ] || check_failed "ntpfleetctl $args: exit $rc, want 2: $err"
done
# A line the importer does not understand: a warning naming FILE:LINE, exit 0.
printf 'server 10.0.0.1\nservr 10.0.0.2\n' >"$WORK/typo.conf"
rc=0
err=$(safe "$CTL" import-ntp-conf "$WORK/typo.conf" 2>&1 >/dev/null) || rc=$?
[ "$rc" = 0 ] || check_failed "typo.conf: exit $rc"
[[ "$err" == *"warning: $WORK/typo.conf:2: servr 10.0.0.2"* ]] ||
  check_failed "typo.conf: no warning naming the line: $err"

echo "$failures failures"
[ "$failures" = 0 ]
