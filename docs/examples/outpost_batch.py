#!/usr/bin/python3
"""Reference decoder for outpost uplink batches, and a small HTTP receiver.

Written from docs/internals/uplink.md (the batch), codec.md (the frames)
and sec.md (the seal), checked against the C code. Needs Python 3.11 and
Debian's python3-zstandard and python3-cryptography; nothing else.

    from outpost_batch import decode_batch, load_seal_key
    batch = decode_batch(body, keys=[load_seal_key("uplink.seal")])
    for sensor, ts, value, pos in batch.readings: ...

    /usr/bin/python3 outpost_batch.py serve --port 9000 [--seal-key FILE]... [--out FILE]

`serve` takes POST bodies (any path; outpost's is /v1/uplink), writes each
new reading as a JSON line {"node", "uplink", "batch", "sensor", "ts",
"value", "pos"} to stdout or appends it to --out (fsynced before the
answer), and answers like outpost's receiver: 200 {"accepted", "duplicates",
"batch"}, 400 for a malformed batch or seal, 403 for an unknown key (or an
unsealed batch when it has keys), with {"error": {"code", "message"}}.

Porting notes: every integer on the wire is unsigned; where the C code does
arithmetic on it, it wraps modulo 2^64, which this file spells `& M64`
(in Go, just use uint64 and convert to int64 at the end). Every length is
checked against the bytes that are left before it is used, and any
inconsistency rejects the whole batch: a receiver stores all of it or none.
"""
import argparse, base64, hashlib, json, math, os, struct, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

M64, M32 = (1 << 64) - 1, (1 << 32) - 1
FLT_MAX = 3.4028234663852886e38
PAYLOAD_MAX = 256 << 20          # a batch payload inflates to at most 256 MiB
NAME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/-")


class BatchError(ValueError):
    """A refused batch; .code is outpost's error code, .status the HTTP status."""
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.status = 403 if code in ("unknown_key", "unsealed_batch") else 400


def bad(message, code="invalid_batch"):
    return BatchError(code, message)


class Reader:
    """A cursor over untrusted bytes: every read checks what is left."""
    def __init__(self, data):
        self.data, self.pos = memoryview(data), 0

    def left(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n > self.left():
            raise bad("truncated")
        self.pos += n
        return bytes(self.data[self.pos - n:self.pos])

    def u8(self):
        return self.take(1)[0]

    def u64(self):                       # little-endian
        return int.from_bytes(self.take(8), "little")

    def varint(self):
        """Unsigned LEB128, at most 10 bytes; a 10th byte above 1 overflows."""
        x = 0
        for i in range(10):
            b = self.u8()
            if i == 9 and b > 1:
                raise bad("varint overflows 64 bits")
            x |= (b & 0x7F) << (7 * i)
            if b < 0x80:
                return x
        raise bad("varint longer than 10 bytes")


def signed(u):                           # uint64 -> int64 (two's complement)
    return u - (1 << 64) if u >> 63 else u


def unzigzag(u):                         # (u >> 1) ^ -(u & 1), as an int64
    return (u >> 1) ^ -(u & 1)


def doubles(bits):                       # uint64 bit patterns -> Python floats
    return list(struct.unpack(f"<{len(bits)}d", struct.pack(f"<{len(bits)}Q", *bits)))


# ---- XXH32 (the codec frame's checksum; github.com/Cyan4973/xxHash) -------
P1, P2, P3, P4, P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393


def rotl32(x, r):
    return ((x << r) | (x >> (32 - r))) & M32


def xxh32(data, seed=0):
    n, p = len(data), 0
    if n >= 16:                          # four lanes over 16-byte stripes
        v = [(seed + P1 + P2) & M32, (seed + P2) & M32, seed, (seed - P1) & M32]
        while p + 16 <= n:
            for i, w in enumerate(struct.unpack_from("<4I", data, p)):
                v[i] = rotl32((v[i] + w * P2) & M32, 13) * P1 & M32
            p += 16
        h = rotl32(v[0], 1) + rotl32(v[1], 7) + rotl32(v[2], 12) + rotl32(v[3], 18)
    else:
        h = seed + P5
    h = (h + n) & M32
    while p + 4 <= n:
        h = rotl32((h + struct.unpack_from("<I", data, p)[0] * P3) & M32, 17) * P4 & M32
        p += 4
    while p < n:
        h = rotl32((h + data[p] * P5) & M32, 11) * P1 & M32
        p += 1
    h = (h ^ (h >> 15)) * P2 & M32
    h = (h ^ (h >> 13)) * P3 & M32
    return h ^ (h >> 16)


def zstd_exact(data, size):
    """One or more concatenated zstd frames that must inflate to exactly `size`
    bytes. Input goes in 1 KiB slices so a hostile frame cannot inflate far
    past `size` before we notice (in Go: a decoder with a size limit)."""
    out, rest = bytearray(), bytes(data)
    try:
        while rest:                      # one decompressobj per frame
            z, view, i = zstandard.ZstdDecompressor().decompressobj(), memoryview(rest), 0
            while not z.eof and i < len(view):
                out += z.decompress(view[i:i + 1024])
                i += 1024
                if len(out) > size:
                    raise bad("zstd data inflates past its declared size")
            if not z.eof:
                raise bad("truncated zstd frame")
            rest = z.unused_data + bytes(view[i:])
    except zstandard.ZstdError as e:
        raise bad(f"zstd: {e}") from None
    if len(out) != size:
        raise bad("zstd data does not inflate to its declared size")
    return bytes(out)


# ---- codec frames (docs/internals/codec.md) --------------------------------

def unpack_bits(data, count, width):
    """count values of `width` bits, LSB-first."""
    if width == 0:
        return [0] * count
    mask, out = (1 << width) - 1, []
    for i in range(count):
        bit = i * width
        chunk = int.from_bytes(data[bit >> 3:(bit + width + 7) >> 3], "little")
        out.append((chunk >> (bit & 7)) & mask)
    return out


def exception_positions(r, count, limit):
    """count positions: the first is its gap, each next one previous + 1 + gap
    (so they strictly increase); each must be < limit."""
    out, p = [], -1
    for _ in range(count):
        p += 1 + r.varint()
        if p >= limit:
            raise bad("exception position out of range")
        out.append(p)
    return out


def read_ints(r, n):
    """An integer chunk of n values, returned as uint64s."""
    kind = r.u8()
    xf, pack = kind & 3, (kind >> 2) & 3          # transform T, packing P
    if kind >> 4 or xf == 3 or pack > 1:
        raise bad("bad integer chunk kind")
    heads = [unzigzag(r.varint()) & M64 for _ in range(min(xf, n))]
    c = n - len(heads)                            # residual count
    res = []
    if c:
        base, g, w = unzigzag(r.varint()), r.varint(), r.u8()
        if g == 0 or w > 64:
            raise bad("bad divisor or width")
        if pack == 1:                             # byte planes of zigzag offsets
            planes = r.take(((w + 7) // 8) * c)
            u = [int.from_bytes(planes[i::c], "little") for i in range(c)]
            res = [(base + unzigzag(x) * g) & M64 for x in u]
        else:                                     # bit-packed, patched exceptions
            nexc = r.varint()
            if nexc > c or (nexc and w == 64):
                raise bad("bad exception count")
            u = unpack_bits(r.take((c * w + 7) // 8), c, w)
            p = -1
            for _ in range(nexc):                 # (gap, high bits) pairs
                p += 1 + r.varint()
                if p >= c:
                    raise bad("exception position out of range")
                u[p] = (u[p] | (r.varint() << w)) & M64
            res = [(base + x * g) & M64 for x in u]
    # Undo the transform (all modulo 2^64).
    if xf == 0:                                   # none: the residuals are the values
        return res
    x, d = heads[:1], 0
    if xf == 2 and n > 1:                         # delta-of-delta: heads x[0], x[1] - x[0]
        d = heads[1]
        x.append((x[0] + d) & M64)
    for v in res:
        d = (d + v) & M64 if xf == 2 else v       # delta: the residual is the step
        x.append((x[-1] + d) & M64)
    return x


P10 = [float(10 ** e) for e in range(23)]         # exact doubles up to 1e22


def read_values(r, n):
    """A value chunk of n doubles."""
    enc, param = r.u8(), r.u8()
    if enc > 3 or param > (22 if enc < 2 else 63):
        raise bad("bad value encoding or parameter")
    nexc = r.varint()
    if nexc > n:
        raise bad("too many exceptions")
    epos = exception_positions(r, nexc, n)
    ebits = [r.u64() for _ in range(nexc)]
    k = read_ints(r, n)
    if enc == 0:      # decimal: one correctly rounded division k / 10^e
        v = [float(signed(x)) / P10[param] for x in k]
    elif enc == 1:    # decimal32: the same, rounded to float32 and widened
        v = []
        for x in k:
            t = float(signed(x)) / P10[param]
            if abs(t) > FLT_MAX:
                raise bad("decimal32 value outside float32 range")
            v.append(struct.unpack("<f", struct.pack("<f", t))[0])
    elif enc == 2:    # xor: each pattern XOR the previous one
        bits, prev = [], 0
        for x in k:
            prev ^= (x << param) & M64
            bits.append(prev)
        v = doubles(bits)
    else:             # bits: the pattern itself
        v = doubles([(x << param) & M64 for x in k])
    for p, b in zip(epos, doubles(ebits)):        # exceptions: raw float64 bits
        v[p] = b
    return v


def decode_frame(frame):
    """A codec frame -> (timestamps, values), bit-exact."""
    if len(frame) < 24 or frame[:4] != b"OPTS" or frame[4] != 1:
        raise bad("not a codec frame (OPTS v1)")
    flags = frame[5]
    b, n, body_len, stored = struct.unpack_from("<HIII", frame, 6)
    if flags & ~3 or flags & 3 > 1:               # stage 0 none, 1 zstd; 2, 3 reserved
        raise bad("bad frame flags")
    if not 1 <= b <= 4096 or n > 1 << 20 or body_len > 16 * n + -(-n // b) * 99:
        raise bad("frame header out of limits")
    if (flags == 0 and stored != body_len) or len(frame) != 24 + stored:
        raise bad("frame length mismatch")
    if xxh32(frame[:20 + stored]) != struct.unpack_from("<I", frame, 20 + stored)[0]:
        raise bad("frame checksum mismatch")
    if n == 0:
        if body_len:
            raise bad("empty frame with a body")
        return [], []
    body = frame[20:20 + stored]
    if flags == 1:
        body = zstd_exact(body, body_len)
    r = Reader(body)
    blocks = [min(b, n - off) for off in range(0, n, b)]
    ts = [signed(t) for k in blocks for t in read_ints(r, k)]   # every timestamp chunk,
    vals = [v for k in blocks for v in read_values(r, k)]      # then every value chunk
    if r.left():
        raise bad("trailing bytes in frame body")
    return ts, vals


# ---- sealing (docs/internals/sec.md) ---------------------------------------

class SealKey(NamedTuple):
    kid: bytes       # 8 bytes
    key: bytes       # 32 bytes


def seal_kid(key):
    return hashlib.sha256(b"outpost-seal-kid-v1\0" + key).digest()[:8]


def load_seal_key(path):
    """Reads a key file from `outpost key gen --seal`: three lines, the magic,
    "kid <16 hex>", "key <44 base64>", in their one canonical spelling."""
    with open(path, "rb") as f:
        text = f.read(4097)
    lines = (text[:-1] if text.endswith(b"\n") else text).split(b"\n")
    if len(text) > 4096 or len(lines) != 3 or lines[0] != b"outpost-seal-key v1":
        raise ValueError(f"{path}: not an outpost sealing key file")
    kid_hex, key_b64 = lines[1].removeprefix(b"kid "), lines[2].removeprefix(b"key ")
    try:
        kid, key = bytes.fromhex(kid_hex.decode()), base64.b64decode(key_b64, validate=True)
    except ValueError:
        raise ValueError(f"{path}: malformed kid or key line") from None
    if (lines[1][:4] != b"kid " or lines[2][:4] != b"key " or len(kid) != 8 or len(key) != 32
            or kid.hex().encode() != kid_hex or base64.b64encode(key) != key_b64):
        raise ValueError(f"{path}: malformed kid or key line")
    if seal_kid(key) != kid:                      # the kid is recomputed, never trusted
        raise ValueError(f"{path}: the kid is not this key's (damaged or edited)")
    return SealKey(kid, key)


def open_sealed(msg, keys, bound, seq):
    """Opens an "OPS1" sealed message for (bound, seq); returns the plaintext.
    For a batch, bound is "<node>/<uplink>" from its clear header."""
    if len(msg) < 41 or msg[:4] != b"OPS1" or msg[4] != 1:
        raise bad("not a sealed message (OPS1, ChaCha20-Poly1305)", "invalid_seal")
    key = {k.kid: k.key for k in keys}.get(bytes(msg[5:13]))
    if key is None:
        raise bad("the batch is sealed with a key we do not have", "unknown_key")
    # AD = the 25-byte seal header || seq as 8 bytes BIG-endian || the bound id
    ad = bytes(msg[:25]) + seq.to_bytes(8, "big") + bound.encode()
    try:
        return ChaCha20Poly1305(key).decrypt(bytes(msg[13:25]), bytes(msg[25:]), ad)
    except InvalidTag:
        raise bad("the sealed batch does not open (tampered, or sealed for another "
                  "node, uplink or sequence)", "invalid_seal") from None


# ---- the batch (docs/internals/uplink.md) ----------------------------------

class Batch(NamedTuple):
    node: str
    uplink: str
    seq: int
    first_pos: int
    last_pos: int
    readings: list   # [(sensor, ts, value, pos)], grouped per sensor, by position
    sealed: bool = False
    floor: int = None    # ranged (sent ahead of the cursor): the sender's cursor
    sparse: bool = False  # ranged: settles only its readings' positions


def name(r, lo, hi, what):
    raw = r.take(r.u8())
    if not lo <= len(raw) <= hi or not set(raw) <= NAME_CHARS:
        raise bad(f"bad {what} name")
    return raw.decode()


def decode_batch(body, keys=(), max_points=1_000_000):
    """Decodes one HTTP body. With keys, only sealed batches are taken (as
    outpost's receiver does: otherwise anyone could bypass the seal). Note
    that the seal binds node, uplink and seq but not the magic or the flags
    byte of the clear header (changing those only makes decoding fail)."""
    r = Reader(body)
    if r.take(4) != b"OPB1":
        raise bad("not an outpost batch (magic OPB1 expected)")
    flags = r.u8()
    node = name(r, 1, 63, "node")
    if "/" in node:
        raise bad("bad node name")
    uplink, seq = name(r, 1, 64, "uplink"), r.u64()
    if flags & ~7:
        raise bad("unknown batch flags")
    payload = r.take(r.left())
    if flags & 1:                                 # sealed: open first ...
        if not keys:
            raise bad("the batch is sealed and we have no key", "unknown_key")
        payload = open_sealed(payload, keys, f"{node}/{uplink}", seq)
    elif keys:
        raise bad("this receiver takes sealed batches only", "unsealed_batch")
    if flags & 2:                                 # ... then inflate
        try:
            size = zstandard.frame_content_size(payload)
        except zstandard.ZstdError:
            size = -1
        if size < 0 or size > PAYLOAD_MAX:        # -1: unknown or not a frame
            raise bad("bad zstd frame, or a payload over 256 MiB")
        payload = zstd_exact(payload, size)
    r = Reader(payload)
    first_pos, last_pos, ngroups = signed(r.u64()), signed(r.u64()), r.varint()
    readings, total = [], 0
    for _ in range(ngroups):
        nl = r.varint()
        sensor = r.take(nl)
        # The receiver stores "<node>/<sensor>" in at most 192 bytes.
        if not sensor or nl + len(node) + 1 > 192 or not set(sensor) <= NAME_CHARS:
            raise bad("bad sensor name")
        n = r.varint()
        if n == 0 or n > max_points - total:
            raise bad("empty group, or more readings than allowed")
        total += n
        pos = [r.varint()]
        for _ in range(n - 1):                    # deltas >= 0 (unsigned)
            pos.append((pos[-1] + r.varint()) & M64)
        ts, vals = decode_frame(r.take(r.varint()))
        if len(ts) != n:
            raise bad("codec frame holds another number of points than the group")
        readings += [(sensor.decode(), t, v, signed(p)) for t, v, p in zip(ts, vals, pos)]
    floor, sparse = None, False
    if flags & 4:                                 # ranged: a trailer (priorities)
        floor, covers = signed(r.u64()), r.u8()
        if covers > 1 or floor >= first_pos:
            raise bad("bad trailer (floor below first, covers 0 or 1)")
        sparse = covers == 1
    if r.left():
        raise bad("trailing bytes after the last sensor group")
    return Batch(node, uplink, seq, first_pos, last_pos, readings, bool(flags & 1), floor, sparse)


class Settled:
    """The positions stored for one (node, uplink): everything up to floor,
    plus ranges above it (batches sent ahead of the sender's cursor)."""

    def __init__(self):
        self.floor, self.ranges = -1 << 63, []

    def has(self, pos):
        return pos <= self.floor or any(lo <= pos <= hi for lo, hi in self.ranges)

    def settle(self, b):
        top = max([b.last_pos] + [x[3] for x in b.readings])
        if b.floor is None:                       # plain: everything up to its top
            self.floor = max(self.floor, top)
        else:
            self.floor = max(self.floor, b.floor)
            self.ranges += ([(p, p) for _, _, _, p in b.readings] if b.sparse
                            else [(b.first_pos, top)])
        merged = []
        for lo, hi in sorted(self.ranges):
            if lo <= self.floor + 1:
                self.floor = max(self.floor, hi)
            elif merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self.ranges = merged


# ---- the receiver ----------------------------------------------------------

class Receiver:
    """Deduplicates by position like outpost: per (node, uplink) it keeps the
    positions stored (Settled: the last position of the in-order stream,
    plus ranges sent ahead of it with priorities), takes only readings not
    among them, then records what the batch settles (a plain batch: all up
    to its last_pos, which covers readings the sender filtered out). This
    one keeps it in memory only; a real receiver must store it in the same
    transaction as the readings, or a restart stores resent readings twice."""

    def __init__(self, keys, out=None, max_points=1_000_000):
        self.keys, self.out, self.max_points = keys, out, max_points
        self.last, self.lock = {}, threading.Lock()

    def receive(self, body):
        """-> (HTTP status, JSON answer)."""
        try:
            b = decode_batch(body, self.keys, self.max_points)
        except BatchError as e:
            print(f"refused: {e.status} {e.code}: {e}", file=sys.stderr, flush=True)
            return e.status, {"error": {"code": e.code, "message": str(e)}}
        with self.lock:
            done = self.last.setdefault((b.node, b.uplink), Settled())
            new = [x for x in b.readings if not done.has(x[3])]
            lines = "".join(json.dumps({"node": b.node, "uplink": b.uplink, "batch": b.seq,
                                        "sensor": s, "ts": t, "value": json_value(v), "pos": p},
                                       allow_nan=False) + "\n" for s, t, v, p in new)
            if self.out:                          # durable before we answer 200
                with open(self.out, "a") as f:
                    f.write(lines)
                    f.flush()
                    os.fsync(f.fileno())
            else:
                sys.stdout.write(lines)
                sys.stdout.flush()
            done.settle(b)
        dup = len(b.readings) - len(new)
        print(f"batch node={b.node} uplink={b.uplink} seq={b.seq} first={b.first_pos} "
              f"last={b.last_pos} sealed={int(b.sealed)} readings={len(b.readings)} "
              f"accepted={len(new)} duplicates={dup}"
              + (f" floor={b.floor} sparse={int(b.sparse)}" if b.floor is not None else ""),
              file=sys.stderr, flush=True)
        return 200, {"accepted": len(new), "duplicates": dup, "batch": b.seq}


def json_value(v):
    """JSON has no NaN or infinities: those become strings (outpost's ingest
    only takes finite values, but the codec carries any double)."""
    return v if math.isfinite(v) else ("NaN" if v != v else "Infinity" if v > 0 else "-Infinity")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"                 # keep-alive, and 100-continue for curl

    def do_POST(self):                            # any path; outpost uses /v1/uplink
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():                  # curl always sends one
            return self.refuse(411, "length_required", "Content-Length is required")
        if int(length) > self.server.max_body:
            return self.refuse(413, "body_too_large", "the batch is over --max-body")
        self.answer(*self.server.receiver.receive(self.rfile.read(int(length))))

    def refuse(self, status, code, message):
        self.close_connection = True              # the body was not read
        self.answer(status, {"error": {"code": code, "message": message}})

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):            # Receiver.receive logs each batch
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(description="Receive outpost uplink batches (format = batch).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="HTTP receiver: POST a batch, readings go out as JSON lines")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--seal-key", action="append", default=[], metavar="FILE",
                   help="repeatable; with any, only sealed batches are taken")
    s.add_argument("--out", help="append readings here (default: stdout)")
    s.add_argument("--max-body", type=int, default=64 << 20)
    s.add_argument("--max-points", type=int, default=1_000_000)
    a = ap.parse_args(argv)
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    keys = [load_seal_key(p) for p in a.seal_key]
    srv.receiver, srv.max_body = Receiver(keys, a.out, a.max_points), a.max_body
    print(f"listening on http://{a.host}:{srv.server_address[1]}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
