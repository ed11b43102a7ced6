"""Columns added at open (``journal_schema.COLUMNS``: the plan's Chinese name), not by a migration: a journal of the
build before gains the column with its seals intact, and the schema version stays, so an image rolled back to the
build before still opens the journal (a newer version would stop it: JournalTooNew). Real SQLite files."""

from __future__ import annotations

import sqlite3

import pytest

from flows.txn_state import path_to
from terminal import journal as journal_module
from terminal import journal_open
from terminal.journal import SCHEMA_VERSION, Journal


def _sale(j: Journal, order: str, **zh: str) -> int:
    txn = j.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="D1G-1M",
                  plan_name="1 GB monthly data", amount_minor=1000, fee_minor=0, channel="card", cashier_id="01", **zh)
    for step in path_to("completed"):
        j.update(txn, step)
    return txn


def _old_sale(j: Journal, order: str) -> int:
    """A sale as the build before writes it: its INSERT does not name the column (sealed by the journal's own
    commit, as every write)."""
    with j.transaction() as db:
        cur = db.execute("INSERT INTO txn (state, order_id, iccid, msisdn, plan_id, plan_name, amount_minor,"
                         " fee_minor, channel, cashier_id, created_at, updated_at, batch) VALUES ('completed', ?,"
                         " '8986', '1064', 'D1G-1M', '1 GB monthly data', 1000, 0, 'card', '01', 't', 't', 1)",
                         (order,))
    return int(cur.lastrowid or 0)


def _columns(path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[1] for row in db.execute("PRAGMA table_info(txn)")]


def test_a_journal_of_the_build_before_gains_the_column_with_its_seals_intact(tmp_path, monkeypatch):
    path, key = tmp_path / "journal.db", b"k" * 32
    with monkeypatch.context() as before:  # the build before: no such column
        before.setattr(journal_open, "COLUMNS", ())
        old = Journal(path, chain_key=key)
        first = _old_sale(old, "O1")
        assert old.verify() is None
        old.close()
    assert "plan_name_zh" not in _columns(path)
    j = Journal(path, chain_key=key)
    assert "plan_name_zh" in _columns(path) and j.damage is None and j.verify() is None
    assert j.schema_version() == SCHEMA_VERSION == 7  # not a migration: the version the build before knows
    assert j.get(first).plan_name_zh is None  # a sale from before: no Chinese name (receipts show the plan id)
    second = _sale(j, "O2", plan_name_zh="1GB 月包")
    assert j.get(second).plan_name_zh == "1GB 月包"
    j.close()
    again = Journal(path, chain_key=key)  # opened again: nothing to add, nothing found
    assert again.damage is None and again.verify() is None and again.get(second).plan_name_zh == "1GB 月包"
    again.close()


def test_the_build_before_still_opens_a_journal_with_the_column(tmp_path, monkeypatch):
    """The image rolled back after a trial of this build: its journal has the extra column and the same schema
    version; the build before opens it, finds nothing wrong, and goes on selling."""
    path, key = tmp_path / "journal.db", b"k" * 32
    j = Journal(path, chain_key=key)
    _sale(j, "O1", plan_name_zh="1GB 月包")
    j.close()
    monkeypatch.setattr(journal_open, "COLUMNS", ())
    rolled_back = Journal(path, chain_key=key)
    assert rolled_back.damage is None and rolled_back.verify() is None
    assert _old_sale(rolled_back, "O2") == 2 and rolled_back.verify() is None
    assert rolled_back.get(1).plan_name_zh == "1GB 月包"  # (this build's decoding; the old one ignores it)
    rolled_back.close()


def test_a_newer_schema_version_is_still_refused(tmp_path):
    path = tmp_path / "journal.db"
    Journal(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(journal_module.JournalError, match="newer"):
        Journal(path)


def test_a_row_changed_behind_the_journal_before_the_column_is_added_is_still_found(tmp_path, monkeypatch):
    """Adding the column reseals the table's rows only when they were intact: a row changed behind the journal's
    back is never laundered by the upgrade — the open finds it (broken), as it would have without the column."""
    path, key = tmp_path / "journal.db", b"k" * 32
    with monkeypatch.context() as before:
        before.setattr(journal_open, "COLUMNS", ())
        old = Journal(path, chain_key=key)
        _old_sale(old, "O1")
        old.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE txn SET amount_minor = 1 WHERE order_id = 'O1'")
    j = Journal(path, chain_key=key)
    assert j.damage is not None and j.damage.kind == "broken" and j.damage.row == "txn 1"
    assert "plan_name_zh" in _columns(path)
    j.close()
