"""A journal write that fails is told to the cashier in the catalogue's words (en + zh), chosen by SQLite's result
code: storage full, read-only, I/O error …; SQLite's English text appears only in the log. Through a real SQLite
journal file made to refuse writes as a full disk does (``max_page_count``: SQLite's own SQLITE_FULL) and as a
read-only mount does (``query_only``: SQLITE_READONLY), and the real core, handlers and home screen."""

from __future__ import annotations

import logging

import pytest

from flows.messages import CATALOGUE
from terminal.core import WorkDone
from terminal.journal import Journal, JournalError
from terminal.machine import State
from terminal.storage_fault import FAULTS, storage_fault, storage_fix
from tests.terminal.test_storage_screens import ICCID, Till


@pytest.mark.parametrize(("write_error", "what", "fix"), [
    ("SQLITE_FULL: database or disk is full", "storage.full", "fix.disk"),
    ("SQLITE_IOERR_WRITE: disk I/O error", "storage.io", "fix.technician"),
    ("SQLITE_IOERR_FSYNC: disk I/O error", "storage.io", "fix.technician"),
    ("SQLITE_IOERR: disk I/O error", "storage.io", "fix.technician"),
    ("SQLITE_READONLY: attempt to write a readonly database", "storage.read_only", "fix.technician"),
    ("SQLITE_READONLY_DBMOVED: attempt to write a readonly database", "storage.read_only", "fix.technician"),
    ("SQLITE_CANTOPEN_ISDIR: unable to open database file", "storage.io", "fix.technician"),
    ("SQLITE_CORRUPT: database disk image is malformed", "storage.corrupt", "fix.technician"),
    ("SQLITE_ERROR: something else", "storage.other", "fix.technician"),
    ("database or disk is full", "storage.other", "fix.technician"),  # no code: never guessed from the text
    (None, "storage.other", "fix.technician"),
])
def test_the_message_is_chosen_by_the_sqlite_code(write_error, what, fix):
    assert (storage_fault(write_error).key, storage_fix(write_error).key) == (what, fix)


def test_every_message_has_both_languages():
    for what, fix in FAULTS.values():
        for key in (what, fix, "storage.other"):
            english, chinese = CATALOGUE[key]
            assert english and chinese and english != chinese


def _sale_refused_by(journal: Journal, refuse: str) -> Till:
    """A cashier's card sale when the storage refuses the journal's first write of it; back on the home screen."""
    till = Till(journal)
    till.boot(healthy=True)
    till.keys("01 ENTER 1111 ENTER 1")
    till.keys(f"{ICCID} ENTER")
    till.finish(till.last_work("lookup"))
    till.keys(f"ENTER 1 1 {ICCID[-4:]} ENTER")
    payment = till.last_work("payment")
    assert journal.verify() is None  # what rode along is committed before the storage refuses
    if refuse == "full":  # SQLite's own disk-full path: the file may not grow by a page
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        journal._db.execute(f"PRAGMA max_page_count = {pages}")
    else:
        journal._db.execute("PRAGMA query_only = ON")
    with pytest.raises(JournalError) as failed:
        for n in range(200):  # enough rows to need a new page
            journal.begin(order_id=f"O{n}", iccid=ICCID, msisdn="1064800000017", plan_id="P", plan_name="p" * 200,
                          amount_minor=1, fee_minor=0, channel="card", cashier_id="01")
    till.feed(WorkDone(payment.ticket, None, failed.value))
    till.keys("CANCEL")
    assert till.core.state is State.HOME
    return till


@pytest.mark.parametrize(("refuse", "code", "english", "chinese", "sqlite_text"), [
    ("full", "SQLITE_FULL", "Journal: writes fail: storage full", "存储空间已满", "database or disk is full"),
    ("read_only", "SQLITE_READONLY", "Journal: writes fail: storage is read-only", "存储为只读",
     "attempt to write a readonly database"),
])
def test_the_home_screen_says_it_in_the_cashiers_words_and_the_log_keeps_sqlites(tmp_path, caplog, refuse, code,
                                                                                 english, chinese, sqlite_text):
    journal = Journal(tmp_path / "journal.db")
    with caplog.at_level(logging.WARNING, logger="terminal.diagnostics"):
        till = _sale_refused_by(journal, refuse)
    assert journal.write_error is not None and journal.write_error.startswith(f"{code}: ")
    text = till.text()
    assert english in text and chinese in text, text
    assert sqlite_text not in text and code not in text  # SQLite's text and code names stay off the screen
    assert any(sqlite_text in r.getMessage() for r in caplog.records)  # ... and in the log
    results = "\n".join(c.screen.text() for c in till.commands if hasattr(c, "screen"))
    assert sqlite_text not in results and "could not be written (storage full or faulty)" in results
