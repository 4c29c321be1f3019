"""Rules in the config file's [rule.NAME] sections: validated with the rest
of the file (a bad one exits 2 naming file, line and key), stored at start
with origin "config", evaluated like API rules, owned by the file (the API
gets 409), updated or removed when the file changes and the node restarts."""

import subprocess
import time

from outpost_proc import assert_error, scaled, wait_until

HOT = {"kind": "threshold", "sensors": "line1/*", "above": "30", "clear": "25"}


def rules(d):
    return {r["name"]: r for r in d.get("/v1/rules").json()["rules"]}


def test_config_rule_is_stored_and_fires(outpost_factory):
    d = outpost_factory(config={"rule.hot": HOT})
    r = rules(d)["hot"]
    assert r["origin"] == "config"
    assert r["definition"]["above"] == "30"
    t = int(time.time() * 1000)
    assert d.post_readings([{"sensor": "line1/temp", "value": 31, "ts": t}]).status_code == 201
    wait_until(lambda: d.get("/v1/alerts", params={"state": "firing"}).json()["alerts"] or None,
               scaled(10), what="the config rule's alert")


def test_api_cannot_change_a_config_rule(outpost_factory):
    d = outpost_factory(config={"rule.hot": HOT})
    assert_error(d.put("/v1/rules/hot", json=dict(HOT, above="40")), 409, "rule_in_config",
                 field="name")
    assert_error(d.delete("/v1/rules/hot"), 409, "rule_in_config", field="name")
    assert rules(d)["hot"]["definition"]["above"] == "30"
    # Other names stay the API's.
    assert d.put("/v1/rules/mine", json=HOT).status_code == 201
    assert rules(d)["mine"]["origin"] == "api"


def test_file_changes_apply_at_restart(outpost_factory):
    d = outpost_factory(config={"rule.hot": HOT, "rule.cold": dict(HOT, above="5", clear="4")})
    assert d.put("/v1/rules/mine", json=HOT).status_code == 201
    assert sorted(rules(d)) == ["cold", "hot", "mine"]
    assert d.stop() == 0
    d.write_config({"rule.hot": dict(HOT, above="35")})
    d.restart()
    r = rules(d)
    assert sorted(r) == ["hot", "mine"]           # cold left the file; the API's stays
    assert r["hot"]["definition"]["above"] == "35"
    assert r["mine"]["origin"] == "api"


def run(bin, *args, cwd=None):
    return subprocess.run([str(bin), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)


def test_bad_config_rule_exits_2_naming_line_and_key(outpost_bin, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[rule.hot]\nkind = threshold\nsensors = line1/*\nabove = 30\n"
                    "clear = 40\n")
    r = run(outpost_bin, "run", "--config", conf, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"{conf}:5:" in r.stderr and "clear" in r.stderr, r.stderr
    assert not (tmp_path / "outpost-data").exists()
    conf.write_text("[rule.hot]\nkind = threshold\nabove = 30\n")
    r = run(outpost_bin, "run", "--config", conf, "--print-config", cwd=tmp_path)
    assert r.returncode == 2 and "sensors" in r.stderr, r.stderr


def test_print_config_shows_rule_sections(outpost_bin, tmp_path):
    conf = tmp_path / "ok.conf"
    conf.write_text("[rule.hot]\nkind = threshold\nsensors = line1/*\nabove = 30\n")
    r = run(outpost_bin, "run", "--config", conf, "--print-config", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "[rule.hot]\nkind = threshold\nsensors = line1/*\nabove = 30\n" in r.stdout


def test_sighup_applies_the_files_rules(outpost_factory):
    import signal
    d = outpost_factory(config={"rule.hot": HOT})
    assert d.put("/v1/rules/mine", json=HOT).status_code == 201
    d.write_config({"rule.cold": dict(HOT, above="5", clear="4")})
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: sorted(rules(d)) == ["cold", "mine"], scaled(10),
               what="the reloaded rules")
    assert rules(d)["cold"]["origin"] == "config"
    # A bad rule in the reloaded file: the running rules stay, the reason is logged.
    d.write_config({"rule.cold": dict(HOT, clear="40")})
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: "keeping the running rules" in d.all_stderr(), scaled(10),
               what="the refusal in the log")
    assert sorted(rules(d)) == ["cold", "mine"]
    assert rules(d)["cold"]["definition"]["above"] == "5"
