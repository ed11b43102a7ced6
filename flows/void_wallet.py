"""Void of a wallet sale (WeChat Pay, Alipay, EMV QR): the carrier first, then the platform gives the money back.

Same supervisor screens and the same carrier-first rule as a card void (``flows.void``): the carrier is asked
to take the top-up back; when it keeps it nothing is sent to the platform unless the supervisor chose "anyway".
Then the wallet platform refunds the whole order (``WalletPort.refund``, which the WeChat Pay and Alipay adapters
send as their refund APIs with the order id as the refund's own idempotency key). Journal trail::

    completed ─► void_pending (refund sent) ─► voided          (the platform answered "refunded")
                        │   (not answered: stays void_pending; recovery asks the platform for the order first,
                        │    then refunds it only if it is still paid: the order id is the refund's key)
                        ├─► completed (refused; the top-up had stayed on the SIM)
                        └─► topup_reapply ─► completed (refused after the carrier took the top-up back: it is
                                                        put back on the SIM, ``flows.topup_back``)

>>> WALLET_VOIDABLE
frozenset({'completed'})
"""

from __future__ import annotations

from collections.abc import Callable

from flows.messages import Msg
from flows.money import format_money
from flows.ports import CarrierPort, JournalPort, TxnRecord, WalletOrderStatus, WalletPort
from flows.pricing import WALLET_CHANNELS
from flows.topup_back import TOPUP_REVERSED, ask_carrier_first, reapply_topup, refused_state, topup_word
from flows.txn_state import TxnState
from flows.void import VoidResult, reason_msg
from pos_errors import PosError

__all__ = ["WALLET_VOIDABLE", "SETTLED_REFUND", "is_settled_refund", "void_wallet_payment", "refund_at_platform"]

WALLET_VOIDABLE = frozenset({str(TxnState.COMPLETED)})
WALLET_VOID, SETTLED_REFUND = "wallet void", "settled refund"  # ``reversal`` column: what kind of giving back


def is_settled_refund(record: TxnRecord) -> bool:
    """A wallet sale given back after its batch closed: printed and reprinted as a refund, not a void."""
    return record.channel in WALLET_CHANNELS and record.reversal == SETTLED_REFUND


def void_wallet_payment(wallet_for: Callable[[str], WalletPort], journal: JournalPort, carrier: CarrierPort,
                        record: TxnRecord, *, supervisor_id: str, anyway: bool = False,
                        settled: bool = False) -> VoidResult:
    """``wallet_for(channel)``: the platform serving the sale's channel (raises LinkError when none is).
    ``settled``: the sale's batch is closed, so this is a refund (marked on the row with the intent: its receipt,
    reprints included, is the refund's, ``is_settled_refund``)."""
    if record.state != TxnState.COMPLETED or record.channel not in WALLET_CHANNELS:
        return VoidResult("refused", Msg("void.refused", {"batch": record.batch or 0}), record)
    reason, go_on = ask_carrier_first(carrier, journal, record, anyway=anyway, supervisor_id=supervisor_id,
                                      intent={"reversal_stan": None,
                                              "reversal": SETTLED_REFUND if settled else WALLET_VOID})
    if not go_on:
        return VoidResult("carrier_refused", Msg("reverse.refused", {"reason": reason_msg(reason)}),
                          journal.get(record.txn_id), topup_reversed=False, carrier_reason=reason)
    return refund_at_platform(wallet_for(record.channel), journal, carrier, journal.get(record.txn_id),
                              carrier_reason=reason)


def refund_at_platform(wallet: WalletPort, journal: JournalPort, carrier: CarrierPort, record: TxnRecord, *,
                       carrier_reason: str = "", recovering: bool = False) -> VoidResult:
    """Ask the platform to refund a ``void_pending`` row's order (first time or again: the order id is the
    refund's idempotency key). At recovery the platform's record is asked first, so a refund that happened
    before a crash is taken as done, never sent twice. Unanswered: the row stays ``void_pending``."""
    money, sim = format_money(record.total_minor), f"…{record.iccid[-4:]}"
    kept = topup_word(record) == TOPUP_REVERSED
    try:
        answer = wallet.query(record.order_id) if recovering else None
        if answer is None or answer.status == WalletOrderStatus.PAID:
            answer = wallet.refund(record.order_id, record.total_minor)
    except PosError as exc:
        journal.update(record.txn_id, TxnState.VOID_PENDING, message=f"wallet refund not answered: {exc}")
        return VoidResult("pending", Msg("wvoid.pending", {"money": money}), journal.get(record.txn_id),
                          topup_reversed=kept, carrier_reason=carrier_reason)
    if answer.status == WalletOrderStatus.REFUNDED and answer.order_id == record.order_id:
        journal.update(record.txn_id, TxnState.VOIDED, reversal=SETTLED_REFUND if is_settled_refund(record)
                       else "wallet refund", message=f"wallet refunded {answer.transaction_id}".strip())
        return VoidResult("voided", Msg("wvoid.done", {"money": money, "sim": sim}), journal.get(record.txn_id),
                          topup_reversed=kept, carrier_reason=carrier_reason)
    journal.update(record.txn_id, refused_state(record),
                   message=f"wallet refund refused: {answer.status} {answer.reason}".strip())
    what = Msg("wvoid.declined", {"status": answer.reason or str(answer.status)})
    after = journal.get(record.txn_id)
    if after.state == TxnState.TOPUP_REAPPLY:
        what = reapply_topup(carrier, journal, after, what)
    return VoidResult("declined", what, journal.get(record.txn_id), topup_reversed=False,
                      carrier_reason=carrier_reason)
