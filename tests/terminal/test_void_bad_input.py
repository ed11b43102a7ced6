"""The supervisor's void/refund screens and bad input (day 15): a key with no meaning, a number with no sale, a sale
voided or refunded meanwhile — each said in the supervisor's language, and nothing changes (no void starts, the
journal is untouched). Through the real core, handlers, views and a real journal."""

from __future__ import annotations

from typing import Any

import pytest

from flows.messages import Msg
from flows.void import VoidResult
from terminal.core import StartWork, WorkDone
from terminal.machine import State
from tests.terminal.test_void_list import _day, _screen


def _void_work(d: Any) -> list[StartWork]:
    return [c for c in d.commands if isinstance(c, StartWork) and c.kind == "void"]


@pytest.mark.parametrize(("lang", "said"), [("en", "That key does nothing here — 1-9 choose · CANCEL home"),
                                            ("zh", "此键在此无效 —— 选择 · 返回")])
@pytest.mark.parametrize("key", ["ENTER", "CLEAR", "F3", "F4", "F1", "F2"])
def test_a_key_with_no_meaning_on_the_void_list_is_said(lang: str, said: str, key: str) -> None:
    d = _day(2)
    d.core.session.lang = lang
    d.keys("F2")
    d.keys(key)  # one page only: F1 / F2 have no page to go to either
    assert d.core.state is State.VOID_SELECT and said in _screen(d).error
    assert d.core.session.void_pick is None
    d.keys("1")  # a good key afterwards works and clears the message
    assert d.core.state is State.VOID_CONFIRM and d.core.session.error is None


def test_a_number_with_no_sale_is_said() -> None:
    d = _day(2)
    d.core.session.lang = "en"
    d.keys("F2 5")
    assert d.core.state is State.VOID_SELECT and "There is no item 5 in the list" in _screen(d).error


def test_a_sale_voided_meanwhile_is_not_picked_and_the_list_is_made_again() -> None:
    d = _day(2)
    d.core.session.lang = "en"
    d.keys("F2")
    newest = d.core.session.void_list[0]
    for step in ("void_pending", "voided"):  # voided behind the list's back (another path on the same journal)
        d.services.journal.update(newest.txn_id, step)
    events = len(d.services.journal.events(newest.txn_id))
    d.keys("1")
    assert d.core.state is State.VOID_SELECT and "changed meanwhile (voided): nothing done" in _screen(d).error
    assert [r.txn_id for r in d.core.session.void_list] == [newest.txn_id - 1]  # only what can still be voided
    assert len(d.services.journal.events(newest.txn_id)) == events and _void_work(d) == []


def test_enter_on_the_confirm_screen_never_voids_and_says_which_key_does() -> None:
    d = _day(1)
    d.core.session.lang = "zh"
    d.keys("F2 1 ENTER")
    assert d.core.state is State.VOID_CONFIRM and "此键在此无效 —— F1 撤销 · 返回" in _screen(d).error
    assert _void_work(d) == []


def test_f1_on_a_sale_refunded_meanwhile_starts_nothing() -> None:
    d = _day(1)
    d.core.session.lang = "en"
    d.keys("F2 1")
    pick = d.core.session.void_pick
    for step in ("void_pending", "voided"):
        d.services.journal.update(pick.txn_id, step)
    d.keys("F1")
    assert d.core.state is State.VOID_SELECT and "changed meanwhile (voided)" in _screen(d).error
    assert _void_work(d) == [] and d.core.session.void_list == []


def test_the_done_screen_says_which_key_leaves_it() -> None:
    d = _day(1)
    d.core.session.lang = "en"
    d.keys("F2 1 F1")
    [work] = _void_work(d)
    record = d.services.journal.get(d.core.session.void_pick.txn_id)
    d.feed(WorkDone(work.ticket, (VoidResult("voided", Msg("void.done", {"money": "￥10.01", "sim": "…0017"}),
                                             record), None)))
    assert d.core.state is State.VOID_DONE
    d.keys("5")
    assert d.core.state is State.VOID_DONE and "That key does nothing here — ENTER home" in _screen(d).error
    d.keys("ENTER")
    assert d.core.state is State.HOME
