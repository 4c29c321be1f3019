"""Backpressure: a full writer queue answers 503 overloaded with Retry-After,
drops nothing it accepted, stores nothing it refused, keeps memory bounded,
and recovers when the load stops.

The load is a Burst: many requests sent at once on keep-alive connections,
so the daemon has more writes in hand than one group commit can take."""

import pytest

from outpost_proc import Burst, Hammer, assert_error, metric_value, scaled, wait_until


def overload(d, conns, batch, want_503=3, max_rounds=200):
    b = Burst(d, conns=conns, batch=batch, prefix=f"bp{conns}x{batch}")
    try:
        for _ in range(max_rounds):
            b.round()
            if b.statuses().get(503, 0) >= want_503:
                break
    finally:
        b.close()
    return b


def check_overload_answers(d, b):
    st = b.statuses()
    assert set(st) <= {201, 503}, st
    assert st.get(503, 0) > 0, (f"no 503 in {b.rounds} rounds of {b.nconns} concurrent "
                                f"batches of {b.batch}: {st}")
    assert st.get(201, 0) > 0, f"nothing was accepted: {st}"
    for name, status, headers, body in b.sent:
        if status == 503:
            assert_error((status, headers, body), 503, "overloaded")
            ra = headers.get("retry-after", "")
            assert ra.strip().isdigit(), f"503 without a delta-seconds Retry-After: {ra!r}"
    problems = b.verify()
    assert not problems, problems[:10]


def recovers(d):
    def accepted():
        r = d.post_readings([{"sensor": "bp/after", "value": 1, "ts": 1}])
        assert r.status_code in (201, 503), r.text
        return r.status_code == 201
    wait_until(accepted, scaled(30), interval=0.1, what="a 201 after the load stopped")
    assert d.fetch_all("bp/after") == [(1, 1)]


@pytest.mark.timeout(180)
def test_queue_smaller_than_one_write_still_caps(outpost_factory):
    """store.queue_bytes=1: one write at a time may wait for the writer (an
    oversized write is let in when the queue is empty, or it could never
    succeed); every other concurrent write gets 503."""
    d = outpost_factory(sets=["store.queue_bytes=1"])
    b = overload(d, conns=64, batch=10)
    check_overload_answers(d, b)
    recovers(d)
    m = d.metrics()
    assert metric_value(m, "outpost_http_requests_total", code="503") >= 1


@pytest.mark.timeout(180)
def test_small_queue_gives_503_then_recovers(outpost_factory):
    d = outpost_factory(sets=["store.queue_bytes=2KiB"])
    b = overload(d, conns=64, batch=10)
    check_overload_answers(d, b)
    recovers(d)
    m = d.metrics()
    assert metric_value(m, "outpost_http_requests_total", route="/v1/readings",
                        code="503") == b.statuses()[503]
    assert metric_value(m, "outpost_store_queue_bytes") is not None


@pytest.mark.timeout(180)
def test_threads_under_backpressure_lose_nothing(outpost_factory):
    """Client threads that keep posting while bursts overload the queue:
    each 201 is stored, each 503 stored nothing."""
    d = outpost_factory(sets=["store.queue_bytes=4KiB"])
    h = Hammer(d, threads=4, batch=20, prefix="bp/threads").start()
    try:
        b = overload(d, conns=48, batch=10, want_503=20)
    finally:
        h.stop()
    check_overload_answers(d, b)
    acked, lost, problems = h.verify()
    assert not problems, problems[:10]
    assert lost == 0 and acked > 0
    assert set(h.statuses) <= {201, 503}, h.statuses


@pytest.mark.timeout(180)
def test_memory_stays_flat_under_overload(outpost_factory):
    """Refused work must not pile up: after many rounds of large concurrent
    batches against a small queue, RSS stays within a generous bound."""
    if scaled(1) != 1:
        pytest.skip("RSS bounds are meaningless under sanitizers")
    d = outpost_factory(sets=["store.queue_bytes=1"])
    b = Burst(d, conns=32, batch=5000, prefix="mem")
    try:
        for _ in range(15):
            b.round()
    finally:
        b.close()
    rss = metric_value(d.metrics(), "outpost_process_resident_memory_bytes")
    assert rss is not None and 0 < rss < 96 * 1024 * 1024, f"RSS {rss / 2**20:.0f} MiB"
    assert not b.verify()
