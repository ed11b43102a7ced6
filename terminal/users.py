"""Terminal users and their passwords, stored as scrypt hashes in the journal database.

A hash is ``scrypt$n$r$p$salt_hex$hash_hex``; verification recomputes and compares in constant time. Five wrong
passwords lock the account for ``lock_minutes``.

>>> h = hash_password("1234", salt=bytes(16), n=2**10)
>>> verify_password("1234", h), verify_password("9999", h)
(True, False)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from dataclasses import dataclass

from terminal.journal import Journal

__all__ = ["hash_password", "verify_password", "User", "UserStore", "LoginResult"]

SCRYPT_N = 2**14
MAX_FAILED = 5


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


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    message: str = ""


class UserStore:
    def __init__(self, journal: Journal, lock_minutes: int = 15) -> None:
        self.journal = journal
        self.lock_minutes = lock_minutes

    def ensure(self, user_id: str, name: str, role: str, pw_hash: str) -> None:
        """Add a user from configuration unless one with that id exists already (passwords changed on the
        terminal win over the configuration file)."""
        with self.journal.transaction() as db:
            db.execute("INSERT OR IGNORE INTO users (user_id, name, role, pw_hash) VALUES (?,?,?,?)",
                       (user_id, name, role, pw_hash))

    def login(self, user_id: str, password: str, now: dt.datetime | None = None) -> LoginResult:
        now = now or dt.datetime.now()
        with self.journal.transaction() as db:
            row = db.execute("SELECT name, role, pw_hash, failed, locked_until FROM users WHERE user_id = ?",
                             (user_id,)).fetchone()
            if row is None:
                return LoginResult(None, "Wrong user id or password / 工号或密码错误")
            name, role, pw_hash, failed, locked_until = row
            if locked_until and dt.datetime.fromisoformat(locked_until) > now:
                return LoginResult(None, f"Account locked until {locked_until[11:16]} / 账户已锁定")
            if verify_password(password, pw_hash):
                db.execute("UPDATE users SET failed = 0, locked_until = NULL WHERE user_id = ?", (user_id,))
                return LoginResult(User(user_id, name, role))
            failed += 1
            lock = (now + dt.timedelta(minutes=self.lock_minutes)).isoformat(timespec="seconds") \
                if failed >= MAX_FAILED else None
            db.execute("UPDATE users SET failed = ?, locked_until = ? WHERE user_id = ?",
                       (0 if lock else failed, lock, user_id))
            if lock:
                return LoginResult(None, f"Too many wrong passwords: locked for {self.lock_minutes} min / "
                                         f"密码错误次数过多，锁定 {self.lock_minutes} 分钟")
            return LoginResult(None, f"Wrong user id or password ({MAX_FAILED - failed} tries left) / "
                                     f"工号或密码错误（还剩 {MAX_FAILED - failed} 次）")
