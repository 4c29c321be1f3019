"""/metrics: valid Prometheus text (promtool check metrics), the series the
issue names, and counters that move with the traffic; /healthz, /readyz."""

import shutil
import subprocess

import pytest

from outpost_proc import metric_value, parse_metrics


def types(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            out[name] = kind.strip()
    return out


def promtool_check(text):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (Debian package prometheus)")
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=60)
    return r.returncode, (r.stdout + r.stderr).decode()


def traffic(d):
    assert d.post_readings([{"sensor": "m/a", "value": i, "ts": i} for i in range(7)]).status_code == 201
    assert d.post_readings({"sensor": "m/b", "value": 1, "ts": 1}).status_code == 201
    assert d.post("/data", json={"id": "m/c", "value": 2}).status_code == 201
    d.post_readings([{"sensor": "bad name", "value": 1}])  # 422
    d.get("/nope")  # 404
    d.get("/v1/readings", params={"sensor": "m/a"})
    d.put("/v1/devices/m", json={"status": "x"})


def test_promtool_accepts_metrics_fresh(outpost):
    r = outpost.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers["Content-Type"]
    rc, out = promtool_check(r.text)
    assert rc == 0 and not out.strip(), f"promtool check metrics:\n{out}"


def test_promtool_accepts_metrics_after_traffic(outpost):
    traffic(outpost)
    text = outpost.metrics()
    rc, out = promtool_check(text)
    assert rc == 0 and not out.strip(), f"promtool check metrics:\n{out}"
    parse_metrics(text)  # every sample line parses


def test_named_series_exist_with_types(outpost):
    traffic(outpost)
    text = outpost.metrics()
    t = types(text)
    assert t.get("outpost_http_requests_total") == "counter", t
    assert t.get("outpost_ingest_readings_total") == "counter", t
    assert t.get("outpost_store_commit_seconds") == "histogram", t
    assert t.get("outpost_store_queue_bytes") == "gauge", t
    assert t.get("outpost_store_db_bytes") == "gauge", t
    assert t.get("outpost_process_resident_memory_bytes") == "gauge", t
    assert "outpost_store_retention_deleted_readings_total" in t, sorted(t)
    hist = [n for n, k in t.items() if k == "histogram"]
    assert any("batch" in n for n in hist), f"no batch size histogram among {hist}"


def test_counters_follow_traffic(outpost):
    traffic(outpost)
    text = outpost.metrics()
    # 7 + 1 + 1 (POST /data) readings accepted; the 422 counts nothing.
    assert metric_value(text, "outpost_ingest_readings_total") == 9
    assert metric_value(text, "outpost_http_requests_total", route="/v1/readings", code="201") == 2
    assert metric_value(text, "outpost_http_requests_total", route="/v1/readings", code="422") == 1
    assert metric_value(text, "outpost_http_requests_total", code="404") >= 1
    assert metric_value(text, "outpost_http_requests_total", route="/data", code="201") == 1
    commits = metric_value(text, "outpost_store_commit_seconds_count")
    assert commits is not None and commits >= 1
    buckets = [(l["le"], v) for n, l, v in parse_metrics(text)
               if n == "outpost_store_commit_seconds_bucket"]
    assert buckets and buckets[-1][0] == "+Inf" and buckets[-1][1] == commits
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), "buckets not cumulative"
    assert metric_value(text, "outpost_store_commit_seconds_sum") >= 0
    assert metric_value(text, "outpost_store_db_bytes") > 0
    assert metric_value(text, "outpost_process_resident_memory_bytes") > 1024 * 1024
    assert metric_value(text, "outpost_store_queue_bytes") >= 0


def test_route_label_is_the_route_not_the_path(outpost):
    """Device ids must not explode the label set: one series per route."""
    for i in range(20):
        outpost.put(f"/v1/devices/dev-{i}", json={"status": "x"})
        outpost.get(f"/nope/{i}")
    text = outpost.metrics()
    routes = {l.get("route") for n, l, v in parse_metrics(text)
              if n == "outpost_http_requests_total"}
    assert not any(r and "dev-" in r for r in routes), routes
    assert not any(r and "/nope/" in r for r in routes), routes
    assert len(routes) < 30, routes


def test_metrics_survive_restart_as_new_process(outpost):
    traffic(outpost)
    outpost.kill9()
    outpost.restart()
    text = outpost.metrics()
    # Counters restart at 0 (Prometheus handles resets); gauges reflect the store.
    assert not metric_value(text, "outpost_ingest_readings_total")
    assert metric_value(text, "outpost_store_db_bytes") > 0


def test_healthz_and_readyz(outpost):
    r = outpost.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["Content-Type"].startswith("application/json")
    r = outpost.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
