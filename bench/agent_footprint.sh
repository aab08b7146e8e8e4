#!/usr/bin/env bash
# Agent footprint (issue #6, part 4): RSS and CPU of an idle, synchronised ntpfleet-agent. Runs,
# on loopback, a controller, a server agent (its local clock at stratum 10) and two measured
# agents, both clients of the server agent at a fixed 64 s poll:
#   - "reporting": the goal configuration, streaming its status to the controller every second;
#   - "standalone": the same without a controller (one thread, no gRPC), for comparison.
# Once both are synchronised, both are measured over the same window: CPU from /proc/PID/stat
# (utime + stime, % of one core), VmRSS sampled every 5 s (the peak is judged) and VmHWM (the
# peak since start-up), PSS from /proc/PID/smaps_rollup sampled likewise, and what the process
# referenced during the window (its referenced bits are cleared at the start: /proc/PID/clear_refs).
# Each measured agent runs from its own copy of the binary, as on a node where one agent runs:
# otherwise the three agents here would share its pages and PSS would divide them by three.
# Prints a Markdown table on stdout (progress on stderr); $work/NAME.smaps has each measured
# agent's per-mapping breakdown at the end.
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
#   --agent-shared BIN    also measure this agent binary, reporting like the first: the .deb's,
#                         linked against Debian's shared libraries (`bazel build -c opt
#                         --//third_party/system:link_shared //agent:ntpfleet-agent`)
#   --work DIR            configs and logs (default: a new temporary directory, kept)
#
# Never touches the clock: the agents run on simulated clocks (--clock=sim) and every process runs
# without CAP_SYS_TIME. Loopback only; every port is chosen by the kernel.
set -euo pipefail
export LC_ALL=C

duration=600
agent="" controller="" ctl="" work="" agent_shared=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) duration=20 ;;
    --duration) duration="$2"; shift ;;
    --agent) agent="$2"; shift ;;
    --agent-shared) agent_shared="$2"; shift ;;
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
for b in "$agent" "$controller" "$ctl" ${agent_shared:+"$agent_shared"}; do
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
# start_agent NAME CONFIG [BINARY]: an agent (BINARY, default $agent) on a simulated clock
# serving NTP on a free loopback port; sets PID and PORT.
PORT=""
start_agent() {
  printf '%s\n' "$2" >"$work/$1.conf"
  start "$1" "${3:-$agent}" --config "$work/$1.conf" --clock=sim --sim-offset=20ms --sim-freq-ppm=3 \
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
# Each measured agent from a copy of its own (a new file: no page shared with another agent).
own_copy() { cp "$1" "$work/$2" && chmod 0755 "$work/$2" && echo "$work/$2"; }
start_agent reporting "# Idle, synchronised, reporting every second.
server 127.0.0.1:$sport iburst minpoll 6 maxpoll 6
controller 127.0.0.1:$cport
report_interval 1s
node_name footprint-reporting" "$(own_copy "$agent" ntpfleet-agent.reporting)"
rpid=$PID
start_agent standalone "# The same without a controller.
server 127.0.0.1:$sport iburst minpoll 6 maxpoll 6
node_name footprint-standalone" "$(own_copy "$agent" ntpfleet-agent.standalone)"
spid=$PID
measured=("$rpid" "$spid")
names=(reporting standalone)
if [ -n "$agent_shared" ]; then
  start_agent shared "# As 'reporting', the binary linked against the shared libraries.
server 127.0.0.1:$sport iburst minpoll 6 maxpoll 6
controller 127.0.0.1:$cport
report_interval 1s
node_name footprint-shared" "$(own_copy "$agent_shared" ntpfleet-agent.shared)"
  shpid=$PID
  measured+=("$shpid")
  names+=(shared)
fi
say "controller on :$cport, server agent on :$sport; measured agents: ${names[*]} (pids ${measured[*]})"

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
all_synchronised() {
  local n
  for n in "${names[@]}"; do synchronised "$n" || return 1; done
}
until all_synchronised && reported; do
  [ $((SECONDS - t0)) -ge 180 ] && die "the agents did not synchronise within 180 s (logs in $work)"
  for p in "${measured[@]}"; do kill -0 "$p" 2>/dev/null || die "an agent exited (logs in $work)"; done
  sleep 1
done
say "all synchronised after $((SECONDS - t0)) s; measuring for ${duration} s"

cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
# rollup PID FIELD: a field of /proc/PID/smaps_rollup in KiB (Pss, Pss_Anon, Pss_File,
# Referenced), 0 when the kernel has no such field.
rollup() { awk -v k="$2" '$1 == k":" {v = $2} END {print v + 0}' "/proc/$1/smaps_rollup"; }
# own_referenced PID: KiB referenced (see clear_refs below) in the mappings no other process
# shares: its binary, heap, stacks (other processes' use would count in shared ones).
own_referenced() {
  awk '/^[0-9a-f]+-[0-9a-f]+ / {flush(); sh = 0; ref = 0; next}
       $1 == "Shared_Clean:" || $1 == "Shared_Dirty:" {sh += $2}
       $1 == "Referenced:" {ref = $2}
       function flush() {if (sh == 0) total += ref}
       END {flush(); print total + 0}' "/proc/$1/smaps"
}
declare -A c0 rss_max pss_max
for p in "${measured[@]}"; do
  c0[$p]=$(cpu_ticks "$p")
  rss_max[$p]=$(kib "$p" VmRSS)
  pss_max[$p]=$(rollup "$p" Pss)
  # From here on Referenced counts only what the window touches (1: clear all the process's
  # referenced bits; this changes no mapping and frees nothing).
  echo 1 >"/proc/$p/clear_refs" 2>/dev/null || say "cannot clear pid $p's referenced bits"
done
w0=$(date +%s.%N)
end=$((SECONDS + duration))
while [ "$SECONDS" -lt "$end" ]; do
  left=$((end - SECONDS))
  sleep $((left < 5 ? left : 5))
  for p in "${measured[@]}"; do
    kill -0 "$p" 2>/dev/null || die "pid $p exited during the run (logs in $work)"
    r=$(kib "$p" VmRSS)
    [ "$r" -gt "${rss_max[$p]}" ] && rss_max[$p]=$r
    r=$(rollup "$p" Pss)
    [ "$r" -gt "${pss_max[$p]}" ] && pss_max[$p]=$r
  done
done
w1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
row() {
  local name="$1" p="$2" cpu rss hwm threads anon file pss
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
  pss="$(mib "${pss_max[$p]}") / $(mib "$(rollup "$p" Pss_Anon)") + $(mib "$(rollup "$p" Pss_File)")"
  cp "/proc/$p/smaps" "$work/$3.smaps" 2>/dev/null || true
  echo "| $name | $threads | $rss / $hwm | $anon / $file | $rv | $cpu | $cv | $pss | $(mib "$(own_referenced "$p")") |"
}
echo "| agent (poll 64 s, synchronised) | threads | RSS MiB (peak over the window / VmHWM) | of which anonymous / file-backed MiB (end) | ≤ 10 MiB | CPU (% of one core) | ≤ 0.1 % | PSS MiB (peak / end: anonymous + file-backed) | referenced in the window, unshared MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
row "reporting every 1 s to a controller (the goal)" "$rpid" reporting
row "no controller (comparison)" "$spid" standalone
[ -n "$agent_shared" ] && row "reporting, linked against Debian's shared libraries (the .deb's build)" "$shpid" shared
echo
echo "Measured over $(awk -v a="$w0" -v b="$w1" 'BEGIN {printf "%.0f", b - a}') s, all agents at once, after all were synchronised; CPU from"
echo "utime + stime in /proc/PID/stat ($hz ticks/s), RSS and PSS sampled every 5 s; file-backed RSS is the pages of the
binary (gRPC, protobuf, Abseil and OpenSSL linked in statically by -c opt) and of libc/libstdc++
mapped into the process: the pages start-up touched and, around each, those the kernel maps with
them from the page cache (fault-around, 64 KiB); they are clean and the kernel reclaims the ones
not in use under memory pressure. PSS charges a page shared by N processes 1/N to each: each
measured agent runs from its own copy of its binary, so its binary's pages are its alone, and only
the C and C++ runtimes (and, for the shared build, libssl/libcrypto where other processes use them)
are shared. 'Referenced in the window' is what the process touched, in the mappings it shares with
no other process, after its referenced bits were cleared at the window's start
(/proc/PID/clear_refs): of its own pages, those it actually needs while idle. -c opt build, simulated"
echo "clocks, loopback. $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg): other work on the"
echo "machine can add to the CPU figures (cache and scheduler effects), not to RSS."
