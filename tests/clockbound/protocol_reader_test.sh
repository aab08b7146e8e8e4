#!/bin/bash
# "A reader written from the protocol document reads our segment": protocol_reader.py (written
# from aws/clock-bound's PROTOCOL.md, not from our headers) decodes a segment our writer made,
# field by field, plain and with the simulated-clock extension.
set -uo pipefail
WRITE=$1
READER=$2
T=${TEST_TMPDIR:-$(mktemp -d)}
fail() { echo "FAIL: $*"; exit 1; }

"$WRITE" "$T/cb/shm0" || fail "write_segment"
python3 "$READER" "$T/cb/shm0" --raw >"$T/plain.json" || fail "reader"
cat "$T/plain.json"
python3 - "$T/plain.json" <<'PY' || fail "plain segment decoded wrong"
import json, sys
f = json.load(open(sys.argv[1]))
want = {"segment_size": 104, "version": 2, "generation": 4,
        "as_of_ns": 1234 * 10**9 + 567000000, "void_after_ns": 2234 * 10**9 + 567000001,
        "bound_ns": 4242424, "disruption_marker": 0x0102030405060708,
        "max_drift_ppb": 15123, "clock_status": 2, "disruption_support": 0,
        "simulated": False}
bad = {k: (f.get(k), v) for k, v in want.items() if f.get(k) != v}
assert not bad, bad
PY

"$WRITE" "$T/sim/shm0" simulated || fail "write_segment simulated"
python3 "$READER" "$T/sim/shm0" --raw >"$T/sim.json" || fail "reader"
cat "$T/sim.json"
python3 - "$T/sim.json" <<'PY' || fail "extension decoded wrong"
import json, sys
f = json.load(open(sys.argv[1]))
assert f["simulated"] is True, f
assert f["clock_minus_monotonic_ns"] == -987654321012, f
assert f["bound_ns"] == 4242424, f
PY

# Not a segment: the reader says so (and so the checks above could fail).
head -c 100 /dev/zero >"$T/zero"
python3 "$READER" "$T/zero" --raw >"$T/zero.out" 2>&1 && fail "zeros accepted"
grep -q "bad magic" "$T/zero.out" || { cat "$T/zero.out"; fail "zeros: no 'bad magic'"; }
echo PASS
