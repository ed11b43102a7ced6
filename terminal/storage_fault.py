"""A failed journal write for people: SQLite's result code → what the cashier is told (a catalogue message, en +
zh) and what to do. SQLite's own English text is never shown: it stays in the log.

``Journal.write_error`` starts with the failure's SQLite code name (``SQLITE_FULL``, ``SQLITE_IOERR_WRITE``,
``SQLITE_READONLY`` …, Python's ``sqlite3.Error.sqlite_errorname``); the primary code (the name's first two
parts) picks the message, so no logic reads SQLite's English. An unknown or missing code is a "storage fault".

>>> storage_fault("SQLITE_FULL: database or disk is full").key, storage_fix("SQLITE_IOERR_FSYNC: disk I/O error").key
('storage.full', 'fix.technician')
"""

from __future__ import annotations

from collections.abc import Mapping

from flows.messages import Msg

__all__ = ["storage_fault", "storage_fix", "FAULTS"]

# SQLite primary result code → (what happened, what to do); https://www.sqlite.org/rescode.html
FAULTS: Mapping[str, tuple[str, str]] = {
    "SQLITE_FULL": ("storage.full", "fix.disk"),  # disk full, or the database at its size limit
    "SQLITE_IOERR": ("storage.io", "fix.technician"),  # the storage failed a read, write or sync
    "SQLITE_READONLY": ("storage.read_only", "fix.technician"),  # mounted read-only, or the file not writable
    "SQLITE_CANTOPEN": ("storage.io", "fix.technician"),  # the journal or its WAL file cannot be opened
    "SQLITE_CORRUPT": ("storage.corrupt", "fix.technician"),
    "SQLITE_NOTADB": ("storage.corrupt", "fix.technician"),
}
_OTHER = ("storage.other", "fix.technician")


def _code(write_error: str | None) -> tuple[str, str]:
    name = (write_error or "").split(":", 1)[0].strip()
    primary = "_".join(name.split("_")[:2]) if name.startswith("SQLITE_") else ""
    return FAULTS.get(primary, _OTHER)


def storage_fault(write_error: str | None) -> Msg:
    """What failed, in people's words (``Journal.write_error`` in)."""
    return Msg(_code(write_error)[0])


def storage_fix(write_error: str | None) -> Msg:
    """What to do about it."""
    return Msg(_code(write_error)[1])
