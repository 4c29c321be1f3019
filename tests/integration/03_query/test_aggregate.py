"""GET /v1/readings/aggregate against buckets computed here in Python, on a
real series from ../shared/datasets (synthetic data if it is absent)."""

import csv
import math
import os
import random
from pathlib import Path

import pytest

from outpost_proc import REPO

DATASETS = Path(os.environ.get("OUTPOST_DATASETS", REPO.parent / "shared" / "datasets"))
ALL_FNS = ["avg", "min", "max", "count", "sum", "first", "last"]


def load_series():
    p = DATASETS / "wsn_singlehop_mote1_temp.csv"
    if p.exists():
        with open(p) as f:
            return [(int(r["ts_ms"]), float(r["value"])) for r in csv.DictReader(f)]
    rnd = random.Random(7)
    return [(1278720000000 + 5000 * i + rnd.randrange(5000), round(rnd.gauss(25, 3), 2))
            for i in range(4417)]


def buckets(rows, step, lo=None, hi=None):
    """The reference: buckets start at multiples of step since the epoch;
    first/last by ts then stored order."""
    out = {}
    for ts, v in rows:
        if (lo is not None and ts < lo) or (hi is not None and ts >= hi):
            continue
        out.setdefault(ts - ts % step, []).append((ts, v))
    res = []
    for b in sorted(out):
        pts = out[b]
        vals = [v for _, v in pts]
        srt = sorted(range(len(pts)), key=lambda k: (pts[k][0], k))
        res.append({"ts": b, "avg": math.fsum(vals) / len(vals), "min": min(vals),
                    "max": max(vals), "count": len(vals), "sum": math.fsum(vals),
                    "first": pts[srt[0]][1], "last": pts[srt[-1]][1]})
    return res


def check(got, want, fns):
    assert [b["ts"] for b in got] == [b["ts"] for b in want]
    for g, w in zip(got, want):
        assert set(g) == {"ts", *fns}, g
        for fn in fns:
            if fn in ("avg", "sum"):
                assert math.isclose(g[fn], w[fn], rel_tol=1e-9, abs_tol=1e-9), (fn, g, w)
            else:
                assert g[fn] == w[fn], (fn, g, w)


@pytest.fixture(scope="module")
def series():
    return load_series()


@pytest.fixture
def loaded(outpost, series):
    body = [{"sensor": "agg/temp", "value": v, "ts": ts} for ts, v in series]
    for i in range(0, len(body), 10000):
        r = outpost.post_readings(body[i:i + 10000])
        assert r.status_code == 201, r.text
    return outpost, series


@pytest.mark.parametrize("step,ms", [("60s", 60_000), ("5m", 300_000), ("1h", 3_600_000),
                                     ("1d", 86_400_000), ("7s", 7_000), ("30s", 30_000)])
def test_buckets_match_python(loaded, step, ms):
    d, series = loaded
    r = d.get("/v1/readings/aggregate",
              params={"sensor": "agg/temp", "step": step, "fn": ",".join(ALL_FNS)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sensor"] == "agg/temp" and body["step"] == ms
    check(body["buckets"], buckets(series, ms), ALL_FNS)


def test_sub_second_step_on_a_short_range(loaded):
    d, series = loaded
    lo = series[100][0] - 250
    hi = lo + 3_000_000  # 6,000 buckets of 500 ms: under the 10,000 cap
    r = d.get("/v1/readings/aggregate", params={"sensor": "agg/temp", "from": lo, "to": hi,
                                                "step": "500ms", "fn": ",".join(ALL_FNS)})
    assert r.status_code == 200, r.text
    assert r.json()["step"] == 500
    check(r.json()["buckets"], buckets(series, 500, lo, hi), ALL_FNS)


def test_defaults_are_60s_and_avg_min_max_count(loaded):
    d, series = loaded
    body = d.get("/v1/readings/aggregate", params={"sensor": "agg/temp"}).json()
    assert body["step"] == 60_000
    check(body["buckets"], buckets(series, 60_000), ["avg", "min", "max", "count"])


def test_from_to_and_fn_subset(loaded):
    d, series = loaded
    lo = series[len(series) // 3][0] + 1234  # not on a bucket boundary
    hi = series[2 * len(series) // 3][0] - 777
    r = d.get("/v1/readings/aggregate", params={"sensor": "agg/temp", "from": lo, "to": hi,
                                                "step": "10m", "fn": "sum,last,first"})
    assert r.status_code == 200, r.text
    check(r.json()["buckets"], buckets(series, 600_000, lo, hi), ["sum", "last", "first"])


def test_only_non_empty_buckets(outpost):
    r = outpost.post_readings([{"sensor": "gaps", "value": 1, "ts": 60_000},
                               {"sensor": "gaps", "value": 3, "ts": 60_001},
                               {"sensor": "gaps", "value": 5, "ts": 3_600_000 * 5 + 1}])
    assert r.status_code == 201
    body = outpost.get("/v1/readings/aggregate",
                       params={"sensor": "gaps", "step": "1m", "fn": "count,avg"}).json()
    assert body["buckets"] == [{"ts": 60_000, "count": 2, "avg": 2},
                               {"ts": 18_000_000, "count": 1, "avg": 5}]


def test_ties_first_last_follow_stored_order(outpost):
    r = outpost.post_readings([{"sensor": "ties", "value": 1, "ts": 10},
                               {"sensor": "ties", "value": 2, "ts": 10},
                               {"sensor": "ties", "value": 3, "ts": 10}])
    assert r.status_code == 201
    b = outpost.get("/v1/readings/aggregate",
                    params={"sensor": "ties", "step": "1s", "fn": "first,last,count"}).json()
    assert b["buckets"] == [{"ts": 0, "first": 1, "last": 3, "count": 3}]


def test_unknown_sensor_has_no_buckets(outpost):
    r = outpost.get("/v1/readings/aggregate", params={"sensor": "nobody"})
    assert r.status_code == 200, r.text
    assert r.json()["buckets"] == []
