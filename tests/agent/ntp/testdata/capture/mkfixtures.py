#!/usr/bin/python3
"""Write fixture .hex files, expected.txt and README.md tables from captured .bin files."""
import struct, hashlib, datetime, os, socket
from decimal import Decimal

OUT = '/work/main/tests/agent/ntp/testdata'
SRC = '/tmp/cap/out'
CHRONY_V = '4.3-2+deb12u3'
NTPSEC_V = '1.2.2+dfsg1-1+deb12u1'
KEYS = {1: ('MD5', b'ntpfleet-test-md5'),
        2: ('SHA1', bytes.fromhex('6e7470666c6565742d746573742d736861312121'))}
SAFE = 'setpriv --inh-caps=-sys_time --bounding-set=-sys_time'
CHRONYD = '/tmp/peers/root/usr/sbin/chronyd'
NTPD = '/tmp/peers/root/usr/sbin/ntpd'
PY = '/usr/bin/python3'
PP = 'PYTHONPATH=/tmp/peers/root/usr/lib/python3/dist-packages '
CHRONY_SRV = f'{SAFE} {CHRONYD} -x -u root -d -f capture/chronyd-server.conf   (chronyd {CHRONY_V}; listens 127.0.0.1/::1 port 12300)'
NTPSEC_SRV = (f'ip netns exec cap1 {SAFE} {NTPD} -n -c capture/ntpsec-server.conf -l ntpd.log -p ntpd.pid'
              f'   (NTPsec ntpd {NTPSEC_V}; netns cap1, 127.0.0.1:123)')

F = []  # (name, srcfile, description lines, command lines)
def add(name, src, desc, cmds):
    F.append((name, src, desc, cmds))

add('chronyd_client_request', 'chrQ_plain_1.bin',
    ['NTPv4 client request sent by chronyd -Q (query-only one-shot client), no authentication.',
     'chrony zeroes everything except LI/VN/mode, poll and precision, and puts a RANDOM',
     'value in the transmit timestamp (not the real time; it is only a nonce that the',
     'server echoes back as origin). Note precision = +32 (0x20), not a real precision.',
     'Captured by a fake UDP server (capture/fakesrv.py) on 127.0.0.1:12301.'],
    ['python3 capture/fakesrv.py --port 12301 --prefix out/chrQ_plain --count 4 --timeout 8',
     f"{SAFE} {CHRONYD} -Q -u root -t 5 'server 127.0.0.1 port 12301 iburst maxsamples 1'",
     f'chronyd version: {CHRONY_V} (Debian 12)'])
add('chronyd_server_request', 'chr_plain_req_1.bin',
    ['Plain NTPv4 mode-3 request built by capture/client.py (poll 6, precision -20,',
     'transmit = real current time) and sent to chronyd -x; the request that produced',
     'chronyd_server_response.'],
    [CHRONY_SRV, 'python3 capture/client.py --port 12300 --prefix out/chr_plain'])
add('chronyd_server_response', 'chr_plain_resp_1.bin',
    ['Response of chronyd -x (server only, never controls the clock) configured with',
     "'local stratum 10' to chronyd_server_request. refid 127.127.1.1 (chrony's",
     'local-reference refid), root delay/dispersion 0, origin == request transmit.'],
    [CHRONY_SRV, 'python3 capture/client.py --port 12300 --prefix out/chr_plain'])
CHRONY_B = [CHRONY_SRV, f'{SAFE} {CHRONYD} -x -u root -d -f capture/chronyd-synced.conf   (2nd chronyd, port 12302, syncs (-x: estimate only) from the first)',
            'sleep 12; python3 capture/client.py --port 12302 --prefix out/chrB_plain']
add('chronyd_synced_request', 'chrB_plain_req_1.bin',
    ['Plain NTPv4 mode-3 request (capture/client.py) sent to a second chronyd -x that uses the',
     'first (local stratum 10) as its NTP source; produced chronyd_synced_response.'], CHRONY_B)
add('chronyd_synced_response', 'chrB_plain_resp_1.bin',
    ['Response of a chronyd -x that is "synchronised" (estimate only, -x never touches the clock)',
     'to the local-stratum-10 chronyd over loopback: stratum 11, refid 127.0.0.1 (its source),',
     'real reference timestamp, root delay/dispersion NONZERO but tiny (raw 0x00000001 = 1/65536 s).'], CHRONY_B)
add('chronyd_md5_request', 'relay_md5_req_1.bin',
    ['MD5-authenticated NTPv4 request from chronyd -Q with key 1 (MD5, ntp.keys/chrony.keys).',
     'Random transmit timestamp as usual for chrony; 48-byte header + 4-byte key id + 16-byte',
     'MD5 digest = MD5(key || 48-byte header). Captured by a UDP relay (capture/relay.py)',
     '127.0.0.1:12301 -> chronyd -x on 127.0.0.1:12300; chronyd_md5_response is the real reply.'],
    [CHRONY_SRV, 'python3 capture/relay.py --lport 12301 --dport 12300 --prefix out/relay_md5 --timeout 7',
     f"{SAFE} {CHRONYD} -Q -u root -t 5 'keyfile chrony.keys' 'server 127.0.0.1 port 12301 iburst maxsamples 1 key 1'"])
add('chronyd_md5_response', 'relay_md5_resp_1.bin',
    ['Response of chronyd -x (local stratum 10, keyfile chrony.keys) to chronyd_md5_request,',
     'signed with key 1 (MD5). origin == chronyd_md5_request transmit.'],
    [CHRONY_SRV, 'python3 capture/relay.py --lport 12301 --dport 12300 --prefix out/relay_md5 --timeout 7',
     f"{SAFE} {CHRONYD} -Q -u root -t 5 'keyfile chrony.keys' 'server 127.0.0.1 port 12301 iburst maxsamples 1 key 1'"])
add('chronyd_sha1_request', 'relay_sha1_req_1.bin',
    ['SHA1-authenticated NTPv4 request from chronyd -Q with key 2 (SHA1): 48-byte header +',
     '4-byte key id + 20-byte digest = SHA1(key || header). Captured through capture/relay.py.'],
    [CHRONY_SRV, 'python3 capture/relay.py --lport 12301 --dport 12300 --prefix out/relay_sha1 --timeout 7',
     f"{SAFE} {CHRONYD} -Q -u root -t 5 'keyfile chrony.keys' 'server 127.0.0.1 port 12301 iburst maxsamples 1 key 2'"])
add('chronyd_sha1_response', 'relay_sha1_resp_1.bin',
    ['Response of chronyd -x (local stratum 10) to chronyd_sha1_request, signed with key 2 (SHA1).'],
    [CHRONY_SRV, 'python3 capture/relay.py --lport 12301 --dport 12300 --prefix out/relay_sha1 --timeout 7',
     f"{SAFE} {CHRONYD} -Q -u root -t 5 'keyfile chrony.keys' 'server 127.0.0.1 port 12301 iburst maxsamples 1 key 2'"])
for kind, key, pfx in (('server', 0, 'nts_plain'), ('md5', 1, 'nts_md5'), ('sha1', 2, 'nts_sha1')):
    auth = '' if not key else f' --key {key}'
    cmd = f'ip netns exec cap1 python3 capture/client.py --port 123 --prefix out/{pfx}{auth}'
    what = {0: 'Plain', 1: 'MD5 (key 1) authenticated', 2: 'SHA1 (key 2) authenticated'}[key]
    add(f'ntpsec_{kind}_request', f'{pfx}_req_1.bin',
        [f'{what} NTPv4 mode-3 request built by capture/client.py (poll 6, precision -20,',
         'transmit = real current time) and sent to NTPsec ntpd; produced ' + f'ntpsec_{kind}_response.'],
        [NTPSEC_SRV, cmd])
    add(f'ntpsec_{kind}_response', f'{pfx}_resp_1.bin',
        [f'Response of NTPsec ntpd (orphan mode: tos orphan 10 orphanwait 1, no upstream servers,',
         "'disable ntp' + 'disable kernel') to " + f'ntpsec_{kind}_request. It answered stratum 10 from',
         'the first query on (never saw stratum 16). refid 127.0.0.1, REFERENCE TIMESTAMP IS ZERO,',
         'root delay/dispersion 0.' + ('' if not key else f' Signed with key {key} ({KEYS[key][0]}).')],
        [NTPSEC_SRV, cmd])
for kind, key in (('client', 0), ('md5', 1), ('sha1', 2)):
    auth = '' if not key else f' -a {key} -k ntp.keys'
    name = 'ntpdig_client_request' if not key else f'ntpdig_{kind}_request'
    add(name, f'ntpdig_{"plain" if not key else kind}_1.bin',
        ['NTPv4 request sent by NTPsec ntpdig (SNTP client)' + ('' if not key else f' with key {key} ({KEYS[key][0]})') + '.',
         'LI = 3 (unsynchronized), poll 0, precision 0, everything zero except the transmit',
         'timestamp, which is the real current time.' + ('' if not key else ' MAC = key id + digest(key || header).'),
         'Captured by capture/fakesrv.py on 127.0.0.1:123 inside netns cap2 (ntpdig always uses port 123).'],
        ['ip netns add cap2; ip -n cap2 link set lo up',
         f'ip netns exec cap2 python3 capture/fakesrv.py --port 123 --prefix out/ntpdig_{"plain" if not key else kind} --count 1 --timeout 8',
         PP + f'ip netns exec cap2 {SAFE} {PY} /tmp/peers/root/usr/bin/ntpdig -t 2{auth} 127.0.0.1',
         f'ntpsec-ntpdig / python3-ntp version: {NTPSEC_V}'])
add('ntpq_mode6_request', 'ntpq_rv_1.bin',
    ['NTP mode-6 (control) READVAR request sent by NTPsec ntpq -c rv: 12-byte control header only',
     '(LI=3, VN=2, mode 6, opcode 2, sequence 1, association 0, no data). NOT an RFC 5905 packet:',
     'decode with the mode-6 (RFC 9327) header layout. First of ntpq\'s retries (the retry has sequence 2).'],
    ['ip netns exec cap2 python3 capture/fakesrv.py --port 123 --prefix out/ntpq_rv --count 3 --timeout 14',
     PP + f'ip netns exec cap2 timeout 12 {SAFE} {PY} /tmp/peers/root/usr/bin/ntpq -c rv 127.0.0.1',
     f'ntpsec (ntpq) version: {NTPSEC_V}'])

def ts_utc(v):
    sec = v >> 32; frac = v & 0xffffffff
    if v == 0:
        return '0 (unset)'
    t = sec - 2208988800 + frac / 2**32
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')

def short_secs(v):
    return str(Decimal(v >> 16) + Decimal(v & 0xffff) / Decimal(65536))

def decode(data):
    d = {'length': len(data)}
    b0 = data[0]
    d['leap'] = b0 >> 6; d['version'] = (b0 >> 3) & 7; d['mode'] = b0 & 7
    if d['mode'] == 6:
        rmeop, seq, status, assoc, off, cnt = struct.unpack('!BHHHHH', data[1:12])
        d.update(response=(rmeop >> 7) & 1, error=(rmeop >> 6) & 1, more=(rmeop >> 5) & 1,
                 opcode=rmeop & 0x1f, sequence=seq, status='0x%04x' % status, association_id=assoc,
                 offset=off, count=cnt, data_len=len(data) - 12)
        return d
    st, poll, prec, rd, rdisp, refid, ref, org, rec, xmt = struct.unpack('!BbbII4sQQQQ', data[1:48])
    d.update(stratum=st, poll=poll, precision=prec,
             root_delay_hex='0x%08x' % rd, root_delay_seconds=short_secs(rd),
             root_dispersion_hex='0x%08x' % rdisp, root_dispersion_seconds=short_secs(rdisp),
             refid_hex='0x' + refid.hex())
    if st <= 1:
        d['refid_text'] = refid.rstrip(b'\0').decode('ascii', 'replace')
    else:
        d['refid_text'] = socket.inet_ntoa(refid)
    d.update(reference='0x%016x' % ref, origin='0x%016x' % org, receive='0x%016x' % rec, transmit='0x%016x' % xmt)
    rest = data[48:]
    d['trailing_len'] = len(rest)
    d['ext_count'] = 0
    d['has_mac'] = 0
    if len(rest) in (20, 24):  # bare MAC: key id + 16 (MD5) / 20 (SHA1) byte digest
        kid = struct.unpack('!I', rest[:4])[0]
        d.update(has_mac=1, mac_key_id=kid, mac_digest_len=len(rest) - 4, mac_digest='0x' + rest[4:].hex())
        typ, key = KEYS[kid]
        h = hashlib.new(typ.lower()); h.update(key); h.update(data[:48])
        d['mac_algorithm'] = typ
        d['mac_valid'] = int(h.digest() == rest[4:])
        assert d['mac_valid'] == 1, 'MAC check failed'
    elif rest:
        raise SystemExit('unexpected trailing data; extension-field parsing needed')
    return d

def write_hex(name, data, desc, cmds):
    with open(os.path.join(OUT, name + '.hex'), 'w') as f:
        f.write(f'# {name}: {len(data)} bytes, raw UDP payload, captured live on loopback.\n')
        for l in desc:
            f.write('# ' + l + '\n')
        f.write('# Commands (CAP_SYS_TIME dropped via setpriv; chronyd only -x/-Q; ntpd with disable ntp/kernel):\n')
        for c in cmds:
            f.write('#   ' + c + '\n')
        f.write(f'# Versions: chrony {CHRONY_V}, ntpsec/ntpsec-ntpdig/python3-ntp {NTPSEC_V} (Debian 12 bookworm .debs, dpkg -x).\n')
        f.write('# See README.md for the decoded fields (expected.txt holds them machine-readably).\n')
        h = data.hex()
        for i in range(0, len(h), 32):
            f.write(h[i:i+32] + '\n')

def read_hex(path):
    return bytes.fromhex(''.join(l.strip() for l in open(path) if not l.startswith('#')))

NTP_ORDER = ['length', 'leap', 'version', 'mode', 'stratum', 'poll', 'precision', 'root_delay_hex',
             'root_delay_seconds', 'root_dispersion_hex', 'root_dispersion_seconds', 'refid_hex', 'refid_text',
             'reference', 'origin', 'receive', 'transmit', 'trailing_len', 'ext_count', 'has_mac',
             'mac_key_id', 'mac_algorithm', 'mac_digest_len', 'mac_digest', 'mac_valid']
M6_ORDER = ['length', 'leap', 'version', 'mode', 'response', 'error', 'more', 'opcode', 'sequence', 'status',
            'association_id', 'offset', 'count', 'data_len']

exp = ['# Golden decoded fields of the captured NTP packets in this directory.',
       '# Format: <fixture>.<field>=<value>; small integers in decimal (poll/precision signed),',
       '# raw 32-bit short-format and 64-bit timestamp fields as 0x-prefixed lowercase hex of the wire value.',
       '# *_seconds = exact decimal value of the 16.16 fixed-point field. refid_text: ASCII for stratum 0/1,',
       '# dotted IPv4 for stratum >= 2. mac_valid: digest verified with ntp.keys (key || 48-byte header).',
       '# Generated by a Python struct decoder (see README.md).']
tables = []
for name, src, desc, cmds in F:
    data = open(os.path.join(SRC, src), 'rb').read()
    write_hex(name, data, desc, cmds)
    assert read_hex(os.path.join(OUT, name + '.hex')) == data
    d = decode(data)
    order = M6_ORDER if d['mode'] == 6 else NTP_ORDER
    rows = []
    for k in order:
        if k in d:
            exp.append(f'{name}.{k}={d[k]}')
            note = ''
            if k in ('reference', 'origin', 'receive', 'transmit'):
                note = ts_utc(int(d[k], 16))
                if k == 'transmit' and name.startswith('chronyd') and name.endswith('request') and name != 'chronyd_server_request':
                    note += ' (random nonce, not a time)'
                if k == 'origin' and name in ('chronyd_md5_response', 'chronyd_sha1_response'):
                    note += ' (= chrony client\'s random transmit nonce)'
            if k == 'precision':
                note = '2^%d s' % d[k]
            if k == 'poll':
                note = '2^%d s' % d[k]
            if k == 'leap':
                note = {0: 'no warning', 1: '+1 s', 2: '-1 s', 3: 'unsynchronized / alarm'}[d[k]]
            if k == 'mode':
                note = {3: 'client', 4: 'server', 6: 'control'}.get(d[k], '')
            rows.append(f'| {k} | `{d[k]}` | {note} |' if d[k] != '' else f'| {k} | (empty string) | all-zero refid |')
    tables.append((name, desc, data, rows))
open(os.path.join(OUT, 'expected.txt'), 'w').write('\n'.join(exp) + '\n')
with open('/tmp/cap/tables.md', 'w') as f:
    for name, desc, data, rows in tables:
        f.write(f'### {name}.hex\n\n')
        f.write(' '.join(desc) + '\n\n')
        f.write('Bytes: `' + data.hex() + '`\n\n')
        f.write('| field | value | note |\n| --- | --- | --- |\n')
        f.write('\n'.join(rows) + '\n\n')
print(len(F), 'fixtures;', len(exp), 'expected lines')
