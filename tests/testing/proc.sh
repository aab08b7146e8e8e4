# Process helpers shared by the shell tests (sourced by tests/integration/lib.sh and
# tests/interop/lib.sh, which set WORK before starting anything).
#
# Every program is started through `safe`: without CAP_SYS_TIME (root drops it from the bounding
# and inheritable sets; a non-root user never had it, and no_new_privs keeps file capabilities
# from granting it), so nothing a test starts can move this machine's clock.

if [ "$(id -u)" = 0 ]; then
  SAFE=(setpriv --inh-caps=-sys_time --bounding-set=-sys_time --)
else
  SAFE=(setpriv --no-new-privs --)
fi

log() { echo "[$(date +%T.%3N)] $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# safe CMD...: runs CMD without CAP_SYS_TIME.
safe() { "${SAFE[@]}" "$@"; }

PIDS=()
NAMES=()
# start NAME CMD...: runs CMD in the background without CAP_SYS_TIME; stdout and stderr go to
# $WORK/NAME.log (a NAME used again appends to the same log).
start() {
  local name="$1"
  shift
  "${SAFE[@]}" "$@" >>"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
  log "started $name (pid $!): $*"
}
# pid_of NAME: the pid of the latest process started as NAME.
pid_of() {
  local i
  for ((i = ${#NAMES[@]} - 1; i >= 0; i--)); do
    if [ "${NAMES[$i]}" = "$1" ]; then
      echo "${PIDS[$i]}"
      return 0
    fi
  done
  return 1
}
alive() { kill -0 "$(pid_of "$1")" 2>/dev/null; }
# stop NAME: SIGTERM, then SIGKILL after 3 s.
stop() {
  local pid i
  pid=$(pid_of "$1") || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# stop_all: every process started, newest first (stopped ones are continued first); SIGKILL
# for what is left after 3 s.
stop_all() {
  local i p
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -CONT "${PIDS[$i]}" 2>/dev/null || true
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
  done
  for i in $(seq 30); do
    local any=0
    for p in "${PIDS[@]:-}"; do
      [ -n "$p" ] && kill -0 "$p" 2>/dev/null && any=1
    done
    [ "$any" = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}

# wait_until SECONDS DESCRIPTION CMD...: polls CMD every 0.2 s until it succeeds; fails the
# test with DESCRIPTION after SECONDS. Logs how long it took, to the millisecond, so that the
# quiet-machine time of every wait can be read from a passing run's log (issue #12: a ceiling
# must be at least 4x that time, since a loaded 2-core CI machine is several times slower).
wait_until() {
  local timeout="$1" what="$2"
  shift 2
  local start_us=${EPOCHREALTIME/./}
  local deadline_us=$((start_us + timeout * 1000000)) now_us
  while ! "$@" >/dev/null 2>&1; do
    now_us=${EPOCHREALTIME/./}
    if [ "$now_us" -ge "$deadline_us" ]; then
      fail "timed out after ${timeout}s waiting for: $what"
    fi
    sleep 0.2
  done
  now_us=${EPOCHREALTIME/./}
  log "$(printf 'ok after %d.%03ds (limit %ss)' $(((now_us - start_us) / 1000000)) \
    $(((now_us - start_us) / 1000 % 1000)) "$timeout"): $what"
}
