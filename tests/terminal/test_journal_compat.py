"""Forward compatibility and checked migrations (terminal/journal_open.py), on real SQLite files.

A "newer build" is this code with one more migration (monkeypatched ``MIGRATIONS`` / ``SCHEMA_VERSION`` /
``BREAKING`` of ``terminal.journal_open``); an "older build" the same with the migrations cut back to 6. Every
journal is written and read by the real ``Journal`` through SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from flows.txn_state import path_to
from terminal import journal_open
from terminal.journal import MIGRATIONS, SCHEMA_VERSION, Journal, JournalError
from terminal.journal_rows import JournalTooNew

KEY = b"k" * 32
EIGHTH = "ALTER TABLE txn ADD COLUMN carrier_ref TEXT;"  # a nullable column read by name: older builds live with it


def _sale(j: Journal, order: str) -> int:
    txn = j.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="D1G-1M",
                  plan_name="1 GB monthly data", amount_minor=1000, fee_minor=0, channel="card", cashier_id="01")
    for step in path_to("completed"):
        j.update(txn, step)
    return txn


def _build(monkeypatch: pytest.MonkeyPatch, migrations: tuple[str, ...], breaking: frozenset[int]) -> None:
    monkeypatch.setattr(journal_open, "MIGRATIONS", migrations)
    monkeypatch.setattr(journal_open, "SCHEMA_VERSION", len(migrations))
    monkeypatch.setattr(journal_open, "BREAKING", breaking)


def _pragma_and_format(path: Path) -> tuple[int, list[tuple[str, int]], list[str]]:
    with sqlite3.connect(path) as db:
        return (db.execute("PRAGMA user_version").fetchone()[0], db.execute("SELECT * FROM journal_format").fetchall(),
                [row[1] for row in db.execute("PRAGMA table_info(txn)")])


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return list(db.iterdump())


def test_a_journal_a_newer_build_migrated_compatibly_opens_here_and_there_again(tmp_path, monkeypatch):
    path = tmp_path / "journal.db"
    with monkeypatch.context() as newer:
        _build(newer, (*MIGRATIONS, EIGHTH), journal_open.BREAKING)
        j = Journal(path, chain_key=KEY)
        _sale(j, "O1")
        j.close()
    assert _pragma_and_format(path)[:2] == (7, [("schema", 8)])  # migrated to 8, readable and writable from 7
    rolled_back = Journal(path, chain_key=KEY)  # this build (7): the image MCUboot reverted to
    assert rolled_back.damage is None and rolled_back.verify() is None and rolled_back.schema_version() == 8
    _sale(rolled_back, "O2")
    rolled_back.close()
    user_version, fmt, columns = _pragma_and_format(path)
    assert (user_version, fmt) == (7, [("schema", 8)]) and "carrier_ref" in columns  # neither number lowered
    with monkeypatch.context() as newer:  # the newer image installed again: nothing to migrate, nothing broken
        _build(newer, (*MIGRATIONS, EIGHTH), journal_open.BREAKING)
        again = Journal(path, chain_key=KEY)
        assert again.damage is None and again.verify() is None
        assert [r.state for r in again.all_transactions()] == ["completed", "completed"]
        with again.transaction() as db:
            assert db.execute("SELECT carrier_ref FROM txn ORDER BY txn_id").fetchall() == [(None,), (None,)]
        again.close()


def test_a_breaking_migration_of_a_newer_build_stops_this_build_and_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "journal.db"
    with monkeypatch.context() as newer:
        _build(newer, (*MIGRATIONS, EIGHTH), journal_open.BREAKING | {8})
        j = Journal(path, chain_key=KEY)
        _sale(j, "O1")
        j.close()
    before = _dump(path)
    with pytest.raises(JournalTooNew, match="needs a build of schema 8 or later"):
        Journal(path, chain_key=KEY)
    assert _dump(path) == before and not Path(f"{path}.hold").exists()


def test_a_journal_of_an_older_schema_is_checked_then_migrated_and_sealed(tmp_path, monkeypatch):
    path = tmp_path / "journal.db"
    with monkeypatch.context() as older:
        _build(older, MIGRATIONS[:6], frozenset(range(1, 7)))
        j = Journal(path, chain_key=KEY)
        _sale(j, "O1")
        j.close()
    assert _pragma_and_format(path)[:2] == (6, [("schema", 6)]) and "entry_mode" not in _pragma_and_format(path)[2]
    j = Journal(path, chain_key=KEY)
    assert j.damage is None and j.verify() is None and j.schema_version() == SCHEMA_VERSION
    assert _pragma_and_format(path)[:2] == (7, [("schema", 7)]) and "entry_mode" in _pragma_and_format(path)[2]
    j.update(_sale(j, "O2"), "completed", entry_mode="051")
    assert j.verify() is None
    j.close()


def test_a_row_changed_behind_an_older_journal_stops_the_migration_and_is_not_laundered(tmp_path, monkeypatch):
    path = tmp_path / "journal.db"
    with monkeypatch.context() as older:
        _build(older, MIGRATIONS[:6], frozenset(range(1, 7)))
        j = Journal(path, chain_key=KEY)
        _sale(j, "O1")
        j.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE txn SET amount_minor = 1 WHERE order_id = 'O1'")  # behind the journal's back
    before = _dump(path)
    with pytest.raises(JournalError, match=r"seals broken before migration 7 \(txn row 1 changed or not sealed\)"):
        Journal(path, chain_key=KEY)
    assert _dump(path) == before and not Path(f"{path}.hold").exists()  # not migrated, not resealed, no notice
    with monkeypatch.context() as older:  # the build before takes the damage the usual way: kept, out of service
        _build(older, MIGRATIONS[:6], frozenset(range(1, 7)))
        rolled_back = Journal(path, chain_key=KEY)
        assert rolled_back.damage is not None and (rolled_back.damage.kind, rolled_back.damage.row) == ("broken",
                                                                                                      "txn 1")
        rolled_back.close()


def test_an_unreadable_schema_number_is_damage_not_a_crash(tmp_path):
    path = tmp_path / "journal.db"
    j = Journal(path, chain_key=KEY)
    _sale(j, "O1")
    j.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE journal_format SET value = 'seven' WHERE name = 'schema'")
    damaged = Journal(path, chain_key=KEY)  # opened: out of service, the damaged file kept for the technician
    assert damaged.damage is not None and damaged.damage.kind == "unreadable" and damaged.damage.kept
    assert "journal_format schema unreadable" in damaged.damage.detail
    damaged.close()


LAST_LEGACY = "4ef0532"  # the last build before journal_format: it compares PRAGMA user_version alone
LEGACY_SALE = """
import sys
from flows.txn_state import path_to
from terminal.journal import Journal
j = Journal(sys.argv[1], chain_key=b"k" * 32)
assert j.damage is None and j.verify() is None, j.damage
txn = j.begin(order_id="LEGACY", iccid="89860424000000000017", msisdn="1064900000001", plan_id="D1G-1M",
              plan_name="1 GB monthly data", amount_minor=1000, fee_minor=0, channel="card", cashier_id="01")
for step in path_to("completed"):
    j.update(txn, step)
assert j.verify() is None
j.close()
"""


def test_the_build_before_this_design_opens_and_writes_a_journal_a_newer_build_migrated(tmp_path, monkeypatch):
    """The real previous build (its code taken from git) is the image a technician rolls back to."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    tree = tmp_path / "legacy"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", LAST_LEGACY, "terminal", "flows", "pos_errors", "emv",
                              "drivers"], capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.skip(f"no git history with {LAST_LEGACY} here")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    path = tmp_path / "journal.db"
    with monkeypatch.context() as newer:
        _build(newer, (*MIGRATIONS, EIGHTH), journal_open.BREAKING)
        j = Journal(path, chain_key=KEY)
        _sale(j, "O1")
        j.close()
    run = subprocess.run([sys.executable, "-c", LEGACY_SALE, str(path)], env={"PYTHONPATH": str(tree)},
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    with monkeypatch.context() as newer:  # and the newer image, installed again, goes on with the legacy's rows
        _build(newer, (*MIGRATIONS, EIGHTH), journal_open.BREAKING)
        again = Journal(path, chain_key=KEY)
        assert again.damage is None and again.verify() is None
        assert [r.order_id for r in again.all_transactions()] == ["O1", "LEGACY"]
        again.close()
