"""Message MACs under DUKPT (ANSI X9.24): the MAC key of one transaction, both directions. Pure functions.

* **TDES** (X9.24-1): the transaction key XOR the MAC *request* variant ``000000000000FF00`` per half (the
  terminal's request) or the MAC *response* variant ``00000000FF000000`` (the host's answer); the MAC is the
  ISO/IEC 9797-1 algorithm 3 retail MAC (X9.19), 8 bytes.
* **AES** (X9.24-3): a working key of the transaction's derivation key with key usage *MAC generation*
  (``2000``, the request) or *MAC verification* (``2001``, the answer), AES-128; the MAC is AES-CMAC
  (NIST SP 800-38B) cut to its leftmost 8 bytes, the size of ISO 8583 field 64/128.

The originating device (the PIN pad) holds the transaction key; the host derives it from the BDK and the KSN
(``host_mac``). The key derivations themselves are proved by the X9.24 vectors in ``tests/crypto``.

>>> bdk, ksn = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), bytes.fromhex("FFFF9876543210E00001")
>>> host_mac("tdes", bdk, ksn, b"0200 test message", "request").hex().upper()  # X9.24-1 Annex A BDK and KSN
'D6D51C73737E28AB'
"""

from __future__ import annotations

from typing import Literal

from emv.crypto import dukpt_aes, dukpt_tdes
from emv.crypto.mac import aes_cmac, retail_mac
from pos_errors import CryptoError

__all__ = ["Direction", "MAC_LEN", "mac", "host_mac", "mac_key"]

Direction = Literal["request", "response"]
MAC_LEN = 8
_TDES = {"request": dukpt_tdes.TdesUsage.MAC_REQUEST, "response": dukpt_tdes.TdesUsage.MAC_RESPONSE}
_AES = {"request": dukpt_aes.KeyUsage.MAC_GENERATION, "response": dukpt_aes.KeyUsage.MAC_VERIFICATION}


def mac_key(scheme: str, key: bytes, ksn: bytes, direction: Direction) -> bytes:
    """The MAC key of a transaction: ``key`` is the TDES transaction key or the AES derivation key of ``ksn``."""
    if direction not in _TDES:
        raise CryptoError(f"a DUKPT MAC is for the request or the response, not {direction!r}")
    if scheme == "tdes":
        return dukpt_tdes.working_key(key, _TDES[direction])
    if scheme == "aes":
        return dukpt_aes.working_key(key, ksn, _AES[direction], dukpt_aes.KeyType.AES128)
    raise CryptoError(f"unknown DUKPT scheme {scheme!r}")


def mac(scheme: str, key: bytes, ksn: bytes, data: bytes, direction: Direction) -> bytes:
    """The 8-byte MAC of ``data`` under the transaction key ``key`` (of ``ksn``) for ``direction``."""
    working = mac_key(scheme, key, ksn, direction)
    return retail_mac(working, data) if scheme == "tdes" else aes_cmac(working, data, MAC_LEN)


def host_mac(scheme: str, bdk: bytes, ksn: bytes, data: bytes, direction: Direction) -> bytes:
    """The host side: the same MAC from the BDK and the KSN. CryptoError for a KSN no device could send."""
    if scheme == "tdes":
        if not dukpt_tdes.is_valid_ksn(ksn):
            raise CryptoError("the TDES DUKPT KSN is not one a device could have sent")
        return mac(scheme, dukpt_tdes.host_transaction_key(bdk, ksn), ksn, data, direction)
    if scheme == "aes":
        if not dukpt_aes.is_valid_ksn(ksn):
            raise CryptoError("the AES DUKPT KSN is not one a device could have sent")
        derivation = dukpt_aes.derivation_key(dukpt_aes.initial_key(bdk, ksn), ksn)
        return mac(scheme, derivation, ksn, data, direction)
    raise CryptoError(f"unknown DUKPT scheme {scheme!r}")
