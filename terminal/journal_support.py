"""Small pure helpers of the journal that hold no SQL of their own (the SQL stays in ``terminal/journal.py``).

>>> list(statements("CREATE TABLE a (x); CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;"))
['CREATE TABLE a (x);', ' CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;']
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator

__all__ = ["statements", "now"]


def statements(script: str) -> Iterator[str]:
    """Split a migration into statements; a trigger's ``BEGIN … END`` holds semicolons of its own."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


def now() -> str:
    return dt.datetime.now().isoformat(timespec="milliseconds")
