"""Card session transcripts: record the APDUs of a transaction as JSON, replay them as a card.

A transcript is JSON: ``{"version": 1, "meta": {...}, "exchanges": [{"c": "00A4...", "r": "6F..9000"}, ...],
"host": {"code": "00", "issuer_data": "91.."}, "pins": [{"status": "entered", "sw": "9000"}, ...]}``.
``meta`` holds what the kernel needs to issue the same commands again: ``amount_minor``, ``when`` (ISO),
``unpredictable_number``, ``sequence_counter``, ``transaction_type``. ``ReplayCard`` answers each command with
the recorded response when the command is the recorded one, and ``6F00`` (recorded as a divergence)
otherwise.

Shared transcripts mask the PAN: ``mask_transcript`` replaces the middle digits of every PAN occurrence (``5A`` and
inside track 2 ``57``) with zeros, so the kernel still sees digits, and sets ``meta.masked``; a transcript
that keeps the PAN carries ``meta.warning``. Offline data authentication of a masked transcript fails by
design (the issuer signed the real PAN).

>>> t = Transcript(meta={"amount_minor": 1}, exchanges=[(b"\\x00\\xa4", b"\\x90\\x00")])
>>> Transcript.from_json(t.to_json()).exchanges
[(b'\\x00\\xa4', b'\\x90\\x00')]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emv import records, tlv
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
    """Wraps a card's ``transmit`` so every exchange lands in ``transcript``."""

    def __init__(self, transmit: Callable[[bytes], bytes], meta: dict[str, Any]) -> None:
        self._transmit = transmit
        self.transcript = Transcript(meta=dict(meta))

    def __call__(self, command: bytes) -> bytes:
        response = self._transmit(command)
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
        if tag == 0x57 and 8 <= length <= 19:
            digits = data[at + 2:at + 2 + length].hex().upper().partition("D")[0]
            if digits.isdigit() and 12 <= len(digits) <= 19:
                return digits
    return None


def mask_transcript(transcript: Transcript) -> Transcript:
    """A copy with every occurrence of the PAN (BCD, as in ``5A`` and ``57``) masked to first 6 / last 4."""
    pan = find_pan(transcript)
    if pan is None:
        return Transcript({**transcript.meta, "masked": True}, list(transcript.exchanges), transcript.host,
                          list(transcript.pins))
    masked = pan[:6] + "0" * (len(pan) - 10) + pan[-4:]
    real_hex, masked_hex = pan.upper(), masked.upper()

    def scrub(data: bytes) -> bytes:
        return bytes.fromhex(data.hex().upper().replace(real_hex, masked_hex))

    exchanges = [(scrub(c), scrub(r)) for c, r in transcript.exchanges]
    meta = {k: v for k, v in transcript.meta.items() if k != "warning"}
    return Transcript({**meta, "masked": True}, exchanges, transcript.host, list(transcript.pins))
