"""Magnetic stripe track data (ISO/IEC 7813): track 2 and track 1 parsed into PAN, expiry and service code.

Pure functions over the ASCII a reader hands over (sentinels and LRC optional). The PAN and the raw tracks stay
out of ``repr`` and out of every error message: a bad track says *where* it is bad, never what it holds.
The service code's first digit 2 or 6 means "chip present: use the chip" (ISO/IEC 7813 §10.6).

>>> stripe = parse_tracks(track2=b";6212345678901234=30122201234567890?")
>>> stripe.masked_pan, stripe.expiry_yymm, stripe.service_code, stripe.chip_card
('621234******1234', '3012', '220', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emv.pan import mask_pan
from pos_errors import RemoteProtocolError

__all__ = ["Stripe", "parse_tracks", "parse_track2", "parse_track1"]

_CHIP_FIRST_DIGITS = frozenset("26")  # international / national interchange, IC present


@dataclass(frozen=True)
class Stripe:
    """What a swipe tells: the account and its rules. ``track2`` is the raw track 2 (no sentinels) that an
    authorization carries in field 35; never log it."""

    pan: str = field(repr=False)
    expiry_yymm: str
    service_code: str
    track2: str = field(repr=False)
    name: str = field(default="", repr=False)

    @property
    def chip_card(self) -> bool:
        """The card has a chip the terminal must try first."""
        return self.service_code[:1] in _CHIP_FIRST_DIGITS

    @property
    def pin_required(self) -> bool:
        """Service code third digit 0, 3, 5, 6 or 7: PIN required / PIN pad present (ISO/IEC 7813 table)."""
        return self.service_code[2:3] in {"0", "3", "5", "6", "7"}

    @property
    def masked_pan(self) -> str:
        return mask_pan(self.pan)


def _text(raw: bytes, what: str) -> str:
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"{what} is not ASCII", offset=exc.start) from None
    return text


def parse_track2(raw: bytes) -> Stripe:
    """Track 2: ``[;]PAN=YYMMSSS<discretionary>[?[LRC]]``. Raises RemoteProtocolError (no track content in it)."""
    text = _text(raw, "track 2")
    start = 1 if text.startswith(";") else 0
    end = text.find("?")
    body = text[start:end if end >= 0 else len(text)]
    pan, sep, rest = body.partition("=")
    if not sep or not 12 <= len(pan) <= 19 or not pan.isdigit():
        raise RemoteProtocolError("track 2 has no PAN of 12-19 digits before '='", offset=start)
    if len(rest) < 7 or not rest[:7].isdigit() or not 1 <= int(rest[2:4]) <= 12:
        raise RemoteProtocolError("track 2 expiry or service code missing or malformed",
                                  offset=start + len(pan) + 1)
    if not all(c.isdigit() for c in rest[7:]):
        raise RemoteProtocolError("track 2 discretionary data is not numeric", offset=start + len(pan) + 8)
    return Stripe(pan=pan, expiry_yymm=rest[:4], service_code=rest[4:7], track2=body)


def parse_track1(raw: bytes) -> tuple[str, str]:
    """Track 1 (format B): ``[%]B PAN ^ NAME ^ YYMM SSS ...[?]`` -> (PAN, cardholder name)."""
    text = _text(raw, "track 1")
    start = 1 if text.startswith("%") else 0
    fields = text[start:].rstrip("?").split("^")
    if len(fields) < 3 or not fields[0].startswith("B") or not fields[0][1:].isdigit():
        raise RemoteProtocolError("track 1 is not format B with PAN ^ NAME ^ DATA", offset=start)
    return fields[0][1:], fields[1].strip()


def parse_tracks(*, track2: bytes, track1: bytes = b"") -> Stripe:
    """Track 2 decides (it is what the authorization carries); track 1 adds the name and must agree on the PAN."""
    stripe = parse_track2(track2)
    if not track1:
        return stripe
    pan, name = parse_track1(track1)
    if pan != stripe.pan:
        raise RemoteProtocolError("track 1 and track 2 disagree on the PAN", offset=0)
    return Stripe(stripe.pan, stripe.expiry_yymm, stripe.service_code, stripe.track2, name)
