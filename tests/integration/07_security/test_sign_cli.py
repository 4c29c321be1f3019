"""`outpost key gen`, `outpost sign` and `outpost verify` on real files
(docs/internals/sec.md): a good signature verifies, any changed byte of the
file or of the signature fails with exit 1, another key's .pub fails naming
both key ids, usage errors exit 2, and the secret key file is mode 0600.
Where python3-cryptography is installed, a signature is also checked by
that independent Ed25519 implementation, as a third party would."""

import base64
import hashlib
import os
import re
import stat
import subprocess

import pytest

from outpost_proc import SANITIZER_RE, scaled

KID_RE = re.compile(r"^kid ([0-9a-f]{16})$", re.M)


def run(bin, *args, cwd):
    r = subprocess.run([str(bin), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                       timeout=scaled(30), stdin=subprocess.DEVNULL)
    assert not SANITIZER_RE.search(r.stderr), r.stderr
    return r


def keygen(bin, cwd, prefix=None, seal=False):
    args = ["key", "gen"] + (["--seal"] if seal else []) + (["--out", prefix] if prefix else [])
    r = run(bin, *args, cwd=cwd)
    assert r.returncode == 0, r.stderr
    m = KID_RE.search(r.stdout)
    assert m, r.stdout
    return m.group(1)


@pytest.fixture
def signed(tmp_path, outpost_bin):
    """A default key pair and a signed 40 KB file in tmp_path."""
    kid = keygen(outpost_bin, tmp_path)
    data = os.urandom(40_000)
    (tmp_path / "model.bin").write_bytes(data)
    r = run(outpost_bin, "sign", "model.bin", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert kid in r.stdout
    return kid, data


def test_keygen_files_and_modes(tmp_path, outpost_bin):
    kid = keygen(outpost_bin, tmp_path)
    key, pub = tmp_path / "outpost-signing.key", tmp_path / "outpost-signing.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not stat.S_IMODE(pub.stat().st_mode) & 0o022
    assert key.read_text().startswith(f"outpost-ed25519-secret v1\nkid {kid}\nkey ")
    lines = pub.read_text().splitlines()
    assert lines[:2] == ["outpost-ed25519-public v1", f"kid {kid}"]
    raw = base64.b64decode(lines[2].removeprefix("key "), validate=True)
    assert hashlib.sha256(raw).hexdigest()[:16] == kid

    # An existing key is never replaced.
    before = key.read_bytes()
    r = run(outpost_bin, "key", "gen", cwd=tmp_path)
    assert r.returncode == 1
    assert "already exists" in r.stderr
    assert key.read_bytes() == before

    skid = keygen(outpost_bin, tmp_path, prefix="uplink", seal=True)
    seal = tmp_path / "uplink.key"
    assert stat.S_IMODE(seal.stat().st_mode) == 0o600
    assert seal.read_text().startswith(f"outpost-seal-key v1\nkid {skid}\nkey ")
    assert not (tmp_path / "uplink.pub").exists()


def test_sign_verify_ok(tmp_path, outpost_bin, signed):
    kid, _ = signed
    sig = (tmp_path / "model.bin.sig").read_text()
    assert re.fullmatch(rf"outpost-sig v1 ed25519 {kid} [A-Za-z0-9+/]{{86}}==\n", sig), sig
    r = run(outpost_bin, "verify", "model.bin", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"OK {kid}\n"


def test_signature_checks_out_elsewhere(tmp_path, signed):
    """The documented construction, checked by another Ed25519 library:
    Ed25519 over "outpost-sign-v1\\0" || SHA-512(file)."""
    ed = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    _, data = signed
    pub = (tmp_path / "outpost-signing.pub").read_text().splitlines()[2].removeprefix("key ")
    sig = (tmp_path / "model.bin.sig").read_text().split()[4]
    key = ed.Ed25519PublicKey.from_public_bytes(base64.b64decode(pub))
    key.verify(base64.b64decode(sig), b"outpost-sign-v1\0" + hashlib.sha512(data).digest())


def test_changed_file_fails(tmp_path, outpost_bin, signed):
    kid, data = signed
    for at in (0, len(data) // 2, len(data) - 1):
        changed = bytearray(data)
        changed[at] ^= 0x01
        (tmp_path / "model.bin").write_bytes(changed)
        r = run(outpost_bin, "verify", "model.bin", cwd=tmp_path)
        assert r.returncode == 1, (at, r.stdout)
        assert "BAD signature" in r.stderr and kid in r.stderr
        assert not r.stdout
    (tmp_path / "model.bin").write_bytes(data + b"\0")
    assert run(outpost_bin, "verify", "model.bin", cwd=tmp_path).returncode == 1
    (tmp_path / "model.bin").write_bytes(data)
    assert run(outpost_bin, "verify", "model.bin", cwd=tmp_path).returncode == 0


def test_corrupt_signature_fails(tmp_path, outpost_bin, signed):
    sigfile = tmp_path / "model.bin.sig"
    good = sigfile.read_bytes()
    # One changed bit in each region: prefix, kid, signature, the newline.
    for at in (3, 30, 60, len(good) - 4, len(good) - 1):
        bad = bytearray(good)
        bad[at] ^= 0x02
        sigfile.write_bytes(bad)
        r = run(outpost_bin, "verify", "model.bin", cwd=tmp_path)
        assert r.returncode == 1, (at, r.stdout)
        assert r.stderr.strip()
    for text in (b"", b"garbage\n", good[:-10], good + good):
        sigfile.write_bytes(text)
        r = run(outpost_bin, "verify", "model.bin", cwd=tmp_path)
        assert r.returncode == 1
        assert "not a valid signature file" in r.stderr
    sigfile.unlink()
    r = run(outpost_bin, "verify", "model.bin", cwd=tmp_path)
    assert r.returncode == 1 and "model.bin.sig" in r.stderr


def test_other_key_fails_naming_both_kids(tmp_path, outpost_bin, signed):
    kid, _ = signed
    other = keygen(outpost_bin, tmp_path, prefix="other")
    assert other != kid
    r = run(outpost_bin, "verify", "model.bin", "--pub", "other.pub", cwd=tmp_path)
    assert r.returncode == 1
    assert "key id mismatch" in r.stderr
    assert kid in r.stderr and other in r.stderr

    # Signed with the other key to an explicit path: verifies with its .pub.
    r = run(outpost_bin, "sign", "model.bin", "--key", "other.key", "--out", "o.sig", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run(outpost_bin, "verify", "model.bin", "--pub", "other.pub", "--sig", "o.sig",
            cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == f"OK {other}\n"


def test_bad_key_files(tmp_path, outpost_bin, signed):
    pub = tmp_path / "outpost-signing.pub"
    text = pub.read_text()
    pub.write_text(text.replace("public", "secret"))
    r = run(outpost_bin, "verify", "model.bin", cwd=tmp_path)
    assert r.returncode == 1 and "not a valid Ed25519 public key file" in r.stderr
    # A kid that is not the key's: the file was edited.
    kid = text.splitlines()[1].split()[1]
    pub.write_text(text.replace(kid, "0123456789abcdef" if kid != "0123456789abcdef" else "f" * 16))
    r = run(outpost_bin, "verify", "model.bin", cwd=tmp_path)
    assert r.returncode == 1 and "does not belong to its key" in r.stderr
    r = run(outpost_bin, "sign", "model.bin", "--key", "outpost-signing.pub", cwd=tmp_path)
    assert r.returncode == 1 and "not a valid Ed25519 secret key file" in r.stderr


@pytest.mark.parametrize("args", [
    ["key"], ["key", "make"], ["key", "gen", "extra"], ["key", "gen", "--bogus"],
    ["sign"], ["sign", "a", "b"], ["sign", "a", "--key"],
    ["verify"], ["verify", "a", "b"], ["verify", "a", "--frobnicate"],
])
def test_usage_errors(tmp_path, outpost_bin, args):
    r = run(outpost_bin, *args, cwd=tmp_path)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert "usage:" in r.stderr
    assert not list(tmp_path.iterdir())
