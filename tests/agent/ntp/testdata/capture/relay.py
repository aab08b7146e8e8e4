#!/usr/bin/python3
# UDP relay: listen on --lport, forward each client datagram to --dport (same addr),
# relay the answer back; record every datagram in both directions.
import socket, sys, time, argparse, select
ap = argparse.ArgumentParser()
ap.add_argument('--addr', default='127.0.0.1'); ap.add_argument('--lport', type=int, default=12301)
ap.add_argument('--dport', type=int, default=12300); ap.add_argument('--prefix', required=True)
ap.add_argument('--timeout', type=float, default=10)
a = ap.parse_args()
ls = socket.socket(); ls = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); ls.bind((a.addr, a.lport))
us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); us.connect((a.addr, a.dport))
end = time.time() + a.timeout; client = None; n = 0
while time.time() < end:
    r, _, _ = select.select([ls, us], [], [], 0.5)
    for s in r:
        if s is ls:
            data, client = ls.recvfrom(4096); n += 1
            open('%s_req_%d.bin' % (a.prefix, n), 'wb').write(data)
            print('C->S %d %s' % (len(data), data.hex()), flush=True); us.send(data)
        else:
            data = us.recv(4096)
            open('%s_resp_%d.bin' % (a.prefix, n), 'wb').write(data)
            print('S->C %d %s' % (len(data), data.hex()), flush=True)
            if client: ls.sendto(data, client)
