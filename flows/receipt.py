"""Receipt content: what a top-up receipt says, as ``ReceiptLine`` values the printer driver encodes.

Only masked card data reaches a receipt (first 6 / last 4). The lines are also stored in the journal as JSON so a
receipt can be reprinted word for word.

>>> lines = build_receipt(ReceiptFacts(merchant_name="Shop", terminal_id="T1", merchant_id="M1",
...     when="2026-11-25 10:00", cashier_id="01", iccid="89860112345678901237", msisdn="1064912345678",
...     plan_name="10 GB / month", amount_minor=3000, fee_minor=0, status="applied", order_id="O1"))
>>> any("TOTAL" in line.text for line in lines)
True
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from flows.messages import CATALOGUE, t
from flows.money import format_money
from flows.ports import ReceiptLine, TxnRecord
from flows.pricing import WALLET_CHANNELS
from flows.sim_number import group_digits, group_msisdn
from flows.txn_state import TxnState

__all__ = ["ReceiptFacts", "build_receipt", "receipt_to_json", "receipt_from_json", "WIDTH", "MoneyBack",
           "VOID", "REFUND", "WALLET_REFUND", "money_back_receipt", "plan_name_in"]

WIDTH = 32  # characters on a 58 mm roll in the normal font

STATUS_TEXT: Mapping[str, str] = {  # receipt status -> catalogue key
    "applied": "rcpt.applied",
    "pending": "rcpt.pending",
    "failed": "rcpt.failed",
    "reversed": "rcpt.reversed",
    "declined": "rcpt.declined",
    "refund_due": "rcpt.refund_due",  # the host refused the reversal: money still taken until refunded
}


@dataclass(frozen=True)
class ReceiptFacts:
    merchant_name: str
    terminal_id: str
    merchant_id: str
    when: str
    cashier_id: str
    iccid: str
    msisdn: str
    plan_name: str
    amount_minor: int
    fee_minor: int
    status: str
    order_id: str
    channel_label: str = ""  # "" = the card channel, in the receipt's language
    masked_pan: str | None = None
    pan_label: str = ""  # a wallet payment prints its masked code, its transaction id as the RRN; "" = card
    rrn_label: str = ""
    emv: Mapping[str, str] = field(default_factory=dict)
    auth_code: str | None = None
    rrn: str | None = None
    stan: int | None = None
    balance_after_minor: int | None = None
    copy_label: str = "rcpt.customer_copy"  # catalogue key
    lang: str = "both"  # "en", "zh" or "both" (flows.messages)


def plan_name_in(record: TxnRecord, lang: str) -> str:
    """The plan's name in a receipt's (or screen's) language, from the journal row: English, Chinese or both. A row
    from before the Chinese name was kept shows its plan id in Chinese, never the English name.

    >>> row = TxnRecord(1, "completed", "O1", "8986", "1064", "D1G-1M", "1 GB monthly data", 1000, 0, "card", "01",
    ...                 "t", plan_name_zh="1GB 月包")
    >>> [plan_name_in(row, lang) for lang in ("en", "zh", "both")]
    ['1 GB monthly data', '1GB 月包', '1 GB monthly data 1GB 月包']
    """
    zh = record.plan_name_zh or record.plan_id
    if lang in ("en", "zh"):
        return record.plan_name if lang == "en" else zh
    return f"{record.plan_name} {record.plan_name_zh}" if record.plan_name_zh else record.plan_name


def _columns(text: str) -> int:
    """Printed width: CJK and fullwidth characters take two columns on the roll.

    >>> _columns("Fee 手续费"), _columns("2026-11-25 10:00")
    (10, 16)
    """
    if text.isascii():  # most lines: no character is wide
        return len(text)
    widths = list(map(unicodedata.east_asian_width, text))  # one C call per character, no generator step
    return len(text) + widths.count("W") + widths.count("F")


def _pair(left: str, right: str) -> ReceiptLine:
    gap = max(1, WIDTH - _columns(left) - _columns(right))
    return ReceiptLine(f"{left}{' ' * gap}{right}")


def build_receipt(f: ReceiptFacts) -> tuple[ReceiptLine, ...]:
    rule = ReceiptLine("-" * WIDTH)
    lang = f.lang

    def say(key: str, **args: object) -> str:
        return t(key, lang, **args)

    title = [ReceiptLine(t("rcpt.title", "en"), align="center", bold=True, double=True)] if lang != "zh" else []
    title += [ReceiptLine(t("rcpt.title", "zh"), align="center", bold=True)] if lang != "en" else []
    lines: list[ReceiptLine] = [
        *title,
        ReceiptLine(f.merchant_name, align="center"),
        ReceiptLine(f"TID {f.terminal_id}  MID {f.merchant_id}"),
        _pair(f.when, say("rcpt.cashier", cashier=f.cashier_id)),
        rule,
        ReceiptLine(say("rcpt.iccid")),
        ReceiptLine(group_digits(f.iccid), bold=True),
        _pair("MSISDN", group_msisdn(f.msisdn)),
        ReceiptLine(f"{say('label.plan')}: {f.plan_name}"),
        _pair(say("label.amount"), format_money(f.amount_minor)),
        _pair(say("label.fee"), format_money(f.fee_minor)),
        # double width leaves 16 columns: one language only
        ReceiptLine(f"{t('label.total', 'zh' if lang == 'zh' else 'en')} {format_money(f.amount_minor + f.fee_minor)}",
                    bold=True, double=True),
        rule,
        _pair(say("label.pay_by"), f.channel_label or say("channel.card")),
    ]
    if f.masked_pan:
        lines.append(_pair(f.pan_label or say("label.card"), f.masked_pan))
    for key, label in (("entry", say("rcpt.entry")), ("app_label", "App"), ("aid", "AID"), ("ac", "TC"),
                       ("tvr", "TVR"), ("tsi", "TSI"), ("kernel", say("rcpt.kernel")),
                       ("tap_outcome", say("rcpt.tap_outcome")), ("tap_cvm", say("rcpt.cvm"))):
        if f.emv.get(key):  # the entry mode may be a catalogue key (magstripe), printed in the receipt's language
            lines.append(_pair(label, say(f.emv[key]) if f.emv[key] in CATALOGUE else f.emv[key]))
    if f.auth_code:
        lines.append(_pair(say("rcpt.auth_code"), f.auth_code))
    if f.rrn:
        lines.append(_pair(f.rrn_label or say("rcpt.rrn"), f.rrn))
    if f.stan is not None:
        lines.append(_pair(say("rcpt.trace"), f"{f.stan:06d}"))
    lines.append(ReceiptLine(say("label.order")))
    lines.append(ReceiptLine(f.order_id))
    lines.append(rule)
    status = say(STATUS_TEXT[f.status]) if f.status in STATUS_TEXT else f.status.upper()
    lines.append(ReceiptLine(status, align="center", bold=True))
    if f.balance_after_minor is not None:
        lines.append(_pair(say("label.new_balance"), format_money(f.balance_after_minor)))
    if f.status == "pending":
        lines.extend(ReceiptLine(part) for part in say("rcpt.keep").split("\n"))
    if f.emv.get("cvm") == "signature" and f.status in ("applied", "pending"):  # the CVM was the signature
        lines += [rule, ReceiptLine(say("rcpt.signature")), ReceiptLine(""), ReceiptLine("_" * (WIDTH - 2))]
    lines.append(rule)
    lines.append(ReceiptLine(say(f.copy_label), align="center"))
    return tuple(lines)


@dataclass(frozen=True)
class MoneyBack:
    """What tells a void receipt from a refund receipt: both give a captured payment back, line for line alike."""

    title: str  # catalogue keys
    done: str
    pending: str
    footer: str
    done_state: TxnState
    stan_line: Callable[[TxnRecord], str]  # the money-back message's own trace number (and batch)


VOID = MoneyBack("vrcpt.title", "vrcpt.voided", "vrcpt.pending", "vrcpt.topup_stays", TxnState.VOIDED,
                 lambda r: f"VOID STAN {r.reversal_stan or 0:06d}  BATCH {r.batch or 0:06d}")
REFUND = MoneyBack("rfrcpt.title", "rfrcpt.refunded", "rfrcpt.pending", "rfrcpt.returned", TxnState.REFUNDED,
                   lambda r: f"REFUND STAN {r.refund_stan or 0:06d}")
# a wallet sale of a closed batch given back through its platform (flows.void_wallet): a refund, line for line as
# a card's; the platform's refund has no STAN of ours (the order id is its key), so the line names the batch
WALLET_REFUND = MoneyBack("rfrcpt.title", "rfrcpt.refunded", "rfrcpt.pending", "rfrcpt.returned", TxnState.VOIDED,
                          lambda r: f"WALLET REFUND  BATCH {r.batch or 0:06d}")


def money_back_receipt(kind: MoneyBack, record: TxnRecord, *, merchant_name: str, terminal_id: str, when: str,
                       lang: str = "both", footer: str = "") -> tuple[ReceiptLine, ...]:
    """The receipt of a void or a refund of ``record``: done, or still pending (repeated by recovery).
    ``footer``: a catalogue key replacing the kind's own last line (what became of the top-up)."""
    status = t(kind.done if record.state == kind.done_state else kind.pending, lang)
    return (
        ReceiptLine(merchant_name, align="center", bold=True),
        ReceiptLine(t(kind.title, lang), align="center", bold=True, double=True),
        ReceiptLine(f"TID {terminal_id}  {when}"),
        *((ReceiptLine(f"CODE {record.masked_pan or '-'}"), ReceiptLine(f"TXN {record.rrn or '-'}"))
          if record.channel in WALLET_CHANNELS else  # a wallet sale: its masked code and the platform's transaction
          (ReceiptLine(f"CARD {record.masked_pan or '-'}"),
           ReceiptLine(f"ORIGINAL STAN {record.stan or 0:06d}  AUTH {record.auth_code or '-'}"))),
        ReceiptLine(kind.stan_line(record)),
        ReceiptLine(f"ORDER {record.order_id}"),
        ReceiptLine(f"SIM …{record.iccid[-4:]}  {plan_name_in(record, lang)}"),
        ReceiptLine(f"AMOUNT -{format_money(record.total_minor)}", bold=True, double=True),
        ReceiptLine(status, align="center", bold=True),
        ReceiptLine(t(footer or kind.footer, lang), align="center", bold=bool(footer)),
    )


def receipt_to_json(lines: Sequence[ReceiptLine]) -> str:
    return json.dumps([[ln.text, ln.align, ln.bold, ln.double, ln.qr] for ln in lines], ensure_ascii=False)


def receipt_from_json(text: str) -> tuple[ReceiptLine, ...]:
    return tuple(ReceiptLine(t, a, b, d, q) for t, a, b, d, q in json.loads(text))
