"""TR-31 / ANSI X9.143 key blocks: parse the header and unwrap versions B and D (and wrap them). Pure functions.

A key block carries one key enciphered and MACed under a key block protection key (KBPK), with a clear header
(version, key usage, algorithm, mode of use, key version, exportability, optional blocks) that the MAC binds to
the key, so a key cannot be used for another purpose than the one it was wrapped for. Only the key derivation
binding methods are accepted:

* **B** — TDES KBPK (16 or 24 bytes); KBEK and KBAK derived with TDES-CMAC; key data TDES-CBC; 8-byte CMAC.
* **D** — AES KBPK (16, 24 or 32 bytes); KBEK and KBAK derived with AES-CMAC; key data AES-CBC; 16-byte CMAC.

Versions A and C (the variant binding method) are refused. In both accepted versions the IV of the key data is
the MAC, the MAC is computed over the ASCII header and the clear key data (2-byte key length in bits, key,
padding), and the derivation data is counter || usage (0000 encryption, 0001 MAC) || 00 || algorithm || length
in bits (ANSI X9.143-2022 §7.3, TR-31:2018 §5.3.2). Used by the PIN pad to load initial DUKPT keys and the
terminal master key, and by the acquirer link for its terminal master key (usage K0, ``drivers.host.tmk``).
Key material never appears in an error or a ``repr``.

>>> block = ("D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D2"
...          "07E2E417C07156A27E8E31DA05F7425509593D03A457DC34")
>>> kbpk = bytes.fromhex("88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6")
>>> unwrap(kbpk, block).key.hex().upper()
'3F419E1CB7079442AA37474C2EFBF8B8'
>>> parse_header(block).key_usage
'P0'
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from pos_errors import CryptoError

__all__ = ["KeyBlockError", "KeyBlockHeader", "UnwrappedKey", "parse_header", "derive_keys", "unwrap",
           "dukpt_initial_ksn", "INITIAL_DUKPT_KEY", "KEY_ENCRYPTION", "wrap"]

HEADER_LEN = 16
_MAC_LEN = {"B": 8, "D": 16}
_BLOCK_SIZE = {"B": 8, "D": 16}
_KBPK_LENGTHS = {"B": (16, 24), "D": (16, 24, 32)}
# algorithm indicator of the derivation data, by (version, KBPK length)
_DERIVATION_ALGORITHM = {("B", 16): 0x0000, ("B", 24): 0x0001,
                         ("D", 16): 0x0002, ("D", 24): 0x0003, ("D", 32): 0x0004}
_ENCRYPTION, _AUTHENTICATION = 0x0000, 0x0001
INITIAL_DUKPT_KEY = "B1"  # key usage of an initial DUKPT key (IK / IPEK)
KEY_ENCRYPTION = "K0"  # key usage of a key encryption / wrapping key (a terminal master key)


class KeyBlockError(CryptoError):
    """A key block that is malformed, of a refused version, or whose MAC does not verify under the KBPK."""


@dataclass(frozen=True)
class KeyBlockHeader:
    """The clear header. Read before unwrapping it is only a claim; after ``unwrap`` it is authenticated."""

    version: str
    key_usage: str  # e.g. "B1" initial DUKPT key, "P0" PIN encryption, "K0" key encryption (a TMK)
    algorithm: str  # "A" AES, "T" TDES
    mode_of_use: str
    key_version: str
    exportability: str
    optional_blocks: tuple[tuple[str, str], ...]
    text: str  # the header as it is MACed, optional blocks included

    def block(self, block_id: str) -> str | None:
        """The data of optional block ``block_id`` ("IK", "KS", "KC", ...), None when absent."""
        return next((data for ident, data in self.optional_blocks if ident == block_id), None)


@dataclass(frozen=True)
class UnwrappedKey:
    header: KeyBlockHeader
    key: bytes = field(repr=False)


def parse_header(block: str) -> KeyBlockHeader:
    """The header of ``block`` (not yet authenticated). Raises KeyBlockError for anything malformed."""
    if not block.isascii() or not block.isprintable() or len(block) < HEADER_LEN:
        raise KeyBlockError("a key block is at least 16 printable ASCII characters")
    version, length = block[0], block[1:5]
    if version not in _MAC_LEN:
        raise KeyBlockError(f"key block version {version!r} is refused: only B (TDES) and D (AES) are accepted")
    if not (length.isdigit() and int(length) == len(block)):
        raise KeyBlockError(f"the key block says it is {length!r} characters long, it is {len(block)}")
    count = block[12:14]
    if not count.isdigit() or not block[5:12].isalnum():
        raise KeyBlockError("key block header fields are not alphanumeric")
    blocks, end = _optional_blocks(block, int(count))
    if end % _BLOCK_SIZE[version]:
        raise KeyBlockError(f"the header is {end} characters, not a multiple of {_BLOCK_SIZE[version]}")
    return KeyBlockHeader(version=version, key_usage=block[5:7], algorithm=block[7], mode_of_use=block[8],
                          key_version=block[9:11], exportability=block[11], optional_blocks=blocks,
                          text=block[:end])


def derive_keys(version: str, kbpk: bytes) -> tuple[bytes, bytes]:
    """(KBEK, KBAK): the key block encryption and authentication keys derived from the KBPK."""
    if version not in _KBPK_LENGTHS or len(kbpk) not in _KBPK_LENGTHS[version]:
        raise KeyBlockError(f"a version {version} KBPK is {' or '.join(map(str, _KBPK_LENGTHS.get(version, ())))}"
                            f" bytes, not {len(kbpk)}")
    algorithm = _DERIVATION_ALGORITHM[(version, len(kbpk))]
    return (_derive(version, kbpk, _ENCRYPTION, algorithm), _derive(version, kbpk, _AUTHENTICATION, algorithm))


def unwrap(kbpk: bytes, block: str) -> UnwrappedKey:
    """The key in ``block`` and its authenticated header. Raises KeyBlockError when the block is malformed,
    of version A or C, or its MAC does not verify under ``kbpk`` (wrong KBPK, altered header or key data)."""
    header = parse_header(block)
    version = header.version
    mac_chars = 2 * _MAC_LEN[version]
    body = block[len(header.text):]
    if len(body) <= mac_chars:
        raise KeyBlockError("the key block holds no key data")
    try:
        key_data, mac = bytes.fromhex(body[:-mac_chars]), bytes.fromhex(body[-mac_chars:])
    except ValueError as exc:
        raise KeyBlockError("key data and MAC must be hexadecimal") from exc
    if not key_data or len(key_data) % _BLOCK_SIZE[version]:
        raise KeyBlockError(f"key data is not a whole number of {_BLOCK_SIZE[version]}-byte blocks")
    kbek, kbak = derive_keys(version, kbpk)
    clear = _cbc_decrypt(version, kbek, mac, key_data)
    if not hmac.compare_digest(_cmac(version, kbak, header.text.encode("ascii") + clear), mac):
        raise KeyBlockError("the key block MAC does not verify: wrong KBPK, or the block was altered")
    bits = int.from_bytes(clear[:2], "big")
    if bits == 0 or bits % 8 or bits // 8 > len(clear) - 2:
        raise KeyBlockError("the key length inside the key block is not usable")
    return UnwrappedKey(header=header, key=clear[2:2 + bits // 8])


def wrap(kbpk: bytes, header: str, key: bytes, *, padding: bytes | None = None) -> str:
    """``key`` wrapped under ``kbpk`` as a version B or D key block with ``header`` (its length field is filled
    in). The key data is padded with ``padding`` (random when None) to a whole number of cipher blocks; the MAC
    is the IV, as ``unwrap`` expects. Used by the simulator to make test key blocks; psec is the oracle."""
    version = header[:1]
    if version not in _MAC_LEN or not 0 < len(key) < 4096:
        raise KeyBlockError("wrap makes version B or D key blocks of a non-empty key")
    size = _BLOCK_SIZE[version]
    clear = (8 * len(key)).to_bytes(2, "big") + key
    missing = -len(clear) % size
    pad = os.urandom(missing) if padding is None else padding
    if len(pad) != missing:
        raise KeyBlockError(f"this key needs {missing} padding bytes, not {len(pad)}")
    clear += pad
    total = len(header) + 2 * len(clear) + 2 * _MAC_LEN[version]
    text = f"{version}{total:04d}{header[5:]}"
    if parse_header(text + "0" * (total - len(text))).text != text:
        raise KeyBlockError("the header's optional blocks do not end where the header does")
    kbek, kbak = derive_keys(version, kbpk)
    mac = _cmac(version, kbak, text.encode("ascii") + clear)
    encryptor = Cipher(_algorithm(version, kbek), modes.CBC(mac)).encryptor()
    return text + (encryptor.update(clear) + encryptor.finalize()).hex().upper() + mac.hex().upper()


def dukpt_initial_ksn(header: KeyBlockHeader) -> bytes:
    """The initial KSN of an initial DUKPT key block: for AES (algorithm A) the optional block IK, the 8-byte
    initial key ID, followed by a zero 4-byte counter (X9.24-3); for TDES (T) the optional block KS, the 10-byte
    KSN with a zero counter (X9.24-1). Raises KeyBlockError when it is missing or malformed."""
    ident, size = {"A": ("IK", 8), "T": ("KS", 10)}.get(header.algorithm, ("", 0))
    data = header.block(ident) if ident else None
    if data is None or len(data) != 2 * size or not _is_hex(data):
        raise KeyBlockError(f"an initial DUKPT key block of algorithm {header.algorithm!r} needs optional block "
                            f"{ident or 'IK or KS'} of {2 * size or '16 or 20'} hex digits")
    return bytes.fromhex(data) + (bytes(4) if ident == "IK" else b"")


# --- helpers ---

def _optional_blocks(block: str, count: int) -> tuple[tuple[tuple[str, str], ...], int]:
    """The optional blocks after the 16-character header and where they end."""
    found: list[tuple[str, str]] = []
    at = HEADER_LEN
    for _ in range(count):
        ident, length = block[at:at + 2], block[at + 2:at + 4]
        if len(ident) != 2 or not ident.isalnum() or not _is_hex(length):
            raise KeyBlockError(f"optional block at {at} is malformed")
        size, data_at = int(length, 16), at + 4
        if size == 0:  # extended length: 2 hex digits give the length of the length, then the length
            width = block[at + 4:at + 6]
            if not _is_hex(width) or not _is_hex(block[at + 6:at + 6 + int(width, 16)]) or int(width, 16) == 0:
                raise KeyBlockError(f"optional block {ident} has a malformed extended length")
            data_at = at + 6 + int(width, 16)
            size = int(block[at + 6:data_at], 16)
        if size < data_at - at or at + size > len(block):
            raise KeyBlockError(f"optional block {ident} is {size} characters: it does not fit")
        if any(ident == seen for seen, _ in found):
            raise KeyBlockError(f"optional block {ident} appears twice")
        found.append((ident, block[data_at:at + size]))
        at += size
    return tuple(found), at


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789ABCDEFabcdef" for c in text)


def _derive(version: str, kbpk: bytes, usage: int, algorithm: int) -> bytes:
    size = len(kbpk)
    step = 8 if version == "B" else 16
    out = b""
    for counter in range(1, -(-size // step) + 1):
        data = bytes([counter]) + usage.to_bytes(2, "big") + b"\x00" + algorithm.to_bytes(2, "big")
        out += _cmac(version, kbpk, data + (size * 8).to_bytes(2, "big"))
    return out[:size]


def _algorithm(version: str, key: bytes) -> BlockCipherAlgorithm:
    if version == "D":
        return algorithms.AES(key)
    return TripleDES(key + key[:8] if len(key) == 16 else key)  # double length: K3 = K1


def _cmac(version: str, key: bytes, message: bytes) -> bytes:
    mac = CMAC(_algorithm(version, key))
    mac.update(message)
    return mac.finalize()


def _cbc_decrypt(version: str, key: bytes, iv: bytes, data: bytes) -> bytes:
    cipher = Cipher(_algorithm(version, key), modes.CBC(iv))
    decryptor = cipher.decryptor()
    return decryptor.update(data) + decryptor.finalize()
