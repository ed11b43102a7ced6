"""Issue 14: a sale whose void the bank refused while its top-up is still being put back (the carrier did not
answer the put-back) is counted as a sale and does not hold the batch open; any other open item still does.
The settlement work of the real handler, on a real journal, with a host and carrier that record what they got."""

from __future__ import annotations

import datetime as dt
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from flows.ports import CancelToken
from flows.txn_state import path_to
from pos_errors import LinkTimeout
from terminal.config import Settings
from terminal.handlers.settlement import _settle_work
from terminal.journal import Journal
from terminal.work import WorkContext


class Host:
    def __init__(self) -> None:
        self.settled: list[Any] = []

    def settle(self, request: Any) -> str:
        self.settled.append(request.totals)
        return "00"


class SilentCarrier:
    """The carrier cannot be reached: the put-back top-up stays owed (``topup_reapply``)."""

    def order_status(self, order_id: str) -> Any:
        raise LinkTimeout("no answer")

    def create_topup(self, *args: Any, **kwargs: Any) -> Any:
        raise LinkTimeout("no answer")

    def reverse_topup(self, order_id: str, reason: str = "") -> Any:
        raise LinkTimeout("no answer")


class Printer:
    def __init__(self) -> None:
        self.printed: list[Any] = []

    def print_receipt(self, lines: Any) -> None:
        self.printed.append(lines)


def _sale(journal: Journal, order: str, state: str, stan: int) -> int:
    txn = journal.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                        plan_name="p", amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")
    for step in path_to(state, through="auth_intended"):
        journal.update(txn, step, **({"stan": stan, "auth_code": "123456"} if step == "auth_intended" else {}))
    return txn


@pytest.mark.parametrize("other_open", [False, True])
def test_a_topup_being_put_back_is_a_sale_and_holds_no_batch(tmp_path: Any, other_open: bool) -> None:
    journal = Journal(tmp_path / "j.db")
    _sale(journal, "O1", "completed", 11)
    refused = _sale(journal, "O2", "completed", 12)
    journal.update(refused, "void_pending", topup_status="reversed")
    journal.update(refused, "topup_reapply", message="void refused (12)")
    if other_open:  # a top-up still pending at the carrier: that one does hold the batch
        _sale(journal, "O3", "topup_pending", 13)
    host, printer = Host(), Printer()
    sv = SimpleNamespace(settings=Settings.from_dict({"terminal": {"id": "T0000001"}}), journal=journal, host=host,
                         carrier=SilentCarrier(), printer=printer, wallet=None, wallet_topup=None, saf_sealer=None)
    ctx = WorkContext(sv, lambda item: None, CancelToken(), threading.Lock(), threading.Lock())  # type: ignore[arg-type]
    result, problem = _settle_work("en", lambda: dt.datetime(2026, 12, 1, 18, 0))(ctx)
    assert journal.get(refused).state == "topup_reapply"  # the carrier was asked and did not answer
    if other_open:
        assert result.status == "failed" and host.settled == [] and journal.current_batch() == 1
        return
    assert result.closed and problem is None and journal.current_batch() == 2
    assert [(t.sale_count, t.sale_minor) for t in host.settled] == [(2, 6000)]
    text = [line.text for line in printer.printed[0]]
    assert "TOP-UP BEING PUT BACK: 1" in text and "SIM …0017 ￥30.00 order O2" in text
