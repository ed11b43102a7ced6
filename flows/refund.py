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

>>> sorted(map(str, REFUNDABLE))
['refund_pending', 'reversal_refused']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from flows.messages import Msg, Text
from flows.money import format_money
from flows.ports import ReceiptLine, RefundHostPort, RefundRequest, TxnRecord
from flows.receipt import REFUND, money_back_receipt
from flows.reversal import original_from_record
from flows.txn_state import TxnState
from pos_errors import LinkError, RemoteProtocolError

__all__ = ["REFUNDABLE", "RefundJournal", "RefundResult", "refundable", "refund_payment", "refund_receipt"]

REFUNDABLE = frozenset({TxnState.REVERSAL_REFUSED, TxnState.REFUND_PENDING})


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

    @property
    def done(self) -> bool:
        return self.status == "refunded"


def refundable(records: Sequence[TxnRecord], limit: int = 9) -> list[TxnRecord]:
    """Payments waiting for a refund, newest first."""
    return sorted((r for r in records if r.state in REFUNDABLE), key=lambda r: r.txn_id, reverse=True)[:limit]


def refund_payment(host: RefundHostPort, journal: RefundJournal, record: TxnRecord, *, terminal_id: str,
                   merchant_id: str, supervisor_id: str, attempts: int = 2) -> RefundResult:
    if record.state not in REFUNDABLE:
        return RefundResult("refused", Msg("refund.refused", {"state": record.state}), record)
    stan = record.refund_stan if record.refund_stan is not None else journal.next_stan()
    journal.update(record.txn_id, TxnState.REFUND_PENDING, refund_stan=stan,
                   message=f"refund stan={stan} by supervisor {supervisor_id}")
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
                                journal.get(record.txn_id))
        journal.update(record.txn_id, TxnState.REVERSAL_REFUSED, message=f"refund declined ({answer.response_code})")
        return RefundResult("declined", Msg("refund.declined", {"code": answer.response_code}),
                            journal.get(record.txn_id))
    return RefundResult("pending", Msg("refund.pending", {"money": money}), journal.get(record.txn_id))


def refund_receipt(record: TxnRecord, *, merchant_name: str, terminal_id: str, when: str,
                   lang: str = "both") -> tuple[ReceiptLine, ...]:
    return money_back_receipt(REFUND, record, merchant_name=merchant_name, terminal_id=terminal_id, when=when,
                              lang=lang)
