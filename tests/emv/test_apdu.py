"""Command APDU builders byte for byte, command parsing, response splitting and the status-word table."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emv import apdu
from emv.apdu import CryptogramType
from pos_errors import LocalProtocolError, RemoteProtocolError

# Expected bytes follow the command codings of EMV 4.4 Book 1 §11 and Book 3 §6.5; the SELECT PSE, READ
# RECORD 1.1 and empty-PDOL GPO lines are the ones printed in countless published card traces.
# fmt: off
BUILDERS = [
    (apdu.select(apdu.PSE),                                  "00A404000E315041592E5359532E444446303100"),
    (apdu.select(bytes.fromhex("A0000000031010")),           "00A4040007A000000003101000"),
    (apdu.select(bytes.fromhex("A000000333010101"), next_occurrence=True),
                                                             "00A4040208A00000033301010100"),
    (apdu.read_record(1, 1),                                 "00B2010C00"),
    (apdu.read_record(2, 3),                                 "00B2031400"),
    (apdu.read_record(30, 254),                              "00B2FEF400"),
    (apdu.get_processing_options(b""),                       "80A8000002830000"),
    (apdu.get_processing_options(bytes.fromhex("000000001000015601560000")),
                                                             "80A800000E830C00000000100001560156000000"),
    (apdu.generate_ac(CryptogramType.ARQC, bytes.fromhex("0102")), "80AE8000020102" "00"),
    (apdu.generate_ac(CryptogramType.TC, b"\x01"),           "80AE40000101" "00"),
    (apdu.generate_ac(CryptogramType.AAC, b"\x01"),          "80AE00000101" "00"),
    (apdu.generate_ac(CryptogramType.ARQC, b"\x01", cda=True), "80AE90000101" "00"),
    (apdu.get_data(0x9F36),                                  "80CA9F3600"),
    (apdu.get_data(0x9F17),                                  "80CA9F1700"),
    (apdu.verify(bytes.fromhex("241234FFFFFFFFFF")),         "0020008008241234FFFFFFFFFF"),
    (apdu.verify(bytes(8), enciphered=True),                 "00200088080000000000000000"),
    (apdu.internal_authenticate(bytes.fromhex("01020304")), "008800000401020304" "00"),
    (apdu.external_authenticate(bytes.fromhex("11" * 8 + "3030")), "008200000A" + "11" * 8 + "3030"),
    (apdu.get_challenge(),                                   "0084000000"),
    (apdu.get_response(0x1E),                                "00C000001E"),
]
# fmt: on


@pytest.mark.parametrize(("built", "expected"), BUILDERS)
def test_builders_byte_for_byte(built: bytes, expected: str) -> None:
    assert built.hex().upper() == expected


@pytest.mark.parametrize("bad", [
    lambda: apdu.select(b""),
    lambda: apdu.select(bytes(17)),
    lambda: apdu.read_record(0, 1),
    lambda: apdu.read_record(31, 1),
    lambda: apdu.read_record(1, 0),
    lambda: apdu.get_processing_options(bytes(254)),
    lambda: apdu.get_data(0x9F8101),
    lambda: apdu.external_authenticate(bytes(7)),
    lambda: apdu.generate_ac(CryptogramType.TC, bytes(256)),
])
def test_builders_refuse_what_the_spec_does_not_allow(bad: Callable[[], bytes]) -> None:
    with pytest.raises(LocalProtocolError):
        bad()


@pytest.mark.parametrize(("hex_", "case"), [
    ("00A40400", (0x00, 0xA4, 0x04, 0x00, "", None)),                 # case 1
    ("00B2010C00", (0x00, 0xB2, 0x01, 0x0C, "", 0)),                    # case 2
    ("0020008002AABB", (0x00, 0x20, 0x00, 0x80, "AABB", None)),         # case 3
    ("80A8000002830000", (0x80, 0xA8, 0x00, 0x00, "8300", 0)),          # case 4
])
def test_parse_command_cases(hex_: str, case: tuple[int, int, int, int, str, int | None]) -> None:
    c = apdu.parse_command(bytes.fromhex(hex_))
    assert (c.cla, c.ins, c.p1, c.p2, c.data.hex().upper(), c.le) == case


@pytest.mark.parametrize("hex_", ["", "00A404", "00A4040005AABB", "00A4040002AABBCCDD", "00A4040000AA"])
def test_parse_command_rejects_bad_lengths(hex_: str) -> None:
    with pytest.raises(RemoteProtocolError):
        apdu.parse_command(bytes.fromhex(hex_))


def test_with_le_replaces_or_adds_le() -> None:
    assert apdu.with_le(bytes.fromhex("00B2010C00"), 0x22).hex().upper() == "00B2010C22"
    assert apdu.with_le(bytes.fromhex("0020008002AABB"), 0x05).hex().upper() == "0020008002AABB05"


@given(st.binary(min_size=1, max_size=255), st.integers(0, 255))
def test_builders_and_parser_agree(data: bytes, le: int) -> None:
    built = apdu.with_le(apdu.generate_ac(CryptogramType.ARQC, data), le)
    c = apdu.parse_command(built)
    assert (c.cla, c.ins, c.p1, c.data, c.le) == (0x80, 0xAE, 0x80, data, le)


def test_split_response() -> None:
    r = apdu.split_response(bytes.fromhex("9F3602001C9000"))
    assert (r.data, r.sw, r.sw1, r.sw2, r.ok) == (bytes.fromhex("9F3602001C"), 0x9000, 0x90, 0x00, True)
    assert apdu.split_response(bytes.fromhex("6A83")).data == b""
    for short in (b"", b"\x90"):
        with pytest.raises(RemoteProtocolError):
            apdu.split_response(short)


# fmt: off
@pytest.mark.parametrize(("sw", "meaning"), [
    (0x9000, "success"),
    (0x611E, "30 response bytes still available (GET RESPONSE)"),
    (0x6C22, "wrong Le, exact length is 34"),
    (0x6283, "selected file or application blocked"),
    (0x63C2, "verification failed, 2 tries left"),
    (0x6985, "conditions of use not satisfied"),
    (0x6A81, "function not supported (card or application blocked)"),
    (0x6A82, "file or application not found"),
    (0x6A83, "record not found"),
    (0x6D00, "instruction code not supported or invalid"),
    (0x6E00, "class not supported"),
    (0x1234, "unknown status 1234"),
])
# fmt: on
def test_status_word_table(sw: int, meaning: str) -> None:
    assert apdu.sw_meaning(sw) == meaning


@pytest.mark.parametrize(("cid", "kind"), [(0x00, CryptogramType.AAC), (0x40, CryptogramType.TC),
                                           (0x80, CryptogramType.ARQC), (0x88, CryptogramType.ARQC)])
def test_cryptogram_type_from_cid(cid: int, kind: CryptogramType) -> None:
    assert CryptogramType.from_cid(cid) is kind


def test_cid_rfu_type_is_remote_error() -> None:
    with pytest.raises(RemoteProtocolError):
        CryptogramType.from_cid(0xC0)
