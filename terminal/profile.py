"""The terminal's profile (``[terminal] profile``): what a ``production`` terminal refuses to boot with.

The configuration side (test CA keys, ``insecure_plaintext``) is refused when the file is loaded
(``terminal.config``, ``emv.config.trusted_capks``). This module is the device side, checked at boot: a PIN pad
whose DUKPT key is one of the published test keys — its initial key ID is that of the ANSI X9.24 test vectors,
so anyone can compute every PIN block key it will use.

>>> pin_test_key_id("production", b"\\x12\\x34\\x56\\x78\\x90\\x12\\x34\\x56\\x00\\x00\\x00\\x05")
'1234567890123456'
>>> pin_test_key_id("test", bytes.fromhex("123456789012345600000005")) is None
True
"""

from __future__ import annotations

__all__ = ["TEST_PIN_KEY_IDS", "pin_test_key_id"]

# Initial key IDs of published DUKPT test keys: X9.24-3-2017 B.1 (AES, BDK FEDCBA98…F1F1), X9.24-1-2009 A.4
# (TDES, BDK 01234567…3210: initial KSN FFFF9876543210E00000, key set ID with the 21 counter bits zeroed).
TEST_PIN_KEY_IDS = frozenset({bytes.fromhex("1234567890123456"), bytes.fromhex("FFFF9876543210E0")})


def _initial_key_id(ksn: bytes) -> bytes:
    if len(ksn) == 12:  # AES DUKPT: 8-byte initial key ID + 32-bit counter
        return ksn[:8]
    if len(ksn) == 10:  # TDES DUKPT: the counter is the low 21 bits
        return ksn[:7] + bytes([ksn[7] & 0xE0])
    return ksn


def pin_test_key_id(profile: str, ksn: bytes | None) -> str | None:
    """The test key's ID (hex) when a production terminal's PIN pad holds a published test key, else None."""
    if profile != "production" or not ksn:
        return None
    key_id = _initial_key_id(ksn)
    return key_id.hex().upper() if key_id in TEST_PIN_KEY_IDS else None
