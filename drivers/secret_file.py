"""Reading a secret file the terminal's configuration names: a regular file (no symlink followed), mode 0600 or
0400, owned by the terminal's user. Every failure is a ConfigError naming the setting, never a traceback.
``load_identity`` hands a TLS client key read so to ``ssl`` without opening its path again.
``apart`` tells whether a key is kept away from the data it protects: neither lies in the other's folder or below.

>>> apart("/etc/pos/keys/tmk.tr31", "/etc/pos/kbpk/kbpk.hex"), apart("/var/pos/journal.db", "/var/pos/k/secret")
(True, False)
"""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

from pos_errors import ConfigError

__all__ = ["read_private", "load_identity", "apart"]


def read_private(path: str, key: str, limit: int, *, strip: bool = True) -> bytes:
    """At most ``limit + 1`` bytes of the file (so a caller can tell "too large"), stripped unless ``strip`` is
    False (a binary secret keeps every byte). ``key`` is the setting's name in messages."""
    if not path:
        raise ConfigError(f"{key} is not set: name the file holding the secret")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ConfigError(f"{key} {path}: cannot open: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{key} {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(f"{key} {path} has mode {stat.S_IMODE(info.st_mode):04o}: it must be 0600 "
                              "(chmod 600), readable by the terminal's user only")
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise ConfigError(f"{key} {path} is not owned by the terminal's user")
        data = fh.read(limit + 1)
        return data.strip() if strip else data


def load_identity(context: ssl.SSLContext, cert_file: str, key_file: str, pem: bytes) -> None:
    """Load the client certificate with the very key bytes ``read_private`` checked: ssl takes only paths, so on
    Linux they go through an anonymous in-memory file (``memfd``, this process's alone), not the path a second
    time (which could by then name another file); elsewhere the path is read again. Never a passphrase prompt on
    the console (an encrypted key is an ``ssl.SSLError``). Raises ``ssl.SSLError`` / ``OSError`` for the caller
    to name its setting."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None or not os.path.isdir("/proc/self/fd"):
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
        return
    fd = memfd_create("pos-client-key", getattr(os, "MFD_CLOEXEC", 0))
    try:
        view = memoryview(pem)
        while view:
            view = view[os.write(fd, view):]
        context.load_cert_chain(cert_file, f"/proc/self/fd/{fd}", password=_no_passphrase)
    finally:
        os.close(fd)


def _no_passphrase() -> bytes:
    return b""


def apart(first: str, second: str) -> bool:
    """False when either file lies in the other's folder or in a folder below it (paths resolved first, so
    ``..`` and symlinked folders do not hide it): a key "not beside" its data must not be one folder down."""
    one, two = Path(first).resolve(), Path(second).resolve()
    return not (one.is_relative_to(two.parent) or two.is_relative_to(one.parent))
