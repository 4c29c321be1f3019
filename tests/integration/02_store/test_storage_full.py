"""Storage full: on a 4 MiB tmpfs filled by a dummy file, ingest answers
507 storage_full, the process stays up and serves reads, nothing of a
refused request is stored, and once the dummy file is deleted ingest works
again with every reading acknowledged before still there."""

import os

import pytest

from outpost_proc import assert_error, fill_filesystem as fill, scaled, wait_until


@pytest.mark.timeout(240)
def test_storage_full_gives_507_and_recovers(outpost_factory, small_tmpfs):
    d = outpost_factory(data_dir=small_tmpfs / "data")
    acked = []  # (ts, value) in stored order
    ts = 0

    def batch(n):
        nonlocal ts
        items = [{"sensor": "full/s", "value": float(ts + i), "ts": ts + i} for i in range(n)]
        ts += n
        return items

    try:
        for _ in range(5):
            b = batch(500)
            r = d.post_readings(b)
            assert r.status_code == 201, r.text
            acked += [(x["ts"], x["value"]) for x in b]

        dummy = small_tmpfs / "dummy"
        fill(dummy)

        # Free pages inside the database and WAL may absorb a few batches;
        # keep writing until the filesystem refuses.
        refused, full = [], None
        for _ in range(2000):
            b = batch(1000)
            r = d.post_readings(b)
            if r.status_code == 201:
                acked += [(x["ts"], x["value"]) for x in b]
                continue
            refused.append(b)
            full = r
            break
        assert full is not None, "filesystem full but ingest never refused"
        assert_error(full, 507, "storage_full")

        # The process stays up and keeps serving; refused work is not stored.
        assert d.get("/healthz").status_code == 200
        for _ in range(3):
            b = batch(10)
            r = d.post_readings(b)
            assert r.status_code in (201, 507), r.text
            if r.status_code == 201:
                acked += [(x["ts"], x["value"]) for x in b]
            else:
                assert_error(r, 507, "storage_full")
                refused.append(b)
        assert d.get("/healthz").status_code == 200
        assert d.fetch_all("full/s") == acked, "data acknowledged before the disk filled changed"
        r = d.put("/v1/devices/full-dev", json={"status": "x"})
        assert r.status_code in (200, 507), r.text

        # Free the space: ingest resumes (bounded retries; each refusal must
        # still store nothing).
        os.unlink(dummy)

        def accepted():
            b = batch(100)
            r = d.post_readings(b)
            assert r.status_code in (201, 507), r.text
            if r.status_code == 201:
                acked.extend((x["ts"], x["value"]) for x in b)
                return True
            refused.append(b)
            return False
        wait_until(accepted, scaled(30), interval=0.2, what="201 after freeing space")
        b = batch(1000)
        r = d.post_readings(b)
        assert r.status_code == 201, r.text
        acked += [(x["ts"], x["value"]) for x in b]

        got = d.fetch_all("full/s")
        assert got == acked, (f"{len(got)} stored vs {len(acked)} acknowledged; "
                              f"refused batches stored: "
                              f"{sum(1 for b in refused if (b[0]['ts'], b[0]['value']) in set(got))}")
        assert d.stop() == 0, d.stderr()[-2000:]
        d.restart()
        assert d.fetch_all("full/s") == acked
    finally:
        # The daemon must be gone before the fixture unmounts its data dir.
        if d.running:
            rc = d.stop()
            assert rc == 0, f"exit {rc}"


@pytest.mark.timeout(120)
def test_start_on_full_disk_does_not_crash(outpost_factory, small_tmpfs):
    """Starting with no space left either works (and answers 507 on ingest)
    or fails cleanly with a message; it never crashes with a signal."""
    d = outpost_factory(data_dir=small_tmpfs / "data", start=False)
    fill(small_tmpfs / "dummy")
    try:
        try:
            d.start()
        except Exception:  # noqa: BLE001 - a clean refusal to start is fine
            assert d.proc.poll() is not None
            assert d.proc.returncode > 0, f"killed by signal {-d.proc.returncode}"
            assert d.stderr().strip(), "refused to start without saying why"
            return
        r = d.post_readings({"sensor": "x", "value": 1})
        assert r.status_code in (201, 507), r.text
        if r.status_code == 507:
            assert_error(r, 507, "storage_full")
        assert d.get("/healthz").status_code == 200
    finally:
        if d.running:
            os.unlink(small_tmpfs / "dummy")
            assert d.stop() == 0
