"""Terminal users, their roles and passwords (scrypt hashes in the journal database), lockout after wrong
passwords, and the supervisor's user management.

A hash is ``scrypt$n$r$p$salt_hex$hash_hex``; verification recomputes and compares in constant time.
``max_failed`` wrong passwords in a row lock the account for ``lock_s`` seconds (both from ``[security]`` in
the configuration); a supervisor may unlock it or reset the password earlier. Results carry message keys of the
catalogue (``flows.messages``), never text, so the screen shows them in the cashier's language.

>>> h = hash_password("1234", salt=bytes(16), n=2**10)
>>> verify_password("1234", h), verify_password("9999", h)
(True, False)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from terminal.config import MIN_LOCK_S
from terminal.journal import Journal
from terminal.roles import parse_role

__all__ = ["hash_password", "verify_password", "User", "UserStore", "LoginResult", "LoginFailure", "UserRow",
           "Outcome", "MIN_PASSWORD"]

SCRYPT_N = 2**14
MAX_FAILED = 5
MIN_PASSWORD = 6  # digits, for every new password (issue 19); older, shorter ones are told to change at login


def hash_password(password: str, *, salt: bytes | None = None, n: int = SCRYPT_N, r: int = 8, p: int = 1) -> str:
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                               dklen=len(digest) // 2)
    return hmac.compare_digest(candidate.hex(), digest)


@dataclass(frozen=True)
class User:
    user_id: str
    name: str
    role: str


class LoginFailure(Enum):
    """Why a login failed: for the audit log and the supervisor only. The cashier's screen shows the same
    ``login.wrong`` for every one of them (an attacker at the keypad must not learn which ids exist)."""

    UNKNOWN_ID = "unknown id"
    WRONG_PASSWORD = "wrong password"
    LOCKED_NOW = "wrong password: account locked"
    LOCKED = "account locked"


@dataclass(frozen=True)
class LoginResult:
    """``user`` when the password was right; else ``message`` (a catalogue key, the same ``login.wrong`` for
    every failure) and ``failure`` (why, for the audit only). ``known_id`` is the stored id of the account tried
    (None for an unknown id: the audit never records what was typed, which may be a password typed in the wrong
    field). ``detail`` says what the audit records. ``weak_password``: right, but shorter than
    ``MIN_PASSWORD`` — the user is told to change it."""

    user: User | None
    message: str = ""
    args: Mapping[str, Any] = field(default_factory=dict)
    failure: LoginFailure | None = None
    known_id: str | None = None
    weak_password: bool = False
    detail: str = ""

    @property
    def locked_now(self) -> bool:
        """This attempt locked the account (the caller audits it as ``lockout``)."""
        return self.failure is LoginFailure.LOCKED_NOW

    @property
    def audit_action(self) -> str:
        return "lockout" if self.locked_now else "login_failed"


@dataclass(frozen=True)
class Outcome:
    """Result of a management action: ``ok`` or a catalogue key saying why not."""

    ok: bool
    message: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserRow:
    user_id: str
    name: str
    role: str
    failed: int
    locked_until: str | None


class UserStore:
    def __init__(self, journal: Journal, lock_s: float = 900.0, max_failed: int = MAX_FAILED) -> None:
        self.journal = journal
        self.lock_s = max(lock_s, MIN_LOCK_S)  # at least 15 minutes, whatever the caller asks (issue 19)
        self.max_failed = max_failed
        self._dummy: tuple[str, str] | None = None  # (cost parameters, a hash of nothing) for unknown ids

    def ensure(self, user_id: str, name: str, role: str, pw_hash: str) -> None:
        """Add a user from configuration unless one with that id exists already (passwords changed on the
        terminal win over the configuration file)."""
        self.journal.user_add(user_id, name, role, pw_hash)

    def login(self, user_id: str, password: str, now: dt.datetime | None = None) -> LoginResult:
        """Check a login. Every failure answers the same ``login.wrong`` — an unknown id, a wrong password, the
        attempt that locks and any attempt on a locked account, the right password included — and costs the
        same: one scrypt (an unknown id against a dummy hash of the highest stored cost) and one statement on
        the users table in a unit that rides with the caller's next durable write (the audit row of the
        attempt: one fsync per attempt, whatever the id). Why it failed is in ``failure`` and ``detail``, for
        the audit log; the supervisor's users screen shows the lock."""
        now = now or dt.datetime.now()
        rows = self.journal.user_rows(user_id)
        if not rows:
            verify_password(password, self._dummy_hash())
            return self._failed(user_id, LoginFailure.UNKNOWN_ID, "unknown id", {})
        _id, name, role, pw_hash, failed, locked_until = rows[0]
        right = verify_password(password, pw_hash)
        if locked_until and dt.datetime.fromisoformat(locked_until) > now:
            detail = f"account locked until {locked_until[11:19]}" + (" (right password)" if right else "")
            return self._failed(_id, LoginFailure.LOCKED, detail, {"locked_until": locked_until}, _id)
        if right:
            self.journal.user_update(user_id, failed=0, locked_until=None)
            return LoginResult(User(user_id, name, role), weak_password=len(password) < MIN_PASSWORD)
        failed += 1
        if failed < self.max_failed:
            return self._failed(_id, LoginFailure.WRONG_PASSWORD, f"wrong password ({failed} of {self.max_failed})",
                                {"failed": failed, "locked_until": None}, _id)
        lock = (now + dt.timedelta(seconds=self.lock_s)).isoformat(timespec="seconds")
        return self._failed(_id, LoginFailure.LOCKED_NOW,
                            f"{failed} wrong passwords: locked for {_minutes(self.lock_s)} min until {lock[11:19]}",
                            {"failed": 0, "locked_until": lock}, _id)

    def _failed(self, user_id: str, failure: LoginFailure, detail: str, values: Mapping[str, Any],
                known_id: str | None = None) -> LoginResult:
        """The one answer of every failure; the row change (none for an unknown id: its UPDATE matches no row)
        rides with the next durable unit, the audit row."""
        self.journal.user_update(user_id, durable=False, **(values or {"failed": 0}))
        return LoginResult(None, "login.wrong", failure=failure, known_id=known_id, detail=detail)

    def _dummy_hash(self) -> str:
        """A hash of a random password with the highest cost among the stored hashes (the default cost when
        there are none), made once per cost."""
        costs = [h.split("$")[1:4] for *_, h, _f, _l in self.journal.user_rows() if h.startswith("scrypt$")]
        n, r, p = max(costs, key=lambda c: int(c[0]), default=[str(SCRYPT_N), "8", "1"])
        key = f"{n}${r}${p}"
        if self._dummy is None or self._dummy[0] != key:
            self._dummy = (key, hash_password(os.urandom(16).hex(), n=int(n), r=int(r), p=int(p)))
        return self._dummy[1]

    # --- management -----------------------------------------------------------------------------------------

    def list_users(self) -> list[UserRow]:
        return [UserRow(user_id, name, role, failed, locked)
                for user_id, name, role, _hash, failed, locked in self.journal.user_rows()]

    def get(self, user_id: str) -> UserRow | None:
        return next((u for u in self.list_users() if u.user_id == user_id), None)

    def add(self, user_id: str, role: str, password: str, name: str = "") -> Outcome:
        problem = _check_password(password) or (None if parse_role(role) else Outcome(False, "users.bad_role"))
        if problem:
            return problem
        if not (user_id.isdigit() and 1 <= len(user_id) <= 6):
            return Outcome(False, "users.bad_id")
        if not self.journal.user_add(user_id, name or f"{role} {user_id}", role, hash_password(password)):
            return Outcome(False, "users.exists", {"user": user_id})
        return Outcome(True, "users.added", {"user": user_id})

    def reset_password(self, user_id: str, password: str) -> Outcome:
        """The supervisor sets a new password; this also unlocks the account."""
        problem = _check_password(password)
        if problem:
            return problem
        return self._set(user_id, "users.password_reset", pw_hash=hash_password(password), failed=0,
                         locked_until=None)

    def change_own_password(self, user_id: str, old: str, new: str) -> Outcome:
        rows = self.journal.user_rows(user_id)
        if not rows or not verify_password(old, rows[0][3]):
            return Outcome(False, "password.old_wrong")
        if old == new:
            return Outcome(False, "password.same")
        return self.reset_password(user_id, new)

    def unlock(self, user_id: str) -> Outcome:
        return self._set(user_id, "users.unlocked", failed=0, locked_until=None)

    def set_role(self, user_id: str, role: str) -> Outcome:
        if parse_role(role) is None:
            return Outcome(False, "users.bad_role")
        return self._set(user_id, "users.role_set", role=role)

    def is_locked(self, user_id: str, now: dt.datetime | None = None) -> bool:
        row = self.get(user_id)
        now = now or dt.datetime.now()
        return bool(row and row.locked_until and dt.datetime.fromisoformat(row.locked_until) > now)

    def _set(self, user_id: str, message: str, **values: Any) -> Outcome:
        if not self.journal.user_update(user_id, **values):
            return Outcome(False, "users.unknown", {"user": user_id})
        shown = {"role": values["role"]} if "role" in values else {}
        return Outcome(True, message, {"user": user_id, **shown})


def _check_password(password: str) -> Outcome | None:
    if not password.isdigit() or len(password) < MIN_PASSWORD:
        return Outcome(False, "password.too_short", {"min": MIN_PASSWORD})
    return None


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}"
