"""Files only the terminal's user may read: secrets made once (0600), and the journal, logs and keys created 0600
in a 0700 directory whatever the umask (``private_dir``, ``create_private``).

>>> import tempfile, stat
>>> with tempfile.TemporaryDirectory() as tmp:
...     made = create_private(Path(tmp) / "var" / "journal.db")
...     oct(stat.S_IMODE(made.stat().st_mode)), oct(stat.S_IMODE(made.parent.stat().st_mode))
('0o600', '0o700')
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["load_or_make_secret", "private_dir", "create_private"]


def load_or_make_secret(path: Path | None) -> bytes:
    """The secret in ``path``, made (32 random bytes, fsync'd) when the file does not exist; None: a fresh one."""
    if path is None:
        return os.urandom(32)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        private_dir(path.parent)
        secret = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secret)
            out.flush()
            os.fsync(out.fileno())
        return secret


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter: made 0700 (with its parents), or tightened to 0700 when
    this user owns it. Shared sticky directories (``/tmp``) are left as they are: the files inside are 0600."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.getuid() and not info.st_mode & stat.S_ISVTX and stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def create_private(path: Path) -> Path:
    """Create ``path`` (if missing) readable and writable by its owner only, in a private directory; an existing
    file of ours is tightened to 0600. SQLite gives a database's -wal and -shm files the database's mode."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    if path.stat().st_uid == os.getuid():
        os.chmod(path, 0o600)
    return path
