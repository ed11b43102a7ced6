"""The journal enforces the per-transaction state machine and migrates version-2 databases to batches."""

import sqlite3

import pytest

from flows.txn_state import FINAL, TRANSITIONS, IllegalTransition, TxnState, allowed, check, path_to
from terminal.journal import FINAL_STATES, MIGRATIONS, SCHEMA_VERSION, Journal, JournalError


def _begin(j, order="O1"):
    return j.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                   plan_name="p", amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")


@pytest.mark.parametrize(("current", "new"), [("completed", "reversal_pending"), ("reversed", "completed"),
                                              ("created", "completed"), ("declined", "approved"),
                                              ("topup_pending", "reversed")])
def test_illegal_transitions_are_refused_and_change_nothing(tmp_path, current, new):
    j = Journal(tmp_path / "j.db")
    txn = _begin(j)
    for step in path_to(current):
        j.update(txn, step)
    events = j.events(txn)
    with pytest.raises(JournalError, match=f"from {current} to {new}"):
        j.update(txn, new, message="must not land")
    assert j.get(txn).state == current and j.get(txn).message is None and j.events(txn) == events


def test_same_state_again_is_allowed_and_unknown_states_are_refused(tmp_path):
    j = Journal(tmp_path / "j.db")
    txn = _begin(j)
    for step in path_to("completed"):
        j.update(txn, step)
    j.update(txn, "completed", receipt="[]")  # the receipt copy
    assert j.get(txn).receipt == "[]"
    assert not allowed("qr_intended", "qr_paid") and not allowed("created", "qr_intended")
    assert not allowed("qr_paid", "completed") and not allowed("completed", "qr_intended")
    with pytest.raises(IllegalTransition, match="unknown transaction state 'qr_paid'"):
        check("completed", "qr_paid")
    events = j.events(txn)
    with pytest.raises(JournalError, match="unknown transaction state 'void_requested'"):
        j.update(txn, "void_requested")
    assert j.get(txn).state == TxnState.COMPLETED and j.events(txn) == events


def test_every_state_is_reachable_and_final_states_match_the_journal():
    for state in TRANSITIONS:
        if state != "created":
            assert path_to(state)[-1] == state
    assert FINAL_STATES == FINAL and FINAL <= set(TRANSITIONS) and set(TRANSITIONS) == set(TxnState)
    assert all(not TRANSITIONS[s] for s in FINAL - {"completed", "declined", "auth_failed"})


def test_migration_from_version_2_keeps_rows_and_stamps_the_batch(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for migration in MIGRATIONS[:2]:
            db.executescript(migration)
        db.execute("UPDATE counter SET value = 4 WHERE name = 'batch'")
        db.execute("INSERT INTO txn (state, order_id, iccid, msisdn, plan_id, plan_name, amount_minor, fee_minor,"
                   " channel, cashier_id, created_at, updated_at) VALUES ('completed','O9','8986','1064','P','p',"
                   "100,0,'card','01','2026-12-01T10:00:00.000','2026-12-01T10:00:00.000')")
        db.execute("PRAGMA user_version = 2")
    j = Journal(path)
    assert j._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 3
    assert j.all_transactions()[0].order_id == "O9" and j.current_batch() == 4
    with j.transaction() as db:
        assert db.execute("SELECT batch FROM txn").fetchone()[0] == 4
        assert db.execute("SELECT count(*) FROM batch").fetchone()[0] == 0
    assert j.get(_begin(j, "O10")).state == "created"
