"""ESC/POS encoder and status decoder against byte vectors written out by hand from the Epson ESC/POS command
reference (TM series), and GB2312 code positions (row/cell + 0xA0) for the Chinese text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import escpos
from drivers.escpos import MESSAGES, StatusQuery, decode_status, encode_receipt
from flows.ports import ReceiptLine
from pos_errors import LocalProtocolError, RemoteProtocolError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# --- one command each -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("built", "expected", "reference"), [
    (escpos.INIT,                              "1b 40",       "ESC @ initialize printer"),
    (escpos.CHINESE_ON,                        "1c 26",       "FS & select Kanji (Chinese) character mode"),
    (escpos.CHINESE_OFF,                       "1c 2e",       "FS . cancel Kanji character mode"),
    (escpos.LF,                                "0a",          "LF print and line feed"),
    (escpos.bold(True),                        "1b 45 01",    "ESC E n, n LSB = 1: emphasized on"),
    (escpos.bold(False),                       "1b 45 00",    "ESC E n, n LSB = 0: emphasized off"),
    (escpos.char_size(1, 1),                   "1d 21 00",    "GS ! n, normal"),
    (escpos.char_size(2, 2),                   "1d 21 11",    "GS ! n, width x2 (bits 4-6 = 1), height x2"),
    (escpos.char_size(2, 1),                   "1d 21 10",    "GS ! n, double width only"),
    (escpos.char_size(1, 2),                   "1d 21 01",    "GS ! n, double height only"),
    (escpos.char_size(8, 8),                   "1d 21 77",    "GS ! n, largest"),
    (escpos.align("left"),                     "1b 61 00",    "ESC a 0"),
    (escpos.align("center"),                   "1b 61 01",    "ESC a 1"),
    (escpos.align("right"),                    "1b 61 02",    "ESC a 2"),
    (escpos.feed(3),                           "1b 64 03",    "ESC d n print and feed n lines"),
    (escpos.cut(),                             "1d 56 42 00", "GS V 66 0 feed to cut position, partial cut"),
    (escpos.cut(partial=False, extra_feed=16), "1d 56 41 10", "GS V 65 n feed + n units, full cut"),
    (escpos.status_request(StatusQuery.PRINTER),       "10 04 01", "DLE EOT 1 printer status"),
    (escpos.status_request(StatusQuery.OFFLINE_CAUSE), "10 04 02", "DLE EOT 2 offline cause"),
    (escpos.status_request(StatusQuery.ERROR_CAUSE),   "10 04 03", "DLE EOT 3 error cause"),
    (escpos.status_request(StatusQuery.PAPER_SENSOR),  "10 04 04", "DLE EOT 4 roll paper sensor"),
])
def test_command_bytes(built: bytes, expected: str, reference: str) -> None:
    assert built == h(expected), reference


def test_qr_is_the_five_gs_paren_k_functions() -> None:
    data = b"https://t.cn/q"  # 14 bytes: store has pL = 14 + 3 = 0x11
    expected = (h("1d 28 6b 04 00 31 41 32 00")       # fn 165 (0x41): model 2 (n1 = 50), n2 = 0
                + h("1d 28 6b 03 00 31 43 06")        # fn 167 (0x43): module 6 dots
                + h("1d 28 6b 03 00 31 45 31")        # fn 169 (0x45): error correction M (49)
                + h("1d 28 6b 11 00 31 50 30") + data  # fn 180 (0x50): store, m = 48
                + h("1d 28 6b 03 00 31 51 30"))       # fn 181 (0x51): print, m = 48
    assert escpos.qr(data.decode(), module_size=6, ec="M") == expected


def test_qr_store_length_uses_ph_above_255_bytes() -> None:
    built = escpos.qr("A" * 300, ec="H")
    assert h("1d 28 6b 03 00 31 45 33") in built                 # H = 51
    assert h("1d 28 6b 2f 01 31 50 30") + b"A" * 300 in built    # 303 = 0x012F -> pL 2f, pH 01


@pytest.mark.parametrize(("payload", "kwargs"), [
    ("", {}), ("A" * 7090, {}), ("a\x10\x04b", {}), ("x", {"module_size": 0}), ("x", {"module_size": 17}),
    ("x", {"ec": "X"}),
])
def test_qr_refuses_what_the_printer_cannot_take(payload: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        escpos.qr(payload, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("bad", "call"), [
    ("char_size", lambda: escpos.char_size(0, 1)),
    ("align", lambda: escpos.align("middle")),  # type: ignore[arg-type]
    ("feed", lambda: escpos.feed(256)),
    ("cut", lambda: escpos.cut(extra_feed=-1)),
])
def test_out_of_range_parameters(bad: str, call: object) -> None:
    with pytest.raises(LocalProtocolError):
        call()  # type: ignore[operator]


# --- text -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("ABC 12.50",  "41 42 43 20 31 32 2e 35 30"),   # ASCII as is
    ("元",         "d4 aa"),                        # GB2312 row 52 cell 10
    ("￥",         "a3 a4"),                        # fullwidth yen, GB2312 row 3 cell 4
    ("¥",          "a3 a4"),                        # U+00A5 would be 81 30 84 36: sent as ￥
    ("充值成功",   "b3 e4 d6 b5 b3 c9 b9 a6"),
    ("合计 ¥30元", "ba cf bc c6 20 a3 a4 33 30 d4 aa"),
    ("a\tb",       "61 20 62"),                     # tab becomes a space
    ("😀",         "3f"),                           # four-byte GB18030: no glyph on GB printers
    ("€",          "a2 e3"),                        # two-byte in GB18030: kept
])
def test_text_is_gb18030_without_four_byte_codes(value: str, expected: str) -> None:
    assert escpos.text(value) == h(expected)


@pytest.mark.parametrize("value", ["line\nbreak", "\x1b@", "a\x10\x04\x01", "del\x7f", "\r"])
def test_control_characters_are_refused(value: str) -> None:
    with pytest.raises(LocalProtocolError):
        escpos.text(value)


PRINTABLE = st.characters(min_codepoint=0x20, blacklist_categories=("Cs",), blacklist_characters="\x7f")


@given(st.text(alphabet=PRINTABLE))
def test_text_never_emits_yen_or_four_byte_codes(value: str) -> None:
    encoded = escpos.text(value)
    assert b"\x81\x30\x84\x36" not in encoded
    expected = "".join("￥" if c == "¥" else c if len(c.encode("gb18030")) <= 2 else "?" for c in value)
    assert encoded.decode("gb18030") == expected
    assert all(b >= 0x20 for b in encoded)


# --- whole receipts ---------------------------------------------------------------------------------------

def test_minimal_receipt() -> None:
    assert encode_receipt([ReceiptLine("OK")]) == h("1b 40 1c 26 4f 4b 0a 1d 56 42 00")


def test_empty_receipt_is_init_chinese_cut() -> None:
    assert encode_receipt([]) == h("1b 40 1c 26 1d 56 42 00")


def test_styled_receipt_emits_changes_only_and_resets() -> None:
    lines = [
        ReceiptLine("充值", align="center", bold=True, double=True),
        ReceiptLine("￥10", align="center", bold=True, double=True),
        ReceiptLine("A", align="right"),
        ReceiptLine("scan", align="center", qr="Q1"),
        ReceiptLine("", align="center", bold=True),
    ]
    expected = (
        h("1b 40 1c 26")
        + h("1b 61 01 1b 45 01 1d 21 11") + h("b3 e4 d6 b5 0a")   # centre, bold, double; 充值
        + h("a3 a4 31 30 0a")                                      # same style: no commands
        + h("1b 61 02 1b 45 00 1d 21 00") + b"A\n"
        + h("1b 61 01") + b"scan\n" + escpos.qr("Q1")
        + h("1b 45 01") + b"\n"                                    # empty line still feeds
        + h("1b 45 00 1b 61 00")                                   # back to defaults
        + h("1d 56 42 00")
    )
    assert encode_receipt(lines) == expected


def test_qr_only_line_prints_no_text_line() -> None:
    assert encode_receipt([ReceiptLine(qr="Z")]) == h("1b 40 1c 26") + escpos.qr("Z") + h("1d 56 42 00")


def test_bad_line_builds_nothing() -> None:
    with pytest.raises(LocalProtocolError):
        encode_receipt([ReceiptLine("ok"), ReceiptLine("bad\n")])


# --- status -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("replies", "online", "paper_out", "cover_open", "near_end", "ready"), [
    ("12 12 12", True,  False, False, False, True),    # all fixed bits only: ready
    ("12 12 1e", True,  False, False, True,  True),    # n=4 bits 2,3: near end, still prints
    ("1a 32 7e", False, True,  False, True,  False),   # n=1 bit 3 offline, n=2 bit 5, n=4 bits 5,6
    ("1a 16 12", False, False, True,  False, False),   # n=2 bit 2: cover open
    ("1a 52 12", False, False, False, False, False),   # n=2 bit 6: error
    ("1a 12 12", False, False, False, False, False),   # offline, no cause given
])
def test_decode_status(replies: str, online: bool, paper_out: bool, cover_open: bool, near_end: bool,
                       ready: bool) -> None:
    status = decode_status(h(replies))
    port = status.to_port()
    assert port.paper_out is paper_out
    assert port.cover_open is cover_open
    assert status.paper_near_end is near_end
    assert port.ready is ready
    assert port.online is online
    assert bool(status.message) is not ready


def test_status_messages_are_technical_english_the_terminal_maps_to_the_catalogue() -> None:
    assert decode_status(h("1a 32 7e")).message == "Printer out of paper - load paper"
    assert decode_status(h("1a 16 12")).message == MESSAGES["cover_open"] == "Printer cover open - close it"


@pytest.mark.parametrize("replies", ["12 12", "12 12 12 12", "00 12 12", "12 92 12", "13 12 12", "12 12 02"])
def test_decode_status_rejects_non_status_bytes(replies: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_status(h(replies))
