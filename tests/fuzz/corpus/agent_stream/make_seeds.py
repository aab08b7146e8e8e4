#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/agent_stream_fuzz.cc into this directory.

Each seed is a sequence of steps in the target's input format (see the comment at the top of
agent_stream_fuzz.cc); the protobuf messages are encoded by hand (proto3 wire format), so this
needs nothing but Python 3. Run it again after changing the seeds or the input format:
    python3 tests/fuzz/corpus/agent_stream/make_seeds.py [DIR_FOR_PENDING_REPRODUCERS]
"""
import os
import struct
import sys

# Ops (agent_stream_fuzz.cc, enum Op).
CONNECT, REPORT, TOUCH, DISCONNECT, ADVANCE, SNAPSHOT, SELECT, SUMMARIZE, KNOWN, REPORT_OLD, \
    MESSAGE = range(11)

# SyncState / SelectionMark values (proto/ntpfleet.proto).
UNSYNCHRONISED, SYNCING, SYNCHRONISED, HOLDOVER, LOCAL_CLOCK = 1, 2, 3, 4, 5
MARK_SYSTEM_PEER = 6


def varint(n):
    n &= (1 << 64) - 1  # negative int32/int64: ten bytes of two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def duration(seconds, nanos=0):
    return field_varint(1, seconds) + field_varint(2, nanos)


def micros(us):
    return duration(int(us // 1_000_000), int(us % 1_000_000) * 1000) if us >= 0 else \
        duration(-int(-us // 1_000_000), -int(-us % 1_000_000) * 1000)


def hello(name, instance="", interval_s=1, labels=None, role=0):
    out = field_bytes(1, name) + field_bytes(2, "10.0.0.1") + field_bytes(3, "0.9.0")
    if role:
        out += field_varint(4, role)
    out += field_bytes(5, "ab" * 32)
    for k, v in (labels or {}).items():
        out += field_bytes(6, field_bytes(1, k) + field_bytes(2, v))
    if interval_s is not None:
        out += field_bytes(7, duration(interval_s))
    if instance:
        out += field_bytes(8, instance)
    return out


def peer(remote, offset_us, mark=0):
    out = field_bytes(1, remote) + field_bytes(2, remote + ":123") + field_varint(4, 2)
    out += field_bytes(10, micros(offset_us))
    if mark:
        out += field_varint(12, mark)
    return out


def status(state, offset_us, error_us=500, peers=(), system_peer=""):
    out = field_varint(2, state) + field_bytes(3, micros(offset_us))
    out += field_varint(7, 2) + field_bytes(8, "GPS")
    out += field_bytes(12, micros(error_us))
    for p in peers:
        out += field_bytes(13, p)
    if system_peer:
        out += field_bytes(14, system_peer)
    return out


def resync_result(request_id, outcome=1):
    return field_bytes(1, request_id) + field_varint(2, outcome)


def selector(names=(), label="", all_=False):
    out = b"".join(field_bytes(1, n) for n in names)
    if label:
        out += field_bytes(2, label)
    if all_:
        out += field_varint(3, 1)
    return out


def msg(payload):
    return struct.pack("<H", len(payload)) + payload


def step(op, *operands):
    out = bytes([op])
    for o in operands:
        out += bytes([o]) if isinstance(o, int) else o
    return out


def advance(ms):
    return step(ADVANCE, struct.pack("<h", ms // 10))


SEEDS = {
    # Two nodes report, one is flagged; they go stale; one disconnects.
    "basic.bin": [
        step(CONNECT, 0, msg(hello("node-a", "i1", labels={"rack": "a1"}))),
        step(CONNECT, 1, msg(hello("node-b", "i2", labels={"rack": "b2"}))),
        step(REPORT, 0, msg(status(SYNCHRONISED, 200))),
        step(REPORT, 1, msg(status(SYNCING, -1500, 2000))),
        step(SNAPSHOT), step(SUMMARIZE),
        step(SELECT, msg(selector(all_=True))),
        step(SELECT, msg(selector(label="rack=a1"))),
        advance(5000), step(SNAPSHOT),
        step(TOUCH, 0, msg(resync_result("r1"))),
        step(DISCONNECT, 0), step(SNAPSHOT),
    ],
    # The same agent reconnects: the old stream is dead from then on.
    "reconnect.bin": [
        step(CONNECT, 0, msg(hello("node-a", "i1"))),
        step(REPORT, 0, msg(status(SYNCHRONISED, 10))),
        step(CONNECT, 1, msg(hello("node-a", "i1"))),
        step(REPORT_OLD, 0, msg(status(SYNCHRONISED, 20))),
        step(MESSAGE, 0, msg(field_bytes(2, status(SYNCHRONISED, 30)))),
        step(REPORT, 1, msg(status(SYNCHRONISED, 40))),
        step(DISCONNECT, 1), step(SNAPSHOT),
    ],
    # Two instances under one name: both listed and flagged; one leaves.
    "duplicates.bin": [
        step(CONNECT, 0, msg(hello("node-a", "i1"))),
        step(CONNECT, 1, msg(hello("node-a", "i2"))),
        step(REPORT, 0, msg(status(SYNCHRONISED, 100))),
        step(REPORT, 1, msg(status(LOCAL_CLOCK, -100))),
        step(SELECT, msg(selector(names=["node-a", "node-z"]))),
        step(DISCONNECT, 0), step(SNAPSHOT),
        step(CONNECT, 2, msg(hello("node-a", "i3"))), step(SUMMARIZE),
    ],
    # Inventory nodes, the wall clock stepped back, reports on old streams.
    "known_clock_back.bin": [
        step(KNOWN, 30, msg(hello("node-c", "", interval_s=None))),
        step(KNOWN, 0, msg(hello("node-d"))),
        step(CONNECT, 3, msg(hello("node-c", "i9", interval_s=0))),
        advance(-100000), step(SNAPSHOT),
        step(REPORT_OLD, 7, msg(status(HOLDOVER, 900))),
        advance(327000), step(SNAPSHOT),
        step(DISCONNECT, 3), step(KNOWN, 5, msg(hello("node-c"))), step(SNAPSHOT),
    ],
    # The reactor's path: Hello first, then statuses with peer tables, resync results.
    "messages.bin": [
        step(MESSAGE, 4, msg(field_bytes(2, status(SYNCHRONISED, 1)))),  # no Hello: dropped
        step(MESSAGE, 4, msg(field_bytes(1, hello("node-e", "x", labels={"zone": "z"})))),
        step(MESSAGE, 4, msg(field_bytes(2, status(
            SYNCHRONISED, 50,
            peers=[peer("ntp1", 40), peer("ntp2", 60, MARK_SYSTEM_PEER), peer("ntp3", -5)],
            system_peer="ntp2")))),
        step(MESSAGE, 4, msg(field_bytes(3, resync_result("r2")))),
        step(SUMMARIZE),
        step(MESSAGE, 4, msg(field_bytes(1, hello("node-e", "x")))),  # a second Hello: ignored
        step(SELECT, msg(selector(label="zone=z"))),
    ],
    # What must be refused or survived: no name, bad selectors, extreme durations.
    "edges.bin": [
        step(CONNECT, 0, msg(hello(""))),
        step(SELECT, msg(selector(label="=x"))), step(SELECT, msg(selector())),
        step(CONNECT, 1, msg(hello("node-f", "", interval_s=315576000000))),
        step(REPORT, 1, msg(status(SYNCHRONISED, 0) + field_bytes(3, duration(315576000000)))),
        step(CONNECT, 2, msg(hello("node-g", "", interval_s=-5))),
        step(REPORT, 2, msg(status(SYNCHRONISED, 0) + field_bytes(3, duration(-315576000000)))),
        step(SNAPSHOT), step(SUMMARIZE), advance(-327680),
        step(REPORT, 5, msg(status(SYNCHRONISED, 1))),  # slot never connected
        step(DISCONNECT, 5),
        step(CONNECT, 3, b"\xff\xff" + b"\x0a"),  # length cut to what is left; does not parse
    ],
    # Once a bug: one node reports offset = {seconds: INT64_MIN, nanos: -1} (not a valid
    # google.protobuf.Duration); FromProto saturated it to -InfiniteDuration and the fleet's
    # skew became (-inf) - (-inf) = -10 000 years. The registry now drops the status
    # (controller/validate.h).
    # Once a bug: an out-of-bounds status on a stream that a reconnect had replaced was
    # answered "dropped" (InvalidArgument) instead of "not live" (NotFound), so the reactor
    # would have kept the dead stream open.
    "dead_stream_invalid_status.bin": [
        step(CONNECT, 0, msg(hello("a", "i1"))),
        step(CONNECT, 0, msg(hello("a", "i1"))),
        step(REPORT_OLD, 0, msg(field_varint(2, 500000))),
    ],
    "negative_skew.bin": [
        step(CONNECT, 0, msg(hello("a", "i1"))),
        step(REPORT, 0, msg(field_varint(2, SYNCHRONISED) +
                            field_bytes(3, duration(-(1 << 63), -1)))),
    ],
}

# Inputs that find a known bug, kept out of the corpus (they would fail the replay test) until
# it is fixed. Written to the directory given as the first argument, if any.
# Reproducers of bugs once found, kept as seeds so they stay fixed; and a place for new ones
# before their fix lands (written only to the directory given on the command line).
PENDING = {}


def write(directory, seeds):
    for name, steps in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(b"".join(steps))


def main():
    write(os.path.dirname(os.path.abspath(__file__)), SEEDS)
    if len(sys.argv) > 1:
        write(sys.argv[1], PENDING)


if __name__ == "__main__":
    main()
