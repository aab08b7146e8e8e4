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

# apt_update_once, candidate, fetch_debs, unpack_debs
source "$(dirname "$0")/debs.sh"

mkdir -p "$DIR/debs" 2>/dev/null || die "cannot create $DIR (run as root, or set NTPFLEET_TOOLS_DIR)"
[ -w "$DIR" ] || die "$DIR is not writable (run as root, or set NTPFLEET_TOOLS_DIR)"
DIR=$(cd "$DIR" && pwd)

# 1. Download (only what is not cached yet).
fetch_debs

# 2. Unpack into root/ (again only if the set of .debs changed).
unpack_debs

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
