"""Duplicate guard: the same SIM and the same amount again within a short window is probably a mistake.

A customer who is unsure whether the first top-up went through asks for it again; a cashier who did not see the
receipt keys it twice. Before a new payment the terminal looks for an earlier transaction on the same SIM for the
same total, younger than the window (10 minutes by default, ``terminal.duplicate_window_s``), in which money moved
or may still move. When one exists the cashier sees it and must confirm explicitly with a key that is not ENTER,
so a bounced or repeated ENTER can never take a second payment.

Transactions where no money moved (declined, cancelled, failed, abandoned) or that were given back (reversed)
are not duplicates: trying again after them is what the cashier should do. A journal row of the same SIM inside
the window that cannot be decoded (quarantined, issue 15 item 4) is named on the same warning screen: the guard
cannot tell whether money moved in it.

>>> from flows.ports import TxnRecord
>>> first = TxnRecord(1, "completed", "O1", "8986", "1064", "P", "p", 3000, 0, "card", "01",
...                   "2026-12-01T10:00:00.000")
>>> find_duplicate([first], iccid="8986", total_minor=3000, now=dt.datetime(2026, 12, 1, 10, 9), window_s=600)
... # doctest: +ELLIPSIS
TxnRecord(txn_id=1, state='completed', ...)
>>> find_duplicate([first], iccid="8986", total_minor=3000, now=dt.datetime(2026, 12, 1, 10, 11), window_s=600)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from flows.messages import Msg, state_label
from flows.money import format_money
from flows.ports import TxnRecord

__all__ = ["DEFAULT_WINDOW_S", "NO_MONEY_STATES", "find_duplicate", "window_start", "describe"]

DEFAULT_WINDOW_S = 600.0
NO_MONEY_STATES = frozenset({"declined", "cancelled", "failed", "auth_failed", "abandoned", "reversed", "voided"})


def window_start(now: dt.datetime, window_s: float) -> str:
    """The oldest ``created_at`` (journal ISO format) that still counts."""
    return (now - dt.timedelta(seconds=window_s)).isoformat(timespec="milliseconds")


def find_duplicate(records: Iterable[TxnRecord], *, iccid: str, total_minor: int, now: dt.datetime,
                   window_s: float, amount_minor: int | None = None) -> TxnRecord | None:
    """The newest earlier transaction on ``iccid`` for ``total_minor`` inside the window, or None. With
    ``amount_minor`` (the plan's price) the same top-up paid on another channel, with another fee, matches too."""
    oldest = window_start(now, window_s)
    matches = [r for r in records if r.iccid == iccid
               and (r.total_minor == total_minor or (amount_minor is not None and r.amount_minor == amount_minor))
               and r.created_at >= oldest and r.state not in NO_MONEY_STATES]
    return max(matches, key=lambda r: r.txn_id, default=None)


def describe(record: TxnRecord | None, now: dt.datetime, skipped: Sequence[str] = ()) -> tuple[Msg, ...]:
    """What the cashier reads on the warning screen (catalogue texts, rendered in the screen's language):
    the earlier sale, and the damaged journal rows of this SIM in the window, by name (``"txn 7"``) — the guard
    cannot read them, so one of them may be an earlier payment."""
    lines: tuple[Msg, ...] = ()
    if record is not None:
        when = dt.datetime.fromisoformat(record.created_at)
        minutes = max(0, int((now - when).total_seconds() // 60))
        lines = (Msg("dup.charged", {"sim": f"…{record.iccid[-4:]}", "money": format_money(record.total_minor),
                                     "minutes": minutes}),
                 Msg("dup.order", {"order": record.order_id, "state": state_label(record.state)}))
    if skipped:
        lines += (Msg("dup.skipped", {"rows": ", ".join(skipped)}),)
    return (*lines, Msg("dup.choice"))
