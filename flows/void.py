"""Void: a supervisor takes back a completed payment of the still-open batch, with its own receipt and trail.

A void travels as a reversal with reason code 17 (customer cancellation): the acquirer takes the original
(terminal id + STAN in field 90) out of the batch, exactly like a reversal, and settlement later lists it as a
void. Journal trail: ``completed ─► void_pending`` (written, with the void's own STAN, before the first 0400
leaves) ``─► voided``; a void that is not acknowledged stays ``void_pending`` and recovery repeats it (0401) at
boot, in the background and before the next sale. Only payments of the open batch can be voided (a closed
batch is settled money: that needs a refund). The carrier has no way to take a top-up back, so a void returns
the money and the top-up stays on the SIM; the receipt says so.

>>> VoidResult("refused", "x", None).done
False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flows.messages import Msg, Text
from flows.money import format_money
from flows.ports import HostPort, JournalPort, ReceiptLine, TxnRecord
from flows.receipt import VOID, money_back_receipt
from flows.reversal import reverse_payment
from flows.txn_state import TxnState

__all__ = ["VOID_REASON", "VoidResult", "voidable", "void_payment", "void_receipt"]

VOID_REASON = "17"  # ISO 8583 message reason: customer cancellation


@dataclass(frozen=True)
class VoidResult:
    """``status``: voided | pending (not yet acknowledged: recovery repeats it) | refused (nothing sent)."""

    status: str
    message: Text  # a catalogue Msg, shown in the screen's language
    record: TxnRecord | None

    @property
    def done(self) -> bool:
        return self.status == "voided"


def voidable(records: Sequence[TxnRecord], batch: int, limit: int = 9) -> list[TxnRecord]:
    """Completed payments of ``batch``, newest first (the supervisor picks one by its number)."""
    found = [r for r in records if r.state == TxnState.COMPLETED and r.batch == batch and r.stan is not None]
    return sorted(found, key=lambda r: r.txn_id, reverse=True)[:limit]


def void_payment(host: HostPort, journal: JournalPort, record: TxnRecord, *, batch: int, supervisor_id: str,
                 terminal_id: str, merchant_id: str, attempts: int = 3) -> VoidResult:
    if record.state != TxnState.COMPLETED or record.batch != batch:
        return VoidResult("refused", Msg("void.refused", {"batch": batch}), record)
    journal.update(record.txn_id, TxnState.COMPLETED, message=f"void requested by supervisor {supervisor_id}")
    ok = reverse_payment(host, journal, journal.get(record.txn_id), terminal_id=terminal_id,
                         merchant_id=merchant_id, attempts=attempts, reason_code=VOID_REASON,
                         pending_state=TxnState.VOID_PENDING, final_state=TxnState.VOIDED,
                         refused_state=TxnState.COMPLETED)
    money = format_money(record.total_minor)
    if ok:
        return VoidResult("voided", Msg("void.done", {"money": money, "sim": f"…{record.iccid[-4:]}"}),
                          journal.get(record.txn_id))
    return VoidResult("pending", Msg("void.pending", {"money": money}), journal.get(record.txn_id))


def void_receipt(record: TxnRecord, *, merchant_name: str, terminal_id: str, when: str,
                 lang: str = "both") -> tuple[ReceiptLine, ...]:
    return money_back_receipt(VOID, record, merchant_name=merchant_name, terminal_id=terminal_id, when=when,
                              lang=lang)
