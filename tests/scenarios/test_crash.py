"""Crash harness: the invariant checker catches lost money, and a subset of cut points survives for real.

The subset (every request sent to the host or carrier during the sale, plus the write-ahead commit before the
authorisation) runs through real ``pos-terminal`` processes, ptys and sockets; ``make crash-test`` runs every
point of every scenario, ``make soak`` adds random SIGKILL timing.
"""

import time
from types import SimpleNamespace

import pytest

from sim import crash

TID = "SIM00001"


def _host(*entries):
    return SimpleNamespace(ledger=[SimpleNamespace(stan=s, response_code=c, reversed=r, terminal_id=TID)
                                   for s, c, r in entries])


def _carrier(*orders):
    return SimpleNamespace(ledger=[SimpleNamespace(order_id=o) for o in orders])


def _row(state, stan=7, order="O1"):
    return {"txn_id": 1, "state": state, "stan": stan, "order_id": order}


@pytest.mark.parametrize(("rows", "host", "carrier", "wrong"), [
    ([_row("completed")], _host((7, "00", False)), _carrier("O1"), None),
    ([_row("reversed")], _host((7, "00", True)), _carrier(), None),
    ([_row("declined")], _host((7, "05", False)), _carrier(), None),
    ([_row("topup_pending")], _host((7, "00", False)), _carrier(), "left open"),
    ([_row("reversed")], _host((7, "00", False)), _carrier(), "host charged=True"),
    ([_row("completed")], _host((7, "00", False)), _carrier("O1", "O1"), "applied 2x"),
    ([_row("completed")], _host((7, "00", True)), _carrier("O1"), "host charged=False"),
    ([_row("reversed")], _host((7, "00", True)), _carrier("O1"), "carrier applied 1x"),
    ([], _host((9, "00", False)), _carrier(), "does not know"),
    ([_row("abandoned")], _host(), _carrier("O2"), "without a completed payment"),
])
def test_invariants_catch_every_kind_of_lost_money(rows, host, carrier, wrong):
    problems = crash.check_invariants(rows, host, carrier, TID)
    if wrong is None:
        assert problems == []
    else:
        assert any(wrong in p for p in problems), problems


def _auth_sent(kinds):
    """The point where the sale's 0200 left: the first host send after the SIM lookup (boot sends an echo)."""
    lookup = kinds.index("carrier.sent") + 1
    return next(n for n, k in enumerate(kinds, 1) if n > lookup and k == "host.sent")


def _subset(kinds):
    first_auth = _auth_sent(kinds)
    return [first_auth - 1] + [n for n, k in enumerate(kinds, 1) if n >= first_auth and k != "commit"]


@pytest.mark.scenario
@pytest.mark.parametrize("name", ["card_approve", "host_timeout"])
def test_cut_points_of_the_sale_survive(name):
    sc = next(s for s in crash.SCENARIOS if s.name == name)
    kinds = crash.points_of(sc)
    results = [crash.run_cut(sc, n, kinds[n - 1]) for n in _subset(kinds)]
    assert len(results) >= 3
    assert [r for r in results if not r.survived] == []


@pytest.mark.soak
def test_every_cut_point_and_random_kills_survive():
    results = crash.run(kill_random=5, echo=lambda _line: None)
    assert [r for r in results if not r.survived] == []


@pytest.mark.scenario
def test_power_cut_after_approval_recovery_shows_the_cashier_what_it_did(tmp_path):
    """The 0200 left and the host approved it; the power goes before the answer is read. At the next boot the
    terminal reverses it and says so on the login screen, before anyone can sell."""
    sc = next(s for s in crash.SCENARIOS if s.name == "card_approve")
    kinds = crash.points_of(sc)
    auth_sent = _auth_sent(kinds)
    world, config = crash._world(tmp_path)
    try:
        world.insert_card(sc.card)
        world.pinpad.auto_pin = "1234"
        term = crash._Process(config, {"POS_CRASH_AT": str(auth_sent)})
        assert crash._drive(term, sc) is False and term.stop() == crash.CRASH_EXIT
        assert [(e.response_code, e.reversed) for e in world.acquirer.ledger] == [("00", False)], "charged"
        again = crash._Process(config, {})
        try:
            assert again.wait("login", 30)
            deadline = time.monotonic() + 5  # the screen's lines follow its header line
            while "Recovery:" not in (screen := "\n".join(again.lines)) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            again.stop()
        assert "Recovery: Reversed 1 payment of ￥30.00 for SIM …0017" in screen
        assert [(e.response_code, e.reversed) for e in world.acquirer.ledger] == [("00", True)]
        assert world.carrier.ledger == []
    finally:
        world.stop()
