"""Loading the terminal master key (TMK) of the master/session scheme: the one seam key loading plugs into.

Today the TMK comes from a file named by ``host.tmk_file``: 32 hex digits (a double-length TDES key), a regular
file of mode 0600 (or 0400) owned by the terminal's user, read once at boot. Loading the TMK as a TR-31 /
X9.143 key block (enciphered under a key-loading key, as the security issue asks) replaces ``load_tmk`` and
nothing else: the composition root calls only this function, and ``HostClient`` takes the clear key bytes.

>>> import os, tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     path = os.path.join(d, "tmk.hex")
...     fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
...     _ = os.write(fd, b"0123456789ABCDEFFEDCBA9876543210\\n"); os.close(fd)
...     load_tmk(path).hex().upper()
'0123456789ABCDEFFEDCBA9876543210'
"""

from __future__ import annotations

import os
import stat

from pos_errors import ConfigError

__all__ = ["load_tmk"]


def load_tmk(path: str) -> bytes:
    """The TMK from ``path``. Raises ConfigError naming ``host.tmk_file`` (never the key) when unusable."""
    if not path:
        raise ConfigError("host.tmk_file is not set: name the file holding the terminal master key "
                          "(or set host.key_scheme = \"none\" on a plaintext test bench)")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ConfigError(f"host.tmk_file {path}: cannot open: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"host.tmk_file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(f"host.tmk_file {path} has mode {stat.S_IMODE(info.st_mode):04o}: it must be 0600")
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise ConfigError(f"host.tmk_file {path} is not owned by the terminal's user")
        text = fh.read(100).strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != 16 or key[:8] == key[8:]:
        raise ConfigError(f"host.tmk_file {path} must hold one double-length TDES key as 32 hex digits")
    return key
