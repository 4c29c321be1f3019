"""Where the node may listen, and as whom it runs: a non-loopback address
needs TLS and credentials (or insecure_bind = true, loudly); `user = NAME`
drops root after the port and the store are open."""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from certs import pki, trust_session_ca  # noqa: F401 - fixtures
from outpost_proc import SANITIZER_RE, StartError, metric_value, scaled

GAUGE = "outpost_security_insecure_bind"


@pytest.fixture(autouse=True)
def _session_ca_is_honoured(trust_session_ca):
    pass


def make_token(bin, role):
    r = subprocess.run([str(bin), "token", "create", "--role", role], capture_output=True,
                       text=True, timeout=scaled(30), check=True)
    lines = r.stdout.splitlines()
    return lines[0], next(x for x in lines if x.startswith("token = "))[len("token = "):]


def tls(pki, client_ca=False):
    t = {"cert": str(pki.server), "key": str(pki.server_key)}
    if client_ca:
        t["client_ca"] = str(pki.ca)
    return t


def refused(d, why="refusing to serve"):
    """Runs the daemon's command; it must exit 2 saying why, without serving."""
    r = subprocess.run(d.command(), capture_output=True, text=True, timeout=scaled(20),
                       cwd=d.workdir)
    assert r.returncode == 2, f"exit {r.returncode}, want 2; stderr:\n{r.stderr}"
    assert why in r.stderr, r.stderr
    assert not SANITIZER_RE.search(r.stderr), r.stderr
    assert "listening on" not in r.stderr, r.stderr
    return r.stderr


@pytest.mark.parametrize("what", ["plain", "tls_only", "token_only", "cert_role_only"])
def test_non_loopback_without_tls_and_credentials_is_refused(outpost_factory, outpost_bin,
                                                             pki, what):
    cfg = {"listen": "0.0.0.0:0"}
    if what == "tls_only":
        cfg["tls"] = tls(pki)
    elif what == "token_only":
        cfg["auth"] = {"token": make_token(outpost_bin, "read")[1]}
    elif what == "cert_role_only":
        cfg["auth"] = {"cert_role": "edge-01 read"}
    d = outpost_factory(config=cfg, start=False)
    # cert_role without a client CA can never match: refused as a config
    # error before the bind rule is even looked at.
    cert_only = what == "cert_role_only"
    err = refused(d, "auth.cert_role needs tls.client_ca" if cert_only else "refusing to serve")
    assert cert_only or "0.0.0.0" in err, err
    assert not (d.data_dir / "outpost.db").exists(), "the store was opened before the refusal"


def test_insecure_bind_starts_with_a_warning(outpost_factory):
    d = outpost_factory(config={"listen": "0.0.0.0:0", "insecure_bind": "true"})
    err = d.stderr()
    assert "INSECURE" in err, err
    assert "listening on http://0.0.0.0:" in err, err
    assert d.post_readings({"sensor": "b", "value": 1}).status_code == 201
    assert metric_value(d.metrics(), GAUGE) == 1


def test_loopback_needs_nothing_and_gauge_is_0(outpost):
    assert "INSECURE" not in outpost.stderr()
    assert metric_value(outpost.metrics(), GAUGE) == 0


@pytest.mark.parametrize("creds", ["token", "client_ca"])
def test_tls_and_credentials_on_all_addresses(outpost_factory, outpost_bin, pki, creds):
    cfg = {"listen": "0.0.0.0:0", "tls": tls(pki, client_ca=creds == "client_ca")}
    kw = {"ca": pki.ca}
    if creds == "token":
        tok, line = make_token(outpost_bin, "admin")
        cfg["auth"] = {"token": line}
        kw["token"] = tok
    else:
        cfg["auth"] = {"cert_role": "edge-01 admin"}
        kw["client_cert"] = pki.client_pair
    d = outpost_factory(config=cfg, **kw)
    err = d.stderr()
    assert "listening on https://0.0.0.0:" in err, err
    assert "INSECURE" not in err, err
    assert d.base.startswith("https://127.0.0.1:")
    assert d.post_readings({"sensor": "b", "value": 1}).status_code == 201
    assert metric_value(d.metrics(), GAUGE) == 0


def test_insecure_bind_on_loopback_is_harmless(outpost_factory):
    d = outpost_factory(config={"insecure_bind": "true"})
    assert "INSECURE" not in d.stderr()
    assert metric_value(d.metrics(), GAUGE) == 0


# ---- privilege drop ----------------------------------------------------------------

def ids(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("Uid", "Gid", "Groups"):
            out[k] = [int(x) for x in v.split()]
    return out


@pytest.fixture
def open_dir():
    """A data-dir parent that `nobody` can traverse (pytest's tmp dirs are 0700)."""
    if os.geteuid() != 0:
        pytest.skip("the privilege drop needs root")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")
    d = Path(tempfile.mkdtemp(prefix="outpost-drop-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_drops_to_user_nobody(outpost_factory, open_dir):
    nobody = pwd.getpwnam("nobody")
    data = open_dir / "data"
    d = outpost_factory(config={"user": "nobody"}, data_dir=data)
    got = ids(d.pid)
    assert got["Uid"] == [nobody.pw_uid] * 4, got
    assert got["Gid"] == [nobody.pw_gid] * 4, got
    assert 0 not in got.get("Groups", []), f"root's supplementary groups kept: {got}"
    st = data.stat()
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    for f in data.iterdir():
        assert f.stat().st_uid == nobody.pw_uid, f"{f} still owned by uid {f.stat().st_uid}"
    # Ingest works after the drop (the store is writable as nobody) ...
    r = d.post_readings([{"sensor": "drop/s", "value": 1.0, "ts": 1000},
                         {"sensor": "drop/s", "value": 2.0, "ts": 2000}])
    assert r.status_code == 201, r.text
    assert d.fetch_all("drop/s") == [(1000, 1.0), (2000, 2.0)]
    # ... and survives a restart on the same data dir, dropping again.
    assert d.stop() == 0
    d.restart()
    got = ids(d.pid)
    assert got["Uid"] == [nobody.pw_uid] * 4 and got["Gid"] == [nobody.pw_gid] * 4, got
    assert d.post_readings({"sensor": "drop/s", "value": 3.0, "ts": 3000}).status_code == 201
    assert d.fetch_all("drop/s") == [(1000, 1.0), (2000, 2.0), (3000, 3.0)]
    for f in data.iterdir():
        assert f.stat().st_uid == nobody.pw_uid, f"{f} owned by uid {f.stat().st_uid}"


def test_drop_never_hands_over_a_planted_link(outpost_factory, open_dir):
    """Root hands over only the store's own files, through descriptors: a
    hard link planted in the data dir (as the service user could) stays
    root's, and a store file name that is a hard link stops the start."""
    nobody = pwd.getpwnam("nobody")
    data = open_dir / "data"
    data.mkdir()
    victim = open_dir / "victim"
    victim.write_text("secret")
    victim.chmod(0o600)
    os.link(victim, data / "innocent")
    d = outpost_factory(config={"user": "nobody"}, data_dir=data)
    assert ids(d.pid)["Uid"] == [nobody.pw_uid] * 4
    assert victim.stat().st_uid == 0, "root gave a planted hard link away"
    assert d.stop() == 0
    # A store file replaced by a hard link to a root file: refused, exit 1.
    (data / "outpost.lock").unlink()
    os.link(victim, data / "outpost.lock")
    d.write_config({"user": "nobody"})
    r = subprocess.run(d.command(), capture_output=True, text=True, timeout=scaled(20),
                       cwd=d.workdir)
    assert r.returncode == 1, r.stderr
    assert "one link" in r.stderr, r.stderr
    assert victim.stat().st_uid == 0


def test_drop_with_tls_reads_the_key_first(outpost_factory, open_dir, pki):
    """TLS material is read before the drop: a key only root can read
    (0600 in a 0700 dir) still works as nobody."""
    nobody = pwd.getpwnam("nobody")
    d = outpost_factory(config={"user": "nobody", "tls": tls(pki)}, data_dir=open_dir / "data",
                        ca=pki.ca)
    got = ids(d.pid)
    assert got["Uid"] == [nobody.pw_uid] * 4, got
    assert d.post_readings({"sensor": "drop/t", "value": 1.0}).status_code == 201


def test_unknown_user_is_refused(outpost_factory, open_dir):
    d = outpost_factory(config={"user": "no-such-user-xyz"}, data_dir=open_dir / "data",
                        start=False)
    with pytest.raises(StartError):
        d.start()
    assert d.returncodes[-1][1] != 0
    assert "no-such-user-xyz" in d.stderr()
