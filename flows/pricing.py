"""What the customer pays for a plan on a channel, and whether that channel allows it.

Each channel (``card``, ``wechat``, ``alipay``, ``emvqr``) has a fee — fixed fen plus a rate in basis points of
the amount, rounded half up to the fen — and limits: a minimum and maximum per payment and a daily limit per
SIM (sum of today's payments for that SIM on that channel). A quote over a limit carries an error naming the
limit; nothing is charged. Money is integer fen throughout.

>>> from flows.ports import Plan
>>> q = quote(Plan("P10", "10 GB", "10 GB", 1, 3000, 10240), "card", FeeSchedule({"card": (0, 60)}), 100000)
>>> (q.amount_minor, q.fee_minor, q.total_minor, q.error)
(3000, 18, 3018, None)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from flows.messages import CATALOGUE, Msg, t
from flows.money import format_money
from flows.ports import Plan

__all__ = ["FeeSchedule", "ChannelLimits", "Quote", "quote", "CHANNEL_LABELS", "WALLET_CHANNELS", "channel_label",
           "TAP_CHANNEL", "offered_channels"]

CHANNEL_LABELS: Mapping[str, str] = {c: t(f"channel.{c}") for c in ("card", "wechat", "alipay", "emvqr", "tap")}
WALLET_CHANNELS = frozenset({"wechat", "alipay", "emvqr"})
TAP_CHANNEL = "tap"  # contactless (flows.contactless_payment): offered only where the reader has an antenna


def offered_channels(tap: bool, wallets: Collection[str] = WALLET_CHANNELS) -> tuple[str, ...]:
    """The channel menu, in order; ``tap`` last and only when the reader supports contactless; of the wallet
    channels only ``wallets`` (``[wallet] channels``).

    >>> offered_channels(False)[-1], offered_channels(True)[-1], offered_channels(False, ("wechat",))
    ('emvqr', 'tap', ('card', 'wechat'))
    """
    return tuple(c for c in CHANNEL_LABELS if (tap or c != TAP_CHANNEL) and (c not in WALLET_CHANNELS or c in wallets))


@dataclass(frozen=True)
class ChannelLimits:
    """Per-payment minimum and maximum and daily limit per SIM, in fen; None means no limit."""

    min_minor: int | None = None
    max_minor: int | None = None
    daily_minor: int | None = None


def channel_label(channel: str, lang: str = "both") -> str:
    """The channel's name in ``lang`` from the catalogue (``channel.<name>``), else its bilingual label."""
    key = f"channel.{channel}"
    return t(key, lang) if key in CATALOGUE else CHANNEL_LABELS.get(channel, channel)


@dataclass(frozen=True)
class FeeSchedule:
    """channel -> (fixed fee in fen, rate in basis points); channel -> limits."""

    fees: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    limits: Mapping[str, ChannelLimits] = field(default_factory=dict)
    min_fees: Mapping[str, int] = field(default_factory=dict)  # channel -> the least fee of one payment, in fen

    def fee(self, channel: str, amount_minor: int) -> int:
        """Fixed part plus ``amount × bps / 10000`` rounded half up to the fen (integers only), at least the
        channel's minimum fee.

        >>> FeeSchedule({"wechat": (10, 38)}).fee("wechat", 2500)  # 10 + 9.5 → 10 + 10
        20
        >>> FeeSchedule({"card": (0, 60)}, min_fees={"card": 50}).fee("card", 3000)  # 18 → at least 50
        50
        """
        fixed, bps = self.fees.get(channel, (0, 0))
        return max(fixed + (amount_minor * bps + 5000) // 10000, self.min_fees.get(channel, 0))

    def describe(self, channel: str) -> Msg | None:
        """The channel's fee rule for the channel list (``0.60 %, min ￥0.50``), or None when it is free."""
        fixed, bps = self.fees.get(channel, (0, 0))
        least = self.min_fees.get(channel, 0)
        if not (fixed or bps or least):
            return None
        parts = ([f"{bps // 100}.{bps % 100:02d} %"] if bps else []) + ([f"+{format_money(fixed)}"] if fixed else [])
        return Msg("fee.rule_min" if least else "fee.rule", {"rule": " ".join(parts) or format_money(0),
                                                             "least": format_money(least)})

    def limits_for(self, channel: str) -> ChannelLimits:
        return self.limits.get(channel, ChannelLimits())


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


def quote(plan: Plan, channel: str, fees: FeeSchedule, max_amount_minor: int, *,
          spent_today_minor: int = 0) -> Quote:
    """Price ``plan`` on ``channel``. ``spent_today_minor``: what this SIM already paid today on the channel."""
    amount = plan.payable_minor
    fee = fees.fee(channel, amount)
    return Quote(plan, channel, amount, fee, _limit_error(channel, amount, amount + fee, fees, max_amount_minor,
                                                         spent_today_minor))


def _limit_error(channel: str, amount: int, total: int, fees: FeeSchedule, terminal_max: int,
                 spent_today: int) -> Msg | None:
    name = Msg(f"channel.{channel}") if f"channel.{channel}" in CATALOGUE else CHANNEL_LABELS.get(channel, channel)
    limits = fees.limits_for(channel)
    if amount <= 0:
        return Msg("price.none")
    if total > terminal_max:
        return Msg("price.over_limit", {"total": format_money(total), "limit": format_money(terminal_max)})
    if limits.min_minor is not None and total < limits.min_minor:
        return Msg("price.below_min", {"total": format_money(total), "channel": name,
                                       "limit": format_money(limits.min_minor)})
    if limits.max_minor is not None and total > limits.max_minor:
        return Msg("price.over_channel", {"total": format_money(total), "channel": name,
                                          "limit": format_money(limits.max_minor)})
    if limits.daily_minor is not None and spent_today + total > limits.daily_minor:
        return Msg("price.daily", {"channel": name, "limit": format_money(limits.daily_minor),
                                   "spent": format_money(spent_today)})
    return None
