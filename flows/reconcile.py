"""End of day per channel: the card batch goes to the acquirer; wallet sales are reconciled with the platforms.

An acquirer's batch holds only what it authorised: card sales (chip, stripe). Wallet sales (WeChat Pay, Alipay,
EMV QR) were never sent to the acquirer, so they leave the card batch (``flows.settlement.batch_totals``) and are
checked here, order by order, with the platform's own word (``WalletPort.query``), the reconciliation query a
real terminal makes when it has no separate wallet batch. A wallet order differs when the platform's status is
not what the journal's state implies: a completed top-up whose order is refunded, a cancelled sale whose order
was paid (the customer's money taken, no top-up), an order the platform never saw. The differing orders are
named; nothing here changes money — the supervisor follows them up (open items, refund) and reconciles again.

>>> from flows.ports import TxnRecord
>>> rows = [TxnRecord(1, "completed", "O1", "8986", "1064", "P", "p", 3000, 0, "card", "01", "t"),
...         TxnRecord(2, "completed", "O2", "8986", "1064", "P", "p", 1000, 6, "wechat", "01", "t"),
...         TxnRecord(3, "declined", "O3", "8986", "1064", "P", "p", 1000, 0, "wechat", "01", "t")]
>>> [(c.channel, c.count, c.amount_minor, c.fee_minor) for c in channel_totals(rows)]
[('card', 1, 3000, 0), ('wechat', 1, 1006, 6)]
>>> sorted(expected_status("cancelled")), sorted(expected_status("completed"))
(['cancelled', 'expired', 'failed', 'not_found', 'waiting'], ['paid'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flows.ports import TxnRecord, WalletPort
from flows.pricing import CHANNEL_LABELS, WALLET_CHANNELS
from pos_errors import LinkError, RemoteProtocolError

__all__ = ["WalletPorts", "ChannelTotals", "WalletMismatch", "Reconciliation", "channel_totals", "expected_status",
           "reconcile_wallets", "CAPTURED_STATES"]

# Money taken and kept (the top-up applied, pending, or its give-back still owed): the platform says "paid".
CAPTURED_STATES = frozenset({"completed", "topup_pending", "topup_failed", "reversal_refused", "refund_pending",
                             "reversal_pending", "wallet_cancel_pending", "paid", "topup_intended",
                             "topup_reapply"})  # the platform refused the refund: paid; the top-up is put back
_GIVEN_BACK = frozenset({"reversed", "refunded", "voided"})
_NOT_PAID = frozenset({"cancelled", "declined", "failed", "abandoned", "created"})


@dataclass(frozen=True)
class ChannelTotals:
    """One channel's captured sales in the batch: how many, their total (amount + fee) and the fees in it."""

    channel: str
    count: int
    amount_minor: int
    fee_minor: int = 0


@dataclass(frozen=True)
class WalletMismatch:
    """One wallet order where the platform and the journal disagree (``theirs`` is the platform's status, or
    ``unreachable`` when it could not be asked)."""

    order_id: str
    channel: str
    total_minor: int
    ours: str
    theirs: str


@dataclass(frozen=True)
class Reconciliation:
    """The wallet side of the day: per-channel totals and every order that differs."""

    totals: tuple[ChannelTotals, ...]
    mismatches: tuple[WalletMismatch, ...] = ()
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _order(channel: str) -> int:
    names = list(CHANNEL_LABELS)
    return names.index(channel) if channel in names else len(names)


def channel_totals(records: Sequence[TxnRecord], channels: frozenset[str] | None = None) -> tuple[ChannelTotals, ...]:
    """Captured sales per channel (card first, then the wallets, in the channel list's order)."""
    by: dict[str, list[TxnRecord]] = {}
    for r in records:
        if r.state in CAPTURED_STATES | {"refunded"} and (channels is None or r.channel in channels):
            by.setdefault(r.channel, []).append(r)
    return tuple(ChannelTotals(ch, len(rows), sum(r.total_minor for r in rows), sum(r.fee_minor for r in rows))
                 for ch, rows in sorted(by.items(), key=lambda kv: _order(kv[0])))


def expected_status(state: str) -> frozenset[str]:
    """The platform statuses that agree with a journal ``state`` of a wallet sale (empty: not judged)."""
    if state in CAPTURED_STATES or state == "refund_pending":
        return frozenset({"paid"})
    if state in _GIVEN_BACK:
        return frozenset({"refunded", "cancelled"})
    if state in _NOT_PAID:
        return frozenset({"failed", "cancelled", "expired", "not_found", "waiting"})
    return frozenset()


WalletPorts = WalletPort | Callable[[str], WalletPort] | None  # one platform, or channel → its platform


def reconcile_wallets(wallet: WalletPorts, records: Sequence[TxnRecord]) -> Reconciliation:
    """Ask the platform (``wallet``, or ``wallet(channel)`` — WeChat Pay and Alipay on their own APIs) about every
    wallet order of the batch that reached it; never raises for a link problem (the order is then listed as
    ``unreachable``)."""
    rows = [r for r in records if r.channel in WALLET_CHANNELS]
    totals = channel_totals(rows)
    mismatches: list[WalletMismatch] = []
    checked = 0
    for r in rows:
        wanted = expected_status(r.state)
        if not wanted or (r.state == "cancelled" and r.message == "cancelled before sending"):
            continue
        if wallet is None:
            mismatches.append(WalletMismatch(r.order_id, r.channel, r.total_minor, r.state, "unreachable"))
            continue
        try:
            port = wallet(r.channel) if callable(wallet) else wallet
            theirs = str(port.query(r.order_id).status)
        except (LinkError, RemoteProtocolError):
            theirs = "unreachable"
        checked += 1
        if theirs not in wanted:
            mismatches.append(WalletMismatch(r.order_id, r.channel, r.total_minor, r.state, theirs))
    return Reconciliation(totals, tuple(mismatches), checked)
