#!/usr/bin/env bash
# The demo fleet (controller + server agent + 8 client agents on SimClocks over loopback) is the
# README's main job. It is delivered by issue #5 (the fleet); the agent and controller it needs do
# not exist yet, so this command says so instead of pretending.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cat >&2 <<'MSG'
ntpfleet demo: not available yet.
The demo fleet needs ntpfleet-agent (issue #4) and ntpfleet-controller/ntpfleetctl (issue #5),
which are not built yet. What exists today is the NTP wire format and its tests:
  scripts/test.sh
MSG
exit 2
