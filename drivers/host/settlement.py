"""Settlement messages: 0500 close batch with totals (field 63), 0320 batch upload of one captured sale.

Pure like ``messages``: port values in, pyiso8583 field dicts out, and back. Field 63 is our private 30-digit
totals block::

    +-----+--------------+-----+--------------+
    | 003 | 000000006000 | 001 | 000000003000 |   3 sales, ￥60.00; 1 void, ￥30.00
    +-----+--------------+-----+--------------+

>>> totals_field(BatchTotals(1, 3, 6000, 1, 3000))
'003000000006000001000000003000'
>>> parse_totals("003000000006000001000000003000", batch=1)
BatchTotals(batch=1, sale_count=3, sale_minor=6000, void_count=1, void_minor=3000)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from drivers.host.messages import Fields, transmission_time
from drivers.host.spec import (
    MTI_BATCH_UPLOAD,
    MTI_SETTLEMENT,
    PROCESSING_PURCHASE,
    PROCESSING_SETTLE,
    PROCESSING_SETTLE_AFTER_UPLOAD,
)
from flows.ports import BatchTotals, BatchUploadItem, SettlementRequest
from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = ["totals_field", "parse_totals", "build_settlement", "build_batch_upload", "parse_batch_upload"]


def _n(value: int, width: int, name: str) -> str:
    if not 0 <= value < 10**width:
        raise LocalProtocolError(f"{name} {value} does not fit {width} digits")
    return f"{value:0{width}d}"


def totals_field(t: BatchTotals) -> str:
    return (_n(t.sale_count, 3, "sale count") + _n(t.sale_minor, 12, "sale amount")
            + _n(t.void_count, 3, "void count") + _n(t.void_minor, 12, "void amount"))


def parse_totals(value: str, *, batch: int) -> BatchTotals:
    if len(value) != 30 or not value.isdigit():
        raise RemoteProtocolError("field 63 is not 30 digits", tag="63")
    return BatchTotals(batch, int(value[:3]), int(value[3:15]), int(value[15:18]), int(value[18:30]))


def build_settlement(req: SettlementRequest, *, transmitted_at: dt.datetime, terminal_id: str,
                     merchant_id: str) -> Fields:
    return {
        "t": MTI_SETTLEMENT,
        "3": PROCESSING_SETTLE_AFTER_UPLOAD if req.after_upload else PROCESSING_SETTLE,
        "7": transmission_time(transmitted_at),
        "11": _n(req.stan, 6, "STAN"),
        "41": terminal_id.ljust(8)[:8],
        "42": merchant_id.ljust(15)[:15],
        "60": _n(req.totals.batch, 6, "batch number"),
        "63": totals_field(req.totals),
    }


def build_batch_upload(item: BatchUploadItem, *, transmitted_at: dt.datetime, terminal_id: str,
                       merchant_id: str) -> Fields:
    return {
        "t": MTI_BATCH_UPLOAD,
        "3": PROCESSING_PURCHASE,
        "4": _n(item.amount_minor, 12, "amount"),
        "7": transmission_time(transmitted_at),
        "11": _n(item.stan, 6, "STAN"),
        "37": item.rrn.rjust(12, "0")[:12],
        "38": item.auth_code.ljust(6)[:6],
        "41": terminal_id.ljust(8)[:8],
        "42": merchant_id.ljust(15)[:15],
        "60": _n(item.batch, 6, "batch number"),
        "62": _n(item.original_stan, 6, "original STAN"),
    }


def parse_batch_upload(fields: Mapping[str, str]) -> BatchUploadItem:
    try:
        return BatchUploadItem(stan=int(fields["11"]), original_stan=int(fields["62"]),
                               amount_minor=int(fields["4"]), auth_code=fields.get("38", "").strip(),
                               rrn=fields.get("37", ""), batch=int(fields["60"]))
    except (KeyError, ValueError) as exc:
        raise RemoteProtocolError(f"0320 lacks a numeric field: {exc}", tag="0320") from exc
