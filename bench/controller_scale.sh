#!/usr/bin/env bash
# Controller scale (issue #6, part 3): the real ntpfleet-controller on loopback under N fake agents
# (bench/fleetload: one Connect stream each, a SyncStatus a second each), for each N in turn, each
# with a fresh controller and database. Prints a Markdown table on stdout (progress on stderr):
# controller CPU (% of one core, over the steady phase), RSS, report->visible delay in GetFleet,
# `ntpfleetctl status` wall time, resync-all fan-out; then the goals, MET or MISSED.
#
#   bench/controller_scale.sh                       # N = 100, 1000, 10000; ~1 min each
#   bench/controller_scale.sh --smoke               # N = 20 for 5 s: checks the tooling only
#   bench/controller_scale.sh --sizes "100 1000" --duration 60
#
# Options:
#   --smoke              N = 20, 5 s steady phase, short everything
#   --sizes "N..."       agent counts (default "100 1000 10000")
#   --duration S         steady phase per N in seconds (default 30); the visibility phase is a
#                        third of it (at least 2 s), then 5 status runs and 3 resync rounds
#   --channels K         TCP connections the fake agents share (default: 64, or N/8 when more,
#                        since the controller allows 16 streams per connection — a real agent
#                        holds one on its own)
#   --controller BIN, --ctl BIN, --fleetload BIN
#                        the binaries; without all three, they are built with `bazel build -c opt`
#   --work DIR           logs and databases (default: a new temporary directory, kept)
#
# Never touches the clock: every process runs without CAP_SYS_TIME. Loopback only; every port is
# chosen by the kernel. The numbers depend on what else the machine is doing: the load generator
# itself runs on the same cores as the controller.
set -euo pipefail
export LC_ALL=C

smoke=0
sizes="100 1000 10000"
duration=30
channels=""
controller="" ctl="" fleetload="" work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --sizes) sizes="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --channels) channels="$2"; shift ;;
    --controller) controller="$2"; shift ;;
    --ctl) ctl="$2"; shift ;;
    --fleetload) fleetload="$2"; shift ;;
    --work) work="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "controller_scale.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
status_runs=5
resync_rounds=3
if [ "$smoke" = 1 ]; then
  sizes=20
  duration=5
  status_runs=2
  resync_rounds=1
fi
probe=$(( duration / 3 > 2 ? duration / 3 : 2 ))

say() { echo "[controller_scale $(date +%T)] $*" >&2; }
die() { echo "controller_scale.sh: $*" >&2; exit 1; }

if [ -z "$controller" ] || [ -z "$ctl" ] || [ -z "$fleetload" ]; then
  root="$(cd "$(dirname "$0")/.." && pwd)"
  say "building with -c opt"
  (cd "$root" && bazel build -c opt //controller:ntpfleet-controller //ctl:ntpfleetctl \
    //bench:fleetload >&2)
  bin=$(cd "$root" && bazel info -c opt bazel-bin 2>/dev/null)
  controller=${controller:-$bin/controller/ntpfleet-controller}
  ctl=${ctl:-$bin/ctl/ntpfleetctl}
  fleetload=${fleetload:-$bin/bench/fleetload}
fi
for b in "$controller" "$ctl" "$fleetload"; do
  [ -x "$b" ] || die "no executable at $b"
done

# As tests/integration/lib.sh: root drops CAP_SYS_TIME from the bounding and inheritable sets; a
# non-root user never had it.
if [ "$(id -u)" = 0 ]; then
  SAFE=(setpriv --inh-caps=-sys_time --bounding-set=-sys_time --)
else
  SAFE=(setpriv --no-new-privs --)
fi

# Every stream is one HTTP/2 stream, not a socket, but leave room anyway.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=${work:-$(mktemp -d "${TMPDIR:-/tmp}/controller_scale.XXXXXX")}
mkdir -p "$work"
say "work dir $work; sizes: $sizes; steady ${duration}s, visibility ${probe}s per size"

CPID=""
SAMPLER=""
cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  if [ -n "$CPID" ] && kill -0 "$CPID" 2>/dev/null; then
    kill -TERM "$CPID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CPID" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 143' TERM INT

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status" 2>/dev/null || true; }
mib() { awk -v k="${1:-0}" 'BEGIN {printf "%.0f", k / 1024}'; }

# Total µs some task waited for a CPU (PSI; 0 without it), and ns the threads of pid $1 waited.
psi_some() { sed -n 's/^some .*total=\([0-9]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null || echo 0; }
runq_wait() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $2} END {printf "%.0f", s}'; }

# get KEY: the value of KEY in the current RESULT line, or "-1".
result=""
get() {
  local v
  v=$(tr ' ' '\n' <<<"$result" | sed -n "s/^$1=//p" | head -1)
  echo "${v:--1}"
}
ms() { awk -v v="$1" 'BEGIN {if (v < 0) print "–"; else if (v < 10) printf "%.1f", v; else printf "%.0f", v}'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
goal_n=""
declare -A G
for n in $sizes; do
  dir="$work/n$n"
  rm -rf "$dir"
  mkdir -p "$dir"
  # A fresh inventory: all N names are new at once, beyond the default burst. The resync rounds
  # come 1.5 s apart, inside the default once-per-5-s limit per node: 1 s here. Waves keep the
  # default rate (1000 nodes/s), so a fleet-wide resync of N nodes takes N/1000 s by design.
  "${SAFE[@]}" "$controller" --listen 127.0.0.1:0 --db "$dir/controller.db" \
    --metrics-listen 127.0.0.1:0 --new-names-burst "$n" --resync-min-interval 1s \
    >"$dir/controller.log" 2>&1 &
  CPID=$!
  port=""
  for _ in $(seq 150); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$dir/controller.log" | head -1)
    [ -n "$port" ] && break
    kill -0 "$CPID" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$dir/controller.log" >&2; die "the controller did not start (N=$n)"; }
  say "N=$n: controller pid $CPID on 127.0.0.1:$port"

  # Peak VmRSS, sampled every second while the load runs (VmHWM also covers start-up).
  echo 0 >"$dir/rss_max"
  (
    max=0
    while kill -0 "$CPID" 2>/dev/null; do
      r=$(kib "$CPID" VmRSS)
      if [ -n "$r" ] && [ "$r" -gt "$max" ]; then max=$r; echo "$max" >"$dir/rss_max"; fi
      sleep 1
    done
  ) &
  SAMPLER=$!

  psi0=$(psi_some) sched0=$(runq_wait "$CPID") t0=$(date +%s.%N)
  rc=0
  k=${channels:-$(( n / 8 > 64 ? n / 8 : 64 ))}
  "${SAFE[@]}" "$fleetload" --controller "127.0.0.1:$port" --agents "$n" --channels "$k" \
    --duration "${duration}s" --probe-duration "${probe}s" --controller-pid "$CPID" \
    --ctl "$ctl" --status-runs "$status_runs" --resync-rounds "$resync_rounds" \
    >"$dir/fleetload.out" 2> >(tee "$dir/fleetload.log" >&2) || rc=$?
  result=$(grep '^RESULT ' "$dir/fleetload.out" | tail -1 || true)
  psi1=$(psi_some) sched1=$(runq_wait "$CPID") t1=$(date +%s.%N)
  hwm=$(kib "$CPID" VmHWM)
  rss_end=$(kib "$CPID" VmRSS)
  kill "$SAMPLER" 2>/dev/null || true
  wait "$SAMPLER" 2>/dev/null || true
  SAMPLER=""
  rss_max=$(cat "$dir/rss_max")
  [ "${rss_end:-0}" -gt "$rss_max" ] && rss_max=$rss_end
  kill -TERM "$CPID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$CPID" 2>/dev/null || true
  wait "$CPID" 2>/dev/null || true
  CPID=""
  if [ -z "$result" ]; then
    say "N=$n: fleetload gave no result (exit $rc); see $dir"
    rows+=("| $n | – | – | – | – | – | – | fleetload failed (exit $rc) |")
    continue
  fi
  say "N=$n: $result"

  connected=$(get connected)
  failed=$(get failed_streams)
  notes=()
  [ "$connected" != "$n" ] && notes+=("only $connected of $n connected")
  [ "$failed" != "0" ] && [ "$failed" != "-1" ] &&
    notes+=("$failed streams dropped by the controller ($(get stream_error | tr '_' ' '))")
  status_fail=$(get status_failures)
  [ "$status_fail" != "0" ] && [ "$status_fail" != "-1" ] &&
    notes+=("status failed $status_fail×: $(get status_error | tr '_' ' ')")
  ok=$(get resync_ok_min)
  resync_fail=$(get resync_failures)
  [ "$resync_fail" != "0" ] && [ "$resync_fail" != "-1" ] &&
    notes+=("$resync_fail of $resync_rounds Resync(all) calls failed: $(get resync_error | tr '_' ' ')")
  [ "$ok" != "$connected" ] && [ "$ok" != "-1" ] &&
    notes+=("resync: $ok ok of $connected (worst round)")
  notes+=("$(get report_rate) reports/s" "fleetload itself $(get fleetload_cpu_pct) % CPU"
    "GetFleet p50 $(ms "$(get getfleet_p50_ms)") ms")
  # Noise: how long the controller's threads sat runnable without a CPU, and the share of time
  # some task on the machine did (PSI), over the whole run.
  notes+=("$(awk -v a="$sched0" -v b="$sched1" -v t0="$t0" -v t1="$t1" -v p0="$psi0" -v p1="$psi1" \
    'BEGIN {printf "controller threads runnable without a CPU %.0f ms/s (sum over threads); machine CPU pressure (PSI some) %.0f %%", (b - a) / 1e6 / (t1 - t0), (p1 - p0) / 1e4 / (t1 - t0)}')")
  note=$(printf '%s; ' "${notes[@]}")
  note=${note%; }

  cpu=$(get controller_cpu_pct)
  rows+=("| $n | $cpu | $(mib "$rss_max") / $(mib "$hwm") | $(ms "$(get visible_p50_ms)") / $(ms "$(get visible_p99_ms)") | $(ms "$(get status_p50_ms)") / $(ms "$(get status_max_ms)") | $(ms "$(get resync_total_ms)") | $(ms "$(get resync_ack_p50_ms)") / $(ms "$(get resync_ack_p99_ms)") | $note |")
  goal_n=$n
  G[cpu]=$cpu
  G[rate]=$(get report_rate)
  G[rss]=$(mib "$rss_max")
  G[hwm]=$(mib "$hwm")
  G[connected]=$connected
  G[failed]=$failed
  G[status]=$(get status_p50_ms)
  G[status_fail]=$status_fail
  G[resync]=$(get resync_total_max_ms)
  G[resync_ok]=$ok
  G[resync_fail]=$resync_fail
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "| agents | controller CPU (% of one core) | controller RSS MiB (steady peak / VmHWM) | report→visible in GetFleet p50 / p99 (ms) | \`ntpfleetctl status\` wall p50 / max (ms) | resync --all total (ms, median) | resync ack per node p50 / p99 (ms) | notes |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
verdict() { if [ "$1" = 1 ]; then echo MET; else echo MISSED; fi; }
le() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a >= 0 && a <= b)}'; }
echo "| goal (10 000 agents at 1 Hz) | target | measured | verdict |"
echo "|---|---|---|---|"
if [ "$goal_n" = 10000 ]; then
  all=0
  [ "${G[connected]}" = 10000 ] && [ "${G[failed]}" = 0 ] && all=1
  held=""
  [ "$all" = 1 ] || held=" (held only ${G[connected]} streams; ${G[failed]} dropped)"
  # Judged at 10 000 reports/s: when the load generator delivered fewer (it shares the 2 cores),
  # the CPU is scaled up in proportion.
  scaled=$(awk -v c="${G[cpu]}" -v r="${G[rate]}" \
    'BEGIN {printf "%.1f", (r > 0 && r < 10000) ? c * 10000 / r : c}')
  m=0; [ "$all" = 1 ] && le "$scaled" 100 && m=1
  at=""
  [ "$scaled" != "${G[cpu]}" ] &&
    at=" at ${G[rate]} reports/s (${scaled} % scaled to 10 000 reports/s)"
  echo "| controller CPU | ≤ 1 core (100 %) | ${G[cpu]} %$at$held | $(verdict $m) |"
  m=0; [ "$all" = 1 ] && le "${G[rss]}" 1024 && le "${G[hwm]}" 1024 && m=1
  echo "| controller memory | ≤ 1 GiB RSS | ${G[rss]} MiB (VmHWM ${G[hwm]} MiB)$held | $(verdict $m) |"
  m=0; [ "${G[status_fail]}" = 0 ] && le "${G[status]}" 200 && m=1
  sf=""; [ "${G[status_fail]}" != 0 ] && sf=" (${G[status_fail]} runs failed)"
  echo "| \`ntpfleetctl status\` for 10 000 nodes | ≤ 200 ms | $(ms "${G[status]}") ms$sf | $(verdict $m) |"
  m=0
  [ "$all" = 1 ] && [ "${G[resync_ok]}" = 10000 ] && [ "${G[resync_fail]}" = 0 ] &&
    le "${G[resync]}" 2000 && m=1
  rf=""; [ "${G[resync_fail]}" != 0 ] && rf=", ${G[resync_fail]} calls failed"
  echo "| resync of all 10 000 acked | ≤ 2 s, every node ok | $(ms "${G[resync]}") ms (worst round), ${G[resync_ok]} ok$rf$held | $(verdict $m) |"
else
  echo "| (all four) | see above | not measured: the largest run had ${goal_n:-no} agents | NOT MEASURED |"
fi
echo
echo "Per size: a fresh controller and database (\`--resync-min-interval 1s\`, otherwise defaults:"
echo "waves at 1000 nodes/s); ${duration} s of 1 Hz reports over ${channels:-max(64, N/8)} TCP connections"
echo "(the controller allows 16 streams per connection)"
echo "(CPU is measured over exactly that window), then ${probe} s of back-to-back GetFleet polling from a"
echo "separate client (a report counts as visible when a GetFleet response that arrives shows it, so"
echo "the delay includes one GetFleet call), $status_runs runs of \`ntpfleetctl status\` (spawn to exit), and"
echo "$resync_rounds \`Resync(all)\` rounds (ack: from the call to each fake agent receiving its Resync and"
echo "answering). $(nproc) CPUs, shared with the load generator; load average $load_before before, $load_after after:"
echo "other work on the machine makes these numbers noisy."
