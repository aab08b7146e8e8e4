#!/usr/bin/env bash
# Controller scale (issues #6 and #13): the real ntpfleet-controller on loopback under N fake
# agents (bench/fleetload: a TCP connection and a Connect stream each, mutual TLS with a node
# certificate each, a SyncStatus every report interval each), for each size in turn, each with a
# fresh controller and database. Prints the "## Controller scale" section for docs/BENCHMARKS.md
# on stdout (progress on stderr): per size the controller's CPU (% of one core), RSS, descriptors,
# `ntpfleetctl status` wall time, resync-all fan-out, /metrics scraped throughout, the cost of one
# connection; a calibration of what one TLS connection costs; the goals, MET or MISSED.
#
#   bench/controller_scale.sh                      # 10 000 at 1 Hz, 100 000 at 0.1 Hz; ~15 min
#   bench/controller_scale.sh --smoke              # a few dozen agents: checks the tooling only
#   bench/controller_scale.sh --sizes "1000 5000@2" --duration 60
#
# Options:
#   --smoke              24 agents (TLS, one connection each) and 40 agents over 10 plain-text
#                        connections, 4 s steady phase, short everything, no calibration
#   --sizes "SPEC..."    N[@INTERVAL][/CONNECTIONS]: N agents reporting every INTERVAL seconds
#                        (default 1) over CONNECTIONS TCP connections (default: one per agent when
#                        the descriptor limits allow it, else as many as they allow). Default
#                        "10000 100000@10"
#   --duration S         steady phase per size in seconds (default 30, at least 3 report
#                        intervals); then 10 s idle (no reports), a visibility phase of a third of
#                        it (at least 2 s), 5 status runs, 3 resync rounds
#   --tls on|off         mutual TLS (default on). A connection carries one node's certificate, so
#                        a size with fewer connections than agents runs in plain text
#   --netns on|off|auto  run the controller and fleetload in a network namespace of their own
#                        (default auto: when root). There the local port range is 1024-65535 and,
#                        with TLS, the controller listens on 0.0.0.0 (only loopback exists there)
#                        and the agents dial 127.0.0.1, 127.0.0.2, ...: each address is another
#                        ~64 000 source ports. Outside it: 127.0.0.1 only (~28 000 ports)
#   --nofile SOFT[:HARD] the controller's RLIMIT_NOFILE (default: LimitNOFILE of the shipped unit,
#                        deploy/systemd/ntpfleet-controller.service, else systemd's default
#                        1024:524288), applied with prlimit, capped at this shell's hard limit
#   --resync-rate R      the controller's --resync-rate (default: its own default)
#   --calibrate N        connection-cost calibration with N agents (default 2000; 0: none)
#   --nice N             scheduling priority of the benchmark's autogroup (default -20, when root:
#                        other work on the machine, builds, must not starve the controller: a
#                        starved TLS handshake times out and the agent reconnects, a storm)
#   --controller BIN, --ctl BIN, --fleetload BIN
#                        the binaries; without all three, they are built with `bazel build -c opt`
#   --work DIR           logs and databases (default: a new temporary directory, kept)
#   --cert-cache DIR     the benchmark CA and the node certificates issued from it, kept between
#                        runs (default $NTPFLEET_BENCH_CACHE, else /var/tmp/ntpfleet-bench)
#
# Never touches the clock: every process runs without CAP_SYS_TIME. Loopback only (inside the
# namespace, only its own loopback exists); every port is chosen by the kernel. The numbers depend
# on what else the machine is doing: the load generator runs on the same cores as the controller.
set -euo pipefail
export LC_ALL=C

if [ -z "${NTPFLEET_SCALE_SESSION:-}" ] && command -v setsid >/dev/null; then
  # The benchmark proper runs as the leader of a new session (hence a scheduler autogroup of its
  # own, see --nice); Ctrl-C or SIGTERM here stops all of it (its process group), and its EXIT trap
  # removes the namespace.
  export NTPFLEET_SCALE_SESSION=1
  setsid -w "$0" "$@" &
  child=$!
  trap 'kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null' INT TERM
  while :; do
    rc=0
    wait "$child" || rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  exit "$rc"
fi

smoke=0
sizes="10000 100000@10"
duration=30
tls=on
netns=auto
nofile=""
resync_rate=""
calibrate=2000
nice_level=-20
controller="" ctl="" fleetload="" work=""
cache=${NTPFLEET_BENCH_CACHE:-/var/tmp/ntpfleet-bench}
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --sizes) sizes="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --tls) tls="$2"; shift ;;
    --netns) netns="$2"; shift ;;
    --nofile) nofile="$2"; shift ;;
    --resync-rate) resync_rate="$2"; shift ;;
    --calibrate) calibrate="$2"; shift ;;
    --nice) nice_level="$2"; shift ;;
    --controller) controller="$2"; shift ;;
    --ctl) ctl="$2"; shift ;;
    --fleetload) fleetload="$2"; shift ;;
    --work) work="$2"; shift ;;
    --cert-cache) cache="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "controller_scale.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
status_runs=5
resync_rounds=3
idle=10
if [ "$smoke" = 1 ]; then
  sizes="24 40@2/10"
  duration=4
  status_runs=2
  resync_rounds=1
  idle=2
  calibrate=0
fi
case "$tls" in on|off) ;; *) echo "controller_scale.sh: --tls on|off" >&2; exit 2 ;; esac

say() { echo "[controller_scale $(date +%T)] $*" >&2; }
die() { echo "controller_scale.sh: $*" >&2; exit 1; }

root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$controller" ] || [ -z "$ctl" ] || [ -z "$fleetload" ]; then
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

# Scheduling: the whole benchmark in one autogroup (setsid above) at --nice.
niced=""
if [ "$(id -u)" = 0 ] && [ -w "/proc/$$/autogroup" ] &&
  echo "$nice_level" >"/proc/$$/autogroup" 2>/dev/null; then
  niced="the benchmark's processes in a scheduler autogroup of their own at nice $nice_level"
fi

# --- descriptors ---------------------------------------------------------------------------------
# The controller runs under the limit the shipped unit gives it; no process here can go past this
# shell's hard limit (raising it needs CAP_SYS_RESOURCE).
hard_here=$(ulimit -Hn)
[ "$hard_here" = unlimited ] && hard_here=$(cat /proc/sys/fs/nr_open)
ulimit -n "$hard_here" 2>/dev/null || true
nofile_from="--nofile"
if [ -z "$nofile" ]; then
  unit="$root/deploy/systemd/ntpfleet-controller.service"
  nofile=$(sed -n 's/^LimitNOFILE=//p' "$unit" 2>/dev/null | tail -1 || true)
  if [ -n "$nofile" ]; then
    nofile_from="LimitNOFILE=$nofile of deploy/systemd/ntpfleet-controller.service"
  else
    nofile="1024:524288"
    nofile_from="systemd's default (the shipped unit sets no LimitNOFILE)"
  fi
fi
unit_soft=${nofile%%:*}
unit_hard=${nofile##*:}
for v in unit_soft unit_hard; do
  [ "${!v}" = infinity ] && printf -v "$v" '%s' "$(cat /proc/sys/fs/nr_open)"
done
ctl_soft=$(( unit_soft < hard_here ? unit_soft : hard_here ))
ctl_hard=$(( unit_hard < hard_here ? unit_hard : hard_here ))
(( ctl_soft > ctl_hard )) && ctl_soft=$ctl_hard
nofile_note="controller RLIMIT_NOFILE $ctl_soft (soft) / $ctl_hard (hard), from $nofile_from"
if (( unit_soft > hard_here || unit_hard > hard_here )); then
  nofile_note+=", capped at $hard_here: this environment's hard limit for every process (raising it needs CAP_SYS_RESOURCE, which it lacks)"
fi
command -v prlimit >/dev/null || die "prlimit (util-linux) is needed"

# --- network namespace ---------------------------------------------------------------------------
NS=""
IN=()
if [ "$netns" = on ] || { [ "$netns" = auto ] && [ "$(id -u)" = 0 ]; }; then
  [ "$(id -u)" = 0 ] || die "--netns on needs root"
  NS="ntpfleet-scale-$$"
  ip netns add "$NS"
  IN=(ip netns exec "$NS")
  ip -n "$NS" link set lo up
  # Per namespace: the source ports for connect(), and the accept queue.
  "${IN[@]}" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
  "${IN[@]}" sysctl -qw net.core.somaxconn=65535 2>/dev/null || true
  "${IN[@]}" sysctl -qw net.ipv4.tcp_max_syn_backlog=65535 2>/dev/null || true
fi
port_range=$("${IN[@]}" cat /proc/sys/net/ipv4/ip_local_port_range | awk '{print $2 - $1 + 1}')

work=${work:-$(mktemp -d "${TMPDIR:-/tmp}/controller_scale.XXXXXX")}
mkdir -p "$work"

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
  if [ -n "$NS" ]; then
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# --- certificates --------------------------------------------------------------------------------
# One CA for the benchmark, kept with the node certificates issued from it (issuing 100 000 takes
# minutes with OpenSSL 3; fleetload keeps them in $cache/nodes-*.pem). Node certificates are valid
# for 30 days: older caches are dropped.
if [ "$tls" = on ]; then
  mkdir -p "$cache"
  find "$cache" -maxdepth 1 -name 'nodes-*.pem' -mtime +20 -delete 2>/dev/null || true
  [ -f "$cache/ca.pem" ] || "${SAFE[@]}" "$ctl" certs init --dir "$cache" >&2
  hosts="localhost$(for i in $(seq 8); do printf ',127.0.0.%d' "$i"; done)"
  [ -f "$cache/localhost.pem" ] ||
    "${SAFE[@]}" "$ctl" certs issue --dir "$cache" --controller "$hosts" >&2
  [ -f "$cache/bench.pem" ] ||
    "${SAFE[@]}" "$ctl" certs issue --dir "$cache" --user bench --role admin >&2
fi

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status" 2>/dev/null || true; }
mib() { awk -v k="${1:-0}" 'BEGIN {if (k < 0) print "–"; else printf "%.0f", k / 1024}'; }
psi_some() { sed -n 's/^some .*total=\([0-9]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null || echo 0; }
runq_wait() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $2} END {printf "%.0f", s}'; }
ms() { awk -v v="$1" 'BEGIN {if (v < 0) print "–"; else if (v < 10) printf "%.1f", v; else printf "%.0f", v}'; }
calc() { awk "BEGIN {$1}"; }
le() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a >= 0 && a <= b)}'; }
# A measured value, or – where it was not measured (-1).
val() { awk -v v="$1" 'BEGIN {if (v == "" || v < 0) print "–"; else print v}'; }
num() { awk -v v="$1" 'BEGIN {printf "%d", v}' | sed ':a;s/\B[0-9]\{3\}\>/ &/;ta'; }

result=""
get() {
  local v
  v=$(tr ' ' '\n' <<<"$result" | sed -n "s/^$1=//p" | head -1)
  echo "${v:--1}"
}

# run_size N INTERVAL CONNECTIONS TLS(on|off) DIR [fleetload args...]: one fresh controller under
# N agents; leaves the RESULT line in $result and the controller's RSS peak and VmHWM (KiB) in
# $rss_max and $hwm.
run_size() {
  local n=$1 interval=$2 conns=$3 mode=$4 dir=$5
  shift 5
  rm -rf "$dir"
  mkdir -p "$dir"
  local listen="127.0.0.1:0" addrs=1
  local ctl_tls=() fl_tls=()
  if [ "$mode" = on ]; then
    ctl_tls=(--tls-cert "$cache/localhost.pem" --tls-key "$cache/localhost.key" --tls-ca "$cache/ca.pem")
    fl_tls=(--tls-ca "$cache/ca.pem" --tls-ca-key "$cache/ca.key" --tls-cert "$cache/bench.pem"
      --tls-key "$cache/bench.key" --cert-cache "$cache")
    if [ -n "$NS" ]; then
      listen="0.0.0.0:0"
      addrs=$(( (conns + 24999) / 25000 ))
      (( addrs < 2 )) && addrs=2
      (( addrs > 8 )) && addrs=8
    fi
  fi
  local extra=()
  [ -n "$resync_rate" ] && extra+=(--resync-rate "$resync_rate")
  # (Created here: the loop below may look before the background job opens it.)
  : >"$dir/controller.log"
  # A fresh inventory: all N names are new at once, beyond the default burst; the resync rounds
  # come 1.5 s apart, inside the default once-per-5-s limit per node: 1 s here.
  "${IN[@]}" prlimit --nofile="$ctl_soft:$ctl_hard" -- "${SAFE[@]}" "$controller" \
    --listen "$listen" --db "$dir/controller.db" --metrics-listen 127.0.0.1:0 \
    --new-names-burst "$n" --max-nodes $(( n > 100000 ? n : 100000 )) \
    --max-agent-streams $(( n > 20000 ? n : 20000 )) --resync-min-interval 1s \
    "${ctl_tls[@]}" "${extra[@]}" >"$dir/controller.log" 2>&1 &
  CPID=$!
  local port="" metrics=""
  for _ in $(seq 150); do
    port=$(sed -n 's/.*listening on [0-9.]*:\([0-9][0-9]*\).*/\1/p' "$dir/controller.log" | head -1 || true)
    metrics=$(sed -n 's|.*metrics on http://\([0-9.:]*\)/metrics.*|\1|p' "$dir/controller.log" | head -1 || true)
    [ -n "$port" ] && [ -n "$metrics" ] && break
    kill -0 "$CPID" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$dir/controller.log" >&2; die "the controller did not start (N=$n)"; }
  local targets=""
  for i in $(seq "$addrs"); do targets+="${targets:+,}127.0.0.$i:$port"; done
  say "N=$n: controller pid $CPID on $listen (port $port), agents dial $targets; $conns connections, TLS $mode"

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

  # Connections a second: a TLS handshake costs both sides milliseconds of CPU (see the
  # calibration), and a storm of them times out (20 s) on two cores.
  local rate=500
  [ "$mode" = on ] && rate=200
  local rc=0
  psi0=$(psi_some) sched0=$(runq_wait "$CPID") t0=$(date +%s.%N)
  # The generator a little nicer than the controller under test, which must not starve.
  "${IN[@]}" nice -n 5 "${SAFE[@]}" "$fleetload" --controller "$targets" --agents "$n" \
    --connections "$([ "$conns" = "$n" ] && echo 0 || echo "$conns")" \
    --report-interval "${interval}s" --controller-pid "$CPID" --metrics "$metrics" \
    --connect-rate "$rate" --connect-timeout "$(( n / rate + 180 ))s" \
    "${fl_tls[@]}" "$@" >"$dir/fleetload.out" 2> >(tee "$dir/fleetload.log" >&2) || rc=$?
  result=$(grep '^RESULT ' "$dir/fleetload.out" | tail -1 || true)
  psi1=$(psi_some) sched1=$(runq_wait "$CPID") t1=$(date +%s.%N)
  hwm=$(kib "$CPID" VmHWM)
  local rss_end
  rss_end=$(kib "$CPID" VmRSS)
  kill "$SAMPLER" 2>/dev/null || true
  wait "$SAMPLER" 2>/dev/null || true
  SAMPLER=""
  rss_max=$(cat "$dir/rss_max")
  [ "${rss_end:-0}" -gt "$rss_max" ] && rss_max=$rss_end
  kill -TERM "$CPID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$CPID" 2>/dev/null || true
  wait "$CPID" 2>/dev/null || true
  CPID=""
  [ -n "$result" ] || say "N=$n: fleetload gave no result (exit $rc); see $dir"
  noise=$(awk -v a="$sched0" -v b="$sched1" -v t0="$t0" -v t1="$t1" -v p0="$psi0" -v p1="$psi1" \
    'BEGIN {printf "controller threads runnable without a CPU %.0f ms/s (sum over threads); machine CPU pressure (PSI some) %.0f %%", (b - a) / 1e6 / (t1 - t0), (p1 - p0) / 1e4 / (t1 - t0)}')
  result_rc=$rc
}

mem_avail_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "work dir $work; sizes: $sizes; steady ${duration}s; $nofile_note; namespace: ${NS:-none}, $port_range local ports"

# --- calibration: what one connection costs ------------------------------------------------------
# The same N agents three times, 1 Hz: (a) plain text over N/8 connections, (b) plain text, one
# connection each, (c) mutual TLS, one connection each. (b) - (a) is what a plain connection costs
# beyond its stream, (c) - (b) what TLS adds, (c) - (a) what a TLS connection of its own costs an
# agent over a stream on a shared connection: the figure to extrapolate with.
declare -A C
calib_rows=()
if [ "$calibrate" -gt 0 ] && [ "$tls" = on ]; then
  cn=$calibrate
  for kind in a b c; do
    case $kind in
      a) k=$(( cn / 8 )) m=off label="plain text, $(num "$k") connections (8 streams each)" ;;
      b) k=$cn m=off label="plain text, one connection each" ;;
      c) k=$cn m=on label="mutual TLS, one connection each" ;;
    esac
    run_size "$cn" 1 "$k" "$m" "$work/calib-$kind" --duration 5s --idle-duration 10s \
      --probe-duration 0s --resync-rounds 0 --status-runs 0
    [ -n "$result" ] || die "calibration run ($label) failed; see $work/calib-$kind"
    [ "$(get connected)" = "$cn" ] || die "calibration run ($label): only $(get connected) of $cn connected"
    # Per agent: controller connect CPU (µs), RSS (KiB), idle CPU (% of a core), steady CPU (%);
    # fleetload RSS (KiB), connect CPU (µs).
    C[$kind.cpu_us]=$(calc "printf \"%.0f\", $(get connect_cpu_us_controller) * $k / $cn")
    C[$kind.kib]=$(calc "printf \"%.1f\", ($(get controller_rss_connected_kib) - $(get controller_rss_idle_kib)) / $cn")
    C[$kind.idle]=$(get idle_controller_cpu_pct)
    C[$kind.steady]=$(get controller_cpu_pct)
    C[$kind.fl_kib]=$(calc "printf \"%.1f\", $(get fleetload_kib_per_conn) * $k / $cn")
    C[$kind.fl_us]=$(calc "printf \"%.0f\", $(get connect_cpu_us_fleetload) * $k / $cn")
    calib_rows+=("| $label | ${C[$kind.cpu_us]} | ${C[$kind.kib]} | ${C[$kind.idle]} | ${C[$kind.steady]} | ${C[$kind.fl_us]} | ${C[$kind.fl_kib]} | $(get controller_fds) |")
  done
  # Per extra TLS connection (over a shared one): RSS KiB, idle CPU %/connection, and the extra
  # steady CPU per report (% of a core per report/s) beyond the idle part.
  shared=$(( cn - cn / 8 ))
  C[m.kib]=$(calc "v = (${C[c.kib]} - ${C[a.kib]}) * $cn / $shared; printf \"%.1f\", v < 0 ? 0 : v")
  # In µs of CPU a second (% of a core × 10 000): per idle connection, and per report a second.
  C[m.idle]=$(calc "v = (${C[c.idle]} - ${C[a.idle]}) * 1e4 / $shared; printf \"%.1f\", v < 0 ? 0 : v")
  C[m.report]=$(calc "v = ((${C[c.steady]} - ${C[c.idle]}) - (${C[a.steady]} - ${C[a.idle]})) * 1e4 / $cn; printf \"%.1f\", v < 0 ? 0 : v")
  C[tls.us]=$(calc "printf \"%.0f\", ${C[c.cpu_us]} - ${C[b.cpu_us]}")
  C[tls.fl_us]=$(calc "printf \"%.0f\", ${C[c.fl_us]} - ${C[b.fl_us]}")
  C[tls.kib]=$(calc "printf \"%.1f\", ${C[c.kib]} - ${C[b.kib]}")
  C[tls.fl_kib]=$(calc "printf \"%.1f\", ${C[c.fl_kib]} - ${C[b.fl_kib]}")
  # How many TLS connections the memory free at the start would hold, controller and fleetload
  # together, at the per-agent RSS of (c).
  C[fit]=$(calc "printf \"%d\", $mem_avail_kib / (${C[c.kib]} + ${C[c.fl_kib]})")
fi

# --- the sizes -----------------------------------------------------------------------------------
rows=()
cost_rows=()
extrap_notes=()
declare -A G
for spec in $sizes; do
  n=${spec%%[@/]*}
  interval=1
  [[ "$spec" == *@* ]] && interval=$(sed 's/.*@\([0-9.]*\).*/\1/' <<<"$spec")
  forced=""
  [[ "$spec" == */* ]] && forced=${spec##*/}
  # Descriptors: the controller needs one per connection (and ~30 of its own), fleetload the same.
  # The controller raises its soft limit to the hard one at start (controller/main.cc); one that
  # did not would drop connections past its soft limit, and this run would show it.
  # A tenth is kept free: a connection whose peer gave up (a handshake or keepalive timeout under
  # load) still holds its descriptor until the controller notices, and gRPC 1.51 stops accepting
  # for good after one accept() fails with EMFILE.
  budget=$(( ctl_hard < hard_here ? ctl_hard : hard_here ))
  budget=$(( budget - budget / 10 ))
  if [ -n "$forced" ]; then
    conns=$forced
  elif (( n <= budget )); then
    conns=$n
  else
    conns=$budget
  fi
  (( conns > n )) && conns=$n
  (( conns * 16 < n )) && die "N=$n needs at least $(( (n + 15) / 16 )) connections (16 streams each at most); the descriptor limits allow $conns"
  mode=$tls
  why=""
  if (( conns < n )) && [ "$mode" = on ]; then
    mode=off
    why="plain text: a TLS connection carries one node's certificate, and"
    if [ -n "$forced" ]; then
      why+=" this size shares $(num "$conns") connections"
    else
      why+=" the descriptor limit allows $(num "$conns") connections"
    fi
  fi
  steady=$duration
  min_steady=$(calc "printf \"%d\", 3 * $interval + 0.999")
  (( steady < min_steady )) && steady=$min_steady
  probe=$(( steady / 3 > 2 ? steady / 3 : 2 ))
  run_size "$n" "$interval" "$conns" "$mode" "$work/n$n" --duration "${steady}s" \
    --idle-duration "${idle}s" --probe-duration "${probe}s" --ctl "$ctl" \
    --status-runs "$status_runs" --resync-rounds "$resync_rounds"
  label="$(num "$n") every ${interval} s"
  if [ -z "$result" ]; then
    rows+=("| $label | $(num "$conns") | – | – | – | – | – | – | – | fleetload failed (exit $result_rc) |")
    continue
  fi
  say "N=$n: $result"
  connected=$(get connected)
  failed=$(get failed_after_connect)
  notes=()
  [ -n "$why" ] && notes+=("$why")
  [ "$connected" != "$n" ] && notes+=("only $connected of $n connected")
  [ "$failed" != "0" ] && [ "$failed" != "-1" ] &&
    notes+=("$failed streams dropped after the connect phase")
  [ "$(get failed_streams)" != "0" ] && [ "$(get failed_streams)" != "-1" ] &&
    notes+=("$(get failed_streams) streams ended and were reopened after 1–3 s, as agents do (the first: $(get stream_error | tr '_' ' '))")
  status_fail=$(get status_failures)
  [ "$status_fail" != "0" ] && [ "$status_fail" != "-1" ] &&
    notes+=("status failed $status_fail×: $(get status_error | tr '_' ' ')")
  ok=$(get resync_ok_min)
  resync_fail=$(get resync_failures)
  [ "$resync_fail" != "0" ] && [ "$resync_fail" != "-1" ] &&
    notes+=("$resync_fail of $resync_rounds Resync(all) calls failed: $(get resync_error | tr '_' ' ')")
  [ "$ok" != "$connected" ] && [ "$ok" != "-1" ] && notes+=("resync: $ok ok of $connected (worst round)")
  if accept=$(grep -m1 'Failed accept4' "$work/n$n/controller.log"); then
    notes+=("the controller ran out of descriptors and stopped accepting connections for good (gRPC 1.51: $(sed 's/.*Failed accept4/Failed accept4/' <<<"$accept"))")
  fi
  mfail=$(get metrics_failures)
  [ "$mfail" != "0" ] && notes+=("/metrics: $(get metrics_error | tr '_' ' ')")
  [ "$(get cert_issue_s)" != "-1" ] &&
    notes+=("$(num "$n") node certificates issued in $(get cert_issue_s) s ($(get cert_issue_cpu_us) µs CPU each)")
  if [ "$connected" = 0 ]; then
    notes+=("GetFleet never counted a connected agent within $(get connect_s) s; no phase after the connect was run")
  else
    notes+=("connected in $(get connect_s) s" "$(get report_rate) reports/s"
      "fleetload itself $(get fleetload_cpu_pct) % CPU, $(mib "$(get fleetload_hwm_kib)") MiB"
      "GetFleet (summary) p50 $(ms "$(get getfleet_p50_ms)") ms")
  fi
  notes+=("$noise")
  note=$(printf '%s; ' "${notes[@]}")
  note=${note%; }
  cpu=$(get controller_cpu_pct)
  rows+=("| $label | $(num "$conns") ($([ "$mode" = on ] && echo TLS || echo plain)) | $(val "$cpu") | $(mib "$rss_max") / $(mib "$hwm") | $(ms "$(get status_p50_ms)") / $(ms "$(get status_max_ms)") | $(ms "$(get resync_total_ms)") | $(ms "$(get resync_ack_p50_ms)") / $(ms "$(get resync_ack_p99_ms)") | $(ms "$(get visible_p50_ms)") / $(ms "$(get visible_p99_ms)") | $mfail of $(get metrics_scrapes) failed, slowest $(ms "$(get metrics_max_ms)") ms | $(val "$(get controller_fds)") / $(val "$(get fleetload_fds)") | $note |")
  cost_rows+=("| $label | $(num "$conns") ($([ "$mode" = on ] && echo TLS || echo plain)) | $(val "$(get connect_cpu_us_controller)") | $(val "$(get controller_kib_per_conn)") | $(val "$(get idle_controller_cpu_pct)") | $(val "$(get connect_cpu_us_fleetload)") | $(val "$(get fleetload_kib_per_conn)") |")

  # Goals: judged on the measurement and, when the agents shared connections, on the
  # extrapolation to one TLS connection each (the worse of the two).
  key=""
  [ "$n" = 10000 ] && [ "$interval" = 1 ] && key=10k
  [ "$n" = 100000 ] && [ "$interval" = 10 ] && key=100k
  [ -n "$key" ] || continue
  rss_mib=$(mib "$rss_max")
  hwm_mib=$(mib "$hwm")
  G[$key.conns]=$conns
  G[$key.mode]=$mode
  G[$key.connected]=$connected
  G[$key.failed]=$failed
  G[$key.cpu]=$cpu
  G[$key.rate]=$(get report_rate)
  G[$key.rss]=$rss_mib
  G[$key.hwm]=$hwm_mib
  G[$key.status]=$(get status_p50_ms)
  G[$key.status_max]=$(get status_max_ms)
  G[$key.status_fail]=$status_fail
  G[$key.resync_p99]=$(get resync_ack_p99_ms)
  G[$key.resync_total]=$(get resync_total_max_ms)
  G[$key.resync_ok]=$ok
  G[$key.resync_fail]=$resync_fail
  G[$key.mfail]=$mfail
  G[$key.mscrapes]=$(get metrics_scrapes)
  G[$key.mmax]=$(get metrics_max_ms)
  G[$key.ext_cpu]=""
  G[$key.ext_mib]=""
  if (( conns < n )) && [ -n "${C[m.kib]:-}" ] && [ "$connected" = "$n" ] && le "$cpu" 1e9; then
    extra=$(( n - conns ))
    G[$key.ext_mib]=$(calc "printf \"%.0f\", ($hwm + $extra * ${C[m.kib]}) / 1024")
    G[$key.ext_cpu]=$(calc "printf \"%.1f\", $cpu + ($extra * ${C[m.idle]} + $(get report_rate) * ${C[m.report]}) / 1e4")
    extrap_notes+=("$(num "$n") agents on $(num "$conns") plain-text connections, extrapolated to one TLS connection each with the calibration's figures: memory = VmHWM $hwm_mib MiB + $(num "$extra") more connections × ${C[m.kib]} KiB = ${G[$key.ext_mib]} MiB; CPU = $cpu % + ($(num "$extra") connections × ${C[m.idle]} µs/s + $(get report_rate) reports/s × ${C[m.report]} µs) = ${G[$key.ext_cpu]} % of a core.")
  fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- output --------------------------------------------------------------------------------------
echo "## Controller scale"
echo
echo "Measured by \`bench/controller_scale.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), ntpfleet at \`$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)\`."
echo
echo "| agents, reporting | TCP connections | controller CPU (% of one core) | controller RSS MiB (steady peak / VmHWM) | \`ntpfleetctl status\` wall p50 / max (ms) | resync --all total (ms, median) | resync ack per node p50 / p99 (ms) | report→visible in GetFleet p50 / p99 (ms) | /metrics scraped every 2 s | descriptors controller / fleetload | notes |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "What one connection costs, per size (from the connect phase: CPU of both processes over it and"
echo "RSS after it minus before, divided by the connections; the idle CPU is 10 s without reports):"
echo
echo "| agents, reporting | TCP connections | controller: connect CPU µs / connection | controller: RSS KiB / connection | controller CPU idle (%) | fleetload: connect CPU µs / connection | fleetload: RSS KiB / connection |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${cost_rows[@]}"
echo
if [ "${#calib_rows[@]}" -gt 0 ]; then
  echo "Calibration, $(num "$calibrate") agents at 1 Hz three ways (per agent; CPU in % of one core):"
  echo
  echo "| $(num "$calibrate") agents over | controller connect CPU (µs) | controller RSS (KiB) | controller CPU idle (%) | controller CPU at 1 Hz (%) | fleetload connect CPU (µs) | fleetload RSS (KiB) | controller descriptors |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${calib_rows[@]}"
  echo
  echo "The TLS handshake (mutual, EC P-256, OpenSSL 3 through gRPC) costs the controller ${C[tls.us]} µs of CPU"
  echo "and ${C[tls.kib]} KiB of RSS per connection, and the client ${C[tls.fl_us]} µs and ${C[tls.fl_kib]} KiB (TLS minus"
  echo "plain text, one connection each). A TLS connection of its own, against a stream on a shared"
  echo "plain-text connection, costs the controller ${C[m.kib]} KiB, ${C[m.idle]} µs of CPU a second idle (keepalive"
  echo "pings from both sides every 10 s) and ${C[m.report]} µs more per report (TLS records, its own socket; the"
  echo "figures the extrapolation below uses; a difference of noisy measurements, 0 when negative). The $(mib "$mem_avail_kib") MiB free at the start would hold about"
  echo "$(num "${C[fit]}") such connections, controller and fleetload together: memory is not what limits this"
  echo "machine; descriptors are ($nofile_note)."
  echo
fi
if [ "${#extrap_notes[@]}" -gt 0 ]; then
  printf '%s\n' "${extrap_notes[@]}"
  echo
fi

verdict() { if [ "$1" = 1 ]; then echo MET; else echo MISSED; fi; }
echo "| goal | target | measured | verdict |"
echo "|---|---|---|---|"
goal_rows() {
  # KEY N LABEL CPU% MiB STATUS_MS RESYNC_MS NOMINAL_REPORTS_PER_S
  local key=$1 n=$2 what=$3 cpu_max=$4 mem_max=$5 status_max=$6 resync_max=$7
  local name="$what agents"
  if [ -z "${G[$key.cpu]:-}" ]; then
    for g in "controller CPU" "controller memory" "\`ntpfleetctl status\`" "resync of all acked (p99)" "/metrics answers throughout"; do
      echo "| $name: $g | see above | not measured in this run | NOT MEASURED |"
    done
    return
  fi
  local all=0 held="" via=""
  [ "${G[$key.connected]}" = "$n" ] && [ "${G[$key.failed]}" = 0 ] && all=1
  [ "$all" = 1 ] || held=" (held only ${G[$key.connected]} of $n; ${G[$key.failed]} dropped)"
  via=" over $(num "${G[$key.conns]}") $([ "${G[$key.mode]}" = on ] && echo TLS || echo plain-text) connections"
  # CPU: judged at the nominal report rate; when the generator delivered fewer, scaled up.
  local nominal scaled m ext
  nominal=$8
  scaled=$(awk -v c="${G[$key.cpu]}" -v r="${G[$key.rate]}" -v w="$nominal" \
    'BEGIN {printf "%.1f", (r > 0 && r < w * 0.98) ? c * w / r : c}')
  m=0; [ "$all" = 1 ] && le "$scaled" "$cpu_max" && m=1
  ext=""
  if [ -n "${G[$key.ext_cpu]}" ]; then
    ext="; extrapolated to one TLS connection each: ${G[$key.ext_cpu]} %"
    le "${G[$key.ext_cpu]}" "$cpu_max" || m=0
  fi
  local at=""
  [ "$scaled" != "${G[$key.cpu]}" ] && at=" at ${G[$key.rate]} reports/s (${scaled} % scaled to $nominal/s)"
  local cpu_cell="${G[$key.cpu]} %$at"
  le "${G[$key.cpu]}" 1e9 || cpu_cell="not measured"
  echo "| $name: controller CPU | ≤ $(calc "printf \"%g\", $cpu_max / 100") core$([ "$cpu_max" -gt 100 ] && echo s) ($cpu_max %) | $cpu_cell$via$ext$held | $(verdict $m) |"
  m=0; [ "$all" = 1 ] && le "${G[$key.rss]}" "$mem_max" && le "${G[$key.hwm]}" "$mem_max" && m=1
  ext=""
  if [ -n "${G[$key.ext_mib]}" ]; then
    ext="; extrapolated to one TLS connection each: ${G[$key.ext_mib]} MiB"
    le "${G[$key.ext_mib]}" "$mem_max" || m=0
  fi
  echo "| $name: controller memory | ≤ $(calc "printf \"%g\", $mem_max / 1024") GiB RSS | ${G[$key.rss]} MiB (VmHWM ${G[$key.hwm]} MiB)$via$ext$held | $(verdict $m) |"
  m=0; [ "${G[$key.status_fail]}" = 0 ] && le "${G[$key.status]}" "$status_max" && m=1
  local sf=""; [ "${G[$key.status_fail]}" != 0 ] && sf=" (${G[$key.status_fail]} runs failed)"
  [ "${G[$key.status_fail]}" = -1 ] && sf=" (not run$held)"
  local scell="$(ms "${G[$key.status]}") ms (max $(ms "${G[$key.status_max]}") ms)$sf"
  [ "${G[$key.status_fail]}" = -1 ] && scell="not run$held"
  echo "| $name: \`ntpfleetctl status\` (p50 of $status_runs runs) | ≤ $status_max ms | $scell | $(verdict $m) |"
  m=0
  [ "$all" = 1 ] && [ "${G[$key.resync_ok]}" = "$n" ] && [ "${G[$key.resync_fail]}" = 0 ] &&
    le "${G[$key.resync_p99]}" "$resync_max" && m=1
  local rf=""; [ "${G[$key.resync_fail]}" != 0 ] && rf=", ${G[$key.resync_fail]} calls failed"
  [ "${G[$key.resync_fail]}" = -1 ] && rf=" (not run)"
  local rcell="$(ms "${G[$key.resync_p99]}") ms p99 ack (call $(ms "${G[$key.resync_total]}") ms, worst of $resync_rounds), ${G[$key.resync_ok]} ok$rf$held"
  [ "${G[$key.resync_fail]}" = -1 ] && rcell="not run$held"
  echo "| $name: resync of all acked (p99) | ≤ $(calc "printf \"%g\", $resync_max / 1000") s, every node ok | $rcell | $(verdict $m) |"
  m=0; [ "${G[$key.mfail]}" = 0 ] && [ "${G[$key.mscrapes]}" -gt 0 ] && m=1
  echo "| $name: /metrics answers throughout | every scrape | ${G[$key.mfail]} of ${G[$key.mscrapes]} scrapes failed, slowest $(ms "${G[$key.mmax]}") ms | $(verdict $m) |"
}
goal_rows 10k 10000 "10 000" 100 1024 200 2000 10000
goal_rows 100k 100000 "100 000" 200 4096 1000 5000 10000
echo
rate_used=$resync_rate
# (--helpfull exits with 1.)
# The first "default: N;" after the flag's name is its own (its description has none).
[ -n "$rate_used" ] || rate_used=$({ "$controller" --helpfull 2>&1 || true; } | tr -d '\n' |
  grep -o -- '--resync_rate (.*' | grep -o 'default: [0-9]*;' | head -n 1 | tr -cd '0-9')
echo "Per size: a fresh controller and database (\`--resync-min-interval 1s\`$([ -n "$resync_rate" ] && echo ", \`--resync-rate $resync_rate\`"); otherwise"
echo "defaults: a fleet-wide resync goes out in waves of ${rate_used:-?} nodes a second); the agents connect"
echo "(TLS at 200 a second, plain text at 500; fleetload at nice 5 beside the controller), then $duration s of reports (at least three intervals; CPU"
echo "measured over exactly that window), $idle s without reports (idle CPU), a visibility phase (GetFleet"
echo "polled back to back by a separate client: a report counts as visible when a response that arrives"
echo "shows it), $status_runs runs of \`ntpfleetctl status\` (spawn to exit, with TLS as the agents), and"
echo "$resync_rounds \`Resync(all)\` rounds (ack: from the call to each fake agent receiving its Resync and"
echo "answering; p99 over all rounds). /metrics is fetched every 2 s from start to end (a scrape fails"
echo "without a complete 200 answer within 10 s). $nofile_note; fleetload $hard_here."
if [ -n "$NS" ]; then
  echo "Both run in a network namespace of their own (local ports 1024–65535; with TLS the controller"
  echo "listens on 0.0.0.0 there and the agents dial 127.0.0.1, 127.0.0.2, …)."
fi
echo "Each fake agent is bench/fleetload's: one gRPC channel and TCP connection (a subchannel pool of"
echo "its own), mutual TLS with a node certificate naming it, keepalive as the agent's, one Connect"
echo "stream, a report with 2–3 peers each interval; fleetload's streams run on many completion"
echo "queues, a thread each. $(nproc) CPUs, shared with the load generator; load average $load_before"
echo "before, $load_after after: other work on the machine makes these numbers noisy${niced:+ ($niced)}."
