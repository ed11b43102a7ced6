"""Append-only audit log of sensitive actions (login, lockout, void, refund, settlement, settings, key load,
firmware confirm/revert …), kept in the journal database beside the transactions.

The table refuses UPDATE and DELETE with SQLite triggers, so no code path — ours or a later one — can rewrite
history through SQL; only a new row can be added. The supervisor reads it on the terminal (newest first).

>>> from terminal.journal import Journal
>>> log = AuditLog(Journal(":memory:"))
>>> log.record("01", "login", "ok")
1
>>> [(e.user_id, e.action) for e in log.recent()]
[('01', 'login')]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pos_errors import PosError
from terminal.journal import Journal

__all__ = ["AuditLog", "AuditEntry", "AuditError", "AUDITED_ACTIONS"]

# Actions other modules record; free text is allowed too, these are the ones the README lists.
AUDITED_ACTIONS = ("login", "login_failed", "lockout", "logout", "refused", "void", "refund", "settlement",
                   "settings", "key_load", "firmware_confirm", "firmware_revert", "user_add", "password_reset",
                   "password_change", "unlock", "role_change", "reprint")

class AuditError(PosError):
    """The audit log refused a change (UPDATE/DELETE) or could not be written."""


@dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    at: str
    user_id: str
    action: str
    detail: str

    def line(self) -> str:
        return f"{self.at[5:16].replace('T', ' ')} {self.user_id} {self.action} {self.detail}".rstrip()


class AuditLog:
    """Writes through the journal's own connection and lock (one durable SQLite file for the terminal)."""

    def __init__(self, journal: Journal, clock: Callable[[], dt.datetime] = dt.datetime.now) -> None:
        self.journal = journal
        self._clock = clock

    def record(self, user_id: str, action: str, detail: str = "") -> int:
        """Append one entry; returns its id. Never pass secrets: details are shown on screen."""
        at = self._clock().isoformat(timespec="seconds")
        return self.journal.audit_append(at, user_id, action, detail)

    def recent(self, limit: int = 50, action: str | None = None) -> list[AuditEntry]:
        """Newest first."""
        return [AuditEntry(*row) for row in self.journal.audit_rows(limit, action)]
