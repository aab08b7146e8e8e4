#!/usr/bin/env bash
# Runs every ntpfleet test: installs what the build needs (scripts/setup.sh), builds everything
# offline, runs all unit/integration tests, makes the seven packages (scripts/package.sh), then
# the unit/integration tests again under ASan+UBSan (--config=asan), then the fuzz targets under
# libFuzzer for a bounded time.
# Ends with "N passed, N failed" alone on the last line (Bazel test targets, and package.sh as
# one more), and exits non-zero
# on any failure or if no test ran.
#
#   scripts/test.sh                  # everything (fuzzing 60 s per target)
#   FUZZ_SECONDS=10 scripts/test.sh  # shorter fuzzing
#
# The clock of this machine is never touched: the script re-executes itself without CAP_SYS_TIME,
# and every test also runs through //tools:no_sys_time.
set -uo pipefail
cd "$(dirname "$0")/.."

source scripts/no_sys_time.sh
reexec_without_sys_time "$0" "$@"

bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
# The real chronyd/NTPsec/ntpdig the interop tests run beside ntpfleet (unpacked, never
# installed, never allowed to touch the clock).
bash scripts/fetch_peers.sh || { echo "fetching the interop peers failed"; echo "0 passed, 1 failed"; exit 1; }
# promtool from Debian's prometheus package (unpacked, never installed, never started) for the
# alert rules' test (tests/deploy/prometheus).
bash scripts/fetch_tools.sh || { echo "fetching promtool failed"; echo "0 passed, 1 failed"; exit 1; }

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
events=$(mktemp -d)
trap 'rm -rf "$events"' EXIT

status=0
echo "== bazel test //... (unit, simulation, integration, fuzz corpus replay)"
bazel test --keep_going --build_event_json_file="$events/main.json" //... || status=1

# The seven packages, as scripts/package.sh makes them for a user (from what the tests above
# just built: the packaging rules build their -c opt binaries the same way).
pkg_failed=0
echo "== scripts/package.sh (the .deb, .rpm and tarball packages)"
pkgdir=$(mktemp -d)
if DIST="$pkgdir" bash scripts/package.sh && [ "$(ls "$pkgdir" | wc -l)" = 7 ]; then
  echo "packages: PASSED ($(ls "$pkgdir" | tr '\n' ' '))"
else
  echo "packages: FAILED (scripts/package.sh did not make the seven packages)"
  pkg_failed=1
  status=1
fi
rm -rf "$pkgdir"

# The same tests again under AddressSanitizer + UndefinedBehaviorSanitizer (clang; leaks too).
# Not the interop tests (third-party daemons beside the same agent code the integration tests
# already cover), nor the benchmark smoke tests (tooling, timing-bound, run exclusively), nor
# the packages and their tests (-c opt binaries, which a sanitizer build would only rebuild), nor
# the static binaries' test (a fully static link cannot take the sanitizers' runtimes), nor the
# installed-fleet test (its programs are the packages' -c opt binaries, which --config=asan
# would only rebuild with the sanitizer; the same code runs under ASan in the other
# integration tests).
ASAN_EXCLUDE=(-//tests/interop/... -//bench/... -//tests/deploy/packaging/... -//deploy/packaging/... -//:packages
  -//tests/static/... -//tests/integration:installed_fleet_test)
echo "== bazel test --config=asan //... -- ${ASAN_EXCLUDE[*]} (ASan + UBSan)"
bazel test --config=asan --keep_going --build_event_json_file="$events/asan.json" \
  -- //... "${ASAN_EXCLUDE[@]}" || status=1

echo "== bazel test --config=fuzz //tests/fuzz/... (libFuzzer, ${FUZZ_SECONDS} s per target)"
bazel test --config=fuzz --keep_going --test_env=FUZZ_SECONDS="$FUZZ_SECONDS" \
  --build_event_json_file="$events/fuzz.json" //tests/fuzz/... || status=1

# Count test targets from Bazel's build event protocol (one testSummary per test target).
passed=$(cat "$events"/*.json | grep -o '"overallStatus":"[A-Z_]*"' | grep -cE '"(PASSED|FLAKY)"')
failed=$(cat "$events"/*.json | grep -o '"overallStatus":"[A-Z_]*"' | grep -vcE '"(PASSED|FLAKY)"')
# scripts/package.sh counts as one more check.
if [ "$pkg_failed" = 1 ]; then failed=$((failed + 1)); else passed=$((passed + 1)); fi
# A target that failed to build may have no summary: count the build failure itself.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ $((passed + failed)) -eq 0 ]; then
  echo "no test ran"
  status=1
fi
[ "$failed" -eq 0 ] || status=1
# Name what failed just above the count, so the tail of a CI log says which targets to look at.
if [ "$failed" -gt 0 ]; then
  echo "== what failed"
  for pass in main asan fuzz; do
    [ -f "$events/$pass.json" ] || continue
    python3 - "$events/$pass.json" "$pass" <<'PY' || true
import json, sys
for line in open(sys.argv[1]):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    summary = event.get("testSummary")
    if summary and summary.get("overallStatus") not in ("PASSED", "FLAKY"):
        label = event.get("id", {}).get("testSummary", {}).get("label", "?")
        print(f"{sys.argv[2]}: {label} {summary.get('overallStatus')}")
PY
  done
  [ "$pkg_failed" = 0 ] || echo "packages: scripts/package.sh"
fi
echo "${passed} passed, ${failed} failed"
exit "$status"
