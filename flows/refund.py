"""Refund (supervisor): give back a payment whose top-up failed and whose reversal the host refused.

Normally a payment whose top-up definitely failed is reversed automatically. When the host refuses the reversal
(it answered, but not 00: e.g. the batch was already closed at the host — simulated by the acquirer's ``.94``
magic amount or the ``acquirer_refuse_reversals`` switch), the row stays ``reversal_refused``: the money is
still taken and the top-up never happened. A supervisor then refunds it: a 0200 with processing code 200000
that names the original by terminal id + STAN (field 90), RRN (37) and approval code (38) — by reference, so
no PAN is needed and the journal still never holds one. Journal trail, each written before the step it names::

    reversal_refused ─► refund_pending (refund STAN) ─► refunded
                              └─► reversal_refused (host declined the refund: nothing changed, may retry)

A refund that was sent but not answered stays ``refund_pending``; recovery repeats it with the **same** STAN,
which the acquirer treats as the same refund (never two credits).

A completed card sale of a **settled** batch (any closed batch within ``[terminal] refund_window_days``; no void
possible any more) is refunded the same way, the carrier
first (``flows.topup_back.reverse_topup_first``: when it keeps the top-up nothing is sent unless the supervisor chose
"anyway"); ``completed ─► refund_pending ─► refunded``, and a declined refund goes back to ``completed``.

>>> sorted(map(str, REFUNDABLE))
['refund_pending', 'reversal_refused']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from flows.messages import Msg, Text
from flows.money import format_money
from flows.ports import CarrierPort, ReceiptLine, RefundHostPort, RefundRequest, TxnRecord
from flows.pricing import WALLET_CHANNELS
from flows.receipt import REFUND, money_back_receipt
from flows.reversal import original_from_record
from flows.topup_back import (
    TOPUP_KEPT,
    TOPUP_REVERSED,
    TOPUP_UNKNOWN,
    after_carrier,
    carrier_order,
    reapply_topup,
    receipt_footer,
    refused_state,
    reverse_topup_first,
    topup_word,
)
from flows.txn_state import TxnState
from flows.void import reason_msg
from pos_errors import LinkError, RemoteProtocolError

__all__ = ["REFUNDABLE", "RefundJournal", "RefundResult", "refundable", "refund_payment", "refund_receipt",
           "settled_sales"]

REFUNDABLE = frozenset({TxnState.REVERSAL_REFUSED, TxnState.REFUND_PENDING})
_SALE_STOOD = frozenset({TOPUP_KEPT, TOPUP_REVERSED, TOPUP_UNKNOWN})  # a completed sale's (not a failed top-up's)


class RefundJournal(Protocol):
    def next_stan(self) -> int: ...

    def update(self, txn_id: int, state: str, **fields: object) -> None: ...

    def get(self, txn_id: int) -> TxnRecord: ...


@dataclass(frozen=True)
class RefundResult:
    """``status``: refunded | pending (sent, not answered: repeated later) | declined | refused (not sent)."""

    status: str
    message: Text  # a catalogue Msg, shown in the screen's language
    record: TxnRecord | None
    topup_reversed: bool = False  # a settled sale's refund: the carrier took the top-up back
    carrier_reason: str = ""  # carrier_refused: why it kept the top-up

    @property
    def done(self) -> bool:
        return self.status == "refunded"


def refundable(records: Sequence[TxnRecord], limit: int = 9) -> list[TxnRecord]:
    """Payments waiting for a refund, newest first."""
    return sorted((r for r in records if r.state in REFUNDABLE), key=lambda r: r.txn_id, reverse=True)[:limit]


def refund_payment(host: RefundHostPort, journal: RefundJournal, record: TxnRecord, *, terminal_id: str,
                   merchant_id: str, supervisor_id: str, attempts: int = 2, carrier: CarrierPort | None = None,
                   settled_batch: int = 0, anyway: bool = False) -> RefundResult:
    """``carrier`` and ``settled_batch`` (the open batch: the sale's must be older) for a completed sale."""
    settled_sale = (record.state == TxnState.COMPLETED and carrier is not None and record.stan is not None
                    and record.batch is not None and record.batch < settled_batch)
    if record.state not in REFUNDABLE and not settled_sale:
        return RefundResult("refused", Msg("refund.refused", {"state": record.state}), record)
    trail = reason = ""
    if settled_sale and carrier is not None:
        reason = reverse_topup_first(carrier, carrier_order(record), "refund")
        if reason and not anyway:
            return RefundResult("carrier_refused", Msg("reverse.refused", {"reason": reason_msg(reason)}), record,
                                topup_reversed=False, carrier_reason=reason)
        trail = (f"; top-up NOT reversed ({reason}): supervisor {supervisor_id} chose to refund anyway" if reason
                 else "; top-up reversed by the carrier")
    stan = record.refund_stan if record.refund_stan is not None else journal.next_stan()
    marks = {"topup_status": after_carrier(reason, record)} if settled_sale else {}
    journal.update(record.txn_id, TxnState.REFUND_PENDING, refund_stan=stan,
                   message=f"refund stan={stan} by supervisor {supervisor_id}{trail}", **marks)
    record = journal.get(record.txn_id)
    kept = not trail.startswith("; top-up NOT")
    request = RefundRequest(stan, original_from_record(record, terminal_id, merchant_id), record.rrn or "",
                            record.auth_code or "")
    money = format_money(record.total_minor)
    for _ in range(attempts):
        try:
            answer = host.refund(request)
        except (LinkError, RemoteProtocolError) as exc:
            journal.update(record.txn_id, TxnState.REFUND_PENDING, message=f"refund not answered: {exc}")
            continue
        if answer.approved:
            journal.update(record.txn_id, TxnState.REFUNDED, message=f"refund approved ({answer.response_code})")
            return RefundResult("refunded", Msg("refund.done", {"money": money, "sim": f"…{record.iccid[-4:]}"}),
                                journal.get(record.txn_id), topup_reversed=kept, carrier_reason=reason)
        # a settled sale stands again (its top-up put back if the carrier had taken it); a failed top-up's
        # payment waits for the next refund
        back = (refused_state(record) if topup_word(record) in _SALE_STOOD
                else TxnState.REVERSAL_REFUSED)
        journal.update(record.txn_id, back, message=f"refund declined ({answer.response_code})")
        what = Msg("refund.declined", {"code": answer.response_code})
        if back == TxnState.TOPUP_REAPPLY and carrier is not None:
            what = reapply_topup(carrier, journal, journal.get(record.txn_id), what)  # type: ignore[arg-type]
        return RefundResult("declined", what, journal.get(record.txn_id), carrier_reason=reason)
    return RefundResult("pending", Msg("refund.pending", {"money": money}), journal.get(record.txn_id),
                        topup_reversed=kept, carrier_reason=reason)


def refund_receipt(record: TxnRecord, *, merchant_name: str, terminal_id: str, when: str,
                   lang: str = "both") -> tuple[ReceiptLine, ...]:
    """A settled sale's refund says what became of its top-up, from the row (``flows.topup_back``); a failed
    top-up's refund has the kind's own footer."""
    footer = "" if topup_word(record) not in _SALE_STOOD else receipt_footer(record.topup_status)
    return money_back_receipt(REFUND, record, merchant_name=merchant_name, terminal_id=terminal_id, when=when,
                              lang=lang, footer=footer)


def settled_sales(records: Sequence[TxnRecord], open_batch: int, limit: int = 9) -> list[TxnRecord]:
    """Completed sales of closed batches (before ``open_batch``), card and wallet, newest first: refunded, not
    voided. The caller passes the sales within the refund window (``[terminal] refund_window_days``)."""
    found = [r for r in records if r.state == TxnState.COMPLETED and r.batch is not None and r.batch < open_batch
             and (r.stan is not None or r.channel in WALLET_CHANNELS)]
    return sorted(found, key=lambda r: r.txn_id, reverse=True)[:limit]
