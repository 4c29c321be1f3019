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
