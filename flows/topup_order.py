"""What a top-up is asked to do and how it ended: the value types every top-up (card or wallet) shares.

They live apart from ``flows.topup`` (the card top-up, which brings the EMV kernels and the card flows with it)
so that what only names a top-up — boot recovery, the views, the result screen, the wallet flow — imports no card
payment machinery (issue 17 item 3: the boot path holds what the login screen needs).
``flows.topup`` re-exports all of them.

>>> TopupOutcome(TopupEnd.CANCELLED, "x", 1, "O1").money_moved
False
>>> TopupOutcome("completed", "x", 1, "O1").status is TopupEnd.COMPLETED
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from flows.messages import Text
from flows.pricing import Quote

if TYPE_CHECKING:  # an annotation only: the card flows are imported when a card payment runs
    from flows.card_payment import CardPaymentResult

__all__ = ["TopupOrder", "TopupEnd", "TopupEndName", "TopupOutcome", "MONEY_MOVED"]


@dataclass(frozen=True)
class TopupOrder:
    iccid: str
    msisdn: str
    quote: Quote
    cashier_id: str
    started_at: float | None = None  # the terminal's monotonic time at confirmation: a card in before is refused


class TopupEnd(StrEnum):
    """How a top-up (card or wallet) ended, as the result screen and the receipt name it."""

    COMPLETED = "completed"  # paid and applied at the carrier
    PENDING = "pending"  # paid; the carrier has not confirmed yet (followed up)
    REVERSED = "reversed"  # paid, then given back
    REVERSAL_PENDING = "reversal_pending"  # paid; giving it back is queued (or waits for a supervisor)
    DECLINED = "declined"
    CANCELLED = "cancelled"
    FAILED = "failed"  # nothing was charged


MONEY_MOVED = frozenset({TopupEnd.COMPLETED, TopupEnd.PENDING, TopupEnd.REVERSAL_PENDING})


TopupEndName = Literal["completed", "pending", "reversed", "reversal_pending", "declined", "cancelled", "failed"]


@dataclass(frozen=True)
class TopupOutcome:
    """``status`` says how it ended (a ``TopupEnd``; its value is accepted and stored as the member);
    ``message`` is what the cashier reads."""

    status: TopupEnd | TopupEndName
    message: Text  # a catalogue Msg; shown in the cashier's language
    txn_id: int
    order_id: str
    balance_minor: int | None = None
    payment: CardPaymentResult | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", TopupEnd(self.status))

    @property
    def money_moved(self) -> bool:
        return self.status in MONEY_MOVED
