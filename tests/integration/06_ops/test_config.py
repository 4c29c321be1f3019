"""The CLI and the config file: version, help, --print-config, overrides,
and start-up errors (exit 2, FILE:LINE: and the key on stderr)."""

import configparser
import re
import subprocess

import pytest

from outpost_proc import render_ini, scaled


def run(bin, *args, cwd=None, timeout=None):
    return subprocess.run([str(bin), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout or scaled(30), stdin=subprocess.DEVNULL)


def parse_printed(text):
    """--print-config output (INI with top-level keys) -> {'key' | 'sec.key': value}."""
    cp = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"))
    cp.optionxform = str
    cp.read_string("[__top__]\n" + text)
    out = {}
    for sec in cp.sections():
        for k, v in cp.items(sec):
            out[k if sec == "__top__" else f"{sec}.{k}"] = v
    return out


def test_version(outpost_bin):
    r = run(outpost_bin, "version")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"outpost \d+\.\d+\.\d+\n", r.stdout), repr(r.stdout)


def test_help(outpost_bin):
    r = run(outpost_bin, "--help")
    assert r.returncode == 0
    assert "run" in r.stdout and "version" in r.stdout
    r = run(outpost_bin, "run", "--help")
    assert r.returncode == 0, r.stderr
    for flag in ("--config", "--listen", "--data", "--set", "--print-config"):
        assert flag in r.stdout, f"`outpost run --help` does not mention {flag}"


@pytest.mark.parametrize("args", [["frobnicate"], ["run", "--no-such-flag"], ["run", "--set"],
                                  ["run", "--set", "novalue"], ["run", "--listen"]])
def test_usage_errors_exit_2(outpost_bin, tmp_path, args):
    r = run(outpost_bin, *args, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.strip()
    assert not (tmp_path / "outpost-data").exists(), "a usage error must not create data"


def test_embedded_defaults(outpost_bin, tmp_path):
    r = run(outpost_bin, "run", "--print-config", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cfg = parse_printed(r.stdout)
    assert cfg["listen"] == "127.0.0.1:8080"
    assert cfg["data_dir"] in ("./outpost-data", "outpost-data", str(tmp_path / "outpost-data"))
    assert cfg["log_level"] == "info"
    assert cfg["store.sync"] == "full"
    expected_keys = {"listen", "data_dir", "log_level", "http.max_body", "http.max_batch",
                     "http.max_connections", "http.timeout", "http.threads", "store.sync",
                     "store.queue_bytes", "store.readers", "store.retention_age",
                     "store.retention_bytes", "store.retention_interval"}
    assert expected_keys <= set(cfg), expected_keys - set(cfg)
    assert not (tmp_path / "outpost-data").exists(), "--print-config must not create data"


def test_print_config_round_trips(outpost_bin, tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text(render_ini({"log_level": "debug", "http": {"max_batch": 77, "timeout": "5s",
                                                             "max_body": "2MiB"},
                                "store": {"sync": "normal", "retention_age": "7d",
                                          "queue_bytes": "512KiB", "retention_interval": "500ms"}}))
    r = run(outpost_bin, "run", "--config", conf, "--print-config")
    assert r.returncode == 0, r.stderr
    first = parse_printed(r.stdout)
    assert first["log_level"] == "debug"
    assert first["http.max_batch"] == "77"
    assert first["store.sync"] == "normal"
    # The printed text is itself a valid config that prints the same.
    again = tmp_path / "b.conf"
    again.write_text(r.stdout)
    r2 = run(outpost_bin, "run", "--config", again, "--print-config")
    assert r2.returncode == 0, r2.stderr
    assert parse_printed(r2.stdout) == first


def test_cli_overrides_file(outpost_bin, tmp_path):
    conf = tmp_path / "o.conf"
    conf.write_text(render_ini({"listen": "127.0.0.1:1111", "data_dir": "/nonexistent/x",
                                "http": {"max_batch": 10}}))
    r = run(outpost_bin, "run", "--config", conf, "--listen", "127.0.0.1:2222",
            "--data", tmp_path / "dd", "--set", "http.max_batch=5", "--set", "store.sync=normal",
            "--set", "log_level=warn", "--print-config")
    assert r.returncode == 0, r.stderr
    cfg = parse_printed(r.stdout)
    assert cfg["listen"] == "127.0.0.1:2222"
    assert cfg["data_dir"] == str(tmp_path / "dd")
    assert cfg["http.max_batch"] == "5"
    assert cfg["store.sync"] == "normal"
    assert cfg["log_level"] == "warn"


@pytest.mark.parametrize("value", ["500ms", "5s", "2h", "7d", "90m", "1500"])
def test_duration_forms(outpost_bin, tmp_path, value):
    conf = tmp_path / "d.conf"
    conf.write_text(render_ini({"store": {"retention_age": value}}))
    r = run(outpost_bin, "run", "--config", conf, "--print-config")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("value", ["64KiB", "1MiB", "2M", "1048576", "1GiB"])
def test_size_forms(outpost_bin, tmp_path, value):
    r = run(outpost_bin, "run", "--set", f"store.retention_bytes={value}", "--print-config",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr


LINES = "# comment\n\nlisten = 127.0.0.1:0\n\n[http]\nmax_batch = 5\n"


@pytest.mark.parametrize("text,line,key", [
    (LINES + "bogus = 1\n", 7, "bogus"),
    (LINES + "[store]\nsink = full\n", 8, "sink"),
    ("verbose = yes\n", 1, "verbose"),
    ("[nosuchsection]\nkey = 1\n", 2, "key"),
    (LINES + "max_batch = lots\n", 7, "max_batch"),
    (LINES + "max_batch = -1\n", 7, "max_batch"),
    (LINES + "max_body = 12XB\n", 7, "max_body"),
    (LINES + "timeout = 5 parsecs\n", 7, "timeout"),
    ("log_level = verbose\n", 1, "log_level"),
    ("[store]\nsync = sometimes\n", 2, "sync"),
    ("[store]\n\n\nretention_age = soon\n", 4, "retention_age"),
    ("[store]\nqueue_bytes = 0\n", 2, "queue_bytes"),
    ("[http]\nmax_connections = 0\n", 2, "max_connections"),
])
def test_bad_config_exits_2_with_file_line_key(outpost_bin, tmp_path, text, line, key):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    r = run(outpost_bin, "run", "--config", conf, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert f"{conf}:{line}:" in r.stderr, r.stderr
    assert key in r.stderr, r.stderr
    assert not (tmp_path / "outpost-data").exists()
    # --print-config validates the same way.
    r = run(outpost_bin, "run", "--config", conf, "--print-config", cwd=tmp_path)
    assert r.returncode == 2, r.stdout


def test_syntax_error_names_line(outpost_bin, tmp_path):
    conf = tmp_path / "syn.conf"
    conf.write_text("log_level = info\n[http\nmax_batch = 5\n")
    r = run(outpost_bin, "run", "--config", conf)
    assert r.returncode == 2
    assert f"{conf}:2:" in r.stderr, r.stderr


@pytest.mark.parametrize("setting,key", [("http.bogus=1", "http.bogus"), ("nokey=1", "nokey"),
                                         ("store.sync=sometimes", "store.sync"),
                                         ("http.max_batch=many", "http.max_batch")])
def test_bad_set_exits_2(outpost_bin, tmp_path, setting, key):
    r = run(outpost_bin, "run", "--set", setting, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert key in r.stderr, r.stderr


def test_missing_config_file(outpost_bin, tmp_path):
    missing = tmp_path / "nope.conf"
    r = run(outpost_bin, "run", "--config", missing, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert str(missing) in r.stderr


def test_bad_listen_address(outpost_bin, tmp_path):
    r = run(outpost_bin, "run", "--listen", "not-an-address", "--data", tmp_path / "d",
            cwd=tmp_path)
    assert r.returncode != 0 and r.returncode > 0, r.returncode
    assert r.stderr.strip()


def test_port_in_use_fails_cleanly(outpost, outpost_bin, tmp_path):
    r = run(outpost_bin, "run", "--listen", f"127.0.0.1:{outpost.port}", "--data", tmp_path / "d2",
            cwd=tmp_path)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert str(outpost.port) in r.stderr


def test_data_dir_flag_is_used(outpost_factory, tmp_path):
    data = tmp_path / "elsewhere"
    d = outpost_factory(args=["--data", str(data)])
    assert d.post_readings({"sensor": "dd", "value": 1, "ts": 1}).status_code == 201
    assert data.is_dir() and any(data.iterdir()), "nothing written to --data DIR"
    assert not d.data_dir.exists() or not any(d.data_dir.iterdir())


def test_config_values_take_effect(outpost_factory):
    d = outpost_factory(config={"http": {"max_batch": 3}})
    assert d.post_readings([{"sensor": "c", "value": 1}] * 3).status_code == 201
    assert d.post_readings([{"sensor": "c", "value": 1}] * 4).status_code == 413


def test_logs_go_to_stderr_not_stdout(outpost):
    outpost.post_readings({"sensor": "log", "value": 1})
    assert "listening on http://127.0.0.1:" in outpost.stderr()
    assert outpost.stop() == 0
    assert (outpost.workdir / f"stdout.{outpost.starts}.log").read_text() == ""
