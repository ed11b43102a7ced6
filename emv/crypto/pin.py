"""PIN encryption facade for the PIN pad (originating device) and the acquirer host (receiving side).

Two schemes, named as the rest of the product names them:

* ``"aes"`` (default): AES DUKPT (ANSI X9.24-3-2017) with an AES PIN-encryption working key of the initial
  key's size, protecting an ISO 9564-1 format 4 PIN block (16 bytes). KSN: 8-byte initial key ID + 4-byte
  counter.
* ``"tdes"`` (legacy): TDES DUKPT (ANSI X9.24-1:2009) with the PIN variant of the transaction key, protecting
  an ISO 9564-1 format 0 PIN block (8 bytes). KSN: 10 bytes, 21-bit counter.

The clear PIN exists only inside :meth:`DukptPinEncryptor.encrypt_pin` and :func:`decrypt_pin_block`; it is
never logged, put in an exception, or shown by ``repr``.

>>> bdk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
>>> key_check_value(bdk, "tdes").hex().upper()
'08D7B4'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.cmac import CMAC

from emv.crypto import dukpt_aes, dukpt_tdes, pinblock
from emv.crypto.des import tdes_ecb_encrypt
from emv.crypto.dukpt import DukptDevice
from pos_errors import CryptoError

__all__ = [
    "Scheme",
    "derive_initial_key",
    "DukptPinEncryptor",
    "decrypt_pin_block",
    "key_check_value",
    "aes_cmac",
]

Scheme = Literal["aes", "tdes"]

_SCHEMES = ("aes", "tdes")
_BLOCK_FORMAT = {"aes": 4, "tdes": 0}


def _check_scheme(scheme: str) -> None:
    if scheme not in _SCHEMES:
        raise CryptoError(f"unknown PIN scheme {scheme!r}: expected 'aes' or 'tdes'")


def derive_initial_key(scheme: Scheme, bdk: bytes, initial_ksn: bytes) -> bytes:
    """The initial key a key-injection facility loads into a PIN pad: the IK (aes) or IPEK (tdes).

    Args:
        scheme: "aes" or "tdes".
        bdk: the base derivation key (aes: 16/24/32 bytes; tdes: 16 bytes).
        initial_ksn: aes: 12 bytes (initial key ID + counter); tdes: 10 bytes. The counter is ignored.

    Raises:
        CryptoError: unknown scheme or wrong lengths.
    """
    _check_scheme(scheme)
    if scheme == "aes":
        if len(initial_ksn) != dukpt_aes.KSN_LENGTH:
            raise CryptoError(f"an AES DUKPT KSN is {dukpt_aes.KSN_LENGTH} bytes, not {len(initial_ksn)}")
        return dukpt_aes.initial_key(bdk, initial_ksn)
    return dukpt_tdes.initial_key(bdk, initial_ksn)


def _aes_pin_key(derivation_key: bytes, ksn: bytes) -> bytes:
    # AES PIN working key of the initial key's size (X9.24-3-2017 §6, key usage 0x1000)
    key_type = dukpt_aes.KeyType.aes_for(derivation_key)
    return dukpt_aes.working_key(derivation_key, ksn, dukpt_aes.KeyUsage.PIN_ENCRYPTION, key_type)


class DukptPinEncryptor:
    """The PIN pad side: one DUKPT device that enciphers each PIN under a fresh key.

    Args:
        scheme: "aes" (format 4) or "tdes" (format 0).
        initial_key: the IK / IPEK from :func:`derive_initial_key`.
        initial_ksn: the KSN the key was loaded with (counter zero). A non-zero counter resumes a device whose
            next transaction uses that KSN — a simulator convenience for a PIN pad that persisted its KSN.
        random_bytes: the source of format 4's random fill; inject a fixed one for deterministic tests.

    Raises:
        CryptoError: unknown scheme, wrong lengths, or an unreachable counter.
    """

    def __init__(self, scheme: Scheme, initial_key: bytes, initial_ksn: bytes,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        _check_scheme(scheme)
        self._scheme: Scheme = scheme
        self._random_bytes = random_bytes
        self._device: DukptDevice
        if scheme == "aes":
            self._device = dukpt_aes.AesDukptDevice(initial_key, initial_ksn)
        else:
            self._device = dukpt_tdes.TdesDukptDevice(initial_key, initial_ksn)
        self.last_key: tuple[bytes, bytes] | None = None  # (KSN, key) of the last transaction: its MACs reuse it

    @property
    def scheme(self) -> Scheme:
        return self._scheme

    @property
    def block_format(self) -> int:
        """The ISO 9564-1 PIN block format this device produces: 4 (aes) or 0 (tdes)."""
        return _BLOCK_FORMAT[self._scheme]

    @property
    def remaining(self) -> int:
        """Transactions left before exhaustion."""
        return self._device.remaining

    @property
    def ksn(self) -> bytes | None:
        """The KSN the next PIN will be enciphered under (persist it to resume); None once exhausted."""
        return self._device.ksn

    def encrypt_pin(self, pin: str, pan: str) -> tuple[bytes, bytes]:
        """Encipher ``pin`` for ``pan`` under the next transaction's key.

        Returns:
            (PIN block, KSN used) — 16 + 12 bytes (aes) or 8 + 10 bytes (tdes).

        Raises:
            LocalProtocolError: the PIN or PAN is malformed; the counter does not advance.
            CryptoError: the counter is exhausted, or the random source failed; an exhausted device stays so.
        """
        pinblock.validate_pin(pin)
        pinblock.validate_pan(pan)
        if self._scheme == "aes":
            fill = self._random_bytes(8)  # drawn before the counter moves, so a bad source costs no key
            if not isinstance(fill, bytes) or len(fill) != 8:
                raise CryptoError("the random fill source must return 8 bytes")
            ksn, derivation_key = self._device.next_transaction_key()
            block = pinblock.encipher_format4(_aes_pin_key(derivation_key, ksn), pin, pan, lambda _n: fill)
            self.last_key = (ksn, derivation_key)
        else:
            ksn, transaction_key = self._device.next_transaction_key()
            pin_key = dukpt_tdes.working_key(transaction_key, dukpt_tdes.TdesUsage.PIN)
            block = pinblock.encipher_format0(pin_key, pin, pan)
            self.last_key = (ksn, transaction_key)
        return block, ksn

    def next_key(self) -> tuple[bytes, bytes]:
        """(KSN, key) of the next transaction, for its MAC (``emv.crypto.dukpt_mac``): the TDES transaction key
        or the AES derivation key. The counter advances. CryptoError when exhausted."""
        self.last_key = self._device.next_transaction_key()
        return self.last_key

    def __repr__(self) -> str:  # never keys, PINs or PANs
        ksn = self.ksn
        shown = ksn.hex().upper() if ksn else "exhausted"
        return f"DukptPinEncryptor(scheme={self._scheme!r}, ksn={shown}, remaining={self.remaining})"


def decrypt_pin_block(scheme: Scheme, bdk: bytes, ksn: bytes, pin_block: bytes, pan: str) -> str:
    """The host side: derive the transaction's PIN key from the BDK and the KSN, decipher, decode.

    Raises:
        CryptoError: unknown scheme; wrong key, KSN or block length; a KSN no conforming device sends (zero
            counter, too many one bits); or a block that does not decipher to a well-formed PIN block (what a
            wrong BDK or PAN usually produces).
        LocalProtocolError: the PAN is malformed.
    """
    _check_scheme(scheme)
    pinblock.validate_pan(pan)
    if scheme == "aes":
        if not dukpt_aes.is_valid_ksn(ksn):
            raise CryptoError("the AES DUKPT KSN is not one a device could have sent")
        ik = dukpt_aes.initial_key(bdk, ksn)
        return pinblock.decipher_format4(_aes_pin_key(dukpt_aes.derivation_key(ik, ksn), ksn), pin_block, pan)
    if not dukpt_tdes.is_valid_ksn(ksn):
        raise CryptoError("the TDES DUKPT KSN is not one a device could have sent")
    pin_key = dukpt_tdes.working_key(dukpt_tdes.host_transaction_key(bdk, ksn), dukpt_tdes.TdesUsage.PIN)
    return pinblock.decipher_format0(pin_key, pin_block, pan)


def aes_cmac(key: bytes, message: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B, RFC 4493), the full 16-byte tag."""
    if len(key) not in (16, 24, 32):
        raise CryptoError(f"an AES key is 16, 24 or 32 bytes, not {len(key)}")
    mac = CMAC(AES(key))
    mac.update(message)
    return mac.finalize()


def key_check_value(key: bytes, scheme: Scheme | None = None) -> bytes:
    """A 3-byte key check value.

    * TDES ("tdes"): the leftmost 3 bytes of the key enciphering 8 zero bytes (the legacy KCV).
    * AES ("aes"): the leftmost 3 bytes of AES-CMAC over 16 zero bytes (the CMAC-based check value of
      ANSI X9.24-1:2017, which X9.24-3 keys use; the standard keeps 5 bytes, we show 3 like the TDES one).

    Without ``scheme`` the length decides: 8 and 24 bytes are TDES, 16 and 32 bytes AES — so pass
    ``scheme="tdes"`` for a double-length TDES key.

    Raises:
        CryptoError: unknown scheme or a length the algorithm does not take.
    """
    if scheme is None:
        scheme = "tdes" if len(key) in (8, 24) else "aes"
    _check_scheme(scheme)
    if scheme == "tdes":
        return tdes_ecb_encrypt(key, bytes(8))[:3]
    return aes_cmac(key, bytes(16))[:3]
