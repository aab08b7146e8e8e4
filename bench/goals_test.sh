#!/usr/bin/env bash
# docs/BENCHMARKS.md is consistent: its "Goals at a glance" table is exactly what bench/goals.py
# makes of the sections below it, it judges all twenty-seven goals of the benchmark issues, and
# (with RUN_SH) it is exactly what `bench/run.sh --compose` makes of bench/results/ (so a section
# rerun with `--only` and the document never disagree).
#   goals_test.sh DOCS/BENCHMARKS.md BENCH/goals.py [BENCH/run.sh]
set -euo pipefail
doc="$1"
goals="$2"
run_sh="${3:-}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

python3 - "$doc" "$dir" <<'PY'
import sys
text = open(sys.argv[1]).read()
out = sys.argv[2]
heads = ["## Goals at a glance", "## Accuracy", "## NTP server throughput",
         "## Controller scale", "## Agent footprint", "## ClockBound read",
         "## Crosscheck solve"]
pos = [text.index(h) for h in heads]  # ValueError (a failure) when one is missing
pos.append(len(text))
names = ["glance", "accuracy", "throughput", "scale", "footprint", "clockbound",
         "crosscheck"]
for i, name in enumerate(names):
    body = text[pos[i]:pos[i + 1]]
    if name == "glance":
        body = "\n".join(l for l in body.splitlines() if l.startswith("|")) + "\n"
    open(f"{out}/{name}", "w").write(body)
PY

python3 "$goals" "$dir/accuracy" "$dir/throughput" "$dir/scale" "$dir/footprint" \
  "$dir/clockbound" "$dir/crosscheck" >"$dir/made"
if ! diff -u "$dir/glance" "$dir/made"; then
  echo "FAIL: the goals table in $doc is not what bench/goals.py makes of its sections" >&2
  exit 1
fi
judged=$(grep -cE '\| (MET|MISSED) \|$' "$dir/made" || true)
if [ "$judged" != 27 ]; then
  echo "FAIL: $judged of 27 goals judged MET or MISSED:" >&2
  cat "$dir/made" >&2
  exit 1
fi
if [ -n "$run_sh" ]; then
  bash "$run_sh" --compose "$dir/composed" >/dev/null
  if ! diff -u "$doc" "$dir/composed"; then
    echo "FAIL: $doc is not what \`bench/run.sh --compose\` makes of bench/results/ (rerun it)" >&2
    exit 1
  fi
fi
echo "ok: 27 goals, table consistent with the sections${run_sh:+ and with bench/results/}"
