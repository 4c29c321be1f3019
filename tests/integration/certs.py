"""Test PKI for the TLS and mutual-TLS tests, generated once per session.

make_pki(dir) writes, with Debian's python3-cryptography (EC P-256 keys,
fast to make):
  ca.pem/ca.key            the CA the daemon trusts (server and client certs)
  server.pem/server.key    DNS:localhost, IP:127.0.0.1, signed by ca
  other.pem/other.key      DNS:other.example only, signed by ca
  client.pem/client.key    CN edge-01, clientAuth, signed by ca
  client2.pem/client2.key  CN edge-02 (valid, mapped to no role), signed by ca
  expired.pem/.key         CN edge-01, signed by ca, not_valid_after in the past
  notyet.pem/.key          CN edge-01, signed by ca, not_valid_before in the future
  selfsigned.pem/.key      CN edge-01, self-signed
  wrongca.pem/.key         CN edge-01, signed by ca2 (another CA)
  ca2.pem/ca2.key          that other CA
The `pki` fixture (import it into a test module) returns a PKI whose
attributes are the paths above: pki.ca, pki.server, pki.server_key,
pki.client_pair -> (cert, key), ...
"""

import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOW = datetime.datetime.now(datetime.timezone.utc)
_DAY = datetime.timedelta(days=1)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "outpost tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, cert, key):
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp = path.with_suffix(".key")
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    kp.chmod(0o600)


def _ca(cn):
    key = _key()
    cert = (x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - _DAY).not_valid_after(_NOW + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(cn, issuer=None, server_names=None, not_before=None, not_after=None):
    """A leaf cert signed by issuer ((cert, key)), or self-signed if None."""
    key = _key()
    icert, ikey = issuer if issuer else (None, key)
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn))
         .issuer_name(icert.subject if icert else _name(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(not_before or _NOW - _DAY)
         .not_valid_after(not_after or _NOW + 30 * _DAY)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if server_names is not None:
        sans = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n)
                for n in server_names]
        b = (b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False))
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
    if icert is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            icert.public_key()), critical=False)
    return b.sign(ikey, hashes.SHA256()), key


class PKI:
    def __init__(self, d):
        self.dir = Path(d)

    def __getattr__(self, name):
        # pki.client -> client.pem, pki.client_key -> client.key,
        # pki.client_pair -> (client.pem, client.key)
        if name.startswith("_"):
            raise AttributeError(name)
        if name.endswith("_pair"):
            base = name[:-5]
            return (self.dir / f"{base}.pem", self.dir / f"{base}.key")
        if name.endswith("_key"):
            return self.dir / f"{name[:-4]}.key"
        return self.dir / f"{name}.pem"


def make_pki(d):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    ca = _ca("outpost test CA")
    ca2 = _ca("some other CA")
    _write(d / "ca", *ca)
    _write(d / "ca2", *ca2)
    _write(d / "server", *_leaf("localhost", ca, server_names=["localhost", "127.0.0.1"]))
    _write(d / "other", *_leaf("other.example", ca, server_names=["other.example"]))
    _write(d / "client", *_leaf("edge-01", ca))
    _write(d / "client2", *_leaf("edge-02", ca))
    _write(d / "expired", *_leaf("edge-01", ca, not_before=_NOW - 10 * _DAY,
                                  not_after=_NOW - _DAY))
    _write(d / "notyet", *_leaf("edge-01", ca, not_before=_NOW + 5 * _DAY,
                                 not_after=_NOW + 10 * _DAY))
    _write(d / "selfsigned", *_leaf("edge-01", None))
    _write(d / "wrongca", *_leaf("edge-01", ca2))
    return PKI(d)


_cache = {}


@pytest.fixture
def trust_session_ca(monkeypatch):
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set in some
    environments, this one included) override a Session's `verify`, so
    Outpost.new_session()'s CA would be ignored (psf/requests#3829). Import
    this fixture (it is not autouse) or request it where requests talks to
    a daemon over TLS."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The session's test PKI (made once, even when several modules import
    this fixture)."""
    if "pki" not in _cache:
        _cache["pki"] = make_pki(tmp_path_factory.mktemp("pki"))
    return _cache["pki"]
