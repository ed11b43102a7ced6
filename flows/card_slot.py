"""The card slot between two sales: a card left in is never used for the next payment (issue 14 item 2).

After every card transaction the terminal asks for the card to be removed (the screen, through the progress
step ``REMOVE_CARD``, and the reader's buzzer). A payment refuses a card that was already in the slot when the
cashier started it (``TopupOrder.started_at``, the terminal's monotonic time): the customer is asked to remove it
and insert it again (``REMOVE_AND_INSERT``), and the payment goes on with the card inserted after that. Readers
that cannot say when a card went in (test fakes) are trusted as before.

>>> class Old:
...     inserted_at, present = 5.0, True
...     def card_present(self): return self.present
...     def beep(self, duration_ms=100): pass
>>> from_before(Old(), started_at=7.0), from_before(Old(), started_at=4.0), from_before(Old(), started_at=None)
(True, False, False)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from flows.ports import CancelToken
from pos_errors import Cancelled, DeviceError

__all__ = ["SlotReaderPort", "from_before", "beep", "wait_removed", "REMOVE_BEEP_MS"]

REMOVE_BEEP_MS = 400
_STEP_S = 0.2


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


def wait_removed(reader: Any, timeout_s: float, cancel: CancelToken,
                 progress: Callable[[], None] | None = None) -> bool:
    """True once the slot is empty; False after ``timeout_s``. Raises Cancelled (CANCEL on the terminal)."""
    deadline = time.monotonic() + timeout_s
    old = getattr(reader, "inserted_at", None)
    # gone, or another insertion since (taken out and put back in between two looks)
    while reader.card_present() and (old is None or getattr(reader, "inserted_at", None) == old):
        if cancel.cancelled:
            raise Cancelled("card removal cancelled")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        reader.wait_for_removal(min(_STEP_S, remaining))
        if progress is not None:
            progress()
    return True
