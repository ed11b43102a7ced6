"""What the customer pays for a plan on a channel: the plan's (promotional) price plus the channel's fee.

Fees are per channel, fixed in fen plus a rate in basis points, rounded half up; a configured per-transaction limit
refuses a quote before any card is touched.

>>> from flows.ports import Plan
>>> q = quote(Plan("P10", "10 GB", "10 GB", 1, 3000, 10240), "card", FeeSchedule({"card": (0, 60)}), 100000)
>>> (q.amount_minor, q.fee_minor, q.total_minor, q.error)
(3000, 18, 3018, None)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flows.messages import CATALOGUE, Msg, t
from flows.money import format_money
from flows.ports import Plan

__all__ = ["FeeSchedule", "Quote", "quote", "CHANNEL_LABELS", "channel_label"]

CHANNEL_LABELS: Mapping[str, str] = {
    "card": "Chip card / 芯片卡",
}


def channel_label(channel: str, lang: str = "both") -> str:
    """The channel's name in ``lang`` from the catalogue (``channel.<name>``), else its bilingual label."""
    key = f"channel.{channel}"
    return t(key, lang) if key in CATALOGUE else CHANNEL_LABELS.get(channel, channel)


@dataclass(frozen=True)
class FeeSchedule:
    """channel -> (fixed fee in fen, rate in basis points)."""

    fees: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def fee(self, channel: str, amount_minor: int) -> int:
        fixed, bps = self.fees.get(channel, (0, 0))
        return fixed + (amount_minor * bps + 5000) // 10000


@dataclass(frozen=True)
class Quote:
    plan: Plan
    channel: str
    amount_minor: int
    fee_minor: int
    error: Msg | None = None

    @property
    def total_minor(self) -> int:
        return self.amount_minor + self.fee_minor


def quote(plan: Plan, channel: str, fees: FeeSchedule, max_amount_minor: int) -> Quote:
    amount = plan.payable_minor
    fee = fees.fee(channel, amount)
    error = None
    if amount <= 0:
        error = Msg("price.none")
    elif amount + fee > max_amount_minor:
        error = Msg("price.over_limit", {"total": format_money(amount + fee),
                                         "limit": format_money(max_amount_minor)})
    return Quote(plan, channel, amount, fee, error)
