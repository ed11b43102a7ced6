"""EMV QR: the EMVCo MPM specification's example payload, CRC edge cases, CPM decoding, property tests."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emv import qr
from emv.tlv import Tlv, encode
from pos_errors import LocalProtocolError, PosError, RemoteProtocolError

# The example payload of EMVCo "EMV QR Code Specification for Payment Systems: Merchant-Presented Mode" v1.1,
# Appendix (example with a language template in Chinese), as reproduced verbatim in mvallim/emv-qrcode
# (Crc16ValidatorTest.testSuccessCrc16Sample1) and in the exemvi test suite ("official_sample"); CRC A13A.
SPEC_EXAMPLE = ("00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN"
                "5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.725303156550201623303041234"
                "0603***0708A60086670902ME91320016A0112233449988770708123456786304A13A")


def test_spec_example_parses_and_its_crc_checks() -> None:
    p = qr.parse_mpm(SPEC_EXAMPLE)
    assert qr.mpm_crc(SPEC_EXAMPLE[:-4]) == "A13A"
    assert p.objects["00"] == "01" and p.point_of_initiation == "12"
    assert p.templates["29"] == {"00": "D15600000000", "05": "A93FO3230Q"}
    assert p.templates["31"] == {"00": "D15600000001", "03": "12345678"}
    assert p.objects["52"] == "4111" and p.currency == "156" and p.objects["58"] == "CN"
    assert p.merchant_name == "BEST TRANSPORT" and p.objects["60"] == "BEIJING"
    assert p.templates["64"] == {"00": "ZH", "01": "最佳运输", "02": "北京"}  # lengths count characters
    assert p.amount_minor == 2372
    assert p.templates["62"] == {"03": "1234", "06": "***", "07": "A6008667", "09": "ME"}
    assert p.objects["63"] == "A13A"


def test_changing_any_character_fails() -> None:
    for i, ch in enumerate(SPEC_EXAMPLE):
        other = "X" if ch != "X" else "Y"
        with pytest.raises(RemoteProtocolError):
            qr.parse_mpm(SPEC_EXAMPLE[:i] + other + SPEC_EXAMPLE[i + 1:])


def test_crc_below_0x1000_keeps_its_leading_zeros() -> None:
    found = 0
    for n in range(2000):
        payload = _build(bill=f"B{n}")
        value = int(payload[-4:], 16)
        if value < 0x1000:
            assert payload[-4] == "0" and len(payload[-4:]) == 4
            assert qr.parse_mpm(payload).bill_number == f"B{n}"
            found += 1
    assert found > 10  # about 1 in 16 payloads


def test_crc_of_the_check_string() -> None:
    assert qr.mpm_crc("123456789") == "29B1"  # CRC-16/CCITT-FALSE check value (CRC RevEng catalogue)


@pytest.mark.parametrize("bad, why", [
    (SPEC_EXAMPLE.replace("000201", "000202", 1), "payload format"),
    ("010212" + SPEC_EXAMPLE[6:], "payload format"),
    (SPEC_EXAMPLE[:-8], "no CRC"),
    (SPEC_EXAMPLE[:-1], "3 remain"),
    (SPEC_EXAMPLE[:-8] + "6304A13A" + "0002AB", "last"),
    (SPEC_EXAMPLE.replace("6304A13A", "6304a13a"), "CRC"),
    ("0002015", "no ID"),
])
def test_rejections(bad: str, why: str) -> None:
    with pytest.raises(RemoteProtocolError, match=why):
        qr.parse_mpm(bad)


def test_length_that_does_not_match_is_rejected_even_with_a_good_crc() -> None:
    body = "000201010212" + "5903AB" + "6304"  # 59 says 3 characters, 2 follow before 63
    with pytest.raises(RemoteProtocolError):
        qr.parse_mpm(body + qr.mpm_crc(body))


def _build(amount: int = 3018, bill: str = "T1-0001", name: str = "IOT SIM", city: str = "SHENZHEN") -> str:
    return qr.build_mpm(account_gui="D156000000000", merchant_id="898440154110001", mcc="4814",
                        amount_minor=amount, merchant_name=name, city=city, bill_number=bill)


def test_build_has_the_fields_the_issue_names() -> None:
    p = qr.parse_mpm(_build())
    assert p.point_of_initiation == "12" and p.currency == "156" and p.objects["58"] == "CN"
    assert p.objects["52"] == "4814" and p.amount_minor == 3018 and p.objects["54"] == "30.18"
    assert p.templates["26"] == {"00": "D156000000000", "01": "898440154110001"}
    assert p.bill_number == "T1-0001"


_chars = st.characters(min_codepoint=0x20, max_codepoint=0x9FFF, exclude_categories=("Cs",))
_text = st.text(_chars, min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(amount=st.integers(1, 10**9), bill=_text, name=_text, city=st.text(_chars, min_size=1, max_size=15))
def test_round_trip(amount: int, bill: str, name: str, city: str) -> None:
    p = qr.parse_mpm(_build(amount, bill, name, city))
    assert (p.amount_minor, p.bill_number, p.merchant_name, p.objects["60"]) == (amount, bill, name, city)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_raises_only_project_errors(text: str) -> None:
    try:
        qr.parse_mpm("000201" + text)
    except PosError:
        pass
    try:
        qr.parse_cpm(text)
    except PosError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_random_cpm_bytes_raise_only_project_errors(raw: bytes) -> None:
    try:
        qr.parse_cpm(base64.b64encode(raw).decode())
    except PosError:
        pass


def _cpm() -> str:
    app = Tlv.template(0x61, Tlv(0x4F, bytes.fromhex("A0000003330101")), Tlv(0x50, b"UnionPay"),
                       Tlv(0x5A, bytes.fromhex("6212345678901234")), Tlv(0x9F36, b"\x00\x01"))
    return base64.b64encode(encode([Tlv(0x85, b"CPV01"), app])).decode()


def test_cpm_decodes_with_the_tlv_codec() -> None:
    objs = qr.parse_cpm(_cpm())
    assert [o.tag for o in objs] == [0x85, 0x61]
    assert objs[0].value == b"CPV01"


@pytest.mark.parametrize("text", [
    "not base64!!",
    base64.b64encode(encode([Tlv(0x85, b"CPV02")])).decode(),
    base64.b64encode(encode([Tlv(0x61, b"")])).decode(),
    base64.b64encode(bytes.fromhex("8505435056")).decode(),  # length 5, 4 bytes follow
    "",
])
def test_cpm_rejections(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        qr.parse_cpm(text)


@pytest.mark.parametrize("field, value", [("merchant_name", "N" * 26), ("city", "C" * 16), ("bill_number", "B" * 26),
                                          ("terminal_label", "T" * 26)])
def test_build_keeps_the_spec_lengths(field: str, value: str) -> None:
    args = dict(account_gui="D156000000000", merchant_id="898440154110001", mcc="4814", amount_minor=1,
                merchant_name="IOT", city="SZ", bill_number="B1")
    args[field] = value
    with pytest.raises(LocalProtocolError, match="at most"):
        qr.build_mpm(**args)  # type: ignore[arg-type]
