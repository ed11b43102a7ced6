"""The supervisor's void/refund list (issue 14): a busy day's sales are all reachable, nine a page (F1 older,
F2 newer, as the audit log pages), and a key picks the sale shown on the current page; the home item is named
for what it does, in both languages. Through the real core, handlers, views and a real journal."""

from __future__ import annotations

from typing import Any

import pytest

from flows.txn_state import path_to
from terminal.core import Render, Started, WorkDone
from terminal.machine import State
from terminal.users import hash_password
from tests.terminal.test_core import Driver


def _screen(d: Driver) -> Any:
    return [c for c in d.commands if isinstance(c, Render)][-1].screen


def _day(sales: int) -> Driver:
    d = Driver()
    d.services.users.ensure("90", "Wang", "supervisor", hash_password("9999", n=2**10))
    j = d.services.journal
    for n in range(1, sales + 1):  # amounts 10.01, 10.02 … tell the sales apart on the screen
        txn = j.begin(order_id=f"O{n}", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P1",
                      plan_name="plan", amount_minor=1000 + n, fee_minor=0, channel="card", cashier_id="01")
        for step in path_to("completed", through="auth_intended"):
            j.update(txn, step, **({"stan": 20 + n, "auth_code": "654321", "masked_pan": "621234******1232",
                                    "auth_time": "2026-12-01T10:00:00"} if step == "auth_intended" else {}))
    boot = d.work(d.feed(Started()), "boot")
    d.feed(WorkDone(boot.ticket, (True, (), ())))
    d.keys("90 ENTER 9999 ENTER")
    return d


def test_twenty_sales_are_listed_nine_a_page_and_the_key_picks_from_the_page_shown() -> None:
    d = _day(20)
    d.core.session.lang = "en"
    d.keys("F2")
    first = _screen(d)
    assert d.core.state is State.VOID_SELECT and first.title == "Void or refund which payment? (1/3)"
    assert [m.label.split()[-2] for m in first.menu][:2] == ["￥10.20", "￥10.19"] and len(first.menu) == 9
    assert "F1 older" in first.hint
    d.keys("F2")  # already the newest page: nothing moves
    assert _screen(d).title.endswith("(1/3)")
    d.keys("F1 F1")
    last = _screen(d)
    assert last.title.endswith("(3/3)") and [m.label.split()[-2] for m in last.menu] == ["￥10.02", "￥10.01"]
    d.keys("F1")  # no older page
    assert _screen(d).title.endswith("(3/3)")
    d.keys("3")  # only two on this page
    assert d.core.state is State.VOID_SELECT
    d.keys("2")
    assert d.core.state is State.VOID_CONFIRM and d.core.session.void_pick.order_id == "O1"
    d.keys("CANCEL")
    d.keys("F2 1")  # back one page: the first of page 2 is the tenth newest
    assert d.core.session.void_pick.order_id == "O11"


@pytest.mark.parametrize(("lang", "item", "title"), [
    ("en", "Void or refund a payment", "Void or refund which payment?"),
    ("zh", "撤销或退款", "撤销或退款哪笔交易？"),
])
def test_one_page_has_no_page_numbers_and_the_home_item_says_void_or_refund(lang: str, item: str, title: str) -> None:
    d = _day(3)
    d.core.session.lang = lang
    d.keys("CANCEL")  # redraw home in the chosen language (CANCEL on home stays home)
    assert any(m.key == "F2" and m.label == item for m in _screen(d).menu)
    d.keys("F2")
    screen = _screen(d)
    assert screen.title == title and len(screen.menu) == 3 and "F1" not in screen.hint


@pytest.mark.parametrize(("open_batch", "en", "zh"), [(1, "Void", "撤销"), (2, "Refund", "退款")])
def test_the_done_screen_is_titled_for_what_was_done(open_batch: int, en: str, zh: str) -> None:
    """A sale of a closed batch was refunded, not voided: the done screen says so in both languages."""
    from flows.ports import TxnRecord
    from terminal.views import Session
    from terminal.views_day import DAY_RENDERERS

    pick = TxnRecord(1, "refunded", "O1", "89860424000000000017", "1064900000001", "P1", "plan", 3000, 0, "card",
                     "01", "2026-12-01T10:00:00", batch=1)
    for lang, title in (("en", en), ("zh", zh)):
        s = Session(lang=lang)
        s.void_pick, s.void_batch = pick, open_batch
        assert DAY_RENDERERS[State.VOID_DONE](s).title == title
