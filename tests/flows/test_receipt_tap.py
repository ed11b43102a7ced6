"""The receipt of a tap names the kernel, its outcome and the CVM in the receipt's language; a signature CVM
adds a signature line on a paid receipt only."""

from __future__ import annotations

import pytest

from flows.receipt import ReceiptFacts, build_receipt

TAP = {"entry": "entry.contactless", "kernel": "UnionPay QuickPass", "tap_outcome": "tap.outcome.approved",
       "tap_cvm": "tap.cvm.online_pin", "cvm": "online_pin", "aid": "A000000333010101"}


def _text(emv: dict[str, str], status: str = "applied", lang: str = "en") -> str:
    lines = build_receipt(ReceiptFacts(
        merchant_name="Shop", terminal_id="T1", merchant_id="M1", when="2026-11-25 10:00", cashier_id="01",
        iccid="89860112345678901237", msisdn="1064912345678", plan_name="10 GB", amount_minor=3000, fee_minor=0,
        status=status, order_id="O1", masked_pan="621234******1232", emv=emv, lang=lang))
    return "\n".join(line.text for line in lines)


@pytest.mark.parametrize(("lang", "wanted"), [
    ("en", ["Contactless", "Kernel", "UnionPay QuickPass", "Outcome", "Approved", "CVM", "Online PIN"]),
    ("zh", ["非接触", "内核", "结果", "批准", "验证方式", "联机密码"]),
])
def test_kernel_outcome_and_cvm_in_the_receipts_language(lang: str, wanted: list[str]) -> None:
    text = _text(TAP, lang=lang)
    assert [w for w in wanted if w not in text] == []
    assert "signature" not in text.lower() and "签名" not in text


def test_a_signature_cvm_gets_a_signature_line_only_when_paid() -> None:
    signed = {**TAP, "cvm": "signature", "tap_cvm": "tap.cvm.signature"}
    assert "Cardholder signature" in _text(signed) and "_" * 30 in _text(signed)
    assert "Cardholder signature" not in _text(signed, status="reversed")
