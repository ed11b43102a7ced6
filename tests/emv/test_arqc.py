"""Application cryptogram crypto against published vectors, and the AC input our card and acquirer share.

Sources (all from knovichikhin/pyemv, cross-checked there against a payment HSM):
- ``pyemv/kd.py`` docstrings: option A ICC master keys and a common session key.
- ``pyemv/ac.py`` docstrings: an AC over the Book 2 minimum data set and an ARPC method 1.
- ``tests/test_kd_hsm.py``: option A with PSN → check values, AC and ARPC method 1 chained.
- ``tests/test_cvn_hsm.py`` (Visa CVN 18): PAN → option A → common session key from ATC 001C → ARQC.
Key check values are the first 2 bytes of TDES(key)[00..00].
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emv.crypto import arqc
from emv.crypto.des import odd_parity, tdes_ecb_encrypt
from pos_errors import CryptoError, LocalProtocolError

IMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def kcv(key: bytes) -> str:
    return tdes_ecb_encrypt(key, bytes(8))[:2].hex().upper()


@pytest.mark.parametrize(("pan", "psn", "expected"), [
    ("12345678901234567", "01", "73AD54688CEF2934B0979857E3C719F1"),  # pyemv kd.derive_icc_mk_a docstring
    ("99012345678901234", "45", "67F8292358083E5EA7AB7FDA58D53B6B"),  # pyemv kd module docstring
])
def test_icc_master_key_option_a(pan: str, psn: str, expected: str) -> None:
    assert arqc.derive_icc_master_key(IMK, pan, psn).hex().upper() == expected


def test_icc_master_key_check_values() -> None:
    # pyemv tests/test_kd_hsm.py: IMK KCV 08D7, option A with PSN 45 -> FF08; tests/test_cvn_hsm.py: BAB0
    assert kcv(IMK) == "08D7"
    assert kcv(arqc.derive_icc_master_key(IMK, "12345678901234567", "45")) == "FF08"
    assert kcv(arqc.derive_icc_master_key(IMK, "1234567890123456", "00")) == "BAB0"


def test_common_session_key() -> None:
    # pyemv kd.derive_common_sk docstring: MK = IMK above, R = 001C000000000000
    sk = arqc.derive_session_key(IMK, bytes.fromhex("001C"))
    assert sk.hex().upper() == "E9FB384AF807B940FEDCEA613461B0C4"


def test_generate_ac_minimum_data_set() -> None:
    # pyemv ac.generate_ac docstring: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36 under SK AAAA..BBBB
    sk = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
    data = bytes.fromhex("000000002000" "000000000000" "0124" "0000008000" "0124" "110309" "00" "3804823E"
                         "5800" "0001")
    assert arqc.generate_ac(sk, data).hex().upper() == "3B76CF10FECD8789"


def test_generate_ac_two_full_blocks() -> None:
    # pyemv tests/test_kd_hsm.py test_derive_common_sk: ARQC over 0123456789ABCDEF x2 under the session key
    # whose KCV is DF82 (derived there from R = 1234567890123456, not an ATC, so rebuilt here by hand).
    icc_mk = arqc.derive_icc_master_key(IMK, "12345678901234567", "45")
    r = bytes.fromhex("1234567890123456")
    sk = odd_parity(tdes_ecb_encrypt(icc_mk, r[:2] + b"\xf0" + r[3:] + r[:2] + b"\x0f" + r[3:]))
    assert kcv(sk) == "DF82"
    ac = arqc.generate_ac(sk, bytes.fromhex("0123456789ABCDEF0123456789ABCDEF"))
    assert ac.hex().upper() == "19C1FBC83EBDC0D5"
    # ARPC method 1 over that ARQC with ARC 0000: under the session key, and under the ICC master key
    assert arqc.generate_arpc(sk, ac, b"\x00\x00").hex().upper() == "C3620580668E5B65"
    assert arqc.generate_arpc(icc_mk, ac, b"\x00\x00").hex().upper() == "78A372523FA35A03"


def test_arpc_method_1() -> None:
    # pyemv ac.generate_arpc_1 docstring
    sk = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
    arpc = arqc.generate_arpc(sk, bytes.fromhex("1234567890ABCDEF"), b"\x00\x00")
    assert arpc.hex().upper() == "F5E6F44147E2F1B0"


def test_full_chain_pan_to_arqc() -> None:
    # pyemv tests/test_cvn_hsm.py test_visa_cvn18: PAN 1234567890123456 PSN 00, ATC 001C, session key KCV
    # 22C8,
    # AC over the minimum data set followed by the whole 9F10 (CVN 18 appends the IAD, we append the CVR).
    icc_mk = arqc.derive_icc_master_key(IMK, "1234567890123456", "00")
    sk = arqc.derive_session_key(icc_mk, bytes.fromhex("001C"))
    assert kcv(sk) == "22C8"
    data = bytes.fromhex("000000004000" "000000000000" "0124" "8000048000" "0124" "191105" "01" "52BF4585"
                         "1800" "001C" "06011203A0B800")
    assert arqc.generate_ac(sk, data).hex().upper() == "7A788EA6B8A3E733"


AC_VALUES = {
    0x9F02: bytes.fromhex("000000012345"), 0x9F03: bytes(6), 0x9F1A: b"\x01\x56",
    0x95: bytes.fromhex("8000048000"), 0x5F2A: b"\x01\x56", 0x9A: bytes.fromhex("260501"), 0x9C: b"\x00",
    0x9F37: bytes.fromhex("A1B2C3D4"), 0x82: bytes.fromhex("1800"), 0x9F36: bytes.fromhex("0001"),
    0x9F10: arqc.issuer_application_data(bytes.fromhex("A000000000")),
}


def test_ac_input_order_and_cvr() -> None:
    expected = ("000000012345" "000000000000" "0156" "8000048000" "0156" "260501" "00" "A1B2C3D4" "1800"
                "0001"
                "A000000000")
    assert arqc.ac_input({**AC_VALUES, 0x9F26: bytes(8), 0x84: b"ignored"}).hex().upper() == expected


def test_issuer_application_data_format_a() -> None:
    iad = arqc.issuer_application_data(bytes.fromhex("A000000000"))
    assert iad.hex().upper() == "0FA501A0000000000000000000000000" "0F" + "00" * 15
    assert arqc.cvr_from_iad(iad) == bytes.fromhex("A000000000")


@pytest.mark.parametrize("missing", [0x9F02, 0x95, 0x9F36, 0x9F10])
def test_ac_input_names_a_missing_tag(missing: int) -> None:
    values = {t: v for t, v in AC_VALUES.items() if t != missing}
    with pytest.raises(LocalProtocolError) as err:
        arqc.ac_input(values)
    assert err.value.tag == f"{missing:X}"


def test_ac_input_rejects_wrong_lengths_and_foreign_iad() -> None:
    with pytest.raises(LocalProtocolError, match="9F37"):
        arqc.ac_input({**AC_VALUES, 0x9F37: b"\x01"})
    with pytest.raises(LocalProtocolError, match="format A"):
        arqc.ac_input({**AC_VALUES, 0x9F10: bytes.fromhex("06010A03A00000")})  # a Visa-style IAD


@pytest.mark.parametrize("call", [
    lambda: arqc.derive_icc_master_key(bytes(8), "1234567890123456"),
    lambda: arqc.derive_session_key(bytes(24), b"\x00\x01"),
    lambda: arqc.derive_session_key(bytes(16), b"\x01"),
    lambda: arqc.generate_ac(bytes(8), b""),
    lambda: arqc.generate_arpc(bytes(16), bytes(7), b"00"),
])
def test_bad_keys_and_lengths_are_crypto_errors(call: Callable[[], bytes]) -> None:
    with pytest.raises(CryptoError):
        call()


@pytest.mark.parametrize(("pan", "psn"), [("12345", "00"), ("123456789012345X", "00"),
                                         ("1234567890123456", "1")])
def test_bad_pan_or_psn(pan: str, psn: str) -> None:
    with pytest.raises(LocalProtocolError):
        arqc.derive_icc_master_key(IMK, pan, psn)


@given(st.binary(max_size=64))
def test_any_change_to_the_data_changes_the_ac(data: bytes) -> None:
    sk = arqc.derive_session_key(IMK, b"\x00\x01")
    ac = arqc.generate_ac(sk, data)
    assert len(ac) == 8
    assert arqc.generate_ac(sk, data + b"\x00") != ac  # padding method 2 keeps trailing zeros significant


def test_arpc_method_2_published_vector() -> None:
    # pyemv ac.generate_arpc_2 docstring: SK AAAA..BBBB, ARQC 1234567890ABCDEF, CSU 00000000 -> 9308BEBC
    sk = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
    assert arqc.generate_arpc_method2(sk, bytes.fromhex("1234567890ABCDEF"), bytes(4)).hex().upper() == "9308BEBC"
    # and the same session key's AC over the pyemv generate_ac docstring data -> 3B76CF10FECD8789
    data = bytes.fromhex("000000002000" "000000000000" "0124" "0000008000" "0124" "110309" "00" "3804823E"
                         "5800" "0001")
    assert arqc.generate_ac(sk, data).hex().upper() == "3B76CF10FECD8789"
