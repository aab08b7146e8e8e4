#!/usr/bin/python3
# Fake NTP server: record each request datagram to <prefix>_<n>.bin, reply with a
# plausible mode-4 (or for mode 6, nothing). If request carries a MAC with a known
# key id, sign reply with same key. Stops after --count requests or --timeout seconds.
import socket, sys, struct, time, argparse
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ntputil import *
ap = argparse.ArgumentParser()
ap.add_argument('--addr', default='127.0.0.1'); ap.add_argument('--port', type=int, default=12301)
ap.add_argument('--prefix', required=True); ap.add_argument('--count', type=int, default=1)
ap.add_argument('--timeout', type=float, default=20)
a = ap.parse_args()
fam = socket.AF_INET6 if ':' in a.addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((a.addr, a.port)); s.settimeout(1)
print('listening', a.addr, a.port, flush=True)
n = 0; end = time.time() + a.timeout
while n < a.count and time.time() < end:
    try:
        data, peer = s.recvfrom(4096)
    except socket.timeout:
        continue
    rec = now_ntp()
    n += 1
    open('%s_%d.bin' % (a.prefix, n), 'wb').write(data)
    print('got %d bytes from %s: %s' % (len(data), peer, data.hex()), flush=True)
    mode = data[0] & 7; vn = (data[0] >> 3) & 7
    if mode not in (1, 3) or len(data) < 48:
        continue
    xmt_c = struct.unpack('!Q', data[40:48])[0]
    pkt = header(0, vn, 4 if mode == 3 else 2, 2, data[2] if data[2] else 6, -20, 0x00000100, 0x00000200,
                 bytes([127, 0, 0, 2]), rec - (16 << 32), xmt_c, rec, now_ntp())
    if len(data) in (68, 72):
        kid = struct.unpack('!I', data[48:52])[0]
        if kid in KEYS:
            pkt += mac(kid, pkt)
    s.sendto(pkt, peer)
print('done, %d requests' % n, flush=True)
