"""PUT/GET/DELETE /v1/devices/{id} and GET /v1/devices."""

import json
import time

import pytest

from outpost_proc import assert_error


def now_ms():
    return int(time.time() * 1000)


def test_put_get_delete(outpost):
    before = now_ms()
    r = outpost.put("/v1/devices/cam-1", json={"status": "online", "attributes": {"fw": "1.2"}})
    after = now_ms()
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    dev = r.json()
    assert set(dev) == {"id", "status", "attributes", "updated_at"}, dev
    assert dev["id"] == "cam-1" and dev["status"] == "online" and dev["attributes"] == {"fw": "1.2"}
    assert before - 1000 <= dev["updated_at"] <= after + 1000

    g = outpost.get("/v1/devices/cam-1")
    assert g.status_code == 200 and g.json() == dev

    r = outpost.delete("/v1/devices/cam-1")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_error(outpost.get("/v1/devices/cam-1"), 404, "device_not_found")
    assert_error(outpost.delete("/v1/devices/cam-1"), 404, "device_not_found")


def test_put_replaces_the_device(outpost):
    r1 = outpost.put("/v1/devices/gw", json={"status": "a", "attributes": {"x": 1, "y": [1, 2]}})
    assert r1.status_code == 200
    r2 = outpost.put("/v1/devices/gw", json={"status": "b"})
    assert r2.status_code == 200, r2.text
    dev = outpost.get("/v1/devices/gw").json()
    assert dev["status"] == "b"
    assert dev["attributes"] == {}, "PUT replaces: omitted attributes are cleared"
    assert dev["updated_at"] >= r1.json()["updated_at"]


def test_attributes_keep_their_json(outpost):
    attrs = {"fw": "1.2", "n": 3, "f": 2.5, "ok": True, "none": None, "list": [1, "a", {"b": []}],
             "nested": {"deep": {"er": "é ✓ \" \\ \n"}}}
    r = outpost.put("/v1/devices/attrs", json={"status": "s", "attributes": attrs})
    assert r.status_code == 200, r.text
    assert r.json()["attributes"] == attrs
    assert outpost.get("/v1/devices/attrs").json()["attributes"] == attrs


def test_list_is_ordered_by_id(outpost):
    ids = ["zeta", "alpha", "Mid", "a.b:c_d-e", "alpha2", "0num"]
    for i, dev_id in enumerate(ids):
        assert outpost.put(f"/v1/devices/{dev_id}", json={"status": str(i)}).status_code == 200
    r = outpost.get("/v1/devices")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"devices"}
    got = [x["id"] for x in body["devices"]]
    assert got == sorted(ids), got  # byte order, as SQLite's BINARY collation
    for x in body["devices"]:
        assert set(x) == {"id", "status", "attributes", "updated_at"}
        assert x["status"] == str(ids.index(x["id"]))


def test_empty_list(outpost):
    r = outpost.get("/v1/devices")
    assert r.status_code == 200 and r.json() == {"devices": []}


def test_id_charset_and_length(outpost):
    good = ("Az09_.:-" * 16)[:128]
    assert outpost.put(f"/v1/devices/{good}", json={"status": "x"}).status_code == 200
    assert outpost.get(f"/v1/devices/{good}").json()["id"] == good


@pytest.mark.parametrize("dev_id", ["x" * 129, "sp%20ace", "semi;colon", "per%25cent",
                                    "caf%C3%A9"])
def test_bad_id_is_rejected(outpost, dev_id):
    r = outpost.put(f"/v1/devices/{dev_id}", json={"status": "x"})
    assert_error(r, 422, "invalid_device")
    assert outpost.get("/v1/devices").json() == {"devices": []}


@pytest.mark.parametrize("body,field", [
    ({}, "status"),
    ({"status": ""}, "status"),
    ({"status": "x" * 257}, "status"),
    ({"status": 5}, "status"),
    ({"status": None}, "status"),
    ({"status": "ok", "attributes": [1]}, "attributes"),
    ({"status": "ok", "attributes": "fw=1"}, "attributes"),
    ({"status": "ok", "attributes": {"blob": "x" * 17000}}, "attributes"),
])
def test_bad_device_body_is_422(outpost, body, field):
    r = outpost.put("/v1/devices/bad", json=body)
    assert_error(r, 422, "invalid_device", field=field)
    assert_error(outpost.get("/v1/devices/bad"), 404, "device_not_found")


def test_status_bounds_inclusive(outpost):
    r = outpost.put("/v1/devices/b", json={"status": "s" * 256, "attributes": {"b": "x" * 16000}})
    assert r.status_code == 200, r.text
    r = outpost.put("/v1/devices/c", json={"status": "é"})  # 2 bytes of UTF-8
    assert r.status_code == 200 and r.json()["status"] == "é"


@pytest.mark.parametrize("body", [b"{", b"", b"status=online"])
def test_malformed_device_body_is_400(outpost, body):
    r = outpost.put("/v1/devices/m", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")


def test_non_object_device_body_is_422(outpost):
    r = outpost.put("/v1/devices/m", data=json.dumps(["online"]),
                    headers={"Content-Type": "application/json"})
    assert_error(r, 422, "invalid_device")


def test_get_unknown_device(outpost):
    assert_error(outpost.get("/v1/devices/ghost"), 404, "device_not_found")


def test_devices_survive_restart(outpost):
    outpost.put("/v1/devices/keep", json={"status": "on", "attributes": {"k": "v"}})
    dev = outpost.get("/v1/devices/keep").json()
    outpost.kill9()
    outpost.restart()
    assert outpost.get("/v1/devices/keep").json() == dev


@pytest.mark.parametrize("path,method,make", [
    ("/v1/devices/deep", "PUT", lambda n: '{"status":"x","attributes":{"a":' + "[" * n + "]" * n + "}}"),
    ("/data", "POST", lambda n: '{"id":"deep","value":1,"z":' + "[" * n + "]" * n + "}"),
], ids=["device-attributes", "compat-data"])
def test_deeply_nested_bodies_are_refused_not_fatal(outpost, path, method, make):
    """400,000 nested arrays fit under the 1 MiB body cap; a recursive JSON
    tree would overflow the stack. The nesting is refused with 422."""
    r = outpost.request(method, path, data=make(400_000),
                        headers={"Content-Type": "application/json"})
    assert_error(r, 422, "invalid_json")
    assert outpost.get("/healthz").status_code == 200
