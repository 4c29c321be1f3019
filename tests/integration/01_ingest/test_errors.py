"""Every error status of docs/api.md, each with its JSON body, plus batch
atomicity. The 503 and 507 cases live in 02_store (they need load or a
small filesystem)."""

import json

import pytest

from outpost_proc import assert_error, raw_exchange, raw_post_large


def assert_nothing_stored(d, *sensors):
    for s in sensors:
        assert d.fetch_all(s) == [], f"{s} has readings after a rejected request"
    names = {x["sensor"] for x in d.get("/v1/sensors").json()["sensors"]}
    assert not names & set(sensors), names


# ---- 400 ----------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b'{"sensor": "a", "value": 1',
    b"{sensor: a}",
    b'[{"sensor": "a", "value": 1},]',
    b"",
    b"\xff\xfe",
    b'{"sensor": "a", "value": 1} trailing',
    b"nul",
], ids=["truncated", "unquoted", "trailing-comma", "empty", "not-utf8", "trailing-garbage",
        "bad-literal"])
def test_malformed_json_is_400(outpost, body):
    r = outpost.post("/v1/readings", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")
    assert outpost.get("/healthz").status_code == 200


@pytest.mark.parametrize("params,field", [
    ({}, "sensor"),
    ({"sensor": ""}, "sensor"),
], ids=["absent", "empty"])
def test_missing_sensor_parameter(outpost, params, field):
    r = outpost.get("/v1/readings", params=params)
    err = assert_error(r, 400, ("missing_parameter", "invalid_parameter"), field=field)
    if not params:
        assert err["code"] == "missing_parameter"


@pytest.mark.parametrize("param,value", [
    ("limit", "abc"), ("limit", "0"), ("limit", "10001"), ("limit", "-5"), ("limit", "1.5"),
    ("from", "yesterday"), ("to", "1e3x"), ("order", "sideways"), ("cursor", "not-a-cursor"),
])
def test_bad_query_parameter(outpost, param, value):
    r = outpost.get("/v1/readings", params={"sensor": "s", param: value})
    assert_error(r, 400, "invalid_parameter", field=param)


@pytest.mark.parametrize("param,value", [
    ("step", "abc"), ("step", "0"), ("step", "-5s"), ("fn", "median"), ("fn", "avg;max"),
    ("from", "x"),
])
def test_bad_aggregate_parameter(outpost, param, value):
    r = outpost.get("/v1/readings/aggregate", params={"sensor": "s", param: value})
    assert_error(r, 400, "invalid_parameter", field=param)


def test_aggregate_without_sensor(outpost):
    assert_error(outpost.get("/v1/readings/aggregate"), 400, "missing_parameter", field="sensor")


# ---- 404 / 405 ------------------------------------------------------------

@pytest.mark.parametrize("path", ["/nope", "/v1", "/v1/reading", "/v1/readings/x/y",
                                  "/v2/readings", "/v1/devices/a/b", "/datax"])
def test_unknown_route_is_404(outpost, path):
    assert_error(outpost.get(path), 404, "not_found")


def allow_set(r):
    assert "Allow" in r.headers, f"405 without Allow header: {dict(r.headers)}"
    return {m.strip().upper() for m in r.headers["Allow"].split(",") if m.strip()}


@pytest.mark.parametrize("method,path,allowed", [
    ("DELETE", "/v1/readings", {"GET", "POST"}),
    ("PUT", "/v1/readings", {"GET", "POST"}),
    ("POST", "/v1/readings/aggregate", {"GET"}),
    ("POST", "/v1/sensors", {"GET"}),
    ("POST", "/v1/devices", {"GET"}),
    ("POST", "/v1/devices/cam-1", {"GET", "PUT", "DELETE"}),
    ("PATCH", "/v1/devices/cam-1", {"GET", "PUT", "DELETE"}),
    ("DELETE", "/data", {"GET", "POST"}),
    ("PUT", "/status", {"GET", "POST"}),
    ("POST", "/healthz", {"GET"}),
    ("POST", "/readyz", {"GET"}),
    ("DELETE", "/metrics", {"GET"}),
])
def test_wrong_method_is_405_with_allow(outpost, method, path, allowed):
    r = outpost.request(method, path, json={} if method in ("POST", "PUT", "PATCH") else None)
    assert_error(r, 405, "method_not_allowed")
    got = allow_set(r)
    assert allowed <= got, f"Allow: {r.headers['Allow']!r}, want at least {allowed}"
    assert method not in got
    # Nothing but the methods the route serves (HEAD/OPTIONS may ride along).
    assert got <= allowed | {"HEAD", "OPTIONS"}, r.headers["Allow"]


# ---- 411 ------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [("POST", "/v1/readings"), ("PUT", "/v1/devices/cam-9"),
                                         ("POST", "/data")])
def test_body_without_length_is_411(outpost, method, path):
    req = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Content-Type: application/json\r\nConnection: close\r\n\r\n").encode()
    assert_error(raw_exchange(outpost.port, req), 411, "length_required")
    assert outpost.get("/healthz").status_code == 200


# ---- 413 ------------------------------------------------------------------

def test_body_over_max_body_is_413(outpost_factory):
    d = outpost_factory(sets=["http.max_body=4KiB"])
    items = [{"sensor": "big/body", "value": i, "ts": i} for i in range(200)]
    body = json.dumps(items).encode()
    assert len(body) > 4096
    r = d.post("/v1/readings", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 413, "body_too_large")
    assert_nothing_stored(d, "big/body")
    # Just under the cap is fine.
    small = json.dumps(items[:40]).encode()
    assert len(small) <= 4096
    r = d.post("/v1/readings", data=small, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_chunked_body_over_max_body_is_413(outpost_factory):
    d = outpost_factory(sets=["http.max_body=4KiB"])
    payload = json.dumps([{"sensor": "big/chunk", "value": i, "ts": i}
                          for i in range(400)]).encode()

    def gen():
        for i in range(0, len(payload), 512):
            yield payload[i:i + 512]
    r = d.post("/v1/readings", data=gen(), headers={"Content-Type": "application/json"})
    assert_error(r, 413, "body_too_large")
    assert_nothing_stored(d, "big/chunk")


def test_default_max_body_is_1mib(outpost):
    # One reading padded with whitespace past 1 MiB: valid JSON, too big.
    body = b'{"sensor":"pad","value":1,"ts":1}' + b" " * (1024 * 1024)
    assert_error(raw_post_large(outpost.port, "/v1/readings", body), 413, "body_too_large")
    assert_nothing_stored(outpost, "pad")
    assert outpost.get("/healthz").status_code == 200


def test_batch_over_max_batch_is_413(outpost_factory):
    d = outpost_factory(sets=["http.max_batch=5"])
    r = d.post_readings([{"sensor": "six", "value": i, "ts": i} for i in range(6)])
    assert_error(r, 413, "batch_too_large")
    assert_nothing_stored(d, "six")


# ---- 415 ------------------------------------------------------------------

@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "application/xml", "multipart/form-data; boundary=x"])
def test_non_json_content_type_is_415(outpost, ctype):
    r = outpost.post("/v1/readings", data=b'{"sensor":"ct","value":1,"ts":1}',
                     headers={"Content-Type": ctype})
    assert_error(r, 415, "unsupported_media_type")
    assert_nothing_stored(outpost, "ct")


def test_non_json_content_type_on_device_put_is_415(outpost):
    r = outpost.put("/v1/devices/cam-1", data=b'{"status":"online"}',
                    headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")
    assert_error(outpost.get("/v1/devices/cam-1"), 404, "device_not_found")


# ---- 422 ------------------------------------------------------------------

GOOD = {"sensor": "ok/s", "value": 1.0, "ts": 1}


@pytest.mark.parametrize("bad,field", [
    ({"value": 1.0, "ts": 1}, "sensor"),
    ({"sensor": "ok/s", "ts": 1}, "value"),
    ({"sensor": "", "value": 1.0}, "sensor"),
    ({"sensor": "x" * 129, "value": 1.0}, "sensor"),
    ({"sensor": "has space", "value": 1.0}, "sensor"),
    ({"sensor": "q?x", "value": 1.0}, "sensor"),
    ({"sensor": "caf\u00e9", "value": 1.0}, "sensor"),
    ({"sensor": 12, "value": 1.0}, "sensor"),
    ({"sensor": "ok/s", "value": "1.0"}, "value"),
    ({"sensor": "ok/s", "value": None}, "value"),
    ({"sensor": "ok/s", "value": True}, "value"),
    ({"sensor": "ok/s", "value": [1]}, "value"),
    ({"sensor": "ok/s", "value": 1.0, "ts": -1}, "ts"),
    ({"sensor": "ok/s", "value": 1.0, "ts": 253402300800000}, "ts"),
    ({"sensor": "ok/s", "value": 1.0, "ts": 1.5}, "ts"),
    ({"sensor": "ok/s", "value": 1.0, "ts": "1"}, "ts"),
    ({"sensor": "ok/s", "value": 1.0, "unit": "C"}, "unit"),
    ({"sensor": "ok/s", "value": 1.0, "Value": 2}, "Value"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_bad_item_in_batch_is_422_with_index_and_field(outpost, bad, field):
    batch = [dict(GOOD, ts=1), dict(GOOD, ts=2), bad, dict(GOOD, ts=4)]
    r = outpost.post_readings(batch)
    assert_error(r, 422, "invalid_reading", field=field, index=2)
    assert_nothing_stored(outpost, "ok/s")


def test_single_bad_reading_is_422(outpost):
    r = outpost.post_readings({"sensor": "ok/s", "value": "warm"})
    assert_error(r, 422, "invalid_reading", field="value")
    assert_nothing_stored(outpost, "ok/s")


def test_first_bad_item_is_named(outpost):
    batch = [dict(GOOD, ts=i) for i in range(10)]
    batch[7] = {"sensor": "ok/s", "value": "x"}
    batch[3] = {"sensor": "bad name", "value": 1}
    assert_error(outpost.post_readings(batch), 422, "invalid_reading", field="sensor", index=3)


def test_last_item_bad_stores_nothing(outpost):
    batch = [dict(GOOD, ts=i) for i in range(999)] + [{"sensor": "ok/s"}]
    assert_error(outpost.post_readings(batch), 422, "invalid_reading", field="value", index=999)
    assert_nothing_stored(outpost, "ok/s")
    # A following good batch goes through whole.
    assert outpost.post_readings(batch[:999]).status_code == 201
    assert len(outpost.fetch_all("ok/s")) == 999


def test_overflowing_number_is_rejected(outpost):
    # 1e400 is well-formed JSON but not a finite double: 422 on value (400
    # from a parser that refuses the overflow is acceptable too).
    r = outpost.post("/v1/readings", data=b'[{"sensor":"inf","value":1e400}]',
                     headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert_error(r, r.status_code, ("invalid_reading", "invalid_json"))
    assert_nothing_stored(outpost, "inf")


@pytest.mark.parametrize("body", [b"[1]", b'["a"]', b"[[]]", b"[null]"])
def test_non_object_item_is_422(outpost, body):
    r = outpost.post("/v1/readings", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 422, "invalid_reading", index=0)


@pytest.mark.parametrize("body", [b"42", b'"reading"', b"null", b"true"])
def test_non_reading_document_is_422(outpost, body):
    r = outpost.post("/v1/readings", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 422, "invalid_reading")


def test_empty_batch_is_422(outpost):
    assert_error(outpost.post_readings([]), 422, "empty_batch")


def test_too_many_buckets_is_422(outpost):
    """More than 10,000 (non-empty) buckets is refused; 10,000 is fine."""
    outpost.post_readings([{"sensor": "tmb", "value": i, "ts": i} for i in range(10000)])
    r = outpost.get("/v1/readings/aggregate", params={"sensor": "tmb", "step": "1ms"})
    assert r.status_code == 200, r.text
    assert len(r.json()["buckets"]) == 10000
    outpost.post_readings([{"sensor": "tmb", "value": 1, "ts": 10000}])
    r = outpost.get("/v1/readings/aggregate", params={"sensor": "tmb", "step": "1ms"})
    assert_error(r, 422, "too_many_buckets")
    # The same data in a narrower range is fine again.
    r = outpost.get("/v1/readings/aggregate",
                    params={"sensor": "tmb", "step": "1ms", "from": 1, "to": 10001})
    assert r.status_code == 200, r.text


def test_server_survives_all_of_the_above(outpost):
    for body in [b"{", b"[" * 10000, b"[]", b'{"sensor":1}', b"\x00" * 100]:
        outpost.post("/v1/readings", data=body, headers={"Content-Type": "application/json"})
    assert outpost.get("/healthz").status_code == 200
    assert outpost.post_readings(GOOD).status_code == 201
