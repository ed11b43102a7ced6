"""Login answers reveal no ids: an unknown id, a wrong password, the attempt that locks and a locked account
(the right password included) show the same screen and cost the same work (one scrypt, one durable COMMIT); the
supervisor still sees the lock on the users screen and in the audit log.

Through the real terminal core and login handler, the real ``UserStore`` and a journal on disk; the audit rows
are written as the shell writes them (``AuditLog.record`` for every ``Audit`` command)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from terminal.audit import AuditLog
from terminal.core import Audit, Render, Started, WorkDone
from terminal.journal import Journal
from terminal.machine import State
from terminal.users import UserStore, hash_password
from tests.terminal.test_core import Driver

COST = 2**10


def _driver(tmp_path: Path) -> Driver:
    d = Driver()
    journal = Journal(tmp_path / "journal.db")
    d.services.journal, d.services.users, d.services.audit = journal, UserStore(journal), AuditLog(journal)
    d.services.users.ensure("01", "Li", "cashier", hash_password("1111", n=COST))
    d.services.users.ensure("90", "Wang", "supervisor", hash_password("999999", n=COST))
    d.services.users.ensure("02", "Chen", "cashier", hash_password("123456", n=COST))
    d.services.users.login("99", "0")  # the dummy hash of an unknown id is made once, at the first one
    boot = d.work(d.feed(Started()), "boot")
    d.feed(WorkDone(boot.ticket, (True, (), ())))
    return d


def _attempt(d: Driver, user_id: str, password: str) -> tuple[str, str]:
    """One login attempt at the keypad; the shell's part done: its audit rows written. Returns the screen the
    cashier sees afterwards (the typed id blanked) and its error line."""
    before = len(d.commands)
    d.keys(f"CANCEL {user_id} ENTER {password} ENTER")
    for command in d.commands[before:]:
        if isinstance(command, Audit):
            d.services.audit.record(command.user_id, command.action, command.detail)
    screen = [c.screen for c in d.commands[before:] if isinstance(c, Render)][-1]
    return screen.text().replace(user_id, "<id>"), screen.error or ""


def test_unknown_id_wrong_password_and_locked_account_look_the_same(tmp_path: Path) -> None:
    d = _driver(tmp_path)
    # six wrong passwords then the right one on an account that exists (the fifth locks it) ...
    known = [_attempt(d, "02", "000000") for _ in range(6)] + [_attempt(d, "02", "123456")]
    # ... and the same on an id that does not exist
    unknown = [_attempt(d, "03", "000000") for _ in range(6)] + [_attempt(d, "03", "123456")]
    assert d.core.state is State.LOGIN
    assert known == unknown
    assert {error for _screen, error in known} == {
        "Wrong user id or password, or the account is locked (a supervisor can unlock it) / "
        "工号或密码错误，或账户已锁定（主管可解锁）"}
    assert d.services.users.is_locked("02") and not d.services.users.is_locked("03")
    assert not d.services.journal._db.in_transaction  # the lock rode with an audit row's COMMIT: on disk now
    reopened = Journal(tmp_path / "journal.db")  # a second connection sees only what is committed
    assert UserStore(reopened).is_locked("02")
    reopened.close()
    # the supervisor sees it: the audit log says why each failed, the users screen shows the lock
    rows = [(e.user_id, e.action, e.detail) for e in reversed(d.services.audit.recent(20))]
    assert rows[:4] == [("02", "login_failed", "wrong password (1 of 5)"),
                        ("02", "login_failed", "wrong password (2 of 5)"),
                        ("02", "login_failed", "wrong password (3 of 5)"),
                        ("02", "login_failed", "wrong password (4 of 5)")]
    assert rows[4][:2] == ("02", "lockout") and rows[4][2].startswith("5 wrong passwords: locked for 15 min until")
    assert rows[5][2].startswith("account locked until") and rows[6][2].endswith("(right password)")
    assert rows[7:] == [("?", "login_failed", "unknown id")] * 7
    d.keys("CANCEL 90 ENTER 999999 ENTER 5")
    assert d.core.state is State.USERS
    users_screen = [c.screen for c in d.commands if isinstance(c, Render)][-1].text()
    assert "02 cashier LOCKED" in users_screen and "03" not in users_screen


@pytest.mark.parametrize("case", ["unknown id", "wrong password", "locking attempt", "locked account",
                                  "locked, right password"])
def test_every_failed_attempt_costs_one_scrypt_and_one_commit(tmp_path: Path, case: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    d = _driver(tmp_path)
    user_id = "03" if case == "unknown id" else "02"
    setup = {"locking attempt": 4, "locked account": 5, "locked, right password": 5}.get(case, 0)
    for _ in range(setup):
        _attempt(d, user_id, "000000")
    scrypts: list[int] = []
    commits: list[str] = []
    real = hashlib.scrypt

    def counting(password: bytes, **kw: Any) -> bytes:
        scrypts.append(kw["n"])
        return real(password, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    d.services.journal._db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    _screen, error = _attempt(d, user_id, "123456" if case == "locked, right password" else "000000")
    assert error.startswith("Wrong user id or password")
    assert (scrypts, commits) == ([COST], ["COMMIT"])  # the row change rode with the audit row's COMMIT
    assert not d.services.journal._db.in_transaction
