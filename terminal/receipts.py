"""Receipt facts from the journal row and the flow's outcome: the bridge between the journal and
``flows.receipt``. Everything on a receipt comes from masked, journalled data, so a reprint is identical.

>>> print_lines.__name__
'print_lines'
"""

from __future__ import annotations

from flows.messages import t
from flows.ports import ReceiptLine, TxnRecord
from flows.pricing import WALLET_CHANNELS, channel_label
from flows.receipt import ReceiptFacts, build_receipt, plan_name_in
from flows.topup import TopupOutcome
from terminal.config import Settings

__all__ = ["facts_for", "print_lines"]

_STATUS = {"completed": "applied", "pending": "pending", "reversed": "reversed",
           "reversal_pending": "reversed", "declined": "declined"}


def facts_for(settings: Settings, record: TxnRecord, outcome: TopupOutcome | None,
              lang: str = "both") -> ReceiptFacts:
    emv = dict(outcome.payment.emv_receipt) if outcome and outcome.payment else {}
    status = _STATUS.get(outcome.status if outcome else record.state, record.state)
    if record.state == "reversal_refused":  # never "reversed" on paper when the bank refused it
        status = "refund_due"
    return ReceiptFacts(
        merchant_name=settings.terminal.merchant_name, terminal_id=settings.terminal.id,
        merchant_id=settings.terminal.merchant_id, when=record.created_at[:19].replace("T", " "),
        cashier_id=record.cashier_id, iccid=record.iccid, msisdn=record.msisdn, plan_name=plan_name_in(record, lang),
        amount_minor=record.amount_minor, fee_minor=record.fee_minor, status=status, order_id=record.order_id,
        channel_label=channel_label(record.channel, lang), masked_pan=record.masked_pan,
        emv=emv, auth_code=record.auth_code, rrn=record.rrn, stan=record.stan,
        **({"pan_label": t("rcpt.wallet_code", lang), "rrn_label": t("rcpt.wallet_txn", lang)}
           if record.channel in WALLET_CHANNELS else {}),
        balance_after_minor=record.balance_after_minor, lang=lang)


def print_lines(facts: ReceiptFacts) -> tuple[ReceiptLine, ...]:
    return build_receipt(facts)
