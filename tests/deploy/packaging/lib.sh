# shellcheck shell=bash
# Shared by the packaging tests (sourced by each *_test.sh).
#
# Installing a package runs its maintainer scripts as root: they create users, chown
# directories, call deb-systemd-helper and systemctl. So every install happens in a throwaway
# root: a copy-on-write view of this machine's own / (overlayfs, lower = /, upper = a tmpfs),
# mounted in a private mount namespace and entered with chroot. Inside it the packages meet a
# real Debian 12 system (its dpkg database, adduser, deb-systemd-helper, libraries for the
# .deb's Depends), and every write lands in the tmpfs, which the kernel drops with the
# namespace. Nothing on the host changes, and each test checks that too (the host's passwd,
# group and dpkg status before and after).
#
# (dpkg --root with --force-script-chrootless was the other way: the maintainer scripts would
# then run on the host itself and every tool they call would have to honour $DPKG_ROOT, which
# adduser does not; one mistake would change the host.)
#
# Each test calls `pkgtest_init "$@"` first. That fails (never skips) when the test is not root
# or the kernel cannot mount overlayfs, re-runs the test in new mount and PID namespaces
# (unshare --kill-child: whatever a package might start dies with the test), and then provides
#   ROOT        the overlay root (call new_root to get one)
#   in_root     run a command chrooted into ROOT
#   check/fail  assertions; the test ends with `finish`
set -euo pipefail
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export LC_ALL=C

FAILURES=0
CHECKS=0

log() { echo "[$(date +%T)] $*"; }
die() {
  echo "FAIL: $*" >&2
  exit 1
}
ok() {
  CHECKS=$((CHECKS + 1))
  echo "ok: $*"
}
fail() {
  CHECKS=$((CHECKS + 1))
  FAILURES=$((FAILURES + 1))
  echo "FAIL: $*"
}
# check DESCRIPTION CMD...: CMD must succeed.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
# check_not DESCRIPTION CMD...: CMD must fail.
check_not() {
  local what=$1
  shift
  if "$@"; then fail "$what"; else ok "$what"; fi
}
finish() {
  echo "$((CHECKS - FAILURES)) passed, $FAILURES failed"
  [ "$FAILURES" = 0 ] && [ "$CHECKS" -gt 0 ]
}

# What the tests could change on the host if the throwaway roots leaked: the user databases, and
# every trace of ntpfleet's packages. (Not all of dpkg's status file: an unrelated apt-get on the
# machine meanwhile would change it.)
host_state() {
  sha256sum /etc/passwd /etc/group /etc/shadow 2>/dev/null
  dpkg-query -W -f='${Package} ${Status}\n' 'ntpfleet*' 2>/dev/null || true
  ls -d /etc/ntpfleet /var/lib/ntpfleet /etc/systemd/system/ntpfleet-* /lib/systemd/system/ntpfleet-* \
    /usr/lib/systemd/system/ntpfleet-* /usr/sbin/ntpfleet-* /usr/bin/ntpfleetctl /usr/local/sbin/ntpfleet-* \
    /var/lib/rpm/Packages /var/lib/rpm/rpmdb.sqlite 2>/dev/null || true
}

# pkgtest_init "$@": see the top of this file. The test's arguments are passed on unchanged.
pkgtest_init() {
  if [ -z "${NTPFLEET_PKGTEST_INSIDE:-}" ]; then
    [ "$(id -u)" = 0 ] ||
      die "the packaging tests need root (mount namespaces, overlayfs, chroot); they are tagged 'local' to run unsandboxed. Run them as root (CI does)."
    grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
      die "this kernel has no overlayfs, which the packaging tests' throwaway roots need"
    local before after rc=0 work
    before=$(host_state)
    # Short path, on the host's / (it is only a mount point: a tmpfs is mounted over it inside).
    work=$(mktemp -d /tmp/ntpfleet-pkgtest.XXXXXX)
    export NTPFLEET_PKGTEST_INSIDE=1 NTPFLEET_PKGTEST_WORK="$work"
    unshare --mount --propagation private --pid --fork --kill-child --mount-proc -- \
      bash "$0" "$@" || rc=$?
    rmdir "$work" 2>/dev/null || rm -rf "$work"
    after=$(host_state)
    if [ "$before" != "$after" ]; then
      echo "FAIL: the test changed the host:"
      diff <(echo "$before") <(echo "$after") || true
      exit 1
    fi
    echo "ok: the host is unchanged (passwd, group, shadow; no ntpfleet package, file or rpm database)"
    exit "$rc"
  fi
  WORK="$NTPFLEET_PKGTEST_WORK"
  mount -t tmpfs -o size=2g tmpfs "$WORK"
  # The packages under test, by base name.
  declare -gA PKG
  local f
  for f in "$@"; do
    case "$f" in --*) continue ;; esac
    PKG[$(basename "$f")]=$(readlink -f "$f")
  done
  ROOTS=0
}

# new_root: a fresh copy-on-write root at $ROOT, with /proc, /dev, an empty /run and /tmp, a
# systemctl that only records what it is asked (in $ROOT/var/log/systemctl.log), and the
# packages in $ROOT/pkgs/.
new_root() {
  ROOTS=$((ROOTS + 1))
  local d=$WORK/r$ROOTS
  mkdir -p "$d/upper" "$d/work" "$d/root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$d/upper,workdir=$d/work" "$d/root"
  ROOT=$d/root
  # shellcheck disable=SC2034  # used by the tests (the overlay's writes)
  UPPER=$d/upper
  mount -t proc proc "$ROOT/proc"
  mount --rbind /dev "$ROOT/dev"
  # No /run/systemd/system: in this root, as in a chroot or an image build, systemd does not run.
  mount -t tmpfs tmpfs "$ROOT/run"
  mount -t tmpfs tmpfs "$ROOT/tmp"
  rm -f "$ROOT/usr/sbin/policy-rc.d"
  cat >"$ROOT/usr/bin/systemctl" <<'EOF'
#!/bin/sh
# The packaging tests' systemctl: records every call, starts nothing.
echo "$*" >>/var/log/systemctl.log
for a in "$@"; do
  case "$a" in
    is-enabled) echo disabled; exit 1 ;;
    is-active) echo inactive; exit 3 ;;
    list-unit-files)
      # Units listed in /var/log/systemctl.units "exist".
      for u in "$@"; do
        grep -qx "$u" /var/log/systemctl.units 2>/dev/null && echo "$u enabled enabled"
      done
      exit 0 ;;
  esac
done
exit 0
EOF
  chmod 0755 "$ROOT/usr/bin/systemctl"
  : >"$ROOT/var/log/systemctl.log"
  mkdir -p "$ROOT/pkgs"
  local p
  for p in "${!PKG[@]}"; do cp "${PKG[$p]}" "$ROOT/pkgs/$p"; done
}
in_root() { chroot "$ROOT" "$@"; }

# systemd_running yes|no: whether $ROOT looks like a system that systemd runs.
systemd_running() {
  if [ "$1" = yes ]; then mkdir -p "$ROOT/run/systemd/system"; else rm -rf "$ROOT/run/systemd"; fi
}
policy_rc_d() {  # deny|none
  if [ "$1" = deny ]; then
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
    chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
  else
    rm -f "$ROOT/usr/sbin/policy-rc.d"
  fi
}
systemctl_calls() { cat "$ROOT/var/log/systemctl.log"; }
reset_systemctl_log() { : >"$ROOT/var/log/systemctl.log"; }
# No systemctl call that starts, restarts or stops anything since the last reset.
no_service_action() {
  ! grep -Eq '(^| )(start|restart|try-restart|reload-or-restart|stop|enable --now|disable --now)( |$)' \
    "$ROOT/var/log/systemctl.log"
}
# No process of ours runs in this PID namespace (every process of the test's roots is in it).
nothing_running() {
  local p exe
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    case "$exe" in *ntpfleet-agent* | *ntpfleet-controller*) return 1 ;; esac
  done
  return 0
}

# stat_is PATH MODE OWNER:GROUP, inside $ROOT.
stat_is() {
  local got
  got=$(in_root stat -c '%a %U:%G' "$1" 2>&1) || { echo "    $1: $got"; return 1; }
  [ "$got" = "$2 $3" ] || { echo "    $1: $got, expected $2 $3"; return 1; }
}
# unit_value UNIT_FILE KEY: the value of KEY= (the last one) in a unit file.
unit_value() { sed -n "s/^$2=//p" "$1" | tail -1; }
# is_static FILE: no ELF interpreter and no shared library.
is_static() {
  ! readelf -lW "$1" | grep -q 'INTERP' && ! readelf -dW "$1" 2>/dev/null | grep -q '(NEEDED)'
}
# A system user: uid below 1000, no login shell, the expected home.
system_user() {  # NAME HOME
  local entry
  entry=$(in_root getent passwd "$1") || { echo "    no user $1"; return 1; }
  local uid home shell
  uid=$(echo "$entry" | cut -d: -f3)
  home=$(echo "$entry" | cut -d: -f6)
  shell=$(echo "$entry" | cut -d: -f7)
  [ "$uid" -lt 1000 ] && [ "$home" = "$2" ] && case "$shell" in */nologin | */false) true ;; *) false ;; esac ||
    { echo "    $entry"; return 1; }
  in_root getent group "$1" >/dev/null || { echo "    no group $1"; return 1; }
}

# The agent's unit as the issue asks for it: only CAP_SYS_TIME + CAP_NET_BIND_SERVICE,
# Restart=on-failure, in conflict with every other time daemon.
check_agent_unit() {
  local u=$1
  check "agent unit: CapabilityBoundingSet is CAP_SYS_TIME CAP_NET_BIND_SERVICE only" \
    [ "$(unit_value "$u" CapabilityBoundingSet)" = "CAP_SYS_TIME CAP_NET_BIND_SERVICE" ]
  check "agent unit: AmbientCapabilities is CAP_SYS_TIME CAP_NET_BIND_SERVICE only" \
    [ "$(unit_value "$u" AmbientCapabilities)" = "CAP_SYS_TIME CAP_NET_BIND_SERVICE" ]
  check "agent unit: Restart=on-failure" [ "$(unit_value "$u" Restart)" = on-failure ]
  check "agent unit: User=ntpfleet" [ "$(unit_value "$u" User)" = ntpfleet ]
  local c missing=""
  for c in ntp.service ntpd.service ntpsec.service chrony.service chronyd.service \
    openntpd.service systemd-timesyncd.service; do
    [[ " $(unit_value "$u" Conflicts) " == *" $c "* ]] || missing="$missing $c"
  done
  check "agent unit: Conflicts= every other time daemon${missing:+ (missing:$missing)}" [ -z "$missing" ]
}
check_controller_unit() {
  local u=$1
  check "controller unit: User=ntpfleet-controller" [ "$(unit_value "$u" User)" = ntpfleet-controller ]
  check "controller unit: no capability" [ -z "$(unit_value "$u" CapabilityBoundingSet)" ]
  check "controller unit: StateDirectory=ntpfleet-controller" \
    [ "$(unit_value "$u" StateDirectory)" = ntpfleet-controller ]
  check "controller unit: ProtectSystem=strict, NoNewPrivileges=yes" \
    [ "$(unit_value "$u" ProtectSystem)/$(unit_value "$u" NoNewPrivileges)" = strict/yes ]
}

# verify_units UNIT...: systemd-analyze verify inside $ROOT (the units' binaries, man pages and
# referenced units must all be there). Fails when systemd-analyze is missing: scripts/setup.sh
# installs it.
verify_units() {
  if ! in_root sh -c 'command -v systemd-analyze' >/dev/null; then
    fail "systemd-analyze is missing (package systemd; scripts/setup.sh installs it)"
    return
  fi
  local out
  if out=$(in_root systemd-analyze verify "$@" 2>&1) && [ -z "$out" ]; then
    ok "systemd-analyze verify $*"
  else
    fail "systemd-analyze verify $*:"
    echo "$out" | sed 's/^/    /'
  fi
}

# The installed binaries answer: --version is VERSION; the agent accepts its shipped config;
# the controller reads its flag file (and stops at the missing TLS files, exit 2).
check_binaries_run() {  # SBIN_DIR BIN_DIR VERSION [controller]
  local sbin=$1 bin=$2 version=$3 out
  check "ntpfleet-agent --version is $version" \
    [ "$(in_root "$sbin/ntpfleet-agent" --version 2>&1)" = "ntpfleet-agent $version" ]
  check "ntpfleetctl --version is $version" \
    [ "$(in_root "$bin/ntpfleetctl" --version 2>&1)" = "ntpfleetctl $version" ]
  if out=$(in_root "$sbin/ntpfleet-agent" --check-config --config /etc/ntpfleet/agent.conf 2>&1); then
    ok "the shipped agent.conf passes --check-config"
  else
    fail "the shipped agent.conf fails --check-config"
    echo "$out" | sed 's/^/    /'
  fi
  [ -n "${4:-}" ] || return 0
  local rc=0
  out=$(in_root "$sbin/ntpfleet-controller" --flagfile=/etc/ntpfleet/controller.flags 2>&1) || rc=$?
  if [ "$rc" = 2 ] && [[ "$out" == *"cannot read /etc/ntpfleet/tls/controller.pem"* ]]; then
    ok "ntpfleet-controller reads controller.flags and stops at the missing TLS files (exit 2)"
  else
    fail "ntpfleet-controller --flagfile=/etc/ntpfleet/controller.flags: exit $rc: $out"
  fi
}
