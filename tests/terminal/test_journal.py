import datetime as dt
import sqlite3

import pytest

from flows.txn_state import path_to
from terminal.journal import FINAL_STATES, SCHEMA_VERSION, Journal, JournalError


def _begin(j: Journal, order: str = "O1") -> int:
    return j.begin(order_id=order, iccid="89860112345678901237", msisdn="1064912345678", plan_id="P1",
                   plan_name="10 GB", amount_minor=3000, fee_minor=18, channel="card", cashier_id="01")


def test_wal_and_full_sync(tmp_path):
    j = Journal(tmp_path / "j.db")
    assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert j._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_state_changes_are_durable_across_reopen(tmp_path):
    path = tmp_path / "j.db"
    j = Journal(path)
    txn = _begin(j)
    j.update(txn, "auth_intended", stan=7, masked_pan="621234******4567", reversal="armed")
    j.close()  # a reopen sees exactly what was committed
    again = Journal(path)
    rec = again.get(txn)
    assert (rec.state, rec.stan, rec.masked_pan, rec.reversal, rec.total_minor) == \
        ("auth_intended", 7, "621234******4567", "armed", 3018)
    assert [s for s, _ in again.events(txn)] == ["created", "auth_intended"]
    assert [r.txn_id for r in again.open_transactions()] == [txn]


def test_final_states_are_not_open(tmp_path):
    j = Journal(tmp_path / "j.db")
    for i, state in enumerate(sorted(FINAL_STATES)):
        txn = _begin(j, f"O{i}")
        for step in path_to(state):
            j.update(txn, step)
    assert j.open_transactions() == []


def test_stan_is_persistent_and_wraps(tmp_path):
    path = tmp_path / "j.db"
    j = Journal(path)
    assert [j.next_stan() for _ in range(3)] == [1, 2, 3]
    j._db.execute("UPDATE counter SET value = 999998 WHERE name = 'stan'")
    assert [j.next_stan(), j.next_stan()] == [999999, 1]
    j.close()
    assert Journal(path).next_stan() == 2


def test_order_ids_are_unique_and_carry_the_terminal(tmp_path):
    j = Journal(tmp_path / "j.db")
    now = dt.datetime(2026, 11, 25, 10, 0, 0)
    a, b = j.next_order_id("SIM00001", now), j.next_order_id("SIM00001", now)
    assert a != b and a.startswith("SIM00001261125100000")


def test_unknown_column_and_unknown_txn_change_nothing(tmp_path):
    j = Journal(tmp_path / "j.db")
    txn = _begin(j)
    with pytest.raises(JournalError, match="no column"):
        j.update(txn, "approved", pan="6212345678901234567")
    with pytest.raises(JournalError, match="no transaction"):
        j.update(999, "approved")
    assert j.get(txn).state == "created"


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "j.db"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="newer"):
        Journal(path)
