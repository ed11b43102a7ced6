"""The card slot between two sales: a card left in is never used for the next payment (issue 14 item 2).

After every card transaction the terminal asks for the card to be removed (the screen, through the progress
step ``REMOVE_CARD``, and the reader's buzzer). A payment refuses a card that was already in the slot when the
cashier started it (``TopupOrder.started_at``, the terminal's monotonic time): the customer is asked to remove it
and insert it again (``REMOVE_AND_INSERT``), and the payment goes on with the card inserted after that. Readers
that cannot say when a card went in (test fakes) are trusted as before.

The removal wait is woken by the reader's events, never a poll. Which card must leave is fixed *before* the
customer is asked (``mark``: the reader's insertion count): a card taken out and put back within milliseconds —
both events reaching the terminal together, or before the wait even began — has left, and the card now in is a
new insertion (powered afresh, inserted after the sale started), never the old card still present.

>>> class Old:
...     inserted_at, present = 5.0, True
...     def card_present(self): return self.present
...     def beep(self, duration_ms=100): pass
>>> from_before(Old(), started_at=7.0), from_before(Old(), started_at=4.0), from_before(Old(), started_at=None)
(True, False, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from flows.ports import CancelToken
from pos_errors import Cancelled, DeviceError

__all__ = ["SlotReaderPort", "SlotWatchPort", "FieldRemovalPort", "from_before", "beep", "mark", "wait_removed",
           "field_cleared", "REMOVE_BEEP_MS"]

REMOVE_BEEP_MS = 400


@runtime_checkable
class SlotReaderPort(Protocol):
    """A reader that knows when the card in its slot went in (monotonic seconds, None: no card) and can beep."""

    @property
    def inserted_at(self) -> float | None: ...

    def card_present(self) -> bool: ...

    def beep(self, duration_ms: int = 100) -> None: ...


def from_before(reader: Any, started_at: float | None) -> bool:
    """True when a card is in the slot and went in before the payment started (a card left in by someone)."""
    if started_at is None or not isinstance(reader, SlotReaderPort) or not reader.card_present():
        return False
    inserted = reader.inserted_at
    return inserted is None or inserted < started_at


def beep(reader: Any, duration_ms: int = REMOVE_BEEP_MS) -> None:
    """The reader's buzzer, if it has one; a buzzer fault never stops a sale."""
    if isinstance(reader, SlotReaderPort):
        try:
            reader.beep(duration_ms)
        except DeviceError:
            pass


@runtime_checkable
class SlotWatchPort(Protocol):
    """A reader that counts insertions and waits, on its events, for a given insertion's card to leave."""

    def slot_mark(self) -> int: ...

    def wait_for_removal(self, timeout_s: float, cancel: CancelToken | None = None,
                         since: int | None = None) -> bool: ...


def mark(reader: Any) -> int | None:
    """The insertion the slot holds now (``SlotWatchPort.slot_mark``), to be taken before the customer is asked
    to take the card out; None for a reader that does not count (``wait_removed`` then waits for the card in
    when it starts)."""
    return reader.slot_mark() if isinstance(reader, SlotWatchPort) else None


def wait_removed(reader: Any, timeout_s: float, cancel: CancelToken, since: int | None = None) -> bool:
    """True once the card of insertion ``since`` (``mark``) has left the slot — taken out, or out and in again
    however fast; False after ``timeout_s``. Raises Cancelled (CANCEL on the terminal), DeviceError."""
    if isinstance(reader, SlotWatchPort):
        return reader.wait_for_removal(timeout_s, cancel, since)
    if cancel.cancelled:  # a reader without marks or cancel (test doubles): its own wait
        raise Cancelled("card removal cancelled")
    return bool(reader.wait_for_removal(timeout_s))


@runtime_checkable
class FieldRemovalPort(Protocol):
    """A contactless reader that runs the card removal procedure (EMV Book D §9.5): True once the card it last
    activated has left the field."""

    def remove_contactless(self, timeout_s: float = 10.0, cancel: CancelToken | None = None) -> bool: ...


def field_cleared(reader: Any, timeout_s: float, cancel: CancelToken, asked: Callable[[], None]) -> bool:
    """The contactless side of the same rule (Book D's main loop: removal before the next poll): True when the
    card or phone of the previous tap has left the field — at once, or after ``asked`` showed "take it away"
    (a card taken away and held out again is a new presentation, read afresh); False when it stayed for
    ``timeout_s``. A reader that cannot tell is trusted. Raises Cancelled, DeviceError."""
    if not isinstance(reader, FieldRemovalPort) or reader.remove_contactless(0.0):
        return True
    asked()
    return reader.remove_contactless(timeout_s, cancel)
