"""What an uplink chooses to send and what it must give up: sensor globs
and downsampling (in the batch format to a real receiver and in the JSON
format to the fake, whose shape is checked), and retention dropping
readings the uplink had not sent, counted by reason."""

import time

import pytest

from outpost_proc import scaled, wait_until
from uplink_kit import (Ledger, PortHold, assert_exact, compare, edge_config, edge_pending,
                        node_id, receiver_config, settle, size, uplink_metric, uplink_url)

SENSORS = ["keep/a", "keep/b", "keep/deep/c", "exact/one", "exact/other", "drop/x"]
PATTERNS = "keep/*, exact/one"
STEP_MS = 1000  # downsample; the ledger's readings are 250 ms apart


def filtered(led):
    """What the filters let through: sensors matching PATTERNS (fnmatch:
    '*' also crosses '/'), the first reading of each 1 s step."""
    out = {}
    for s, rows in led.acked.items():
        if not (s.startswith("keep/") or s == "exact/one"):
            continue
        kept, last = [], None
        for ts, v in rows:
            if ts // STEP_MS != last:
                kept.append((ts, v))
                last = ts // STEP_MS
        out[s] = kept
    return out


@pytest.mark.timeout(size(120, 1200))
def test_filters_batch_and_json(outpost_factory, uplink_fake):
    rx = outpost_factory(config=receiver_config(), name="rx")
    fk = uplink_fake()  # no upstream: it answers 200 and keeps the JSON
    filters = {"sensors": PATTERNS, "downsample": "1s"}
    edge = outpost_factory(config=edge_config(uplink_url(rx), **filters), name="edge")
    jedge = outpost_factory(config=edge_config(fk.url, format="json", **filters),
                            name="jedge")
    node, jnode = node_id(edge), node_id(jedge)
    led, jled = Ledger(SENSORS), Ledger(SENSORS)
    for _ in range(size(3, 10)):  # in rounds, so some batches are partial
        led.ingest(edge, size(400, 2000), chunk=300)
        jled.ingest(jedge, size(400, 2000), chunk=300)
    want = filtered(led)
    settle(edge, rx, node, sum(map(len, want.values())))
    assert_exact(rx, node, want)

    # The JSON batches: shape, numbering, positions, and the readings.
    jwant = filtered(jled)
    wait_until(lambda: edge_pending(jedge) == 0, scaled(60), what="the JSON edge to drain")
    recs = fk.snapshot()
    assert recs and all(r["status"] == 200 for r in recs)
    got, prev_last = {}, None
    for i, r in enumerate(recs):
        assert r["headers"]["Content-Type"] == "application/json", r["headers"]
        b = r["json"]
        assert set(b) == {"node", "uplink", "seq", "first", "last", "readings"}, b.keys()
        assert (b["node"], b["uplink"], b["seq"]) == (jnode, "cloud", i + 1)
        assert b["first"] <= b["last"]
        # Positions only grow; a stretch the filters dropped entirely
        # is passed over without a batch.
        if prev_last is not None:
            assert b["first"] > prev_last, (prev_last, b["first"])
        prev_last = b["last"]
        positions = {}
        for x in b["readings"]:
            assert set(x) == {"sensor", "ts", "value", "pos"}, x
            assert isinstance(x["ts"], int) and isinstance(x["value"], float), x
            assert b["first"] <= x["pos"] <= b["last"], (x, b["first"], b["last"])
            assert x["pos"] > positions.get(x["sensor"], 0), x
            positions[x["sensor"]] = x["pos"]
            got.setdefault(x["sensor"], []).append((x["ts"], x["value"]))
    problems = compare(got, jwant)
    assert not problems, "JSON batches differ:\n" + "\n".join(problems)


@pytest.mark.timeout(size(120, 1200))
def test_retention_drops_unsent(outpost_factory):
    hold = PortHold()
    try:
        edge = outpost_factory(config=edge_config(
            hold.url, store={"retention_age": "1h", "retention_interval": "100ms"}), name="edge")
        node = node_id(edge)
        led = Ledger(["ret/a", "ret/b"])
        now = int(time.time() * 1000)
        old_n = led.ingest(edge, size(500, 5000),
                           ts=lambda s, k: now - 10 * 24 * 3_600_000 + k)
        old = [(s, *x) for s, rows in led.acked.items() for x in rows]

        def dropped():
            return uplink_metric(edge, "outpost_uplink_dropped_readings_total", reason="age")
        wait_until(lambda: dropped() >= old_n, scaled(30),
                   what="retention to drop the unsent old readings")
        assert dropped() == old_n
        assert uplink_metric(edge, "outpost_uplink_dropped_readings_total", reason="quota") == 0
        assert "had not sent" in edge.stderr()
        # An hour of margin: a slow machine cannot age these out.
        led.ingest(edge, size(300, 3000), ts=lambda s, k: now + k)

        rx = outpost_factory(config=receiver_config(hold.port), name="rx")
        want = led.expected(drop=old)
        settle(edge, rx, node, sum(map(len, want.values())))
        assert_exact(rx, node, want)
        assert dropped() == old_n
    finally:
        hold.close()
