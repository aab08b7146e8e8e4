#!/bin/bash
# lintian on the three .deb packages, at every level (error, warning, info, pedantic): the test
# fails on any tag that deploy/packaging/debian/*.lintian-overrides does not explain (an override that
# no longer matches anything fails it too: lintian reports it as unused-override). The
# overridden tags and their reasons are printed.
#
# Usage (from Bazel): lintian_test.sh PACKAGE... (the .deb files among them are checked)
set -uo pipefail
export LC_ALL=C.UTF-8
command -v lintian >/dev/null || { echo "FAIL: lintian is missing: run scripts/setup.sh"; exit 1; }
debs=()
for f in "$@"; do [[ "$f" == *.deb ]] && debs+=("$f"); done
[ "${#debs[@]}" = 3 ] || { echo "FAIL: expected 3 .deb files, got: ${debs[*]}"; exit 1; }
echo "lintian $(lintian --version | awk '{ print $2 }') on: ${debs[*]##*/}"
out=$(lintian --no-cfg --info --display-experimental --pedantic --show-overrides \
  --fail-on error,warning,info,pedantic "${debs[@]}" 2>&1)
rc=$?
out=$(echo "$out" | grep -v '^running with root privileges is not recommended')
echo "$out"
tags=$(echo "$out" | grep -E '^[EWIPX]: ' || true)
overridden=$(echo "$out" | grep -c '^O: ' || true)
if [ "$rc" != 0 ] || [ -n "$tags" ]; then
  echo "FAIL: lintian reports tags no override explains (exit $rc):"
  echo "$tags"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "ok: no unexplained tag; $overridden overridden, each with its reason above"
echo "1 passed, 0 failed"
