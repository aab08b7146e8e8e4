#!/bin/sh
# install.sh: installs ntpfleet @VERSION@ from this tarball (statically linked binaries: any
# x86_64 Linux with systemd, CentOS 7 included). Prints every action it takes ("+ ..."), changes
# nothing with --dry-run, never starts or stops anything unless asked (--start,
# --replace-time-daemons), and never overwrites a configuration file. The units it puts in
# /etc/systemd/system are its own and replaced on every run: change them with drop-ins
# (systemctl edit ntpfleet-agent), not in place.
#
#   sudo ./install.sh                          # agent + ntpfleetctl, disabled, not started
#   sudo ./install.sh --with-controller        # also the controller (the designated server node)
#   sudo ./install.sh --replace-time-daemons --start   # after editing /etc/ntpfleet/agent.conf
#   ./install.sh --root /tmp/img --dry-run     # what it would do, into an image
#   sudo ./install.sh --uninstall              # remove the programs; config, state, users stay
#
# Options:
#   --prefix DIR            binaries in DIR/sbin and DIR/bin, man pages and docs in DIR/share
#                           (default /usr/local); the units are rewritten to match
#   --root DIR              install under DIR instead of / (an image, a container root, a test);
#                           users are created there only if DIR/etc/passwd exists
#   --with-controller       also install ntpfleet-controller, its user and controller.flags
#   --replace-time-daemons  stop and disable ntpd, ntp, ntpsec, chronyd, chrony, openntpd and
#                           systemd-timesyncd (those installed); with --root only disable
#   --start                 enable and start ntpfleet-agent (and the controller with
#                           --with-controller) once `--check-config` accepts agent.conf and it
#                           no longer names the placeholder server
#   --uninstall             remove what this script installed except /etc/ntpfleet,
#                           /var/lib/ntpfleet and the users
#   --dry-run               print the actions, take none
set -eu

VERSION=@VERSION@
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/usr/local
ROOT=/
WITH_CONTROLLER=0
REPLACE=0
START=0
UNINSTALL=0
DRY=0
TIME_DAEMONS="ntpd.service ntp.service ntpsec.service chronyd.service chrony.service openntpd.service systemd-timesyncd.service"

usage() {
  sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
  exit "$1"
}
die() {
  echo "install.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift ;;
    --prefix=*) PREFIX=${1#*=} ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift ;;
    --root=*) ROOT=${1#*=} ;;
    --with-controller) WITH_CONTROLLER=1 ;;
    --replace-time-daemons) REPLACE=1 ;;
    --start) START=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --dry-run) DRY=1 ;;
    -h | --help) usage 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
  esac
  shift
done
case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path, not $PREFIX" ;; esac
[ -d "$ROOT" ] || die "--root $ROOT is not a directory"
ROOT=$(cd "$ROOT" && pwd)
case "$PREFIX$ROOT" in *'|'* | *'
'*) die "--prefix and --root must not contain '|' or a newline" ;; esac
[ "$ROOT" = / ] && R="" || R=$ROOT
if [ -n "$R" ] && [ "$START" = 1 ]; then die "--start needs the running system, not --root $ROOT"; fi
if [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ] && [ -z "$R" ]; then
  die "run as root (or with --root DIR, or --dry-run)"
fi
# Is a systemd running this system? (Not in a chroot, an image build or a container without it.)
SYSTEMD=0
if [ -z "$R" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then SYSTEMD=1; fi

# run CMD...: prints it, runs it unless --dry-run.
run() {
  echo "+ $*"
  [ "$DRY" = 1 ] || "$@"
}
note() { echo "  ($*)"; }

SBIN=$PREFIX/sbin
BIN=$PREFIX/bin
MAN=$PREFIX/share/man
DOC=$PREFIX/share/doc/ntpfleet
UNITDIR=/etc/systemd/system
NOLOGIN=/bin/false
for n in /usr/sbin/nologin /sbin/nologin; do
  if [ -x "$R$n" ]; then NOLOGIN=$n; break; fi
done

# unit NAME: the shipped unit with /usr/sbin and /usr/share/doc/<package> moved to --prefix.
install_unit() {
  src=$HERE/systemd/$1
  dest=$R$UNITDIR/$1
  echo "+ sed 's|/usr/sbin/|$SBIN/|; s|/usr/share/doc/ntpfleet-[a-z]*/|$DOC/|' $src > $dest"
  if [ "$DRY" = 0 ]; then
    sed -e "s|/usr/sbin/|$SBIN/|g" -e "s|/usr/share/doc/ntpfleet-[a-z]*/|$DOC/|g" "$src" >"$dest.tmp"
    chmod 0644 "$dest.tmp"
    mv -f "$dest.tmp" "$dest"
  fi
}

# config SRC DEST: installs a configuration file, never replacing one that differs.
install_config() {
  if [ -e "$2" ] && ! cmp -s "$1" "$2"; then
    run install -m 0644 "$1" "$2.new"
    note "$2 exists and differs: kept it; the shipped version is $2.new"
  elif [ ! -e "$2" ]; then
    run install -m 0644 "$1" "$2"
  else
    note "$2 is already the shipped version"
  fi
}

# has DB NAME: NAME is in the root's passwd or group database.
has() {
  if [ -z "$R" ]; then
    getent "$1" "$2" >/dev/null
  else
    grep -q "^$2:" "$R/etc/$1" 2>/dev/null
  fi
}

# add_user NAME HOME DIR GECOS: a system user and group NAME (unless they exist) that owns DIR.
add_user() {
  if [ -n "$R" ] && [ ! -f "$R/etc/passwd" ]; then
    note "no $R/etc/passwd: not creating user $1 (create it in the image, then chown $1: $3)"
    return 0
  fi
  # useradd/groupadd --root chroot into $R, so its /etc/passwd and /etc/group are the ones changed.
  if has group "$1"; then
    note "group $1 exists"
  elif [ -n "$R" ]; then
    run groupadd --root "$R" --system "$1"
  else
    run groupadd --system "$1"
  fi
  if has passwd "$1"; then
    note "user $1 exists"
  elif [ -n "$R" ]; then
    run useradd --root "$R" --system --gid "$1" --home-dir "$2" --no-create-home \
      --shell "$NOLOGIN" --comment "$4" "$1"
  else
    run useradd --system --gid "$1" --home-dir "$2" --no-create-home \
      --shell "$NOLOGIN" --comment "$4" "$1"
  fi
  if [ "$DRY" = 1 ] || [ -z "$R" ]; then
    run chown "$1:$1" "$R$3"
  else
    # Under --root the names are the root's, not this system's: chown by number.
    uid=$(awk -F: -v n="$1" '$1 == n { print $3 }' "$R/etc/passwd")
    gid=$(awk -F: -v n="$1" '$1 == n { print $3 }' "$R/etc/group")
    run chown "$uid:$gid" "$R$3"
  fi
}

systemctl_root() {
  if [ -n "$R" ]; then run systemctl --root="$R" "$@"; else run systemctl "$@"; fi
}

if [ "$UNINSTALL" = 1 ]; then
  echo "Uninstalling ntpfleet $VERSION from ${R:-/} (prefix $PREFIX)."
  for u in ntpfleet-agent.service ntpfleet-controller.service; do
    [ -e "$R$UNITDIR/$u" ] || continue
    if [ "$SYSTEMD" = 1 ]; then
      run systemctl disable --now "$u"
    elif command -v systemctl >/dev/null 2>&1; then
      systemctl_root disable "$u"
    fi
    run rm -f "$R$UNITDIR/$u"
  done
  for f in "$SBIN/ntpfleet-agent" "$SBIN/ntpfleet-controller" "$BIN/ntpfleetctl" \
    "$MAN/man8/ntpfleet-agent.8" "$MAN/man8/ntpfleet-controller.8" "$MAN/man1/ntpfleetctl.1"; do
    if [ -e "$R$f" ]; then run rm -f "$R$f"; fi
  done
  if [ -d "$R$DOC" ]; then run rm -rf "$R$DOC"; fi
  if [ "$SYSTEMD" = 1 ]; then run systemctl daemon-reload; fi
  note "kept /etc/ntpfleet, /var/lib/ntpfleet and the users ntpfleet, ntpfleet-controller"
  note "to go back to the old time daemon: systemctl enable --now chronyd (or ntpd)"
  exit 0
fi

echo "Installing ntpfleet $VERSION into ${R:-/} (prefix $PREFIX)$([ "$DRY" = 1 ] && echo ', dry run: nothing is changed')."
run install -d -m 0755 "$R$SBIN" "$R$BIN" "$R$MAN/man8" "$R$MAN/man1" "$R$DOC/examples" \
  "$R$UNITDIR" "$R/etc/ntpfleet" "$R/etc/ntpfleet/tls" "$R/var/lib/ntpfleet"
run install -m 0755 "$HERE/sbin/ntpfleet-agent" "$R$SBIN/ntpfleet-agent"
run install -m 0755 "$HERE/bin/ntpfleetctl" "$R$BIN/ntpfleetctl"
run install -m 0644 "$HERE/share/man/man8/ntpfleet-agent.8" "$R$MAN/man8/ntpfleet-agent.8"
run install -m 0644 "$HERE/share/man/man1/ntpfleetctl.1" "$R$MAN/man1/ntpfleetctl.1"
for f in "$HERE"/share/doc/ntpfleet/*; do
  if [ -f "$f" ]; then run install -m 0644 "$f" "$R$DOC/$(basename "$f")"; fi
done
for f in "$HERE"/share/doc/ntpfleet/examples/*; do
  run install -m 0644 "$f" "$R$DOC/examples/$(basename "$f")"
done
install_unit ntpfleet-agent.service
install_config "$HERE/etc/ntpfleet/agent.conf" "$R/etc/ntpfleet/agent.conf"
add_user ntpfleet /var/lib/ntpfleet /var/lib/ntpfleet "ntpfleet agent"

if [ "$WITH_CONTROLLER" = 1 ]; then
  run install -m 0755 "$HERE/sbin/ntpfleet-controller" "$R$SBIN/ntpfleet-controller"
  run install -m 0644 "$HERE/share/man/man8/ntpfleet-controller.8" "$R$MAN/man8/ntpfleet-controller.8"
  install_unit ntpfleet-controller.service
  install_config "$HERE/etc/ntpfleet/controller.flags" "$R/etc/ntpfleet/controller.flags"
  run install -d -m 0750 "$R/var/lib/ntpfleet-controller"
  add_user ntpfleet-controller /var/lib/ntpfleet-controller /var/lib/ntpfleet-controller "ntpfleet controller"
fi

if [ "$SYSTEMD" = 1 ]; then
  run systemctl daemon-reload
else
  note "no running systemd here: no daemon-reload, nothing started"
fi

# Before the old daemons are disabled or the agent started: agent.conf must be real. Disabling
# chronyd/ntpd and then finding the agent cannot start would leave the node with no time at all.
if [ "$REPLACE" = 1 ] || [ "$START" = 1 ]; then
  [ "$START" = 0 ] || [ "$SYSTEMD" = 1 ] || die "--start: no running systemd on this system"
  conf="$R/etc/ntpfleet/agent.conf"
  if [ "$DRY" = 1 ] && [ ! -f "$conf" ]; then
    note "would check $conf (--check-config, no placeholder) before disabling or starting anything"
  else
    if grep -q '^[^#]*ntp-server\.invalid' "$conf"; then
      die "$conf still names the placeholder ntp-server.invalid; edit it first (nothing was disabled or started)"
    fi
    echo "+ $HERE/sbin/ntpfleet-agent --check-config --config $conf >/dev/null"
    "$HERE/sbin/ntpfleet-agent" --check-config --config "$conf" >/dev/null ||
      die "$conf has an error (above); nothing was disabled or started"
  fi
fi

if [ "$REPLACE" = 1 ]; then
  if command -v systemctl >/dev/null 2>&1; then
    for u in $TIME_DAEMONS; do
      if [ "$SYSTEMD" = 1 ]; then
        # Only units that exist here (list-unit-files prints nothing for the others).
        if [ -n "$(systemctl list-unit-files --no-legend "$u" 2>/dev/null)" ]; then
          run systemctl disable --now "$u"
        fi
      elif [ -n "$(systemctl --root="$ROOT" list-unit-files --no-legend "$u" 2>/dev/null)" ]; then
        systemctl_root disable "$u"
      fi
    done
  else
    note "no systemctl: disable the old time daemon by hand"
  fi
fi

if [ "$START" = 1 ]; then
  run systemctl enable --now ntpfleet-agent.service
  if [ "$WITH_CONTROLLER" = 1 ]; then run systemctl enable --now ntpfleet-controller.service; fi
else
  echo "Nothing was started. Next: edit /etc/ntpfleet/agent.conf, then"
  echo "  $SBIN/ntpfleet-agent --check-config --config /etc/ntpfleet/agent.conf"
  echo "  systemctl disable --now chronyd ntpd      # whichever runs now"
  echo "  systemctl enable --now ntpfleet-agent"
fi
