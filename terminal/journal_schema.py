"""The journal's schema as data: its migrations, in order (DDL text only; ``terminal.journal`` runs them).

This module executes nothing: it is the journal's schema kept apart so that ``terminal/journal.py`` (the one module
that talks to SQLite) stays readable. ``tests/lint/test_sql_only_in_journal.py`` allows DDL here and checks that
no statement is executed outside ``terminal/journal.py``. Migration 6 adds the integrity chain
(``terminal.journal_chain``): one entry per row written, in the row's own commit. Migration 7 keeps each
payment's POS entry mode, which its reversal quotes. ``COLUMNS`` are added at open, not by a migration (the
plan's Chinese name, so every receipt names the plan in its own language).

>>> len(MIGRATIONS), [column for _, column, _ in COLUMNS]
(7, ['plan_name_zh'])
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SEALED", "CHECKED", "INDEXES", "COLUMNS", "BREAKING", "FORMAT"]

MIGRATIONS: tuple[str, ...] = (
    # 1: transactions, their event history, persistent counters
    """CREATE TABLE txn (
        txn_id INTEGER PRIMARY KEY AUTOINCREMENT,
        state TEXT NOT NULL, order_id TEXT NOT NULL UNIQUE, iccid TEXT NOT NULL, msisdn TEXT NOT NULL,
        plan_id TEXT NOT NULL, plan_name TEXT NOT NULL, amount_minor INTEGER NOT NULL,
        fee_minor INTEGER NOT NULL, channel TEXT NOT NULL, cashier_id TEXT NOT NULL, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, stan INTEGER, masked_pan TEXT, response_code TEXT, auth_code TEXT, rrn TEXT,
        auth_time TEXT, topup_status TEXT, balance_after_minor INTEGER, reversal TEXT, reversal_stan INTEGER,
        message TEXT, receipt TEXT);
    CREATE TABLE txn_event (event_id INTEGER PRIMARY KEY AUTOINCREMENT,
        txn_id INTEGER NOT NULL REFERENCES txn(txn_id), at TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL);
    CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counter VALUES ('stan', 0), ('invoice', 0), ('batch', 1);
    CREATE INDEX txn_state ON txn(state);""",
    # 2: cashiers and their scrypt password hashes
    """CREATE TABLE users (user_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, pw_hash TEXT NOT NULL,
        failed INTEGER NOT NULL DEFAULT 0, locked_until TEXT);""",
    # 3: each transaction remembers its settlement batch; closed batches with their totals
    """ALTER TABLE txn ADD COLUMN batch INTEGER;
    UPDATE txn SET batch = (SELECT value FROM counter WHERE name = 'batch');
    CREATE TABLE batch (batch INTEGER PRIMARY KEY, closed_at TEXT NOT NULL, sale_count INTEGER NOT NULL,
        sale_minor INTEGER NOT NULL, void_count INTEGER NOT NULL, void_minor INTEGER NOT NULL,
        uploaded INTEGER NOT NULL, report TEXT NOT NULL);""",
    # 4: store-and-forward queue of advices (flows.saf; the PAN only sealed, never in clear); refund STANs
    """CREATE TABLE saf (saf_id INTEGER PRIMARY KEY AUTOINCREMENT, txn_id INTEGER NOT NULL REFERENCES txn(txn_id),
        kind TEXT NOT NULL, stan INTEGER NOT NULL, amount_minor INTEGER NOT NULL, masked_pan TEXT NOT NULL,
        pan_sealed BLOB NOT NULL, expiry TEXT NOT NULL, pan_sequence TEXT, icc_data BLOB NOT NULL,
        local_time TEXT NOT NULL, auth_code TEXT NOT NULL, batch INTEGER NOT NULL, status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, last_try_at TEXT, response_code TEXT,
        message TEXT);
    CREATE INDEX saf_status ON saf(status);
    ALTER TABLE txn ADD COLUMN refund_stan INTEGER;""",
    # 5: the append-only audit log (triggers refuse UPDATE and DELETE) and supervisor-changed settings
    """CREATE TABLE IF NOT EXISTS audit (audit_id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
        user_id TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);
    CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    CREATE TABLE IF NOT EXISTS terminal_setting (key TEXT PRIMARY KEY, value INTEGER NOT NULL);""",
    # 6: the integrity chain (terminal.journal_chain): one entry per row written, in the row's own commit
    """CREATE TABLE chain (generation INTEGER NOT NULL, seq INTEGER NOT NULL, tbl TEXT NOT NULL,
        ref INTEGER NOT NULL, digest BLOB NOT NULL, mac BLOB NOT NULL, PRIMARY KEY (generation, seq));""",
    # 7: the POS entry mode (field 22) the 0200 went with: its reversal must quote the same (flows.reversal)
    """ALTER TABLE txn ADD COLUMN entry_mode TEXT;""",
)
SCHEMA_VERSION = len(MIGRATIONS)
# The migrations a build without them cannot live with (terminal/journal_open.py): each raises PRAGMA user_version,
# "the oldest schema that can read and write this journal". Every one up to 7 counts (the builds until then compare
# user_version alone). A later migration joins only when an older build would misread or miswrite the journal
# with it (a changed meaning, a NOT NULL column without a default, a renamed table); a nullable column read by name,
# a new table or index an older build never touches does not, so an image rolled back across it still starts.
BREAKING = frozenset(range(1, 8))
# the table that records the migrations run (name 'schema'), made at open when missing (sealed with the schema)
FORMAT = ("journal_format", "CREATE TABLE journal_format (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
# the tables whose every row is sealed in the journal's chain (terminal.journal_chain), in sealing order
SEALED = ("txn", "txn_event", "counter", "users", "batch", "saf", "audit", "terminal_setting", FORMAT[0])
# ... and what the seals are checked over: those rows and the schema itself (a flipped byte in a column's name in
# sqlite_master leaves every row intact and every row unreadable). The schema changes only in migrations, which
# seal it anew.
CHECKED = (*SEALED, "sqlite_master")
# Indexes for the named queries, created at every open (``IF NOT EXISTS``) and not a migration: they change no
# row and no column, so the schema version stays and an image rolled back to the build before still opens the
# journal (it refuses a newer version). Each is sealed like the rest of the schema (``sqlite_master``) in the
# commit that creates it. ``txn_sim``: one SIM's rows (the daily spending check, the duplicate guard) without
# reading the whole table.
INDEXES = (("txn_sim", "CREATE INDEX txn_sim ON txn(iccid)"),)
# Columns added at open when missing, not by a migration (as INDEXES): nullable and read by name, so an image rolled
# back to the build before still opens the journal (its queries name their columns and its row decoding ignores one
# it does not know), where a newer schema version would stop it (JournalTooNew). The commit that adds one reseals
# that table's rows (a row's digest covers every column) and its schema entry. (table, column, DDL):
# ``txn.plan_name_zh``: the plan's Chinese name (the carrier's ``name_zh``), for receipts in Chinese
# (``flows.receipt.plan_name_in``).
COLUMNS = (("txn", "plan_name_zh", "ALTER TABLE txn ADD COLUMN plan_name_zh TEXT"),)
