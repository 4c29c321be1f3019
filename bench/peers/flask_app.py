"""The design documents' Python service (Flask), reproduced as a benchmark peer.

Same routes, contract and caveats as fastapi_app.py (its docstring lists them): the four
routes of the service outpost replaces plus POST /v1/readings, all in process memory, so an
acknowledged reading does NOT survive a crash.

Run (Debian's packages): gunicorn --chdir bench/peers -w 1 -k sync flask_app:app
"""
import math
import re

from flask import Flask, jsonify, request

app = Flask(__name__)
data_store = {}
status_store = {}

SENSOR_RE = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")
TS_MAX = 253402300799999


def reading_error(i, field, message):
    body = {"error": {"code": "invalid_reading", "message": message, "index": i, "field": field}}
    return jsonify(body), 422


@app.route("/data", methods=["POST"])
def receive_data():
    data = request.get_json()
    data_store[data["id"]] = data["value"]
    return jsonify({"status": "success", "message": "Data received!"}), 201


@app.route("/data", methods=["GET"])
def get_data():
    return jsonify(data_store)


@app.route("/status", methods=["POST"])
def update_status():
    status_store[request.args["device_id"]] = request.args["status"]
    return jsonify({"status": "success"})


@app.route("/status", methods=["GET"])
def get_status():
    return jsonify(status_store)


@app.route("/v1/readings", methods=["POST"])
def post_readings():
    body = request.get_json(silent=True)
    if body is None:
        return jsonify({"error": {"code": "invalid_json", "message": "malformed JSON body"}}), 400
    readings = body if isinstance(body, list) else [body]
    if not readings:
        return jsonify({"error": {"code": "empty_batch", "message": "no readings"}}), 422
    # Validate the whole batch before storing any of it: the batch is atomic.
    for i, r in enumerate(readings):
        if not isinstance(r, dict):
            return reading_error(i, None, "a reading must be an object")
        for k in r:
            if k not in ("sensor", "value", "ts"):
                return reading_error(i, k, "unknown field")
        s = r.get("sensor")
        if not isinstance(s, str) or not SENSOR_RE.fullmatch(s):
            return reading_error(i, "sensor", "sensor must be 1-128 bytes of [A-Za-z0-9_.:/-]")
        v = r.get("value")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return reading_error(i, "value", "value must be a finite number")
        t = r.get("ts")
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= TS_MAX):
            return reading_error(i, "ts", "ts must be an integer in [0, 253402300799999]")
    for r in readings:
        data_store[r["sensor"]] = r["value"]
    return jsonify({"accepted": len(readings)}), 201
