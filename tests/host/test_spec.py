"""The dialect byte for byte: hand-assembled 0200 and 0210 vectors, the field table, the doctests."""

from __future__ import annotations

import datetime as dt
import doctest
import importlib
from dataclasses import replace

import iso8583
import pytest

from drivers.host import messages as m
from drivers.host.spec import RESPONSE_CODES, SPEC, describe_response
from flows.ports import AuthRequest

PAN = "6212345678901234"
PIN_BLOCK = bytes.fromhex("0123456789ABCDEF")
KSN = bytes.fromhex("FFFF9876543210E00001")
ICC = bytes.fromhex("9F2608" "1122334455667788")

REQUEST = AuthRequest(stan=1, amount_minor=1250, local_time=dt.datetime(2025, 1, 15, 10, 30, 45), pan=PAN,
                      expiry_yymm="2712", pan_sequence="01", icc_data=ICC, pin_block=PIN_BLOCK, ksn=KSN)

# Each part hand-assembled from spec.py; the bitmap worked out bit by bit:
#   72 = fields 2 3 4 7 | 3C = 11 12 13 14 | 06 = 22 23 | 80 = 25 | 00 | C0 = 41 42 | 9A = 49 52 53 55
#   14 = 60 62
VECTOR_0200 = [
    ("t", b"0200"),
    ("bitmap", bytes.fromhex("723C068000C09A14")),
    ("2 PAN LL", b"16" + PAN.encode()),
    ("3 processing", b"000000"),
    ("4 amount", b"000000001250"),
    ("7 transmission", b"0115103045"),
    ("11 STAN", b"000001"),
    ("12 time", b"103045"),
    ("13 date", b"0115"),
    ("14 expiry", b"2712"),
    ("22 entry mode", b"051"),
    ("23 PSN", b"001"),
    ("25 condition", b"00"),
    ("41 TID", b"T0000001"),
    ("42 MID", b"M00000000000001"),
    ("49 currency", b"156"),
    ("52 PIN LL b", b"08" + PIN_BLOCK),
    ("53 KSN LL b", b"10" + KSN),
    ("55 ICC LLL b", b"011" + ICC),
    ("60 batch LLL", b"006000001"),
    ("62 invoice LLL", b"006000001"),
]
HEX_0200 = (
    "30323030 723C068000C09A14 3136 36323132333435363738393031323334 303030303030 303030303030303031323530"
    " 30313135313033303435 303030303031 313033303435 30313135 32373132 303531 303031 3030 5430303030303031"
    " 4D3030303030303030303030303031 313536 3038 0123456789ABCDEF 3130 FFFF9876543210E00001 303131"
    " 9F26081122334455667788 303036303030303031 303036303030303031"
)

ARPC_DATA = bytes.fromhex("910A" "A1B2C3D4E5F60718" "3030")
RESPONSE_0210 = {"t": "0210", "3": "000000", "4": "000000001250", "7": "0115103045", "11": "000001",
                 "12": "103045", "13": "0115", "37": "501500000001", "38": "123456", "39": "00",
                 "41": "T0000001", "42": "M00000000000001", "49": "156", "55": ARPC_DATA.hex().upper()}
# 32 = 3 4 7 | 38 = 11 12 13 | 00 | 00 | 0E = 37 38 39 | C0 = 41 42 | 82 = 49 55 | 00
VECTOR_0210 = (b"0210" + bytes.fromhex("323800000EC08200") + b"000000" + b"000000001250" + b"0115103045"
               + b"000001" + b"103045" + b"0115" + b"501500000001" + b"123456" + b"00" + b"T0000001"
               + b"M00000000000001" + b"156" + b"012" + ARPC_DATA)


def test_0200_encodes_byte_for_byte() -> None:
    fields = m.build_auth_request(REQUEST, terminal_id="T0000001", merchant_id="M00000000000001")
    raw = m.pack(fields)
    expected = b"".join(part for _, part in VECTOR_0200)
    assert raw == expected
    assert raw == bytes.fromhex(HEX_0200.replace(" ", ""))
    assert m.frame(raw)[:2] == len(expected).to_bytes(2, "big") == b"\x00\xa6"  # 166 bytes


def test_0210_encodes_and_decodes_byte_for_byte() -> None:
    assert m.pack(RESPONSE_0210) == VECTOR_0210
    answer = m.parse_auth_response(m.unpack(VECTOR_0210))
    assert (answer.response_code, answer.auth_code, answer.rrn, answer.icc_data) == (
        "00", "123456", "501500000001", ARPC_DATA)
    assert answer.approved


def test_0200_decodes_back_to_the_request() -> None:
    fields = m.unpack(b"".join(part for _, part in VECTOR_0200))
    assert fields["p"] == "723C068000C09A14"
    back = m.parse_auth_request(fields, year=2025)
    # repr=False fields (PAN, PIN block) take part in == too
    assert back == replace(REQUEST, terminal_id="T0000001", merchant_id="M00000000000001")


def test_reversal_uses_secondary_bitmap_and_field_90() -> None:
    fields = m.build_reversal(m.ReversalRequest(stan=2, original=REQUEST, repeat=True),
                              transmitted_at=dt.datetime(2025, 1, 15, 10, 31, 0, tzinfo=dt.UTC),
                              terminal_id="T0000001", merchant_id="M00000000000001")
    raw = m.pack(fields)
    assert raw[:4] == b"0401" and raw[4] & 0x80, "secondary bitmap flag"
    secondary = raw[12:20]
    assert secondary == bytes.fromhex("0000004000000000")  # field 90 = bit 26 of the secondary map
    decoded = m.unpack(raw)
    assert decoded["90"] == "0200" "000001" "0115103045" + "0" * 22
    assert m.parse_original_data(decoded["90"]) == m.OriginalData("0200", 1, "0115103045")
    assert "52" not in decoded and "55" not in decoded and "35" not in decoded


def test_reversal_without_pan_as_rebuilt_from_the_journal() -> None:
    original = AuthRequest(stan=7, amount_minor=300, local_time=dt.datetime(2025, 3, 1, 8, 0, 0), pan="",
                           expiry_yymm="")
    fields = m.build_reversal(m.ReversalRequest(stan=8, original=original), terminal_id="T1",
                              merchant_id="M1", transmitted_at=dt.datetime(2025, 3, 1, 8, 0, 20))
    decoded = m.unpack(m.pack(fields))
    assert "2" not in decoded and "14" not in decoded
    assert (decoded["t"], decoded["11"], decoded["39"], decoded["41"]) == ("0400", "000008", "68", "T1      ")


def test_field_52_carries_both_pin_block_sizes_and_53_both_ksn_sizes() -> None:
    for block, ksn in ((bytes(8), bytes(10)), (bytes(16), bytes(12))):
        req = AuthRequest(stan=3, amount_minor=1, local_time=REQUEST.local_time, pan=PAN, expiry_yymm="2712",
                          pin_block=block, ksn=ksn)
        back = m.parse_auth_request(m.unpack(m.pack(m.build_auth_request(req, terminal_id="T",
                                                                          merchant_id="M"))), year=2025)
        assert (back.pin_block, back.ksn) == (block, ksn)


def test_aware_local_time_goes_to_field_7_in_utc() -> None:
    cst = dt.timezone(dt.timedelta(hours=8))
    assert m.transmission_time(dt.datetime(2025, 1, 1, 7, 0, 0, tzinfo=cst)) == "1231230000"


def test_spec_defines_every_field_the_brief_names() -> None:
    wanted = {2, 3, 4, 7, 11, 12, 13, 14, 22, 23, 25, 35, 37, 38, 39, 41, 42, 49, 52, 53, 55, 60, 62, 64,
              70, 90}
    assert wanted <= {int(k) for k in SPEC if k.isdigit()}
    assert (SPEC["52"]["len_type"], SPEC["52"]["max_len"], SPEC["52"]["data_enc"]) == (2, 16, "b")
    assert (SPEC["55"]["len_type"], SPEC["55"]["max_len"]) == (3, 255)
    assert SPEC["p"]["data_enc"] == "b"


def test_response_table() -> None:
    assert describe_response("00") == "Approved"
    assert all(len(code) == 2 for code in RESPONSE_CODES)
    assert RESPONSE_CODES["Q1"] != RESPONSE_CODES["05"]


@pytest.mark.parametrize("module", ["drivers.host", "drivers.host.spec", "drivers.host.messages",
                                    "drivers.host.client", "sim.backends.acquirer"])
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_pyiso8583_is_the_encoder() -> None:
    raw, _ = iso8583.encode({"t": "0800", "11": "000001", "70": "301"}, SPEC)
    assert m.unpack(bytes(raw))["70"] == "301"
