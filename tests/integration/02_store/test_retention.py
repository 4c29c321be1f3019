"""Retention by age and by byte quota: old readings vanish incrementally,
recent ones stay, deletions are counted by reason in /metrics."""

import math
import time

import pytest

from outpost_proc import metric_value, parse_metrics, scaled, wait_until

HOUR = 3_600_000
DELETED = "outpost_store_retention_deleted_readings_total"


@pytest.mark.timeout(120)
def test_retention_by_age(outpost_factory):
    d = outpost_factory(config={"store": {"retention_age": "1h", "retention_interval": "100ms"}})
    now = int(time.time() * 1000)
    old = [{"sensor": "ret/a", "value": i, "ts": now - 3 * HOUR + i} for i in range(300)]
    older_other = [{"sensor": "ret/b", "value": i, "ts": now - 30 * 24 * HOUR + i}
                   for i in range(50)]
    # Recent readings: an hour of margin, so a slow machine cannot age them out.
    recent = [{"sensor": "ret/a", "value": 1000 + i, "ts": now + i} for i in range(200)]
    assert d.post_readings(old + older_other).status_code == 201
    assert d.post_readings(recent).status_code == 201

    wait_until(lambda: len(d.fetch_all("ret/a")) == 200 and not d.fetch_all("ret/b"),
               scaled(60), interval=0.1, what="old readings to be deleted by age")
    assert d.fetch_all("ret/a") == [(x["ts"], x["value"]) for x in recent]
    sensors = {x["sensor"]: x for x in d.get("/v1/sensors").json()["sensors"]}
    assert sensors["ret/a"]["count"] == 200 and sensors["ret/a"]["first_ts"] == now
    assert "ret/b" not in sensors or sensors["ret/b"]["count"] == 0

    def counted():
        v = metric_value(d.metrics(), DELETED, reason="age")
        return v is not None and v >= 350
    wait_until(counted, scaled(10), what=f'{DELETED}{{reason="age"}} >= 350')
    assert metric_value(d.metrics(), DELETED, reason="age") == 350


@pytest.mark.timeout(120)
def test_retention_age_zero_keeps_everything(outpost_factory):
    d = outpost_factory(config={"store": {"retention_age": "0", "retention_interval": "10ms"}})
    assert d.post_readings([{"sensor": "keep", "value": 1, "ts": 0}]).status_code == 201
    # Give retention many intervals to (wrongly) act, then look: bounded by
    # the daemon's own progress, not a sleep -- wait for a later commit.
    for i in range(20):
        assert d.post_readings([{"sensor": "keep/tick", "value": i, "ts": i}]).status_code == 201
    assert d.fetch_all("keep") == [(0, 1)]
    v = metric_value(d.metrics(), DELETED, reason="age")
    assert not v, v


@pytest.mark.timeout(240)
def test_retention_by_bytes_deletes_oldest_first(outpost_factory):
    d = outpost_factory(config={"store": {"retention_bytes": "512KiB",
                                          "retention_interval": "50ms"}})
    # sin(ts) has no pattern for the codec to exploit (about 9 bytes a
    # reading in chunks), so 100,000 readings are well over the quota;
    # value(ts) also lets the check below see holes.
    total, ts = 100_000, 1_000_000
    for k in range(total // 10_000):
        b = [{"sensor": "quota", "value": math.sin(ts + i), "ts": ts + i} for i in range(10_000)]
        ts += 10_000
        r = d.post_readings(b)
        assert r.status_code == 201, r.text

    def shrunk():
        rows = d.fetch_all("quota")
        return rows if len(rows) < total else None
    wait_until(shrunk, scaled(120), interval=0.2, what="the byte quota to delete readings")

    def deleted_by_quota():
        m = parse_metrics(d.metrics())
        return sum(v for n, l, v in m if n == DELETED and l.get("reason") != "age")
    wait_until(lambda: deleted_by_quota() > 0, scaled(10),
               what=f"{DELETED} with a quota reason")
    # Let it settle: the count stops changing once the database is under
    # the quota (bounded poll over many retention intervals).
    history = []

    def settled():
        history.append(len(d.fetch_all("quota")))
        return len(history) >= 4 and len(set(history[-4:])) == 1
    wait_until(settled, scaled(120), interval=0.5, what="retention to settle under the quota")
    rows = d.fetch_all("quota")
    assert len(rows) >= 1000, f"a 512 KiB quota kept only {len(rows)} readings"
    # What remains is the newest readings, with no holes.
    first = rows[0][0]
    assert first > 1_000_000
    assert rows == [(t, math.sin(t)) for t in range(first, ts)], "retention left holes"
    wait_until(lambda: deleted_by_quota() >= total - len(rows), scaled(10),
               what="deletions to be counted")
    db = metric_value(d.metrics(), "outpost_store_db_bytes")
    assert db is not None and db > 0
