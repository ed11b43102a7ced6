"""Loading the terminal master key (TMK) of the master/session scheme: the one seam key loading plugs into.

The technician loads the TMK as a **TR-31 / X9.143 key block** (``host.tmk_file``): version D (AES key block
protection key) or B (TDES KBPK), key usage **K0** (key encryption or wrapping), algorithm T (a double-length
TDES key), mode of use B (both) or D (decrypt: the terminal only unwraps working keys with it). The block is
unwrapped under the KBPK in ``host.tmk_kbpk_file`` (hex; 16 or 24 bytes for B, 16, 24 or 32 for D). Both are
regular files of mode 0600 (or 0400) owned by the terminal's user, and the KBPK must not sit in the folder of
the block it protects, nor in a folder below it (nor the block in or below the KBPK's folder). A file of 32
bare hex digits (a clear TMK) is accepted only when the caller allows it: a terminal whose ``[terminal] profile``
is ``test`` (docs/protocols/acquirer.md, "Loading the TMK").

Every error is a ConfigError naming the configuration key and never the key material.

>>> import os, tempfile
>>> from emv.crypto.tr31 import wrap
>>> tmk, kbpk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), bytes(range(32))
>>> with tempfile.TemporaryDirectory() as blocks, tempfile.TemporaryDirectory() as keys:
...     block_path, kbpk_path = os.path.join(blocks, "tmk.tr31"), os.path.join(keys, "kbpk.hex")
...     _put(block_path, wrap(kbpk, "D0000K0TB00N0000", tmk)); _put(kbpk_path, kbpk.hex())
...     load_tmk(block_path, kbpk_path).hex().upper()
'0123456789ABCDEFFEDCBA9876543210'
"""

from __future__ import annotations

import logging
import os
import stat

from drivers.secret_file import apart
from emv.crypto.tr31 import KEY_ENCRYPTION, KeyBlockError, unwrap
from pos_errors import ConfigError

__all__ = ["load_tmk", "USAGE_NAMES"]

log = logging.getLogger(__name__)

USAGE_NAMES = {  # TR-31:2018 Table 6 (the usages a technician is likely to confuse with a TMK)
    "B0": "BDK", "B1": "initial DUKPT key", "D0": "data encryption", "K0": "key encryption or wrapping",
    "K1": "TR-31 key block protection key", "M3": "ISO 9797-1 MAC algorithm 3", "P0": "PIN encryption",
}
_MODES = ("B", "D")  # both ways, or decrypt only: the terminal only unwraps working keys with its TMK


def load_tmk(path: str, kbpk_path: str = "", *, allow_clear: bool = False) -> bytes:
    """The clear TMK (16 bytes) from the key block in ``path`` unwrapped under the KBPK in ``kbpk_path``, or
    from 32 clear hex digits when ``allow_clear``. Raises ConfigError naming the key when anything is wrong;
    nothing is kept."""
    if not path:
        raise ConfigError("host.tmk_file is not set: name the file holding the terminal master key "
                          "(or set host.key_scheme = \"none\" on a plaintext test bench)")
    text = _read_private(path, "host.tmk_file", 2048)
    if len(text) == 32 and _is_hex(text):
        if not allow_clear:
            raise ConfigError(f"host.tmk_file {path} holds a clear key: only a terminal with [terminal] profile = "
                              "\"test\" accepts one; load the TMK as a TR-31 key block (usage K0) instead")
        log.warning("host.tmk_file holds a CLEAR terminal master key — test benches only")
        return _usable(bytes.fromhex(text), path)
    if not kbpk_path:
        raise ConfigError(f"host.tmk_file {path} is a key block but host.tmk_kbpk_file is not set: name the file "
                          "holding the key block protection key it was wrapped under")
    if not apart(kbpk_path, path):
        raise ConfigError("host.tmk_kbpk_file and host.tmk_file share a folder (one lies inside the other's): keep "
                          "the key block protection key apart from the key block it protects")
    kbpk_text = _read_private(kbpk_path, "host.tmk_kbpk_file", 200)
    if not (_is_hex(kbpk_text) and len(kbpk_text) in (32, 48, 64)):
        raise ConfigError(f"host.tmk_kbpk_file {kbpk_path} must hold one key as 32, 48 or 64 hex digits")
    try:
        block = unwrap(bytes.fromhex(kbpk_text), text)
    except KeyBlockError as exc:
        raise ConfigError(f"host.tmk_file {path}: the key block does not unwrap under host.tmk_kbpk_file: "
                          f"{exc}") from exc
    header = block.header
    if header.key_usage != KEY_ENCRYPTION:
        name = USAGE_NAMES.get(header.key_usage, "another usage")
        raise ConfigError(f"host.tmk_file {path} holds a key of usage {header.key_usage} ({name}): a terminal "
                          f"master key is usage {KEY_ENCRYPTION} (key encryption or wrapping)")
    if header.algorithm != "T":
        raise ConfigError(f"host.tmk_file {path} holds an algorithm {header.algorithm} key: the session keys "
                          "of this scheme are TDES, so the TMK is a TDES key (algorithm T)")
    if header.mode_of_use not in _MODES:
        raise ConfigError(f"host.tmk_file {path} has mode of use {header.mode_of_use}: a TMK the terminal "
                          "unwraps working keys with is mode B (both) or D (decrypt only)")
    return _usable(block.key, path)


def _usable(key: bytes, path: str) -> bytes:
    if len(key) != 16 or key[:8] == key[8:]:
        raise ConfigError(f"host.tmk_file {path} must hold one double-length TDES key (two different halves)")
    return key


def _read_private(path: str, name: str, limit: int) -> str:
    """The stripped ASCII text of a private key file; ConfigError names ``name`` when it is not private."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ConfigError(f"{name} {path}: cannot open: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{name} {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(f"{name} {path} has mode {stat.S_IMODE(info.st_mode):04o}: it must be 0600")
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise ConfigError(f"{name} {path} is not owned by the terminal's user")
        raw = fh.read(limit + 1)
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    if not text or len(raw) > limit or not text.isprintable():
        raise ConfigError(f"{name} {path} must hold one key (or key block) as printable ASCII")
    return text


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789ABCDEFabcdef" for c in text)


def _put(path: str, text: str) -> None:  # for the doctest: a 0600 file
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
