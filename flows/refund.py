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
possible any more) is refunded the same way, the carrier first and journal first like a void
(``flows.topup_back.ask_carrier_first``: ``refund_pending`` with the refund STAN and the intent before the carrier
is asked; when it keeps the top-up nothing is sent unless the supervisor chose "anyway"; recovery resumes a row cut
before the carrier's word with the recorded choice and the same STAN)::

    completed ─► refund_pending (refund STAN, topup_status reversing) ─► refund_pending (the carrier's word)
                      ├─► completed (the carrier kept the top-up, no "anyway": nothing sent to the bank)
                      └─► refunded, or declined: completed / topup_reapply (its top-up put back)

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
from flows.receipt import REFUND, WALLET_REFUND, money_back_receipt
from flows.reversal import original_from_record
from flows.topup_back import (
    REVERSING_LATE,
    TOPUP_KEPT,
    TOPUP_REVERSED,
    TOPUP_UNKNOWN,
    ask_carrier_first,
    reapply_topup,
    receipt_footer,
    refused_state,
    resume_carrier,
    resuming,
    topup_word,
)
from flows.txn_state import TxnState
from flows.void import reason_msg
from pos_errors import LinkError, RemoteProtocolError

__all__ = ["REFUNDABLE", "RefundJournal", "RefundResult", "refundable", "refund_payment", "refund_receipt",
           "settled_sales"]

REFUNDABLE = frozenset({TxnState.REVERSAL_REFUSED, TxnState.REFUND_PENDING})
_SALE_STOOD = frozenset({TOPUP_KEPT, TOPUP_REVERSED, TOPUP_UNKNOWN, REVERSING_LATE})  # a sale's (not a failed top-up's)


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
    """``carrier`` and ``settled_batch`` (the open batch: the sale's must be older) for a completed sale.

    A settled sale's refund is journal first: ``refund_pending`` with its own refund STAN and the intent
    (``topup_status`` reversing / reversing_anyway), then the carrier, then its word, then the 0200. Recovery
    passes the ``refund_pending`` row back here with the carrier: a row cut before the carrier's word asks the
    carrier again with the recorded choice; every repeat sends the **same** refund STAN."""
    settled_sale = (record.state == TxnState.COMPLETED and carrier is not None and record.stan is not None
                    and record.batch is not None and record.batch < settled_batch)
    if record.state not in REFUNDABLE and not settled_sale:
        return RefundResult("refused", Msg("refund.refused", {"state": record.state}), record)
    reason = ""
    if settled_sale or resuming(record):
        if carrier is None:  # cut before the carrier's word, and no carrier to ask: stays for the next round
            return RefundResult("pending", Msg("refund.pending", {"money": format_money(record.total_minor)}),
                                record)
        reason, go_on = (resume_carrier(carrier, journal, record) if resuming(record)  # type: ignore[arg-type]
                         else ask_carrier_first(carrier, journal, record, anyway=anyway,  # type: ignore[arg-type]
                                                supervisor_id=supervisor_id, pending=TxnState.REFUND_PENDING,
                                                intent={"refund_stan": journal.next_stan()}))
        if not go_on:
            return RefundResult("carrier_refused", Msg("reverse.refused", {"reason": reason_msg(reason)}),
                                journal.get(record.txn_id), carrier_reason=reason)
        record = journal.get(record.txn_id)
    if record.refund_stan is None or record.state != TxnState.REFUND_PENDING:  # a failed top-up's refund
        stan = record.refund_stan if record.refund_stan is not None else journal.next_stan()
        journal.update(record.txn_id, TxnState.REFUND_PENDING, refund_stan=stan,
                       message=f"refund stan={stan} by supervisor {supervisor_id}")
        record = journal.get(record.txn_id)
    return _send_refund(host, journal, record, terminal_id=terminal_id, merchant_id=merchant_id,
                        attempts=attempts, carrier=carrier, reason=reason)


def _send_refund(host: RefundHostPort, journal: RefundJournal, record: TxnRecord, *, terminal_id: str,
                 merchant_id: str, attempts: int, carrier: CarrierPort | None, reason: str) -> RefundResult:
    """The 0200 (200000) of a ``refund_pending`` row whose carrier step (if any) is done, its STAN on the row."""
    request = RefundRequest(record.refund_stan or 0, original_from_record(record, terminal_id, merchant_id),
                            record.rrn or "", record.auth_code or "")
    money, off = format_money(record.total_minor), topup_word(record) == TOPUP_REVERSED
    for _ in range(attempts):
        try:
            answer = host.refund(request)
        except (LinkError, RemoteProtocolError) as exc:
            journal.update(record.txn_id, TxnState.REFUND_PENDING, message=f"refund not answered: {exc}")
            continue
        if answer.approved:
            journal.update(record.txn_id, TxnState.REFUNDED, message=f"refund approved ({answer.response_code})")
            return RefundResult("refunded", Msg("refund.done", {"money": money, "sim": f"…{record.iccid[-4:]}"}),
                                journal.get(record.txn_id), topup_reversed=off, carrier_reason=reason)
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
                        topup_reversed=off, carrier_reason=reason)


def refund_receipt(record: TxnRecord, *, merchant_name: str, terminal_id: str, when: str,
                   lang: str = "both") -> tuple[ReceiptLine, ...]:
    """A settled sale's refund says what became of its top-up, from the row (``flows.topup_back``); a failed
    top-up's refund has the kind's own footer."""
    footer = "" if topup_word(record) not in _SALE_STOOD else receipt_footer(record.topup_status)
    kind = WALLET_REFUND if record.channel in WALLET_CHANNELS else REFUND  # a wallet's through its platform
    return money_back_receipt(kind, record, merchant_name=merchant_name, terminal_id=terminal_id, when=when,
                              lang=lang, footer=footer)


def settled_sales(records: Sequence[TxnRecord], open_batch: int, limit: int = 9) -> list[TxnRecord]:
    """Completed sales of closed batches (before ``open_batch``), card and wallet, newest first: refunded, not
    voided. The caller passes the sales within the refund window (``[terminal] refund_window_days``)."""
    found = [r for r in records if r.state == TxnState.COMPLETED and r.batch is not None and r.batch < open_batch
             and (r.stan is not None or r.channel in WALLET_CHANNELS)]
    return sorted(found, key=lambda r: r.txn_id, reverse=True)[:limit]
