"""Card session transcripts: record the APDUs of a transaction as JSON, replay them as a card.

A transcript is JSON: ``{"version": 1, "meta": {...}, "exchanges": [{"c": "00A4...", "r": "6F..9000"}, ...],
"host": {"code": "00", "issuer_data": "91.."}, "pins": [{"status": "entered", "sw": "9000"}, ...]}``.
``meta`` holds what the kernel needs to issue the same commands again: ``amount_minor``, ``when`` (ISO),
``unpredictable_number``, ``sequence_counter``, ``transaction_type``. ``ReplayCard`` answers each command with
the recorded response when the command is the recorded one, and ``6F00`` (recorded as a divergence)
otherwise.

Shared transcripts mask the cardholder data: ``mask_transcript`` replaces the middle digits of every PAN
occurrence (BCD as in ``5A``, and ASCII) with zeros, so the kernel still sees digits; it blanks the values of the
track and cardholder tags in place, keeping tag and length (``57`` / ``9F6B`` track 2: masked PAN, then zeros;
``56``, ``9F1F``, ``5F20``, ``9F0B``: spaces; ``9F20``: zeros; ``5F24`` expiry: ``491231``, or ``000101`` when the
card had expired on the transaction's day, so a replay decides as the card did), and sets ``meta.masked``; a
transcript that keeps the PAN carries ``meta.warning``. Offline data authentication of a masked transcript fails
by design (the issuer signed the real data).

>>> t = Transcript(meta={"amount_minor": 1}, exchanges=[(b"\\x00\\xa4", b"\\x90\\x00")])
>>> Transcript.from_json(t.to_json()).exchanges
[(b'\\x00\\xa4', b'\\x90\\x00')]
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from emv import records, tlv
from emv.tvr import parse_date
from pos_errors import RemoteProtocolError

__all__ = ["Transcript", "Recorder", "ReplayCard", "mask_transcript", "find_pan"]

VERSION = 1


@dataclass
class Transcript:
    meta: dict[str, Any] = field(default_factory=dict)
    exchanges: list[tuple[bytes, bytes]] = field(default_factory=list)
    host: dict[str, str] | None = None
    pins: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, "meta": self.meta,
                           "exchanges": [{"c": c.hex().upper(), "r": r.hex().upper()} for c, r in self.exchanges],
                           "host": self.host, "pins": self.pins}, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Transcript:
        """Raises RemoteProtocolError (a ValueError) when the text is not a version-1 transcript."""
        try:
            data = json.loads(text)
            if data.get("version") != VERSION:
                raise RemoteProtocolError(f"transcript version {data.get('version')!r} is not {VERSION}")
            exchanges = [(bytes.fromhex(e["c"]), bytes.fromhex(e["r"])) for e in data["exchanges"]]
            return cls(dict(data.get("meta", {})), exchanges, data.get("host"), list(data.get("pins", [])))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, RemoteProtocolError):
                raise
            raise RemoteProtocolError(f"not a transcript: {exc}") from exc


class Recorder:
    """Wraps a card's ``transmit`` so every exchange lands in ``transcript`` (each as the kernel asked for it:
    an answer a reader ran ahead of time is recorded when handed out). ``then`` (``SendApdu.then``) is passed
    on only when there is one, so ``transmit`` may be a plain ``process(apdu)``."""

    def __init__(self, transmit: Callable[..., bytes], meta: dict[str, Any]) -> None:
        self._transmit = transmit
        self.transcript = Transcript(meta=dict(meta))

    def __call__(self, command: bytes, *, then: Sequence[bytes] = ()) -> bytes:
        response = self._transmit(command, then=then) if then else self._transmit(command)
        self.transcript.exchanges.append((bytes(command), bytes(response)))
        return response


class ReplayCard:
    """A card that answers from a transcript, in order; ``divergences`` counts commands that differ."""

    def __init__(self, transcript: Transcript) -> None:
        self._exchanges = list(transcript.exchanges)
        self._next = 0
        self.divergences: list[int] = []

    def process(self, command: bytes) -> bytes:
        if self._next < len(self._exchanges):
            recorded, response = self._exchanges[self._next]
            self._next += 1
            if recorded == command:
                return response
        self.divergences.append(self._next)
        return b"\x6f\x00"


def find_pan(transcript: Transcript) -> str | None:
    """The PAN (``5A``) in the recorded records, if any; a record too damaged to decode is searched byte-wise
    (``5A`` with a length of 6-10, or the PAN before ``D`` in track 2 ``57``), so a corrupt record never keeps
    its PAN out of the mask."""
    for _, response in transcript.exchanges:
        try:
            for obj in tlv.decode(response[:-2]):
                value = tlv.first([obj], 0x5A) if obj.tag == 0x5A else tlv.first(obj.children, 0x5A)
                if value:
                    return records.pan_digits(value)
        except RemoteProtocolError:
            continue
    for _, response in transcript.exchanges:
        found = _raw_pan(response)
        if found:
            return found
    return None


def _raw_pan(data: bytes) -> str | None:
    for at in range(len(data) - 2):
        tag, length = data[at], data[at + 1]
        if tag == 0x5A and 6 <= length <= 10:
            try:
                return records.pan_digits(data[at + 2:at + 2 + length])
            except RemoteProtocolError:
                continue
        start = at + 2
        if data[at:at + 2] == b"\x9f\x6b" and at + 3 < len(data):  # contactless track 2: two tag bytes
            tag, length, start = 0x57, data[at + 2], at + 3
        if tag == 0x57 and 8 <= length <= 19:
            digits = data[start:start + length].hex().upper().partition("D")[0]
            if digits.isdigit() and 12 <= len(digits) <= 19:
                return digits
    return None


def mask_transcript(transcript: Transcript) -> Transcript:
    """A copy with the track and cardholder tags blanked in every response (tag and length kept) and every other
    occurrence of the PAN (BCD or ASCII) masked to first 6 / last 4."""
    day = _transaction_day(transcript.meta)
    pan = find_pan(transcript)
    real_hex = masked_hex = ""
    if pan is not None:
        masked = _mask_digits(pan)
        real_hex, masked_hex = pan.upper(), masked.upper()
        real_ascii, masked_ascii = pan.encode(), masked.encode()

    def scrub(data: bytes) -> bytes:
        if pan is None:
            return data
        data = bytes.fromhex(data.hex().upper().replace(real_hex, masked_hex))
        return data.replace(real_ascii, masked_ascii)

    exchanges = [(scrub(c), scrub(_blank_card_data(r, day))) for c, r in transcript.exchanges]
    meta = {k: v for k, v in transcript.meta.items() if k != "warning"}
    return Transcript({**meta, "masked": True}, exchanges, transcript.host, list(transcript.pins))


_TRACK2_TAGS = (0x57, 0x9F6B)  # PAN 'D' YYMM service code discretionary data (b, BCD)
_TEXT_TAGS = (0x56, 0x9F1F, 0x5F20, 0x9F0B)  # track 1, track 1 discretionary, cardholder name (ans)
_BLANKED = (*_TRACK2_TAGS, *_TEXT_TAGS, 0x9F20, 0x5F24)
_NOT_EXPIRED, _EXPIRED = bytes.fromhex("491231"), bytes.fromhex("000101")


def _mask_digits(digits: str) -> str:
    return digits[:6] + "0" * max(0, len(digits) - 10) + digits[-4:] if len(digits) > 10 else "0" * len(digits)


def _transaction_day(meta: dict[str, Any]) -> dt.date:
    """The day the transcript's transaction ran (``meta.when`` contact, ``meta.date`` tap), as a replay takes it."""
    text = str(meta.get("when") or meta.get("date") or "2026-01-01")
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return dt.date(2026, 1, 1)


def _placeholder(tag: int, value: bytes, day: dt.date) -> bytes:
    """What a blanked value becomes: the same length, nothing of the card's but what a replay needs."""
    if tag in _TRACK2_TAGS:
        digits, sep, _rest = value.hex().upper().partition("D")
        if not sep or not digits.isdigit():
            return bytes(len(value))
        text = (_mask_digits(digits) + "D").ljust(len(value) * 2 - 1, "0")
        text += "F" if value.hex().upper().endswith("F") else "0"
        return bytes.fromhex(text)
    if tag in _TEXT_TAGS:
        return b" " * len(value)
    if tag == 0x5F24:
        try:
            expired = day > parse_date(value, "5F24")
        except RemoteProtocolError:
            return bytes(len(value))
        return _EXPIRED if expired else _NOT_EXPIRED
    return bytes(len(value))


def _blank_card_data(response: bytes, day: dt.date) -> bytes:
    """``response`` (data + SW1 SW2) with the values of the ``_BLANKED`` tags overwritten in place."""
    body = bytearray(response[:-2])
    try:
        found = [(tag, start, end) for tag, start, end in tlv.spans(bytes(body)) if tag in _BLANKED]
    except RemoteProtocolError:  # too damaged to decode: every place a blanked tag could start is blanked
        found = list(_raw_spans(bytes(body)))
    for tag, start, end in found:
        body[start:end] = _placeholder(tag, bytes(body[start:end]), day)
    return bytes(body) + response[-2:]


def _raw_spans(data: bytes) -> Iterator[tuple[int, int, int]]:
    for tag in _BLANKED:
        head = tlv.encode_tag(tag)
        at = data.find(head)
        while at >= 0:
            length_at = at + len(head)
            if length_at < len(data) and data[length_at] < 0x80 and length_at + 1 + data[length_at] <= len(data):
                yield tag, length_at + 1, length_at + 1 + data[length_at]
            at = data.find(head, at + 1)
