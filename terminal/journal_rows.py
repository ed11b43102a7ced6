"""Decoding journal rows into their dataclasses, and refusing the rows that cannot be decoded (no SQL here).

The journal reads text as bytes, so one damaged byte (invalid UTF-8, a number that became text, an unknown
state) spoils one row, not the whole query: ``decode`` raises ``RowDamaged`` naming the row and the column, and
the journal skips (quarantines) that row with a warning instead of failing settlement, the shift summary,
history and the duplicate guard with "Internal error".

>>> from flows.ports import TxnRecord
>>> names = [f.name for f in fields(TxnRecord)]
>>> raw = {n: None for n in names} | dict(txn_id=3, state=b"completed", order_id=b"O1", iccid=b"8986",
...        msisdn=b"1064", plan_id=b"P", plan_name=b"p", amount_minor=1000, fee_minor=0, channel=b"card",
...        cashier_id=b"01", created_at=b"2026-12-03")
>>> decode(TxnRecord, raw, "txn").state
'completed'
>>> decode(TxnRecord, raw | {"receipt": b"\\xff"}, "txn")
Traceback (most recent call last):
...
terminal.journal_rows.RowDamaged: txn 3: column receipt cannot be decoded
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

from flows import txn_state
from flows.ports import TxnRecord
from pos_errors import PosError

__all__ = ["TXN_COLUMNS", "JournalError", "JournalTooNew", "RowDamaged", "decode", "decode_all", "statements", "now",
           "lenient_text", "txn_move", "group_rowids"]

T = TypeVar("T")
TXN_COLUMNS = frozenset(f.name for f in fields(TxnRecord)) - {"txn_id", "state"}  # what ``update`` may set
log = logging.getLogger("terminal.journal")


class JournalError(PosError):
    """The journal cannot be opened or written; the terminal must not sell (``terminal.journal`` re-exports it)."""


class JournalTooNew(JournalError):
    """The journal was written by a newer build: never "repaired"; this build refuses to start on it."""


class RowDamaged(PosError):
    """One stored row cannot be read back as what was written; ``row`` names it (``txn 3``)."""

    def __init__(self, row: str, column: str) -> None:
        super().__init__(f"{row}: column {column} cannot be decoded")
        self.row, self.column = row, column


def _value(raw: object, nullable: bool, kind: str) -> object:
    if raw is None:
        if nullable:
            return None
        raise ValueError("null")
    if kind == "bytes":
        if isinstance(raw, bytes):
            return raw
        raise ValueError("not bytes")
    if kind == "int":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        raise ValueError("not an integer")
    if isinstance(raw, bytes):
        return raw.decode("utf-8")  # strict: a damaged byte is a damaged row
    raise ValueError("not text")


@functools.cache
def _columns(cls: type) -> tuple[tuple[str, bool, str], ...]:
    """(name, may be NULL, "bytes" | "int" | "text") per field of ``cls``, worked out once per class."""
    out = []
    for f in fields(cls):
        kind = str(f.type)
        out.append((f.name, "None" in kind, "bytes" if "bytes" in kind else "int" if kind.startswith("int")
                    else "text"))
    return tuple(out)


def decode(cls: type[T], raw: Mapping[str, Any], table: str) -> T:
    """The dataclass ``cls`` from a row read with text as bytes; ``RowDamaged`` when any column is wrong."""
    values: dict[str, object] = {}
    columns = _columns(cls)  # type: ignore[arg-type]  # a dataclass type is hashable
    for name, nullable, kind in columns:
        try:
            values[name] = _value(raw[name], nullable, kind)
        except (ValueError, KeyError, IndexError):
            raise RowDamaged(f"{table} {raw.get(columns[0][0])}", name) from None
    if "state" in values:
        try:
            txn_state.parse(str(values["state"]))
        except txn_state.IllegalTransition:
            raise RowDamaged(f"{table} {raw.get(columns[0][0])}", "state") from None
    return cls(**values)


def statements(script: str) -> Iterator[str]:
    """Split a migration script into statements; a trigger's ``BEGIN … END`` holds semicolons of its own.

    >>> [s.split()[0] for s in statements("CREATE TABLE a (x); CREATE TRIGGER t BEGIN SELECT 1; END; DROP X;")]
    ['CREATE', 'CREATE', 'DROP']
    """
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        depth = len(re.findall(r"\bBEGIN\b", pending, re.I)) - len(re.findall(r"\bEND\b", pending, re.I))
        if depth <= 0:
            if pending.strip(" \n;"):
                yield pending
            pending = ""


def now() -> str:
    """The journal's timestamps: local ISO time to the millisecond."""
    return dt.datetime.now().isoformat(timespec="milliseconds")


def decode_all(cls: type[T], names: Sequence[str], rows: Sequence[Sequence[Any]], table: str,
               quarantined: MutableMapping[str, str]) -> list[T]:
    """The rows (rowid first, then ``names``) that decode; each that does not is logged once and named in
    ``quarantined`` (row → column), and skipped."""
    good = []
    for row in rows:
        try:
            good.append(decode(cls, dict(zip(names, row[1:], strict=True)), table))
        except RowDamaged as exc:
            if exc.row not in quarantined:
                log.warning("journal row skipped (quarantined): %s", exc)
            quarantined[exc.row] = exc.column
    return good


def lenient_text(data: bytes) -> str:
    """How the journal reads text except when it seals or decodes rows: a damaged byte never raises."""
    return data.decode("utf-8", "replace")


def txn_move(txn_id: int, current: str, new: str, values: Mapping[str, object]) -> tuple[txn_state.TxnState, str]:
    """The state an ``update`` of ``values`` moves transaction ``txn_id`` to from ``current``, and its event's
    detail line (the receipt left out); JournalError (nothing written) for a column ``txn`` does not have or a
    move the table does not allow."""
    if unknown := set(values) - TXN_COLUMNS:
        raise JournalError(f"journal has no column(s) {sorted(unknown)}")
    try:
        state = txn_state.check(current, new)
    except txn_state.IllegalTransition as exc:
        raise JournalError(f"transaction {txn_id}: {exc}") from exc
    return state, ", ".join(f"{k}={v}" for k, v in values.items() if k != "receipt")


def group_rowids(written: Sequence[tuple[str, int]], most: int = 500) -> list[tuple[str, list[int]]]:
    """The rowids of ``written`` (table, rowid) by table, each table's in the order given, at most ``most`` in one
    group (one ``rowid IN (…)`` read each: far below SQLite's limit on bound parameters).

    >>> group_rowids([("txn", 3), ("txn_event", 9), ("txn", 4)])
    [('txn', [3, 4]), ('txn_event', [9])]
    >>> group_rowids([("txn", n) for n in range(5)], most=2)
    [('txn', [0, 1]), ('txn', [2, 3]), ('txn', [4])]
    """
    tables: dict[str, list[int]] = {}
    for table, rowid in written:
        tables.setdefault(table, []).append(rowid)
    return [(table, ids[i:i + most]) for table, ids in tables.items() for i in range(0, len(ids), most)]
