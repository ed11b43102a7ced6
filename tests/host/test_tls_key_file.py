"""The terminal's mutual-TLS private key (``host.client_key``) is a secret at rest (security review, item 3): read
and checked like every other key file (0600 or 0400, the terminal's user, no symlink, unencrypted PEM) before ssl
loads it; refused at start naming the setting, and once private the link works through real mutual TLS."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from drivers.host.tls import client_context
from pos_errors import ConfigError
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from terminal.config import Settings
from terminal.wiring import _host_security
from tests.host.conftest import started
from tests.host.test_secure_link import client


def _context(security: AcquirerSecurity, key: str | Path | None = None):  # type: ignore[no-untyped-def]
    return client_context(security.ca.ca_file, security.client_cert, str(key or security.client_key))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_others_can_read_is_refused_naming_the_setting(security: AcquirerSecurity, mode: int) -> None:
    os.chmod(security.client_key, mode)
    with pytest.raises(ConfigError, match=rf"host.client_key .* has mode {mode:04o}: it must be 0600"):
        _context(security)


def test_a_symlinked_key_is_refused(security: AcquirerSecurity, tmp_path: Path) -> None:
    link = tmp_path / "linked-key.pem"
    link.symlink_to(security.client_key)
    with pytest.raises(ConfigError, match="host.client_key .*cannot open"):
        _context(security, link)


def test_an_encrypted_or_foreign_key_file_is_refused_with_a_reason(security: AcquirerSecurity,
                                                                   tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(Path(security.client_key).read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"passphrase")))
    encrypted.chmod(0o600)
    with pytest.raises(ConfigError, match="is encrypted: the terminal starts unattended"):
        _context(security, encrypted)
    certificate = tmp_path / "not-a-key.pem"
    certificate.write_bytes(Path(security.client_cert).read_bytes())
    certificate.chmod(0o600)
    with pytest.raises(ConfigError, match="is not a PEM private key"):
        _context(security, certificate)


def test_the_composition_root_refuses_it_before_anything_opens(security: AcquirerSecurity) -> None:
    os.chmod(security.client_key, 0o644)
    settings = Settings.from_dict({"terminal": {"profile": "test"}, "host": {
        "ca_file": security.ca.ca_file, "client_cert": security.client_cert, "client_key": security.client_key,
        "tmk_file": security.tmk_file, "tmk_kbpk_file": security.tmk_kbpk_file, "server_name": "localhost"}})
    with pytest.raises(ConfigError, match="host.client_key"):
        _host_security(settings)


@pytest.fixture
def acquirer(security: AcquirerSecurity) -> Iterator[AcquirerSim]:
    yield from started(security)


def test_a_private_key_signs_on_through_real_mutual_tls(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    os.chmod(security.client_key, 0o400)  # read-only for the owner is private too
    link = client(acquirer, security, tls=_context(security))
    link.sign_on()
    assert link.signed_on and security.keys_of(link.terminal_id) is not None
    link.close()


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="giving a file away needs root")
def test_a_key_owned_by_another_user_is_refused(security: AcquirerSecurity) -> None:
    os.chown(security.client_key, 4242, -1)  # 0600, but another user's: that user could swap our identity
    with pytest.raises(ConfigError, match="host.client_key .* is not owned by the terminal's user"):
        _context(security)


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="Linux: the checked bytes go through a memfd")
def test_ssl_loads_the_bytes_that_were_checked_not_the_path_again(security: AcquirerSecurity,
                                                                   tmp_path: Path) -> None:
    """The key file swapped between the check and ssl's load (the path then names another key): the identity
    loaded is the checked one, so the pair still matches."""
    import ssl

    from drivers.secret_file import load_identity

    checked = Path(security.client_key).read_bytes()
    _cert, other = security.ca.issue("other", "T0000009", client=True)  # another key, not matching client_cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    load_identity(context, security.client_cert, other, checked)  # loads: the checked key matches the cert
    with pytest.raises(ssl.SSLError):
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(security.client_cert, other)  # the path would not
