"""AES DUKPT (Derived Unique Key Per Transaction), ANSI X9.24-3-2017 §6.

The KSN is 12 bytes: an 8-byte initial key ID (4-byte BDK ID + 4-byte derivation ID) and a 32-bit transaction
counter. Every key comes from AES-ECB over 16 bytes of *derivation data* ("Create Derivation Data")::

    01 | block counter | key usage (2) | algorithm (2) | length in bits (2) | 8 data bytes

where the 8 data bytes are the initial key ID for the initial key, else the derivation ID and the counter.
Keys longer than one AES block take one block per block counter (01, 02), then are truncated to length.

* :func:`initial_key` — the IK a key-injection facility derives from the BDK ("Derive Initial Key").
* :class:`AesDukptDevice` — the originating side: intermediate derivation key registers, at most 16 one
  bits per counter ("Load Initial Key", "Update State for next Transaction").
* :func:`derivation_key`, :func:`working_key`, :func:`host_working_key` — the receiving side.

Clause names are those of X9.24-3-2017 §6 and of the X9 reference source code published with its test
vectors; the vectors themselves are in Annex B and the supplement.

>>> bdk = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
>>> initial_key(bdk, bytes.fromhex("1234567890123456")).hex().upper()  # X9.24-3-2017 B.1
'1273671EA26AC29AFA4D1084127652A1'
"""

from __future__ import annotations

import functools
from enum import Enum, IntEnum

from emv.crypto.des import aes_ecb_encrypt
from emv.crypto.dukpt import AES_COUNTER, DukptDevice, FutureKeys, Step, derive_along_counter
from pos_errors import CryptoError

__all__ = [
    "KSN_LENGTH",
    "INITIAL_KEY_ID_LENGTH",
    "KeyType",
    "KeyUsage",
    "make_ksn",
    "split_ksn",
    "is_valid_ksn",
    "derivation_data",
    "derive_key",
    "initial_key",
    "derivation_key",
    "working_key",
    "host_working_key",
    "AesDukptDevice",
]

KSN_LENGTH = 12
INITIAL_KEY_ID_LENGTH = 8


class KeyType(Enum):
    """Key types a derivation can produce: (algorithm indicator, length in bits) of the derivation data."""

    TDES2 = (0x0000, 128)
    TDES3 = (0x0001, 192)
    AES128 = (0x0002, 128)
    AES192 = (0x0003, 192)
    AES256 = (0x0004, 256)

    @property
    def algorithm(self) -> int:
        return self.value[0]

    @property
    def bits(self) -> int:
        return self.value[1]

    @property
    def is_aes(self) -> bool:
        return self.name.startswith("AES")

    @classmethod
    def aes_for(cls, key: bytes) -> KeyType:
        """The AES key type of a BDK, IK or derivation key, by its length."""
        for member in (cls.AES128, cls.AES192, cls.AES256):
            if len(key) * 8 == member.bits:
                return member
        raise CryptoError(f"an AES DUKPT key is 16, 24 or 32 bytes, not {len(key)}")


class KeyUsage(IntEnum):
    """Key usage indicators of the derivation data."""

    KEY_ENCRYPTION = 0x0002
    PIN_ENCRYPTION = 0x1000
    MAC_GENERATION = 0x2000
    MAC_VERIFICATION = 0x2001
    MAC_BOTH = 0x2002
    DATA_ENCRYPT = 0x3000
    DATA_DECRYPT = 0x3001
    DATA_BOTH = 0x3002
    KEY_DERIVATION = 0x8000
    INITIAL_KEY = 0x8001


def make_ksn(initial_key_id: bytes, counter: int) -> bytes:
    """The 12-byte KSN for an initial key ID and a counter."""
    if len(initial_key_id) != INITIAL_KEY_ID_LENGTH:
        raise CryptoError(f"an AES DUKPT initial key ID is 8 bytes, not {len(initial_key_id)}")
    if not 0 <= counter < AES_COUNTER.limit:
        raise CryptoError(f"AES DUKPT counter {counter:#x} does not fit in 32 bits")
    return initial_key_id + counter.to_bytes(4, "big")


def split_ksn(ksn: bytes) -> tuple[bytes, int]:
    """(initial key ID, counter) of a 12-byte KSN."""
    if len(ksn) != KSN_LENGTH:
        raise CryptoError(f"an AES DUKPT KSN is {KSN_LENGTH} bytes, not {len(ksn)}")
    return ksn[:INITIAL_KEY_ID_LENGTH], int.from_bytes(ksn[INITIAL_KEY_ID_LENGTH:], "big")


def is_valid_ksn(ksn: bytes) -> bool:
    """True if a conforming device could have sent ``ksn``: 12 bytes, non-zero counter, at most 16 ones."""
    return len(ksn) == KSN_LENGTH and AES_COUNTER.is_valid(split_ksn(ksn)[1])


def derivation_data(usage: KeyUsage, key_type: KeyType, data: bytes, block: int = 1) -> bytes:
    """The 16 bytes of derivation data for one output block ("Create Derivation Data")."""
    if len(data) != 8:
        raise CryptoError("derivation data carries 8 bytes of key ID / counter")
    return (bytes([0x01, block]) + usage.to_bytes(2, "big") + key_type.algorithm.to_bytes(2, "big")
            + key_type.bits.to_bytes(2, "big") + data)


def derive_key(key: bytes, usage: KeyUsage, key_type: KeyType, data: bytes) -> bytes:
    """"Derive Key": AES-ECB of the derivation data under ``key``, a block per 128 bits, truncated."""
    derivation_type = KeyType.aes_for(key)
    if key_type.is_aes and key_type.bits > derivation_type.bits:  # §6: never derive a stronger key
        raise CryptoError(f"cannot derive {key_type.name} from a {derivation_type.name} key")
    blocks = -(-key_type.bits // 128)
    out = b"".join(aes_ecb_encrypt(key, derivation_data(usage, key_type, data, block))
                   for block in range(1, blocks + 1))
    return out[: key_type.bits // 8]


def initial_key(bdk: bytes, initial_key_id: bytes) -> bytes:
    """The IK: the BDK over derivation data for usage "initial key" and the 8-byte initial key ID.

    A 12-byte KSN is accepted too; its counter is ignored.
    """
    if len(initial_key_id) == KSN_LENGTH:
        initial_key_id = initial_key_id[:INITIAL_KEY_ID_LENGTH]
    if len(initial_key_id) != INITIAL_KEY_ID_LENGTH:
        raise CryptoError(f"an AES DUKPT initial key ID is 8 bytes, not {len(initial_key_id)}")
    return derive_key(bdk, KeyUsage.INITIAL_KEY, KeyType.aes_for(bdk), initial_key_id)


def _derivation_step(key_type: KeyType, initial_key_id: bytes) -> Step:
    """One step down the key tree: a counter's intermediate derivation key from its parent's."""
    derivation_id = initial_key_id[4:]

    def step(key: bytes, counter: int) -> bytes:
        return derive_key(key, KeyUsage.KEY_DERIVATION, key_type, derivation_id + counter.to_bytes(4, "big"))

    return step


def derivation_key(ik: bytes, ksn: bytes) -> bytes:
    """The receiving side: the intermediate derivation key of the KSN's transaction, from the IK.

    Raises:
        CryptoError: wrong lengths, or a zero counter (the IK itself is never a transaction key).
    """
    initial_key_id, counter = split_ksn(ksn)
    if counter == 0:
        raise CryptoError("a KSN with a zero counter names no transaction")
    step = _derivation_step(KeyType.aes_for(ik), initial_key_id)
    return derive_along_counter(step, AES_COUNTER.width, ik, counter)


def working_key(derivation_key: bytes, ksn: bytes, usage: KeyUsage, key_type: KeyType) -> bytes:
    """A working key (PIN, MAC, data …) of ``key_type`` from a transaction's derivation key."""
    initial_key_id, counter = split_ksn(ksn)
    return derive_key(derivation_key, usage, key_type, initial_key_id[4:] + counter.to_bytes(4, "big"))


def host_working_key(bdk: bytes, ksn: bytes, usage: KeyUsage, key_type: KeyType) -> bytes:
    """The receiving side from the BDK: IK, then the transaction's derivation key, then the working key."""
    return working_key(derivation_key(initial_key(bdk, ksn), ksn), ksn, usage, key_type)


class AesDukptDevice(DukptDevice):
    """The originating side (a PIN pad) after "Load Initial Key" (X9.24-3-2017 §6).

    Args:
        ik: the initial key injected into the device (AES-128, -192 or -256).
        ksn: the initial KSN (initial key ID + zero counter). A non-zero counter resumes a device whose next
            transaction uses that KSN (see :class:`emv.crypto.dukpt.FutureKeys`).

    Raises:
        CryptoError: wrong lengths, or a counter a device could never reach.
    """

    def __init__(self, ik: bytes, ksn: bytes) -> None:
        initial_key_id, counter = split_ksn(ksn)
        step = _derivation_step(KeyType.aes_for(ik), initial_key_id)
        super().__init__(FutureKeys(AES_COUNTER, step, ik, counter or 1), functools.partial(make_ksn, initial_key_id))
