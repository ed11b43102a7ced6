"""Sealing a PAN at rest: AES-256-GCM under a key derived (HKDF-SHA256) from a per-terminal secret.

The store-and-forward queue (``flows.saf``) keeps the PAN an advice needs only in this sealed form, with the
queue row's STAN as associated data, so a copied journal reveals nothing and a row moved to another STAN does
not open.

>>> sealer = PanSealer(b"k" * 32, "T0000001")
>>> sealer.open(sealer.seal("6212345678901234", 7), 7)
'6212345678901234'
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pos_errors import CryptoError

__all__ = ["PanSealer", "SealedPanError"]


class SealedPanError(CryptoError):
    """A sealed PAN does not open: wrong terminal key or a tampered queue row."""


class PanSealer:
    """AES-256-GCM under HKDF-SHA256(terminal secret, info = "saf-pan" + terminal id)."""

    def __init__(self, secret: bytes, terminal_id: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"saf-pan|" + terminal_id.encode()).derive(secret)
        self._aead = AESGCM(key)

    def seal(self, pan: str, stan: int) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, pan.encode("ascii"), f"{stan:06d}".encode())

    def open(self, sealed: bytes, stan: int) -> str:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], f"{stan:06d}".encode()).decode("ascii")
        except (InvalidTag, ValueError) as exc:
            raise SealedPanError(f"sealed PAN of advice stan={stan:06d} does not open") from exc
