#!/usr/bin/python3
# Send an ordinary NTPv4 mode-3 client request (optionally MAC'd) and record request+response.
import socket, sys, struct, time, argparse
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ntputil import *
ap = argparse.ArgumentParser()
ap.add_argument('--addr', default='127.0.0.1'); ap.add_argument('--port', type=int, default=12300)
ap.add_argument('--prefix', required=True); ap.add_argument('--key', type=int, default=0)
ap.add_argument('--count', type=int, default=1); ap.add_argument('--interval', type=float, default=0)
ap.add_argument('--version', type=int, default=4); ap.add_argument('--bind', default='')
a = ap.parse_args()
fam = socket.AF_INET6 if ':' in a.addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(3)
if a.bind: s.bind((a.bind, 0))
for i in range(1, a.count + 1):
    req = header(0, a.version, 3, 0, 6, -20, 0, 0, b'\0\0\0\0', 0, 0, 0, now_ntp())
    if a.key:
        req += mac(a.key, req)
    s.sendto(req, (a.addr, a.port))
    open('%s_req_%d.bin' % (a.prefix, i), 'wb').write(req)
    try:
        resp, peer = s.recvfrom(4096)
        open('%s_resp_%d.bin' % (a.prefix, i), 'wb').write(resp)
        st = resp[1]; li = resp[0] >> 6
        extra = ''
        if len(resp) > 48:
            kid = struct.unpack('!I', resp[48:52])[0]
            ok = kid in KEYS and mac(kid, resp[:48]) == resp[48:]
            extra = ' keyid=%d mac_ok=%s' % (kid, ok)
        print('%d: resp %d bytes li=%d stratum=%d refid=%s%s %s' % (i, len(resp), li, st, resp[12:16].hex(), extra, resp.hex()), flush=True)
    except socket.timeout:
        print('%d: timeout' % i, flush=True)
    if a.interval:
        time.sleep(a.interval)
