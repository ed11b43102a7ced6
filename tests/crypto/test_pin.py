"""The PIN facade end to end: PIN pad side (DukptPinEncryptor) against host side (decrypt_pin_block).

Published vectors used here:
  tdes  ANSI X9.24-1:2009 A.4.2 (openemv/dukpt test/dukpt_tdes_test.c): IPEK and the encrypted PIN blocks of
        the first KSNs for PIN 1234, PAN 4012345678909.
  aes   ANSI X9.24-3-2017 B.1 / supplement: IK 1273671E…; format 4 blocks for PIN 1234, PAN 4111111111111111,
        random 2F69ADDE2E9E7ACE under the PIN keys of transactions 1-3 (teamforage/forage-android-sdk
        PinBlockIso4Test.kt).
  KCV   RFC 4493 §4 AES-CMAC examples 1 and 2; the TDES KCV of the X9.24 test BDK (08D7B4).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from emv.crypto.des import aes_ecb_encrypt, odd_parity
from emv.crypto.pin import (
    DukptPinEncryptor,
    Scheme,
    aes_cmac,
    decrypt_pin_block,
    derive_initial_key,
    key_check_value,
)
from pos_errors import CryptoError, LocalProtocolError

TDES_BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TDES_KSN = bytes.fromhex("FFFF9876543210E00000")
TDES_IPEK = bytes.fromhex("6AC292FAA1315B4D858AB3A3D7D5933A")
AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
AES_KSN = bytes.fromhex("123456789012345600000000")
AES_IK = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")

TDES_BLOCKS = ["1B9C1845EB993A7A", "10A01C8D02C69107", "18DC07B94797B466", "0BC79509D5645DF7",
               "5BC0AF22AD87B327", "A16DF70AE36158D8", "27711C16CB257F8E", "50E55547A5027551"]
SCHEMES = [("tdes", TDES_BDK, TDES_KSN), ("aes", AES_BDK, AES_KSN)]
AES_BLOCKS = ["A912150391AB65A67E52883D81CE2D15", "52A00503BD34BA1383F6A7EE9FE2547F",
              "A5A27E82B43A9A866A93D7ABE89CEF93"]


def _fill(fill: bytes) -> Callable[[int], bytes]:
    return lambda n: fill[:n]


def _counting(fill: bytes) -> tuple[list[int], Callable[[int], bytes]]:
    calls: list[int] = []

    def random_bytes(n: int) -> bytes:
        calls.append(n)
        return fill[:n]

    return calls, random_bytes


def test_derive_initial_key() -> None:
    assert derive_initial_key("tdes", TDES_BDK, TDES_KSN) == TDES_IPEK
    assert derive_initial_key("aes", AES_BDK, AES_KSN) == AES_IK
    with pytest.raises(CryptoError):
        derive_initial_key("aes", AES_BDK, AES_KSN[:8])  # the facade takes a whole 12-byte KSN
    with pytest.raises(CryptoError):
        derive_initial_key("des", TDES_BDK, TDES_KSN)  # type: ignore[arg-type]


def test_tdes_pin_pad_reproduces_annex_a() -> None:
    pad = DukptPinEncryptor("tdes", TDES_IPEK, TDES_KSN)
    assert pad.block_format == 0 and pad.remaining == 1_048_575
    for counter, expected in enumerate(TDES_BLOCKS, start=1):
        block, ksn = pad.encrypt_pin("1234", "4012345678909")
        assert ksn == TDES_KSN[:-1] + bytes([counter])
        assert block.hex().upper() == expected
        assert decrypt_pin_block("tdes", TDES_BDK, ksn, block, "4012345678909") == "1234"
    assert pad.remaining == 1_048_575 - len(TDES_BLOCKS)


def test_aes_pin_pad_reproduces_the_x924_3_format4_blocks() -> None:
    calls, random_bytes = _counting(bytes.fromhex("2F69ADDE2E9E7ACE"))
    pad = DukptPinEncryptor("aes", AES_IK, AES_KSN, random_bytes)
    assert pad.block_format == 4 and pad.remaining == 2_448_023_842
    for counter, expected in enumerate(AES_BLOCKS, start=1):
        block, ksn = pad.encrypt_pin("1234", "4111111111111111")
        assert ksn == AES_KSN[:-1] + bytes([counter])
        assert block.hex().upper() == expected
        assert decrypt_pin_block("aes", AES_BDK, ksn, block, "4111111111111111") == "1234"
    assert calls == [8, 8, 8]


@pytest.mark.parametrize(("scheme", "bdk", "initial_ksn"), SCHEMES)
def test_end_to_end_over_many_counters(scheme: Scheme, bdk: bytes, initial_ksn: bytes) -> None:
    rng = random.Random(9564)  # deterministic PINs, PANs and fill
    pad = DukptPinEncryptor(scheme, derive_initial_key(scheme, bdk, initial_ksn), initial_ksn, rng.randbytes)
    seen_ksns, seen_blocks = set(), set()
    for _ in range(150):
        pin = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 12)))
        pan = "".join(rng.choice("0123456789") for _ in range(rng.randint(12, 19)))
        block, ksn = pad.encrypt_pin(pin, pan)
        assert decrypt_pin_block(scheme, bdk, ksn, block, pan) == pin
        seen_ksns.add(ksn)
        seen_blocks.add(block)
    assert len(seen_ksns) == 150 and len(seen_blocks) == 150  # a fresh key, hence a fresh block, every time


@pytest.mark.parametrize(
    ("scheme", "ikey", "last_ksn"),
    [
        ("tdes", TDES_IPEK, bytes.fromhex("FFFF9876543210FFF800")),  # counter 0x1FF800: ten ones, the last
        ("aes", AES_IK, bytes.fromhex("1234567890123456FFFF0000")),  # counter 0xFFFF0000: sixteen ones
    ],
)
def test_counter_exhaustion(scheme: Scheme, ikey: bytes, last_ksn: bytes) -> None:
    bdk = TDES_BDK if scheme == "tdes" else AES_BDK
    pad = DukptPinEncryptor(scheme, ikey, last_ksn, _fill(bytes(8)))
    assert pad.remaining == 1 and pad.ksn == last_ksn
    block, ksn = pad.encrypt_pin("4321", "4111111111111111")
    assert ksn == last_ksn
    assert decrypt_pin_block(scheme, bdk, ksn, block, "4111111111111111") == "4321"
    assert pad.remaining == 0 and pad.ksn is None
    for _ in range(2):
        with pytest.raises(CryptoError, match="exhausted"):
            pad.encrypt_pin("4321", "4111111111111111")
    assert "exhausted" in repr(pad)


@pytest.mark.parametrize(("scheme", "ikey", "ksn"), [("tdes", TDES_IPEK, TDES_KSN), ("aes", AES_IK, AES_KSN)])
def test_bad_input_does_not_consume_a_counter(scheme: Scheme, ikey: bytes, ksn: bytes) -> None:
    pad = DukptPinEncryptor(scheme, ikey, ksn, _fill(bytes(8)))
    before = pad.ksn
    for pin, pan in [("123", "4111111111111111"), ("1234", "41111111"[:7]), ("12a4", "4111111111111111")]:
        with pytest.raises(LocalProtocolError):
            pad.encrypt_pin(pin, pan)
    assert pad.ksn == before


def test_a_failing_random_source_does_not_consume_a_counter() -> None:
    pad = DukptPinEncryptor("aes", AES_IK, AES_KSN, lambda n: bytes(n - 1))
    with pytest.raises(CryptoError):
        pad.encrypt_pin("1234", "4111111111111111")
    assert pad.remaining == 2_448_023_842


@pytest.mark.parametrize(("scheme", "bdk", "ksn"), SCHEMES)
def test_wrong_key_never_yields_the_right_pin(scheme: Scheme, bdk: bytes, ksn: bytes) -> None:
    rng = random.Random(4)
    pad = DukptPinEncryptor(scheme, derive_initial_key(scheme, bdk, ksn), ksn, rng.randbytes)
    errors = 0
    for _ in range(60):
        block, used = pad.encrypt_pin("9876", "4111111111111111")
        # a random other BDK; DES ignores the parity bits, so "other" must differ outside them
        wrong_bdk = rng.randbytes(len(bdk))
        assert odd_parity(wrong_bdk) != odd_parity(bdk)
        next_ksn = pad.ksn
        assert next_ksn is not None
        for key, tried_ksn in ((wrong_bdk, used), (bdk, next_ksn)):  # wrong BDK; right BDK, wrong counter
            try:
                assert decrypt_pin_block(scheme, key, tried_ksn, block, "4111111111111111") != "9876"
            except CryptoError:
                errors += 1
    assert errors > 60  # a wrong key almost always yields a malformed block, not merely another PIN


@pytest.mark.parametrize(
    ("scheme", "ksn", "block"),
    [
        ("tdes", bytes.fromhex("FFFF9876543210E00001"), bytes(7)),  # block length
        ("tdes", bytes.fromhex("FFFF9876543210E00001")[:9], bytes(8)),  # KSN length
        ("tdes", bytes.fromhex("FFFF9876543210E00000"), bytes(8)),  # zero counter
        ("tdes", bytes.fromhex("FFFF9876543210E007FF"), bytes(8)),  # eleven one bits
        ("aes", bytes.fromhex("123456789012345600000001"), bytes(8)),  # a format 0 sized block
        ("aes", bytes.fromhex("12345678901234560001FFFF"), bytes(16)),  # seventeen one bits
        ("aes", bytes.fromhex("1234567890123456000001"), bytes(16)),  # KSN length
    ],
)
def test_malformed_host_input_raises_crypto_error(scheme: Scheme, ksn: bytes, block: bytes) -> None:
    bdk = TDES_BDK if scheme == "tdes" else AES_BDK
    with pytest.raises(CryptoError):
        decrypt_pin_block(scheme, bdk, ksn, block, "4111111111111111")


def test_repr_hides_keys_and_pins() -> None:
    pad = DukptPinEncryptor("aes", AES_IK, AES_KSN, _fill(bytes(8)))
    pad.encrypt_pin("1234", "4111111111111111")
    text = repr(pad)
    assert "123456789012345600000002" in text
    assert AES_IK.hex().upper() not in text.upper() and "1234'" not in text and "4111111111111111" not in text


# --- key check values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "tag"),
    [
        ("", "BB1D6929E95937287FA37D129B756746"),  # RFC 4493 example 1
        ("6BC1BEE22E409F96E93D7E117393172A", "070A16B46B4D4144F79BDD9DD04A287C"),  # RFC 4493 example 2
    ],
)
def test_aes_cmac_rfc4493(message: str, tag: str) -> None:
    key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
    assert aes_cmac(key, bytes.fromhex(message)).hex().upper() == tag


def _cmac_of_zero_block(key: bytes) -> bytes:
    # NIST SP 800-38B by hand: L = E(0); K1 = L doubled in GF(2^128); one full block M: tag = E(M xor K1)
    value = int.from_bytes(aes_ecb_encrypt(key, bytes(16)), "big") << 1
    if value >> 128:
        value ^= (1 << 128) | 0x87
    return aes_ecb_encrypt(key, value.to_bytes(16, "big"))


@pytest.mark.parametrize("key", [AES_BDK, AES_IK, AES_BDK * 2, bytes(range(24))])
def test_aes_kcv_is_cmac_of_a_zero_block(key: bytes) -> None:
    assert key_check_value(key, "aes") == _cmac_of_zero_block(key)[:3]


def test_tdes_kcv() -> None:
    assert key_check_value(TDES_BDK, "tdes").hex().upper() == "08D7B4"
    assert key_check_value(TDES_BDK[:8]) == key_check_value(TDES_BDK[:8] * 2, "tdes")  # single DES = K1=K2
    # without a scheme, 16 bytes mean AES (the product's default scheme)
    assert key_check_value(TDES_BDK) == _cmac_of_zero_block(TDES_BDK)[:3] != key_check_value(TDES_BDK, "tdes")
