"""The old Python service's routes, byte for byte (DESIGN.md, docs/api.md):

POST /data {"id": "sensor_1", "value": 42.5} -> 201 {"status":"success","message":"Data received!"}
GET  /data                                   -> {"sensor_1": 42.5, ...}
POST /status?device_id=X&status=Y            -> {"status":"success"}
GET  /status                                 -> {"X": "Y", ...}
Compact JSON, no trailing newline.
"""

import json
import time

import pytest
import requests

from outpost_proc import assert_error, scaled


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def test_post_data_bytes(outpost):
    r = outpost.post("/data", json={"id": "sensor_1", "value": 42.5})
    assert r.status_code == 201
    assert r.content == b'{"status":"success","message":"Data received!"}'
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json"


def test_get_data_bytes(outpost):
    assert outpost.get("/data").content == b"{}"
    assert outpost.post("/data", json={"id": "sensor_1", "value": 42.5}).status_code == 201
    r = outpost.get("/data")
    assert r.status_code == 200
    assert r.content == b'{"sensor_1":42.5}'
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json"


def test_get_data_is_latest_per_sensor(outpost):
    for sensor, value in [("a", 1.5), ("b", 2.25), ("a", 3.75), ("c", -4.5), ("b", 0.125)]:
        r = outpost.post("/data", json={"id": sensor, "value": value})
        assert r.status_code == 201, r.text
    r = outpost.get("/data")
    assert r.status_code == 200
    assert r.json() == {"a": 3.75, "b": 0.125, "c": -4.5}
    assert r.content == compact(r.json())  # compact, no newline


def test_post_status_bytes(outpost):
    r = outpost.post("/status?device_id=X&status=Y")
    assert r.status_code == 200
    assert r.content == b'{"status":"success"}'
    r = outpost.get("/status")
    assert r.status_code == 200
    assert r.content == b'{"X":"Y"}'


def test_get_status_empty_and_many(outpost):
    assert outpost.get("/status").content == b"{}"
    for dev, st in [("d1", "on"), ("d2", "off"), ("d1", "rebooting")]:
        r = outpost.post("/status", params={"device_id": dev, "status": st})
        assert r.content == b'{"status":"success"}'
    r = outpost.get("/status")
    assert r.json() == {"d1": "rebooting", "d2": "off"}
    assert r.content == compact(r.json())


def test_old_client_without_content_type(outpost):
    # Devices in the field post with whatever their HTTP stack sends.
    r = requests.post(outpost.url("/data"), data=b'{"id":"legacy","value":7}',
                      timeout=scaled(30))
    assert r.status_code == 201, r.text
    assert r.content == b'{"status":"success","message":"Data received!"}'


def test_post_data_is_a_reading(outpost):
    before = int(time.time() * 1000)
    assert outpost.post("/data", json={"id": "sensor_1", "value": 42.5}).status_code == 201
    after = int(time.time() * 1000)
    rows = outpost.fetch_all("sensor_1")
    assert len(rows) == 1 and rows[0][1] == 42.5
    assert before - 1000 <= rows[0][0] <= after + 1000
    sensors = {x["sensor"] for x in outpost.get("/v1/sensors").json()["sensors"]}
    assert "sensor_1" in sensors


def test_v1_readings_show_in_get_data(outpost):
    outpost.post_readings([{"sensor": "v1s", "value": 1, "ts": 100},
                           {"sensor": "v1s", "value": 2, "ts": 200}])
    assert outpost.get("/data").json() == {"v1s": 2}


def test_post_status_keeps_attributes(outpost):
    r = outpost.put("/v1/devices/cam-1", json={"status": "online", "attributes": {"fw": "1.2"}})
    assert r.status_code == 200
    r = outpost.post("/status", params={"device_id": "cam-1", "status": "offline"})
    assert r.status_code == 200 and r.content == b'{"status":"success"}'
    dev = outpost.get("/v1/devices/cam-1").json()
    assert dev["status"] == "offline" and dev["attributes"] == {"fw": "1.2"}
    assert outpost.get("/status").json() == {"cam-1": "offline"}


def test_post_status_creates_device(outpost):
    outpost.post("/status", params={"device_id": "new-dev", "status": "up"})
    dev = outpost.get("/v1/devices/new-dev")
    assert dev.status_code == 200, dev.text
    assert dev.json()["status"] == "up" and dev.json()["attributes"] == {}


def test_compat_survives_kill9(outpost):
    outpost.post("/data", json={"id": "k9", "value": 9.5})
    outpost.post("/status", params={"device_id": "k9dev", "status": "s"})
    outpost.kill9()
    outpost.restart()
    assert outpost.get("/data").content == b'{"k9":9.5}'
    assert outpost.get("/status").content == b'{"k9dev":"s"}'


# ---- bad input gets the /v1 error bodies, never a 500 ------------------------

@pytest.mark.parametrize("body", [b'{"id": "x", "value": ', b"not json"])
def test_post_data_malformed(outpost, body):
    r = outpost.post("/data", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")


@pytest.mark.parametrize("body", [{"value": 1}, {"id": "x"}, {"id": "x", "value": "hot"},
                                  {"id": "bad id", "value": 1}, {"id": 5, "value": 1}, [1]])
def test_post_data_invalid(outpost, body):
    r = outpost.post("/data", json=body)
    assert_error(r, 422, "invalid_reading")
    assert outpost.get("/data").content == b"{}"


@pytest.mark.parametrize("query,field", [("status=Y", "device_id"), ("device_id=X", "status"),
                                         ("", None)])
def test_post_status_missing_parameter(outpost, query, field):
    r = outpost.post(f"/status?{query}")
    assert_error(r, 400, "missing_parameter", field=field)
    assert outpost.get("/status").content == b"{}"


def test_post_status_bad_device_id(outpost):
    r = outpost.post("/status", params={"device_id": "no spaces", "status": "Y"})
    assert_error(r, 422, "invalid_device")
