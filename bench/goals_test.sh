#!/usr/bin/env bash
# docs/BENCHMARKS.md is consistent: its "Goals at a glance" table is exactly what bench/goals.py
# makes of the sections below it, and it judges all nineteen goals of the benchmark issue.
#   goals_test.sh DOCS/BENCHMARKS.md BENCH/goals.py
set -euo pipefail
doc="$1"
goals="$2"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

python3 - "$doc" "$dir" <<'PY'
import sys
text = open(sys.argv[1]).read()
out = sys.argv[2]
heads = ["## Goals at a glance", "## Accuracy", "## NTP server throughput",
         "## Controller scale", "## Agent footprint"]
pos = [text.index(h) for h in heads]  # ValueError (a failure) when one is missing
pos.append(len(text))
names = ["glance", "accuracy", "throughput", "scale", "footprint"]
for i, name in enumerate(names):
    body = text[pos[i]:pos[i + 1]]
    if name == "glance":
        body = "\n".join(l for l in body.splitlines() if l.startswith("|")) + "\n"
    open(f"{out}/{name}", "w").write(body)
PY

python3 "$goals" "$dir/accuracy" "$dir/throughput" "$dir/scale" "$dir/footprint" >"$dir/made"
if ! diff -u "$dir/glance" "$dir/made"; then
  echo "FAIL: the goals table in $doc is not what bench/goals.py makes of its sections" >&2
  exit 1
fi
judged=$(grep -cE '\| (MET|MISSED) \|$' "$dir/made" || true)
if [ "$judged" != 19 ]; then
  echo "FAIL: $judged of 19 goals judged MET or MISSED:" >&2
  cat "$dir/made" >&2
  exit 1
fi
echo "ok: 19 goals, table consistent with the sections"
