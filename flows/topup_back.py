"""What became of the top-up when money is given back, and putting it back when the money-back step is refused.

A void or refund asks the carrier to take the top-up off the SIM first (``flows.void.reverse_topup_first``). The
row's ``topup_status`` then records the carrier's word, so receipts and reprints say what really happened:

    ==================  =====================================================================
    ``topup_status``    meaning
    ==================  =====================================================================
    ``reversed``        the carrier took the top-up back
    ``applied``         it stays on the SIM (the carrier refused; the supervisor chose "anyway")
    ``reverse_unknown`` the carrier could not be asked or its answer was lost ("anyway")
    ==================  =====================================================================

When the bank (0400 reason 17, refund 0200) or the wallet platform then **refuses** to give the money back, the
customer has paid and the top-up is gone. The row goes to ``topup_reapply`` in the same write that records the
refusal (journal first), and the top-up is put back as a new carrier order, ``<order>-RA`` (deterministic: after
a crash the same order id is asked about again, never a second one), funded by the same payment. Recovery
follows a ``topup_reapply`` row up the same way (status query first; resend only when it never arrived)::

    void_pending / refund_pending ─► topup_reapply ─► completed (topup_status applied: the sale stands)

>>> reapply_order_id("T1-000042")
'T1-000042-RA'
"""

from __future__ import annotations

from flows.messages import Msg
from flows.ports import CarrierPort, CarrierStatus, JournalPort, TxnRecord
from flows.txn_state import TxnState
from pos_errors import LinkError, LocalProtocolError, RemoteProtocolError

__all__ = ["TOPUP_REVERSED", "TOPUP_KEPT", "TOPUP_UNKNOWN", "after_carrier", "reapply_order_id",
           "reapply_topup", "receipt_footer", "refused_state"]

TOPUP_REVERSED = "reversed"
TOPUP_KEPT = str(CarrierStatus.APPLIED)
TOPUP_UNKNOWN = "reverse_unknown"
_SUFFIX = "-RA"


def after_carrier(reason: str) -> str:
    """``topup_status`` to record after ``reverse_topup_first`` answered ``reason`` ("" = reversed)."""
    if not reason:
        return TOPUP_REVERSED
    return TOPUP_UNKNOWN if reason == "unreachable" else TOPUP_KEPT


def refused_state(record: TxnRecord, otherwise: str = TxnState.COMPLETED) -> str:
    """Where a refused void/refund leaves the row: ``topup_reapply`` when the top-up is (or may be) off the SIM."""
    return TxnState.TOPUP_REAPPLY if record.topup_status in (TOPUP_REVERSED, TOPUP_UNKNOWN) else otherwise


def receipt_footer(topup_status: str | None) -> str:
    """The void/refund receipt's last line (catalogue key) for the row's ``topup_status``."""
    return {TOPUP_REVERSED: "vrcpt.topup_reversed", TOPUP_UNKNOWN: "vrcpt.topup_unknown"}.get(
        topup_status or "", "vrcpt.topup_not_reversed")


def reapply_order_id(order_id: str) -> str:
    return order_id[:64 - len(_SUFFIX)] + _SUFFIX


def reapply_topup(carrier: CarrierPort, journal: JournalPort, record: TxnRecord, what: Msg) -> Msg:
    """Put the top-up of a ``topup_reapply`` row back on the SIM. ``what``: the refusal, said first on screen.

    Completes the row when the carrier applied it (or the original top-up was never taken back); otherwise the
    row stays ``topup_reapply`` for recovery and the message says so."""
    order, sim = reapply_order_id(record.order_id), f"…{record.iccid[-4:]}"
    try:
        # unknown whether the carrier took it back: asking to reverse again settles it (safe to repeat: an order
        # reversed before answers "reversed"; one still on the SIM and no longer reversible answers why not)
        if record.topup_status == TOPUP_UNKNOWN and not carrier.reverse_topup(record.order_id, "void refused").reversed:
            journal.update(record.txn_id, TxnState.COMPLETED, topup_status=TOPUP_KEPT,
                           message="money-back refused; the carrier had kept the top-up")
            return Msg("reapply.done", {"what": what, "sim": sim})
        result = carrier.order_status(order)
        if result.status == CarrierStatus.NOT_FOUND:
            result = carrier.create_topup(order, record.iccid, record.plan_id, record.amount_minor,
                                          funding_ref=record.rrn or "")
    except (LinkError, RemoteProtocolError, LocalProtocolError) as exc:
        journal.update(record.txn_id, TxnState.TOPUP_REAPPLY, message=f"top-up {order} not answered: {exc}")
        return Msg("reapply.pending", {"what": what, "sim": sim, "order": order})
    if result.status == CarrierStatus.APPLIED:
        journal.update(record.txn_id, TxnState.COMPLETED, topup_status=TOPUP_KEPT,
                       balance_after_minor=result.balance_minor, message=f"top-up put back as order {order}")
        return Msg("reapply.done", {"what": what, "sim": sim})
    journal.update(record.txn_id, TxnState.TOPUP_REAPPLY, message=f"top-up {order}: {result.status}")
    return Msg("reapply.pending", {"what": what, "sim": sim, "order": order})
