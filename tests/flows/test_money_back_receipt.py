"""Void and refund receipts are one layout (``flows.receipt.money_back_receipt``): the same lines, their own
title, trace number, status and footer; only masked card data."""

from __future__ import annotations

import pytest

from flows.money import format_money
from flows.ports import TxnRecord
from flows.refund import refund_receipt
from flows.txn_state import TxnState
from flows.void import void_receipt

RECORD = TxnRecord(7, TxnState.COMPLETED, "T1261202100000000007", "89860424000000000017", "1064900000001", "D1G",
                   "1 GB monthly", 1000, 38, "card", "01", "2026-12-02T10:00:00", stan=41,
                   masked_pan="621234******1232", auth_code="654321", reversal_stan=42, batch=3, refund_stan=43)


VOID_END = "Top-up NOT reversed: it stays on the SIM"  # a void receipt says what became of the top-up
REFUND_END = "Top-up failed: money returned to the card"


@pytest.mark.parametrize(("receipt", "state", "stan_line", "title", "status", "footer"), [
    (void_receipt, TxnState.VOIDED, "VOID STAN 000042  BATCH 000003", "VOID", "VOIDED", VOID_END),
    (void_receipt, TxnState.VOID_PENDING, "VOID STAN 000042  BATCH 000003", "VOID", "VOID PENDING", VOID_END),
    (refund_receipt, TxnState.REFUNDED, "REFUND STAN 000043", "REFUND", "REFUNDED", REFUND_END),
    (refund_receipt, TxnState.REFUND_PENDING, "REFUND STAN 000043", "REFUND", "REFUND PENDING", REFUND_END),
])
def test_void_and_refund_receipts_share_one_layout(receipt, state, stan_line, title, status, footer):  # type: ignore[no-untyped-def]
    record = TxnRecord(**{**RECORD.__dict__, "state": state})
    lines = receipt(record, merchant_name="Shop", terminal_id="T1", when="2026-12-02 10:05", lang="en")
    texts = [line.text for line in lines]
    assert texts[:2] == ["Shop", title] and texts[2] == "TID T1  2026-12-02 10:05"
    assert texts[3:9] == ["CARD 621234******1232", "ORIGINAL STAN 000041  AUTH 654321", stan_line,
                          "ORDER T1261202100000000007", "SIM …0017  1 GB monthly", f"AMOUNT -{format_money(1038)}"]
    assert texts[9:] == [status, footer]
    assert lines[8].double and lines[9].bold and len(lines) == 11
