"""Frames of our serial link protocol (card reader, PIN pad): CRC, frame scanner, ``construct`` codecs.

Data frame (all integers big-endian)::

    STX 0x02 | LEN (2) | SEQ (1) | CMD (1) | DATA (LEN - 2) | CRC-16 (2)
               └──────────── CRC-16/CCITT-FALSE over LEN..DATA ─────┘

Control frame (ACK, NAK, SYN), four bytes::

    KIND (1) | SEQ (1) | CRC-16 over KIND, SEQ (2)

The CRC of a control frame covers its kind byte so that one flipped bit cannot turn an ACK into a NAK.

Version 2 frame (negotiated at open, docs/protocols/card-reader.md "Link v2")::

    STX2 0x03 | HDR (1) | LEN (1, or 2 with bit 7 set) | [CMD (1)] | DATA | CRC-16 over HDR..DATA (2)
    HDR = A (bit 7: acknowledges the peer's frame ACK) | R (6: answer, no CMD) | M (5: more pieces follow)
          | ACK (4-3: acknowledged SEQ mod 4) | SEQ (2-0: own SEQ mod 8)
    Version 3 adds R without A: a whole answer whose DATA starts with 00 (STATUS OK on every device) sent
    without that byte; its ACK field still names the command (``ok_implied``). Version 4 adds R and M without
    A: such an answer also ending in 90 00 (SW1 SW2) sent without those two bytes (``sw_implied``), and start
    byte STX4 0x04: a v2 frame whose CMD 12 (TRANSMIT) is left out, its CRC also over STX4 (``cmd_implied``).

LEN counts CMD + DATA; LEN 0 is a v2 ACK (A set) or NAK (A clear, SEQ = the damaged frame's).
Receiving is two steps, as in pymodbus' RTU framer: ``find_frame`` hunts for a start byte and says when a
complete candidate is buffered (cheap, no parsing), then ``decode_frame`` parses and checks it with
``construct``. On a bad candidate the caller drops one byte and hunts again.
See docs/protocols/card-reader.md.

>>> encode_data(seq=0, cmd=0x01).hex(" ")
'02 00 02 00 01 fa 81'
>>> encode_v2(seq=0, cmd=0x01).hex(" ")
'03 00 01 01 ef 8c'
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
    "STX2",
    "STX4",
    "IMPLIED_CMD",
    "V2Frame",
    "encode_v2",
    "encode_v2_control",
    "crc16_ccitt_false",
    "encode_data",
    "encode_control",
    "find_frame",
    "decode_frame",
    "response_cmd",
    "is_response",
    "expects_answer",
]

STX = 0x02
MAX_DATA = 1024  # longest DATA field; an APDU is at most 261 bytes, so this leaves room and bounds a bad LEN
RESPONSE_BIT = 0x80  # CMD of a response = CMD of its request | 0x80; DATA[0] echoes the request's SEQ
EVENT_BASE = 0x40  # CMD 40-7F: unsolicited events, never answered
FRAGMENT = 0x7F  # CMD of a leading piece of a long message on a noisy line: DATA = real CMD + piece (core.py)
_MIN_LEN = 2  # SEQ + CMD
_DATA_OVERHEAD = 5  # STX + LEN(2) + CRC(2), around the LEN-covered part
_CONTROL_SIZE = 4
STX2 = 0x03  # start of a version 2 frame
STX4 = 0x04  # start of a version 4 frame whose CMD is IMPLIED_CMD; its CRC covers STX4 too
IMPLIED_CMD = 0x12  # TRANSMIT (the card reader's APDU command): nearly every command of a transaction
_SW_OK = b"\x90\x00"  # SW1 SW2 of nearly every R-APDU, implied in a v4 answer
V2_ACK, V2_ANSWER, V2_MORE = 0x80, 0x40, 0x20  # HDR flags; bits 4-3 the acknowledged SEQ, 2-0 the own SEQ
_V2_LONG = 0x80  # first LEN byte with bit 7 set: LEN is 15 bits over two bytes (for 128 bytes and more)


class Control(IntEnum):
    """Kinds of control frame (ASCII control characters)."""

    ACK = 0x06  # data frame SEQ arrived intact
    NAK = 0x15  # a frame that looked like SEQ arrived with a bad CRC: send it again now
    SYN = 0x16  # the sender's link just started: forget the SEQ you last delivered from me


_START_BYTES = re.compile(b"[\x02\x03\x06\x15\x16]")  # C-speed hunt for the next possible frame start
_START_BYTES_V4 = re.compile(b"[\x02\x03\x04\x06\x15\x16]")  # and STX4: only a v4 end looks for it


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
    """``version`` 2: a 5-byte v2 ACK (``seq`` = acknowledged SEQ mod 4) or NAK (``seq`` mod 8)."""

    kind: Control
    seq: int
    version: int = 1


@dataclass(frozen=True)
class V2Frame:
    """A version 2 data frame. ``cmd`` is None for an answer (R): its CMD and echoed SEQ are implied by the
    frame it acknowledges. ``ack`` is the acknowledged SEQ mod 4, or None. ``data`` is not in ``repr``.
    ``ok_implied`` (version 3): a whole answer that left out its leading 00, restored in ``data``;
    ``sw_implied`` (version 4): also its trailing 90 00; ``cmd_implied`` (version 4): STX4, CMD 12 restored."""

    seq: int
    cmd: int | None
    data: bytes = field(default=b"", repr=False)
    ack: int | None = None
    more: bool = False
    ok_implied: bool = False
    sw_implied: bool = False
    cmd_implied: bool = False

    @property
    def version(self) -> int:
        """The lowest link version that sends this frame (a frame of a later version proves the peer's)."""
        return 4 if self.sw_implied or self.cmd_implied else 3 if self.ok_implied else 2


Frame = DataFrame | ControlFrame | V2Frame
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


def encode_v2(seq: int, cmd: int | None, data: bytes = b"", *, ack: int | None = None, more: bool = False,
              ok_implied: bool = False, sw_implied: bool = False, cmd_implied: bool = False) -> bytes:
    """Build one version 2 data frame; ``cmd`` None is an answer and needs ``ack``. ``ok_implied`` (version 3,
    a whole answer whose DATA starts with 00): that byte is left out and the A bit clear; ``sw_implied``
    (version 4, such an answer also ending in 90 00): those two bytes too, and M set. ``cmd_implied`` (version
    4, CMD 12): start byte STX4 without the CMD byte, the CRC also over STX4.

    >>> encode_v2(3, None, bytes.fromhex("00 6F 00 90 00"), ack=2, ok_implied=True).hex(" ")
    '03 53 04 6f 00 90 00 ac b5'

    Raises:
        LocalProtocolError: an answer without ``ack``, an empty answer, DATA longer than ``MAX_DATA``, an
            implied OK on anything but a whole answer starting with 00, an implied 90 00 on one not ending
            with it, an implied CMD on another CMD.
    """
    if cmd is None and (ack is None or not data):
        raise LocalProtocolError("a v2 answer acknowledges a frame and carries at least one byte")
    if len(data) > MAX_DATA or not (cmd is None or 0 <= cmd <= 0xFF):
        raise LocalProtocolError(f"DATA of {len(data)} bytes exceeds {MAX_DATA} or CMD out of range")
    if (ok_implied or sw_implied) and (cmd is not None or more or data[:1] != b"\x00"):
        raise LocalProtocolError("an implied OK needs a whole answer whose DATA starts with 00")
    if (sw_implied and (len(data) < 3 or data[-2:] != _SW_OK)) or (cmd_implied and cmd != IMPLIED_CMD):
        raise LocalProtocolError("an implied 90 00 needs an answer ending with it, an implied CMD CMD 12")
    hdr = (seq & 7) | (0 if ack is None else V2_ACK | (ack & 3) << 3) | (V2_ANSWER if cmd is None else 0) \
        | (V2_MORE if more else 0)
    if sw_implied:
        return _v2_frame(hdr & ~V2_ACK | V2_MORE, data[1:-2])
    if cmd_implied:
        return _v2_frame(hdr, data, STX4)
    body = data if cmd is None else bytes([cmd]) + data
    return _v2_frame(hdr & ~V2_ACK, body[1:]) if ok_implied else _v2_frame(hdr, body)


@functools.cache
def encode_v2_control(kind: Control, seq: int) -> bytes:
    """A v2 ACK (``seq`` = the acknowledged SEQ, mod 4) or NAK (``seq`` mod 8): five bytes.

    >>> encode_v2_control(Control.ACK, 1).hex(" ")
    '03 88 00 8f 3e'
    """
    if kind is Control.SYN:
        raise LocalProtocolError("SYN is a version 1 control frame in both versions")
    return _v2_frame(V2_ACK | (seq & 3) << 3 if kind is Control.ACK else seq & 7, b"")


def _v2_frame(hdr: int, body: bytes, start: int = STX2) -> bytes:
    size = len(body)
    length = bytes([size]) if size < _V2_LONG else bytes([_V2_LONG | size >> 8, size & 0xFF])
    covered = bytes([start] if start == STX4 else []) + bytes([hdr]) + length + body  # STX4 is covered
    return bytes([STX2] if start == STX2 else []) + covered + crc16_ccitt_false(covered).to_bytes(2, "big")


def _v2_end(buffer: bytes | bytearray, start: int) -> int | None:
    """End of the v2 candidate at ``start``; -1 if its LEN is impossible, None while LEN is incomplete."""
    size = len(buffer)
    if size - start < 3:
        return None
    first = buffer[start + 2]
    if first < _V2_LONG:
        return start + 3 + first + 2
    if size - start < 4:
        return None
    length = (first & 0x7F) << 8 | buffer[start + 3]
    return start + 4 + length + 2 if _V2_LONG <= length <= MAX_DATA + 1 else -1


def _decode_v2(raw: bytes) -> Frame:
    header = raw[:4]
    end = _v2_end(raw, 0)
    if end is None or end < 0 or end != len(raw):
        raise RemoteProtocolError("malformed v2 frame: bad length", offset=min(len(raw), 2), raw=header)
    stx4 = raw[0] == STX4  # its CRC covers the start byte: a damaged 03 <-> 04 never passes
    if crc16_ccitt_false(raw[0 if stx4 else 1:-2]) != int.from_bytes(raw[-2:], "big"):
        raise RemoteProtocolError("malformed v2 frame: bad CRC", offset=len(raw) - 2, raw=header)
    hdr, body = raw[1], raw[4 if raw[2] & _V2_LONG else 3:-2]
    ack = (hdr >> 3) & 3 if hdr & V2_ACK else None
    if stx4:  # version 4: a command or piece whose CMD 12 is implied
        if hdr & V2_ANSWER:
            raise RemoteProtocolError("an answer cannot imply CMD 12", offset=1, raw=header)
        return V2Frame(seq=hdr & 7, cmd=IMPLIED_CMD, data=body, ack=ack, more=bool(hdr & V2_MORE), cmd_implied=True)
    if hdr & V2_ANSWER and ack is None:  # version 3: a whole answer with its leading 00 (STATUS OK) left out,
        sw = bool(hdr & V2_MORE)  # version 4: M too: and its trailing 90 00 (SW1 SW2)
        return V2Frame(seq=hdr & 7, cmd=None, data=b"\x00" + body + (_SW_OK if sw else b""), ack=(hdr >> 3) & 3,
                       ok_implied=True, sw_implied=sw)
    if not body:
        if hdr & (V2_ANSWER | V2_MORE) or (ack is None and hdr & 0x18):
            raise RemoteProtocolError(f"malformed v2 control frame 0x{hdr:02X}", offset=1, raw=header)
        return ControlFrame(Control.NAK if ack is None else Control.ACK, hdr & 7 if ack is None else ack, 2)
    if hdr & V2_ANSWER:
        return V2Frame(seq=hdr & 7, cmd=None, data=body, ack=ack, more=bool(hdr & V2_MORE))
    return V2Frame(seq=hdr & 7, cmd=body[0], data=body[1:], ack=ack, more=bool(hdr & V2_MORE))


def find_frame(buffer: bytes | bytearray, stx4: bool = True) -> tuple[int, int | None]:
    """Locate the first complete frame candidate without parsing it.

    Returns ``(start, end)``: ``buffer[:start]`` cannot begin a frame (drop it); ``buffer[start:end]`` is a
    complete candidate for ``decode_frame``; ``end`` is None while more bytes are needed. An STX whose LEN is
    out of range is not a frame start, so hunting continues past it at once. ``stx4`` False: 04 is no start
    byte (an end below v4: a start byte more is a candidate more in damaged bytes).

    >>> find_frame(b"\\xff\\xff" + encode_data(1, 2) + b"\\x02")
    (2, 9)
    """
    pos, size, starts = 0, len(buffer), _START_BYTES_V4 if stx4 else _START_BYTES
    while True:
        match = starts.search(buffer, pos)
        if match is None:
            return size, None
        start = match.start()
        if buffer[start] in (STX2, STX4):
            end = _v2_end(buffer, start)
            if end is not None and end < 0:
                pos = start + 1
                continue
            return (start, end) if end is not None and size >= end else (start, None)
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
    if raw[0] in (STX2, STX4):
        return _decode_v2(raw)
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


def expects_answer(cmd: int) -> bool:
    """A command (``01``-``3F``) is answered; an event (``40``-``7F``) or a response (``80``-``FF``) is not."""
    return cmd < EVENT_BASE


_CONTROL_KINDS = frozenset(int(kind) for kind in Control)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
