#!/bin/bash
# Runs one fuzz target from its seed corpus: a replay under normal builds, a time-bounded libFuzzer
# run under --config=fuzz. Usage: run_fuzz_target.sh BINARY SEED_CORPUS_DIR
set -euo pipefail
bin="$1"
seeds="$2"
work="${TEST_TMPDIR:-$(mktemp -d)}/corpus"
artifacts="${TEST_UNDECLARED_OUTPUTS_DIR:-${TEST_TMPDIR:-/tmp}}/"
mkdir -p "$work"
# libFuzzer writes new inputs into the first corpus directory, so it must be writable; the
# committed seeds are read from the second.
exec "$bin" -max_total_time="${FUZZ_SECONDS:-60}" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts" "$work" "$seeds"
