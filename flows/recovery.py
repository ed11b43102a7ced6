"""Recovery: finish or undo every open transaction from the journal, before the first sale and after a power cut.

Each open row is read and the one safe next step is taken, by state:

    ============================================  ==========================================================
    state                                         what recovery does
    ============================================  ==========================================================
    created                                       nothing left the terminal: mark ``abandoned``
    auth_intended, approved, auth_unknown,        the payment may have been taken and no top-up was made:
    card_*_after_approval, reversal_pending,      reverse it (0400/0401 until acknowledged)
    topup_failed
    paid, topup_intended, topup_pending           ask the carrier for the order; applied → completed;
                                                  never arrived → send the same order id again;
                                                  failed → reverse; no answer → stays pending
    void_pending                                  cut before the carrier's word: ask it again (kept and no
                                                  "anyway" → completed); then repeat the void (0401, reason 17)
                                                  until acknowledged; refused
                                                  after the carrier took the top-up back → topup_reapply
    topup_reapply                                 put the top-up back (``flows.topup_back``): completed
    refund_pending                                cut before the carrier's word (a settled sale's refund):
                                                  ask it again with the recorded choice (kept and no
                                                  "anyway" → completed); then repeat the refund (same
                                                  STAN: the host refunds once)
    reversal_refused                              nothing: the host said no; a supervisor refunds it
    ============================================  ==========================================================

>>> REVERSE_STATES >= {"auth_unknown", "reversal_pending"}
True
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.messages import Msg, Text
from flows.money import format_money
from flows.ports import CarrierPort, CarrierStatus, HostPort, JournalPort, TopupResult, TxnRecord
from flows.pricing import WALLET_CHANNELS
from flows.reversal import REVERSAL_REFUSED, reverse_payment
from flows.topup_back import reapply_topup, refused_state, resume_carrier, resuming
from flows.txn_state import TxnState
from pos_errors import LinkError, RemoteProtocolError

__all__ = ["RecoveryReport", "recover", "REVERSE_STATES", "TOPUP_STATES"]

REVERSE_STATES = frozenset({TxnState.AUTH_INTENDED, TxnState.APPROVED, TxnState.AUTH_UNKNOWN,
                            TxnState.CARD_DECLINED_AFTER_APPROVAL, TxnState.CARD_REMOVED_AFTER_APPROVAL,
                            TxnState.REVERSAL_PENDING, TxnState.TOPUP_FAILED})
TOPUP_STATES = frozenset({TxnState.PAID, TxnState.TOPUP_INTENDED, TxnState.TOPUP_PENDING})


@dataclass(frozen=True)
class RecoveryReport:
    """What recovery did, in lines the cashier can read, and how much is still open."""

    lines: tuple[Text, ...]  # catalogue Msgs (card and wallet recovery)
    still_open: int
    reversals_open: int = 0  # payments the bank has not yet acknowledged giving back: no new sale until 0

    @property
    def clean(self) -> bool:
        return not self.lines and self.still_open == 0


def _sim_tail(record: TxnRecord) -> str:
    return f"…{record.iccid[-4:]}"


def _topup_status(carrier: CarrierPort, record: TxnRecord) -> TopupResult | None:
    try:
        result = carrier.order_status(record.order_id)
        if result.status == CarrierStatus.NOT_FOUND:
            result = carrier.create_topup(record.order_id, record.iccid, record.plan_id, record.amount_minor)
        return result
    except (LinkError, RemoteProtocolError):
        return None


def recover(journal: JournalPort, host: HostPort, carrier: CarrierPort, *, terminal_id: str,
            merchant_id: str, attempts: int = 2) -> RecoveryReport:
    lines: list[Msg] = []
    still_open = reversals_open = 0
    for record in journal.open_transactions():
        if record.channel in WALLET_CHANNELS:  # wallet orders are undone at the wallet: flows.wallet_recovery
            continue
        money = format_money(record.total_minor)
        if record.state == TxnState.CREATED:
            journal.update(record.txn_id, TxnState.ABANDONED, message="interrupted before payment")
        elif record.state in REVERSE_STATES:
            if reverse_payment(host, journal, record, terminal_id=terminal_id, merchant_id=merchant_id,
                               attempts=attempts):
                lines.append(Msg("recovery.reversed", {"money": money, "sim": _sim_tail(record)}))
            elif journal.get(record.txn_id).state == REVERSAL_REFUSED:
                lines.append(Msg("recovery.reversal_refused", {"money": money, "sim": _sim_tail(record)}))
            else:
                still_open += 1
                reversals_open += 1
                lines.append(Msg("recovery.reversal_pending", {"money": money, "sim": _sim_tail(record)}))
        elif record.state == TxnState.VOID_PENDING and resuming(record) and \
                not resume_carrier(carrier, journal, record)[1]:  # cut before the carrier's word: it kept it
            lines.append(Msg("recovery.void_kept", {"money": money, "sim": _sim_tail(record)}))
        elif record.state == TxnState.VOID_PENDING:
            now = journal.get(record.txn_id)  # the carrier's word may just have been written
            if reverse_payment(host, journal, now, terminal_id=terminal_id, merchant_id=merchant_id,
                               attempts=attempts, reason_code="17", pending_state=TxnState.VOID_PENDING,
                               final_state=TxnState.VOIDED, refused_state=refused_state(now)):
                lines.append(Msg("recovery.voided", {"money": money, "sim": _sim_tail(record)}))
            elif (after := journal.get(record.txn_id)).state != TxnState.VOID_PENDING:  # the bank refused it
                line = reapply_topup(carrier, journal, after, Msg("void.bank_refused")) \
                    if after.state == TxnState.TOPUP_REAPPLY else Msg("void.bank_refused")
                still_open += journal.get(record.txn_id).state == TxnState.TOPUP_REAPPLY
                lines.append(line)
            else:
                still_open += 1
                reversals_open += 1
                lines.append(Msg("recovery.void_pending", {"money": money, "sim": _sim_tail(record)}))
        elif record.state == TxnState.REFUND_PENDING and hasattr(host, "refund"):
            # cut before the carrier's word: asked again first; then the refund with the row's own STAN
            from flows.refund import refund_payment  # with its receipt and void rules: only for a refund to finish

            done = refund_payment(host, journal, record, terminal_id=terminal_id,  # type: ignore[arg-type]
                                  merchant_id=merchant_id, supervisor_id="recovery", attempts=attempts,
                                  carrier=carrier)
            still_open += done.status == "pending" or journal.get(record.txn_id).state == TxnState.TOPUP_REAPPLY
            key = {"refunded": "recovery.refunded", "carrier_refused": "recovery.refund_kept",
                   "declined": "recovery.refund_declined"}.get(done.status, "recovery.refund_pending")
            lines.append(Msg(key, {"money": money, "sim": _sim_tail(record)}))
        elif record.state == TxnState.TOPUP_REAPPLY:  # a refused void/refund: put the top-up back
            line = reapply_topup(carrier, journal, record, Msg("recovery.reapply"))
            still_open += journal.get(record.txn_id).state == TxnState.TOPUP_REAPPLY
            lines.append(line)
        elif record.state in TOPUP_STATES:
            result = _topup_status(carrier, record)
            if result is not None and result.status == CarrierStatus.APPLIED:
                journal.update(record.txn_id, TxnState.COMPLETED, topup_status=CarrierStatus.APPLIED,
                               balance_after_minor=result.balance_minor)
                lines.append(Msg("recovery.confirmed", {"money": money, "sim": _sim_tail(record)}))
            elif result is not None and result.status == CarrierStatus.FAILED:
                journal.update(record.txn_id, TxnState.TOPUP_FAILED, topup_status=CarrierStatus.FAILED,
                               message=result.message)
                again = journal.get(record.txn_id)
                if reverse_payment(host, journal, again, terminal_id=terminal_id, merchant_id=merchant_id,
                                   attempts=attempts):
                    lines.append(Msg("recovery.failed_reversed", {"money": money, "sim": _sim_tail(record)}))
                else:
                    still_open += 1
                    reversals_open += 1
                    lines.append(Msg("recovery.failed_reversal_pending", {"money": money, "sim": _sim_tail(record)}))
            else:
                if record.state != TxnState.TOPUP_PENDING:  # no fsync for "still pending" on every follow-up
                    journal.update(record.txn_id, TxnState.TOPUP_PENDING, topup_status=CarrierStatus.PENDING)
                still_open += 1
                lines.append(Msg("recovery.pending", {"order": record.order_id, "sim": _sim_tail(record)}))
    return RecoveryReport(tuple(lines), still_open, reversals_open)
