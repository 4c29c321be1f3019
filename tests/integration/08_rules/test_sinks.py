"""The alert sinks (docs/rules.md, "Sinks"): the webhook (one POST per
event, in order, retried after 5xx with backoff and Retry-After, given up
after other 4xx, never blocking ingest or alert storage) and the SSE stream
GET /v1/alerts/stream (live events, Last-Event-ID / since_id replay with no
gap or duplicate at the seam, the subscriber cap, idle streams kept alive
past http.timeout). Alerts come from a threshold rule driven by readings
posted over HTTP; webhook receivers are the fakes in ../fakes/webhook.py."""

import json
import subprocess
import threading
import time

import pytest

from fakes.webhook import StalledReceiver, WebhookReceiver, closed_port_url
from outpost_proc import assert_error, metric_value, render_ini, scaled, wait_until

HOT = {"kind": "threshold", "sensors": "line1/*", "above": 30, "clear": 25}


def now_ms():
    return int(time.time() * 1000)


def post(d, sensor, value, ts):
    r = d.post_readings([{"sensor": sensor, "value": value, "ts": ts}])
    assert r.status_code == 201, r.text


def alerts(d, **params):
    r = d.get("/v1/alerts", params=dict({"limit": 10000}, **params))
    assert r.status_code == 200, r.text
    return r.json()["alerts"]


def wait_alerts(d, n):
    return wait_until(lambda: (lambda a: a if len(a) >= n else None)(alerts(d)), scaled(10),
                      what=f"{n} stored alert events")


def episode(d, sensor="line1/temp", t=None):
    """One firing and one resolved event of HOT: 20 (idle), 31 (fires), 35
    (still firing), 26 (above clear), 24 (resolves)."""
    t = t if t is not None else now_ms()
    for i, v in enumerate((20, 31, 35, 26, 24)):
        post(d, sensor, v, t + i)


def metric(d, name, **labels):
    return metric_value(d.metrics(), name, **labels)


class Stream:
    """A client of GET /v1/alerts/stream (requests, stream=True) parsing the
    events on a thread of its own. The daemon ends every stream when it
    stops, which ends the thread."""

    def __init__(self, d, last_event_id=None, params=None):
        headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        self.session = d.new_session()
        self.r = self.session.get(d.url("/v1/alerts/stream"), headers=headers, params=params,
                                  stream=True, timeout=(scaled(10), None))
        self.events, self.comments, self.fields = [], 0, set()
        self.cond = threading.Condition()
        self.ended = False
        if self.r.status_code == 200:
            threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        buf = b""
        try:
            for chunk in self.r.iter_content(chunk_size=None):
                buf += chunk
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    self._block(block.decode())
        except Exception:  # noqa: BLE001 - the connection ended; `ended` says so
            pass
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    def _block(self, block):
        ev, data = {}, []
        for line in block.split("\n"):
            if line.startswith(":"):
                with self.cond:
                    self.comments += 1
                    self.cond.notify_all()
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            self.fields.add(key)
            if key == "data":
                data.append(value)
            else:
                ev[key] = value
        if data:
            ev["data"] = json.loads("\n".join(data))
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    raise TimeoutError(f"stream: waiting for {what}; ended={self.ended}, "
                                       f"events={[e.get('id') for e in self.events]}")
                self.cond.wait(min(left, 0.5))

    def wait_events(self, n, timeout=None):
        self.wait(lambda s: len(s.events) >= n, timeout or scaled(10), f"{n} events")
        with self.cond:
            return list(self.events)

    def ids(self):
        with self.cond:
            return [int(e["id"]) for e in self.events]


@pytest.fixture
def receiver():
    r = WebhookReceiver()
    yield r
    r.close()


def test_webhook_and_stream_get_one_firing_and_one_resolved(outpost_factory, receiver):
    d = outpost_factory(config={"rules": {"webhook_url": receiver.url,
                                          "webhook_token": "s3cret"}})
    stream = Stream(d)
    assert stream.r.status_code == 200, stream.r.text
    assert stream.r.headers["Content-Type"].startswith("text/event-stream")
    assert metric(d, "outpost_rules_stream_clients") == 1
    assert d.put("/v1/rules/line1-hot", json=HOT).status_code == 201
    episode(d)

    stored = wait_alerts(d, 2)
    assert [a["state"] for a in stored] == ["firing", "resolved"]
    # The webhook: exactly these two events, in order, each the same object
    # GET /v1/alerts lists.
    assert receiver.wait_delivered(2, scaled(10)) == stored
    wait_until(lambda: metric(d, "outpost_rules_webhook_sent_total") == 2, scaled(10),
               what="sent_total to reach 2")
    assert metric(d, "outpost_rules_webhook_queue_events") == 0
    reqs = receiver.snapshot()
    assert len(reqs) == 2, [(r["status"], r["body"]) for r in reqs]
    for r in reqs:
        assert r["headers"]["Content-Type"] == "application/json"
        assert r["headers"]["Authorization"] == "Bearer s3cret"
    # The stream: the same two, framed as SSE events named "alert".
    events = stream.wait_events(2)
    assert [int(e["id"]) for e in events] == [a["id"] for a in stored]
    assert all(e["event"] == "alert" for e in events)
    assert [e["data"] for e in events] == stored
    assert metric(d, "outpost_rules_webhook_failures_total") == 0
    assert metric(d, "outpost_rules_webhook_dropped_total") == 0


def test_webhook_retries_a_500_and_delivers_each_event_once(outpost_factory):
    receiver = WebhookReceiver(script=[(500, {"Retry-After": "1"})])
    try:
        d = outpost_factory(config={"rules": {"webhook_url": receiver.url}})
        assert d.put("/v1/rules/line1-hot", json=HOT).status_code == 201
        episode(d)
        stored = wait_alerts(d, 2)
        delivered = receiver.wait_delivered(2, scaled(15))
        # A retry is the same event (same id): delivered once each, in order.
        assert [b["id"] for b in delivered] == [a["id"] for a in stored]
        reqs = receiver.snapshot()
        assert [(r["status"], r["body"]["id"]) for r in reqs] == \
            [(500, stored[0]["id"]), (200, stored[0]["id"]), (200, stored[1]["id"])]
        # Retry-After: 1 was honoured (the backoff alone would be <= 0.5 s).
        assert reqs[1]["t"] - reqs[0]["t"] >= 0.9
        # The receiver records a request before it answers: poll the counter.
        wait_until(lambda: metric(d, "outpost_rules_webhook_sent_total") == 2, scaled(10),
                   what="sent_total to reach 2")
        assert metric(d, "outpost_rules_webhook_failures_total", reason="status") == 1
    finally:
        receiver.close()


def test_webhook_gives_up_on_a_4xx(outpost_factory):
    receiver = WebhookReceiver(script=[422])
    try:
        d = outpost_factory(config={"rules": {"webhook_url": receiver.url}})
        assert d.put("/v1/rules/line1-hot", json=HOT).status_code == 201
        episode(d)
        stored = wait_alerts(d, 2)
        # The refused event is dropped (not retried); the next one goes out.
        assert receiver.wait_delivered(1, scaled(10)) == [stored[1]]
        wait_until(lambda: metric(d, "outpost_rules_webhook_dropped_total", reason="rejected")
                   == 1, scaled(10), what="the rejected drop to be counted")
        assert [r["status"] for r in receiver.snapshot()] == [422, 200]
        assert metric(d, "outpost_rules_webhook_failures_total") == 0
    finally:
        receiver.close()


def test_dead_webhook_does_not_stop_ingest_or_alerts(outpost_factory):
    """A closed port: every attempt fails to connect; ingest and alert
    storage go on, the failures and the bounded queue show in /metrics."""
    d = outpost_factory(config={"rules": {"webhook_url": closed_port_url(),
                                          "webhook_timeout": "1s", "webhook_queue": 2}})
    assert d.put("/v1/rules/line1-hot", json=HOT).status_code == 201
    t = now_ms()
    episode(d, t=t)
    episode(d, t=t + 10)
    stored = wait_alerts(d, 4)
    assert [a["state"] for a in stored] == ["firing", "resolved"] * 2
    # Ingest goes on, acknowledged as usual.
    for i in range(20):
        r = d.post_readings([{"sensor": f"other/s{j}", "value": j, "ts": t + i}
                             for j in range(50)])
        assert r.status_code == 201, r.text
    wait_until(lambda: (metric(d, "outpost_rules_webhook_failures_total", reason="connect")
                        or 0) >= 2, scaled(15), what="connection failures in /metrics")
    # Four events, a queue of two (plus the one being retried): the oldest
    # queued ones were pushed out and counted, none is unaccounted for.
    def accounted():
        m = d.metrics()
        return (metric_value(m, "outpost_rules_webhook_dropped_total", reason="queue_full")
                + metric_value(m, "outpost_rules_webhook_queue_events")) == 4
    wait_until(accounted, scaled(10), what="queued + dropped to account for 4 events")
    m = d.metrics()
    assert metric_value(m, "outpost_rules_webhook_dropped_total", reason="queue_full") >= 1
    assert metric_value(m, "outpost_rules_webhook_queue_events") <= 3
    assert metric_value(m, "outpost_rules_webhook_sent_total") == 0
    assert metric_value(m, "outpost_rules_alerts_dropped_total") == 0


def test_stalled_webhook_does_not_hold_up_shutdown(outpost_factory):
    stalled = StalledReceiver()
    try:
        d = outpost_factory(config={"rules": {"webhook_url": stalled.url,
                                              "webhook_timeout": "5m"}})
        assert d.put("/v1/rules/line1-hot", json=HOT).status_code == 201
        episode(d)
        wait_alerts(d, 2)
        wait_until(lambda: metric(d, "outpost_rules_webhook_queue_events") == 2, scaled(10),
                   what="both events waiting for the webhook")
        t0 = time.monotonic()
        assert d.stop(timeout=scaled(30)) == 0
        # Far less than the 5 minute request timeout: the request in flight
        # is aborted at stop.
        assert time.monotonic() - t0 < scaled(8)
        assert "not delivered" in d.stderr()
    finally:
        stalled.close()


def test_bad_webhook_url_is_a_startup_error_with_line(outpost_bin, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text(render_ini({"listen": "127.0.0.1:0", "data_dir": str(tmp_path / "data"),
                                "rules": {"webhook_timeout": "2s",
                                          "webhook_url": "ftp://example.com/x"}}))
    r = subprocess.run([str(outpost_bin), "run", "--config", str(conf)], capture_output=True,
                       text=True, timeout=scaled(30))
    assert r.returncode == 2, (r.returncode, r.stderr)
    line = conf.read_text().splitlines().index("webhook_url = ftp://example.com/x") + 1
    assert f"{conf}:{line}:" in r.stderr and "rules.webhook_url" in r.stderr, r.stderr
    assert not (tmp_path / "data").exists()


def test_stream_resumes_from_last_event_id(outpost):
    d = outpost
    assert d.put("/v1/rules/line1-hot", json=HOT).status_code == 201
    t = now_ms()
    episode(d, t=t)
    first = [a["id"] for a in wait_alerts(d, 2)]
    # Replayed from the store: all, or what followed the given id.
    everything = Stream(d, last_event_id=0)
    assert [int(e["id"]) for e in everything.wait_events(2)] == first
    by_header = Stream(d, last_event_id=first[0])
    by_query = Stream(d, params={"since_id": first[0]})
    assert [int(e["id"]) for e in by_header.wait_events(1)] == first[1:]
    assert [int(e["id"]) for e in by_query.wait_events(1)] == first[1:]
    # Then live: the next episode follows with no gap and no duplicate.
    episode(d, t=t + 10)
    ids = [a["id"] for a in wait_alerts(d, 4)]
    for s, want in ((everything, ids), (by_header, ids[1:]), (by_query, ids[1:])):
        s.wait_events(len(want))
        assert s.ids() == want


def test_stream_replay_meets_live_events_without_gap_or_duplicate(outpost):
    """More events than one replay page (256), with more arriving while the
    replay runs: the client sees every stored id once, in order."""
    d = outpost
    assert d.put("/v1/rules/line1-hot", json=HOT).status_code == 201
    t = now_ms()
    sensors = [f"line1/s{i}" for i in range(150)]

    def wave(value, ts):
        r = d.post_readings([{"sensor": s, "value": value, "ts": ts} for s in sensors])
        assert r.status_code == 201, r.text
    wave(31, t)        # 150 firing
    wave(10, t + 1)    # 150 resolved
    wait_alerts(d, 300)
    s = Stream(d, last_event_id=0)
    for k in range(3):  # 300 more, while the replay is being read
        wave(31, t + 2 + 2 * k)
        wave(10, t + 3 + 2 * k)
    stored = [a["id"] for a in wait_alerts(d, 1200)]
    assert len(stored) == 1200
    s.wait_events(1200, scaled(30))
    assert s.ids() == stored


def test_stream_subscriber_cap(outpost):
    streams = [Stream(outpost) for _ in range(32)]
    assert all(s.r.status_code == 200 for s in streams)
    assert metric(outpost, "outpost_rules_stream_clients") == 32
    extra = outpost.get("/v1/alerts/stream", stream=True, timeout=scaled(10))
    assert_error(extra, 503, "too_many_streams")
    assert extra.headers.get("Retry-After")
    assert_error(outpost.get("/v1/alerts/stream", params={"since_id": "x"}), 400,
                 "invalid_query", field="since_id")


@pytest.mark.timeout(120)
def test_idle_stream_outlives_the_connection_timeout(outpost_factory):
    """http.timeout (1 s here) cuts idle connections, not an idle stream: a
    keepalive comment comes every 15 s, and the stream still delivers."""
    d = outpost_factory(config={"http": {"timeout": "1s"}})
    s = Stream(d)
    assert s.r.status_code == 200
    s.wait(lambda x: x.comments >= 1, scaled(25), "a keepalive comment")
    assert d.put("/v1/rules/line1-hot", json=HOT).status_code == 201
    episode(d)
    ids = [a["id"] for a in wait_alerts(d, 2)]
    s.wait_events(2)
    assert s.ids() == ids
    assert metric(d, "outpost_rules_stream_clients") == 1
