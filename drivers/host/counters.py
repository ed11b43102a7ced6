"""The host's own view of a terminal's counters: private field 61 of the 0810 answers to sign-on and echo — pure.

A real acquirer knows the last STAN, batch and invoice it received from each terminal, and tells it at sign-on
(签到: CUP hosts return the batch in the 0810) or to a network inquiry. After a journal restored from an old
backup the host's view is the only witness that a counter went back, so the terminal continues from the highest
of its journal, its high-water record and this view (issue 15 item 2). Field 61 (``LLL ans``, 18 digits)::

    +------------------+------------------+------------------+
    | last STAN  (n 6) | batch      (n 6) | invoice    (n 6) |
    +------------------+------------------+------------------+

"Last" is the newest in sequence-number order (RFC 1982 serial arithmetic over 1..999999, ``is_ahead``), so a
counter that wrapped after 999999 is still newer, and an old number sent again (a restored terminal's reused
STAN, answered 94) never lowers the view. A view that is absent is no view (the host does not offer one); one
that is malformed raises ``RemoteProtocolError`` and the terminal ignores it: it can only ever move counters
forward, never back, and only from an answer whose MAC verified.

>>> view = HostView(stan=41, batch=3, invoice=40)
>>> encode_view(view)
'000041000003000040'
>>> parse_view({"61": "000041000003000040"}) == view, parse_view({}) is None
(True, True)
>>> behind(view, {"stan": 7, "batch": 3, "invoice": 50})
{'stan': 41}
>>> is_ahead(41, 2), is_ahead(999998, 2), is_ahead(2, 999998), is_ahead(5, 5)
(True, False, True, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pos_errors import RemoteProtocolError

__all__ = ["VIEW_FIELD", "COUNTER_MODULUS", "HostView", "encode_view", "parse_view", "is_ahead", "newer", "behind"]

VIEW_FIELD = "61"
COUNTER_MODULUS = 999999  # STAN, batch and invoice all run 1..999999 and wrap to 1
_WIDTH = 6


@dataclass(frozen=True)
class HostView:
    """What the host last received from one terminal (0 = nothing yet)."""

    stan: int = 0
    batch: int = 0
    invoice: int = 0


def encode_view(view: HostView) -> str:
    """Field 61 of an 0810 (host side)."""
    return "".join(f"{min(max(v, 0), COUNTER_MODULUS):0{_WIDTH}d}" for v in (view.stan, view.batch, view.invoice))


def parse_view(fields: Mapping[str, str]) -> HostView | None:
    """Field 61 of an answer → HostView; None when the answer carries none. Raises RemoteProtocolError (tag 61)
    when it is not 18 digits."""
    value = fields.get(VIEW_FIELD)
    if value is None:
        return None
    if len(value) != 3 * _WIDTH or not value.isascii() or not value.isdigit():
        raise RemoteProtocolError("field 61 (the host's view of our counters) is not 18 digits", tag=VIEW_FIELD)
    stan, batch, invoice = (int(value[i:i + _WIDTH]) for i in range(0, 3 * _WIDTH, _WIDTH))
    return HostView(stan=stan, batch=batch, invoice=invoice)


def is_ahead(theirs: int, ours: int) -> bool:
    """True when ``theirs`` comes after ``ours`` in the 1..999999 sequence (less than half the circle ahead): 41
    after 2, but 999998 not after 2 (we wrapped since), and 2 after 999998 (they did). A gap of half the circle
    or more (500 000 messages between a backup and its restore) reads as behind: such a view is ignored."""
    if not 0 < theirs <= COUNTER_MODULUS:
        return False
    if ours == 0:
        return True
    return 0 < (theirs - ours) % COUNTER_MODULUS < COUNTER_MODULUS // 2


def newer(current: int, candidate: int) -> int:
    """The newer of two counter values in sequence order (the host keeps its view with it)."""
    return candidate if is_ahead(candidate, current) else current


def behind(view: HostView, counters: Mapping[str, int]) -> dict[str, int]:
    """The terminal's counters (``{"stan": …, "batch": …, "invoice": …}``) that the host's view is ahead of, with
    the value each must reach: the journal's counters continue from the highest it has seen or been told."""
    theirs = {"stan": view.stan, "batch": view.batch, "invoice": view.invoice}
    return {name: value for name, value in theirs.items() if is_ahead(value, counters.get(name, 0))}
