"""The device secret and the keys derived from it (the SAF queue's PAN sealing key).

The configuration points to the secret: ``[security] device_secret_file`` (a 0600 file of at least 16 bytes,
provisioned with the terminal and kept away from the data it protects) or, on a test bench only,
``device_secret_env`` (an environment variable holding hex: how the simulator hands its worlds a secret). The
sealing key is HKDF-SHA256 (RFC 5869) of the secret, bound to the terminal id, and is never written anywhere:
a copied journal, or the journal's whole directory, reveals no PAN.

>>> sealing_key(bytes(32), "T0000001").hex()[:16] == sealing_key(bytes(32), "T0000001").hex()[:16]
True
>>> sealing_key(bytes(32), "T0000001") != sealing_key(bytes(32), "T0000002")
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from drivers.secret_file import apart, read_private
from pos_errors import ConfigError

__all__ = ["read_device_secret", "sealing_key", "chain_key", "journal_chain_key", "MIN_SECRET"]

MIN_SECRET = 16  # bytes
MAX_SECRET_FILE = 4096
_SAF_INFO = b"iotsim-pos saf pan sealing v1|"
_CHAIN_INFO = b"iotsim-pos journal seal chain v1|"


def read_device_secret(file: str, env: str, *, journal: str = "",
                       environ: Mapping[str, str] = os.environ) -> bytes:
    """The device secret the configuration points to. Raises ConfigError naming the setting."""
    if env:
        value = environ.get(env, "")
        if not value:
            raise ConfigError(f"security.device_secret_env names {env}, which is not set in the environment")
        try:
            secret = bytes.fromhex(value)
        except ValueError as exc:
            raise ConfigError(f"security.device_secret_env: {env} must hold hex digits") from exc
    elif file:
        if journal and not apart(file, journal):
            raise ConfigError("security.device_secret_file lies beside the journal (in its folder or one below, or "
                              "the journal in the secret's): keep it elsewhere")
        # a regular file (no symlink followed), 0600 or 0400, owned by the terminal's user; every byte kept
        secret = read_private(file, "security.device_secret_file", MAX_SECRET_FILE, strip=False)
        if len(secret) > MAX_SECRET_FILE:
            raise ConfigError(f"security.device_secret_file {file} is larger than {MAX_SECRET_FILE} bytes")
    else:
        raise ConfigError("security.device_secret_file is not set: the terminal seals PANs with a key derived "
                          "from its device secret")
    if len(secret) < MIN_SECRET:
        raise ConfigError(f"the device secret must be at least {MIN_SECRET} bytes")
    return secret


def chain_key(secret: bytes, terminal_id: str) -> bytes:
    """The key of the journal's seal chain (``terminal.journal_chain``): whoever can write the journal's folder
    still cannot re-seal a changed row, because the key is not there."""
    return HKDF(hashes.SHA256(), 32, salt=None, info=_CHAIN_INFO + terminal_id.encode()).derive(secret)


def sealing_key(secret: bytes, terminal_id: str) -> bytes:
    """The AES-256 key of the SAF queue's PAN sealing (``emv.crypto.sealer.PanSealer``)."""
    return HKDF(hashes.SHA256(), 32, salt=None, info=_SAF_INFO + terminal_id.encode()).derive(secret)


def journal_chain_key(settings: Any) -> bytes | None:
    """The chain key of the terminal these settings describe, or None when they name no device secret (a test
    bench's journal then keeps its key in a 0600 file of its own). Raises ConfigError for a secret set but
    unreadable."""
    sec, term = settings.security, settings.terminal
    if not (sec.device_secret_file or sec.device_secret_env):
        return None
    return chain_key(read_device_secret(sec.device_secret_file, sec.device_secret_env, journal=term.journal), term.id)

