"""Acknowledged means durable: a reading that got 201 survives kill -9.

Each cycle POSTs readings, waits for the 201s, kills the daemon with
SIGKILL, restarts it on the same data dir and checks every reading
acknowledged so far (all cycles, not just the last) is there exactly once.
"""

import pytest

from outpost_proc import Hammer, scaled, wait_until

CYCLES = 20


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sync", ["full", "normal"])
def test_kill9_cycles_lose_nothing_acknowledged(outpost_factory, sync):
    d = outpost_factory(config={"store": {"sync": sync}})
    expected = {}  # sensor -> [(ts, value)] in stored order
    for cycle in range(CYCLES):
        single = {"sensor": f"dur/{sync}/single", "value": cycle + 0.5, "ts": 1_000 + cycle}
        r = d.post_readings(single)
        assert r.status_code == 201, f"cycle {cycle}: {r.status_code} {r.text}"
        expected.setdefault(single["sensor"], []).append((single["ts"], single["value"]))

        sensor = f"dur/{sync}/batch"
        batch = [{"sensor": sensor, "value": cycle * 1000 + i, "ts": 10_000 * cycle + i}
                 for i in range(250)]
        r = d.post_readings(batch)
        assert r.status_code == 201, f"cycle {cycle}: {r.status_code} {r.text}"
        assert r.json() == {"accepted": 250}
        expected.setdefault(sensor, []).extend((x["ts"], x["value"]) for x in batch)

        # A device PUT acknowledged with 200 is durable too.
        r = d.put(f"/v1/devices/dur-{sync}", json={"status": f"cycle-{cycle}"})
        assert r.status_code == 200, r.text

        d.kill9()
        d.restart()
        for s, rows in expected.items():
            got = d.fetch_all(s)
            assert got == rows, (f"cycle {cycle}, sync={sync}, {s}: {len(got)} stored, "
                                 f"{len(rows)} acknowledged; missing "
                                 f"{sorted(set(rows) - set(got))[:5]}")
        dev = d.get(f"/v1/devices/dur-{sync}")
        assert dev.status_code == 200 and dev.json()["status"] == f"cycle-{cycle}", dev.text


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sync", ["full", "normal"])
def test_kill9_under_load_loses_nothing_acknowledged(outpost_factory, sync):
    """The same promise with requests in flight at the moment of the kill:
    every 201 is stored, every unanswered batch is stored whole or not at
    all, nothing is stored twice."""
    d = outpost_factory(config={"store": {"sync": sync}})
    hammers = []
    for cycle in range(4):
        h = Hammer(d, threads=3, batch=40, prefix=f"load/{sync}/c{cycle}").start()
        hammers.append(h)
        # Kill once a fair number of batches are acknowledged (no sleeps: a
        # bounded poll on the load's own progress).
        wait_until(lambda: h.acked_readings >= 2000 or h.errors, scaled(60),
                   what="2000 acknowledged readings")
        assert not h.errors, h.errors
        d.kill9()
        h.join()
        d.restart()
        for hh in hammers:
            acked, lost, problems = hh.verify(d)
            assert not problems, f"cycle {cycle}: {problems[:10]}"
            assert lost == 0


def test_clean_stop_and_restart_keeps_everything(outpost):
    batch = [{"sensor": "clean", "value": i, "ts": i} for i in range(3000)]
    assert outpost.post_readings(batch).status_code == 201
    assert outpost.stop() == 0
    outpost.restart()
    assert len(outpost.fetch_all("clean")) == 3000
    r = outpost.get("/v1/sensors")
    row = [x for x in r.json()["sensors"] if x["sensor"] == "clean"][0]
    assert row["count"] == 3000 and row["first_ts"] == 0 and row["last_ts"] == 2999
