"""The terminal exception file (EMV 4.4 Book 4 §6.3.4) kept as keyed hashes, never as PANs.

Each entry (a PAN, or ``PAN-PSN`` naming one card) is held as HMAC-SHA256 under a key made when the list is
loaded; a card is looked up by hashing its own PAN the same way. The terminal's memory, a core dump or a
``repr`` therefore holds no listed PAN, and the hashes cannot be compared across loads or terminals.

>>> listed = ExceptionFile.of(["6212345678901232"])
>>> "6212345678901232" in listed, "6212345678901240" in listed, len(listed)
(True, False, 1)
>>> "6212345678901232" in repr(listed)
False
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["ExceptionFile"]


@dataclass(frozen=True)
class ExceptionFile:
    """Keyed hashes of the listed PANs; ``entry in file`` hashes ``entry`` and looks it up."""

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    digests: frozenset[bytes] = field(default=frozenset(), repr=False)

    @classmethod
    def of(cls, entries: Iterable[str], key: bytes | None = None) -> ExceptionFile:
        made = cls() if key is None else cls(key=key)
        return cls(made.key, frozenset(made._digest(str(e)) for e in entries))

    def _digest(self, entry: str) -> bytes:
        return hmac.new(self.key, entry.encode("ascii", "replace"), hashlib.sha256).digest()

    def __contains__(self, entry: object) -> bool:
        return isinstance(entry, str) and self._digest(entry) in self.digests

    def __len__(self) -> int:
        return len(self.digests)

    def __repr__(self) -> str:
        return f"ExceptionFile({len(self.digests)} keyed hashes)"
