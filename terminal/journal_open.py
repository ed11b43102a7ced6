"""The journal at open: the connection and its pragmas, then the schema's life cycle — migrations, forward
compatibility, indexes and columns added at open (split off ``terminal/journal.py``, which keeps the rows).

Two numbers describe a journal's schema, as SQLite's own file format keeps a read and a write version beside
its content:

============================  ==================================================================================
``journal_format.schema``     the migrations that have run (``journal_schema.MIGRATIONS``); a journal without the
                              table (written before it existed) is at ``PRAGMA user_version``
``PRAGMA user_version``       the oldest schema a build must have to read **and write** this journal: raised only
                              by a migration an older build cannot live with (``journal_schema.BREAKING``: every
                              migration up to 7, because the builds until then compare this number alone)
============================  ==================================================================================

A build whose ``SCHEMA_VERSION`` is at least ``user_version`` opens the journal, even one a newer build migrated
further (an image rolled back by MCUboot's revert after a trial of the newer one): it runs no migration, lowers
neither number, and its rows simply leave the newer build's nullable columns empty. A build older than
``user_version`` refuses to start (``JournalTooNew``) and changes nothing. Before any migration of a chained
journal (schema 6 and later) every seal is checked: a broken chain stops the migration (``MigrationStopped``,
nothing changed) instead of resealing — laundering — a row changed behind the journal's back. The build before
then opens the journal at its own schema and takes the damage the usual way (kept copy, out-of-service notice).

``tests/lint/test_sql_only_in_journal.py`` lets this module and ``terminal/journal.py`` (no other) execute
statements; the migrations themselves are data in ``journal_schema``.

>>> compatible_from(7), compatible_from(9, frozenset({1, 2, 8}))
(7, 8)
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from terminal.journal_rows import JournalError, JournalTooNew, lenient_text, statements
from terminal.journal_schema import BREAKING, CHECKED, COLUMNS, FORMAT, INDEXES, MIGRATIONS, SCHEMA_VERSION, SEALED

if TYPE_CHECKING:
    from terminal.journal import Journal

__all__ = ["MigrationStopped", "compatible_from", "connect", "migrate", "schema_level"]

CHAINED_FROM = 6  # the migration that added the seal chain: journals from it on are checked before migrating
log = logging.getLogger("terminal.journal")


class MigrationStopped(JournalError):
    """A migration was due but the journal's chain does not verify: nothing migrated, nothing resealed."""


def connect(journal: Journal, *, read_only: bool = False) -> None:
    """(Re)connect ``journal`` to its file: WAL, ``synchronous=FULL``, foreign keys, overwritten content zeroed;
    0600 files in a 0700 directory. ``read_only``: ``pos-terminal --status`` beside the running terminal."""
    journal._counted = None  # the counters as last committed (None: read them again at the next COMMIT)
    journal._columns = {}  # table → its columns (``Journal._names``); emptied by every migration
    journal._chained = False  # the journal had a chain before this open (``migrate`` finds out)
    try:
        journal._db = sqlite3.connect(f"{Path(journal.path).resolve().as_uri()}?mode=ro" if read_only else
                                      journal.path, uri=read_only, check_same_thread=False, isolation_level=None)
        journal._db.text_factory = lenient_text
        for pragma in () if read_only else ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                                            "secure_delete=ON"):  # overwritten content is zeroed
            journal._db.execute(f"PRAGMA {pragma}")
        journal.files.make_private(read_only)  # 0600 (with -wal, -shm) in a 0700 directory
    except sqlite3.Error as exc:
        raise JournalError(f"cannot open journal {journal.path}: {exc}") from exc


def compatible_from(level: int, breaking: frozenset[int] = BREAKING) -> int:
    """``user_version`` for a journal migrated to ``level``: the newest migration an older build cannot live with."""
    return max((n for n in breaking if n <= level), default=0)


def schema_level(journal: Journal) -> tuple[int, int]:
    """(migrations run, oldest schema that can read and write it) of the open journal."""
    required = int(journal._db.execute("PRAGMA user_version").fetchone()[0])
    if not journal._rows("sqlite_master", "type = 'table' AND name = ?", (FORMAT[0],)):
        return required, required
    row = journal._db.execute("SELECT value FROM journal_format WHERE name = 'schema'").fetchone()
    if row is not None and (type(row[0]) is not int):  # a damaged byte: damage (JournalError), never a crash
        raise JournalError(f"journal_format schema unreadable: {row[0]!r}")
    return (required if row is None else max(required, row[0])), required


def migrate(journal: Journal, *, check: bool = True) -> None:
    """Run the missing migrations (every row then sealed anew); note whether the journal was chained before.
    ``check=False``: damage already found and kept (``journal_damage.take_damage``), so no check before."""
    db = journal._db
    db.execute("CREATE TEMP TABLE IF NOT EXISTS written (tbl TEXT NOT NULL, ref INTEGER NOT NULL)")
    with journal.transaction():
        level, required = schema_level(journal)
        if required > SCHEMA_VERSION:
            raise JournalTooNew(f"journal schema {level} is newer than this build ({SCHEMA_VERSION}) and needs"
                                f" a build of schema {required} or later to read and write it")
        if check and CHAINED_FROM <= level < SCHEMA_VERSION:
            journal._resume()
            if (found := journal.verify()) is not None:
                raise MigrationStopped(f"journal seals broken before migration {level + 1} ({found.detail}):"
                                       " nothing migrated or resealed; start the build before to take the damage")
        for number in range(level, SCHEMA_VERSION):
            for statement in statements(MIGRATIONS[number]):
                db.execute(statement)
        new = [name for name, sql in (*INDEXES, FORMAT) if not journal._rows(
            "sqlite_master", "name = ?", (name,)) and db.execute(sql)]  # not migrations: sealed with the schema
        if level < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {max(required, compatible_from(SCHEMA_VERSION, BREAKING))}")
        elif level > SCHEMA_VERSION:
            log.warning("journal schema %d is newer than this build (%d); opened: readable and writable from %d",
                        level, SCHEMA_VERSION, required)
        for table in SEALED:  # note every row this connection writes; the commit seals them
            for op in ("INSERT", "UPDATE"):
                db.execute(f"CREATE TEMP TRIGGER IF NOT EXISTS seal_{table}_{op} AFTER {op} ON main.{table}"
                           f" BEGIN INSERT INTO written VALUES ('{table}', NEW.rowid); END")
        db.execute("INSERT INTO journal_format VALUES ('schema', ?) ON CONFLICT (name) DO UPDATE SET"
                   " value = excluded.value WHERE excluded.value > value", (SCHEMA_VERSION,))  # never lowered
        journal._resume()  # journal_schema.COLUMNS: a table's rows resealed only when they were intact before
        intact = [t for t, column, _ in COLUMNS if column not in journal._names(t) and journal.verify((t,)) is None]
        grown = [t for t, column, sql in COLUMNS if column not in journal._names(t) and db.execute(sql)]
        journal._columns.clear()
        journal._chained = level >= CHAINED_FROM
        for table in CHECKED if level < SCHEMA_VERSION else intact:  # every row's digest changed
            journal._seal(table)
        if (new or grown) and level >= SCHEMA_VERSION:
            journal._seal("sqlite_master", f"name IN ({','.join('?' * len(new + grown))})", tuple(new + grown))
