"""Shared pieces of the uplink fault matrix (tests/integration/09_uplink).

Ledger keeps what the edge acknowledged (201) per sensor, in commit order;
settle() waits until the edge has nothing left to send and the receiver's
count matches; assert_exact() then compares the receiver's store with the
ledger: the same (ts, value) list per sensor, in the order the receiver
stored them (its seq), so loss, duplicates and reordering all show.

The edge's and the receiver's SQLite files are read read-only (WAL lets a
reader in beside the running daemon), readings through outpost_sqlite.so's
`readings` table: the edge's node id and uplink cursor, the receiver's rows
in arrival order.

OUTPOST_SOAK=1 (make soak, or by hand) lengthens the cases: more readings,
longer outages.
"""

import os
import socket
import time
from contextlib import closing

from outpost_proc import metric_value, scaled, store_connect, wait_until

SOAK = os.environ.get("OUTPOST_SOAK", "") not in ("", "0")
TS0 = 1_700_000_000_000
UPLINK = "cloud"


def size(short, soak):
    """A count or a duration: short in `make test`, soak under OUTPOST_SOAK."""
    return soak if SOAK else short


def edge_config(url, store=None, **uplink):
    """An edge with one uplink named cloud: small batches (several go in
    every case), a short batch age, small timeouts and backoff so faults
    resolve within seconds. Keyword arguments override uplink keys."""
    up = {"url": url, "batch_points": 400, "batch_age": "20ms", "timeout": "2s",
          "backoff_min": "20ms", "backoff_max": "300ms"}
    up.update(uplink)
    return {"store": dict({"sync": "normal"}, **(store or {})), f"uplink.{UPLINK}": up}


def receiver_config(port=None, host="127.0.0.1", **sections):
    """A receiver: on port (a PortHold's) when given, else port 0;
    sections ({"receiver": {...}, "auth": {...}}) are added."""
    cfg = {"store": {"sync": "normal"}}
    if port is not None:
        cfg["listen"] = f"{host}:{port}"
    cfg.update(sections)
    return cfg


def uplink_url(d, host="127.0.0.1", port=None):
    return f"http://{host}:{port or d.port}/v1/uplink"


class PortHold:
    """A loopback port reserved for a receiver that is not running (yet, or
    any more): bound with SO_REUSEADDR but not listening, so connections to
    it are refused and nothing else takes it, while the receiver (which
    binds with SO_REUSEADDR too) can listen on it whenever it starts."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.host = host
        self.port = self.sock.getsockname()[1]

    @property
    def url(self):
        return f"http://{self.host}:{self.port}/v1/uplink"

    def close(self):
        self.sock.close()


# ---- the edge's acknowledgements ---------------------------------------------

class Ledger:
    """Readings posted to the edge; acked[sensor] lists the (ts, value) the
    edge answered 201 for, in the order it committed them. Each sensor's ts
    grows by `step`; value = index + 0.25 (exact in a double)."""

    def __init__(self, sensors, ts0=TS0, step=250):
        self.sensors = list(sensors)
        self.ts0, self.step = ts0, step
        self.next = {s: 0 for s in self.sensors}
        self.acked = {s: [] for s in self.sensors}

    def make(self, sensor, k, ts=None):
        return {"sensor": sensor, "value": k + 0.25,
                "ts": self.ts0 + k * self.step if ts is None else ts}

    def ingest(self, edge, per_sensor, chunk=500, ts=None):
        """Posts per_sensor new readings of every sensor, interleaved, in
        requests of chunk readings; every request must get 201. ts: a
        function (sensor, k) -> ts overriding the default."""
        items = []
        for j in range(per_sensor):
            for s in self.sensors:
                k = self.next[s] + j
                items.append(self.make(s, k, ts(s, k) if ts else None))
        for s in self.sensors:
            self.next[s] += per_sensor
        for i in range(0, len(items), chunk):
            r = self.post(edge, items[i:i + chunk])
            assert r.status_code == 201, f"ingest: {r.status_code} {r.text}"
        return len(items)

    def post(self, edge, items):
        """Posts items (made by make) in one request; they join acked only
        if the edge answered 201. Returns the response."""
        r = edge.post_readings(items)
        if r.status_code == 201:
            for x in items:
                self.acked[x["sensor"]].append((x["ts"], x["value"]))
        return r

    def try_ingest(self, edge, per_sensor):
        """One request of per_sensor new readings of every sensor that the
        edge may refuse (a full disk): the response; only a 201 moves the
        ledger on."""
        items = [self.make(s, self.next[s] + j) for s in self.sensors for j in range(per_sensor)]
        r = self.post(edge, items)
        if r.status_code == 201:
            for s in self.sensors:
                self.next[s] += per_sensor
        return r

    @property
    def total(self):
        return sum(len(v) for v in self.acked.values())

    def expected(self, drop=()):
        """acked minus the (sensor, ts, value) triples in drop."""
        drop = set(drop)
        return {s: [x for x in rows if (s, *x) not in drop] for s, rows in self.acked.items()}


# ---- the SQLite files, read-only ------------------------------------------------

def db_query(daemon, sql, args=()):
    with closing(store_connect(daemon.data_dir)) as db:
        return db.execute(sql, args).fetchall()


def node_id(edge):
    """The edge's node id as batches carry it: 16 hex digits."""
    (v,), = db_query(edge, "SELECT value FROM meta WHERE key = 'node_id'")
    return f"{v:016x}"


def edge_pending(edge, uplink=UPLINK):
    """Readings committed on the edge after the uplink's cursor (0: all
    acknowledged by the receiver, or dead-lettered, or dropped)."""
    (cursor,), = db_query(edge, "SELECT cursor FROM uplinks WHERE name = ?", (uplink,))
    (n,), = db_query(edge, "SELECT count(*) FROM readings WHERE seq > ?", (cursor,))
    return n


def edge_rows_between(edge, lo, hi):
    """(sensor, ts, value) of the edge's readings at positions lo..hi."""
    return db_query(edge, "SELECT s.name, r.ts, r.value FROM readings r JOIN sensors s"
                          " ON s.id = r.sensor_id WHERE r.seq BETWEEN ? AND ? ORDER BY r.seq",
                    (lo, hi))


def dead_letters(edge):
    return db_query(edge, "SELECT uplink, batch_seq, first_pos, last_pos, readings, status,"
                          " answer FROM dead_letters ORDER BY id")


def receiver_rows(receiver, node):
    """{sensor (without the node prefix): [(ts, value)]} in the order the
    receiver stored them."""
    rows = db_query(receiver, "SELECT s.name, r.ts, r.value FROM readings r JOIN sensors s"
                              " ON s.id = r.sensor_id WHERE substr(s.name, 1, ?) = ?"
                              " ORDER BY r.seq", (len(node) + 1, node + "/"))
    out = {}
    for name, ts, v in rows:
        out.setdefault(name[len(node) + 1:], []).append((ts, v))
    return out


def receiver_count(receiver, node):
    (n,), = db_query(receiver, "SELECT coalesce(sum(count), 0) FROM sensors"
                               " WHERE substr(name, 1, ?) = ?", (len(node) + 1, node + "/"))
    return n


# ---- the verdict -------------------------------------------------------------------

def settle(edge, receiver, node, want_total, timeout=None, what="the backlog to drain"):
    """Waits until the edge has nothing unacknowledged and the receiver
    holds at least want_total readings of this node (more is reported by
    assert_exact, which names them)."""
    timeout = timeout or scaled(size(60, 600))

    def done():
        return receiver_count(receiver, node) >= want_total and edge_pending(edge) == 0
    try:
        wait_until(done, timeout, interval=0.05, what=what)
    except TimeoutError as e:
        raise AssertionError(f"{e}: receiver has {receiver_count(receiver, node)} of "
                             f"{want_total}; edge pending {edge_pending(edge)}; edge stderr tail:"
                             f"\n{edge.stderr()[-2000:]}") from None


def compare(got, want):
    """Problems between two {sensor: [(ts, value)]} maps, in words."""
    problems = []
    for s in sorted(set(got) | {k for k, v in want.items() if v}):
        g, w = got.get(s, []), want.get(s, [])
        if g == w:
            continue
        gs, ws = set(g), set(w)
        dups = len(g) - len(gs)
        missing = len(ws - gs)
        extra = len(gs - ws)
        first = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
        problems.append(f"{s}: {len(g)} stored, {len(w)} wanted; {missing} missing, {extra} "
                        f"never sent, {dups} duplicated; first difference at index {first}: "
                        f"got {g[first:first + 2]}, want {w[first:first + 2]}")
    return problems


def assert_exact(receiver, node, want, http_check=True):
    """The receiver holds exactly `want` ({sensor: [(ts, value)]}) under
    node: no loss, no duplicates, per-sensor order as the edge committed.
    http_check also reads each sensor back through GET /v1/readings (with
    the cursor) and compares it with the same list by ts."""
    got = receiver_rows(receiver, node)
    problems = compare(got, want)
    assert not problems, "receiver contents differ:\n" + "\n".join(problems)
    if http_check:
        for s, rows in want.items():
            if rows:
                api = receiver.fetch_all(f"{node}/{s}", limit=1000)
                assert api == sorted(rows), f"{node}/{s}: GET /v1/readings differs"


def metric(d, name, **labels):
    return metric_value(d.metrics(), name, **labels) or 0


def uplink_metric(edge, name, **labels):
    return metric(edge, name, uplink=UPLINK, **labels)


def wait_metric(d, name, pred, timeout=None, **labels):
    """Waits until pred(value of the metric) holds; returns the value."""
    timeout = timeout or scaled(30)
    got = []

    def ok():
        got.append(metric(d, name, **labels))
        return pred(got[-1])
    try:
        wait_until(ok, timeout, interval=0.05, what=f"{name}{labels}")
    except TimeoutError as e:
        raise AssertionError(f"{e}; last value {got[-1] if got else None}") from None
    return got[-1]


def elapsed(t0):
    return time.monotonic() - t0
