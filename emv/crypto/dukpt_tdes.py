"""TDES DUKPT (Derived Unique Key Per Transaction), ANSI X9.24-1:2009 Annex A (also X9.24-3-2017 Annex C).

The key serial number (KSN) is 10 bytes: the leftmost 59 bits name the device and its initial key, the
rightmost 21 bits are the transaction counter. Keys are double-length TDES (16 bytes).

* :func:`initial_key` — the initial PIN encryption key (IPEK) that key injection derives from the BDK.
* :class:`TdesDukptDevice` — the originating device (PIN pad): future key registers, "New Key", exhaustion.
* :func:`transaction_key`, :func:`host_transaction_key` — the receiving side, from the IPEK or the BDK.
* :func:`working_key` — the PIN, MAC and data variants of a transaction key.

Routine names are those of the Annex A pseudo-code; its test data (A.4) are what the tests assert.

>>> bdk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
>>> initial_key(bdk, bytes.fromhex("FFFF9876543210E00000")).hex().upper()  # X9.24-1:2009 A.4
'6AC292FAA1315B4D858AB3A3D7D5933A'
"""

from __future__ import annotations

import functools
from enum import Enum

from emv.crypto.des import des_ecb_encrypt, tdes_ecb_encrypt, xor
from emv.crypto.dukpt import TDES_COUNTER, DukptDevice, FutureKeys, Step, derive_along_counter
from pos_errors import CryptoError

__all__ = [
    "KSN_LENGTH",
    "TdesUsage",
    "ksn_counter",
    "ksn_with_counter",
    "is_valid_ksn",
    "initial_key",
    "non_reversible_key",
    "transaction_key",
    "host_transaction_key",
    "working_key",
    "TdesDukptDevice",
]

KSN_LENGTH = 10
_COUNTER_MASK = (1 << TDES_COUNTER.width) - 1
# Annex A: the mask XORed onto a key for the right half of the IPEK and the left half in the NRKGP
_KEY_MASK = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")


class TdesUsage(Enum):
    """Variants of a transaction key by what it protects; the value is the XOR mask (X9.24-1:2009 Annex A).

    Data keys additionally go through a one-way step (each half enciphered under the variant key).
    """

    PIN = bytes.fromhex("00000000000000FF00000000000000FF")
    MAC_REQUEST = bytes.fromhex("000000000000FF00000000000000FF00")
    MAC_RESPONSE = bytes.fromhex("00000000FF00000000000000FF000000")
    DATA_REQUEST = bytes.fromhex("0000000000FF00000000000000FF0000")
    DATA_RESPONSE = bytes.fromhex("000000FF00000000000000FF00000000")


def _check_ksn(ksn: bytes) -> None:
    if len(ksn) != KSN_LENGTH:
        raise CryptoError(f"a TDES DUKPT KSN is {KSN_LENGTH} bytes, not {len(ksn)}")


def _check_key(key: bytes, what: str) -> None:
    if len(key) != 16:
        raise CryptoError(f"a TDES DUKPT {what} is a 16-byte double-length key, not {len(key)} bytes")


def ksn_counter(ksn: bytes) -> int:
    """The 21-bit transaction counter of a KSN."""
    _check_ksn(ksn)
    return int.from_bytes(ksn[-3:], "big") & _COUNTER_MASK


def ksn_with_counter(ksn: bytes, counter: int) -> bytes:
    """``ksn`` with its transaction counter replaced by ``counter``."""
    _check_ksn(ksn)
    if not 0 <= counter <= _COUNTER_MASK:
        raise CryptoError(f"TDES DUKPT counter {counter:#x} does not fit in 21 bits")
    value = int.from_bytes(ksn, "big") & ~_COUNTER_MASK | counter
    return value.to_bytes(KSN_LENGTH, "big")


def is_valid_ksn(ksn: bytes) -> bool:
    """True if a conforming device could have sent ``ksn``: 10 bytes, non-zero counter, at most 10 ones."""
    return len(ksn) == KSN_LENGTH and TDES_COUNTER.is_valid(ksn_counter(ksn))


def initial_key(bdk: bytes, ksn: bytes) -> bytes:
    """The IPEK: the BDK enciphers the leftmost 8 bytes of the KSN with its counter zeroed; the BDK XOR the
    C0C0C0C0 mask enciphers it again for the right half. Any counter in ``ksn`` is
    ignored, so a transaction's KSN works as well as the initial one."""
    _check_key(bdk, "BDK")
    data = ksn_with_counter(ksn, 0)[:8]
    return tdes_ecb_encrypt(bdk, data) + tdes_ecb_encrypt(xor(bdk, _KEY_MASK), data)


def non_reversible_key(key: bytes, ksn_register: bytes) -> bytes:
    """The "Non-reversible Key Generation Process" (NRKGP) of Annex A for a
    double-length key: each half of the result is the rightmost 8 KSN bytes XOR a key half, DES-enciphered
    under the other half, XOR that half again — once with the key, once with the key XOR the C0C0C0C0 mask."""
    _check_key(key, "key")
    if len(ksn_register) != 8:
        raise CryptoError("the NRKGP takes the rightmost 8 bytes of the KSN")

    def half(k: bytes) -> bytes:
        left, right = k[:8], k[8:]
        return xor(des_ecb_encrypt(left, xor(ksn_register, right)), right)

    return half(xor(key, _KEY_MASK)) + half(key)


def _nrkgp_step(ksn: bytes) -> Step:
    """One step down the key tree: the NRKGP over the rightmost 8 KSN bytes carrying ``counter``."""
    base = int.from_bytes(ksn[2:], "big") & ~_COUNTER_MASK

    def step(key: bytes, counter: int) -> bytes:
        return non_reversible_key(key, (base | counter).to_bytes(8, "big"))

    return step


def transaction_key(ipek: bytes, ksn: bytes) -> bytes:
    """The receiving side: the transaction key for ``ksn`` from the device's IPEK (an NRKGP per one bit).

    Raises:
        CryptoError: wrong lengths, or a zero counter (the IPEK itself is never a transaction key).
    """
    _check_key(ipek, "IPEK")
    counter = ksn_counter(ksn)
    if counter == 0:
        raise CryptoError("a KSN with a zero counter names no transaction")
    return derive_along_counter(_nrkgp_step(ksn), TDES_COUNTER.width, ipek, counter)


def host_transaction_key(bdk: bytes, ksn: bytes) -> bytes:
    """The receiving side from the BDK: derive the IPEK for ``ksn``, then the transaction key."""
    return transaction_key(initial_key(bdk, ksn), ksn)


def working_key(transaction_key: bytes, usage: TdesUsage) -> bytes:
    """The variant of ``transaction_key`` for ``usage``; data variants also take the one-way step."""
    _check_key(transaction_key, "transaction key")
    variant = xor(transaction_key, usage.value)
    if usage in (TdesUsage.DATA_REQUEST, TdesUsage.DATA_RESPONSE):
        return tdes_ecb_encrypt(variant, variant[:8]) + tdes_ecb_encrypt(variant, variant[8:])
    return variant


class TdesDukptDevice(DukptDevice):
    """The originating side (a PIN pad) after "Load Initial Key" (X9.24-1:2009 Annex A).

    Args:
        ipek: the initial key injected into the device.
        ksn: the initial KSN (counter zero). A non-zero counter resumes a device whose next transaction uses
            that KSN (see :class:`emv.crypto.dukpt.FutureKeys`).

    Raises:
        CryptoError: wrong lengths, or a counter a device could never reach.
    """

    def __init__(self, ipek: bytes, ksn: bytes) -> None:
        _check_key(ipek, "IPEK")
        counter = ksn_counter(ksn)
        super().__init__(FutureKeys(TDES_COUNTER, _nrkgp_step(ksn), ipek, counter or 1),
                         functools.partial(ksn_with_counter, ksn_with_counter(ksn, 0)))
