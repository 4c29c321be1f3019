"""The reference decoder docs/examples/outpost_batch.py against a real edge.

An edge daemon with an [uplink.cloud] ships what it is given to the
decoder's own HTTP receiver (`outpost_batch.py serve`, a subprocess on a
free loopback port); the decoder's JSON lines must hold exactly the
readings posted to the edge (sensor, ts, value bit for bit), at increasing
positions, in contiguous batches numbered 1, 2, ... Values cover the codec's
encodings (decimals, float32-widened, arbitrary doubles, integer-valued),
timestamps regular and irregular, several 1,024-point blocks per sensor.
The sealed case uses a key from `outpost key gen --seal` on both sides.
Bodies captured from a real edge then check that the decoder refuses every
truncation and every flipped byte it can detect, and that `serve` answers
400/403 and deduplicates as outpost's receiver does."""

import http.server
import importlib.util
import json
import math
import random
import re
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from outpost_proc import REPO, SANITIZER_RE, metric_value, scaled, wait_until

pytest.importorskip("zstandard", reason="needs python3-zstandard (scripts/deps.sh test)")
pytest.importorskip("cryptography", reason="needs python3-cryptography")

DECODER = REPO / "docs" / "examples" / "outpost_batch.py"
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
TS0 = 1_732_200_000_000
BATCH_RE = re.compile(r"^batch node=(\S+) uplink=(\S+) seq=(\d+) first=(-?\d+) last=(-?\d+) "
                      r"sealed=([01]) readings=(\d+) accepted=(\d+) duplicates=(\d+)"
                      r"(?: floor=(-?\d+) sparse=([01]))?$", re.M)


def load_decoder():
    spec = importlib.util.spec_from_file_location("outpost_batch", DECODER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ob = load_decoder()


def bits(v):
    return struct.pack("<d", v)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def keygen(bin, prefix):
    r = subprocess.run([str(bin), "key", "gen", "--seal", "--out", str(prefix)],
                       capture_output=True, text=True, timeout=scaled(30))
    assert r.returncode == 0 and not SANITIZER_RE.search(r.stderr), r.stderr
    m = re.search(r"^kid ([0-9a-f]{16})$", r.stdout, re.M)
    assert m, r.stdout
    path = Path(f"{prefix}.key")
    assert ob.load_seal_key(path).kid.hex() == m.group(1)
    return path


class Decoder:
    """`outpost_batch.py serve` on port 0 (the port is read from its log)."""

    def __init__(self, workdir, keys=(), port=0):
        self.out = workdir / "readings.jsonl"
        self.err_path = workdir / "decoder.stderr"
        cmd = [PYTHON, str(DECODER), "serve", "--port", str(port), "--out", str(self.out)]
        for k in keys:
            cmd += ["--seal-key", str(k)]
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, start_new_session=True)

        def listening():
            m = re.search(r"listening on (http://[0-9.]+:\d+)", self.stderr())
            assert m or self.proc.poll() is None, f"decoder exited:\n{self.stderr()}"
            return m and m.group(1)
        self.url = wait_until(listening, scaled(20), what="the decoder to listen")

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def readings(self):
        """The JSON lines written so far (a line still being written is left out)."""
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().split("\n")[:-1]]

    def batches(self):
        return [m.groups() for m in BATCH_RE.finditer(self.stderr())]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=scaled(10))


@pytest.fixture
def decoder_factory(tmp_path):
    started = []

    def start(name="decoder", keys=(), port=0):
        d = tmp_path / name
        d.mkdir()
        started.append(Decoder(d, keys, port))
        return started[-1]
    yield start
    for d in started:
        d.stop()


def series(n):
    """{sensor: [(ts, value)]}: one sensor per kind of value and timestamps."""
    rnd = random.Random(20241122)
    out = {}
    # Short decimals at a regular 1 s interval (decimal encoding, T=1 w=0),
    # with an odd value now and then (an exception in a decimal block).
    out["line1/temp"] = [(TS0 + i * 1000, 21 + 1 / 3 if i % 101 == 50 else
                          round(2137 + 300 * math.sin(i / 40)) / 100) for i in range(n)]
    # float32 readings widened to double, irregular timestamps (decimal32).
    ts, pts = TS0, []
    for i in range(n):
        ts += rnd.randint(1, 5000)
        pts.append((ts, f32(20.1 + 3.7 * math.sin(i / 25) + rnd.random() / 100)))
    out["line1/adc"] = pts
    # Arbitrary doubles: thirds, negatives, huge, tiny, integer-valued, -0,
    # some timestamps late (out of order) (xor / bits / exceptions).
    kinds = [lambda i: i / 3, lambda i: -math.pi * i, lambda i: 1e300 / (i + 1),
             lambda i: -2.5e-300 * i, lambda i: float(i * 1000003), lambda i: rnd.random(),
             lambda i: -0.0, lambda i: 2.0 ** 60 + 2048 * i, lambda i: 1 / 3]
    pts = []
    for i in range(n):
        late = rnd.random() < 0.05
        pts.append((TS0 + i * 250 - (rnd.randint(1, 10_000) if late else 0),
                    kinds[(i * 7 + i // 13) % len(kinds)](i)))
    out["calc/mix"] = pts
    # Integer-valued counters (decimal with e = 0), 100 ms apart with jitter.
    out["count/pulses"] = [(TS0 + i * 100 + rnd.randint(0, 3), float(31707196 + 7 * i + i % 5))
                           for i in range(n)]
    return out


def post_interleaved(edge, data, chunk):
    """Posts every sensor's next `chunk` readings in one request, round after
    round; returns the readings in the order the edge took them."""
    order, n = [], max(len(v) for v in data.values())
    for off in range(0, n, chunk):
        body = [{"sensor": s, "ts": t, "value": v}
                for s, pts in data.items() for t, v in pts[off:off + chunk]]
        r = edge.post_readings(body)
        assert r.status_code == 201, r.text
        assert r.json() == {"accepted": len(body)}
        order += [(x["sensor"], x["ts"], bits(x["value"])) for x in body]
    return order


def check_delivery(edge, dec, want, sealed):
    """The decoder's readings are exactly `want` (in position order), in
    contiguous batches 1, 2, ..., and the edge counts them acknowledged."""
    wait_until(lambda: len(dec.readings()) >= len(want), scaled(60),
               what=f"{len(want)} readings at the decoder")
    wait_until(lambda: metric_value(edge.metrics(), "outpost_uplink_readings_total",
                                    uplink="cloud") == len(want), scaled(30),
               what="the edge to count every reading acknowledged")
    got = dec.readings()
    assert len(got) == len(want)
    got.sort(key=lambda x: x["pos"])
    assert [(x["sensor"], x["ts"], bits(x["value"])) for x in got] == want
    pos = [x["pos"] for x in got]
    assert pos == sorted(set(pos)), "positions must be unique and increase"
    nodes = {x["node"] for x in got}
    assert len(nodes) == 1 and re.fullmatch(r"[0-9a-f]{16}", nodes.pop()), nodes
    assert {x["uplink"] for x in got} == {"cloud"}
    # Batches: numbered from 1, contiguous position ranges, nothing filtered,
    # no duplicates (every batch was answered 200 the first time).
    batches = sorted(dec.batches(), key=lambda b: int(b[2]))
    assert [int(b[2]) for b in batches] == list(range(1, len(batches) + 1)), batches
    assert int(batches[0][3]) == pos[0] and int(batches[-1][4]) == pos[-1]
    for prev, cur in zip(batches, batches[1:]):
        assert int(cur[3]) == int(prev[4]) + 1, (prev, cur)
    for b in batches:
        first, last, n = int(b[3]), int(b[4]), int(b[6])
        assert last - first + 1 == n == int(b[7]) and b[8] == "0" and b[5] == str(int(sealed))
        assert all(first <= x["pos"] <= last for x in got if x["batch"] == int(b[2]))
    return batches


@pytest.mark.timeout(180)
def test_edge_to_decoder_exact(outpost_factory, decoder_factory):
    dec = decoder_factory()
    edge = outpost_factory(config={"uplink.cloud": {"url": dec.url + "/v1/uplink",
                                                    "batch_age": "100ms",
                                                    "batch_points": 9000}})
    data = series(2600)     # 3 blocks of 1,024 per sensor; 10,400 readings
    want = post_interleaved(edge, data, 400)
    batches = check_delivery(edge, dec, want, sealed=False)
    assert len(batches) >= 2, "batch_points = 9000 makes several batches"
    # The per-sensor view: every sensor's readings in the order posted.
    got = sorted(dec.readings(), key=lambda x: x["pos"])
    for s, pts in data.items():
        assert [(x["ts"], bits(x["value"])) for x in got if x["sensor"] == s] == \
            [(t, bits(v)) for t, v in pts]


@pytest.mark.timeout(180)
def test_sealed_edge_to_decoder(outpost_factory, decoder_factory, outpost_bin, tmp_path):
    key = keygen(outpost_bin, tmp_path / "uplink")
    dec = decoder_factory(keys=[key])
    edge = outpost_factory(config={"uplink.cloud": {"url": dec.url + "/v1/uplink",
                                                    "batch_age": "100ms",
                                                    "seal_key": str(key)}})
    data = {s: pts[:1500] for s, pts in series(1500).items() if s != "count/pulses"}
    want = post_interleaved(edge, data, 500)
    check_delivery(edge, dec, want, sealed=True)
    assert "refused" not in dec.stderr()


@pytest.mark.timeout(180)
def test_priority_batches_to_decoder(outpost_factory, decoder_factory):
    """With priorities the edge sends batches ahead of its cursor (marked
    readings, then the newest); the reference receiver keeps positions as a
    floor plus ranges and ends with every reading exactly once. The decoder
    starts once the backlog and its marks are there."""
    hold = socket.socket()  # refuses connections until the decoder listens on it
    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hold.bind(("127.0.0.1", 0))
    port = hold.getsockname()[1]
    try:
        edge = outpost_factory(config={
            "uplink.cloud": {"url": f"http://127.0.0.1:{port}/v1/uplink", "batch_age": "50ms",
                             "batch_points": 1000, "timeout": "5s", "backoff_min": "50ms",
                             "backoff_max": "300ms", "priority": "important, live, backlog"},
            "rule.hot": {"kind": "threshold", "sensors": "imp/*", "above": "30",
                         "clear": "25", "important": "true"}})
        data = series(2600)
        # Marked while above 30: early in the backlog, so the newest are not.
        data["imp/t"] = [(TS0 + i, 40.0 if 50 <= i < 90 else 20.0) for i in range(2600)]
        want = post_interleaved(edge, data, 400)
        db = edge.data_dir / "outpost.db"

        def marked():
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
                return c.execute("SELECT count(*) FROM marks").fetchone()[0] >= 40
        wait_until(marked, scaled(20), what="the rules to mark 40 readings")
        time.sleep(0.5)  # past backoff_max: the retries are built with the marks
        dec = decoder_factory(port=port)
    finally:
        hold.close()
    wait_until(lambda: len(dec.readings()) >= len(want), scaled(60),
               what=f"{len(want)} readings at the decoder")
    wait_until(lambda: metric_value(edge.metrics(), "outpost_uplink_backlog_readings",
                                    uplink="cloud") == 0, scaled(30),
               what="the edge's backlog to drain")
    got = dec.readings()
    keys = [(x["sensor"], x["ts"], bits(x["value"])) for x in got]
    assert len(keys) == len(set(keys)) == len(want), "loss or duplicates at the decoder"
    assert sorted(keys) == sorted(want)
    pos = [x["pos"] for x in got]
    assert len(pos) == len(set(pos))
    ranged = [b for b in dec.batches() if b[9] is not None]
    assert any(b[10] == "1" for b in ranged), "an important (sparse) batch went first"
    assert any(b[10] == "0" for b in ranged), "a live batch went ahead of the backlog"


# ---- bodies captured from a real edge --------------------------------------

class Capture(http.server.ThreadingHTTPServer):
    """A stand-in receiver that keeps every body by path and answers 200."""

    def __init__(self):
        self.bodies, self.lock = {}, threading.Lock()
        super().__init__(("127.0.0.1", 0), CaptureHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class CaptureHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.bodies.setdefault(self.path, []).append(body)
        data = b'{"accepted":0,"duplicates":0,"batch":0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def captured(outpost_factory, outpost_bin, tmp_path):
    """One edge with two uplinks to a capturing receiver, one of them sealed:
    (plain body, sealed body, key file, the readings posted)."""
    key = keygen(outpost_bin, tmp_path / "cap")
    cap = Capture()
    try:
        edge = outpost_factory(config={
            "uplink.plain": {"url": cap.url("/plain"), "batch_age": "100ms"},
            "uplink.sealed": {"url": cap.url("/sealed"), "batch_age": "100ms",
                              "seal_key": str(key)}})
        body = [{"sensor": s, "ts": TS0 + 1000 * i + 7 * (i % 3), "value": v}
                for i in range(40) for s, v in (("a/dec", i / 10), ("b/third", i / 3 - 5),
                                                ("c/int", float(1000 * i)))]
        assert edge.post_readings(body).status_code == 201
        wait_until(lambda: "/plain" in cap.bodies and "/sealed" in cap.bodies, scaled(30),
                   what="both uplinks to send a batch")
        want = [(x["sensor"], x["ts"], bits(x["value"])) for x in body]
        yield cap.bodies["/plain"][0], cap.bodies["/sealed"][0], key, want
    finally:
        cap.shutdown()
        cap.server_close()


def header_len(body):
    """Bytes of the clear OPB1 header: magic, flags, node, uplink, seq."""
    nl = body[5]
    return 5 + 1 + nl + 1 + body[6 + nl] + 8


def rejected(body, keys=(), code=None):
    with pytest.raises(ob.BatchError) as e:
        ob.decode_batch(body, keys)
    if code:
        assert e.value.code == code, (e.value.code, str(e.value))
    return e.value


def test_decoder_rejects_damage(captured, tmp_path, outpost_bin):
    plain, sealed, key_file, want = captured
    key = ob.load_seal_key(key_file)
    b = ob.decode_batch(plain)
    s = ob.decode_batch(sealed, [key])
    assert not b.sealed and s.sealed and b.node == s.node
    assert (b.uplink, s.uplink, b.seq, s.seq) == ("plain", "sealed", 1, 1)
    for batch in (b, s):
        got = sorted(batch.readings, key=lambda x: x[3])
        # A batch need not hold all 120 readings; what it holds is a prefix.
        assert [(x[0], x[1], bits(x[2])) for x in got] == want[:len(got)]
        assert [x[3] for x in got] == list(range(batch.first_pos, batch.last_pos + 1))

    # Every truncation fails, sealed or not.
    for body, keys in ((plain, ()), (sealed, [key])):
        for n in range(len(body)):
            rejected(body[:n], keys)

    # Sealed: any changed byte of node, uplink, seq or the sealed message fails.
    hl = header_len(sealed)
    nl = sealed[5]
    uplink_bytes = range(7 + nl, 7 + nl + sealed[6 + nl])
    for i in [*range(6, 6 + nl), *uplink_bytes, *range(hl - 8, len(sealed))]:
        damaged = bytearray(sealed)
        damaged[i] ^= 0x20
        err = rejected(bytes(damaged), [key])
        assert err.status == (403 if hl + 5 <= i < hl + 13 else 400), (i, err.code)
    assert rejected(sealed, [ob.SealKey(b"\1" * 8, key.key)], "unknown_key").status == 403
    rejected(sealed, (), "unknown_key")
    rejected(plain, [key], "unsealed_batch")
    with pytest.raises(ob.BatchError, match="does not open"):
        ob.open_sealed(sealed[hl:], [key], s.node[::-1], s.seq)
    with pytest.raises(ob.BatchError, match="does not open"):
        ob.open_sealed(sealed[hl:], [key], f"{s.node}/{s.uplink}", s.seq + 1)
    ob.open_sealed(sealed[hl:], [key], f"{s.node}/{s.uplink}", s.seq)   # the right binding
    other = ob.load_seal_key(keygen(outpost_bin, tmp_path / "other"))
    rejected(sealed, [other], "unknown_key")
    assert ob.decode_batch(sealed, [other, key]).readings == s.readings   # rotation

    # Plain: the same payload without zstd decodes the same; then any
    # changed byte of a codec frame fails (its XXH32 and header checks).
    hl = header_len(plain)
    raw = ob.zstd_exact(plain[hl:], ob.zstandard.frame_content_size(plain[hl:]))
    flat = plain[:4] + bytes([plain[4] & ~2]) + plain[5:hl] + raw
    assert ob.decode_batch(flat) == b
    frames, at = 0, flat.find(b"OPTS")
    while at >= 0:
        end = at + 24 + struct.unpack_from("<I", flat, at + 16)[0]
        for i in range(at, end):
            damaged = bytearray(flat)
            damaged[i] ^= 0x01
            rejected(bytes(damaged), (), "invalid_batch")
        frames, at = frames + 1, flat.find(b"OPTS", end)
    assert frames == len({x[0] for x in b.readings}) == 3
    rejected(flat + b"\0")
    rejected(plain + b"\0")


def test_seal_key_file_checks(tmp_path, outpost_bin):
    path = keygen(outpost_bin, tmp_path / "k")
    text = path.read_text()
    good = ob.load_seal_key(path)
    for name, bad in (("crlf", text.replace("\n", "\r\n")), ("extra", text + "\n"),
                      ("kid", text.replace(good.kid.hex(), "0" * 16)),
                      ("upper", text.replace("kid " + good.kid.hex(), "kid " + good.kid.hex().upper())),
                      ("magic", text.replace("outpost-seal-key v1", "outpost-seal-key v2"))):
        if name == "upper" and good.kid.hex() == good.kid.hex().upper():
            continue
        p = tmp_path / f"bad-{name}.key"
        p.write_text(bad)
        with pytest.raises(ValueError):
            ob.load_seal_key(p)
    p = tmp_path / "nonl.key"
    p.write_text(text.rstrip("\n"))
    assert ob.load_seal_key(p) == good


def test_serve_answers_and_deduplicates(captured, decoder_factory):
    plain, sealed, key_file, _ = captured
    dec = decoder_factory()
    n = len(ob.decode_batch(plain).readings)
    hdr = {"Content-Type": "application/x-outpost-batch"}
    r = requests.post(dec.url + "/v1/uplink", data=plain, headers=hdr, timeout=scaled(10))
    assert r.status_code == 200 and r.json() == {"accepted": n, "duplicates": 0, "batch": 1}
    r = requests.post(dec.url + "/v1/uplink", data=plain, headers=hdr, timeout=scaled(10))
    assert r.status_code == 200 and r.json() == {"accepted": 0, "duplicates": n, "batch": 1}
    assert len(dec.readings()) == n
    r = requests.post(dec.url + "/v1/uplink", data=plain[:-3], headers=hdr, timeout=scaled(10))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_batch"
    r = requests.post(dec.url + "/v1/uplink", data=sealed, headers=hdr, timeout=scaled(10))
    assert r.status_code == 403 and r.json()["error"]["code"] == "unknown_key"
    # A receiver with the key takes only sealed batches, and only intact ones.
    sdec = decoder_factory("sealed-decoder", keys=[key_file])
    r = requests.post(sdec.url + "/v1/uplink", data=plain, headers=hdr, timeout=scaled(10))
    assert r.status_code == 403 and r.json()["error"]["code"] == "unsealed_batch"
    damaged = bytearray(sealed)
    damaged[-1] ^= 1
    r = requests.post(sdec.url + "/v1/uplink", data=bytes(damaged), headers=hdr,
                      timeout=scaled(10))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_seal"
    ns = len(ob.decode_batch(sealed, [ob.load_seal_key(key_file)]).readings)
    r = requests.post(sdec.url + "/v1/uplink", data=sealed, headers=hdr, timeout=scaled(10))
    assert r.status_code == 200 and r.json() == {"accepted": ns, "duplicates": 0, "batch": 1}
    assert len(sdec.readings()) == ns and "sealed=1" in sdec.stderr()
