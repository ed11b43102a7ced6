"""ISO 9564-1 PIN blocks, formats 0 and 4 (emv/crypto/pinblock.py).

Published vectors:
  format 0  ANSI X9.24-1:2009 A.4: PIN 1234, PAN 4012345678909 -> clear PIN block 041274EDCBA9876F.
  format 4  ANSI X9.24-3-2017 supplement test vectors, "Calculation of AES PIN Block Format 4": PIN 1234, PAN
            4111111111111111, random 2F69ADDE2E9E7ACE, PIN key AF8CB133A78F8DC2D1359F18527593FB -> PIN
            field 441234AAAAAAAAAA2F69ADDE2E9E7ACE, PAN field 44111111111111111000000000000000, enciphered
            block A912150391AB65A67E52883D81CE2D15; with the PIN keys of transactions 2 and 3 -> 52A00503…,
            A5A27E82… (as reproduced in the openemv project's pinblock_format4_test.c for the fields, and in
            teamforage/forage-android-sdk .../pos/encryption/PinBlockIso4Test.kt for the blocks).
  format 4  knovichikhin/psec psec/pinblock.py, decipher_pinblock_iso_4 docstring: key 00112233…EEFF, PAN
            1234567890123456, block E4BE5B623AF7E006AC319E5B93544564 -> PIN 1234.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emv.crypto.des import aes_ecb_encrypt, xor
from emv.crypto.pinblock import (
    decipher_format0,
    decipher_format4,
    decode_format0,
    decode_pin_field_format4,
    encipher_format0,
    encipher_format4,
    encode_format0,
    pan_field_format0,
    pan_field_format4,
    pin_field_format0,
    pin_field_format4,
)
from pos_errors import CryptoError, LocalProtocolError

X924_3_FILL = bytes.fromhex("2F69ADDE2E9E7ACE")
X924_3_PIN_KEY = bytes.fromhex("AF8CB133A78F8DC2D1359F18527593FB")

pins = st.text(alphabet="0123456789", min_size=4, max_size=12)
pans = st.text(alphabet="0123456789", min_size=8, max_size=19)


def _fixed(fill: bytes) -> Callable[[int], bytes]:
    def random_bytes(n: int) -> bytes:
        assert n == len(fill)  # the encoder asks for exactly the 8 random bytes of format 4
        return fill

    return random_bytes


# --- format 0 ---------------------------------------------------------------------------------------------


def test_format0_annex_a_example() -> None:
    assert pin_field_format0("1234").hex().upper() == "041234FFFFFFFFFF"
    assert pan_field_format0("4012345678909").hex().upper() == "0000401234567890"
    assert encode_format0("1234", "4012345678909").hex().upper() == "041274EDCBA9876F"
    assert decode_format0(bytes.fromhex("041274EDCBA9876F"), "4012345678909") == "1234"


@pytest.mark.parametrize(
    ("pin", "field"),
    [("12345", "0512345FFFFFFFFF"), ("123456789012", "0C123456789012FF")],
)
def test_format0_pin_field_lengths(pin: str, field: str) -> None:
    assert pin_field_format0(pin).hex().upper() == field


def test_format0_pan_field_takes_twelve_digits_before_the_check_digit() -> None:
    assert pan_field_format0("5413339000001513").hex().upper() == "0000333900000151"
    assert pan_field_format0("12345678").hex().upper() == "0000000001234567"  # short PAN: left zero fill


@pytest.mark.parametrize(
    "block",
    [
        "141274EDCBA9876F",  # control field 1
        "031274EDCBA9876F",  # PIN length 3
        "0D1274EDCBA9876F",  # PIN length 13
        "041274EDCBA9876E",  # fill not all F
        "04127AEDCBA9876F",  # a PIN nibble that is not a digit
        "041274EDCBA987",  # 7 bytes
    ],
)
def test_format0_malformed_blocks_raise_crypto_error(block: str) -> None:
    with pytest.raises(CryptoError):
        decode_format0(bytes.fromhex(block), "4012345678909")


@given(pin=pins, pan=pans, key=st.binary(min_size=16, max_size=16))
def test_format0_round_trip(pin: str, pan: str, key: bytes) -> None:
    assert decode_format0(encode_format0(pin, pan), pan) == pin
    assert decipher_format0(key, encipher_format0(key, pin, pan), pan) == pin


@given(block=st.binary(min_size=8, max_size=8), pan=pans)
def test_format0_decoding_garbage_gives_a_pin_or_crypto_error(block: bytes, pan: str) -> None:
    try:
        pin = decode_format0(block, pan)
    except CryptoError:
        return
    assert 4 <= len(pin) <= 12 and pin.isdigit()
    assert encode_format0(pin, pan) == block  # anything accepted is exactly a valid block


# --- format 4 ---------------------------------------------------------------------------------------------


def test_format4_x924_3_supplement_example_with_intermediates() -> None:
    pin_field = pin_field_format4("1234", _fixed(X924_3_FILL))
    pan_field = pan_field_format4("4111111111111111")
    assert pin_field.hex().upper() == "441234AAAAAAAAAA2F69ADDE2E9E7ACE"
    assert pan_field.hex().upper() == "44111111111111111000000000000000"
    # ISO 9564-1 format 4: A = E(PIN field), B = A XOR PAN field, block = E(B). The supplement's intermediate
    # blocks, as transcribed in one public knowledge base (a single source), agree:
    block_a = aes_ecb_encrypt(X924_3_PIN_KEY, pin_field)
    assert block_a.hex().upper() == "DE84127CF6DCA7DFE47BDE89057CB820"
    assert xor(block_a, pan_field).hex().upper() == "9A95036DE7CDB6CEF47BDE89057CB820"
    block = encipher_format4(X924_3_PIN_KEY, "1234", "4111111111111111", _fixed(X924_3_FILL))
    assert block.hex().upper() == "A912150391AB65A67E52883D81CE2D15"
    assert decipher_format4(X924_3_PIN_KEY, block, "4111111111111111") == "1234"


@pytest.mark.parametrize(
    ("key", "block"),
    [
        ("D30BDC73EC9714B000BEC66BDB7B6D09", "52A00503BD34BA1383F6A7EE9FE2547F"),  # transaction 2 PIN key
        ("7D69F01F3B45449F62C7816ECE723268", "A5A27E82B43A9A866A93D7ABE89CEF93"),  # transaction 3 PIN key
    ],
)
def test_format4_more_supplement_blocks(key: str, block: str) -> None:
    enciphered = encipher_format4(bytes.fromhex(key), "1234", "4111111111111111", _fixed(X924_3_FILL))
    assert enciphered.hex().upper() == block


def test_format4_psec_decipher_example() -> None:
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    block = bytes.fromhex("E4BE5B623AF7E006AC319E5B93544564")
    assert decipher_format4(key, block, "1234567890123456") == "1234"


@pytest.mark.parametrize(
    ("pan", "field"),
    [
        # the hand-made examples of openemv's pinblock_format4_test.c (cross-implementation, not a standard)
        ("411111111111111", "34111111111111110000000000000000"),  # 15 digits: M = 3
        ("123456789", "00001234567890000000000000000000"),  # shorter than 12: M = 0, zero fill on the left
        ("4111111111111111111", "74111111111111111111000000000000"),  # 19 digits: M = 7
    ],
)
def test_format4_pan_field(pan: str, field: str) -> None:
    assert pan_field_format4(pan).hex().upper() == field


def test_format4_odd_pin_length_field() -> None:
    field = pin_field_format4("12345", _fixed(bytes(8)))
    assert field.hex().upper() == "4512345AAAAAAAAA0000000000000000"


@pytest.mark.parametrize(
    "field",
    [
        "341234AAAAAAAAAA2F69ADDE2E9E7ACE",  # control 3
        "431234AAAAAAAAAA2F69ADDE2E9E7ACE",  # PIN length 3
        "441234AAAAAAAAAB2F69ADDE2E9E7ACE",  # fill not all A
        "4412F4AAAAAAAAAA2F69ADDE2E9E7ACE",  # PIN nibble F
        "441234AAAAAAAAAA2F69ADDE2E9E7A",  # 15 bytes
    ],
)
def test_format4_malformed_pin_fields_raise_crypto_error(field: str) -> None:
    with pytest.raises(CryptoError):
        decode_pin_field_format4(bytes.fromhex(field))


aes_keys = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@given(pin=pins, pan=pans, key=aes_keys, fill=st.binary(min_size=8, max_size=8))
def test_format4_round_trip(pin: str, pan: str, key: bytes, fill: bytes) -> None:
    block = encipher_format4(key, pin, pan, _fixed(fill))
    assert len(block) == 16
    assert decipher_format4(key, block, pan) == pin


@given(block=st.binary(min_size=16, max_size=16), pan=pans)
def test_format4_deciphering_garbage_gives_a_pin_or_crypto_error(block: bytes, pan: str) -> None:
    try:
        pin = decipher_format4(X924_3_PIN_KEY, block, pan)
    except CryptoError:
        return
    assert 4 <= len(pin) <= 12 and pin.isdigit()


def test_format4_random_fill_makes_each_block_different() -> None:
    first = encipher_format4(X924_3_PIN_KEY, "1234", "4111111111111111", _fixed(bytes(8)))
    second = encipher_format4(X924_3_PIN_KEY, "1234", "4111111111111111", _fixed(b"\x01" + bytes(7)))
    assert first != second
    assert decipher_format4(X924_3_PIN_KEY, first, "4111111111111111") == "1234"
    assert decipher_format4(X924_3_PIN_KEY, second, "4111111111111111") == "1234"


def test_format4_wrong_pan_never_yields_the_pin() -> None:
    block = encipher_format4(X924_3_PIN_KEY, "1234", "4111111111111111", _fixed(X924_3_FILL))
    for other in ("4111111111111112", "5111111111111111", "411111111111111"):
        try:
            assert decipher_format4(X924_3_PIN_KEY, block, other) != "1234"
        except CryptoError:
            pass


def test_format4_rejects_a_short_random_source() -> None:
    with pytest.raises(CryptoError):
        pin_field_format4("1234", lambda n: bytes(n - 1))


# --- input validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", "12 34", "١٢٣٤", ""])
def test_bad_pins_are_refused_without_echoing_them(pin: str) -> None:
    for encode in (lambda: pin_field_format0(pin), lambda: pin_field_format4(pin, _fixed(bytes(8)))):
        with pytest.raises(LocalProtocolError) as caught:
            encode()
        assert pin == "" or pin not in str(caught.value)


@pytest.mark.parametrize("pan", ["1234567", "12345678901234567890", "41111111111111x1", "４１１１１１１１"])
def test_bad_pans_are_refused_without_echoing_them(pan: str) -> None:
    for encode in (lambda: pan_field_format0(pan), lambda: pan_field_format4(pan)):
        with pytest.raises(LocalProtocolError) as caught:
            encode()
        assert pan not in str(caught.value)
