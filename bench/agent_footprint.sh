#!/usr/bin/env bash
# Agent footprint (issue #6, part 4): RSS and CPU of an idle, synchronised ntpfleet-agent. Runs,
# on loopback, a controller, a server agent (its local clock at stratum 10) and two measured
# agents, both clients of the server agent at a fixed 64 s poll:
#   - "reporting": the goal configuration, streaming its status to the controller every second;
#   - "standalone": the same without a controller (one thread, no gRPC), for comparison.
# Once both are synchronised, both are measured over the same window: CPU from /proc/PID/stat
# (utime + stime, % of one core), VmRSS sampled every 5 s (the peak is judged) and VmHWM (the
# peak since start-up). Prints a Markdown table on stdout (progress on stderr).
#
#   bench/agent_footprint.sh                   # 600 s window
#   bench/agent_footprint.sh --duration 120
#   bench/agent_footprint.sh --smoke           # 20 s: checks the tooling only
#
# Options:
#   --duration S          the measured window in seconds (default 600)
#   --smoke               a 20 s window
#   --agent BIN, --controller BIN, --ctl BIN
#                         the binaries; without all three, they are built with `bazel build -c opt`
#   --work DIR            configs and logs (default: a new temporary directory, kept)
#
# Never touches the clock: the agents run on simulated clocks (--clock=sim) and every process runs
# without CAP_SYS_TIME. Loopback only; every port is chosen by the kernel.
set -euo pipefail
export LC_ALL=C

duration=600
agent="" controller="" ctl="" work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) duration=20 ;;
    --duration) duration="$2"; shift ;;
    --agent) agent="$2"; shift ;;
    --controller) controller="$2"; shift ;;
    --ctl) ctl="$2"; shift ;;
    --work) work="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "agent_footprint.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "[agent_footprint $(date +%T)] $*" >&2; }
die() { echo "agent_footprint.sh: $*" >&2; exit 1; }

if [ -z "$agent" ] || [ -z "$controller" ] || [ -z "$ctl" ]; then
  root="$(cd "$(dirname "$0")/.." && pwd)"
  say "building with -c opt"
  (cd "$root" && bazel build -c opt //agent:ntpfleet-agent //controller:ntpfleet-controller \
    //ctl:ntpfleetctl >&2)
  bin=$(cd "$root" && bazel info -c opt bazel-bin 2>/dev/null)
  agent=${agent:-$bin/agent/ntpfleet-agent}
  controller=${controller:-$bin/controller/ntpfleet-controller}
  ctl=${ctl:-$bin/ctl/ntpfleetctl}
fi
for b in "$agent" "$controller" "$ctl"; do
  [ -x "$b" ] || die "no executable at $b"
done

if [ "$(id -u)" = 0 ]; then
  SAFE=(setpriv --inh-caps=-sys_time --bounding-set=-sys_time --)
else
  SAFE=(setpriv --no-new-privs --)
fi

work=${work:-$(mktemp -d "${TMPDIR:-/tmp}/agent_footprint.XXXXXX")}
mkdir -p "$work"
# A unix socket path must fit in 108 bytes: the control sockets live in a short directory.
socks=$(mktemp -d /tmp/nffp.XXXXXX)
say "work dir $work; window ${duration}s"

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 30); do
    local any=0
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && any=1; done
    [ "$any" = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$socks"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# start NAME CMD...: in the background without CAP_SYS_TIME, output to $work/NAME.log; sets PID.
PID=""
start() {
  local name="$1"
  shift
  "${SAFE[@]}" "$@" >"$work/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
}
# wait_log NAME SED_EXPR: prints the first match of SED_EXPR (a s/…/…/p) in NAME's log, waiting
# up to 15 s.
wait_log() {
  local v=""
  for _ in $(seq 150); do
    v=$(sed -n "$2" "$work/$1.log" | head -1)
    [ -n "$v" ] && { echo "$v"; return 0; }
    sleep 0.1
  done
  cat "$work/$1.log" >&2
  die "$1 did not start"
}
# start_agent NAME CONFIG: an agent on a simulated clock serving NTP on a free loopback port;
# sets PID and PORT.
PORT=""
start_agent() {
  printf '%s\n' "$2" >"$work/$1.conf"
  start "$1" "$agent" --config "$work/$1.conf" --clock=sim --sim-offset=20ms --sim-freq-ppm=3 \
    --port 0 --listen 127.0.0.1 --control-socket "$socks/$1.sock"
  PORT=$(wait_log "$1" 's/.*serving NTP on UDP port \([0-9][0-9]*\).*/\1/p')
}

start controller "$controller" --listen 127.0.0.1:0 --db "$work/controller.db" \
  --metrics-listen 127.0.0.1:0
cport=$(wait_log controller 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p')
start_agent server "# The reference: its own local clock.
server 127.127.1.0
fudge 127.127.1.0 stratum 10
node_name bench-server"
sport=$PORT
start_agent reporting "# Idle, synchronised, reporting every second.
server 127.0.0.1:$sport iburst minpoll 6 maxpoll 6
controller 127.0.0.1:$cport
report_interval 1s
node_name footprint-reporting"
rpid=$PID
start_agent standalone "# The same without a controller.
server 127.0.0.1:$sport iburst minpoll 6 maxpoll 6
node_name footprint-standalone"
spid=$PID
say "controller on :$cport, server agent on :$sport; agents: reporting pid $rpid, standalone pid $spid"

synchronised() {
  local json
  json=$("${SAFE[@]}" "$ctl" --control-socket "$socks/$1.sock" peers --output json 2>/dev/null) ||
    return 1
  grep -q '"state": *"SYNC_STATE_SYNCHRONISED"' <<<"$json"
}
reported() {
  local json
  json=$("${SAFE[@]}" "$ctl" --controller "127.0.0.1:$cport" status --output json 2>/dev/null) ||
    return 1
  grep -q '"footprint-reporting"' <<<"$json"
}
t0=$SECONDS
until synchronised reporting && synchronised standalone && reported; do
  [ $((SECONDS - t0)) -ge 180 ] && die "the agents did not synchronise within 180 s (logs in $work)"
  for p in "$rpid" "$spid"; do kill -0 "$p" 2>/dev/null || die "an agent exited (logs in $work)"; done
  sleep 1
done
say "both synchronised after $((SECONDS - t0)) s; measuring for ${duration} s"

cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
declare -A c0 rss_max
for p in "$rpid" "$spid"; do
  c0[$p]=$(cpu_ticks "$p")
  rss_max[$p]=$(kib "$p" VmRSS)
done
w0=$(date +%s.%N)
end=$((SECONDS + duration))
while [ "$SECONDS" -lt "$end" ]; do
  left=$((end - SECONDS))
  sleep $((left < 5 ? left : 5))
  for p in "$rpid" "$spid"; do
    kill -0 "$p" 2>/dev/null || die "pid $p exited during the run (logs in $work)"
    r=$(kib "$p" VmRSS)
    [ "$r" -gt "${rss_max[$p]}" ] && rss_max[$p]=$r
  done
done
w1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
row() {
  local name="$1" p="$2" cpu rss hwm threads anon file
  cpu=$(awk -v a="${c0[$p]}" -v b="$(cpu_ticks "$p")" -v hz="$hz" -v w0="$w0" -v w1="$w1" \
    'BEGIN {printf "%.3f", 100 * (b - a) / hz / (w1 - w0)}')
  rss=$(awk -v k="${rss_max[$p]}" 'BEGIN {printf "%.1f", k / 1024}')
  hwm=$(awk -v k="$(kib "$p" VmHWM)" 'BEGIN {printf "%.1f", k / 1024}')
  threads=$(kib "$p" Threads)
  anon=$(awk -v k="$(kib "$p" RssAnon)" 'BEGIN {printf "%.1f", k / 1024}')
  file=$(awk -v k="$(kib "$p" RssFile)" 'BEGIN {printf "%.1f", k / 1024}')
  local rv cv
  rv=$(awk -v v="$rss" 'BEGIN {print (v <= 10) ? "MET" : "MISSED"}')
  cv=$(awk -v v="$cpu" 'BEGIN {print (v <= 0.1) ? "MET" : "MISSED"}')
  echo "| $name | $threads | $rss / $hwm | $anon / $file | $rv | $cpu | $cv |"
}
echo "| agent (poll 64 s, synchronised) | threads | RSS MiB (peak over the window / VmHWM) | of which anonymous / file-backed MiB (end) | ≤ 10 MiB | CPU (% of one core) | ≤ 0.1 % |"
echo "|---|---|---|---|---|---|---|"
row "reporting every 1 s to a controller (the goal)" "$rpid"
row "no controller (comparison)" "$spid"
echo
echo "Measured over $(awk -v a="$w0" -v b="$w1" 'BEGIN {printf "%.0f", b - a}') s, both agents at once, after both were synchronised; CPU from"
echo "utime + stime in /proc/PID/stat ($hz ticks/s), RSS sampled every 5 s; file-backed RSS is the pages of the
binary (gRPC, protobuf, Abseil and OpenSSL linked in statically by -c opt) and of libc/libstdc++
that the process has touched, mostly at start-up. -c opt build, simulated"
echo "clocks, loopback. $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg): other work on the"
echo "machine can add to the CPU figures (cache and scheduler effects), not to RSS."
