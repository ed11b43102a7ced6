"""ISO 9564-1 PIN blocks: format 0 (TDES, 8 bytes) and format 4 (AES, 16 bytes).

Format 0 XORs a PIN field with a PAN field and enciphers the result::

    PIN field  0 | N | PIN digits | F… (16 nibbles)
    PAN field  0000 | 12 rightmost PAN digits excluding the check digit

Format 4 (ISO 9564-1, for AES) keeps the PIN field in its own AES block and chains the PAN field between two
encipherments (encipher, XOR the PAN field, encipher again)::

    PIN field  4 | N | PIN digits | A… (to 16 nibbles) | 16 random nibbles
    PAN field  M | PAN (12 + M digits, left-padded with 0 to 12) | 0… (to 32 nibbles),  M = len(PAN) - 12

PINs are 4 to 12 digits. PANs are 8 to 19 digits (ISO/IEC 7812-1). The random fill comes from an injectable
``random_bytes(n)`` so tests can be deterministic. No PIN or PAN appears in any exception message.

>>> pin_field_format0("1234").hex().upper(), pan_field_format0("4012345678909").hex().upper()
('041234FFFFFFFFFF', '0000401234567890')
"""

from __future__ import annotations

import os
from collections.abc import Callable

from emv.crypto.des import aes_ecb_decrypt, aes_ecb_encrypt, tdes_ecb_decrypt, tdes_ecb_encrypt, xor
from pos_errors import CryptoError, LocalProtocolError

__all__ = [
    "PIN_MIN_LENGTH",
    "PIN_MAX_LENGTH",
    "RandomBytes",
    "validate_pin",
    "validate_pan",
    "pin_field_format0",
    "pan_field_format0",
    "encode_format0",
    "decode_format0",
    "encipher_format0",
    "decipher_format0",
    "pin_field_format4",
    "pan_field_format4",
    "decode_pin_field_format4",
    "encipher_format4",
    "decipher_format4",
]

PIN_MIN_LENGTH, PIN_MAX_LENGTH = 4, 12
PAN_MIN_LENGTH, PAN_MAX_LENGTH = 8, 19

RandomBytes = Callable[[int], bytes]


def validate_pin(pin: str) -> None:
    """Raise LocalProtocolError unless ``pin`` is 4 to 12 ASCII decimal digits."""
    # str.isdigit() alone accepts other scripts' digits; a PIN is ASCII 0-9 only
    if not (PIN_MIN_LENGTH <= len(pin) <= PIN_MAX_LENGTH and pin.isascii() and pin.isdigit()):
        raise LocalProtocolError(f"a PIN is {PIN_MIN_LENGTH} to {PIN_MAX_LENGTH} decimal digits")


def validate_pan(pan: str) -> None:
    """Raise LocalProtocolError unless ``pan`` is 8 to 19 ASCII decimal digits."""
    if not (PAN_MIN_LENGTH <= len(pan) <= PAN_MAX_LENGTH and pan.isascii() and pan.isdigit()):
        raise LocalProtocolError(f"a PAN is {PAN_MIN_LENGTH} to {PAN_MAX_LENGTH} decimal digits")


def _nibbles(data: bytes) -> str:
    return data.hex().upper()


def _decode_pin_nibbles(nibbles: str, control: str, fill: str) -> str:
    """Decode ``control | N | PIN | fill…`` (16 nibbles); CryptoError if any part is malformed."""
    if nibbles[0] != control:
        raise CryptoError(f"not an ISO 9564 format {control} PIN block (control field {nibbles[0]})")
    length = int(nibbles[1], 16)
    if not PIN_MIN_LENGTH <= length <= PIN_MAX_LENGTH:
        raise CryptoError("PIN block has an invalid PIN length")
    digits, rest = nibbles[2 : 2 + length], nibbles[2 + length : 16]
    if not digits.isdigit():
        raise CryptoError("PIN block holds a non-decimal PIN digit")
    if rest != fill * len(rest):
        raise CryptoError("PIN block fill is incorrect")
    return digits


# --- format 0 ---------------------------------------------------------------------------------------------


def pin_field_format0(pin: str) -> bytes:
    """The 8-byte format 0 plaintext PIN field."""
    validate_pin(pin)
    return bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))


def pan_field_format0(pan: str) -> bytes:
    """The 8-byte format 0 PAN field: 0000, then the 12 rightmost PAN digits before the check digit."""
    validate_pan(pan)
    return bytes.fromhex("0000" + pan[:-1][-12:].rjust(12, "0"))


def encode_format0(pin: str, pan: str) -> bytes:
    """The clear format 0 PIN block (PIN field XOR PAN field)."""
    return xor(pin_field_format0(pin), pan_field_format0(pan))


def decode_format0(block: bytes, pan: str) -> str:
    """The PIN in a clear format 0 PIN block.

    Raises:
        CryptoError: the block is not 8 bytes or not a well-formed format 0 block for this PAN.
        LocalProtocolError: the PAN is malformed.
    """
    if len(block) != 8:
        raise CryptoError(f"a format 0 PIN block is 8 bytes, not {len(block)}")
    return _decode_pin_nibbles(_nibbles(xor(block, pan_field_format0(pan))), "0", "F")


def encipher_format0(key: bytes, pin: str, pan: str) -> bytes:
    """Format 0 enciphered under a TDES key (ECB, one block)."""
    return tdes_ecb_encrypt(key, encode_format0(pin, pan))


def decipher_format0(key: bytes, block: bytes, pan: str) -> str:
    """The PIN in a format 0 block enciphered under a TDES key; errors as :func:`decode_format0`."""
    if len(block) != 8:
        raise CryptoError(f"a format 0 PIN block is 8 bytes, not {len(block)}")
    return decode_format0(tdes_ecb_decrypt(key, block), pan)


# --- format 4 ---------------------------------------------------------------------------------------------


def pin_field_format4(pin: str, random_bytes: RandomBytes = os.urandom) -> bytes:
    """The 16-byte format 4 plaintext PIN field; its last 8 bytes are ``random_bytes(8)``.

    Raises:
        LocalProtocolError: the PIN is malformed.
        CryptoError: ``random_bytes`` did not return 8 bytes.
    """
    validate_pin(pin)
    fill = random_bytes(8)
    if not isinstance(fill, bytes) or len(fill) != 8:
        raise CryptoError("the random fill source must return 8 bytes")
    return bytes.fromhex(f"4{len(pin):X}{pin}".ljust(16, "A")) + fill


def pan_field_format4(pan: str) -> bytes:
    """The 16-byte format 4 PAN field: the PAN length minus 12, then the PAN (zero-padded to 12 digits on the
    left if shorter), then zeros."""
    validate_pan(pan)
    indicator = max(len(pan) - 12, 0)
    return bytes.fromhex(f"{indicator}{pan.rjust(12, '0')}".ljust(32, "0"))


def decode_pin_field_format4(field: bytes) -> str:
    """The PIN in a format 4 plaintext PIN field (the random half is not checked: it is random).

    Raises:
        CryptoError: the field is not 16 bytes or malformed.
    """
    if len(field) != 16:
        raise CryptoError(f"a format 4 PIN field is 16 bytes, not {len(field)}")
    return _decode_pin_nibbles(_nibbles(field[:8]), "4", "A")


def encipher_format4(key: bytes, pin: str, pan: str, random_bytes: RandomBytes = os.urandom) -> bytes:
    """Format 4 under an AES key: block A = E(PIN field); block B = A XOR PAN field; result = E(B)."""
    pan_field = pan_field_format4(pan)  # validate both inputs before drawing random bytes
    block_a = aes_ecb_encrypt(key, pin_field_format4(pin, random_bytes))
    return aes_ecb_encrypt(key, xor(block_a, pan_field))


def decipher_format4(key: bytes, block: bytes, pan: str) -> str:
    """The PIN in a format 4 block: B = D(block); A = B XOR PAN field; PIN field = D(A).

    Raises:
        CryptoError: the block is not 16 bytes, or does not decipher to a format 4 PIN field.
        LocalProtocolError: the PAN is malformed.
    """
    if len(block) != 16:
        raise CryptoError(f"a format 4 PIN block is 16 bytes, not {len(block)}")
    block_a = xor(aes_ecb_decrypt(key, block), pan_field_format4(pan))
    return decode_pin_field_format4(aes_ecb_decrypt(key, block_a))
