"""Rules the terminal asks before money moves: the per-channel daily spending check and whether a batch may be
settled now. Pure functions over journal rows; the terminal fetches the rows with the journal's named queries.

>>> from flows.ports import TxnRecord
>>> row = TxnRecord(1, "completed", "O1", "8986", "1064", "P", "p", 3000, 100, "wechat", "01",
...                 "2026-12-01T10:00:00.000")
>>> spent_today([row], channel="wechat", day=dt.date(2026, 12, 1))
3100
>>> settlement_blocker(open_left=0, advices_left=2)
Msg(key='saf.not_drained', args={'count': 2})
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from flows.messages import Msg
from flows.ports import Plan, TxnRecord
from flows.pricing import FeeSchedule, Quote, quote

__all__ = ["NOT_SPENT_STATES", "spent_today", "channel_quote", "settlement_blocker"]

# A transaction in one of these states took no money (or gave it back): it does not count against a daily limit.
NOT_SPENT_STATES = frozenset({"created", "declined", "cancelled", "failed", "auth_failed", "abandoned", "reversed"})


def spent_today(records: Iterable[TxnRecord], *, channel: str, day: dt.date) -> int:
    """What these rows (one SIM's) paid or are paying on ``day`` on ``channel``: amount + fee, in fen."""
    return sum(r.total_minor for r in records if r.channel == channel and r.created_at[:10] == day.isoformat()
               and r.state not in NOT_SPENT_STATES)


def channel_quote(plan: Plan, channel: str, fees: FeeSchedule, max_amount_minor: int, sim_rows: Iterable[TxnRecord],
                  day: dt.date) -> Quote:
    """``plan`` priced on ``channel``, with the channel's limits checked against what the SIM already spent today
    (``Quote.error`` says why not)."""
    return quote(plan, channel, fees, max_amount_minor,
                 spent_today_minor=spent_today(sim_rows, channel=channel, day=day))


def settlement_blocker(*, open_left: int, advices_left: int) -> Msg | None:
    """Why the batch cannot be closed now (after recovery and the advice queue had their turn), or None."""
    if advices_left:
        return Msg("saf.not_drained", {"count": advices_left})
    if open_left:
        return Msg("settle.open_left", {"count": open_left})
    return None
