"""A secret made once and kept in its own file, readable by the terminal's user only (0600)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["load_or_make_secret"]


def load_or_make_secret(path: Path | None) -> bytes:
    """The secret in ``path``, made (32 random bytes, fsync'd) when the file does not exist; None: a fresh one."""
    if path is None:
        return os.urandom(32)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        secret = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secret)
            out.flush()
            os.fsync(out.fileno())
        return secret
