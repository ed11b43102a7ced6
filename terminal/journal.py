"""The transaction journal: SQLite in WAL mode with ``synchronous=FULL``, schema versioned by migrations.

Every state change of a transaction is one SQL transaction that updates the row and appends an event, so the
journal is durable before the external step it announces. Counters (STAN, invoice) live in the same database and
advance in the same way, so a power cut never reuses a trace number. Only masked PANs are ever written.

>>> j = Journal(":memory:")
>>> j.next_stan(), j.next_stan()
(1, 2)
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

from flows import txn_state
from flows.ports import BatchTotals, TxnRecord
from flows.saf import SafRow
from pos_errors import PosError
from terminal.journal_support import now as _now
from terminal.journal_support import statements as _statements
from terminal.secret_file import create_private

__all__ = ["Journal", "JournalError", "FINAL_STATES", "SCHEMA_VERSION", "SafRow"]

FINAL_STATES = txn_state.FINAL

MIGRATIONS: tuple[str, ...] = (
    # 1: transactions, their event history, persistent counters
    """
    CREATE TABLE txn (
        txn_id INTEGER PRIMARY KEY AUTOINCREMENT,
        state TEXT NOT NULL, order_id TEXT NOT NULL UNIQUE, iccid TEXT NOT NULL, msisdn TEXT NOT NULL,
        plan_id TEXT NOT NULL, plan_name TEXT NOT NULL, amount_minor INTEGER NOT NULL,
        fee_minor INTEGER NOT NULL, channel TEXT NOT NULL, cashier_id TEXT NOT NULL, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, stan INTEGER, masked_pan TEXT, response_code TEXT, auth_code TEXT, rrn TEXT,
        auth_time TEXT, topup_status TEXT, balance_after_minor INTEGER, reversal TEXT, reversal_stan INTEGER,
        message TEXT, receipt TEXT);
    CREATE TABLE txn_event (
        event_id INTEGER PRIMARY KEY AUTOINCREMENT, txn_id INTEGER NOT NULL REFERENCES txn(txn_id),
        at TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL);
    CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counter VALUES ('stan', 0), ('invoice', 0), ('batch', 1);
    CREATE INDEX txn_state ON txn(state);
    """,
    # 2: cashiers and their scrypt password hashes
    """
    CREATE TABLE users (
        user_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, pw_hash TEXT NOT NULL,
        failed INTEGER NOT NULL DEFAULT 0, locked_until TEXT);
    """,
    # 3: each transaction remembers its settlement batch; closed batches with their totals
    """
    ALTER TABLE txn ADD COLUMN batch INTEGER;
    UPDATE txn SET batch = (SELECT value FROM counter WHERE name = 'batch');
    CREATE TABLE batch (
        batch INTEGER PRIMARY KEY, closed_at TEXT NOT NULL, sale_count INTEGER NOT NULL,
        sale_minor INTEGER NOT NULL, void_count INTEGER NOT NULL, void_minor INTEGER NOT NULL,
        uploaded INTEGER NOT NULL, report TEXT NOT NULL);
    """,
    # 4: store-and-forward queue of advices (flows.saf); the PAN only sealed (AES-GCM), never in clear.
    #    Refunds remember their own STAN on the original row.
    """
    CREATE TABLE saf (
        saf_id INTEGER PRIMARY KEY AUTOINCREMENT, txn_id INTEGER NOT NULL REFERENCES txn(txn_id),
        kind TEXT NOT NULL, stan INTEGER NOT NULL, amount_minor INTEGER NOT NULL, masked_pan TEXT NOT NULL,
        pan_sealed BLOB NOT NULL, expiry TEXT NOT NULL, pan_sequence TEXT, icc_data BLOB NOT NULL,
        local_time TEXT NOT NULL, auth_code TEXT NOT NULL, batch INTEGER NOT NULL, status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, last_try_at TEXT, response_code TEXT,
        message TEXT);
    CREATE INDEX saf_status ON saf(status);
    ALTER TABLE txn ADD COLUMN refund_stan INTEGER;
    """,
    # 5: the append-only audit log (triggers refuse UPDATE and DELETE) and supervisor-changed settings
    """
    CREATE TABLE IF NOT EXISTS audit (
        audit_id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, user_id TEXT NOT NULL,
        action TEXT NOT NULL, detail TEXT NOT NULL);
    CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    CREATE TABLE IF NOT EXISTS terminal_setting (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = frozenset(f.name for f in fields(TxnRecord)) - {"txn_id", "state"}


class JournalError(PosError):
    """The journal cannot be opened or written; the terminal must not sell."""


class Journal:
    """Implements ``flows.ports.JournalPort``. Thread-safe: one connection guarded by a lock."""

    def __init__(self, path: str | Path, *, crash_point: Callable[[str], None] | None = None) -> None:
        self.path = str(path)
        self._crash_point = crash_point or (lambda _name: None)  # after every COMMIT; wired by the composition root
        if self.path != ":memory:":
            create_private(Path(self.path))  # 0600 in a 0700 directory; the -wal and -shm files take its mode
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA secure_delete=ON")  # overwritten content is zeroed, not left in free pages
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._migrate()

    @classmethod
    def read_only(cls, path: str | Path) -> Journal:
        """An existing journal opened for reading only (``pos-terminal --status``): no migration, no write."""
        journal = cls.__new__(cls)
        journal.path, journal._crash_point, journal._lock = str(path), (lambda _name: None), threading.RLock()
        try:
            journal._db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True,
                                          check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {path}: {exc}") from exc
        return journal

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable unit of work (BEGIN IMMEDIATE … COMMIT)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise JournalError(f"journal write failed: {exc}") from exc
            self._crash_point("commit")

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(f"journal schema {version} is newer than this build ({SCHEMA_VERSION})")
            for number in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[number]):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _bump(self, name: str, wrap: int | None = None) -> int:
        with self.transaction() as db:
            value = db.execute("SELECT value FROM counter WHERE name = ?", (name,)).fetchone()[0] + 1
            if wrap is not None and value > wrap:
                value = 1
            db.execute("UPDATE counter SET value = ? WHERE name = ?", (value, name))
            return int(value)

    def next_stan(self) -> int:
        return self._bump("stan", wrap=999999)

    def current_batch(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT value FROM counter WHERE name = 'batch'").fetchone()[0])

    def close_batch(self, totals: BatchTotals, *, uploaded: bool, report: str) -> int:
        """Record ``totals.batch`` as closed and start the next batch in one commit; returns the new number."""
        with self.transaction() as db:
            current = db.execute("SELECT value FROM counter WHERE name = 'batch'").fetchone()[0]
            if current != totals.batch:
                raise JournalError(f"batch {totals.batch} is not the open batch ({current})")
            db.execute("INSERT INTO batch VALUES (?,?,?,?,?,?,?,?)",
                       (totals.batch, _now(), totals.sale_count, totals.sale_minor, totals.void_count,
                        totals.void_minor, int(uploaded), report))
            new = current % 999999 + 1
            db.execute("UPDATE counter SET value = ? WHERE name = 'batch'", (new,))
        return int(new)

    def last_closed_batch(self) -> tuple[int, str, int, int, bool] | None:
        """(batch, closed_at, sale_count, sale_minor, uploaded) of the newest closed batch."""
        with self._lock:
            row = self._db.execute("SELECT batch, closed_at, sale_count, sale_minor, uploaded FROM batch"
                                   " ORDER BY closed_at DESC, batch DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]), int(row[2]), int(row[3]), bool(row[4]))

    def batch_records(self, batch: int) -> list[TxnRecord]:
        return self._select("batch = ?", (batch,))

    def next_order_id(self, terminal_id: str, now: dt.datetime) -> str:
        invoice = self._bump("invoice", wrap=999999)
        return f"{terminal_id}{now:%y%m%d%H%M%S}{invoice:06d}"

    def begin(self, *, order_id: str, iccid: str, msisdn: str, plan_id: str, plan_name: str,
              amount_minor: int, fee_minor: int, channel: str, cashier_id: str) -> int:
        now = _now()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO txn (state, order_id, iccid, msisdn, plan_id, plan_name, amount_minor, fee_minor,"
                " channel, cashier_id, created_at, updated_at, batch) VALUES ('created',?,?,?,?,?,?,?,?,?,?,?,"
                " (SELECT value FROM counter WHERE name = 'batch'))",
                (order_id, iccid, msisdn, plan_id, plan_name, amount_minor, fee_minor, channel, cashier_id,
                 now, now))
            txn_id = int(cur.lastrowid or 0)
            db.execute("INSERT INTO txn_event (txn_id, at, state, detail) VALUES (?,?,?,?)",
                       (txn_id, now, "created", f"order {order_id}"))
        return txn_id

    def update(self, txn_id: int, state: str, **values: object) -> None:
        unknown = set(values) - _COLUMNS
        if unknown:
            raise JournalError(f"journal has no column(s) {sorted(unknown)}")
        now = _now()
        assignments = "".join(f", {name} = ?" for name in values)
        detail = ", ".join(f"{k}={v}" for k, v in values.items() if k != "receipt")
        with self.transaction() as db:
            row = db.execute("SELECT state FROM txn WHERE txn_id = ?", (txn_id,)).fetchone()
            if row is None:
                raise JournalError(f"no transaction {txn_id}")
            try:
                state = txn_state.check(row[0], state)
            except txn_state.IllegalTransition as exc:
                raise JournalError(f"transaction {txn_id}: {exc}") from exc
            db.execute(f"UPDATE txn SET state = ?, updated_at = ?{assignments} WHERE txn_id = ?",  # noqa: S608
                       (state, now, *values.values(), txn_id))
            db.execute("INSERT INTO txn_event (txn_id, at, state, detail) VALUES (?,?,?,?)",
                       (txn_id, now, state, detail))

    def get(self, txn_id: int) -> TxnRecord:
        rows = self._select("txn_id = ?", (txn_id,))
        if not rows:
            raise JournalError(f"no transaction {txn_id}")
        return rows[0]

    def _select(self, where: str = "1=1", params: tuple[object, ...] = ()) -> list[TxnRecord]:
        with self._lock:
            self._db.row_factory = sqlite3.Row
            rows = self._db.execute(f"SELECT * FROM txn WHERE {where} ORDER BY txn_id", params).fetchall()  # noqa: S608
            self._db.row_factory = None
        names = [f.name for f in fields(TxnRecord)]
        return [TxnRecord(**{name: row[name] for name in names}) for row in rows]

    # --- named queries (the only ways to read transactions; no SQL from outside this module) -------------------

    def all_transactions(self) -> list[TxnRecord]:
        """Every transaction, oldest first (tests, the simulator, benches)."""
        return self._select()

    def open_transactions(self) -> list[TxnRecord]:
        marks = ",".join("?" * len(FINAL_STATES))
        return self._select(f"state NOT IN ({marks})", tuple(sorted(FINAL_STATES)))

    def for_sim_since(self, iccid: str, since: str) -> list[TxnRecord]:
        """This SIM's transactions created at or after ``since`` (ISO time), oldest first (the duplicate guard)."""
        return self._select("iccid = ? AND created_at >= ?", (iccid, since))

    def for_sim_on(self, iccid: str, day: str) -> list[TxnRecord]:
        """This SIM's transactions created on ``day`` (``YYYY-MM-DD``), oldest first (the daily spending check)."""
        return self._select("iccid = ? AND substr(created_at, 1, 10) = ?", (iccid, day))

    def last_transaction(self) -> TxnRecord | None:
        """The newest transaction, if any (the clock check: time must not run backwards past it)."""
        rows = self._select("txn_id = (SELECT MAX(txn_id) FROM txn)")
        return rows[0] if rows else None

    def search(self, *, sim_tail: str = "", amount_minor: int | None = None, day: str = "", channel: str = "",
               cashier_id: str = "") -> list[TxnRecord]:
        """History search, oldest first; every given field narrows it. ``amount_minor`` matches the total paid
        (amount + fee) or the plan amount; ``day`` is ``YYYY-MM-DD``."""
        conditions = (("(iccid LIKE ? OR msisdn LIKE ?)", (f"%{sim_tail}",) * 2, sim_tail),
                      ("(amount_minor + fee_minor = ? OR amount_minor = ?)", (amount_minor,) * 2,
                       amount_minor is not None),
                      ("substr(created_at, 1, 10) = ?", (day,), day), ("channel = ?", (channel,), channel),
                      ("cashier_id = ?", (cashier_id,), cashier_id))
        where = ["1=1", *(sql for sql, _, given in conditions if given)]
        params = [value for _, values, given in conditions if given for value in values]
        return self._select(" AND ".join(where), tuple(params))

    def events(self, txn_id: int) -> list[tuple[str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT state, detail FROM txn_event WHERE txn_id = ? ORDER BY event_id",
                                    (txn_id,)).fetchall()
        return [(r[0], r[1]) for r in rows]

    # --- store-and-forward queue (flows.saf) -------------------------------------------------------------------

    def saf_offline_approved(self, txn_id: int, row: SafRow) -> int:
        """One commit: the advice is queued and the transaction becomes ``paid`` with the advice's STAN."""
        now = _now()
        with self.transaction() as db:
            state = db.execute("SELECT state FROM txn WHERE txn_id = ?", (txn_id,)).fetchone()
            if state is None or not txn_state.allowed(state[0], "paid"):
                raise JournalError(f"transaction {txn_id} cannot be paid offline from {state}")
            cur = db.execute(
                "INSERT INTO saf (txn_id, kind, stan, amount_minor, masked_pan, pan_sealed, expiry, pan_sequence,"
                " icc_data, local_time, auth_code, batch, status, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,"
                " (SELECT value FROM counter WHERE name = 'batch'),'queued',?)",
                (txn_id, row.kind, row.stan, row.amount_minor, row.masked_pan, row.pan_sealed, row.expiry,
                 row.pan_sequence, row.icc_data, row.local_time, row.auth_code, now))
            db.execute("UPDATE txn SET state = 'paid', updated_at = ?, stan = ?, masked_pan = ?, auth_code = ?,"
                       " auth_time = ?, response_code = 'Y1', reversal = NULL WHERE txn_id = ?",
                       (now, row.stan, row.masked_pan, row.auth_code, row.local_time, txn_id))
            db.execute("INSERT INTO txn_event (txn_id, at, state, detail) VALUES (?,?,?,?)",
                       (txn_id, now, "paid", f"approved offline, advice stan={row.stan} queued"))
            return int(cur.lastrowid or 0)

    def saf_items(self, statuses: tuple[str, ...] = ("queued",)) -> list[SafRow]:
        marks = ",".join("?" * len(statuses))
        with self._lock:
            self._db.row_factory = sqlite3.Row
            rows = self._db.execute(f"SELECT * FROM saf WHERE status IN ({marks}) ORDER BY saf_id",  # noqa: S608
                                    statuses).fetchall()
            self._db.row_factory = None
        names = [f.name for f in fields(SafRow)]
        return [SafRow(**{name: row[name] for name in names}) for row in rows]

    def saf_update(self, saf_id: int, status: str, *, tries: int = 0, response_code: str | None = None,
                   message: str | None = None) -> None:
        """``tries``: added to the advice's attempt count (+1 before a send; -1 takes back one never sent)."""
        done = status in ("sent", "cancelled", "expired")  # the sealed PAN is never needed again: erased
        with self.transaction() as db:
            db.execute("UPDATE saf SET status = ?, attempts = attempts + ?, last_try_at = COALESCE(?, last_try_at),"
                       " response_code = COALESCE(?, response_code), message = COALESCE(?, message),"
                       " pan_sealed = CASE WHEN ? THEN X'' ELSE pan_sealed END WHERE saf_id = ?",
                       (status, tries, _now() if tries > 0 else None, response_code, message, done, saf_id))
        if done and self.path != ":memory:":  # the PAN is erased: no old page keeps it in the WAL
            with self._lock:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # --- users, audit log and settings (their rules live in terminal/users.py, audit.py, settings_store.py) -----

    def user_add(self, user_id: str, name: str, role: str, pw_hash: str) -> bool:
        """Add a user; False (and nothing changed) when the id exists."""
        with self.transaction() as db:
            cur = db.execute("INSERT OR IGNORE INTO users (user_id, name, role, pw_hash) VALUES (?,?,?,?)",
                             (user_id, name, role, pw_hash))
            return cur.rowcount == 1

    def user_rows(self, user_id: str | None = None) -> list[tuple[str, str, str, str, int, str | None]]:
        """(user_id, name, role, pw_hash, failed, locked_until) of one user or of all, by id."""
        where, params = ("WHERE user_id = ?", (user_id,)) if user_id is not None else ("", ())
        with self._lock:
            return self._db.execute("SELECT user_id, name, role, pw_hash, failed, locked_until FROM users "
                                    f"{where} ORDER BY user_id", params).fetchall()  # noqa: S608

    def user_update(self, user_id: str, **values: object) -> bool:
        """Set some of ``name, role, pw_hash, failed, locked_until``; False when there is no such user."""
        unknown = set(values) - {"name", "role", "pw_hash", "failed", "locked_until"}
        if unknown or not values:
            raise JournalError(f"users have no column(s) {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self.transaction() as db:
            cur = db.execute(f"UPDATE users SET {assignments} WHERE user_id = ?",  # noqa: S608
                             (*values.values(), user_id))
            return cur.rowcount == 1

    def audit_append(self, at: str, user_id: str, action: str, detail: str) -> int:
        with self.transaction() as db:
            cur = db.execute("INSERT INTO audit (at, user_id, action, detail) VALUES (?,?,?,?)",
                             (at, user_id, action, detail))
            return int(cur.lastrowid or 0)

    def audit_rows(self, limit: int, action: str | None = None) -> list[tuple[int, str, str, str, str]]:
        """(audit_id, at, user_id, action, detail), newest first."""
        where, params = ("WHERE action = ?", (action,)) if action else ("", ())
        with self._lock:
            return self._db.execute(f"SELECT audit_id, at, user_id, action, detail FROM audit {where} "  # noqa: S608
                                    "ORDER BY audit_id DESC LIMIT ?", (*params, limit)).fetchall()

    def settings(self) -> dict[str, int]:
        with self._lock:
            return {key: int(value) for key, value in
                    self._db.execute("SELECT key, value FROM terminal_setting").fetchall()}

    def setting_put(self, key: str, value: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO terminal_setting (key, value) VALUES (?, ?)", (key, value))

    def check_integrity(self) -> bool:
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        with self._lock:
            self._db.close()
