"""Duplicate guard: same SIM and same total inside the window, only where money moved or may move."""

import datetime as dt

import pytest

from flows.duplicate import NO_MONEY_STATES, describe, find_duplicate, window_start
from flows.messages import say
from flows.ports import TxnRecord

NOW = dt.datetime(2026, 12, 1, 10, 30, 0)


def _rec(txn_id, state="completed", iccid="89860424000000000017", amount=3000, fee=0, minutes_ago=5.0):
    created = (NOW - dt.timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds")
    return TxnRecord(txn_id, state, f"O{txn_id}", iccid, "1064900000001", "D10G-1M", "10 GB", amount, fee, "card",
                     "01", created)


def test_same_sim_same_total_inside_the_window_is_found_newest_first():
    found = find_duplicate([_rec(1, minutes_ago=8), _rec(2, minutes_ago=2)], iccid="89860424000000000017",
                           total_minor=3000, now=NOW, window_s=600)
    assert found is not None and found.txn_id == 2


@pytest.mark.parametrize(("record", "why"), [
    (_rec(1, minutes_ago=10.01), "older than the window"),
    (_rec(1, iccid="89860424000000000025"), "another SIM"),
    (_rec(1, amount=2000), "another amount"),
    (_rec(1, amount=2900, fee=50), "total differs by the fee"),
])
def test_not_a_duplicate(record, why):
    assert find_duplicate([record], iccid="89860424000000000017", total_minor=3000, now=NOW, window_s=600) is None, why


def test_total_includes_the_fee():
    record = _rec(1, amount=2950, fee=50)
    assert find_duplicate([record], iccid=record.iccid, total_minor=3000, now=NOW, window_s=600) == record


@pytest.mark.parametrize("state", sorted(NO_MONEY_STATES))
def test_no_money_moved_is_not_a_duplicate(state):
    assert find_duplicate([_rec(1, state=state)], iccid="89860424000000000017", total_minor=3000, now=NOW,
                          window_s=600) is None


@pytest.mark.parametrize("state", ["completed", "topup_pending", "auth_intended", "reversal_pending", "paid"])
def test_money_moved_or_may_move_is_a_duplicate(state):
    assert find_duplicate([_rec(1, state=state)], iccid="89860424000000000017", total_minor=3000, now=NOW,
                          window_s=600) is not None


def test_window_start_matches_the_journal_format_and_describe_masks_the_sim():
    assert window_start(NOW, 600) == "2026-12-01T10:20:00.000"
    lines = [say(line) for line in describe(_rec(7, minutes_ago=3), NOW)]
    assert "…0017" in lines[0] and "3 min ago" in lines[0] and "￥30.00" in lines[0] and "O7" in lines[1]
    assert "89860424000000000017" not in " ".join(lines)
