"""Block-cipher primitives the payment crypto builds on: DES/TDES and AES in ECB and CBC, without padding.

TDES lives in ``cryptography.hazmat.decrepit`` since cryptography 43; single DES is TDES with K1=K2=K3.
Keys are ``bytes`` of 8 (single DES), 16 (double-length TDES), 24 (triple-length) or 16/24/32 (AES).

>>> tdes_ecb_encrypt(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), bytes(8)).hex().upper()
'08D7B4FB629D0885'
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pos_errors import CryptoError

__all__ = [
    "tdes_ecb_encrypt",
    "tdes_ecb_decrypt",
    "tdes_cbc_encrypt",
    "des_ecb_encrypt",
    "des_ecb_decrypt",
    "aes_ecb_encrypt",
    "aes_ecb_decrypt",
    "aes_cbc_encrypt",
    "xor",
    "odd_parity",
]


def xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise CryptoError(f"xor of {len(a)} and {len(b)} bytes")
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def odd_parity(key: bytes) -> bytes:
    """Set each byte's low bit so the byte has odd parity (DES key convention)."""
    return bytes((b & 0xFE) | (1 - (bin(b >> 1).count("1") & 1)) for b in key)


def _tdes_key(key: bytes) -> TripleDES:
    if len(key) == 8:
        key = key * 3
    if len(key) == 16:  # double-length: K3 = K1 (cryptography deprecates passing 16 bytes directly)
        key = key + key[:8]
    if len(key) != 24:
        raise CryptoError(f"a DES/TDES key is 8, 16 or 24 bytes, not {len(key)}")
    return TripleDES(key)


def _blocks(data: bytes, size: int) -> None:
    if len(data) % size:
        raise CryptoError(f"data of {len(data)} bytes is not a whole number of {size}-byte blocks")


def _run(cipher: Cipher, data: bytes, encrypt: bool) -> bytes:  # type: ignore[type-arg]
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


def tdes_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    _blocks(data, 8)
    return _run(Cipher(_tdes_key(key), modes.ECB()), data, True)  # noqa: S305 - ECB is what the standards use


def tdes_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    _blocks(data, 8)
    return _run(Cipher(_tdes_key(key), modes.ECB()), data, False)  # noqa: S305


def tdes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    _blocks(data, 8)
    return _run(Cipher(_tdes_key(key), modes.CBC(iv)), data, True)


def des_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    if len(key) != 8:
        raise CryptoError("single DES takes an 8-byte key")
    return tdes_ecb_encrypt(key, data)


def des_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    if len(key) != 8:
        raise CryptoError("single DES takes an 8-byte key")
    return tdes_ecb_decrypt(key, data)


def _aes(key: bytes) -> algorithms.AES:
    if len(key) not in (16, 24, 32):
        raise CryptoError(f"an AES key is 16, 24 or 32 bytes, not {len(key)}")
    return algorithms.AES(key)


def aes_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    _blocks(data, 16)
    return _run(Cipher(_aes(key), modes.ECB()), data, True)  # noqa: S305


def aes_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    _blocks(data, 16)
    return _run(Cipher(_aes(key), modes.ECB()), data, False)  # noqa: S305


def aes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    _blocks(data, 16)
    return _run(Cipher(_aes(key), modes.CBC(iv)), data, True)
