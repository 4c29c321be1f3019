"""Limits against abuse: slow clients are cut off after http.timeout, the
connection cap holds, oversized bodies get 413, garbage gets a 4xx -- and
none of it takes the process down or stops it serving others."""

import http.client
import select
import socket
import threading
import time

import pytest

from outpost_proc import (assert_error, closed_by_peer, metric_value, raw_connect, raw_exchange,
                          raw_post_large, read_response, scaled, wait_until)


def alive(d):
    assert d.running, f"daemon died; stderr:\n{d.stderr()[-3000:]}"
    r = d.get("/healthz")
    assert r.status_code == 200
    r = d.post_readings({"sensor": "alive", "value": 1})
    assert r.status_code == 201, r.text


@pytest.fixture
def short_timeout(outpost_factory):
    return outpost_factory(config={"http": {"timeout": "1s"}})


def test_silent_client_is_cut_off(short_timeout):
    d = short_timeout
    s = raw_connect(d.port)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finish
        closed, _ = closed_by_peer(s, scaled(20))
        assert closed, "a client that went silent mid-headers was not cut off"
    finally:
        s.close()
    alive(d)


def test_connect_and_say_nothing_is_cut_off(short_timeout):
    d = short_timeout
    s = raw_connect(d.port)
    try:
        closed, _ = closed_by_peer(s, scaled(20))
        assert closed, "an idle connection that never sent a byte was not closed"
    finally:
        s.close()
    alive(d)


def trickle_until_closed(sock, data, gap, limit):
    """Sends data one byte per `gap` seconds; returns the seconds until the
    server closed the connection, or None if it never did within limit."""
    t0 = time.monotonic()
    for i in range(len(data)):
        if time.monotonic() - t0 > limit:
            return None
        try:
            sock.sendall(data[i:i + 1])
        except OSError:
            return time.monotonic() - t0
        r, _, _ = select.select([sock], [], [], gap)
        if r:
            try:
                if not sock.recv(4096):
                    return time.monotonic() - t0
            except OSError:
                return time.monotonic() - t0
            # Some servers answer 408 first; the close follows.
            closed, _ = closed_by_peer(sock, scaled(5))
            if closed:
                return time.monotonic() - t0
    return None


def test_slowloris_headers_are_cut_off(short_timeout):
    """Headers that dribble in a byte at a time, each gap shorter than
    http.timeout, must still be cut off: http.timeout bounds the time to
    receive the request, not just the silence between bytes."""
    d = short_timeout
    s = raw_connect(d.port)
    header = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 10000 + b"\r\n\r\n"
    try:
        took = trickle_until_closed(s, header, gap=0.3, limit=scaled(8))
    finally:
        s.close()
    assert took is not None, "slow headers were never cut off"
    alive(d)


def test_slow_body_is_cut_off(short_timeout):
    d = short_timeout
    s = raw_connect(d.port)
    try:
        s.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n[{\"sensor\":\"slow\"")
        closed, _ = closed_by_peer(s, scaled(20))
        assert closed, "a body that stopped arriving was not cut off"
    finally:
        s.close()
    assert d.fetch_all("slow") == []
    alive(d)


def test_slow_clients_do_not_block_others(short_timeout):
    d = short_timeout
    slow = [raw_connect(d.port) for _ in range(20)]
    try:
        for s in slow:
            s.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n[")
        for i in range(50):
            r = d.post_readings({"sensor": "others", "value": i, "ts": i})
            assert r.status_code == 201
    finally:
        for s in slow:
            s.close()
    assert len(d.fetch_all("others")) == 50


@pytest.mark.timeout(120)
def test_connection_cap(outpost_factory):
    d = outpost_factory(config={"http": {"max_connections": 4, "timeout": "60s"}})
    held = []
    try:
        for _ in range(4):
            s = raw_connect(d.port)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _ = read_response(s)
            assert status == 200
            held.append(s)
        # A fifth connection is refused: closed or reset without being served,
        # or answered 503; it must not be served normally.
        extra = raw_connect(d.port)
        try:
            extra.settimeout(scaled(5))
            try:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = extra.recv(4096)
            except socket.timeout:
                data = b"(no answer)"
            except OSError:
                data = b""
            assert not data.startswith(b"HTTP/1.1 200"), "connection over the cap was served"
            if data.startswith(b"HTTP/"):
                assert data.split()[1] == b"503", data[:200]
        finally:
            extra.close()
        assert d.running
    finally:
        for s in held:
            s.close()

    # Once the held connections are gone, new ones are served again.
    def served():
        try:
            st, _, _ = raw_exchange(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                             b"Connection: close\r\n\r\n", timeout=scaled(5))
            return st == 200
        except OSError:
            return False
    wait_until(served, scaled(30), interval=0.1, what="service after the held connections closed")
    alive(d)


def test_declared_oversized_body_is_rejected_early(outpost):
    """A Content-Length over http.max_body is refused from the headers alone,
    without waiting for (or buffering) the body."""
    s = raw_connect(outpost.port)
    try:
        s.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000000000000\r\n\r\n[")
        s.settimeout(scaled(10))
        assert_error(read_response(s), 413, "body_too_large")
    finally:
        s.close()
    alive(outpost)


def test_oversized_bodies_in_parallel(outpost_factory):
    d = outpost_factory(sets=["http.max_body=64KiB"])
    body = b"[" + b",".join([b'{"sensor":"par","value":1}'] * 20000) + b"]"
    results = []

    def one():
        try:
            results.append(raw_post_large(d.port, "/v1/readings", body)[0])
        except OSError as e:
            results.append(repr(e))
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(60))
    assert results == [413] * 8, results
    assert d.fetch_all("par") == []
    alive(d)


@pytest.mark.parametrize("raw", [
    b"BLAH\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello
    b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
    b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\n" + b"X-H: v\r\n" * 5000 + b"\r\n",
], ids=["no-version", "http-9.9", "bad-header", "tls-hello", "negative-length",
        "bad-chunk", "long-url", "many-headers"])
def test_garbage_requests(short_timeout, raw):
    outpost = short_timeout
    s = raw_connect(outpost.port)
    try:
        try:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        closed, data = closed_by_peer(s, scaled(20))
    finally:
        s.close()
    if data.startswith(b"HTTP/"):
        status = int(data.split()[1])
        # A 4xx, or 505 for an HTTP version it does not speak; never a 2xx or 500.
        assert 400 <= status < 500 or status == 505, data[:200]
    alive(outpost)


@pytest.mark.parametrize("lengths", [(0, 10), (10, 0)], ids=["short-first", "long-first"])
def test_conflicting_content_length_is_400(short_timeout, lengths):
    """Two different Content-Length headers are a request-smuggling vector
    behind a proxy; RFC 9112 6.3 says the request is an error (400)."""
    d = short_timeout
    body = b'{"sensor":"smuggle","value":1,"ts":1}'
    a, b = (len(body) + x for x in lengths)
    s = raw_connect(d.port)
    try:
        s.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (a, b) + body)
        s.settimeout(scaled(10))
        try:
            status = read_response(s)[0]
        except (OSError, http.client.HTTPException) as e:
            status = f"no answer ({e!r})"
    finally:
        s.close()
    assert status == 400, status
    assert d.fetch_all("smuggle") == []
    alive(d)


@pytest.mark.parametrize("body", [
    b"[" * 200000,
    b'{"a":' * 100000,
    b"[" * 100000 + b"]" * 100000,
    b'[{"sensor":"deep","value":1,"ts":1,"x":' + b"[" * 50000 + b"]" * 50000 + b"}]",
    b'"' + b"\\u0000" * 100000 + b'"',
    b"[" + b"1e999999," * 50000 + b"1]",
], ids=["open-arrays", "open-objects", "deep-arrays", "deep-in-reading", "escapes", "huge-exp"])
def test_hostile_json(outpost, body):
    r = outpost.post("/v1/readings", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 413, 422), (r.status_code, r.text[:300])
    assert_error(r, r.status_code, ("invalid_json", "invalid_reading", "body_too_large",
                                    "batch_too_large"))
    alive(outpost)


def test_many_connections_churn(short_timeout):
    """Hundreds of short connections, half of them abandoned mid-request."""
    d = short_timeout
    for i in range(300):
        s = raw_connect(d.port)
        if i % 2:
            s.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[")
        s.close()
    alive(d)


def test_bodies_in_flight_share_one_budget(outpost_factory):
    """http.max_inflight caps the body bytes held over all connections: a
    body that would go past it gets 503 + Retry-After (and nothing of it is
    stored), the bodies already held complete normally, and once they are
    done the budget is free again."""
    d = outpost_factory(config={"http": {"max_inflight": "64KiB"}})

    def readings(sensor, n):
        return ("[" + ",".join(f'{{"sensor":"{sensor}","value":{i},"ts":{i}}}'
                               for i in range(n)) + "]").encode()

    first = readings("held", 1200)     # ~45 KB
    second = readings("refused", 900)  # ~33 KB: together over 64 KiB
    head = ("POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: {}\r\n\r\n")
    a = raw_connect(d.port)
    b = raw_connect(d.port)
    try:
        # All of the first body but its last byte: held by the server.
        a.sendall(head.format(len(first)).encode() + first[:-1])
        wait_until(lambda: (metric_value(d.metrics(), "outpost_http_body_bytes") or 0)
                   >= len(first) - 1, scaled(10), what="the first body to be held")
        b.sendall(head.format(len(second)).encode() + second)
        b.settimeout(scaled(10))
        status, headers, body = read_response(b)
        assert_error((status, headers, body), 503, "overloaded")
        assert "retry-after" in headers
        a.sendall(first[-1:])
        a.settimeout(scaled(10))
        assert read_response(a)[0] == 201
    finally:
        a.close()
        b.close()
    assert len(d.fetch_all("held")) == 1200
    assert d.fetch_all("refused") == []
    wait_until(lambda: metric_value(d.metrics(), "outpost_http_body_bytes") == 0, scaled(10),
               what="the body budget to be free")
    r = d.post("/v1/readings", data=second, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    alive(d)


def test_request_head_size(outpost):
    """A request head of 10 KB (a long token, say) is served; one of 40 KB
    gets 431 from the HTTP library, and the daemon goes on serving."""
    reading = {"sensor": "head/a", "value": 1.5}
    r = outpost.post("/v1/readings", json=reading, headers={"X-Padding": "p" * 10_000})
    assert r.status_code == 201, r.text
    r = outpost.post("/v1/readings", json=reading, headers={"X-Padding": "p" * 40_000})
    assert r.status_code == 431
    rows = outpost.fetch_all("head/a")
    assert [v for _, v in rows] == [1.5], rows  # only the first was stored
    alive(outpost)
