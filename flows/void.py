"""Void: a supervisor takes back a completed payment of the still-open batch, with its own receipt and trail.

A void travels as a reversal with reason code 17 (customer cancellation): the acquirer takes the original
(terminal id + STAN in field 90) out of the batch, exactly like a reversal, and settlement later lists it as a
void. Journal trail: ``completed ─► void_pending`` (written, with the void's own STAN, before the first 0400
leaves) ``─► voided``; a void that is not acknowledged stays ``void_pending`` and recovery repeats it (0401) at
boot, in the background and before the next sale. Only payments of the open batch can be voided (a closed
batch is settled money: that needs a refund).

Carrier first: before any 0400 leaves, the carrier is asked to take the top-up back off the SIM
(``CarrierPort.reverse_topup``). When it refuses (the top-up is used, the reversal window has passed) or cannot
be asked, nothing is sent to the host and the result is ``carrier_refused`` with the reason; the supervisor may
then void anyway only by an explicit choice (``anyway=True``), which the journal records and the receipt prints
("top-up NOT reversed").

>>> VoidResult("refused", "x", None).done
False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flows.messages import Msg, Text
from flows.money import format_money
from flows.ports import CarrierPort, HostPort, JournalPort, ReceiptLine, TxnRecord
from flows.pricing import WALLET_CHANNELS
from flows.receipt import VOID, money_back_receipt
from flows.reversal import reverse_payment
from flows.topup_back import (
    ask_carrier_first,
    reapply_topup,
    reason_msg,
    receipt_footer,
    refused_state,
    reverse_topup_first,
)
from flows.txn_state import TxnState

__all__ = ["VOID_REASON", "VoidResult", "voidable", "void_payment", "void_receipt", "reverse_topup_first",
           "reason_msg"]

VOID_REASON = "17"  # ISO 8583 message reason: customer cancellation


@dataclass(frozen=True)
class VoidResult:
    """``status``: voided | pending (not yet acknowledged: recovery repeats it) | refused (nothing sent) |
    carrier_refused (the carrier kept the top-up; nothing sent to the host: ``carrier_reason`` says why)."""

    status: str
    message: Text  # a catalogue Msg, shown in the screen's language
    record: TxnRecord | None
    topup_reversed: bool = True  # False: given back "anyway", the top-up stays on the SIM
    carrier_reason: str = ""

    @property
    def done(self) -> bool:
        return self.status == "voided"


def voidable(records: Sequence[TxnRecord], batch: int, limit: int = 9) -> list[TxnRecord]:
    """Completed payments of ``batch``, newest first (the supervisor picks one by its number)."""
    found = [r for r in records if r.state == TxnState.COMPLETED and r.batch == batch
             and (r.stan is not None or r.channel in WALLET_CHANNELS)]  # wallet sales: flows.void_wallet
    return sorted(found, key=lambda r: r.txn_id, reverse=True)[:limit]


def void_payment(host: HostPort, journal: JournalPort, record: TxnRecord, *, batch: int, supervisor_id: str,
                 terminal_id: str, merchant_id: str, carrier: CarrierPort, attempts: int = 3,
                 anyway: bool = False) -> VoidResult:
    """``carrier``: asked first to reverse the top-up. ``anyway``: the
    supervisor chose to give the money back although the carrier kept the top-up."""
    if record.state != TxnState.COMPLETED or record.batch != batch or record.channel in WALLET_CHANNELS:
        return VoidResult("refused", Msg("void.refused", {"batch": batch}), record)
    reason, go_on = ask_carrier_first(carrier, journal, record, anyway=anyway, supervisor_id=supervisor_id)
    if not go_on:
        return VoidResult("carrier_refused", Msg("reverse.refused", {"reason": reason_msg(reason)}),
                          journal.get(record.txn_id), topup_reversed=False, carrier_reason=reason)
    return send_void(host, journal, carrier, journal.get(record.txn_id), reason, terminal_id=terminal_id,
                     merchant_id=merchant_id, attempts=attempts)


def send_void(host: HostPort, journal: JournalPort, carrier: CarrierPort, record: TxnRecord, reason: str, *,
              terminal_id: str, merchant_id: str, attempts: int = 3) -> VoidResult:
    """The 0400 reason 17 of a ``void_pending`` row whose carrier step is done (also from recovery)."""
    ok = reverse_payment(host, journal, record, terminal_id=terminal_id,
                         merchant_id=merchant_id, attempts=attempts, reason_code=VOID_REASON,
                         pending_state=TxnState.VOID_PENDING, final_state=TxnState.VOIDED,
                         refused_state=refused_state(record))
    money = format_money(record.total_minor)
    kept = not reason
    if ok:
        return VoidResult("voided", Msg("void.done", {"money": money, "sim": f"…{record.iccid[-4:]}"}),
                          journal.get(record.txn_id), topup_reversed=kept, carrier_reason=reason)
    after = journal.get(record.txn_id)
    if after.state == TxnState.VOID_PENDING:
        return VoidResult("pending", Msg("void.pending", {"money": money}), after,
                          topup_reversed=kept, carrier_reason=reason)
    return refused_by_bank(carrier, journal, after, reason)


def refused_by_bank(carrier: CarrierPort, journal: JournalPort, record: TxnRecord, reason: str) -> VoidResult:
    """The host answered the void but refused it: the sale stands, and its top-up goes back on the SIM."""
    what = Msg("void.bank_refused")
    message = reapply_topup(carrier, journal, record, what) if record.state == TxnState.TOPUP_REAPPLY else what
    return VoidResult("declined", message, journal.get(record.txn_id), topup_reversed=False,
                      carrier_reason=reason)


def void_receipt(record: TxnRecord, *, merchant_name: str, terminal_id: str, when: str,
                 lang: str = "both") -> tuple[ReceiptLine, ...]:
    """What became of the top-up comes from the row (``flows.topup_back``), so a reprint says the same."""
    footer = receipt_footer(record.topup_status)
    return money_back_receipt(VOID, record, merchant_name=merchant_name, terminal_id=terminal_id, when=when,
                              lang=lang, footer=footer)
