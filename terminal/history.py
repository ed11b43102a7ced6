"""Transaction history from the journal: search by SIM tail, amount, date and channel; the end-of-shift summary
per cashier; the duplicate receipt.

A reprint is the stored receipt word for word (the journal keeps the printed lines), framed top and bottom by
``DUPLICATE / 重印`` so nobody takes it for a second sale.

>>> from terminal.journal import Journal
>>> j = Journal(":memory:")
>>> search(j, HistoryFilter(sim_tail="0017"))
[]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flows.messages import t
from flows.ports import ReceiptLine, TxnRecord
from terminal.journal_port import TerminalJournal

__all__ = ["HistoryFilter", "search", "ShiftTotals", "shift_summary", "duplicate", "SALE_STATES", "skipped_rows"]

SALE_STATES = ("completed", "topup_pending")  # money taken and the top-up applied or on its way
REVERSED_STATES = ("reversed", "reversal_pending")


@dataclass(frozen=True)
class HistoryFilter:
    """Every field narrows the search; empty fields match everything.

    ``amount_minor`` matches the total paid (amount + fee) or the plan amount; ``day`` is ``YYYY-MM-DD``.
    """

    sim_tail: str = ""
    amount_minor: int | None = None
    day: str = ""
    channel: str = ""
    cashier_id: str = ""


def search(journal: TerminalJournal, f: HistoryFilter, limit: int = 50) -> list[TxnRecord]:
    """Matching transactions, newest first."""
    rows = journal.search(sim_tail=f.sim_tail, amount_minor=f.amount_minor, day=f.day, channel=f.channel,
                          cashier_id=f.cashier_id)
    return list(reversed(rows))[:limit]


@dataclass(frozen=True)
class ShiftTotals:
    cashier_id: str
    sales: int
    sales_minor: int
    reversed: int
    reversed_minor: int
    other: int


def shift_summary(journal: TerminalJournal, day: str, cashier_id: str = "") -> list[ShiftTotals]:
    """Per cashier, for ``day`` (``YYYY-MM-DD``): sales (completed or top-up pending) and their total paid,
    reversals, and everything else (declined, cancelled …). One cashier when ``cashier_id`` is given."""
    totals: dict[str, list[int]] = {}
    for rec in search(journal, HistoryFilter(day=day, cashier_id=cashier_id), limit=1_000_000):
        row = totals.setdefault(rec.cashier_id, [0, 0, 0, 0, 0])
        if rec.state in SALE_STATES:
            row[0] += 1
            row[1] += rec.total_minor
        elif rec.state in REVERSED_STATES:
            row[2] += 1
            row[3] += rec.total_minor
        else:
            row[4] += 1
    return [ShiftTotals(cid, *values) for cid, values in sorted(totals.items())]


def duplicate(lines: Sequence[ReceiptLine], lang: str = "both") -> tuple[ReceiptLine, ...]:
    """The receipt framed as a duplicate."""
    mark = ReceiptLine(f"*** {t('receipt.duplicate', lang)} ***", align="center", bold=True)
    return (mark, *lines, mark)


def skipped_rows(journal: TerminalJournal) -> str:
    """The journal rows that could not be decoded and were left out (``"txn 7, txn 9"``; empty when none)."""
    return ", ".join(sorted(getattr(journal, "quarantined", {})))
