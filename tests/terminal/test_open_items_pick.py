"""Open items with several refused reversals: the supervisor picks which one F2 refunds (1-9), each is refunded
once; keys with no meaning, a number with no item, a pick that is not a refused reversal or was resolved
meanwhile get a clear message in the supervisor's language and change nothing. Through the real core, handlers,
views and a real journal; the host's refund is a recording fake (the whole terminal: ``scenarios/
refund_pick.toml``)."""

from __future__ import annotations

from typing import Any

import pytest

from flows.ports import AuthResponse
from flows.txn_state import path_to
from terminal.core import Render, WorkDone
from terminal.machine import State
from terminal.users import hash_password
from tests.terminal.test_core import Driver, _run


class Host:
    def __init__(self) -> None:
        self.refunded: list[int] = []  # the original STANs refunded

    def refund(self, request: Any) -> AuthResponse:
        self.refunded.append(request.original.stan)
        return AuthResponse("00", "123456", "RRN")


class Printer:
    def __init__(self) -> None:
        self.printed: list[Any] = []

    def print_receipt(self, lines: Any) -> None:
        self.printed.append(lines)


def _screen(d: Driver) -> Any:
    return [c for c in d.commands if isinstance(c, Render)][-1].screen


def _refused(d: Driver, n: int, state: str = "reversal_refused") -> int:
    j = d.services.journal
    txn = j.begin(order_id=f"O{n}", iccid=f"8986042400000000{n:04d}", msisdn="1064900000001", plan_id="P1",
                  plan_name="plan", amount_minor=1000 * n, fee_minor=0, channel="card", cashier_id="01")
    for step in path_to(state, through="auth_intended"):
        j.update(txn, step, **({"stan": 20 + n, "auth_code": "654321", "masked_pan": "621234******1232",
                                "auth_time": "2026-12-01T10:00:00"} if step == "auth_intended" else {}))
    return txn


def _open_items(lang: str = "en", pending: bool = False) -> tuple[Driver, Host, list[int]]:
    d = Driver()
    d.services.users.ensure("90", "Wang", "supervisor", hash_password("9999", n=2**10))
    d.services.host, d.services.printer = Host(), Printer()
    txns = [_refused(d, 1), _refused(d, 2)] + ([_refused(d, 3, "topup_pending")] if pending else [])
    d.logged_in()
    d.keys("9 ENTER 90 ENTER 9999 ENTER")
    d.core.session.lang = lang
    d.keys("F4")
    assert d.core.state is State.OPEN_ITEMS
    return d, d.services.host, txns


def _refund(d: Driver) -> None:
    """F2 was pressed: run the refund work the core asked for, as the shell would, and hand back its answer."""
    work = d.work(d.commands, "refund")
    d.commands.clear()
    d.feed(WorkDone(work.ticket, _run(d.services, work)))


def test_the_picked_refused_reversal_is_refunded_not_the_newest_and_each_only_once() -> None:
    d, host, (first, second) = _open_items()
    screen = _screen(d)
    assert [m.key for m in screen.menu] == ["1", "2"] and "1-9 pick" in screen.hint
    d.keys("F2")  # two listed, none picked: which one is the supervisor's choice
    assert "2 payments wait for a refund: pick one" in _screen(d).error and host.refunded == []
    d.keys("1")  # the older one (the list is oldest first)
    assert _screen(d).menu[0].label.startswith("► ") and not _screen(d).menu[1].label.startswith("►")
    d.keys("F2")
    _refund(d)
    assert host.refunded == [21] and d.services.journal.get(first).state == "refunded"
    assert d.services.journal.get(second).state == "reversal_refused"
    assert [m.label.split()[-1] for m in _screen(d).menu] == ["O2"]  # the refunded one left the list
    d.keys("1 F2")
    _refund(d)
    assert host.refunded == [21, 22] and d.services.journal.get(second).state == "refunded"
    d.keys("F2")  # nothing left: nothing sent
    assert "Nothing to refund" in _screen(d).error and host.refunded == [21, 22]
    assert len(d.services.printer.printed) == 2


@pytest.mark.parametrize(("lang", "words"), [("en", "That key does nothing here"), ("zh", "此键在此无效")])
@pytest.mark.parametrize("key", ["F1", "F3", "F4", "CLEAR"])
def test_a_key_with_no_meaning_is_said_and_changes_nothing(lang: str, words: str, key: str) -> None:
    d, host, _ = _open_items(lang)
    d.keys(key)
    assert d.core.state is State.OPEN_ITEMS and words in _screen(d).error and d.core.session.open_pick is None
    assert host.refunded == [] and not [c for c in d.commands if getattr(c, "kind", "") == "refund"]


def test_a_number_with_no_item_and_clear_leave_the_pick_as_it_was() -> None:
    d, host, (first, _) = _open_items("zh")
    d.keys("1 7")
    assert "列表中没有第 7 项" in _screen(d).error and d.core.session.open_pick == first
    d.keys("CLEAR")
    assert d.core.session.open_pick is None and _screen(d).error is None
    assert host.refunded == []


def test_a_pick_that_is_not_a_refused_reversal_refunds_nothing() -> None:
    d, host, txns = _open_items(pending=True)
    d.keys("3 F2")
    assert "is not a refused reversal" in _screen(d).error and host.refunded == []
    assert d.services.journal.get(txns[2]).state == "topup_pending"


@pytest.mark.parametrize(("lang", "words"), [("en", "was resolved meanwhile (refunded): nothing done"),
                                             ("zh", "已在此期间处理（已退款）")])
def test_a_pick_resolved_meanwhile_is_said_and_nothing_is_sent_again(lang: str, words: str) -> None:
    """The supervisor picked item 2 from the list on the screen; before F2, that payment was refunded by another
    path (here the refund flow itself, on the same journal): F2 says so, sends nothing, and shows the list as it
    is now."""
    from flows.refund import refund_payment

    d, host, (first, second) = _open_items(lang)
    d.keys("2")
    refund_payment(host, d.services.journal, d.services.journal.get(second), terminal_id="T1", merchant_id="M1",
                   supervisor_id="90")
    assert host.refunded == [22]
    d.commands.clear()
    d.keys("F2")
    assert words in _screen(d).error and host.refunded == [22]
    assert not [c for c in d.commands if getattr(c, "kind", "") == "refund"]
    assert [m.label.split()[-1] for m in _screen(d).menu] == ["O1"] and d.core.session.open_pick is None
