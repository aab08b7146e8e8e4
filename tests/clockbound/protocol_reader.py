#!/usr/bin/env python3
"""A ClockBound shared memory reader written only from aws/clock-bound's
docs/PROTOCOL.md ("ClockBound Shared Memory Protocol Version 2") and, for
ntpfleet's extension after the v2 fields, docs/CLOCKBOUND.md — not from
ntpfleet's headers: if our writer and our reader agreed on a wrong layout, this
one would not.

  protocol_reader.py PATH            prints the fields and [earliest, latest] as JSON
  protocol_reader.py PATH --raw      the fields only (no clocks read)

PROTOCOL.md, v2, native endian: magic u64 (bytes 41 4D 5A 4E 43 42 02 00),
segment size u32, version u16, generation u16 (odd while the daemon writes,
even after), as-of (i64 tv_sec, i64 tv_nsec) CLOCK_MONOTONIC_COARSE, void-after
(same), bound i64 ns (on CLOCK_REALTIME at as-of), disruption marker u64, max
drift u32 ppb, clock status i32, clock disruption support u8, padding.
"""
import json
import mmap
import struct
import sys
import time

V2 = struct.Struct("=8sIHH qq qq q Q I i B 7x")
assert V2.size == 80, V2.size
MAGIC = bytes([0x41, 0x4D, 0x5A, 0x4E, 0x43, 0x42, 0x02, 0x00])
# docs/CLOCKBOUND.md: at byte 80, magic "NTPFLTX1", flags u32 (bit 0:
# simulated), reserved u32, clock minus CLOCK_MONOTONIC at as-of, i64 ns.
EXT = struct.Struct("=8sIIq")
EXT_MAGIC = b"NTPFLTX1"
CLOCK_MONOTONIC_COARSE = getattr(time, "CLOCK_MONOTONIC_COARSE", 6)
GENERATION_OFFSET = 14


class ProtocolError(Exception):
    pass


def read_fields(path, tries=1000):
    with open(path, "rb") as f:
        data = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    try:
        if len(data) < V2.size:
            raise ProtocolError(f"{path}: {len(data)} bytes, v2 needs 80")
        for _ in range(tries):
            (g1,) = struct.unpack_from("=H", data, GENERATION_OFFSET)
            raw = bytes(data[: max(V2.size + EXT.size, 0)])
            (g2,) = struct.unpack_from("=H", data, GENERATION_OFFSET)
            if g1 != g2 or g1 % 2 == 1:
                continue  # the writer was updating: read again
            (magic, size, version, generation, as_of_s, as_of_ns, void_s,
             void_ns, bound, marker, drift, status, disruption) = V2.unpack_from(raw)
            if magic != MAGIC:
                raise ProtocolError(f"{path}: bad magic {magic.hex()}")
            if version != 2:
                raise ProtocolError(f"{path}: version {version}")
            if size < V2.size or size > len(data):
                raise ProtocolError(f"{path}: segment size {size}")
            out = {
                "segment_size": size,
                "version": version,
                "generation": generation,
                "as_of_ns": as_of_s * 10**9 + as_of_ns,
                "void_after_ns": void_s * 10**9 + void_ns,
                "bound_ns": bound,
                "disruption_marker": marker,
                "max_drift_ppb": drift,
                "clock_status": status,
                "disruption_support": disruption,
                "simulated": False,
                "clock_minus_monotonic_ns": 0,
            }
            if size >= V2.size + EXT.size:
                ext_magic, flags, _, offset = EXT.unpack_from(raw, V2.size)
                if ext_magic == EXT_MAGIC and flags & 1:
                    out["simulated"] = True
                    out["clock_minus_monotonic_ns"] = offset
            return out
        raise ProtocolError(f"{path}: no consistent read in {tries} tries")
    finally:
        data.close()


def now(fields):
    """[earliest, latest] as PROTOCOL.md describes: the bound at as-of grown by
    max drift for the time since; the status as written while void-after is
    ahead, unknown (0) after it."""
    # CLOCK_REALTIME is reported too, read at the same instant as the clock, so
    # that a test can check [earliest, latest] against it: with the simulated
    # clock, read between two CLOCK_MONOTONIC readings (the tightest pair of
    # up to 50 tries), and pair_uncertainty_ns, half that pair's gap, says how
    # far apart the two may still be. (Read one after the other, a preempted
    # reader saw realtime 0.38 ms after its clock, outside a 0.09 ms bound.)
    if fields["simulated"]:
        best = None
        for _ in range(50):
            before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            realtime = time.clock_gettime_ns(time.CLOCK_REALTIME)
            after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            if best is None or after - before < best[0]:
                best = (after - before, before + (after - before) // 2, realtime)
            if best[0] <= 20000:
                break
        gap, mono_now, realtime = best
        clock = mono_now + fields["clock_minus_monotonic_ns"]
        pair_uncertainty = -(-gap // 2)
    else:
        clock = realtime = time.clock_gettime_ns(time.CLOCK_REALTIME)
        pair_uncertainty = 0
    mono = time.clock_gettime_ns(CLOCK_MONOTONIC_COARSE)
    elapsed = max(0, mono - fields["as_of_ns"])
    bound = fields["bound_ns"] + -(-elapsed * fields["max_drift_ppb"] // 10**9)
    status = fields["clock_status"] if mono < fields["void_after_ns"] else 0
    return {
        "clock_ns": clock,
        "earliest_ns": clock - bound,
        "latest_ns": clock + bound,
        "bound_ns": bound,
        "status": status,
        "void": mono >= fields["void_after_ns"],
        "as_of_age_ns": mono - fields["as_of_ns"],
        "realtime_ns": realtime,
        "pair_uncertainty_ns": pair_uncertainty,
    }


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        fields = read_fields(argv[1])
    except (OSError, ProtocolError) as e:
        print(f"protocol_reader: {e}", file=sys.stderr)
        return 1
    if "--raw" not in argv:
        fields.update(now(fields))
    print(json.dumps(fields, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
