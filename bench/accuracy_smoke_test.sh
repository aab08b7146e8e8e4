#!/bin/bash
# Smoke test of bench/accuracy: two seeds of 10 simulated minutes per scenario; the table must list
# every scenario.
set -euo pipefail
out=$("$1" --seeds 2 --duration 600s)
echo "$out"
for s in default iburst wrong-date large-frequency high-jitter falsetickers outage kod-rate silence \
  asymmetry route-change loss frequency-step chain leap-second; do
  grep -q "^| $s |" <<<"$out" || { echo "scenario $s missing from the table"; exit 1; }
done
