"""The rule engine integrated with the daemon: rules managed over
PUT/GET/DELETE /v1/rules, evaluated on committed readings by the rules
runner, alert events stored and listed by GET /v1/alerts, state that
survives a restart, metrics, and ingest acknowledgements unaffected."""

import time

from outpost_proc import assert_error, metric_value, scaled, wait_until

HOT = {"kind": "threshold", "sensors": "line1/*", "above": 30, "clear": "25",
       "severity": "critical"}


def now_ms():
    return int(time.time() * 1000)


def alerts(d, **params):
    r = d.get("/v1/alerts", params=params)
    assert r.status_code == 200, r.text
    return r.json()["alerts"]


def wait_alerts(d, n, what, **params):
    return wait_until(lambda: (lambda a: a if len(a) >= n else None)(alerts(d, **params)),
                      scaled(10), what=what)


def post(d, sensor, value, ts):
    r = d.post_readings([{"sensor": sensor, "value": value, "ts": ts}])
    assert r.status_code == 201, r.text


def test_rule_put_get_list_delete(outpost):
    r = outpost.put("/v1/rules/line1-hot", json=HOT)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["name"] == "line1-hot"
    assert rule["definition"]["kind"] == "threshold"
    assert rule["definition"]["above"] == "30"
    assert rule["definition"]["severity"] == "critical"
    assert outpost.get("/v1/rules/line1-hot").json() == rule
    r = outpost.put("/v1/rules/line1-hot", json=dict(HOT, above="31"))
    assert r.status_code == 200, r.text
    assert r.json()["definition"]["above"] == "31"
    listed = outpost.get("/v1/rules").json()["rules"]
    assert [x["name"] for x in listed] == ["line1-hot"]
    assert outpost.delete("/v1/rules/line1-hot").status_code == 204
    assert_error(outpost.get("/v1/rules/line1-hot"), 404, "rule_not_found")
    assert_error(outpost.delete("/v1/rules/line1-hot"), 404, "rule_not_found")


def test_bad_definition_names_the_field(outpost):
    assert_error(outpost.put("/v1/rules/x", json=dict(HOT, clear="40")), 422, "invalid_rule",
                 field="clear")
    assert_error(outpost.put("/v1/rules/x", json={"kind": "threshold", "above": 3}), 422,
                 "invalid_rule", field="sensors")
    assert_error(outpost.put("/v1/rules/x", json=dict(HOT, bogus="1")), 422, "invalid_rule",
                 field="bogus")
    assert_error(outpost.put("/v1/rules/x", json=dict(HOT, above=[1])), 422, "invalid_rule",
                 field="above")
    assert_error(outpost.put("/v1/rules/bad%20name", json=HOT), 422, "invalid_rule",
                 field="name")
    assert_error(outpost.put("/v1/rules/x", data=b"{", headers={"Content-Type":
                                                                 "application/json"}),
                 400, "invalid_json")
    assert outpost.get("/v1/rules").json()["rules"] == []


def test_threshold_fires_once_then_resolves(outpost):
    assert outpost.put("/v1/rules/line1-hot", json=HOT).status_code == 201
    t = now_ms()
    post(outpost, "line1/temp", 20, t)
    post(outpost, "line1/temp", 31, t + 1)
    post(outpost, "line1/temp", 35, t + 2)   # still firing: no second event
    firing = wait_alerts(outpost, 1, "a firing alert", state="firing")
    a = firing[0]
    assert (a["rule"], a["sensor"], a["state"], a["severity"]) == \
        ("line1-hot", "line1/temp", "firing", "critical")
    assert a["value"] == 31 and a["threshold"] == 30 and a["fired_at"] == t + 1
    post(outpost, "line1/temp", 26, t + 3)   # above clear: still firing
    post(outpost, "line1/temp", 24, t + 4)
    resolved = wait_alerts(outpost, 1, "a resolved alert", state="resolved")
    assert resolved[0]["ts"] == t + 4 and resolved[0]["cause"] == "cleared"
    assert [x["state"] for x in alerts(outpost)] == ["firing", "resolved"]
    assert alerts(outpost, since=t + 4, state="firing") == []
    m = outpost.metrics()
    assert metric_value(m, "outpost_rules_alerts_total", state="firing") == 1
    assert metric_value(m, "outpost_rules_alerts_total", state="resolved") == 1
    assert metric_value(m, "outpost_rules_evaluations_total") >= 5
    assert metric_value(m, "outpost_rules_lag_readings") is not None


def test_alerts_query_errors(outpost):
    assert_error(outpost.get("/v1/alerts", params={"state": "pending"}), 400, "invalid_query",
                 field="state")
    assert_error(outpost.get("/v1/alerts", params={"limit": "0"}), 400, "invalid_query",
                 field="limit")
    assert_error(outpost.get("/v1/alerts", params={"since": "x"}), 400, "invalid_query",
                 field="since")


def test_rules_and_firing_alerts_survive_restart(outpost):
    assert outpost.put("/v1/rules/line1-hot", json=HOT).status_code == 201
    t = now_ms()
    post(outpost, "line1/temp", 31, t)
    wait_alerts(outpost, 1, "a firing alert", state="firing")
    assert outpost.stop() == 0
    outpost.restart()
    assert [x["name"] for x in outpost.get("/v1/rules").json()["rules"]] == ["line1-hot"]
    post(outpost, "line1/temp", 40, t + 1)   # would fire again without the seed
    post(outpost, "line1/temp", 10, t + 2)
    wait_alerts(outpost, 1, "the resolved alert", state="resolved")
    states = [x["state"] for x in alerts(outpost)]
    assert states == ["firing", "resolved"], states


def test_rule_removed_resolves_its_alerts(outpost):
    assert outpost.put("/v1/rules/line1-hot", json=HOT).status_code == 201
    post(outpost, "line1/temp", 31, now_ms())
    wait_alerts(outpost, 1, "a firing alert", state="firing")
    assert outpost.delete("/v1/rules/line1-hot").status_code == 204
    res = wait_alerts(outpost, 1, "a resolved alert", state="resolved")
    assert res[0]["cause"] == "rule_removed"


def test_ingest_acks_unaffected_by_rules(outpost):
    for i in range(5):
        assert outpost.put(f"/v1/rules/r{i}", json=dict(HOT, sensors="burst/*")).status_code \
            == 201
    t = now_ms()
    for i in range(200):
        batch = [{"sensor": f"burst/s{j}", "value": (i + j) % 40, "ts": t + i}
                 for j in range(20)]
        r = outpost.post_readings(batch)
        assert r.status_code == 201, r.text
    # Every committed reading is evaluated by every rule, none skipped.
    wait_until(lambda: metric_value(outpost.metrics(), "outpost_rules_evaluations_total")
               >= 5 * 200 * 20, scaled(20), what="the rules to catch up")
    assert metric_value(outpost.metrics(), "outpost_rules_lag_readings") == 0


def readings_of(d, sensor):
    r = d.get("/v1/readings", params={"sensor": sensor, "from": 0, "limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["readings"]


def marks_in(data_dir):
    """Important marks, read from the node's SQLite file (WAL: a reader sees
    the last commit)."""
    import sqlite3
    db = sqlite3.connect(f"file:{data_dir}/outpost.db?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT seq FROM marks ORDER BY seq")]
    finally:
        db.close()


WINDOW = {"kind": "window", "sensors": "w/temp", "window": "10s", "fns": "avg,max",
          "important": True}


def window_start():
    return (now_ms() // 10000 - 10) * 10000   # a whole window, well in the past


def test_window_writes_derived_series_that_rules_do_not_see(outpost):
    assert outpost.put("/v1/rules/w-10s", json=WINDOW).status_code == 201
    # A threshold over everything under w/: derived readings (w/temp:max_10s
    # = 3) would fire it if they fed back into the rules.
    assert outpost.put("/v1/rules/w-any", json={"kind": "threshold", "sensors": "w/*",
                                                "above": 2.5}).status_code == 201
    t0 = window_start()
    for i, v in enumerate([1, 2, 3]):
        post(outpost, "w/temp", v, t0 + 1000 * (i + 1))
    post(outpost, "w/temp", 2, t0 + 10000)      # opens the next window: the first closes
    avg = wait_until(lambda: readings_of(outpost, "w/temp:avg_10s") or None, scaled(10),
                     what="the derived avg")
    assert [(x["ts"], x["value"]) for x in avg] == [(t0, 2.0)]
    assert [(x["ts"], x["value"]) for x in readings_of(outpost, "w/temp:max_10s")] == \
        [(t0, 3.0)]
    sensors = {s["sensor"] for s in outpost.get("/v1/sensors").json()["sensors"]}
    assert {"w/temp", "w/temp:avg_10s", "w/temp:max_10s"} <= sensors
    fired = wait_alerts(outpost, 1, "the threshold on w/temp", state="firing")
    assert {a["sensor"] for a in alerts(outpost)} == {"w/temp"}, fired
    # The derived readings' seqs are passed by the runner, not counted as
    # readings it never saw; its cursor ends past them.
    post(outpost, "w/temp", 1, t0 + 10001)
    wait_until(lambda: metric_value(outpost.metrics(), "outpost_rules_lag_readings") == 0,
               scaled(10), what="the runner past the derived readings")
    assert metric_value(outpost.metrics(), "outpost_rules_skipped_readings_total") == 0
    # important = true on the window rule marks its derived readings.
    assert outpost.stop() == 0
    assert len(marks_in(outpost.data_dir)) == 2


def test_threshold_marks_its_episode_important(outpost):
    rule = dict(HOT, important=True)
    assert outpost.put("/v1/rules/line1-hot", json=rule).status_code == 201
    t = now_ms()
    for i, v in enumerate([20, 31, 35, 24, 20]):
        post(outpost, "line1/temp", v, t + i)
    wait_alerts(outpost, 1, "the resolved alert", state="resolved")
    assert outpost.stop() == 0
    # The readings from firing to resolving (31, 35, 24), not those around.
    assert len(marks_in(outpost.data_dir)) == 3


def test_silent_sensor_alerts_then_resolves(outpost):
    rule = {"kind": "silence", "sensors": "quiet/*", "silence": "1s"}
    assert outpost.put("/v1/rules/quiet", json=rule).status_code == 201
    post(outpost, "quiet/pump", 1, now_ms())
    fired = wait_alerts(outpost, 1, "the silence alert", state="firing")
    assert (fired[0]["sensor"], fired[0]["kind"]) == ("quiet/pump", "silence")
    post(outpost, "quiet/pump", 1, now_ms())
    wait_alerts(outpost, 1, "the silence alert resolved", state="resolved")


def test_open_window_survives_restart(outpost):
    rule = {"kind": "window", "sensors": "w/temp", "window": "10s", "fns": "avg,count"}
    assert outpost.put("/v1/rules/w-10s", json=rule).status_code == 201
    t0 = window_start()
    post(outpost, "w/temp", 1, t0 + 1000)
    post(outpost, "w/temp", 2, t0 + 2000)
    wait_until(lambda: metric_value(outpost.metrics(), "outpost_rules_lag_readings") == 0,
               scaled(10), what="the rules to see both readings")
    assert outpost.stop() == 0
    outpost.restart()
    post(outpost, "w/temp", 6, t0 + 3000)
    post(outpost, "w/temp", 0, t0 + 10000)   # closes the window
    avg = wait_until(lambda: readings_of(outpost, "w/temp:avg_10s") or None, scaled(10),
                     what="the derived avg")
    # All three readings, from before and after the restart, are in the window.
    assert [(x["ts"], x["value"]) for x in avg] == [(t0, 3.0)]
    assert [x["value"] for x in readings_of(outpost, "w/temp:count_10s")] == [3.0]


def test_kill9_mid_window_loses_nothing(outpost):
    rule = {"kind": "window", "sensors": "w/temp", "window": "10s", "fns": "sum"}
    assert outpost.put("/v1/rules/w-10s", json=rule).status_code == 201
    t0 = window_start()
    for i in range(1, 6):
        post(outpost, "w/temp", i, t0 + 1000 * i)
    outpost.kill9()
    outpost.restart()
    post(outpost, "w/temp", 10, t0 + 7000)
    post(outpost, "w/temp", 0, t0 + 10000)
    s = wait_until(lambda: readings_of(outpost, "w/temp:sum_10s") or None, scaled(10),
                   what="the derived sum")
    # Whether the cursor had passed them (replayed) or not (evaluated again),
    # each reading counts once.
    assert [x["value"] for x in s] == [25.0]
