#!/usr/bin/env python3
"""Packet tools for the fault tests (tests/faults/*_test.sh), standard library only.

  ntp_tool.py query HOST PORT
      One NTP client request (mode 3, version 4); prints the reply as JSON: offset_s
      (server minus this machine's clock, seconds), delay_s, stratum, leap, mode. Exit 1 when
      no valid reply comes within 2 s (3 tries).
  ntp_tool.py flood HOST PORT COUNT SECONDS SEED
      Malformed and hostile datagrams at an NTP port, at most COUNT of them or for SECONDS,
      whichever ends first, from one socket; prints JSON with how many of each kind were sent.
      Deterministic content (random.Random(SEED)). Kinds: random bytes (1..47 octets: shorter
      than an NTP header), truncated headers, 48-octet packets with version 0 or 5..7,
      48-octet mode 0/1/2/4/5/6/7 packets, mode-3 packets with absurd fields (bad extension
      length), and 65507-octet oversized datagrams.
  ntp_tool.py tcpflood HOST PORT CONNECTIONS SLOW SECONDS SEED
      Garbage at a gRPC (HTTP/2) TCP port: CONNECTIONS short connections each sending random
      bytes, some after a valid HTTP/2 client preface, and SLOW connections that send nothing
      and are held open for SECONDS. Prints JSON counts.
  ntp_tool.py spoof --sniff-if lo --server HOST:PORT --client-ip IP --mode MODE
                    --count N --offset SECONDS --seconds LIMIT [--from HOST:PORT]
      Watches (AF_PACKET, root, inside a network namespace the test owns) for NTP client
      requests to --server, and answers each with a forged server reply claiming the time is
      --offset s away, sent with a raw IPv4 socket (forged source address and port):
        MODE wrong-origin: from the real server's address and port, origin timestamp wrong;
        MODE wrong-source: from --from (another address or port), origin timestamp right
                           (the request's transmit timestamp);
        MODE control: from the real server's address and port, origin timestamp right: a
                      forgery no client can tell from the real reply (the tests' proof that
                      a believed forgery would be seen).
      Stops after N forged replies or LIMIT seconds; prints JSON {"forged": n}.
"""

import json
import random
import select
import socket
import struct
import sys
import time

NTP_EPOCH = 2208988800  # 1900-01-01 to 1970-01-01, seconds


def to_ntp(t):
    sec = int(t) + NTP_EPOCH
    frac = int((t - int(t)) * (1 << 32)) & 0xFFFFFFFF
    return struct.pack("!II", sec & 0xFFFFFFFF, frac)


def from_ntp(b):
    sec, frac = struct.unpack("!II", b)
    return sec - NTP_EPOCH + frac / float(1 << 32)


def query(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    for _ in range(3):
        t1 = time.time()
        req = bytearray(48)
        req[0] = (0 << 6) | (4 << 3) | 3
        req[40:48] = to_ntp(t1)
        s.sendto(bytes(req), (host, int(port)))
        try:
            while True:
                data, _ = s.recvfrom(2048)
                t4 = time.time()
                if len(data) >= 48 and data[24:32] == bytes(req[40:48]):
                    break
        except socket.timeout:
            continue
        t2 = from_ntp(data[32:40])
        t3 = from_ntp(data[40:48])
        print(json.dumps({
            "offset_s": ((t2 - t1) + (t3 - t4)) / 2,
            "delay_s": (t4 - t1) - (t3 - t2),
            "stratum": data[1],
            "leap": data[0] >> 6,
            "mode": data[0] & 7,
        }))
        return 0
    print("no reply from %s:%s" % (host, port), file=sys.stderr)
    return 1


def flood(host, port, count, seconds, seed):
    rng = random.Random(seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    dest = (host, int(port))
    sent = {}
    big = rng.randbytes(65507)
    end = time.monotonic() + float(seconds)
    n = 0

    def header(li_vn_mode):
        p = bytearray(rng.randbytes(48))
        p[0] = li_vn_mode
        return p

    kinds = ["random", "truncated", "bad_version", "bad_mode", "absurd", "oversized"]
    while n < int(count) and time.monotonic() < end:
        kind = kinds[n % len(kinds)]
        if kind == "random":
            p = rng.randbytes(rng.randint(1, 47))
        elif kind == "truncated":
            p = bytes(header((4 << 3) | 3)[: rng.randint(1, 47)])
        elif kind == "bad_version":
            p = bytes(header((rng.choice([0, 5, 6, 7]) << 3) | 3))
        elif kind == "bad_mode":
            p = bytes(header((4 << 3) | rng.choice([0, 1, 2, 4, 5, 6, 7])))
        elif kind == "absurd":
            # A client request followed by an extension field whose length runs past the end.
            p = header((4 << 3) | 3) + struct.pack("!HH", 0x0104, 0xFFF0) + b"\0" * 12
            p = bytes(p)
        else:
            p = big
        try:
            s.sendto(p, dest)
        except OSError:
            # ENOBUFS/EAGAIN under load: count only what left.
            time.sleep(0.001)
            continue
        sent[kind] = sent.get(kind, 0) + 1
        n += 1
        if n % 2000 == 0:
            time.sleep(0.005)  # let the receiver keep up: counted drops, not kernel drops
    sent["total"] = n
    print(json.dumps(sent))
    return 0


def tcpflood(host, port, connections, slow, seconds, seed):
    rng = random.Random(seed)
    dest = (host, int(port))
    counts = {"garbage": 0, "preface_then_garbage": 0, "slow": 0, "refused": 0}
    held = []
    for _ in range(int(slow)):
        c = socket.create_connection(dest, timeout=5)
        held.append(c)
        counts["slow"] += 1
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    for i in range(int(connections)):
        try:
            c = socket.create_connection(dest, timeout=5)
        except OSError:
            counts["refused"] += 1
            continue
        junk = rng.randbytes(rng.randint(1, 4096))
        try:
            if i % 4 == 0:
                c.sendall(preface + junk)
                counts["preface_then_garbage"] += 1
            else:
                c.sendall(junk)
                counts["garbage"] += 1
        except OSError:
            pass
        c.close()
    time.sleep(float(seconds))
    for c in held:
        c.close()
    print(json.dumps(counts))
    return 0


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4_udp(src, sport, dst, dport, payload):
    udp_len = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, udp_len, csum) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + udp


def spoof(args):
    opts = {}
    i = 0
    while i < len(args):
        opts[args[i].lstrip("-")] = args[i + 1]
        i += 2
    server_ip, server_port = opts["server"].rsplit(":", 1)
    server_port = int(server_port)
    mode = opts["mode"]
    if mode == "wrong-source":
        from_ip, from_port = opts["from"].rsplit(":", 1)
        from_port = int(from_port)
    else:
        from_ip, from_port = server_ip, server_port
    count = int(opts["count"])
    claimed = float(opts["offset"])
    end = time.monotonic() + float(opts["seconds"])
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sniff.bind((opts.get("sniff-if", "lo"), 0))
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    # The caller waits for this line before it makes the client send (no sleep for luck).
    print("sniffing on %s" % opts.get("sniff-if", "lo"), file=sys.stderr, flush=True)
    forged = 0
    seen = 0
    while forged < count and time.monotonic() < end:
        r, _, _ = select.select([sniff], [], [], 0.2)
        if not r:
            continue
        frame, addr = sniff.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING:
            continue  # on lo every packet is seen twice; take the incoming copy
        ip = frame[14:]  # loopback frames carry a (zero) Ethernet header
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        src = socket.inet_ntoa(ip[12:16])
        dst = socket.inet_ntoa(ip[16:20])
        sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
        ntp = ip[ihl + 8:]
        if dst != server_ip or dport != server_port or len(ntp) < 48 or ntp[0] & 7 != 3:
            continue
        if src != opts["client-ip"]:
            continue
        seen += 1
        now = time.time() + claimed
        reply = bytearray(48)
        reply[0] = (0 << 6) | (4 << 3) | 4
        reply[1] = 1  # stratum 1: as attractive as a reply can be
        reply[2] = ntp[2]
        reply[3] = 0xEC  # precision 2^-20
        reply[12:16] = b"GPS\0"
        reply[16:24] = to_ntp(now - 1)
        if mode == "wrong-origin":  # (control and wrong-source: the right origin)
            wrong = bytearray(ntp[40:48])
            wrong[7] ^= 0x5A  # the request's transmit timestamp, a few hundred ps off
            reply[24:32] = bytes(wrong)
        else:
            reply[24:32] = ntp[40:48]
        reply[32:40] = to_ntp(now)
        reply[40:48] = to_ntp(now)
        raw.sendto(ipv4_udp(from_ip, from_port, src, sport, bytes(reply)), (src, 0))
        forged += 1
    print(json.dumps({"forged": forged, "requests_seen": seen}))
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, rest = argv[1], argv[2:]
    if cmd == "query":
        return query(*rest)
    if cmd == "flood":
        return flood(*rest)
    if cmd == "tcpflood":
        return tcpflood(*rest)
    if cmd == "spoof":
        return spoof(rest)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
