"""The journal port: the write-ahead record of every transaction, and the row it returns.

>>> TxnRecord(1, "created", "O1", "8986", "1064", "P", "p", 1000, 38, "card", "01", "").total_minor
1038
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

__all__ = ["TxnRecord", "JournalPort"]


@dataclass(frozen=True)
class TxnRecord:
    """One transaction as the journal holds it. Only masked PANs are ever stored."""

    txn_id: int
    state: str
    order_id: str
    iccid: str
    msisdn: str
    plan_id: str
    plan_name: str
    amount_minor: int
    fee_minor: int
    channel: str
    cashier_id: str
    created_at: str
    stan: int | None = None
    masked_pan: str | None = None
    response_code: str | None = None
    auth_code: str | None = None
    rrn: str | None = None
    auth_time: str | None = None
    topup_status: str | None = None
    balance_after_minor: int | None = None
    reversal: str | None = None
    reversal_stan: int | None = None
    message: str | None = None
    receipt: str | None = None
    batch: int | None = None
    refund_stan: int | None = None
    entry_mode: str | None = None  # field 22 of the 0200 (051 chip, 071 tap, 901 stripe, 801 fallback); None: older
    plan_name_zh: str | None = None  # the plan's Chinese name (``Plan.name_zh``); None: a row from before it was kept

    @property
    def total_minor(self) -> int:
        return self.amount_minor + self.fee_minor


class JournalPort(Protocol):
    """Write-ahead record of every transaction: written before each external step and after its answer."""

    def next_stan(self, *, durable: bool = True) -> int:
        """Persistent system trace audit number, 1..999999 then wraps to 1. ``durable=False`` when the next journal
        write is durable and nothing is sent under the STAN before it: the counter rides with that write's COMMIT
        (docs/money-safety.md, "Grouped commits"); a cut before it takes back both, and nothing saw the STAN."""

    def next_order_id(self, terminal_id: str, now: dt.datetime) -> str:
        """A new order id for the carrier, unique per terminal, created before the carrier is called."""

    def begin(self, *, order_id: str, iccid: str, msisdn: str, plan_id: str, plan_name: str,
              amount_minor: int, fee_minor: int, channel: str, cashier_id: str, plan_name_zh: str = "") -> int:
        """Create the row in state ``created``; returns the transaction id. ``plan_name_zh``: the plan's Chinese
        name, for receipts in Chinese."""

    def update(self, txn_id: int, state: str, **fields: object) -> None:
        """Move to ``state`` and set columns, atomically, with an event row; durable when it returns."""

    def get(self, txn_id: int) -> TxnRecord: ...

    def open_transactions(self) -> list[TxnRecord]:
        """Rows that recovery must finish or undo (not completed, declined, reversed or cancelled)."""
