"""Message authentication codes and key check values for the acquirer link.

* ``retail_mac`` — ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC", ANSI X9.19), padding method 1 (zero bytes up
  to a whole 8-byte block, none when already whole; empty data is one zero block), 8-byte result. With a
  double-length TDES key ``K || K'``: single-DES CBC under ``K`` over every block (IV zero), then the last
  output block is decrypted under ``K'`` and encrypted again under ``K``. ISO 9797-1:2011 Annex B.4 gives the
  examples asserted in ``tests/emv/test_mac.py``.
* ``aes_cmac`` — NIST SP 800-38B CMAC with AES (RFC 4493 for AES-128), 16-byte result; ``cryptography``'s
  CMAC does the work (a well-kept implementation), this function only checks the key and truncation.
* ``kcv_tdes`` / ``kcv_aes`` — key check values: TDES encrypts one block of zero bytes under the key and keeps
  the leftmost bytes (3 by convention, 4 in the China UnionPay sign-on dialect); AES uses the CMAC method of
  ANSI X9.24-1:2017 (CMAC over 16 zero bytes, leftmost 5 bytes).
* ``mac_matches`` — constant-time comparison for checking a received MAC.

>>> key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
>>> retail_mac(key, b"Now is the time for all ").hex().upper()[:8]
'A1C72E74'
>>> kcv_tdes(key).hex().upper()
'08D7B4'
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms

from emv.crypto.des import des_ecb_decrypt, des_ecb_encrypt, tdes_cbc_encrypt, tdes_ecb_encrypt
from pos_errors import CryptoError

__all__ = ["retail_mac", "aes_cmac", "kcv_tdes", "kcv_aes", "mac_matches", "pad_method_1"]

_DES_BLOCK = 8
_AES_BLOCK = 16


def pad_method_1(data: bytes, block: int = _DES_BLOCK) -> bytes:
    """ISO/IEC 9797-1 padding method 1: zero bytes to a whole block; empty data becomes one zero block.

    >>> pad_method_1(b"ab").hex()
    '6162000000000000'
    """
    if not data:
        return bytes(block)
    return data + bytes(-len(data) % block)


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 (X9.19), padding method 1, 8 bytes, under a 16-byte TDES key.

    Raises:
        CryptoError: the key is not 16 bytes, or the two halves are equal (algorithm 3 would then be a
            plain single-DES CBC-MAC, which no acquirer accepts).
    """
    if len(key) != 16:
        raise CryptoError(f"a retail MAC key is 16 bytes (double-length TDES), not {len(key)}")
    left, right = key[:8], key[8:]
    if left == right:
        raise CryptoError("a retail MAC key's two halves must differ")
    # the CBC chain under the left key is the last block of one single-DES CBC encryption (IV zero): one cipher
    # context for the whole message instead of one per block
    chain = tdes_cbc_encrypt(left, pad_method_1(data))[-_DES_BLOCK:]
    return des_ecb_encrypt(left, des_ecb_decrypt(right, chain))


def aes_cmac(key: bytes, data: bytes, length: int = _AES_BLOCK) -> bytes:
    """NIST SP 800-38B CMAC with AES-128/192/256; the leftmost ``length`` bytes (4..16).

    Raises:
        CryptoError: a key that is not 16, 24 or 32 bytes, or a length outside 4..16.
    """
    if len(key) not in (16, 24, 32):
        raise CryptoError(f"an AES key is 16, 24 or 32 bytes, not {len(key)}")
    if not 4 <= length <= _AES_BLOCK:
        raise CryptoError(f"a CMAC is 4..16 bytes, not {length}")
    signer = cmac.CMAC(algorithms.AES(key))
    signer.update(data)
    return signer.finalize()[:length]


def kcv_tdes(key: bytes, length: int = 3) -> bytes:
    """TDES key check value: the leftmost ``length`` (2..8) bytes of the key encrypting 8 zero bytes."""
    if not 2 <= length <= _DES_BLOCK:
        raise CryptoError(f"a TDES check value is 2..8 bytes, not {length}")
    return tdes_ecb_encrypt(key, bytes(_DES_BLOCK))[:length]


def kcv_aes(key: bytes, length: int = 5) -> bytes:
    """AES key check value, CMAC method (ANSI X9.24-1:2017): CMAC over 16 zero bytes, leftmost ``length``."""
    if not 2 <= length <= _AES_BLOCK:
        raise CryptoError(f"an AES check value is 2..16 bytes, not {length}")
    return aes_cmac(key, bytes(_AES_BLOCK))[:length]


def mac_matches(expected: bytes, received: bytes) -> bool:
    """True when ``received`` equals ``expected``; constant time, so a forger learns nothing from timing."""
    return len(expected) == len(received) and hmac.compare_digest(expected, received)
