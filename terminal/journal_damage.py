"""What the journal does when it finds itself damaged at open: keep the damaged files, go on in place (readable)
or anew, counters at their highest, next chain generation, an out-of-service hold until a technician accepts it."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING

from terminal.journal_chain import Damage
from terminal.journal_open import MigrationStopped
from terminal.journal_rows import JournalError, JournalTooNew
from terminal.journal_rows import now as _now
from terminal.journal_schema import CHECKED

if TYPE_CHECKING:
    from terminal.journal import Journal
    from terminal.journal_files import Opening

__all__ = ["accept_damage", "check_integrity", "take_damage", "open_checked"]

log = logging.getLogger("terminal.journal")


def take_damage(journal: Journal, found: Damage, best: tuple[int, ...], generation: int) -> None:
    """Keep the damaged files; go on in place (readable) or anew; counters at their highest; next generation."""
    for move in (False, True) if found.kind in ("older", "broken", "record") else (True,):
        try:
            if not move:
                best = tuple(max(b, journal.counters()[n]) for b, n in zip(best, ("stan", "invoice", "batch")))  # noqa: B905
            with suppress(sqlite3.Error, AttributeError):  # AttributeError: it could not even be connected
                journal._db.close()
            journal.damage = replace(found, kept=journal.files.keep_damaged(move=move), at=_now())
            journal.files.put_hold(journal.damage)  # first: a cut from here on still finds the terminal out of service
            journal._connect()
            journal._migrate(check=False)  # the damage is found and kept: nothing to check before migrating
            journal.chain.restart(max(journal.chain.generation, generation) + 1)
            with journal.transaction():
                for table in CHECKED:
                    journal._seal(table)
            break
        except (sqlite3.Error, JournalError):
            if move:
                raise
    log.error("journal damaged: %s", journal.damage)
    journal.advance_counters(**dict(zip(("stan", "invoice", "batch"), best)))  # noqa: B905
    journal.audit_append(_now(), "-", "journal_damaged", f"{found.kind}: {found.detail} {found.row}")


def accept_damage(journal: Journal, user_id: str) -> None:
    """A technician accepts the journal as it now stands (audited); new sales may start again."""
    if (d := journal.damage) is not None:
        journal.audit_append(_now(), user_id, "journal_recovery", f"accepted {d.kind} {d.row}; kept {d.kept}")
        journal.files.clear_hold()
    journal.damage = None


def check_integrity(journal: Journal) -> bool:
    """No standing damage, and SQLite's own check and the whole chain agree (boot, diagnostics, ``--status``)."""
    try:
        return journal.damage is None and journal.verify() is None
    except sqlite3.Error:
        return False


def open_checked(journal: Journal, opening: Opening) -> None:
    """Connect and migrate ``journal`` and check it (its chain, then against the high-water record ``opening``
    found beside it); damage found is taken (``take_damage``). JournalTooNew is raised: never "repaired"."""
    try:
        journal._connect()  # a malformed file fails here already (WAL mode reads the header)
        found = opening.lost
        if found is None:
            journal._migrate()
            found = journal.verify() or opening.against(journal.chain, journal._chain_mac(opening.seq),
                                                        journal._chained)
    except (JournalTooNew, MigrationStopped):  # the journal left as it is: this build does not start
        raise
    except (sqlite3.Error, JournalError) as exc:
        found = Damage("unreadable", f"{type(exc).__name__}: {exc}")
    if found is not None:
        take_damage(journal, found, opening.counters, opening.generation)
