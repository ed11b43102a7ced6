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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from flows.money import format_money
from flows.ports import ReceiptLine
from flows.sim_number import group_digits

__all__ = ["ReceiptFacts", "build_receipt", "receipt_to_json", "receipt_from_json", "WIDTH"]

WIDTH = 32  # characters on a 58 mm roll in the normal font

STATUS_TEXT: Mapping[str, str] = {
    "applied": "TOP-UP APPLIED / 充值成功",
    "pending": "TOP-UP PENDING / 充值处理中",
    "failed": "TOP-UP FAILED / 充值失败",
    "reversed": "PAYMENT REVERSED / 已冲正退款",
    "declined": "DECLINED / 交易拒绝",
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
    channel_label: str = "Card / 银行卡"
    masked_pan: str | None = None
    pan_label: str = "Card / 卡号"  # a wallet payment prints its masked code, its transaction id as the RRN
    rrn_label: str = "RRN / 参考号"
    emv: Mapping[str, str] = field(default_factory=dict)
    auth_code: str | None = None
    rrn: str | None = None
    stan: int | None = None
    balance_after_minor: int | None = None
    copy_label: str = "CUSTOMER COPY / 客户联"


def _columns(text: str) -> int:
    """Printed width: CJK and fullwidth characters take two columns on the roll."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pair(left: str, right: str) -> ReceiptLine:
    gap = max(1, WIDTH - _columns(left) - _columns(right))
    return ReceiptLine(f"{left}{' ' * gap}{right}")


def build_receipt(f: ReceiptFacts) -> tuple[ReceiptLine, ...]:
    rule = ReceiptLine("-" * WIDTH)
    lines: list[ReceiptLine] = [
        ReceiptLine("IoT SIM TOP-UP", align="center", bold=True, double=True),
        ReceiptLine("物联网卡充值", align="center", bold=True),
        ReceiptLine(f.merchant_name, align="center"),
        ReceiptLine(f"TID {f.terminal_id}  MID {f.merchant_id}"),
        _pair(f.when, f"Cashier {f.cashier_id}"),
        rule,
        ReceiptLine("SIM ICCID / 卡号"),
        ReceiptLine(group_digits(f.iccid), bold=True),
        _pair("MSISDN", group_digits(f.msisdn)),
        ReceiptLine(f"Plan / 套餐: {f.plan_name}"),
        _pair("Amount / 金额", format_money(f.amount_minor)),
        _pair("Fee / 手续费", format_money(f.fee_minor)),
        ReceiptLine(f"TOTAL {format_money(f.amount_minor + f.fee_minor)}", bold=True, double=True),
        rule,
        _pair("Paid by / 支付", f.channel_label),
    ]
    if f.masked_pan:
        lines.append(_pair(f.pan_label, f.masked_pan))
    for key, label in (("entry", "Entry / 读卡"), ("app_label", "App"), ("aid", "AID"), ("ac", "TC"), ("tvr", "TVR"),
                       ("tsi", "TSI")):
        if f.emv.get(key):
            lines.append(_pair(label, f.emv[key]))
    if f.auth_code:
        lines.append(_pair("Auth code / 授权码", f.auth_code))
    if f.rrn:
        lines.append(_pair(f.rrn_label, f.rrn))
    if f.stan is not None:
        lines.append(_pair("Trace / 凭证号", f"{f.stan:06d}"))
    lines.append(ReceiptLine("Order / 订单号"))
    lines.append(ReceiptLine(f.order_id))
    lines.append(rule)
    lines.append(ReceiptLine(STATUS_TEXT.get(f.status, f.status.upper()), align="center", bold=True))
    if f.balance_after_minor is not None:
        lines.append(_pair("New balance / 新余额", format_money(f.balance_after_minor)))
    if f.status == "pending":
        lines.append(ReceiptLine("Keep this receipt; the top-up will be"))
        lines.append(ReceiptLine("followed up automatically. 请保留凭条"))
    lines.append(rule)
    lines.append(ReceiptLine(f.copy_label, align="center"))
    return tuple(lines)


def receipt_to_json(lines: Sequence[ReceiptLine]) -> str:
    return json.dumps([[ln.text, ln.align, ln.bold, ln.double, ln.qr] for ln in lines], ensure_ascii=False)


def receipt_from_json(text: str) -> tuple[ReceiptLine, ...]:
    return tuple(ReceiptLine(t, a, b, d, q) for t, a, b, d, q in json.loads(text))
