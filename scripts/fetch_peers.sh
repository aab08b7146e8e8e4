#!/usr/bin/env bash
# Fetches the real NTP programs the interoperability tests (tests/interop/) run next to ntpfleet:
# chrony 4.3 (chronyd), NTPsec 1.2.2 (ntpd, ntpq) and ntpdig, from Debian's own apt repositories.
# They are NOT installed as packages (chrony and ntpsec conflict, and installing them could start a
# daemon that disciplines this machine's clock): their .debs are unpacked with `dpkg -x` into a
# cache directory and run from there.
#
#   sudo scripts/fetch_peers.sh                              # into /var/cache/ntpfleet/peers
#   NTPFLEET_PEERS_DIR=/tmp/peers scripts/fetch_peers.sh     # somewhere else
#
# Idempotent: a second run downloads nothing (unless Debian has a newer version) and re-extracts
# nothing. Needs root only to run `apt-get update` (lists missing) or to install a missing shared
# library the programs link against (never chrony/ntpsec themselves).
#
# Layout of $NTPFLEET_PEERS_DIR afterwards:
#   debs/      the downloaded .debs
#   root/      their contents (root/usr/sbin/chronyd, root/usr/sbin/ntpd, root/usr/bin/ntpdig, ...)
#   bin/       wrappers to run: chronyd, chronyc, ntpd, ntpq, ntpdig. They set PYTHONPATH for the
#              Python tools, and chronyd/ntpd drop CAP_SYS_TIME (setpriv) when they are started as
#              root with it still available, so even a wrong invocation cannot move the clock.
#   env.sh     `. env.sh` puts bin/ first on PATH
#   VERSIONS   package versions, one per line
set -euo pipefail

DIR="${NTPFLEET_PEERS_DIR:-/var/cache/ntpfleet/peers}"
PACKAGES=(chrony ntpsec ntpsec-ntpdig python3-ntp)

say() { echo "fetch_peers: $*"; }
die() { echo "fetch_peers: error: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# apt-get update at most once per run, and only when needed.
# apt_update_once, candidate, fetch_debs, unpack_debs
source "$(dirname "$0")/debs.sh"

# Runs apt-get install for plain libraries with services kept from starting: /usr/sbin/policy-rc.d
# exits 101 meanwhile, and whatever was there before (or nothing) is put back afterwards.
POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=""
POLICY_SAVED=0
restore_policy() {
  [ "$POLICY_SAVED" = 1 ] || return 0
  if [ -n "$POLICY_BACKUP" ]; then mv -f "$POLICY_BACKUP" "$POLICY"; else rm -f "$POLICY"; fi
  POLICY_SAVED=0
}
apt_install_libs() {
  is_root || die "missing shared libraries ($*); run as root (sudo $0) to install them"
  POLICY_BACKUP=""
  if [ -e "$POLICY" ]; then
    POLICY_BACKUP=$(mktemp)
    cp -p "$POLICY" "$POLICY_BACKUP"
  fi
  POLICY_SAVED=1
  trap restore_policy EXIT
  printf '#!/bin/sh\n# fetch_peers.sh: start no service while installing\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  say "apt-get install $*"
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  restore_policy
  trap - EXIT
  [ "$rc" = 0 ] || die "apt-get install $* failed"
}

mkdir -p "$DIR/debs" 2>/dev/null || die "cannot create $DIR (run as root, or set NTPFLEET_PEERS_DIR)"
[ -w "$DIR" ] || die "$DIR is not writable (run as root, or set NTPFLEET_PEERS_DIR)"
DIR=$(cd "$DIR" && pwd)

# 1. Download (only what is not cached yet).
fetch_debs

# 2. Extract into root/ (again only if the set of .debs changed).
unpack_debs
ROOT="$DIR/root"

# 3. Fix-ups so the programs run from there.
# python3-ntp looks for libntpc.so next to ntp/ntpc.py first: point it at the unpacked library
# (relative link, so the cache directory can be moved).
libntpc=$(cd "$ROOT" && find usr/lib -name 'libntpc.so.*.*' -type f | head -n 1)
[ -n "$libntpc" ] || die "libntpc not found in $ROOT"
pydir="$ROOT/usr/lib/python3/dist-packages"
[ -f "$pydir/ntp/ntpc.py" ] || die "python3-ntp not found in $ROOT"
ln -sfn "../../../../../$libntpc" "$pydir/ntp/libntpc.so"
[ -e "$pydir/ntp/libntpc.so" ] || die "broken link $pydir/ntp/libntpc.so"

# 4. Shared libraries (and python3) they need: the lib* dependencies of the .debs, installed as
# plain packages if missing.
missing=()
for d in "${debs[@]}"; do
  deps=$(dpkg-deb -f "$d" Depends | tr ',' '\n' | sed -e 's/([^)]*)//g' -e 's/|.*//' -e 's/:any//' -e 's/[[:space:]]//g')
  for dep in $deps; do
    case "$dep" in
      lib*|python3) ;;
      *) continue ;;  # adduser, tzdata, init helpers ...: only needed to install, not to run
    esac
    case " ${PACKAGES[*]} " in *" $dep "*) continue ;; esac
    if ! dpkg-query -W -f='${Status}\n' "$dep" 2>/dev/null | grep -q '^install ok installed$'; then
      case " ${missing[*]:-} " in *" $dep "*) ;; *) missing+=("$dep") ;; esac
    fi
  done
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ -z "$(candidate "${missing[0]}")" ]; then apt_update_once; fi
  apt_install_libs "${missing[@]}"
fi
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 is missing (ntpdig and ntpq need it)"

# 5. Wrappers.
mkdir -p "$DIR/bin"
write_wrapper() {  # name, real path (relative to root), kind: daemon|python|plain
  local real="$2" kind="$3" out="$DIR/bin/$1"
  {
    echo '#!/bin/sh'
    echo "# Written by scripts/fetch_peers.sh: runs $real unpacked under $ROOT."
    echo "ROOT='$ROOT'"
    if [ "$kind" = daemon ]; then
      cat <<'EOF'
# Never with CAP_SYS_TIME: drop it (bounding + inheritable) if it is still there.
bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
if [ "$(id -u)" = 0 ] && [ $(( (0x$bnd >> 25) & 1 )) = 1 ]; then
  exec setpriv --inh-caps=-sys_time --bounding-set=-sys_time -- "$0" "$@"
fi
EOF
    fi
    if [ "$kind" = python ]; then
      echo 'PYTHONPATH="$ROOT/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}"'
      echo 'export PYTHONPATH'
      echo "exec /usr/bin/python3 \"\$ROOT/$real\" \"\$@\""
    else
      echo "exec \"\$ROOT/$real\" \"\$@\""
    fi
  } >"$out.tmp"
  chmod 755 "$out.tmp"
  mv -f "$out.tmp" "$out"
}
write_wrapper chronyd usr/sbin/chronyd daemon
write_wrapper chronyc usr/bin/chronyc plain
write_wrapper ntpd usr/sbin/ntpd daemon
write_wrapper ntpq usr/bin/ntpq python
write_wrapper ntpdig usr/bin/ntpdig python
cat >"$DIR/env.sh" <<EOF
# . $DIR/env.sh   (written by scripts/fetch_peers.sh)
export NTPFLEET_PEERS_DIR='$DIR'
export PATH='$DIR/bin':"\$PATH"
EOF

# 6. Check they start (version queries only; nothing listens, nothing touches the clock).
safe() { if is_root; then setpriv --inh-caps=-sys_time --bounding-set=-sys_time -- "$@"; else "$@"; fi; }
chrony_v=$(safe "$DIR/bin/chronyd" -v 2>&1 | head -n 1) || die "chronyd does not run: $chrony_v"
ntpd_v=$(safe "$DIR/bin/ntpd" --version 2>&1 | head -n 1) || die "ntpd does not run: $ntpd_v"
ntpdig_v=$(safe "$DIR/bin/ntpdig" --version 2>&1 | head -n 1) || die "ntpdig does not run: $ntpdig_v"
for d in "${debs[@]}"; do
  echo "$(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version)"
done >"$DIR/VERSIONS"

echo "peers ready in $DIR"
echo "  chronyd  $DIR/bin/chronyd   ($chrony_v)"
echo "  ntpd     $DIR/bin/ntpd      ($ntpd_v)"
echo "  ntpq     $DIR/bin/ntpq"
echo "  ntpdig   $DIR/bin/ntpdig    ($ntpdig_v)"
echo "  unpacked $ROOT; PYTHONPATH=$pydir"
echo "  '. $DIR/env.sh' puts them on PATH; run them only under setpriv --inh-caps=-sys_time --bounding-set=-sys_time"
