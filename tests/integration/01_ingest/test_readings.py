"""POST /v1/readings: the accepted forms, what is stored, and the 201 body."""

import json
import time

import requests

from outpost_proc import scaled


def test_single_reading_is_stored(outpost):
    r = outpost.post_readings({"sensor": "line1/temp", "value": 21.5, "ts": 1732200000000})
    assert r.status_code == 201, r.text
    assert r.json() == {"accepted": 1}
    assert r.headers["Content-Type"].startswith("application/json")
    got = outpost.get("/v1/readings", params={"sensor": "line1/temp"})
    assert got.status_code == 200, got.text
    assert got.json() == {"sensor": "line1/temp",
                          "readings": [{"ts": 1732200000000, "value": 21.5}], "next": None}


def test_batch_is_stored_in_order(outpost):
    batch = [{"sensor": "b/x", "value": float(i), "ts": 1000 + i} for i in range(500)]
    r = outpost.post_readings(batch)
    assert r.status_code == 201, r.text
    assert r.json() == {"accepted": 500}
    assert outpost.fetch_all("b/x") == [(1000 + i, float(i)) for i in range(500)]


def test_batch_of_several_sensors(outpost):
    batch = [{"sensor": f"multi/{i % 3}", "value": i, "ts": 5000 + i} for i in range(30)]
    assert outpost.post_readings(batch).status_code == 201
    for s in range(3):
        assert outpost.fetch_all(f"multi/{s}") == [(5000 + i, i) for i in range(30) if i % 3 == s]


def test_ts_defaults_to_receipt_time(outpost):
    before = int(time.time() * 1000)
    r = outpost.post_readings({"sensor": "nots", "value": 1.25})
    after = int(time.time() * 1000)
    assert r.status_code == 201, r.text
    rows = outpost.fetch_all("nots")
    assert len(rows) == 1
    ts, v = rows[0]
    assert v == 1.25
    # Same machine, same clock: receipt time lies within the request.
    assert before - 1000 <= ts <= after + 1000, (before, ts, after)


def test_values_round_trip_exactly(outpost):
    values = [0.1, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, -2.5e10, 123456789.12345679,
              1 / 3, 42, -7, 2 ** 53, 21.5, 3.141592653589793]
    batch = [{"sensor": "precise", "value": v, "ts": i} for i, v in enumerate(values)]
    r = outpost.post_readings(batch)
    assert r.status_code == 201, r.text
    got = [v for _, v in outpost.fetch_all("precise")]
    assert len(got) == len(values)
    for want, have in zip(values, got):
        assert float(have) == float(want), (want, have)


def test_sensor_name_charset_and_length(outpost):
    name = ("Aa0_.:/-" * 16)[:128]
    r = outpost.post_readings({"sensor": name, "value": 1, "ts": 1})
    assert r.status_code == 201, r.text
    assert outpost.fetch_all(name) == [(1, 1)]
    assert outpost.post_readings({"sensor": "x", "value": 1, "ts": 1}).status_code == 201


def test_ts_bounds_are_inclusive(outpost):
    r = outpost.post_readings([{"sensor": "edge", "value": 1, "ts": 0},
                               {"sensor": "edge", "value": 2, "ts": 253402300799999}])
    assert r.status_code == 201, r.text
    assert outpost.fetch_all("edge") == [(0, 1), (253402300799999, 2)]


def test_missing_content_type_is_read_as_json(outpost):
    body = json.dumps({"sensor": "noct", "value": 3, "ts": 7}).encode()
    r = requests.post(outpost.url("/v1/readings"), data=body, timeout=scaled(30))
    assert "Content-Type" not in r.request.headers
    assert r.status_code == 201, r.text
    assert outpost.fetch_all("noct") == [(7, 3)]


def test_json_content_type_with_charset(outpost):
    r = outpost.post("/v1/readings", data=b'{"sensor":"cs","value":1,"ts":1}',
                     headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text


def test_chunked_body_is_accepted(outpost):
    payload = json.dumps([{"sensor": "chunked", "value": i, "ts": i} for i in range(200)]).encode()

    def gen():  # requests sends a generator with Transfer-Encoding: chunked
        for i in range(0, len(payload), 1000):
            yield payload[i:i + 1000]
    r = outpost.post("/v1/readings", data=gen(), headers={"Content-Type": "application/json"})
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 201, r.text
    assert r.json() == {"accepted": 200}
    assert len(outpost.fetch_all("chunked")) == 200


def test_max_batch_exactly_is_accepted(outpost_factory):
    d = outpost_factory(sets=["http.max_batch=5"])
    r = d.post_readings([{"sensor": "five", "value": i, "ts": i} for i in range(5)])
    assert r.status_code == 201, r.text
    assert r.json() == {"accepted": 5}


def test_default_max_batch_of_10000(outpost):
    batch = [{"sensor": "big", "value": i, "ts": i} for i in range(10000)]
    r = outpost.post_readings(batch)
    assert r.status_code == 201, r.text
    assert r.json() == {"accepted": 10000}
    assert len(outpost.fetch_all("big")) == 10000


def test_keepalive_connection_serves_many_requests(outpost):
    s = requests.Session()
    for i in range(200):
        r = s.post(outpost.url("/v1/readings"), json={"sensor": "ka", "value": i, "ts": i},
                   timeout=scaled(30))
        assert r.status_code == 201, r.text
    assert len(outpost.fetch_all("ka")) == 200


def test_readings_appear_in_sensors(outpost):
    outpost.post_readings([{"sensor": "s/one", "value": 1.5, "ts": 10},
                           {"sensor": "s/one", "value": 9.5, "ts": 30},
                           {"sensor": "s/one", "value": 2.5, "ts": 20}])
    r = outpost.get("/v1/sensors")
    assert r.status_code == 200, r.text
    rows = {x["sensor"]: x for x in r.json()["sensors"]}
    # last_value is the value at the greatest ts, not the last stored.
    assert rows["s/one"] == {"sensor": "s/one", "count": 3, "first_ts": 10, "last_ts": 30,
                             "last_value": 9.5}
