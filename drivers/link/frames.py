"""Frames of our serial link protocol (card reader, PIN pad): CRC, frame scanner, ``construct`` codecs.

Data frame (all integers big-endian)::

    STX 0x02 | LEN (2) | SEQ (1) | CMD (1) | DATA (LEN - 2) | CRC-16 (2)
               └──────────── CRC-16/CCITT-FALSE over LEN..DATA ─────┘

Control frame (ACK, NAK, SYN), four bytes::

    KIND (1) | SEQ (1) | CRC-16 over KIND, SEQ (2)

The CRC of a control frame covers its kind byte so that one flipped bit cannot turn an ACK into a NAK.
Receiving is two steps, as in pymodbus' RTU framer: ``find_frame`` hunts for a start byte and says when a
complete candidate is buffered (cheap, no parsing), then ``decode_frame`` parses and checks it with
``construct``. On a bad candidate the caller drops one byte and hunts again.
See docs/protocols/card-reader.md.

>>> encode_data(seq=0, cmd=0x01).hex(" ")
'02 00 02 00 01 fa 81'
"""

from __future__ import annotations

import binascii
import functools
import re
from dataclasses import dataclass, field
from enum import IntEnum

from construct import (
    Bytes,
    Checksum,
    ChecksumError,
    Const,
    ConstructError,
    Int8ub,
    Int16ub,
    RawCopy,
    Rebuild,
    Struct,
    len_,
    this,
)

from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "STX",
    "MAX_DATA",
    "RESPONSE_BIT",
    "FRAGMENT",
    "Control",
    "DataFrame",
    "ControlFrame",
    "Frame",
    "crc16_ccitt_false",
    "encode_data",
    "encode_control",
    "find_frame",
    "decode_frame",
    "response_cmd",
    "is_response",
]

STX = 0x02
MAX_DATA = 1024  # longest DATA field; an APDU is at most 261 bytes, so this leaves room and bounds a bad LEN
RESPONSE_BIT = 0x80  # CMD of a response = CMD of its request | 0x80; DATA[0] echoes the request's SEQ
FRAGMENT = 0x7F  # CMD of a leading piece of a long message on a noisy line: DATA = real CMD + piece (core.py)
_MIN_LEN = 2  # SEQ + CMD
_DATA_OVERHEAD = 5  # STX + LEN(2) + CRC(2), around the LEN-covered part
_CONTROL_SIZE = 4


class Control(IntEnum):
    """Kinds of control frame (ASCII control characters)."""

    ACK = 0x06  # data frame SEQ arrived intact
    NAK = 0x15  # a frame that looked like SEQ arrived with a bad CRC: send it again now
    SYN = 0x16  # the sender's link just started: forget the SEQ you last delivered from me


_START_BYTES = re.compile(b"[\x02\x06\x15\x16]")  # C-speed hunt for the next possible frame start


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR.

    ``binascii.crc_hqx`` is exactly this polynomial, unreflected, so seeding it with 0xFFFF gives the variant.

    >>> hex(crc16_ccitt_false(b"123456789"))
    '0x29b1'
    """
    return binascii.crc_hqx(data, 0xFFFF)


_DATA_FRAME = Struct(
    "stx" / Const(bytes([STX])),
    "body" / RawCopy(Struct(
        "length" / Rebuild(Int16ub, len_(this.data) + _MIN_LEN),
        "seq" / Int8ub,
        "cmd" / Int8ub,
        "data" / Bytes(this.length - _MIN_LEN),
    )),
    "crc" / Checksum(Int16ub, crc16_ccitt_false, this.body.data),
)

_CONTROL_FRAME = Struct(
    "body" / RawCopy(Struct("kind" / Int8ub, "seq" / Int8ub)),
    "crc" / Checksum(Int16ub, crc16_ccitt_false, this.body.data),
)


@dataclass(frozen=True)
class DataFrame:
    """A decoded data frame. ``data`` is kept out of ``repr``: it may carry a PAN or track data."""

    seq: int
    cmd: int
    data: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class ControlFrame:
    kind: Control
    seq: int


Frame = DataFrame | ControlFrame
_GOOD_CONTROL: dict[bytes, ControlFrame] = {}  # bounded: 3 kinds x 256 sequence numbers


def encode_data(seq: int, cmd: int, data: bytes = b"") -> bytes:
    """Build one data frame.

    Raises:
        LocalProtocolError: SEQ or CMD outside 0..255, or DATA longer than ``MAX_DATA``.
    """
    if not 0 <= seq <= 0xFF or not 0 <= cmd <= 0xFF:
        raise LocalProtocolError(f"SEQ {seq} / CMD {cmd} must be one byte each")
    if len(data) > MAX_DATA:
        raise LocalProtocolError(f"DATA of {len(data)} bytes exceeds {MAX_DATA}")
    try:
        return _DATA_FRAME.build({"body": {"value": {"seq": seq, "cmd": cmd, "data": bytes(data)}}})
    except ConstructError as exc:  # pragma: no cover - ranges are checked above
        raise LocalProtocolError(f"cannot build frame: {exc}") from exc


@functools.cache
def encode_control(kind: Control, seq: int) -> bytes:
    """Build one ACK, NAK or SYN frame.

    >>> encode_control(Control.ACK, 0).hex(" ")
    '06 00 b7 a9'
    """
    if not 0 <= seq <= 0xFF:
        raise LocalProtocolError(f"SEQ {seq} must be one byte")
    return _CONTROL_FRAME.build({"body": {"value": {"kind": int(kind), "seq": seq}}})


def find_frame(buffer: bytes | bytearray) -> tuple[int, int | None]:
    """Locate the first complete frame candidate without parsing it.

    Returns ``(start, end)``: ``buffer[:start]`` cannot begin a frame (drop it); ``buffer[start:end]`` is a
    complete candidate for ``decode_frame``; ``end`` is None while more bytes are needed. An STX whose LEN is
    out of range is not a frame start, so hunting continues past it at once.

    >>> find_frame(b"\\xff\\xff" + encode_data(1, 2) + b"\\x02")
    (2, 9)
    """
    pos = 0
    size = len(buffer)
    while True:
        match = _START_BYTES.search(buffer, pos)
        if match is None:
            return size, None
        start = match.start()
        if buffer[start] != STX:
            return (start, start + _CONTROL_SIZE) if size - start >= _CONTROL_SIZE else (start, None)
        if size - start < 3:
            return start, None
        length = (buffer[start + 1] << 8) | buffer[start + 2]
        if not _MIN_LEN <= length <= MAX_DATA + _MIN_LEN:
            pos = start + 1
            continue
        end = start + length + _DATA_OVERHEAD
        return (start, end) if size >= end else (start, None)


def decode_frame(raw: bytes) -> Frame:
    """Parse and check one candidate found by ``find_frame``.

    Raises:
        RemoteProtocolError: bad CRC (``offset`` points at the CRC), unknown control kind, wrong length.
            ``raw`` holds at most the 5 header bytes, never the payload (which may carry a PAN).
    """
    raw = bytes(raw)
    header = raw[:5]
    if not raw:
        raise RemoteProtocolError("empty frame", offset=0, raw=header)
    try:
        if raw[0] == STX:
            parsed = _DATA_FRAME.parse(raw)
            body = parsed.body.value
            consumed = len(parsed.body.data) + _DATA_OVERHEAD - 2
            frame: Frame = DataFrame(seq=body.seq, cmd=body.cmd, data=bytes(body.data))
        elif raw in _GOOD_CONTROL:  # ACKs are half the traffic: parse each distinct one once
            return _GOOD_CONTROL[raw]
        else:
            parsed = _CONTROL_FRAME.parse(raw)
            body = parsed.body.value
            consumed = _CONTROL_SIZE
            if body.kind not in _CONTROL_KINDS:
                raise RemoteProtocolError(f"unknown control kind 0x{body.kind:02X}", offset=0, raw=header)
            frame = ControlFrame(kind=Control(body.kind), seq=body.seq)
            if consumed == len(raw):
                _GOOD_CONTROL[raw] = frame
    except ConstructError as exc:
        offset = max(len(raw) - 2, 0) if isinstance(exc, ChecksumError) else len(raw)
        raise RemoteProtocolError(f"malformed frame: {_first_line(exc)}", offset=offset, raw=header) from exc
    if consumed != len(raw):
        raise RemoteProtocolError(f"{len(raw) - consumed} bytes after the CRC", offset=consumed, raw=header)
    return frame


def response_cmd(cmd: int) -> int:
    """CMD byte of the response to request ``cmd``."""
    return cmd | RESPONSE_BIT


def is_response(cmd: int) -> bool:
    return bool(cmd & RESPONSE_BIT)


_CONTROL_KINDS = frozenset(int(kind) for kind in Control)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
