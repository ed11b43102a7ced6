"""The transaction journal: SQLite (WAL, ``synchronous=FULL``), rows sealed in a keyed hash chain at each COMMIT
(grouped: docs/money-safety.md) and checked at open against the high-water record (``journal_chain``, ``_files``).
>>> Journal(":memory:").next_stan(), Journal(":memory:").verify()
(1, None)
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from flows import txn_state
from flows.ports import BatchTotals, TxnRecord
from flows.saf import SafRow
from terminal.journal_chain import Chain, Damage
from terminal.journal_damage import accept_damage, check_integrity, open_checked
from terminal.journal_files import JournalFiles
from terminal.journal_open import connect, migrate, schema_level
from terminal.journal_rows import JournalError, decode_all, group_rowids, lenient_text, txn_move
from terminal.journal_rows import now as _now
from terminal.journal_schema import CHECKED, FORMAT, MIGRATIONS, SCHEMA_VERSION, SEALED

__all__ = ["Journal", "JournalError", "FINAL_STATES", "MIGRATIONS", "SCHEMA_VERSION", "SafRow", "SEALED"]

log = logging.getLogger("terminal.journal")
FINAL_STATES = txn_state.FINAL
# States no external step acts on before the sale's next durable write (docs/money-safety.md, "Grouped commits")
RIDE_ALONG = frozenset({txn_state.TxnState.CREATED, txn_state.TxnState.APPROVED})


class Journal:
    """Implements ``flows.ports.JournalPort``. Thread-safe: one connection guarded by a lock."""

    _connect, _migrate = connect, migrate  # terminal/journal_open.py: the journal at open (its schema's life cycle)
    _db: sqlite3.Connection  # these four are set by each (re)connection (journal_open.connect)
    _counted: dict[str, int] | None  # the counters as last committed (None: read them again at the next COMMIT)
    _columns: dict[str, list[str]]  # table → its columns (``_names``), emptied by every migration
    _chained: bool  # the journal had a chain before this open

    def __init__(self, path: str | Path, *, crash_point: Callable[[str], None] | None = None,
                 chain_key: bytes | None = None, read_only: bool = False) -> None:  # read_only: --status
        self.path = str(path)
        self._crash_point = crash_point or (lambda _name: None)  # after every COMMIT; wired by the composition root
        self.files = JournalFiles(self.path)
        self._lock = threading.RLock()
        self._riding = 0  # units committed with the next durable one (``transaction(durable=False)``)
        self.chain = Chain(chain_key or self.files.own_chain_key(read_only))  # a bench journal's own 0600 file
        self.quarantined: dict[str, str] = {}  # row ("txn 3") → the column that could not be decoded
        self.write_error: str | None = None  # the last write's failure (disk full …) until a write succeeds
        self.damage: Damage | None = self.files.hold()  # a standing out-of-service notice: no sale until accepted
        if read_only:
            self._connect(read_only=True)
            with suppress(sqlite3.Error):  # a journal from before the chain has none
                self._resume()
            return
        open_checked(self, self.files.opening(self.chain.key))  # connected, migrated, checked; damage taken
        self.files.write_high_water(self.chain.record(self.counters()), self.chain.key)

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work (BEGIN IMMEDIATE … COMMIT; a savepoint when units ride along); its rows sealed at the
        COMMIT. ``durable=False``: a step no external step follows before the next durable unit rides with that
        unit's COMMIT (one fsync for both); a cut before it loses both (docs/money-safety.md, "Grouped commits")."""
        with self._lock:
            body_failed = False
            try:
                if not (nested := self._db.in_transaction):  # nested: units ride along, a savepoint is this one
                    self.chain.begin()
                self._db.execute("SAVEPOINT unit" if nested else "BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    body_failed = True  # take back this unit only: the units riding along stay
                    for statement in ("ROLLBACK TO unit", "RELEASE unit") if nested else ("ROLLBACK",):
                        self._db.execute(statement)
                    raise
                if nested:
                    self._db.execute("RELEASE unit")
                if not durable:
                    self._riding += 1
                    return
                counted = self._seal_written(self._db.execute("SELECT tbl, ref FROM temp.written GROUP BY tbl, ref"
                                                              " ORDER BY MIN(rowid)").fetchall())
                self._db.execute("DELETE FROM temp.written")  # a rollback takes back its notes too
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:  # disk full, I/O error: nothing of this unit (nor what rode along) written
                if self._db.in_transaction and not body_failed:
                    self._db.execute("ROLLBACK")
                self._riding = 0 if not self._db.in_transaction else self._riding
                self.write_error = f"{getattr(exc, 'sqlite_errorname', 'SQLITE_ERROR')}: {exc}"  # storage_fault
                raise JournalError(f"journal write failed: {exc}") from exc
            self._riding = 0
            self.chain.commit()
            self.write_error = None
            self._counted = self.counters() if self._counted is None else {**self._counted, **counted}
            self.files.write_high_water(self.chain.record(self._counted), self.chain.key)
            self._crash_point("commit")

    def _chain_mac(self, seq: int) -> bytes | None:  # the MAC of this generation's chain entry ``seq``, if there
        there = self._rows("chain", "generation = ? AND seq = ?", (self.chain.generation, seq))
        return there[0][-1] if there else None

    def _resume(self) -> None:
        last = self._db.execute("SELECT generation, seq, mac FROM chain ORDER BY generation DESC, seq DESC LIMIT 1")
        self.chain.resume(*(last.fetchone() or (1, 0, self.chain.head)))

    def _rows(self, table: str, where: str = "1=1", params: tuple[Any, ...] = ()) -> list[Any]:
        self._db.text_factory = bytes  # as stored: a damaged row still has its digest
        try:
            return self._db.execute(f"SELECT rowid, * FROM {table} WHERE {where} ORDER BY rowid", params).fetchall()  # noqa: S608
        finally:
            self._db.text_factory = lenient_text

    def _seal(self, table: str, where: str = "1=1", params: tuple[Any, ...] = ()) -> None:
        self._counted = None  # a whole table (re)sealed: the counters are read again at the COMMIT
        self._db.executemany("INSERT INTO chain VALUES (?,?,?,?,?,?)",
                             [self.chain.entry(table, row[0], row[1:]) for row in self._rows(table, where, params)])

    def _seal_written(self, written: list[tuple[str, int]]) -> dict[str, int]:
        """Seal the rows this commit wrote (``written``: (table, rowid), first written first), one read per table;
        returns the counters among them (the high-water record takes them without reading the table again)."""
        rows: dict[tuple[str, int], Any] = {}
        for table, ids in group_rowids(written):
            rows.update(((table, row[0]), row) for row in self._rows(table, f"rowid IN ({','.join('?' * len(ids))})",
                                                                      tuple(ids)))
        self._db.executemany("INSERT INTO chain VALUES (?,?,?,?,?,?)",  # a row written and deleted: nothing to seal
                             [self.chain.entry(t, r, rows[t, r][1:]) for t, r in written if (t, r) in rows])
        return {lenient_text(row[1]): row[2] for (table, _), row in rows.items() if table == "counter"}

    def verify(self, tables: tuple[str, ...] = CHECKED) -> Damage | None:
        """The first problem of the chain and of the rows of ``tables`` (boot, diagnostics, ``--verify-audit``)."""
        with self._lock:
            if self._riding:  # units riding along are sealed only at their COMMIT: check what is durable and sealed
                with self.transaction():
                    pass
            if self._db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                return Damage("broken", "SQLite integrity_check failed")
            entries = self._db.execute("SELECT seq, tbl, ref, digest, mac FROM chain WHERE generation = ?"
                                       " ORDER BY seq", (self.chain.generation,)).fetchall()
            return self.chain.check(entries, {table: self._rows(table) for table in tables if table != FORMAT[0] or
                                              self._rows("sqlite_master", "name = ?", (table,))})  # older: none

    # a technician accepts it as it stands (audited): sales again; no damage, SQLite and the whole chain agree
    accept_damage, check_integrity = accept_damage, check_integrity  # (terminal/journal_damage.py)

    def schema_version(self) -> int:  # the migrations run (journal_open.schema_level: and who may write it)
        with self._lock:
            return schema_level(self)[0]

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT name, value FROM counter").fetchall())

    def advance_counters(self, exact: bool = False, /, **at_least: int) -> None:
        """Counters go on from at least these (``stan=`` …), or from these when ``exact`` (ahead across a wrap)."""
        with self.transaction() as db:
            for name, v in at_least.items():
                db.execute("UPDATE counter SET value = IIF(?, ?, MAX(value, ?)) WHERE name = ?", (exact, v, v, name))

    def follow_counters(self, ahead_of: Callable[[dict[str, int]], dict[str, int]],
                        then: Callable[[dict[str, int]], object] = lambda _ahead: None) -> dict[str, int]:
        """The counters ``ahead_of(counters)`` names (exact values: a view ahead in sequence order) read and written
        in one unit, ``then(ahead)`` (its audit line) in the same commit: no STAN taken in between is reused."""
        if not ahead_of(self.counters()):  # counters only move on: not behind now, not behind later (no commit)
            return {}
        with self._lock:  # nothing else runs on the journal from the read to the COMMIT
            with self.transaction(durable=False) as db:  # rides with ``then``'s unit (one COMMIT for both)
                ahead = ahead_of(dict(db.execute("SELECT name, value FROM counter").fetchall()))
                db.executemany("UPDATE counter SET value = ? WHERE name = ?", [(v, n) for n, v in ahead.items()])
            if ahead:
                then(ahead)
            if self._riding:  # ``then`` wrote nothing durable (or nothing was behind after all)
                with self.transaction():
                    pass
        return ahead

    def _bump(self, name: str, wrap: int | None = None, *, durable: bool = True) -> int:
        with self.transaction(durable=durable) as db:
            value = db.execute("SELECT value FROM counter WHERE name = ?", (name,)).fetchone()[0] % (wrap or 2**62) + 1
            db.execute("UPDATE counter SET value = ? WHERE name = ?", (value, name))
            return int(value)

    def next_stan(self, *, durable: bool = True) -> int:  # durable=False: rides with the sale's next write
        return self._bump("stan", wrap=999999, durable=durable)

    def current_batch(self) -> int:
        return self.counters()["batch"]

    def close_batch(self, totals: BatchTotals, *, uploaded: bool, report: str) -> int:
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

    def last_closed_batch(self) -> tuple[int, str, int, int, bool] | None:  # (batch, closed_at, count, minor, uploaded)
        row = self._db.execute("SELECT batch, closed_at, sale_count, sale_minor, uploaded FROM batch"
                               " ORDER BY closed_at DESC, batch DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]), int(row[2]), int(row[3]), bool(row[4]))

    def batch_records(self, batch: int) -> list[TxnRecord]:
        return self._select("batch = ?", (batch,))

    def next_order_id(self, terminal_id: str, now: dt.datetime) -> str:
        invoice = self._bump("invoice", wrap=999999, durable=False)  # rides with the sale's first durable step
        return f"{terminal_id}{now:%y%m%d%H%M%S}{invoice:06d}"

    def begin(self, *, order_id: str, iccid: str, msisdn: str, plan_id: str, plan_name: str,
              amount_minor: int, fee_minor: int, channel: str, cashier_id: str, plan_name_zh: str = "") -> int:
        if self.damage is not None:
            raise JournalError(f"journal out of service ({self.damage.kind}): no new sale")
        now = _now()
        with self.transaction(durable=False) as db:  # no money moves before the next (durable) step of the sale
            cur = db.execute(
                "INSERT INTO txn (state, order_id, iccid, msisdn, plan_id, plan_name, amount_minor, fee_minor,"
                " channel, cashier_id, created_at, updated_at, plan_name_zh, batch) VALUES ('created',?,?,?,?,?,?,?,"
                "?,?,?,?,?, (SELECT value FROM counter WHERE name = 'batch'))",
                (order_id, iccid, msisdn, plan_id, plan_name, amount_minor, fee_minor, channel, cashier_id,
                 now, now, plan_name_zh or None))
            txn_id = int(cur.lastrowid or 0)
            db.execute("INSERT INTO txn_event (txn_id, at, state, detail) VALUES (?,?,?,?)",
                       (txn_id, now, "created", f"order {order_id}"))
        log.info("txn %d order %s stage created %s %s fen", txn_id, order_id, channel, amount_minor + fee_minor)
        return txn_id

    def update(self, txn_id: int, state: str, **values: object) -> None:
        now, assignments = _now(), "".join(f", {name} = ?" for name in values)  # checked before it is executed
        with self._lock:
            row = self._db.execute("SELECT state, order_id FROM txn WHERE txn_id = ?", (txn_id,)).fetchone()
            if row is None:
                raise JournalError(f"no transaction {txn_id}")
            state, detail = txn_move(txn_id, row[0], state, values)  # JournalError: a column or move txn has not
            copy_only = state == row[0] and set(values) == {"receipt"}  # the receipt copy: no step acts on it
            with self.transaction(durable=not (state in RIDE_ALONG or copy_only)) as db:  # still under the lock
                db.execute(f"UPDATE txn SET state = ?, updated_at = ?{assignments} WHERE txn_id = ?",  # noqa: S608
                           (state, now, *values.values(), txn_id))
                db.execute("INSERT INTO txn_event (txn_id, at, state, detail) VALUES (?,?,?,?)",
                           (txn_id, now, state, detail))
        log.info("txn %d order %s stage %s %s", txn_id, row[1], state, detail)  # one line per event, after commit

    def get(self, txn_id: int) -> TxnRecord:
        for row in self._select("txn_id = ?", (txn_id,)):
            return row
        raise JournalError(f"no transaction {txn_id} (or it cannot be decoded: {self.quarantined})")

    def _select(self, where: str = "1=1", params: tuple[object, ...] = ()) -> list[TxnRecord]:
        return self._decoded(TxnRecord, "txn", where, params)

    def _names(self, table: str) -> list[str]:  # a table's columns, read once per connection and migration
        if (names := self._columns.get(table)) is None:
            names = [d[0] for d in self._db.execute(f"SELECT * FROM {table} LIMIT 0").description]  # noqa: S608
            self._columns[table] = names
        return names

    def _decoded(self, cls: Any, table: str, where: str, params: tuple[Any, ...], into: dict[str, str] | None = None,
                 ) -> list[Any]:  # rows that cannot be decoded are named in ``into`` (default: ``quarantined``)
        with self._lock:
            return decode_all(cls, self._names(table), self._rows(table, where, params), table,
                              self.quarantined if into is None else into)

    def all_transactions(self) -> list[TxnRecord]:  # oldest first, as every query (tests, simulator, benches)
        return self._select()

    def open_transactions(self) -> list[TxnRecord]:
        return self._select(f"state NOT IN ({','.join('?' * len(FINAL_STATES))})", tuple(sorted(FINAL_STATES)))

    def for_sim_since(self, iccid: str, since: str, into: dict[str, str] | None = None) -> list[TxnRecord]:
        return self._decoded(TxnRecord, "txn", "iccid = ? AND created_at >= ?", (iccid, since), into)  # dup. guard
    def completed_since(self, since: str) -> list[TxnRecord]:  # refunds: completed sales of any batch since
        return self._select("state = ? AND created_at >= ?", (str(txn_state.TxnState.COMPLETED), since))
    def given_back_with_topup(self, words: tuple[str, ...]) -> list[TxnRecord]:  # voided / refunded rows whose
        word = "substr(topup_status || '#', 1, instr(topup_status || '#', '#') - 1)"  # top-up word, ``#n`` cut off
        return self._select(f"state IN ('voided', 'refunded') AND {word} IN ({','.join('?' * len(words))})", words)  # noqa: S608
    def for_sim_on(self, iccid: str, day: str) -> list[TxnRecord]:  # ``YYYY-MM-DD``: the daily spending check
        return self._select("iccid = ? AND substr(created_at, 1, 10) = ?", (iccid, day))
    def spent_on(self, iccid: str, day: str, channel: str, not_spent: tuple[str, ...]) -> int | None:  # amount + fee
        known, left = tuple(txn_state.TxnState), ",".join("?" * len(not_spent))  # None: a row in it to decode first
        with self._lock:
            total, odd = self._db.execute(  # noqa: S608 - placeholders only
                "SELECT COALESCE(SUM(amount_minor + fee_minor), 0), SUM(typeof(amount_minor) != 'integer' OR"
                f" typeof(fee_minor) != 'integer' OR state NOT IN ({','.join('?' * len(known))})) FROM txn WHERE"
                f" iccid = ? AND substr(created_at, 1, 10) = ? AND channel = ? AND state NOT IN ({left})",
                (*known, iccid, day, channel, *not_spent)).fetchone()
        return None if odd else int(total)
    def last_transaction(self) -> TxnRecord | None:  # the clock check: time must not run backwards past it
        return next(iter(self._select("txn_id = (SELECT MAX(txn_id) FROM txn)")), None)

    def search(self, *, sim_tail: str = "", amount_minor: int | None = None, day: str = "", channel: str = "",
               cashier_id: str = "") -> list[TxnRecord]:
        conditions = (("(iccid LIKE ? OR msisdn LIKE ?)", (f"%{sim_tail}",) * 2, sim_tail),
                      ("(amount_minor + fee_minor = ? OR amount_minor = ?)", (amount_minor,) * 2,
                       amount_minor is not None),
                      ("substr(created_at, 1, 10) = ?", (day,), day), ("channel = ?", (channel,), channel),
                      ("cashier_id = ?", (cashier_id,), cashier_id))
        return self._select(" AND ".join(["1=1", *(sql for sql, _, given in conditions if given)]),
                            tuple(value for _, values, given in conditions if given for value in values))

    def events(self, txn_id: int) -> list[tuple[str, str]]:
        with self._lock:
            return self._db.execute("SELECT state, detail FROM txn_event WHERE txn_id = ? ORDER BY event_id",
                                    (txn_id,)).fetchall()

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
        return self._decoded(SafRow, "saf", f"status IN ({','.join('?' * len(statuses))})", statuses)

    def saf_update(self, saf_id: int, status: str, *, tries: int = 0, response_code: str | None = None,
                   message: str | None = None, stan: int | None = None, sealed: bytes | None = None) -> None:
        done = status in ("sent", "cancelled", "expired")  # the sealed PAN is never needed again: erased
        with self._lock:  # held to the checkpoint: no unit of another thread rides along in between
            with self.transaction() as db:  # the contract: flows.saf.SafJournal
                db.execute("UPDATE saf SET status = ?, attempts = attempts + ?, last_try_at = COALESCE(?, last_try_at),"
                           " response_code = COALESCE(?, response_code), message = COALESCE(?, message),"
                           " stan = COALESCE(?, stan), pan_sealed = COALESCE(?, pan_sealed) WHERE saf_id = ?",
                           (status, tries, _now() if tries > 0 else None, response_code, message, stan,
                            b"" if done else sealed, saf_id))
            if done and not self.files.memory:  # the PAN is erased: no old page keeps it in the WAL
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def user_add(self, user_id: str, name: str, role: str, pw_hash: str) -> bool:
        """Add a user; False (and nothing changed) when the id exists."""
        with self.transaction() as db:
            return db.execute("INSERT OR IGNORE INTO users (user_id, name, role, pw_hash) VALUES (?,?,?,?)",
                              (user_id, name, role, pw_hash)).rowcount == 1

    def user_rows(self, user_id: str | None = None) -> list[tuple[str, str, str, str, int, str | None]]:
        where, params = ("WHERE user_id = ?", (user_id,)) if user_id is not None else ("", ())
        with self._lock:
            return self._db.execute("SELECT user_id, name, role, pw_hash, failed, locked_until FROM users "
                                    f"{where} ORDER BY user_id", params).fetchall()  # noqa: S608

    def user_update(self, user_id: str, *, durable: bool = True, **values: object) -> bool:  # False: rides along
        if (unknown := set(values) - {"name", "role", "pw_hash", "failed", "locked_until"}) or not values:
            raise JournalError(f"users have no column(s) {sorted(unknown)}")
        with self.transaction(durable=durable) as db:
            return db.execute(f"UPDATE users SET {', '.join(f'{n} = ?' for n in values)} WHERE user_id = ?",  # noqa: S608
                              (*values.values(), user_id)).rowcount == 1

    def audit_append(self, at: str, user_id: str, action: str, detail: str) -> int:
        with self.transaction() as db:
            return int(db.execute("INSERT INTO audit (at, user_id, action, detail) VALUES (?,?,?,?)",
                                  (at, user_id, action, detail)).lastrowid or 0)

    def audit_rows(self, limit: int, action: str | None = None) -> list[tuple[int, str, str, str, str]]:
        """(audit_id, at, user_id, action, detail), newest first."""
        where, params = ("WHERE action = ?", (action,)) if action else ("", ())
        with self._lock:
            return self._db.execute(f"SELECT audit_id, at, user_id, action, detail FROM audit {where} "  # noqa: S608
                                    "ORDER BY audit_id DESC LIMIT ?", (*params, limit)).fetchall()

    def settings(self) -> dict[str, int]:
        with self._lock:
            return {key: int(value) for key, value in self._db.execute("SELECT key, value FROM terminal_setting")}

    def setting_put(self, key: str, value: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO terminal_setting (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
            if self._riding:  # a clean stop makes the units still riding along durable
                with self.transaction():
                    pass
            self._db.close()
