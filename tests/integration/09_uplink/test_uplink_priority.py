"""Uplink priorities: `priority = important, live, backlog`. After an
outage, the receiver gets the readings a rule marked important first, then
the newest readings, ahead of the backlog in position order (each batch
ahead is followed by one of the backlog); every reading
still arrives exactly once, across a kill -9 of the edge mid-drain (the
positions sent ahead of the cursor are kept in the edge's store, and the
receiver deduplicates by position ranges)."""

import time

import pytest

from outpost_proc import scaled, wait_until
from uplink_kit import (Ledger, PortHold, db_query, edge_config,
                        edge_pending, metric, node_id, receiver_config, settle, size,
                        uplink_metric)

BATCH = 400
TS0 = 1732200000000


def priority_edge(outpost_factory, url, **uplink):
    cfg = edge_config(url, priority="important, live, backlog", **uplink)
    cfg["rule.hot"] = {"kind": "threshold", "sensors": "imp/*", "above": "30", "clear": "25",
                       "important": "true"}
    return outpost_factory(config=cfg, name="edge")


def post(edge, rows, order):
    r = edge.post_readings(rows)
    assert r.status_code == 201, r.text
    order.extend((x["sensor"], x["ts"], x["value"]) for x in rows)


def arrival(receiver, node):
    """(sensor, ts, value) in the order the receiver stored them."""
    rows = db_query(receiver, "SELECT s.name, r.ts, r.value FROM readings r JOIN sensors s"
                              " ON s.id = r.sensor_id WHERE substr(s.name, 1, ?) = ?"
                              " ORDER BY r.seq", (len(node) + 1, node + "/"))
    return [(n[len(node) + 1:], ts, v) for n, ts, v in rows]


def per_sensor(rows):
    out = {}
    for s, ts, v in rows:
        out.setdefault(s, []).append((ts, v))
    return out


def wait_marks(edge, n):
    wait_until(lambda: db_query(edge, "SELECT count(*) FROM marks")[0][0] >= n, scaled(20),
               what=f"the rules to mark {n} readings")


@pytest.mark.timeout(size(120, 1200))
def test_important_then_live_then_backlog(outpost_factory):
    hold = PortHold()
    try:
        edge = priority_edge(outpost_factory, hold.url)
        node = node_id(edge)
        order = []
        bulk = [{"sensor": f"p/{'ab'[i % 2]}", "value": i + 0.25, "ts": TS0 + i}
                for i in range(size(2000, 20000))]
        half = len(bulk) // 2
        for i in range(0, half, 500):
            post(edge, bulk[i:i + 500], order)
        series = [20, 31, 35, 26, 24, 20, 19, 40, 41, 10, 5]
        imp = [{"sensor": "imp/t", "value": float(v), "ts": TS0 + k}
               for k, v in enumerate(series)]
        post(edge, imp, order)
        for i in range(half, len(bulk), 500):
            post(edge, bulk[i:i + 500], order)
        marked = [("imp/t", TS0 + k, float(v)) for k, v in enumerate(series)
                  if 1 <= k <= 4 or 7 <= k <= 9]
        wait_marks(edge, len(marked))
        time.sleep(0.5)  # past backoff_max: the retries are built with the marks
        rx = outpost_factory(config=receiver_config(hold.port), name="rx")
        settle(edge, rx, node, len(order))
        got = arrival(rx, node)
        assert len(got) == len(order) and len(set(got)) == len(got), "loss or duplicates"
        assert sorted(got) == sorted(order)
        # Within a batch readings are grouped per sensor, so each segment is
        # compared in order per sensor. A batch sent ahead of the cursor is
        # followed by one from the backlog (so the backlog cannot starve).
        # 1. the marked readings
        n1 = len(marked)
        assert per_sensor(got[:n1]) == per_sensor(marked), got[:n1 + 2]
        # 2. the oldest batch of the backlog
        oldest = [x for x in order if x not in marked][:BATCH]
        n2 = n1 + len(oldest)
        assert per_sensor(got[n1:n2]) == per_sensor(oldest)
        # 3. the newest batch's worth of positions
        live = [x for x in order[-BATCH:] if x not in marked]
        n3 = n2 + len(live)
        assert per_sensor(got[n2:n3]) == per_sensor(live)
        # 4. the rest of the backlog, in position order
        rest = [x for x in order if x not in set(marked) | set(oldest) | set(live)]
        assert per_sensor(got[n3:]) == per_sensor(rest)
        # Every sensor reads back whole, by time, through the API.
        want = {}
        for s, ts, v in order:
            want.setdefault(s, []).append((ts, v))
        for s, rows in want.items():
            assert rx.fetch_all(f"{node}/{s}", limit=1000) == sorted(rows)
        # The cursor caught up: nothing is left ahead of it.
        assert db_query(edge, "SELECT count(*) FROM uplink_ranges")[0][0] == 0
        assert db_query(rx, "SELECT count(*) FROM uplink_peer_ranges")[0][0] == 0
        assert metric(rx, "outpost_receiver_readings_total", result="duplicate") == 0
    finally:
        hold.close()


@pytest.mark.timeout(size(180, 1800))
def test_kill9_mid_drain_with_priorities(outpost_factory):
    """The edge is killed after batches went ahead of its cursor; restarted,
    it goes on from its cursor and its ranges: exactly once."""
    hold = PortHold()
    try:
        # A bandwidth budget keeps the drain slow enough to kill it midway.
        edge = priority_edge(outpost_factory, hold.url, bandwidth="12KiB")
        node = node_id(edge)
        led = Ledger(["q/a", "q/b", "imp/t"])
        led.ingest(edge, size(1500, 8000), ts=lambda s, k: (
            TS0 + k * 250 if s != "imp/t" else TS0 + k * 250 + 7))
        # imp/t values grow with k: the threshold (above 30) fires at k = 30
        # and never resolves, so every later imp/t reading is marked.
        per = led.next["imp/t"]
        wait_marks(edge, per - 30)
        time.sleep(0.5)
        rx = outpost_factory(config=receiver_config(hold.port), name="rx")
        wait_until(lambda: db_query(edge, "SELECT count(*) FROM uplink_ranges")[0][0] > 0
                   and uplink_metric(edge, "outpost_uplink_batches_total", result="acked") >= 3,
                   scaled(30), interval=0.02, what="batches acknowledged ahead of the cursor")
        edge.kill9()
        # Killed midway, with positions acknowledged ahead of its cursor.
        assert edge_pending(edge) > 0
        assert db_query(edge, "SELECT count(*) FROM uplink_ranges")[0][0] > 0
        edge.start()
        settle(edge, rx, node, led.total)
        assert_exact_set(rx, node, led.acked)
        assert edge_pending(edge) == 0
    finally:
        hold.close()


def assert_exact_set(rx, node, acked):
    """Exactly the acknowledged readings, each once (arrival order differs
    by design with priorities; by time they are whole)."""
    got = {}
    for s, ts, v in arrival(rx, node):
        got.setdefault(s, []).append((ts, v))
    for s, rows in acked.items():
        g = got.get(s, [])
        assert len(g) == len(set(g)), f"{s}: duplicates"
        assert sorted(g) == sorted(rows), f"{s}: {len(g)} stored, {len(rows)} acknowledged"
    assert set(got) <= set(acked)


@pytest.mark.timeout(size(180, 1800))
def test_answers_lost_and_both_restarted_with_priorities(outpost_factory, uplink_fake):
    """Batches sent ahead of the cursor meet the faults of the matrix: a
    receiver that commits and never answers (twice, so a ranged batch is
    resent and rebuilt), then both sides killed mid-upload round after
    round. Every acknowledged reading is stored exactly once."""
    from fakes.uplink import FORWARD, FORWARD_DROP
    hold = PortHold()
    try:
        rx = outpost_factory(config=receiver_config(hold.port), name="rx")
        fake = uplink_fake(upstream=f"http://127.0.0.1:{hold.port}/v1/uplink",
                           script=[FORWARD_DROP, FORWARD, FORWARD_DROP])
        edge = priority_edge(outpost_factory, fake.url)
        node = node_id(edge)
        led = Ledger(["r/a", "r/b", "imp/t"])
        hot = lambda s, k: TS0 + k * 250 + (7 if s == "imp/t" else 0)  # noqa: E731
        rounds = size(3, 15)
        for k in range(rounds):
            before = metric(rx, "outpost_receiver_readings_total", result="stored")
            led.ingest(edge, size(900, 4000), ts=hot)
            wait_until(lambda: metric(rx, "outpost_receiver_readings_total", result="stored")
                       > before or edge_pending(edge) == 0, scaled(30),
                       what="the upload to be under way")
            rx.kill9()
            edge.kill9()
            edge.restart()
            led.ingest(edge, size(300, 1500), ts=hot)
            rx.restart()
        settle(edge, rx, node, led.total)
        assert_exact_set(rx, node, led.acked)
        recs = fake.snapshot()
        assert [r["action"] for r in recs[:3]] == [FORWARD_DROP, FORWARD, FORWARD_DROP]
        # Batches went ahead of the cursor (flags bit 2: ranged), the first
        # of them answered never.
        assert recs[0]["raw"][4] & 4, "the first batch is the marked readings'"
        assert sum(1 for r in recs if r["raw"][4] & 4) >= 2
    finally:
        hold.close()


@pytest.mark.timeout(size(120, 1200))
def test_receiver_refusing_ranged_batches_turns_priorities_off(outpost_factory, uplink_fake):
    """A receiver from before priorities answers 400 to a batch sent ahead
    of the cursor (unknown flags). That is not a poison batch: the edge logs
    it, turns priorities off until restart and sends everything in position
    order; nothing is dead-lettered or lost."""
    hold = PortHold()
    try:
        rx = outpost_factory(config=receiver_config(hold.port), name="rx")
        refuse = (400, {"Content-Type": "application/json"},
                  b'{"error":{"code":"invalid_batch","message":"unknown batch flags"}}')
        fake = uplink_fake(upstream=f"http://127.0.0.1:{hold.port}/v1/uplink", script=[refuse])
        # It refuses the first request: the live batch of an edge whose
        # first 500 readings already put it more than a batch behind.
        edge = priority_edge(outpost_factory, fake.url)
        node = node_id(edge)
        led = Ledger(["o/a", "o/b"])
        led.ingest(edge, size(1500, 6000))
        settle(edge, rx, node, led.total)
        assert_exact_set(rx, node, led.acked)
        recs = fake.snapshot()
        assert recs[0]["raw"][4] & 4, "the refused batch went ahead of the cursor"
        assert not any(r["raw"][4] & 4 for r in recs[1:]), "priorities stay off"
        assert uplink_metric(edge, "outpost_uplink_batches_total", result="dead") == 0
        assert db_query(edge, "SELECT count(*) FROM dead_letters")[0][0] == 0
        assert "priorities are off until restart" in edge.stderr()
    finally:
        hold.close()
