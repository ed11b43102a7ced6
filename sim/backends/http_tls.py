"""A per-world test CA and a server certificate for ``127.0.0.1`` / ``localhost``, for the simulated HTTPS back ends
and the acquirer's mutual TLS (``issue``: client certificates, and the broken server certificates of the TLS
fault scenarios: expired, naming another host).

TEST material only: made fresh with ``cryptography`` (ECDSA P-256) for each simulated world, written to a
directory the world owns, never shipped. The terminal trusts the CA through ``[carrier] ca_file``.

>>> import tempfile, ssl
>>> with tempfile.TemporaryDirectory() as d:
...     tls = LoopbackCa.create(d)
...     isinstance(tls.server_context(), ssl.SSLContext), tls.ca_file.endswith("ca.pem")
(True, True)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["LoopbackCa"]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pos-sim TEST"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class LoopbackCa:
    """``ca_file``: the CA certificate (PEM) a client trusts; ``cert_file``/``key_file``: the server's pair."""

    ca_file: str
    cert_file: str
    key_file: str
    ca_key_file: str = ""  # the CA's private key (0600), so ``issue`` can sign more certificates

    @classmethod
    def create(cls, directory: str | Path, name: str = "carrier") -> LoopbackCa:
        folder = Path(directory)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # nothing of a world is readable by others
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name(f"pos-sim {name} TEST CA")
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                           key_encipherment=False, data_encipherment=False, key_agreement=False,
                                           key_cert_sign=True, crl_sign=True, encipher_only=False,
                                           decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        ca_file, ca_key_file = folder / f"{name}-ca.pem", folder / f"{name}-ca-key.pem"
        ca_file.write_bytes(ca.public_bytes(pem))
        os.chmod(ca_file, 0o600)
        _write_key(ca_key_file, ca_key)
        cert_file, key_file = _issue(ca, ca_key, folder / f"{name}-cert.pem", folder / f"{name}-key.pem",
                                     "127.0.0.1", hosts=("localhost", "127.0.0.1"), client=False, expired=False)
        return cls(str(ca_file), str(cert_file), str(key_file), str(ca_key_file))

    def issue(self, stem: str, common_name: str, *, client: bool = False,
              hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), expired: bool = False) -> tuple[str, str]:
        """Sign another certificate with this CA, written beside it as STEM-cert.pem / STEM-key.pem (0600):
        a client certificate (``client``, no host names) or a server one for ``hosts``; ``expired`` makes one
        whose validity ended yesterday. Returns (cert_file, key_file)."""
        ca_key = serialization.load_pem_private_key(Path(self.ca_key_file).read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):  # pragma: no cover - create() writes EC keys
            raise TypeError("the loopback CA key is an EC key")
        ca = x509.load_pem_x509_certificate(Path(self.ca_file).read_bytes())
        folder = Path(self.ca_file).parent
        cert, key = _issue(ca, ca_key, folder / f"{stem}-cert.pem", folder / f"{stem}-key.pem", common_name,
                           hosts=() if client else hosts, client=client, expired=expired)
        return str(cert), str(key)

    def mutual_server_context(self, cert_file: str = "", key_file: str = "") -> ssl.SSLContext:
        """A server context that requires a client certificate signed by this CA (the acquirer's)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file or self.cert_file, key_file or self.key_file)
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=self.ca_file)
        return context

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """What a test client trusts: this CA only."""
        return ssl.create_default_context(cafile=self.ca_file)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _issue(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cert_path: Path, key_path: Path,
           common_name: str, *, hosts: tuple[str, ...], client: bool, expired: bool) -> tuple[Path, Path]:
    now = dt.datetime.now(dt.UTC)
    start, end = ((now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if expired
                  else (now - dt.timedelta(hours=1), now + dt.timedelta(days=30)))
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert_path.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    os.chmod(cert_path, 0o600)
    _write_key(key_path, key)
    return cert_path, key_path
