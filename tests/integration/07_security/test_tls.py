"""TLS on the daemon's port: HTTPS with curl, requests and openssl s_client;
TLS 1.3 by default, 1.2 only when allowed; mutual TLS (the handshake itself
refuses missing, expired, not-yet-valid, self-signed and foreign client
certs); the verified client subject reaching the router (cert_role); the
client side (`outpost tls probe`: CA and host-name verification, client
certs); bad TLS settings refused at start-up; slow clients on the TLS port.
"""

import json
import select
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests

from certs import pki, trust_session_ca  # noqa: F401 - fixtures
from outpost_proc import (SANITIZER_RE, assert_error, closed_by_peer, metric_value, raw_connect,
                          scaled, wait_until)

READING = {"sensor": "tls/s", "value": 1.5, "ts": 1_700_000_000_000}


@pytest.fixture(autouse=True)
def _session_ca_is_honoured(trust_session_ca):
    pass


def tls_config(pki, cert="server", client_ca=False, tls=None, auth=None, http=None):
    cfg = {"tls": {"cert": str(pki.dir / f"{cert}.pem"), "key": str(pki.dir / f"{cert}.key")}}
    if client_ca:
        cfg["tls"]["client_ca"] = str(pki.ca)
    cfg["tls"].update(tls or {})
    if auth:
        cfg["auth"] = auth
    if http:
        cfg["http"] = http
    return cfg


@pytest.fixture
def tls_node(outpost_factory, pki):
    d = outpost_factory(config=tls_config(pki), ca=pki.ca)
    assert d.scheme == "https", d.stderr()
    assert "listening on https://127.0.0.1:" in d.stderr()
    return d


@pytest.fixture
def mtls_node(outpost_factory, pki):
    """Mutual TLS; the client cert edge-01 maps to the admin role, so with
    it every route answers (and without it nothing does)."""
    d = outpost_factory(config=tls_config(pki, client_ca=True,
                                          auth={"cert_role": "edge-01 admin"}),
                        ca=pki.ca, client_cert=pki.client_pair)
    assert d.scheme == "https"
    return d


def curl(*args, timeout=None):
    """curl -sS ... -w '\\n%{http_code}': returns (exit code, status, body, stderr)."""
    cmd = ["curl", "-sS", "--max-time", str(int(scaled(15))), "-w", "\n%{http_code}",
           *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout or scaled(30))
    body, _, code = r.stdout.rpartition("\n")
    return r.returncode, int(code or 0), body, r.stderr


def s_client(port, *args, request=None, timeout=None):
    """openssl s_client against the port. With request, sends it (the
    server closes after Connection: close, or on a refused handshake) and
    keeps reading to EOF (-ign_eof). Returns the CompletedProcess."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *map(str, args)]
    if request is not None:
        cmd.append("-ign_eof")
    return subprocess.run(cmd, input=(request or b""), capture_output=True,
                          timeout=timeout or scaled(30))


GET_SENSORS = b"GET /v1/sensors HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def probe(bin, port, *args, host="127.0.0.1"):
    r = subprocess.run([str(bin), "tls", "probe", f"{host}:{port}", *map(str, args)],
                       capture_output=True, text=True, timeout=scaled(30))
    assert not SANITIZER_RE.search(r.stderr), r.stderr
    return r.returncode, r.stdout, r.stderr


def client_ctx(pki, cert_pair=None, max_version=None):
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert_pair:
        ctx.load_cert_chain(*map(str, cert_pair))
    if max_version:
        ctx.maximum_version = max_version
    return ctx


# ---- HTTPS -----------------------------------------------------------------

def test_https_with_requests(tls_node):
    d = tls_node
    assert d.base.startswith("https://")
    r = d.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = d.post_readings(READING)
    assert r.status_code == 201, r.text
    assert r.json() == {"accepted": 1}
    assert d.fetch_all("tls/s") == [(READING["ts"], READING["value"])]


def test_https_with_curl(tls_node, pki):
    d = tls_node
    for host in ("127.0.0.1", "localhost"):
        rc, st, body, err = curl("--cacert", pki.ca, f"https://{host}:{d.port}/healthz")
        assert (rc, st) == (0, 200), err
        assert json.loads(body) == {"status": "ok"}
    rc, st, body, err = curl("--cacert", pki.ca, "-H", "Content-Type: application/json",
                             "--data-binary", json.dumps(READING),
                             f"https://localhost:{d.port}/v1/readings")
    assert (rc, st) == (0, 201), (body, err)
    assert json.loads(body) == {"accepted": 1}
    # curl verifies the chain: with another CA it must refuse the server.
    rc, st, _, err = curl("--cacert", pki.ca2, f"https://localhost:{d.port}/healthz")
    assert rc != 0 and st == 0, err


def test_plain_http_to_tls_port_gets_no_http_answer(tls_node):
    d = tls_node
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{d.port}/healthz", timeout=scaled(10))
    s = raw_connect(d.port)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        closed, data = closed_by_peer(s, scaled(10))
    finally:
        s.close()
    assert closed, "a plain-HTTP request on the TLS port left the connection open"
    assert b"HTTP/" not in data, f"plain HTTP was answered on the TLS port: {data[:200]!r}"
    assert d.get("/healthz").status_code == 200


def test_tls12_refused_by_default(tls_node, pki):
    d = tls_node
    rc, st, _, err = curl("--cacert", pki.ca, "--tls-max", "1.2",
                          f"https://localhost:{d.port}/healthz")
    assert rc != 0 and st == 0, f"a TLS 1.2-only client was served by default: rc={rc} {st}"
    ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises((ssl.SSLError, OSError)):
        with socket.create_connection(("127.0.0.1", d.port), timeout=scaled(10)) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                if not s.recv(100):
                    raise OSError("closed")
    assert d.get("/healthz").status_code == 200


def test_tls12_accepted_with_min_version_12(outpost_factory, pki):
    d = outpost_factory(config=tls_config(pki, tls={"min_version": "1.2"}), ca=pki.ca)
    rc, st, body, err = curl("--cacert", pki.ca, "--tls-max", "1.2",
                             f"https://localhost:{d.port}/healthz")
    assert (rc, st) == (0, 200), err
    ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2)
    with socket.create_connection(("127.0.0.1", d.port), timeout=scaled(10)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() == "TLSv1.2"
    # TLS 1.3 clients still get 1.3.
    with socket.create_connection(("127.0.0.1", d.port), timeout=scaled(10)) as raw:
        with client_ctx(pki).wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() == "TLSv1.3"


def test_openssl_s_client_sees_tls13_and_a_verified_chain(tls_node, pki):
    r = s_client(tls_node.port, "-verify_return_error", "-CAfile", pki.ca,
                 "-servername", "localhost")
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, out
    assert "TLSv1.3" in out, out
    assert "Verify return code: 0 (ok)" in out, out


# ---- mutual TLS --------------------------------------------------------------

def test_mtls_valid_client_cert_is_accepted(mtls_node, pki):
    d = mtls_node
    r = d.get("/v1/sensors")
    assert r.status_code == 200, r.text
    assert d.post_readings(READING).status_code == 201
    rc, st, body, err = curl("--cacert", pki.ca, "--cert", pki.client, "--key", pki.client_key,
                             f"https://localhost:{d.port}/v1/sensors")
    assert (rc, st) == (0, 200), err
    assert [s["sensor"] for s in json.loads(body)["sensors"]] == ["tls/s"]
    r = s_client(d.port, "-verify_return_error", "-CAfile", pki.ca, "-cert", pki.client,
                 "-key", pki.client_key, "-quiet", request=GET_SENSORS)
    out = r.stdout.decode(errors="replace")
    assert out.startswith("HTTP/1.1 200"), (out, r.stderr[-2000:])
    assert '"tls/s"' in out


@pytest.mark.parametrize("which", ["none", "expired", "notyet", "selfsigned", "wrongca"])
def test_mtls_bad_client_cert_is_refused_in_the_handshake(mtls_node, pki, which):
    d = mtls_node
    certargs = [] if which == "none" else ["--cert", pki.dir / f"{which}.pem",
                                           "--key", pki.dir / f"{which}.key"]
    rc, st, body, err = curl("--cacert", pki.ca, *certargs,
                             f"https://localhost:{d.port}/v1/sensors")
    assert rc != 0 and st == 0, f"{which}: got HTTP {st} {body!r}"
    # /healthz is public, but the handshake comes first: no answer either.
    rc, st, body, err = curl("--cacert", pki.ca, *certargs, f"https://localhost:{d.port}/healthz")
    assert rc != 0 and st == 0, f"{which}: got HTTP {st} {body!r} on /healthz"

    sargs = [] if which == "none" else ["-cert", pki.dir / f"{which}.pem",
                                        "-key", pki.dir / f"{which}.key"]
    r = s_client(d.port, "-CAfile", pki.ca, "-quiet", *sargs, request=GET_SENSORS)
    assert b"HTTP/" not in r.stdout, f"{which}: s_client got an HTTP answer: {r.stdout[:300]!r}"

    with pytest.raises(requests.RequestException):
        with d.new_session() as s:
            s.cert = None if which == "none" else tuple(str(p) for p in certargs[1::2])
            s.get(d.url("/v1/sensors"), timeout=scaled(10))
    # The daemon is unharmed and keeps serving the good client.
    assert d.get("/v1/sensors").status_code == 200


def test_refused_handshakes_are_counted(mtls_node, pki):
    """libmicrohttpd reports no failed handshake; connections closed before
    any request completed are counted instead."""
    d = mtls_node
    name = "outpost_http_connections_unused_total"
    before = metric_value(d.metrics(), name)
    for which in ("selfsigned", "wrongca"):
        rc, st, _, _ = curl("--cacert", pki.ca, "--cert", pki.dir / f"{which}.pem",
                            "--key", pki.dir / f"{which}.key",
                            f"https://localhost:{d.port}/v1/sensors")
        assert rc != 0 and st == 0
    wait_until(lambda: metric_value(d.metrics(), name) >= before + 2, scaled(10),
               what=f"{name} to count the refused handshakes")


def test_server_cert_is_not_a_client_cert(outpost_factory, pki):
    """A certificate issued for server authentication only (another node's,
    from the same CA) is refused as a client certificate in the handshake,
    even with its CN mapped to a role (the key-purpose check)."""
    d = outpost_factory(config=tls_config(pki, client_ca=True,
                                          auth={"cert_role": "localhost admin"}),
                        ca=pki.ca, client_cert=pki.client_pair)
    rc, st, body, err = curl("--cacert", pki.ca, "--cert", pki.server, "--key", pki.server_key,
                             f"https://localhost:{d.port}/v1/devices")
    assert rc != 0 and st == 0, f"a server certificate got HTTP {st} {body!r}"


def test_client_ca_alone_grants_no_role(outpost_factory, pki):
    """With tls.client_ca and no cert_role or token, a verified client is
    identified but has no role: 401 on every non-public route."""
    d = outpost_factory(config=tls_config(pki, client_ca=True), ca=pki.ca,
                        client_cert=pki.client_pair)
    assert d.get("/healthz").status_code == 200
    assert_error(d.get("/v1/sensors"), 401, "unauthorized")
    assert_error(d.delete("/v1/devices/x"), 401, "unauthorized")


def test_verified_cert_subject_reaches_the_router(outpost_factory, pki):
    """cert_role maps the verified CN to a role: edge-01 (read) may read but
    not ingest; a valid cert whose CN is mapped to nothing gets 401."""
    d = outpost_factory(config=tls_config(pki, client_ca=True,
                                          auth={"cert_role": "edge-01 read"}),
                        ca=pki.ca, client_cert=pki.client_pair)
    r = d.get("/v1/sensors")
    assert r.status_code == 200, r.text
    assert_error(d.post_readings(READING), 403, "forbidden")
    assert d.get("/healthz").status_code == 200
    # edge-02: the handshake succeeds (same CA), but no role is mapped.
    with d.new_session() as s:
        s.cert = tuple(map(str, pki.client2_pair))
        r = s.get(d.url("/v1/sensors"), timeout=scaled(10))
    assert_error(r, 401, "unauthorized")
    assert r.headers.get("WWW-Authenticate", "").startswith('Bearer realm="outpost"')
    assert d.fetch_all("tls/s") == []


# ---- outpost tls probe (the client side) ------------------------------------

def test_probe_verifies_the_server_name(outpost_factory, outpost_bin, pki):
    d = outpost_factory(config=tls_config(pki, cert="other"), ca=pki.ca, start=False)
    # The readiness poll would verify the name 127.0.0.1 against other.example.
    d.start(wait_ready=False)
    wait_until(lambda: probe(outpost_bin, d.port, "--ca", pki.ca, "--servername",
                             "other.example", "--path", "/readyz")[1].startswith("HTTP/1.1 200"),
               scaled(20), what="/readyz over TLS")
    rc, out, err = probe(outpost_bin, d.port, "--ca", pki.ca, "--servername", "other.example")
    assert rc == 0, (out, err)
    assert out.startswith("HTTP/1.1 200"), out
    # Without --servername the HOST (127.0.0.1) is the name to verify: no match.
    rc, out2, err2 = probe(outpost_bin, d.port, "--ca", pki.ca)
    assert rc == 1 and "HTTP/" not in out2, (rc, out2, err2)
    rc, out, err = probe(outpost_bin, d.port, "--ca", pki.ca, "--servername", "localhost")
    assert rc == 1, (rc, out, err)
    assert "HTTP/" not in out
    assert "localhost" in err or "other.example" in err, \
        f"the name-mismatch message names neither the expected nor the certificate's name: {err!r}"


def test_probe_verifies_the_ca(tls_node, outpost_bin, pki):
    d = tls_node
    rc, out, err = probe(outpost_bin, d.port, "--ca", pki.ca)
    assert rc == 0 and out.startswith("HTTP/1.1 200"), (rc, out, err)
    rc, out, err = probe(outpost_bin, d.port, "--ca", pki.ca, host="localhost")
    assert rc == 0 and out.startswith("HTTP/1.1 200"), (rc, out, err)
    rc, out, err = probe(outpost_bin, d.port, "--ca", pki.ca2)
    assert rc == 1 and "HTTP/" not in out, (rc, out, err)
    assert err.strip(), "a refused server certificate must be explained"
    # A plain-HTTP server (not TLS at all): exit 1 with an explanation.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        s.settimeout(scaled(20))

        def plain_http():
            try:
                c, _ = s.accept()
            except OSError:
                return
            with c:
                c.recv(4096)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        t = threading.Thread(target=plain_http, daemon=True)
        t.start()
        rc, out, err = probe(outpost_bin, s.getsockname()[1], "--ca", pki.ca)
        t.join(scaled(20))
    assert rc == 1 and "HTTP/" not in out, (rc, out, err)
    assert err.strip()


def test_probe_with_a_client_cert(mtls_node, outpost_bin, pki):
    d = mtls_node
    rc, out, err = probe(outpost_bin, d.port, "--ca", pki.ca, "--cert", pki.client,
                         "--key", pki.client_key, "--path", "/v1/sensors")
    assert rc == 0 and out.startswith("HTTP/1.1 200"), (rc, out, err)
    rc, out, err = probe(outpost_bin, d.port, "--ca", pki.ca)
    assert rc == 1 and "HTTP/" not in out, (rc, out, err)
    rc, out, err = probe(outpost_bin, d.port, "--ca", pki.ca, "--cert", pki.wrongca,
                         "--key", pki.wrongca_key)
    assert rc == 1 and "HTTP/" not in out, (rc, out, err)


def test_probe_with_a_token(outpost_factory, outpost_bin, pki):
    tok = subprocess.run([str(outpost_bin), "token", "create", "--role", "read"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    line = next(x for x in tok if x.startswith("token = "))[len("token = "):]
    d = outpost_factory(config=tls_config(pki, auth={"token": line}), ca=pki.ca, token=tok[0])
    rc, out, err = probe(outpost_bin, d.port, "--ca", pki.ca, "--path", "/v1/sensors",
                         "--token", tok[0])
    assert rc == 0 and out.startswith("HTTP/1.1 200"), (rc, out, err)
    # A 401 is still an HTTP answer: exit 0, the status line says 401.
    rc, out, err = probe(outpost_bin, d.port, "--ca", pki.ca, "--path", "/v1/sensors")
    assert rc == 0 and out.startswith("HTTP/1.1 401"), (rc, out, err)


# ---- bad TLS settings -----------------------------------------------------------

def run_expect_exit2(d):
    r = subprocess.run(d.command(), capture_output=True, text=True, timeout=scaled(20),
                       cwd=d.workdir)
    assert r.returncode == 2, f"exit {r.returncode}, want 2; stderr:\n{r.stderr}"
    assert not SANITIZER_RE.search(r.stderr), r.stderr
    return r.stderr


def test_cert_without_key_is_refused(outpost_factory, pki):
    d = outpost_factory(config={"tls": {"cert": str(pki.server)}}, start=False)
    err = run_expect_exit2(d)
    assert "tls.key" in err, err
    assert str(pki.server) in err or str(d.config_path) in err, \
        f"the message names neither the cert file nor the config file: {err!r}"


def test_key_without_cert_is_refused(outpost_factory, pki):
    d = outpost_factory(config={"tls": {"key": str(pki.server_key)}}, start=False)
    err = run_expect_exit2(d)
    assert "tls.cert" in err, err
    assert str(pki.server_key) in err or str(d.config_path) in err, \
        f"the message names neither the key file nor the config file: {err!r}"


def test_key_not_matching_cert_is_refused(outpost_factory, pki):
    d = outpost_factory(config={"tls": {"cert": str(pki.server), "key": str(pki.other_key)}},
                        start=False)
    err = run_expect_exit2(d)
    assert str(pki.server) in err or str(pki.other_key) in err, err


@pytest.mark.parametrize("what", ["missing", "directory", "garbage"])
def test_unreadable_client_ca_is_refused(outpost_factory, pki, tmp_path, what):
    ca = tmp_path / f"ca-{what}.pem"
    if what == "directory":
        ca.mkdir()
    elif what == "garbage":
        ca.write_text("not a certificate\n")
    d = outpost_factory(config=tls_config(pki, tls={"client_ca": str(ca)}), start=False)
    err = run_expect_exit2(d)
    assert str(ca) in err, err


@pytest.mark.parametrize("which", ["cert", "key"])
def test_missing_cert_or_key_file_is_refused(outpost_factory, pki, tmp_path, which):
    cfg = tls_config(pki)
    cfg["tls"][which] = str(tmp_path / f"nope.{which}")
    d = outpost_factory(config=cfg, start=False)
    err = run_expect_exit2(d)
    assert str(tmp_path / f"nope.{which}") in err, err


def test_bad_min_version_is_refused(outpost_factory, pki):
    d = outpost_factory(config=tls_config(pki, tls={"min_version": "1.1"}), start=False)
    err = run_expect_exit2(d)
    assert "min_version" in err, err


# ---- slow clients on the TLS port --------------------------------------------

@pytest.fixture
def slow_tls_node(outpost_factory, pki):
    return outpost_factory(config=tls_config(pki, http={"timeout": "1s"}), ca=pki.ca)


def tls_connect(pki, port):
    raw = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client_ctx(pki).wrap_socket(raw, server_hostname="localhost")


def peer_closed(sock, wait):
    """True once the peer closed (or reset) sock within `wait` seconds.
    Data (e.g. a 408) is read past; a close must follow it."""
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return True
        except (socket.timeout, TimeoutError):
            return False
        except (ssl.SSLError, ConnectionError, OSError):
            return True


def trickle(sock, data, gap, limit):
    """Sends data one byte per gap seconds (TLS or plain socket); returns the
    seconds until the server closed the connection, or None within limit."""
    t0 = time.monotonic()
    for i in range(len(data)):
        if time.monotonic() - t0 > limit:
            return None
        try:
            sock.sendall(data[i:i + 1])
        except (ssl.SSLError, OSError):
            return time.monotonic() - t0
        if isinstance(sock, ssl.SSLSocket):
            if peer_closed(sock, gap):
                return time.monotonic() - t0
        else:
            r, _, _ = select.select([sock], [], [], gap)
            if r:
                closed, _ = closed_by_peer(sock, scaled(5))
                if closed:
                    return time.monotonic() - t0
    return None


def client_hello():
    """The bytes of a TLS ClientHello, to send by hand."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_tls_slowloris_headers_are_cut_off(slow_tls_node, pki):
    """After a complete handshake, headers dribbled a byte every 0.3 s (each
    gap under http.timeout = 1 s) must still be cut off: the timeout bounds
    the whole request, over TLS as over plain TCP."""
    d = slow_tls_node
    s = tls_connect(pki, d.port)
    assert s.version() == "TLSv1.3"
    header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10000 + b"\r\n\r\n"
    try:
        took = trickle(s, header, gap=0.3, limit=scaled(8))
    finally:
        s.close()
    assert took is not None, "slow headers over TLS were never cut off"
    assert d.get("/healthz").status_code == 200


def test_tls_slow_handshake_is_cut_off(slow_tls_node):
    """A ClientHello dribbled a byte every 0.3 s is cut off too."""
    d = slow_tls_node
    hello = client_hello()
    s = raw_connect(d.port)
    try:
        took = trickle(s, hello, gap=0.3, limit=scaled(8))
    finally:
        s.close()
    assert took is not None, "a dribbled ClientHello was never cut off"
    assert d.get("/healthz").status_code == 200


def test_tls_connect_and_say_nothing_is_cut_off(slow_tls_node):
    d = slow_tls_node
    s = raw_connect(d.port)
    try:
        closed, data = closed_by_peer(s, scaled(10))
    finally:
        s.close()
    assert closed, "a TCP connection that never started the handshake was not closed"
    assert d.get("/healthz").status_code == 200


def test_slow_tls_clients_do_not_block_others(slow_tls_node, pki):
    """Stalled clients in each phase -- silent before the handshake, half a
    ClientHello, handshaken but mid-headers, mid-body -- while others are
    served promptly."""
    d = slow_tls_node
    hello = client_hello()
    held = []
    try:
        for _ in range(5):
            held.append(raw_connect(d.port))
        for _ in range(5):
            s = raw_connect(d.port)
            s.sendall(hello[:len(hello) // 2])
            held.append(s)
        for _ in range(5):
            s = tls_connect(pki, d.port)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        for _ in range(5):
            s = tls_connect(pki, d.port)
            s.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n[")
            held.append(s)
        errors = []

        def client(i):
            try:
                with d.new_session() as sess:
                    for j in range(10):
                        r = sess.post(d.url("/v1/readings"), timeout=scaled(5),
                                      json={"sensor": "others", "value": j, "ts": i * 100 + j})
                        if r.status_code != 201:
                            errors.append(f"{i}/{j}: {r.status_code} {r.text}")
            except Exception as e:  # noqa: BLE001
                errors.append(f"{i}: {e!r}")
        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(scaled(30))
        took = time.monotonic() - t0
        assert not errors, errors
        assert took < scaled(5), f"40 requests took {took:.1f}s beside stalled TLS clients"
    finally:
        for s in held:
            s.close()
    assert len(d.fetch_all("others")) == 40
