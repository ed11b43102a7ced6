"""The daily spending check's sum in SQL (``Journal.spent_on``) against the rule it replaces in the hot path
(``flows.sale_checks.spent_today`` over the decoded rows), and the SIM index it reads through (issue 17 item 3)."""

from __future__ import annotations

import datetime as dt
import itertools

import terminal.journal_open as journal_open
from flows.sale_checks import NOT_SPENT_STATES, spent_today
from flows.txn_state import TxnState, path_to
from terminal.journal import Journal

SIMS = ("89860112345678901237", "89860112345678901245")
DAYS = (dt.date(2026, 12, 2), dt.date(2026, 12, 3))
CHANNELS = ("card", "wechat")
NOT_SPENT = tuple(sorted(NOT_SPENT_STATES))


def _sale(j: Journal, n: int, sim: str, channel: str, day: dt.date, state: str) -> int:
    txn = j.begin(order_id=f"O{n}", iccid=sim, msisdn="1064912345678", plan_id="P1", plan_name="10 GB",
                  amount_minor=1000 + n, fee_minor=n % 7, channel=channel, cashier_id="01")
    j.update(txn, TxnState.CREATED, created_at=f"{day.isoformat()}T0{n % 10}:00:00.000")
    for step in path_to(state):
        j.update(txn, step)
    return txn


def test_the_sum_is_what_spent_today_counts_for_every_sim_day_and_channel():
    j = Journal(":memory:")  # 216 sales: no fsync needed to compare two ways of counting
    combos = itertools.product(SIMS, CHANNELS, DAYS, sorted(TxnState))  # every state, spent or not
    for n, (sim, channel, day, state) in enumerate(combos):
        _sale(j, n, sim, channel, day, state)
    sums = {}
    for sim, channel, day in itertools.product(SIMS, CHANNELS, DAYS):
        rows = j.for_sim_on(sim, day.isoformat())
        assert j.spent_on(sim, day.isoformat(), channel, NOT_SPENT) == spent_today(rows, channel=channel, day=day)
        sums[sim, channel, day] = spent_today(rows, channel=channel, day=day)
    assert len(set(sums.values())) == len(sums) and 0 not in sums.values()  # each cell its own rows, none empty
    assert j.spent_on(SIMS[0], "2026-12-04", "card", NOT_SPENT) == 0
    assert j.quarantined == {}


def test_a_row_that_does_not_read_as_written_is_left_to_the_decoder(tmp_path):
    j = Journal(tmp_path / "j.db")
    day = DAYS[0].isoformat()
    good = _sale(j, 1, SIMS[0], "card", DAYS[0], TxnState.COMPLETED)
    bad = _sale(j, 2, SIMS[0], "card", DAYS[0], TxnState.COMPLETED)
    assert j.spent_on(SIMS[0], day, "card", NOT_SPENT) == 1001 + 1002 + 1 + 2
    for damage in ("amount_minor = 'ten'", "fee_minor = 2.5", "state = 'complete'"):
        j._db.execute(f"UPDATE txn SET {damage} WHERE txn_id = ?", (bad,))
        assert j.spent_on(SIMS[0], day, "card", NOT_SPENT) is None  # the caller decodes the rows instead
        assert [r.txn_id for r in j.for_sim_on(SIMS[0], day)] == [good]  # ... which skip and name the bad one
        assert j.quarantined == {f"txn {bad}": damage.split()[0]}
        j._db.execute("UPDATE txn SET amount_minor = 1002, fee_minor = 2, state = 'completed' WHERE txn_id = ?",
                      (bad,))
        j.quarantined.clear()
    assert j.spent_on(SIMS[1], day, "card", NOT_SPENT) == 0  # another SIM's sum does not see the damaged row


def test_the_sim_index_is_added_to_a_journal_from_before_and_sealed(tmp_path, monkeypatch):
    path = tmp_path / "j.db"
    with monkeypatch.context() as before:  # a journal written by the build before the index
        before.setattr(journal_open, "INDEXES", ())
        old = Journal(path)
        _sale(old, 1, SIMS[0], "card", DAYS[0], TxnState.COMPLETED)
        assert old._rows("sqlite_master", "name = 'txn_sim'") == []
        old.close()
    for _ in range(2):  # made once, then found
        j = Journal(path)
        assert j.damage is None and j.verify() is None  # the new schema row is sealed
        assert len(j._rows("sqlite_master", "type = 'index' AND name = 'txn_sim'")) == 1
        assert j.spent_on(SIMS[0], DAYS[0].isoformat(), "card", NOT_SPENT) == 1002
        plan = j._db.execute("EXPLAIN QUERY PLAN SELECT * FROM txn WHERE iccid = ? AND substr(created_at, 1, 10) = ?",
                             (SIMS[0], "2026-12-02")).fetchall()
        assert any("txn_sim" in str(step) for step in plan)  # one SIM's rows, not the whole table
        j.close()
    with monkeypatch.context() as rolled_back:  # the build before opens it again (an image rolled back)
        rolled_back.setattr(journal_open, "INDEXES", ())
        j = Journal(path)
        assert j.damage is None and j.verify() is None and j.get(1).state == TxnState.COMPLETED
