#!/usr/bin/env bash
# Fetches the checking tools that tests run but nothing installs: promtool, from Debian's
# `prometheus` package, for the alert rules' test (tests/deploy/prometheus/rules_test.sh runs
# `promtool check rules` and `promtool test rules` on deploy/prometheus/). The package is NOT
# installed (that would add and could start a Prometheus server): its .deb is downloaded with
# `apt-get download` and unpacked with `dpkg -x` into a cache directory, and only promtool is run
# from there. Nothing is ever started.
#
#   sudo scripts/fetch_tools.sh                             # into /var/cache/ntpfleet/tools
#   NTPFLEET_TOOLS_DIR=/tmp/tools scripts/fetch_tools.sh    # somewhere else
#
# Idempotent: a second run downloads nothing (unless Debian has a newer version) and unpacks
# nothing. Needs root only to run `apt-get update` when the package lists are missing.
#
# Layout of $NTPFLEET_TOOLS_DIR afterwards:
#   debs/      the downloaded .debs
#   root/      their contents (root/usr/bin/promtool, ...)
#   bin/       promtool (a link into root/)
#   VERSIONS   package versions, one per line
set -euo pipefail

DIR="${NTPFLEET_TOOLS_DIR:-/var/cache/ntpfleet/tools}"
PACKAGES=(prometheus)

say() { echo "fetch_tools: $*"; }
die() { echo "fetch_tools: error: $*" >&2; exit 1; }

updated=0
apt_update_once() {
  [ "$updated" = 1 ] && return 0
  [ "$(id -u)" = 0 ] || die "the apt package lists are missing or stale; run as root (sudo $0)"
  say "apt-get update"
  apt-get update -qq >/dev/null || die "apt-get update failed"
  updated=1
}

# The version apt would pick for package $1 (empty if apt does not know it).
candidate() {
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}' | grep -v '^(none)$' || true
}

mkdir -p "$DIR/debs" 2>/dev/null || die "cannot create $DIR (run as root, or set NTPFLEET_TOOLS_DIR)"
[ -w "$DIR" ] || die "$DIR is not writable (run as root, or set NTPFLEET_TOOLS_DIR)"
DIR=$(cd "$DIR" && pwd)

# 1. Download (only what is not cached yet).
debs=()
for pkg in "${PACKAGES[@]}"; do
  ver=$(candidate "$pkg")
  if [ -z "$ver" ]; then
    cached=$(ls "$DIR/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$cached" ]; then
      debs+=("$cached")
      continue
    fi
    apt_update_once
    ver=$(candidate "$pkg")
    [ -n "$ver" ] || die "apt knows no package $pkg (is bookworm main in /etc/apt/sources.list*?)"
  fi
  want=$(ls "$DIR/debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
  if [ -z "$want" ]; then
    say "downloading $pkg $ver"
    if ! (cd "$DIR/debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null); then
      apt_update_once
      ver=$(candidate "$pkg")
      (cd "$DIR/debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null) \
        || die "apt-get download $pkg failed"
    fi
    want=$(ls "$DIR/debs/${pkg}_${ver//:/%3a}_"*.deb | head -n 1)
    for old in "$DIR/debs/${pkg}_"*.deb; do
      [ "$old" = "$want" ] || rm -f "$old"
    done
  fi
  dpkg-deb -I "$want" >/dev/null 2>&1 || { rm -f "$want"; die "$want is not a valid .deb (removed; run again)"; }
  debs+=("$want")
done

# 2. Unpack into root/ (again only if the set of .debs changed).
stamp="$DIR/root/.ntpfleet-extracted"
wanted_stamp=$(for d in "${debs[@]}"; do basename "$d"; done | sort)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted_stamp" ]; then
  say "unpacking ${#debs[@]} package(s) into $DIR/root"
  rm -rf "$DIR/root.new"
  mkdir -p "$DIR/root.new"
  for d in "${debs[@]}"; do dpkg -x "$d" "$DIR/root.new"; done
  echo "$wanted_stamp" >"$DIR/root.new/.ntpfleet-extracted"
  rm -rf "$DIR/root"
  mv "$DIR/root.new" "$DIR/root"
fi

# 3. bin/promtool, and a check that it runs (a version query: it opens nothing).
mkdir -p "$DIR/bin"
[ -x "$DIR/root/usr/bin/promtool" ] || die "promtool not found in $DIR/root/usr/bin"
ln -sfn ../root/usr/bin/promtool "$DIR/bin/promtool"
promtool_v=$("$DIR/bin/promtool" --version 2>&1 | head -n 1) || die "promtool does not run: $promtool_v"
for d in "${debs[@]}"; do
  echo "$(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version)"
done >"$DIR/VERSIONS"

say "tools ready in $DIR"
echo "  promtool $DIR/bin/promtool   ($promtool_v)"
