"""Recovery of wallet orders after a power cut: ask the platform, then cancel or complete the top-up.

    ==========================================  ==============================================================
    state                                       what recovery does
    ==========================================  ==============================================================
    created                                     nothing left the terminal: ``abandoned``
    wallet_intended, wallet_waiting             query the order: paid → top up (as below); waiting or user
                                                paying or never arrived → cancel (reverses a late payment);
                                                refused → ``declined``; no answer → stays open
    paid, topup_intended, topup_pending         ask the carrier (resend only when it never arrived):
                                                applied → completed; failed → refund; silent → pending
    topup_failed, wallet_cancel_pending         cancel / refund at the wallet until acknowledged
    void_pending                                a supervisor's refund: ask the platform first; refunded →
                                                voided; still paid → refund (same order id: once); no answer
                                                → stays; refused → completed / topup_reapply
    topup_reapply                               put the top-up back on the SIM (``flows.topup_back``)
    ==========================================  ==============================================================

>>> sorted(map(str, WAITING_STATES))
['wallet_intended', 'wallet_waiting']
"""

from __future__ import annotations

from collections.abc import Mapping

from flows.messages import Msg, say
from flows.money import format_money
from flows.ports import CarrierPort, CarrierStatus, Clock, JournalPort, TxnRecord, WalletOrderStatus, WalletPort
from flows.pricing import WALLET_CHANNELS
from flows.topup_back import reapply_topup, resume_carrier, resuming
from flows.txn_state import TxnState
from flows.void_wallet import refund_at_platform
from flows.wallet_payment import apply_topup, believable, wallet_message
from pos_errors import LinkError, PosError, RemoteProtocolError

__all__ = ["recover_wallet", "WAITING_STATES"]

WAITING_STATES = frozenset({TxnState.WALLET_INTENDED, TxnState.WALLET_WAITING})
_TOPUP_STATES = frozenset({TxnState.PAID, TxnState.TOPUP_INTENDED, TxnState.TOPUP_PENDING})
_UNDO_STATES = frozenset({TxnState.TOPUP_FAILED, TxnState.WALLET_CANCEL_PENDING})
_STILL_OPEN = frozenset({"wrecovery.silent", "wrecovery.topup_pending", "wrecovery.cancel_pending",
                         "wrecovery.other", "wrecovery.void_pending"})  # lines whose row stays open


def recover_wallet(journal: JournalPort, wallet: WalletPort | Mapping[str, WalletPort], carrier: CarrierPort,
                   clock: Clock) -> tuple[list[Msg], int]:
    """Finish or undo every open wallet row (``wallet``: one platform, or one per channel). Returns (lines for
    the cashier, rows still open)."""
    lines: list[Msg] = []
    still_open = 0
    for record in journal.open_transactions():
        if record.channel not in WALLET_CHANNELS:
            continue
        port = wallet.get(record.channel) if isinstance(wallet, Mapping) else wallet
        if port is None:
            line = Msg("wrecovery.other", {"order": record.order_id, "state": record.state})
        else:
            line = _recover_one(journal, port, carrier, clock, record)
        if line.key in _STILL_OPEN:
            still_open += 1
        lines.append(line)
    return lines, still_open


def _recover_one(journal: JournalPort, wallet: WalletPort, carrier: CarrierPort, clock: Clock,
                 record: TxnRecord) -> Msg:
    money, sim = format_money(record.total_minor), f"…{record.iccid[-4:]}"
    if record.state == TxnState.CREATED:
        journal.update(record.txn_id, TxnState.ABANDONED, message="interrupted before the wallet was asked")
        return Msg("wrecovery.abandoned", {"order": record.order_id})
    if record.state in WAITING_STATES:
        try:
            result = wallet.query(record.order_id)
        except (LinkError, RemoteProtocolError):
            return Msg("wrecovery.silent", {"order": record.order_id, "sim": sim})
        if result.status == WalletOrderStatus.PAID and not believable(result, record.total_minor):
            return _undo(journal, wallet, record, money, sim)  # "paid" for another amount: never topped up
        if result.status == WalletOrderStatus.PAID:
            journal.update(record.txn_id, TxnState.PAID, rrn=result.transaction_id or None)
            record = journal.get(record.txn_id)
        elif result.status in (WalletOrderStatus.FAILED, WalletOrderStatus.EXPIRED):
            journal.update(record.txn_id, TxnState.DECLINED, response_code=result.reason or result.status,
                           message=say(wallet_message(result)))
            return Msg("wrecovery.not_paid", {"order": record.order_id})
        elif result.status == WalletOrderStatus.CANCELLED:
            journal.update(record.txn_id, TxnState.CANCELLED, message="cancelled at the platform")
            return Msg("wrecovery.cancelled", {"order": record.order_id})
        else:
            return _undo(journal, wallet, record, money, sim)
    if record.state in _TOPUP_STATES:
        result_t = apply_topup(carrier, clock, record.order_id, record.iccid, record.plan_id, record.amount_minor,
                               polls=1, funding_ref=record.rrn or "")
        if result_t is not None and result_t.status == CarrierStatus.APPLIED:
            journal.update(record.txn_id, TxnState.COMPLETED, topup_status=CarrierStatus.APPLIED,
                           balance_after_minor=result_t.balance_minor)
            return Msg("wrecovery.completed", {"money": money, "sim": sim})
        if result_t is not None and result_t.status == CarrierStatus.FAILED:
            journal.update(record.txn_id, TxnState.TOPUP_FAILED, topup_status=CarrierStatus.FAILED,
                           message=result_t.message)
            return _undo(journal, wallet, journal.get(record.txn_id), money, sim)
        journal.update(record.txn_id, TxnState.TOPUP_PENDING, topup_status=CarrierStatus.PENDING)
        return Msg("wrecovery.topup_pending", {"order": record.order_id, "sim": sim})
    if record.state in _UNDO_STATES:
        return _undo(journal, wallet, record, money, sim)
    if resuming(record) and not resume_carrier(carrier, journal, record)[1]:  # cut before the carrier's word
        return Msg("recovery.void_kept", {"money": money, "sim": sim})
    if record.state == TxnState.VOID_PENDING:  # a supervisor's refund, cut or unanswered: ask, then finish it
        done = refund_at_platform(wallet, journal, carrier, journal.get(record.txn_id), recovering=True)
        if done.status == "pending":
            return Msg("wrecovery.void_pending", {"order": record.order_id})
        if done.done:
            return Msg("wrecovery.voided", {"money": money, "sim": sim})
        if journal.get(record.txn_id).state == TxnState.TOPUP_REAPPLY:  # refused; the top-up still being put back
            return Msg("wrecovery.topup_pending", {"order": record.order_id, "sim": sim})
        return done.message if isinstance(done.message, Msg) else Msg(  # refused: the sale stands (not open)
            "wrecovery.other", {"order": record.order_id, "state": journal.get(record.txn_id).state})
    if record.state == TxnState.TOPUP_REAPPLY:
        line = reapply_topup(carrier, journal, record, Msg("recovery.reapply"))
        return line if line.key == "reapply.done" else Msg("wrecovery.topup_pending",
                                                           {"order": record.order_id, "sim": sim})
    return Msg("wrecovery.other", {"order": record.order_id, "state": record.state})


def _undo(journal: JournalPort, wallet: WalletPort, record: TxnRecord, money: str, sim: str) -> Msg:
    """Cancel the order at the platform; for a paid order that is its reversal (refund)."""
    journal.update(record.txn_id, TxnState.WALLET_CANCEL_PENDING)
    try:
        result = wallet.cancel(record.order_id)
    except PosError:
        return Msg("wrecovery.cancel_pending", {"order": record.order_id, "money": money})
    state = TxnState.REVERSED if result.status == WalletOrderStatus.REFUNDED else TxnState.CANCELLED
    journal.update(record.txn_id, state, reversal="cancel")
    key = "wrecovery.refunded" if state is TxnState.REVERSED else "wrecovery.cancelled_order"
    return Msg(key, {"money": money, "sim": sim})
