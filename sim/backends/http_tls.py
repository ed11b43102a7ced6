"""A per-world test CA and a server certificate for ``127.0.0.1`` / ``localhost``, for the simulated HTTPS back ends.

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

    @classmethod
    def create(cls, directory: str | Path, name: str = "carrier") -> LoopbackCa:
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
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
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        ca_file, cert_file, key_file = (folder / f"{name}-ca.pem", folder / f"{name}-cert.pem",
                                        folder / f"{name}-key.pem")
        ca_file.write_bytes(ca.public_bytes(pem))
        cert_file.write_bytes(leaf.public_bytes(pem))
        key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        os.chmod(key_file, 0o600)
        return cls(str(ca_file), str(cert_file), str(key_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """What a test client trusts: this CA only."""
        return ssl.create_default_context(cafile=self.ca_file)
