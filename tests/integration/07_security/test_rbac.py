"""Tokens and roles. The RBAC matrix is generated from `outpost routes`, so a
route cannot be added without deciding its role: every route x {no token,
wrong token, ingest, read, admin, node} gets the answer its role implies.
Also: the 401/403/429 bodies and headers, auth before body checks, the
failure limiter, the auth-failure metrics, the open node when no credential
is configured, `outpost token create` and bad [auth] lines.
"""

import re
import socket
import subprocess

import pytest
import requests

from outpost_proc import (SANITIZER_RE, Outpost, StartError, assert_error, default_bin,
                          metric_value, raw_exchange, raw_post_large, read_response, scaled,
                          wait_until)

ROLES = ("public", "ingest", "read", "admin", "node")
TOKEN_ROLES = ("ingest", "read", "admin", "node")
WRONG_TOKEN = "opt_" + "0" * 64
TOKEN_RE = re.compile(r"^opt_[0-9a-f]{64}$")
LINE_RE = re.compile(r"^token = ([A-Za-z0-9_.-]+) (ingest|read|admin|node) sha256:([0-9a-f]{64})$")


def list_routes(bin=None):
    r = subprocess.run([str(bin or default_bin()), "routes"], capture_output=True, text=True,
                       timeout=scaled(30))
    assert r.returncode == 0, r.stderr
    return [tuple(line.split()) for line in r.stdout.splitlines() if line.strip()]


def _routes_for_collection():
    try:
        return list_routes()
    except Exception as e:  # noqa: BLE001 - reported by the test that uses it
        return [("ERROR", str(e), "unset")]


ROUTES = _routes_for_collection()


def token_create(*args, bin=None):
    r = subprocess.run([str(bin or default_bin()), "token", "create", *args],
                       capture_output=True, text=True, timeout=scaled(30))
    assert not SANITIZER_RE.search(r.stderr), r.stderr
    return r


def make_token(role, name=None, bin=None):
    """(token, config line value) from `outpost token create`."""
    r = token_create("--role", role, *(["--name", name] if name else []), bin=bin)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    line = next(x for x in lines if x.startswith("token = "))
    return lines[0], line[len("token = "):]


@pytest.fixture(scope="module")
def tokens(outpost_bin):
    return {role: make_token(role, name=f"t-{role}", bin=outpost_bin) for role in TOKEN_ROLES}


def auth_cfg(tokens, **extra):
    return {"auth": dict({"token": [line for _, line in tokens.values()]}, **extra)}


# ---- what to send to each route ------------------------------------------------

DEVICE = "rbac-dev"
QUERIES = {
    ("GET", "/v1/readings"): {"sensor": "rbac/s"},
    ("GET", "/v1/readings/aggregate"): {"sensor": "rbac/s"},
    ("POST", "/status"): {"device_id": DEVICE, "status": "on"},
    ("GET", "/v1/alerts"): {"state": "firing"},
}
BODIES = {
    ("POST", "/v1/readings"): {"sensor": "rbac/s", "value": 1.0},
    ("PUT", "/v1/devices/{id}"): {"status": "online", "attributes": {"fw": "1"}},
    ("POST", "/data"): {"id": "rbac_s", "value": 2.0},
    ("PUT", "/v1/rules/{id}"): {"kind": "threshold", "sensors": "rbac/*", "above": 100},
}


# Routes whose 200 body never ends (an event stream): only the status and
# headers of an allowed request are read.
STREAMS = {("GET", "/v1/alerts/stream")}


def send(d, method, pattern, token=None, session=None):
    path = pattern.replace("{id}", DEVICE)
    kw = {"params": QUERIES.get((method, pattern)), "timeout": scaled(30)}
    if method in ("POST", "PUT"):
        kw["json"] = BODIES.get((method, pattern), {})
    if token:
        kw["headers"] = {"Authorization": f"Bearer {token}"}
    streaming = (method, pattern) in STREAMS
    r = (session or requests).request(method, d.url(path), stream=streaming, **kw)
    if streaming and r.status_code == 200:
        r.close()
        r._content, r._content_consumed = b"", True  # r.text is "" instead of waiting forever
    return r


def allowed(token_role, route_role):
    return route_role == "public" or token_role == "admin" or token_role == route_role


def check_401(r, invalid):
    err = assert_error(r, 401, "unauthorized")
    want = 'Bearer realm="outpost", error="invalid_token"' if invalid else 'Bearer realm="outpost"'
    assert r.headers.get("WWW-Authenticate") == want, (r.headers, err)


# ---- the matrix --------------------------------------------------------------------

@pytest.fixture(scope="module")
def matrix_node(tmp_path_factory, outpost_bin, tokens):
    """One daemon for the whole matrix; max_failures is high so its 26-odd
    401s do not trip the limiter."""
    d = Outpost(tmp_path_factory.mktemp("rbac") / "matrix", bin=outpost_bin,
                config=auth_cfg(tokens, max_failures=100000, failure_window="1m"))
    d.start()
    yield d
    rc = d.stop(timeout=scaled(30))
    assert rc == 0, f"exit {rc} at teardown; stderr:\n{d.stderr()[-3000:]}"
    assert not d.sanitizer_reports(), d.sanitizer_reports()


def test_routes_have_a_known_role():
    assert ROUTES, "`outpost routes` listed nothing"
    for route in ROUTES:
        assert len(route) == 3, f"not 'METHOD PATTERN ROLE': {route!r}"
        method, pattern, role = route
        assert method in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"), route
        assert pattern.startswith("/"), route
        assert role in ROLES, f"{method} {pattern}: role {role!r} is not one of {ROLES}"
    assert len(set((m, p) for m, p, _ in ROUTES)) == len(ROUTES), "a route is listed twice"


def test_only_health_routes_are_public():
    """Making a route public is a security decision: this list changes with it."""
    public = sorted((m, p) for m, p, role in ROUTES if role == "public")
    assert public == [("GET", "/healthz"), ("GET", "/readyz")], public


@pytest.mark.parametrize("who", ["none", "wrong"] + list(TOKEN_ROLES))
@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_rbac_matrix(matrix_node, tokens, route, who):
    method, pattern, role = route
    d = matrix_node
    token = {"none": None, "wrong": WRONG_TOKEN}[who] if who in ("none", "wrong") \
        else tokens[who][0]
    r = send(d, method, pattern, token)
    what = f"{method} {pattern} (needs {role}) as {who}: {r.status_code} {r.text[:300]}"
    assert r.status_code != 429, what
    if role == "public":
        assert r.status_code not in (401, 403), what
        assert r.status_code < 500, what
    elif who == "none":
        assert r.status_code == 401, what
        check_401(r, invalid=False)
    elif who == "wrong":
        assert r.status_code == 401, what
        check_401(r, invalid=True)
    elif allowed(who, role):
        assert r.status_code not in (401, 403), what
        assert r.status_code < 500, what
    else:
        assert r.status_code == 403, what
        err = assert_error(r, 403, "forbidden")
        assert "WWW-Authenticate" not in r.headers, r.headers
        assert err["message"]


def test_allowed_requests_really_work(matrix_node, tokens):
    """The matrix only proves 'not 401/403'; here the allowed tokens do the
    real thing end to end."""
    d = matrix_node
    ing, rd, adm = (tokens[r][0] for r in ("ingest", "read", "admin"))
    r = send(d, "POST", "/v1/readings", ing)
    assert r.status_code == 201, r.text
    r = send(d, "PUT", "/v1/devices/{id}", ing)
    assert r.status_code == 200, r.text
    r = send(d, "GET", "/v1/devices/{id}", rd)
    assert r.status_code == 200 and r.json()["id"] == DEVICE, r.text
    r = send(d, "GET", "/v1/readings", rd)
    assert r.status_code == 200 and r.json()["readings"], r.text
    r = send(d, "GET", "/metrics", rd)
    assert r.status_code == 200 and "outpost_http_auth_failures_total" in r.text
    r = send(d, "DELETE", "/v1/devices/{id}", adm)
    assert r.status_code == 204, r.text


def test_no_auth_configured_every_route_is_open(outpost):
    routes = list_routes(outpost.bin)
    for method, pattern, role in routes:
        r = send(outpost, method, pattern)
        assert r.status_code not in (401, 403, 429), f"{method} {pattern}: {r.status_code} {r.text}"
        # A token is ignored when none is configured, even an unknown one.
        r = send(outpost, method, pattern, WRONG_TOKEN)
        assert r.status_code not in (401, 403, 429), f"{method} {pattern}: {r.status_code} {r.text}"
    assert "tokens required" not in outpost.stderr()


# ---- answers and ordering ---------------------------------------------------------

@pytest.fixture
def auth_node(outpost_factory, tokens):
    return outpost_factory(config=auth_cfg(tokens, max_failures=100000))


@pytest.mark.parametrize("header,invalid", [
    (None, False),
    ("Bearer " + WRONG_TOKEN, True),
    ("Bearer", True),
    ("Bearer ", True),
    ("Basic dXNlcjpwYXNz", True),
    ("bearer-ish opt_x", True),
    ("Bearer opt_" + "a" * 5000, True),
])
def test_401_bodies_and_www_authenticate(auth_node, header, invalid):
    h = {"Authorization": header} if header is not None else {}
    r = requests.get(auth_node.url("/v1/sensors"), headers=h, timeout=scaled(30))
    check_401(r, invalid)
    assert auth_node.running


def test_403_body(auth_node, tokens):
    r = send(auth_node, "POST", "/v1/readings", tokens["read"][0])
    err = assert_error(r, 403, "forbidden")
    assert "ingest" in err["message"], err
    r = send(auth_node, "GET", "/v1/sensors", tokens["node"][0])
    assert_error(r, 403, "forbidden")


def test_token_is_case_and_whitespace_exact(auth_node, tokens):
    tok = tokens["read"][0]
    for bad in (tok.upper(), tok[:-1], tok + "0", tok[4:]):
        r = requests.get(auth_node.url("/v1/sensors"), timeout=scaled(30),
                         headers={"Authorization": f"Bearer {bad}"})
        check_401(r, invalid=True)
    r = requests.get(auth_node.url("/v1/sensors"), timeout=scaled(30),
                     headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200


def test_auth_comes_before_body_checks(auth_node, tokens):
    d = auth_node
    # Bad Content-Type: 401 without a token, 403 with the wrong role, 415 when allowed.
    kw = {"data": b"x=1", "headers": {"Content-Type": "text/plain"}, "timeout": scaled(30)}
    check_401(requests.post(d.url("/v1/readings"), **kw), invalid=False)
    r = requests.post(d.url("/v1/readings"), **dict(kw, headers={
        "Content-Type": "text/plain", "Authorization": f"Bearer {tokens['read'][0]}"}))
    assert_error(r, 403, "forbidden")
    r = requests.post(d.url("/v1/readings"), **dict(kw, headers={
        "Content-Type": "text/plain", "Authorization": f"Bearer {tokens['ingest'][0]}"}))
    assert_error(r, 415, "unsupported_media_type")
    # No length at all: 401, not 411.
    st, h, body = raw_exchange(d.port, b"POST /v1/readings HTTP/1.1\r\nHost: x\r\n"
                                       b"Content-Type: application/json\r\n\r\n")
    assert_error((st, h, body), 401, "unauthorized")
    # A declared 100 MB body: 401 before any of it is read, not 413.
    st, h, body = raw_post_large(d.port, "/v1/readings", b"[" * 1000,
                                 content_length=100 * 1024 * 1024)
    assert_error((st, h, body), 401, "unauthorized")
    # Malformed JSON without a token: 401, not 400.
    r = requests.post(d.url("/v1/readings"), data=b"{nope", timeout=scaled(30),
                      headers={"Content-Type": "application/json"})
    check_401(r, invalid=False)
    assert d.running


def test_routing_comes_before_auth(auth_node):
    d = auth_node
    r = requests.get(d.url("/no/such/path"), timeout=scaled(30))
    assert_error(r, 404, "not_found")
    r = requests.get(d.url("/v1/devices/a/b"), timeout=scaled(30))
    assert r.status_code == 404
    r = requests.patch(d.url("/v1/readings"), timeout=scaled(30))
    assert_error(r, 405, "method_not_allowed")
    assert "Allow" in r.headers


# ---- the failure limiter -------------------------------------------------------------

def test_too_many_failures_get_429(outpost_factory, tokens):
    d = outpost_factory(config=auth_cfg(tokens, max_failures=3, failure_window="3s"))
    admin = tokens["admin"][0]

    def get(path, token=None):
        h = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(d.url(path), headers=h, timeout=scaled(30))

    assert get("/v1/sensors", admin).status_code == 200
    check_401(get("/v1/sensors"), invalid=False)
    check_401(get("/v1/sensors", WRONG_TOKEN), invalid=True)
    check_401(get("/metrics"), invalid=False)
    # Three failures: the fourth attempt from this address is refused outright ...
    r = get("/v1/sensors")
    assert_error(r, 429, "rate_limited")
    retry = r.headers.get("Retry-After")
    assert retry is not None and retry.isdigit() and 1 <= int(retry) <= 3, r.headers
    # ... as is every non-public route, even with a good token ...
    assert_error(get("/v1/sensors", admin), 429, "rate_limited")
    assert_error(get("/v1/readings?sensor=x", WRONG_TOKEN), 429, "rate_limited")
    r = requests.post(d.url("/v1/readings"), json={"sensor": "s", "value": 1},
                      headers={"Authorization": f"Bearer {tokens['ingest'][0]}"},
                      timeout=scaled(30))
    assert_error(r, 429, "rate_limited")
    # ... but the public routes still answer ...
    assert get("/healthz").status_code == 200
    assert get("/readyz").status_code == 200
    # ... and another address is not limited.
    st, h, body = from_address("127.0.0.2", d.port,
                               b"GET /v1/sensors HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               b"Authorization: Bearer " + admin.encode() + b"\r\n\r\n")
    assert st == 200, (st, body)
    # The limit lasts until the window ends, then good tokens work again.
    wait_until(lambda: get("/v1/sensors", admin).status_code == 200, scaled(10),
               interval=0.2, what="the failure window to end")
    m = get("/metrics", admin).text
    assert metric_value(m, "outpost_http_auth_failures_total", reason="rate_limited") >= 4


def from_address(src, port, data):
    """One raw HTTP exchange from source address src (another loopback address)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(10),
                                 source_address=(src, 0))
    with s:
        s.sendall(data)
        return read_response(s)


def test_403s_do_not_count_as_failures(outpost_factory, tokens):
    """The limiter counts 401s (guessing tokens), not a known token calling a
    route its role lacks."""
    d = outpost_factory(config=auth_cfg(tokens, max_failures=3, failure_window="1m"))
    rd = tokens["read"][0]
    for _ in range(10):
        assert_error(send(d, "POST", "/v1/readings", rd), 403, "forbidden")
    assert send(d, "GET", "/v1/sensors", rd).status_code == 200


def test_auth_failure_metrics(auth_node, tokens):
    d = auth_node
    adm = tokens["admin"][0]

    def counters():
        m = send(d, "GET", "/metrics", adm).text
        return {reason: metric_value(m, "outpost_http_auth_failures_total", reason=reason)
                for reason in ("missing", "invalid", "forbidden", "rate_limited")}
    before = counters()
    assert all(v is not None for v in before.values()), before
    send(d, "GET", "/v1/sensors")
    send(d, "GET", "/v1/sensors")
    send(d, "GET", "/v1/sensors", WRONG_TOKEN)
    requests.get(d.url("/v1/sensors"), headers={"Authorization": "Basic x"}, timeout=scaled(30))
    send(d, "POST", "/v1/readings", tokens["read"][0])
    send(d, "GET", "/healthz")  # public: no failure
    after = counters()
    assert after["missing"] - before["missing"] == 2, (before, after)
    assert after["invalid"] - before["invalid"] == 2, (before, after)
    assert after["forbidden"] - before["forbidden"] == 1, (before, after)
    assert after["rate_limited"] == before["rate_limited"], (before, after)


def test_rate_limited_metric(outpost_factory, tokens):
    d = outpost_factory(config=auth_cfg(tokens, max_failures=1, failure_window="2s"))
    for _ in range(4):
        send(d, "GET", "/v1/sensors")
    adm = tokens["admin"][0]
    wait_until(lambda: send(d, "GET", "/v1/sensors", adm).status_code == 200, scaled(10),
               interval=0.2, what="the failure window to end")
    m = send(d, "GET", "/metrics", adm).text
    assert metric_value(m, "outpost_http_auth_failures_total", reason="missing") >= 1
    assert metric_value(m, "outpost_http_auth_failures_total", reason="rate_limited") >= 2


# ---- outpost token create and [auth] config lines ---------------------------------------

def test_token_create_output(outpost_bin):
    r = token_create("--role", "ingest", "--name", "edge-7", bin=outpost_bin)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert TOKEN_RE.match(lines[0]), lines[0]
    cfg = [x for x in lines if x.startswith("token = ")]
    assert len(cfg) == 1, r.stdout
    m = LINE_RE.match(cfg[0])
    assert m, cfg[0]
    assert m.group(1) == "edge-7" and m.group(2) == "ingest"
    # The token is shown once and is not derivable from the printed line.
    assert r.stdout.count(lines[0]) == 1
    assert lines[0][4:] not in cfg[0]
    # Every other line is a comment.
    assert all(x.startswith("#") or x in (lines[0], cfg[0]) or not x.strip() for x in lines), \
        r.stdout
    # A new token each time; a default name when none is given.
    r2 = token_create("--role", "ingest", bin=outpost_bin)
    assert r2.returncode == 0, r2.stderr
    lines2 = r2.stdout.splitlines()
    assert TOKEN_RE.match(lines2[0]) and lines2[0] != lines[0]
    assert LINE_RE.match(next(x for x in lines2 if x.startswith("token = ")))


@pytest.mark.parametrize("args", [["--role", "root"], ["--role", ""], [], ["--role"],
                                  ["--role", "READ"], ["--role", "read", "--name", "bad name"],
                                  ["--role", "read", "--bogus"]])
def test_token_create_bad_arguments_exit_2(outpost_bin, args):
    r = token_create(*args, bin=outpost_bin)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert not TOKEN_RE.match(r.stdout.splitlines()[0] if r.stdout else ""), r.stdout
    assert r.stderr.strip()


def test_created_token_works_when_pasted(outpost_factory, outpost_bin):
    tok, line = make_token("read", bin=outpost_bin)
    d = outpost_factory(config={"auth": {"token": line}}, token=tok)
    assert d.get("/v1/sensors").status_code == 200
    assert_error(d.post_readings({"sensor": "x", "value": 1}), 403, "forbidden")


HASH = "sha256:" + "ab" * 32


@pytest.mark.parametrize("key,value,why", [
    ("token", f"a superuser {HASH}", "role"),
    ("token", f"a public {HASH}", "role"),
    ("token", "a read sha256:abc", "hash"),
    ("token", f"a read md5:{'ab' * 32}", "hash"),
    ("token", f"a read sha256:{'zz' * 32}", "hash"),
    ("token", "a read", "fields"),
    ("token", f"a read {HASH} extra", "fields"),
    ("cert_role", "edge-01 superuser", "role"),
    ("cert_role", "edge-01", "fields"),
])
def test_bad_auth_line_exits_2_naming_file_and_line(outpost_factory, key, value, why):
    d = outpost_factory(config={"auth": {key: value}}, start=False)
    text = d.config_path.read_text().splitlines()
    lineno = 1 + next(i for i, x in enumerate(text) if x.startswith(f"{key} = "))
    r = subprocess.run(d.command(), capture_output=True, text=True, timeout=scaled(20))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert not SANITIZER_RE.search(r.stderr), r.stderr
    assert f"{d.config_path}:{lineno}" in r.stderr, r.stderr
    assert f"auth.{key}" in r.stderr, r.stderr


def test_same_hash_twice_is_refused(outpost_factory, tokens):
    """One token hash listed with two roles makes its role ambiguous: the
    config is refused (exit 2) naming the file, rather than one line
    silently winning."""
    line = tokens["read"][1]
    _, _, h = line.split()
    d = outpost_factory(config={"auth": {"token": [line, f"other admin {h}"]}}, start=False)
    try:
        d.start()
    except StartError as e:
        assert d.returncodes[-1][1] == 2, str(e)
        assert f"{d.config_path}:" in d.stderr(), d.stderr()
    else:
        pytest.fail("a hash listed twice with two roles was accepted; which role wins?")
