"""Wire format of the acquirer link: 2-byte length-prefixed frames, ISO 8583 messages built from port values.

Pure: no sockets, no clock (times come in as arguments). One frame on TCP is::

    +--------+--------+--------------------------------------------------+
    | len hi | len lo | ISO 8583 message: MTI, bitmap(s), fields (spec.py) |
    +--------+--------+--------------------------------------------------+

``len`` is the big-endian byte count of the message, excluding the prefix; a zero length is a keep-alive and
is skipped. ``build_*`` turn ``flows.ports`` values into pyiso8583 field dicts (``{"t": "0200", "2": ...}``),
``parse_*`` go back; ``pack``/``unpack`` encode and decode with ``spec.SPEC`` and wrap pyiso8583's
``EncodeError``/``DecodeError`` as ``LocalProtocolError``/``RemoteProtocolError``. Error messages never carry
field contents, so a PAN cannot leak through an exception.

``AuthRequest.track2`` is taken in EMV tag 57 form (packed nibbles, ``D`` separator, ``F`` pad) and sent in
field 35 as ASCII digits with ``=``. ``pan_sequence`` is the 2-digit tag 5F34 value (field 23 adds a ``0``).

>>> frame(b"0800")
b'\\x00\\x040800'
>>> d = FrameDecoder()
>>> d.receive_data(b"\\x00\\x040800\\x00")
>>> d.next_frame(), d.next_frame()
(b'0800', None)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

import iso8583

from drivers.host.spec import (
    MTI_AUTH_REQUEST,
    MTI_ECHO,
    MTI_REVERSAL,
    MTI_REVERSAL_REPEAT,
    NMI_ECHO,
    PROCESSING_PURCHASE,
    SPEC,
)
from flows.ports import AuthRequest, AuthResponse, ReversalRequest
from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Fields",
    "MAX_MESSAGE_LEN",
    "frame",
    "FrameDecoder",
    "pack",
    "unpack",
    "response_mti",
    "exchange_key",
    "expected_key",
    "build_auth_request",
    "parse_auth_request",
    "parse_auth_response",
    "build_reversal",
    "OriginalData",
    "parse_original_data",
    "build_echo",
    "response_code",
    "transmission_time",
]

Fields = dict[str, str]

MAX_MESSAGE_LEN = 4096  # our largest message is < 1 KiB; a bigger length means we lost sync with the peer
_PREFIX = 2
_POS_CONDITION_NORMAL = "00"
_NO_INSTITUTION = "0" * 11
_TRACK2 = re.compile(r"\d{1,19}=\d{0,17}")
_REQUIRED_0200 = ("2", "3", "4", "11", "12", "13", "14", "22", "41", "49")


# --- framing ------------------------------------------------------------------------------------------------


def frame(message: bytes) -> bytes:
    """Prefix ``message`` with its 2-byte big-endian length."""
    if not 0 < len(message) <= MAX_MESSAGE_LEN:
        raise LocalProtocolError(f"message of {len(message)} bytes cannot be framed (1..{MAX_MESSAGE_LEN})")
    return len(message).to_bytes(_PREFIX, "big") + message


class FrameDecoder:
    """Reassembles length-prefixed frames from TCP reads of any size (sans-I/O).

    Feed bytes with ``receive_data``; call ``next_frame`` until it returns ``None``. After it raises
    ``RemoteProtocolError`` (a length above ``max_len``) the stream is out of sync: drop the connection.
    """

    def __init__(self, max_len: int = MAX_MESSAGE_LEN) -> None:
        self._buf = bytearray()
        self._max_len = max_len

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def next_frame(self) -> bytes | None:
        while len(self._buf) >= _PREFIX:
            size = int.from_bytes(self._buf[:_PREFIX], "big")
            if size == 0:  # keep-alive
                del self._buf[:_PREFIX]
                continue
            if size > self._max_len:
                raise RemoteProtocolError(f"frame length {size} exceeds {self._max_len}", offset=0)
            if len(self._buf) < _PREFIX + size:
                return None
            message = bytes(self._buf[_PREFIX : _PREFIX + size])
            del self._buf[: _PREFIX + size]
            return message
        return None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buf)


# --- encode / decode ----------------------------------------------------------------------------------------


def pack(fields: Mapping[str, str]) -> bytes:
    """Encode a field dict with ``SPEC``. Raises LocalProtocolError naming the field that does not fit."""
    try:
        raw, _ = iso8583.encode(dict(fields), SPEC)
    except iso8583.EncodeError as exc:
        raise LocalProtocolError(f"cannot encode ISO 8583: {exc.msg}", tag=exc.field) from exc
    except (KeyError, TypeError, ValueError) as exc:  # undefined field or a non-str value
        raise LocalProtocolError(f"cannot encode ISO 8583: {type(exc).__name__}") from exc
    return bytes(raw)


def unpack(raw: bytes) -> Fields:
    """Decode one message. Raises RemoteProtocolError (``.offset``, ``.tag``) for anything malformed."""
    try:
        fields, _ = iso8583.decode(raw, SPEC)
    except iso8583.DecodeError as exc:
        raise RemoteProtocolError(f"undecodable ISO 8583: {exc.msg}", offset=exc.pos, tag=exc.field) from exc
    except KeyError as exc:  # bitmap names a field the dialect does not define
        raise RemoteProtocolError(f"undefined ISO 8583 field {exc.args[0]}", tag=str(exc.args[0])) from exc
    except (TypeError, ValueError, IndexError) as exc:
        raise RemoteProtocolError(f"undecodable ISO 8583: {type(exc).__name__}") from exc
    if not _is_digits(fields["t"], 4):
        raise RemoteProtocolError("MTI is not 4 digits", offset=0, tag="t")
    return dict(fields)


def response_mti(mti: str) -> str:
    """The answer's MTI: function digit + 1, origin 0 (0200 → 0210, 0401 → 0410).

    >>> response_mti("0401")
    '0410'
    """
    return f"{mti[:2]}{int(mti[2]) + 1}0"


def exchange_key(fields: Mapping[str, str]) -> tuple[str, str, str]:
    """(MTI, STAN, TID) of a message: what ties an answer to its request."""
    return fields.get("t", ""), fields.get("11", ""), fields.get("41", "").rstrip()


def expected_key(request: Mapping[str, str]) -> tuple[str, str, str]:
    """The ``exchange_key`` a valid answer to ``request`` carries."""
    mti, stan, tid = exchange_key(request)
    return response_mti(mti), stan, tid


# --- 0200 / 0210 --------------------------------------------------------------------------------------------


def build_auth_request(req: AuthRequest, *, terminal_id: str, merchant_id: str, batch_number: int = 1,
                       invoice: int | None = None) -> Fields:
    """0200 purchase. Field 7 is ``req.local_time`` (in UTC when tz-aware), so a reversal rebuilt from the
    journal after a restart can quote it in field 90. ``invoice`` defaults to the STAN."""
    fields: Fields = {
        "t": MTI_AUTH_REQUEST,
        "2": _pan(req.pan),
        "3": PROCESSING_PURCHASE,
        "4": _num(req.amount_minor, 12, "amount"),
        "7": transmission_time(req.local_time),
        "11": _num(req.stan, 6, "STAN"),
        "12": f"{req.local_time:%H%M%S}",
        "13": f"{req.local_time:%m%d}",
        "14": _digits(req.expiry_yymm, 4, 4, "expiry"),
        "22": _digits(req.pos_entry_mode, 3, 3, "POS entry mode"),
        "25": _POS_CONDITION_NORMAL,
        "41": _text(req.terminal_id or terminal_id, 8, "terminal id"),
        "42": _text(req.merchant_id or merchant_id, 15, "merchant id"),
        "49": _digits(req.currency, 3, 3, "currency"),
        "60": _num(batch_number, 6, "batch number"),
        "62": _num(req.stan if invoice is None else invoice, 6, "invoice"),
    }
    if req.pan_sequence is not None:
        fields["23"] = _digits(req.pan_sequence, 1, 3, "PAN sequence").zfill(3)
    if req.track2 is not None:
        fields["35"] = _track2_field(req.track2)
    if req.pin_block is not None:
        if len(req.pin_block) not in (8, 16):
            raise LocalProtocolError(f"PIN block of {len(req.pin_block)} bytes (8 or 16)", tag="52")
        if req.ksn is None and len(req.pin_block) != 8:  # no KSN: ISO 9564 format 0 under the sign-on PIK
            raise LocalProtocolError("a PIN block under the PIK is 8 bytes (format 0)", tag="52")
        if req.ksn is not None and len(req.ksn) not in (10, 12):
            raise LocalProtocolError("a DUKPT PIN block needs a 10- or 12-byte KSN", tag="53")
        fields["52"] = req.pin_block.hex().upper()
        if req.ksn is not None:
            fields["53"] = req.ksn.hex().upper()
    if req.icc_data:
        if len(req.icc_data) > 255:
            raise LocalProtocolError(f"ICC data of {len(req.icc_data)} bytes (max 255)", tag="55")
        fields["55"] = req.icc_data.hex().upper()
    return fields


def parse_auth_request(fields: Mapping[str, str], *, year: int) -> AuthRequest:
    """The acquirer's view of a 0200. Field 13 has no year, so the receiver supplies it."""
    _require(fields, _REQUIRED_0200)
    try:
        local_time = dt.datetime.strptime(f"{year:04d}{fields['13']}{fields['12']}", "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise RemoteProtocolError("fields 12/13 are not a valid local date and time", tag="13") from exc
    pin_block = bytes.fromhex(fields["52"]) if "52" in fields else None
    return AuthRequest(
        stan=_parse_num(fields, "11"),
        amount_minor=_parse_num(fields, "4"),
        local_time=local_time,
        pan=_parse_digits(fields, "2"),
        expiry_yymm=_parse_digits(fields, "14"),
        pan_sequence=_parse_digits(fields, "23")[-2:] if "23" in fields else None,
        track2=_parse_track2(fields["35"]) if "35" in fields else None,
        pos_entry_mode=_parse_digits(fields, "22"),
        icc_data=bytes.fromhex(fields.get("55", "")),
        pin_block=pin_block,
        ksn=bytes.fromhex(fields["53"]) if "53" in fields else None,
        currency=_parse_digits(fields, "49"),
        terminal_id=fields["41"].rstrip(),
        merchant_id=fields.get("42", "").rstrip(),
    )


def parse_auth_response(fields: Mapping[str, str]) -> AuthResponse:
    """0210 → AuthResponse (field 38 auth code, 37 RRN, 55 issuer data such as tag 91)."""
    return AuthResponse(
        response_code=response_code(fields),
        auth_code=fields.get("38", "").strip(),
        rrn=fields.get("37", "").strip(),
        icc_data=bytes.fromhex(fields.get("55", "")),
    )


def response_code(fields: Mapping[str, str]) -> str:
    """Field 39 of an answer; RemoteProtocolError when missing or not two letters/digits."""
    code = fields.get("39", "")
    if len(code) != 2 or not code.isascii() or not code.isalnum():
        raise RemoteProtocolError("answer has no valid response code", tag="39")
    return code


# --- 0400 / 0401 --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OriginalData:
    """Field 90: which message a reversal undoes."""

    mti: str
    stan: int
    transmitted: str  # MMDDhhmmss, field 7 of the original


def build_reversal(req: ReversalRequest, *, transmitted_at: dt.datetime, terminal_id: str, merchant_id: str,
                   batch_number: int = 1) -> Fields:
    """0400 (0401 when ``req.repeat``) undoing ``req.original``.

    Field 90 quotes the original 0200 (MTI, STAN, field 7 = its local time), so the acquirer finds it
    together with field 41. PAN (2), expiry (14) and sequence (23) go only when the original still has them: a
    reversal rebuilt from the journal after a restart has no PAN, and needs none.
    """
    orig = req.original
    fields: Fields = {
        "t": MTI_REVERSAL_REPEAT if req.repeat else MTI_REVERSAL,
        "3": PROCESSING_PURCHASE,
        "4": _num(orig.amount_minor, 12, "amount"),
        "7": transmission_time(transmitted_at),
        "11": _num(req.stan, 6, "STAN"),
        "12": f"{orig.local_time:%H%M%S}",
        "13": f"{orig.local_time:%m%d}",
        "22": _digits(orig.pos_entry_mode, 3, 3, "POS entry mode"),
        "25": _POS_CONDITION_NORMAL,
        "39": _text(req.reason_code, 2, "reason code"),
        "41": _text(orig.terminal_id or terminal_id, 8, "terminal id"),
        "42": _text(orig.merchant_id or merchant_id, 15, "merchant id"),
        "49": _digits(orig.currency, 3, 3, "currency"),
        "60": _num(batch_number, 6, "batch number"),
        "62": _num(orig.stan, 6, "invoice"),
        "90": (f"{MTI_AUTH_REQUEST}{_num(orig.stan, 6, 'original STAN')}{transmission_time(orig.local_time)}"
               f"{_NO_INSTITUTION}{_NO_INSTITUTION}"),
    }
    if orig.pan:
        fields["2"] = _pan(orig.pan)
    if orig.expiry_yymm:
        fields["14"] = _digits(orig.expiry_yymm, 4, 4, "expiry")
    if orig.pan_sequence is not None:
        fields["23"] = _digits(orig.pan_sequence, 1, 3, "PAN sequence").zfill(3)
    return fields


def parse_original_data(value: str) -> OriginalData:
    """Decode field 90 (n42: MTI, STAN, transmission time, two institution ids)."""
    if not _is_digits(value, 42):
        raise RemoteProtocolError("field 90 is not 42 digits", tag="90")
    return OriginalData(mti=value[:4], stan=int(value[4:10]), transmitted=value[10:20])


# --- 0800 ---------------------------------------------------------------------------------------------------


def build_echo(stan: int, *, transmitted_at: dt.datetime, terminal_id: str) -> Fields:
    """0800 echo test (field 70 = 301)."""
    return {
        "t": MTI_ECHO,
        "7": transmission_time(transmitted_at),
        "11": _num(stan, 6, "STAN"),
        "41": _text(terminal_id, 8, "terminal id"),
        "70": NMI_ECHO,
    }


def transmission_time(at: dt.datetime) -> str:
    """Field 7, MMDDhhmmss; aware times are converted to UTC as ISO 8583 asks, naive ones sent as given."""
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC)
    return f"{at:%m%d%H%M%S}"


# --- helpers ------------------------------------------------------------------------------------------------


def _is_digits(value: str, width: int) -> bool:
    return len(value) == width and value.isascii() and value.isdigit()


def _num(value: int, width: int, name: str) -> str:
    if not 0 <= value < 10**width:
        raise LocalProtocolError(f"{name} {value} does not fit {width} digits")
    return f"{value:0{width}d}"


def _digits(value: str, min_len: int, max_len: int, name: str) -> str:
    if not (min_len <= len(value) <= max_len and value.isascii() and value.isdigit()):
        raise LocalProtocolError(f"{name} must be {min_len}..{max_len} digits")
    return value


def _pan(pan: str) -> str:
    return _digits(pan, 12, 19, "PAN")  # the message names no digits: a PAN never enters an exception


def _text(value: str, width: int, name: str) -> str:
    if not (0 < len(value) <= width and value.isascii() and value.isprintable()):
        raise LocalProtocolError(f"{name} must be 1..{width} printable ASCII characters")
    return value.ljust(width)


def _track2_field(track2: bytes) -> str:
    text = track2.hex().upper().rstrip("F").replace("D", "=")
    if not _TRACK2.fullmatch(text):
        raise LocalProtocolError("track 2 is not in tag 57 form (digits, one D separator, F pad)", tag="35")
    return text


def _parse_track2(value: str) -> bytes:
    if not _TRACK2.fullmatch(value):
        raise RemoteProtocolError("field 35 is not track 2 data", tag="35")
    text = value.replace("=", "D")
    return bytes.fromhex(text + "F" * (len(text) % 2))


def _require(fields: Mapping[str, str], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key not in fields:
            raise RemoteProtocolError(f"mandatory field {key} missing", tag=key)


def _parse_digits(fields: Mapping[str, str], key: str) -> str:
    value = fields[key]
    if not (value and value.isascii() and value.isdigit()):
        raise RemoteProtocolError(f"field {key} is not numeric", tag=key)
    return value


def _parse_num(fields: Mapping[str, str], key: str) -> int:
    return int(_parse_digits(fields, key))
