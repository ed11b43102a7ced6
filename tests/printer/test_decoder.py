"""The simulated printer's ESC/POS decoder: fed whole, split at every point, and byte at a time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.escpos import encode_receipt
from flows.ports import ReceiptLine
from sim.devices.printer import Cut, EscPosDecoder, PrintedLine, StatusAsked, Unknown

RECEIPT = [
    ReceiptLine("物联网卡充值", align="center", bold=True, double=True),
    ReceiptLine("IoT SIM TOP-UP", align="center"),
    ReceiptLine("ICCID 8986 0112 3456 7890 1237"),
    ReceiptLine("10 GB / 月包 ¥30.00", align="right"),
    ReceiptLine("合计 TOTAL     ￥30.00元", bold=True),
    ReceiptLine(""),
    ReceiptLine("扫码查询 / scan", align="center", qr="https://iot.example.cn/o/T1-000042"),
    ReceiptLine("谢谢 Thank you", align="center"),
]
EXPECTED = [
    PrintedLine("物联网卡充值", "center", True, True),
    PrintedLine("IoT SIM TOP-UP", "center"),
    PrintedLine("ICCID 8986 0112 3456 7890 1237"),
    PrintedLine("10 GB / 月包 ￥30.00", "right"),
    PrintedLine("合计 TOTAL     ￥30.00元", bold=True),
    PrintedLine(""),
    PrintedLine("扫码查询 / scan", "center"),
    PrintedLine("[QR] https://iot.example.cn/o/T1-000042", "center", qr="https://iot.example.cn/o/T1-000042"),
    PrintedLine("谢谢 Thank you", "center"),
    Cut(partial=True),
]
DATA = encode_receipt(RECEIPT)


def feed_in(chunks: list[bytes]) -> list[object]:
    decoder = EscPosDecoder()
    events: list[object] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events


def test_whole() -> None:
    assert feed_in([DATA]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(DATA)))
def test_split_in_two_everywhere(cut: int) -> None:
    assert feed_in([DATA[:cut], DATA[cut:]]) == EXPECTED


def test_byte_at_a_time() -> None:
    assert feed_in([DATA[i:i + 1] for i in range(len(DATA))]) == EXPECTED


def test_four_byte_yen_prints_as_garbage_on_a_gbk_font() -> None:
    # What a receipt would show if a driver sent U+00A5 as GB18030: the reason drivers.escpos never does.
    raw = b"\x1b\x40\x1c\x26" + "¥5".encode("gb18030") + b"\n"
    assert raw == bytes.fromhex("1b 40 1c 26 81 30 84 36 35 0a")
    assert feed_in([raw]) == [PrintedLine("??5")]
    decoder = EscPosDecoder(four_byte_font=True)
    assert decoder.feed(raw) == [PrintedLine("¥5")]


def test_without_chinese_mode_gb_bytes_are_code_page_437() -> None:
    assert feed_in([b"\x1b\x40\xd4\xaa\n"]) == [PrintedLine("╘¬")]
    assert feed_in([b"\x1b\x40\x1c\x26\x1c\x2e\xd4\xaa\n"]) == [PrintedLine("╘¬")]


def test_esc_at_cancels_modes_and_the_unprinted_line() -> None:
    events = feed_in([b"\x1c\x26\x1b\x45\x01\x1d\x21\x11\x1b\x61\x02lost\x1b\x40kept\n"])
    assert events == [PrintedLine("kept")]


def test_status_requests_are_reported_even_inside_a_line() -> None:
    events = feed_in([b"ab\x10\x04\x01cd\x10\x04\x04\n"])
    assert events == [StatusAsked(1), StatusAsked(4), PrintedLine("abcd")]


def test_feed_and_function_a_cuts() -> None:
    events = feed_in([b"x\x1b\x64\x03\x1d\x56\x00\x1d\x56\x31"])
    assert events == [PrintedLine("x"), PrintedLine(""), PrintedLine(""), Cut(False), Cut(True)]


def test_cut_flushes_a_pending_line() -> None:
    assert feed_in([b"tail\x1d\x56\x42\x00"]) == [PrintedLine("tail"), Cut(True)]


def test_esc_bang_print_mode() -> None:
    assert feed_in([b"\x1b\x21\x38big\n\x1b\x21\x00n\n"]) == [PrintedLine("big", bold=True, double=True),
                                                             PrintedLine("n")]


def test_known_commands_are_skipped_unknown_reported() -> None:
    events = feed_in([b"\x1b\x74\x00\x1d\x42\x01a\x1b\x7e\n\x01"])
    assert events == [Unknown(b"\x1b\x7e"), PrintedLine("a"), Unknown(b"\x01")]


def test_other_2d_codes_are_skipped_by_length() -> None:
    pdf417 = b"\x1d\x28\x6b\x03\x00\x30\x41\x00"  # cn 48: PDF417, not modelled
    assert feed_in([pdf417 + b"x\n"]) == [Unknown(pdf417), PrintedLine("x")]


def test_cr_is_ignored() -> None:
    assert feed_in([b"a\r\n"]) == [PrintedLine("a")]


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=7))
def test_random_bytes_never_crash_the_decoder(data: bytes, step: int) -> None:
    decoder = EscPosDecoder()
    for i in range(0, len(data), step):
        decoder.feed(data[i:i + step])
