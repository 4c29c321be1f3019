"""SIGTERM/SIGINT drain (stop accepting, finish accepted requests, commit,
exit 0) and SIGHUP reload."""

import signal
import socket

import pytest

from outpost_proc import Hammer, raw_connect, read_response, raw_exchange, scaled, wait_until


@pytest.mark.timeout(180)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_drain_under_load(outpost_factory, sig):
    d = outpost_factory()
    h = Hammer(d, threads=6, batch=200, prefix=f"drain/{sig.name}").start()
    wait_until(lambda: h.acked_readings >= 5000 or h.errors, scaled(60),
               what="load to be flowing")
    d.send_signal(sig)
    rc = d.wait_exit(scaled(60))
    assert rc is not None, f"no exit within {scaled(60):.0f}s of {sig.name}"
    assert rc == 0, f"exit code {rc} after {sig.name}; stderr:\n{d.stderr()[-3000:]}"
    h.join()  # every thread ends on the closed socket
    assert h.acked, "no request was acknowledged"
    d.restart()
    acked, lost, problems = h.verify(d)
    assert not problems, problems[:10]
    assert lost == 0 and acked > 0


def test_stop_accepting_after_sigterm(outpost):
    port = outpost.port
    assert outpost.stop() == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=scaled(5)).close()


def test_idle_connection_does_not_block_shutdown(outpost):
    """A keep-alive client that stays connected between requests must not
    hold the process: it has no request in progress."""
    idle = raw_connect(outpost.port)
    try:
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(idle)[0] == 200
        assert outpost.stop(timeout=scaled(10)) == 0
    finally:
        idle.close()


def test_half_sent_request_delays_shutdown_at_most_timeout(outpost_factory):
    """A client that sent half a request and went quiet holds shutdown for
    at most http.timeout (it is cut off like any slow client)."""
    d = outpost_factory(config={"http": {"timeout": "2s"}})
    half = raw_connect(d.port)
    try:
        half.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[")
        assert d.stop(timeout=scaled(2 + 15)) == 0
    finally:
        half.close()


def test_aborted_uploads_do_not_delay_shutdown(outpost):
    """Clients that sent part of a body and closed their socket are gone:
    nothing is left to finish, so SIGTERM exits promptly (default
    http.timeout of 30 s is far beyond the bound used here)."""
    for _ in range(20):
        s = raw_connect(outpost.port)
        s.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n[{")
        s.close()
    assert outpost.get("/healthz").status_code == 200
    rc = outpost.stop(timeout=scaled(10))
    assert rc == 0


LEVELS = (" error ", " warn ", " info ", " debug ")


def levels_during(d, work):
    """Runs work() and returns the set of log levels printed meanwhile."""
    mark = len(d.stderr())
    work()
    text = d.stderr()[mark:]
    return {lv.strip() for lv in LEVELS for ln in text.splitlines() if lv in ln}


def test_sighup_reloads_log_level(outpost_factory):
    d = outpost_factory(config={"log_level": "info"})

    def work():
        # Ordinary traffic plus a request the HTTP library itself rejects
        # (its messages are logged at debug).
        for _ in range(2):
            d.post_readings({"sensor": "hup", "value": 1})
            d.get("/v1/readings", params={"sensor": "hup"})
            d.get("/nope")
            d.post_readings({"sensor": "bad name", "value": 1})
            try:
                raw_exchange(d.port, b"GET / HTTP/9.9\r\nHost: x\r\n\r\n")
            except OSError:
                pass
    assert "debug" not in levels_during(d, work)

    d.write_config(dict(d.config, log_level="debug"))
    d.send_signal(signal.SIGHUP)
    # Converges once the reload has been applied (bounded poll).
    wait_until(lambda: "debug" in levels_during(d, work), scaled(15), interval=0.1,
               what="debug-level log lines after SIGHUP with log_level = debug")

    d.write_config(dict(d.config, log_level="error"))
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: not levels_during(d, work) - {"error"}, scaled(15), interval=0.1,
               what="only error lines after SIGHUP with log_level = error")
    assert not levels_during(d, work) - {"error"}
    assert d.get("/healthz").status_code == 200


def test_sighup_with_broken_config_keeps_running(outpost_factory):
    d = outpost_factory(config={"log_level": "info"})
    assert d.post_readings({"sensor": "hup/b", "value": 1, "ts": 1}).status_code == 201
    d.write_config(text="log_level = shouting\n[nonsense\n")
    d.send_signal(signal.SIGHUP)
    # The error is reported (file and line) and the old config stays.
    wait_until(lambda: str(d.config_path) + ":" in d.stderr(), scaled(10),
               what="the reload error naming the file")
    assert d.running
    assert d.get("/healthz").status_code == 200
    assert d.post_readings({"sensor": "hup/b", "value": 2, "ts": 2}).status_code == 201
    assert d.fetch_all("hup/b") == [(1, 1), (2, 2)]
    # A later good reload works.
    d.write_config(dict(d.config))
    d.send_signal(signal.SIGHUP)
    assert d.get("/healthz").status_code == 200


def test_repeated_sighup_is_harmless(outpost):
    for _ in range(10):
        outpost.send_signal(signal.SIGHUP)
        assert outpost.get("/healthz").status_code == 200
    assert outpost.post_readings({"sensor": "hup/r", "value": 1}).status_code == 201
