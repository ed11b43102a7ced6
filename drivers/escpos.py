"""ESC/POS for a Chinese-model receipt printer: a pure encoder (receipt lines to bytes), status decoding.

No I/O here: ``drivers/printer.py`` writes what this module builds and feeds back what the printer answers.
Every command follows the Epson *ESC/POS Command Reference* (TM series), cited at each builder.

Text is sent in Chinese character mode (``FS &``) as GB18030, restricted to its one- and two-byte part:
cheap GB printers carry GB2312/GBK fonts only and print a four-byte GB18030 code as garbage. ``¥`` (U+00A5)
is such a code (``81 30 84 36``), so it is always sent as the fullwidth ``￥`` (U+FFE5, ``A3 A4``); any
other four-byte character becomes ``?``.

>>> encode_receipt([ReceiptLine("合计 ¥10", bold=True)]).hex(" ")
'1b 40 1c 26 1b 45 01 ba cf bc c6 20 a3 a4 31 30 0a 1b 45 00 1d 56 42 00'
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from flows.ports import PrinterStatus, ReceiptLine
from pos_errors import DeviceFault, LocalProtocolError, RemoteProtocolError

__all__ = [
    "INIT",
    "CHINESE_ON",
    "CHINESE_OFF",
    "LF",
    "bold",
    "char_size",
    "align",
    "text",
    "qr",
    "feed",
    "cut",
    "StatusQuery",
    "status_request",
    "STATUS_QUERIES",
    "RealTimeStatus",
    "decode_status",
    "encode_receipt",
    "MESSAGES",
]

ESC, GS, FS, DLE, EOT = 0x1B, 0x1D, 0x1C, 0x10, 0x04

INIT = b"\x1b\x40"          # ESC @  initialise printer: clears the buffer, modes back to power-on defaults
CHINESE_ON = b"\x1c\x26"    # FS &   select Kanji (on Chinese models: GB18030 Chinese) character mode
CHINESE_OFF = b"\x1c\x2e"   # FS .   cancel Kanji character mode
LF = b"\x0a"                # LF     print and line feed

Align = Literal["left", "center", "right"]
_ALIGN: Mapping[str, int] = {"left": 0, "center": 1, "right": 2}
_QR_EC: Mapping[str, int] = {"L": 48, "M": 49, "Q": 50, "H": 51}
_QR_MAX_DATA = 7089  # GS ( k <fn 180>: (pL + pH*256) - 3 <= 7089
_CHAR_SUBSTITUTES: Mapping[str, str] = {"\u00a5": "\uffe5", "\t": " "}

# Technical English for logs, keyed by the fault code every printer error carries (``DeviceError.fault``); the
# terminal chooses the cashier's text by that code (catalogue ``printer.<fault>``), never by these strings.
MESSAGES: Mapping[str, str] = {
    DeviceFault.PAPER_OUT: "Printer out of paper - load paper",
    DeviceFault.COVER_OPEN: "Printer cover open - close it",
    DeviceFault.PRINTER_ERROR: "Printer error - switch it off and on",
    DeviceFault.OFFLINE: "Printer offline",
    DeviceFault.NO_ANSWER: "Printer not responding - check power and cable",
    DeviceFault.GARBLED: "Printer answers garbage - check the baud rate",
    DeviceFault.PORT: "Printer port cannot be opened",
}


# --- print commands -----------------------------------------------------------------------------------------


def bold(on: bool) -> bytes:
    """ESC E n: turn emphasized mode on/off (only the LSB of n counts).

    >>> bold(True).hex(" ")
    '1b 45 01'
    """
    return bytes((ESC, 0x45, 1 if on else 0))


def char_size(width: int = 1, height: int = 1) -> bytes:
    """GS ! n: character size, width multiplier in bits 4-6, height multiplier in bits 0-2 (1..8 each)."""
    if not (1 <= width <= 8 and 1 <= height <= 8):
        raise LocalProtocolError(f"character size {width}x{height}: each must be 1..8")
    return bytes((GS, 0x21, (width - 1) << 4 | (height - 1)))


def align(where: Align) -> bytes:
    """ESC a n: justification, n = 0 left, 1 centre, 2 right (effective at the beginning of a line)."""
    if where not in _ALIGN:
        raise LocalProtocolError(f"alignment {where!r}: left, center or right")
    return bytes((ESC, 0x61, _ALIGN[where]))


def text(value: str) -> bytes:
    """One line's characters in GB18030 (Chinese mode must be on), without the LF.

    Control characters are refused: inside text they would be taken as printer commands.
    """
    if value.isascii() and value.isprintable():  # the common line: one C-speed encode
        return value.encode("ascii")
    return b"".join(map(_char_bytes, value))  # cached per character: no generator step per character


@functools.cache
def _char_bytes(raw: str) -> bytes:
    ch = _CHAR_SUBSTITUTES.get(raw, raw)
    if ord(ch) < 0x20 or ord(ch) == 0x7F:
        raise LocalProtocolError(f"control character U+{ord(ch):04X} in receipt text")
    code = ch.encode("gb18030")
    return code if len(code) <= 2 else b"?"


def _gs_k(fn: int, params: bytes) -> bytes:
    """GS ( k pL pH cn fn [params] with cn = 49 (QR Code); pL pH count the bytes after pH."""
    size = len(params) + 2
    return bytes((GS, 0x28, 0x6B, size & 0xFF, size >> 8, 49, fn)) + params


def qr(payload: str, *, module_size: int = 6, ec: Literal["L", "M", "Q", "H"] = "M") -> bytes:
    """Native QR Code, model 2: GS ( k functions 165 (model), 167 (module size), 169 (error correction level),
    180 (store data, UTF-8) and 181 (print the stored symbol).

    >>> qr("A", module_size=4, ec="L")[-17:].hex(" ")  # the last two: store "A", print
    '1d 28 6b 04 00 31 50 30 41 1d 28 6b 03 00 31 51 30'
    """
    data = payload.encode("utf-8")
    if not data or len(data) > _QR_MAX_DATA:
        raise LocalProtocolError(f"QR payload of {len(data)} bytes: 1..{_QR_MAX_DATA}")
    # A DLE EOT inside data would be executed as a real-time command (ESC/POS reference, DLE EOT notes).
    if any(b < 0x20 or b == 0x7F for b in data):
        raise LocalProtocolError("control character in QR payload")
    if not 1 <= module_size <= 16:
        raise LocalProtocolError(f"QR module size {module_size}: 1..16 dots")
    if ec not in _QR_EC:
        raise LocalProtocolError(f"QR error correction {ec!r}: L, M, Q or H")
    return (_gs_k(0x41, bytes((50, 0)))          # fn 165: model 2 (n1 = 50)
            + _gs_k(0x43, bytes((module_size,)))  # fn 167: module size in dots
            + _gs_k(0x45, bytes((_QR_EC[ec],)))   # fn 169: error correction L/M/Q/H = 48..51
            + _gs_k(0x50, b"\x30" + data)         # fn 180: store, m = 48
            + _gs_k(0x51, b"\x30"))               # fn 181: print, m = 48


def feed(lines: int) -> bytes:
    """ESC d n: print the buffer and feed n lines."""
    if not 0 <= lines <= 255:
        raise LocalProtocolError(f"feed of {lines} lines: 0..255")
    return bytes((ESC, 0x64, lines))


def cut(*, partial: bool = True, extra_feed: int = 0) -> bytes:
    """GS V m n (function B): feed to the cutting position plus n motion units, then cut.

    m = 66 partial cut (one point left uncut), 65 full cut.
    """
    if not 0 <= extra_feed <= 255:
        raise LocalProtocolError(f"cut feed {extra_feed}: 0..255")
    return bytes((GS, 0x56, 66 if partial else 65, extra_feed))


# --- real-time status ---------------------------------------------------------------------------------------


class StatusQuery(IntEnum):
    """n of DLE EOT n (real-time status transmission)."""

    PRINTER = 1
    OFFLINE_CAUSE = 2
    ERROR_CAUSE = 3
    PAPER_SENSOR = 4


STATUS_QUERIES = (StatusQuery.PRINTER, StatusQuery.OFFLINE_CAUSE, StatusQuery.PAPER_SENSOR)


def status_request(query: StatusQuery) -> bytes:
    """DLE EOT n: the printer answers one status byte at once, even while offline or with a full buffer.

    >>> status_request(StatusQuery.PAPER_SENSOR).hex(" ")
    '10 04 04'
    """
    return bytes((DLE, EOT, int(query)))


@dataclass(frozen=True)
class RealTimeStatus:
    """The three status bytes of ``STATUS_QUERIES``, decoded."""

    offline: bool = False
    cover_open: bool = False
    feed_button: bool = False
    paper_end_stop: bool = False
    error: bool = False
    paper_near_end: bool = False
    paper_out: bool = False

    @property
    def ready(self) -> bool:
        return self.to_port().ready

    def to_port(self) -> PrinterStatus:
        return PrinterStatus(online=not (self.offline or self.error), paper_out=self.paper_out or
                             self.paper_end_stop, cover_open=self.cover_open)

    @property
    def fault(self) -> DeviceFault | None:
        """Why the printer cannot print, most specific cause first; None when ready.

        >>> RealTimeStatus(offline=True, cover_open=True).fault
        <DeviceFault.COVER_OPEN: 'cover_open'>
        """
        if self.paper_out or self.paper_end_stop:
            return DeviceFault.PAPER_OUT
        if self.cover_open:
            return DeviceFault.COVER_OPEN
        if self.error:
            return DeviceFault.PRINTER_ERROR
        if self.offline:
            return DeviceFault.OFFLINE
        return None

    @property
    def message(self) -> str:
        """The log text of ``fault``; ``""`` when ready."""
        return "" if self.fault is None else MESSAGES[self.fault]


def _check_fixed_bits(query: StatusQuery, value: int) -> None:
    # In every DLE EOT reply bits 0 and 7 are fixed off, bits 1 and 4 fixed on: mask 0x93 must read 0x12.
    if value & 0x93 != 0x12:
        raise RemoteProtocolError(f"DLE EOT {int(query)} answer {value:#04x} is not a status byte",
                                  tag=f"DLE EOT {int(query)}", raw=bytes((value,)))


def decode_status(replies: bytes) -> RealTimeStatus:
    """Decode the answers to ``STATUS_QUERIES`` (n = 1, 2, 4), one byte each, in that order.

    n=1 bit 3 offline; n=2 bit 2 cover open, bit 3 feed button, bit 5 paper-end stop, bit 6 error;
    n=4 bits 2-3 roll near end, bits 5-6 roll end (paper out).

    >>> decode_status(bytes((0x1A, 0x32, 0x7E))).message
    'Printer out of paper - load paper'
    """
    if len(replies) != len(STATUS_QUERIES):
        raise RemoteProtocolError(f"{len(replies)} status bytes, expected {len(STATUS_QUERIES)}", raw=replies)
    for query, value in zip(STATUS_QUERIES, replies, strict=True):
        _check_fixed_bits(query, value)
    printer, cause, paper = replies
    return RealTimeStatus(
        offline=bool(printer & 0x08),
        cover_open=bool(cause & 0x04),
        feed_button=bool(cause & 0x08),
        paper_end_stop=bool(cause & 0x20),
        error=bool(cause & 0x40),
        paper_near_end=bool(paper & 0x0C),
        paper_out=bool(paper & 0x60),
    )


# --- whole receipt ------------------------------------------------------------------------------------------


def encode_receipt(lines: Sequence[ReceiptLine], *, qr_module_size: int = 6) -> bytes:
    """ESC @, FS &, then each line (style commands only when they change), then a partial cut.

    A line with ``qr`` prints its text first (when there is any), then the symbol, in the line's alignment.
    Raises LocalProtocolError (nothing built) for control characters or an oversized QR payload.
    """
    out = bytearray(INIT + CHINESE_ON)
    cur_align, cur_bold, cur_double = "left", False, False  # ESC @ defaults
    for line in lines:
        if line.align != cur_align:
            out += align(line.align)
            cur_align = line.align
        if line.bold != cur_bold:
            out += bold(line.bold)
            cur_bold = line.bold
        if line.double != cur_double:
            out += char_size(2, 2) if line.double else char_size(1, 1)
            cur_double = line.double
        if line.text or line.qr is None:
            out += text(line.text) + LF
        if line.qr is not None:
            out += qr(line.qr, module_size=qr_module_size)
    # Leave the next job in default modes even if it skips ESC @.
    if cur_double:
        out += char_size(1, 1)
    if cur_bold:
        out += bold(False)
    if cur_align != "left":
        out += align("left")
    return bytes(out + cut())
