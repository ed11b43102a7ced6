"""Advice (0220 / 0221 → 0230) and refund (0200 with processing code 200000 → 0210) messages.

Pure like ``messages``: an advice is the 0200 of a payment the card already approved offline (field 38 = the
offline approval code ``Y1``, field 55 with the TC; never a PIN block); a refund names the captured original by
field 90 (MTI, STAN, time) with its RRN (37) and approval code (38), and carries no PAN: the acquirer credits
the card it charged.

>>> import datetime as dt
>>> from flows.ports import AuthRequest, RefundRequest
>>> orig = AuthRequest(5, 3000, dt.datetime(2026, 1, 2, 3, 4, 5), pan="", expiry_yymm="", terminal_id="T1")
>>> f = build_refund(RefundRequest(9, orig, "612345678901", "123456"), transmitted_at=orig.local_time,
...                  terminal_id="T1", merchant_id="M1")
>>> f["t"], f["3"], f["11"], f["90"][:10], "2" in f
('0200', '200000', '000009', '0200000005', False)
"""

from __future__ import annotations

import datetime as dt

from drivers.host.messages import Fields, build_auth_request, build_reversal
from flows.ports import AdviceRequest, RefundRequest, ReversalRequest

__all__ = ["MTI_ADVICE", "MTI_ADVICE_REPEAT", "PROCESSING_REFUND", "build_advice", "build_refund"]

MTI_ADVICE = "0220"
MTI_ADVICE_REPEAT = "0221"
PROCESSING_REFUND = "200000"


def build_advice(req: AdviceRequest, *, terminal_id: str, merchant_id: str, batch_number: int = 1) -> Fields:
    fields = build_auth_request(req.auth, terminal_id=terminal_id, merchant_id=merchant_id,
                                batch_number=batch_number)
    fields.pop("52", None)
    fields.pop("53", None)
    fields["t"] = MTI_ADVICE_REPEAT if req.repeat else MTI_ADVICE
    fields["38"] = req.auth_code.ljust(6)[:6]
    return fields


def build_refund(req: RefundRequest, *, transmitted_at: dt.datetime, terminal_id: str, merchant_id: str,
                 batch_number: int = 1) -> Fields:
    fields = build_reversal(ReversalRequest(req.stan, req.original, reason_code="00"), transmitted_at=transmitted_at,
                            terminal_id=terminal_id, merchant_id=merchant_id, batch_number=batch_number)
    del fields["39"]
    fields.update({"t": "0200", "3": PROCESSING_REFUND})
    if req.rrn:
        fields["37"] = req.rrn.rjust(12, "0")[:12]
    if req.auth_code:
        fields["38"] = req.auth_code.ljust(6)[:6]
    return fields
