import struct, time, hashlib
NTP_DELTA = 2208988800
KEYS = {1: ('MD5', b'ntpfleet-test-md5'),
        2: ('SHA1', bytes.fromhex('6e747066' '6c656574' '2d746573' '742d7368' '61312121'))}
def now_ntp():
    t = time.time() + NTP_DELTA
    sec = int(t); frac = int((t - sec) * 2**32) & 0xffffffff
    return (sec << 32) | frac
def mac(keyid, data):
    typ, key = KEYS[keyid]
    h = hashlib.new(typ.lower()); h.update(key); h.update(data)
    return struct.pack('!I', keyid) + h.digest()
def header(li, vn, mode, stratum, poll, prec, rdelay, rdisp, refid, ref, org, rec, xmt):
    return struct.pack('!BBbbII4sQQQQ', (li << 6) | (vn << 3) | mode, stratum, poll, prec,
                       rdelay, rdisp, refid, ref, org, rec, xmt)
def save_hex(path, data, comments):
    with open(path, 'w') as f:
        for c in comments:
            f.write('# ' + c + '\n' if c else '#\n')
        h = data.hex()
        for i in range(0, len(h), 32):
            f.write(h[i:i+32] + '\n')
