"""GET /v1/readings (range, order, limit, cursor) and GET /v1/sensors."""

import pytest

from outpost_proc import assert_error


def post(d, readings):
    for i in range(0, len(readings), 10000):
        r = d.post_readings(readings[i:i + 10000])
        assert r.status_code == 201, r.text


@pytest.fixture
def dup_ts(outpost):
    """2,537 readings whose ts repeat in runs of 1..6, stored in an order
    that is not the ts order, so ties and page boundaries interact."""
    rows, ts, i = [], 1_700_000_000_000, 0
    while len(rows) < 2537:
        for _ in range(1 + (i % 6)):
            rows.append({"sensor": "dup", "value": float(len(rows)), "ts": ts})
        ts += 1 + (i % 3)
        i += 1
    rows = rows[:2537]
    # Store in two interleaved halves: ts order is not the arrival order.
    first, second = rows[1::2], rows[0::2]
    post(outpost, first)
    post(outpost, second)
    stored = first + second
    # Expected asc order: by ts, ties in stored order.
    order = sorted(range(len(stored)), key=lambda k: (stored[k]["ts"], k))
    asc = [(stored[k]["ts"], stored[k]["value"]) for k in order]
    return outpost, asc


def pages(d, limit, **params):
    out, cursor, sizes = [], None, []
    for _ in range(10000):
        q = dict(params, sensor="dup", limit=limit)
        if cursor:
            q["cursor"] = cursor
        r = d.get("/v1/readings", params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"sensor", "readings", "next"}, body.keys()
        assert body["sensor"] == "dup"
        got = [(x["ts"], x["value"]) for x in body["readings"]]
        assert len(got) <= limit
        sizes.append(len(got))
        out += got
        cursor = body["next"]
        if cursor is None:
            return out, sizes
        assert isinstance(cursor, str) and cursor
    raise AssertionError("cursor did not end")


@pytest.mark.parametrize("limit", [1, 7, 100, 1000, 2537, 10000])
def test_asc_paging_misses_and_repeats_nothing(dup_ts, limit):
    d, asc = dup_ts
    got, sizes = pages(d, limit)
    assert got == asc
    # Every page but the last is full; an empty last page is tolerated only
    # when the total is a multiple of the limit.
    assert all(s == limit for s in sizes[:-1]), sizes
    assert sizes[-1] > 0 or len(asc) % limit == 0


def same_ts_runs_consistent(got, asc):
    """desc order: ts non-increasing; within one ts either stored order or
    its reverse (docs/api.md says 'in the order they were stored'; the
    exact reverse of asc is what SQL's ORDER BY ts DESC, seq DESC gives)."""
    assert sorted(got) == sorted(asc) and len(got) == len(asc)
    assert [t for t, _ in got] == sorted((t for t, _ in asc), reverse=True)
    if got == list(reversed(asc)):
        return "reverse"
    runs = {}
    for t, v in asc:
        runs.setdefault(t, []).append(v)
    expect = [(t, v) for t in sorted(runs, reverse=True) for v in runs[t]]
    assert got == expect, "same-ts readings neither in stored order nor reversed"
    return "stored"


@pytest.mark.parametrize("limit", [1, 7, 100, 2537])
def test_desc_paging_misses_and_repeats_nothing(dup_ts, limit):
    d, asc = dup_ts
    got, _ = pages(d, limit, order="desc")
    same_ts_runs_consistent(got, asc)
    # And the tie order does not depend on the page size.
    one_page, _ = pages(d, 10000, order="desc")
    assert got == one_page


@pytest.mark.parametrize("limit", [5, 64])
def test_paging_within_from_to(dup_ts, limit):
    d, asc = dup_ts
    lo, hi = asc[300][0], asc[2000][0]
    want = [x for x in asc if lo <= x[0] < hi]
    got, _ = pages(d, limit, **{"from": lo, "to": hi})
    assert got == want
    got, _ = pages(d, limit, order="desc", **{"from": lo, "to": hi})
    same_ts_runs_consistent(got, want)


def test_default_limit_is_1000(dup_ts):
    d, asc = dup_ts
    body = d.get("/v1/readings", params={"sensor": "dup"}).json()
    assert len(body["readings"]) == 1000 and body["next"]
    assert [(x["ts"], x["value"]) for x in body["readings"]] == asc[:1000]


def test_from_inclusive_to_exclusive(outpost):
    post(outpost, [{"sensor": "rng", "value": t, "ts": t} for t in range(100, 200)])
    q = lambda **p: [x["ts"] for x in outpost.get(  # noqa: E731
        "/v1/readings", params=dict(p, sensor="rng")).json()["readings"]]
    assert q(**{"from": 150}) == list(range(150, 200))
    assert q(to=150) == list(range(100, 150))
    assert q(**{"from": 120, "to": 121}) == [120]
    assert q(**{"from": 120, "to": 120}) == []
    assert q(**{"from": 500}) == []
    assert q(order="desc", limit=3) == [199, 198, 197]
    assert q(order="asc", limit=3) == [100, 101, 102]


def test_unknown_sensor_is_empty_not_404(outpost):
    r = outpost.get("/v1/readings", params={"sensor": "never/seen"})
    assert r.status_code == 200, r.text
    assert r.json() == {"sensor": "never/seen", "readings": [], "next": None}


def test_sensor_names_are_not_mixed(outpost):
    post(outpost, [{"sensor": "a/b", "value": 1, "ts": 1}, {"sensor": "a/bc", "value": 2, "ts": 1},
                   {"sensor": "a", "value": 3, "ts": 1}, {"sensor": "A/B", "value": 4, "ts": 1}])
    assert outpost.fetch_all("a/b") == [(1, 1)]
    assert outpost.fetch_all("a/bc") == [(1, 2)]
    assert outpost.fetch_all("a") == [(1, 3)]
    assert outpost.fetch_all("A/B") == [(1, 4)]
    # The sensor may arrive percent-encoded or not.
    r = outpost.get("/v1/readings?sensor=a%2Fb")
    assert [x["value"] for x in r.json()["readings"]] == [1]
    r = outpost.get("/v1/readings?sensor=a/b")
    assert [x["value"] for x in r.json()["readings"]] == [1]


def test_cursor_is_bound_to_its_query(dup_ts):
    d, asc = dup_ts
    body = d.get("/v1/readings", params={"sensor": "dup", "limit": 10}).json()
    # A cursor replayed with the same parameters gives the same next page.
    a = d.get("/v1/readings", params={"sensor": "dup", "limit": 10, "cursor": body["next"]})
    b = d.get("/v1/readings", params={"sensor": "dup", "limit": 10, "cursor": body["next"]})
    assert a.status_code == 200 and a.json() == b.json()
    assert [(x["ts"], x["value"]) for x in a.json()["readings"]] == asc[10:20]
    # A tampered cursor is a 400 on `cursor`, not a crash or a silent restart.
    bad = body["next"][:-2] + ("AA" if not body["next"].endswith("AA") else "BB")
    r = d.get("/v1/readings", params={"sensor": "dup", "limit": 10, "cursor": bad})
    if r.status_code != 200:
        assert_error(r, 400, "invalid_parameter", field="cursor")


def test_sensors_lists_every_sensor(outpost):
    post(outpost, [{"sensor": "s1", "value": 1.5, "ts": 100}, {"sensor": "s1", "value": 7.25, "ts": 300},
                   {"sensor": "s1", "value": 2.0, "ts": 200}, {"sensor": "s2", "value": -1, "ts": 5}])
    r = outpost.get("/v1/sensors")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"sensors"}
    rows = {x["sensor"]: x for x in body["sensors"]}
    assert rows["s1"] == {"sensor": "s1", "count": 3, "first_ts": 100, "last_ts": 300,
                          "last_value": 7.25}
    assert rows["s2"] == {"sensor": "s2", "count": 1, "first_ts": 5, "last_ts": 5, "last_value": -1}


def test_sensors_empty_store(outpost):
    r = outpost.get("/v1/sensors")
    assert r.status_code == 200 and r.json() == {"sensors": []}
