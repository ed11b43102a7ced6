"""Sessions (issue 19 item 2), through the real terminal core and handlers with a real journal and user store:
supervisor screens log out on idle, the role is checked again at each money-moving commit, idle logout and
lockout are clamped, new passwords have 6 digits, an unknown id costs the same scrypt as a wrong password, and a
failed login's audit row never holds what was typed."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from flows.txn_state import path_to
from terminal.config import Settings
from terminal.core import Audit, Started, StartWork, Tick, WorkDone
from terminal.machine import State
from terminal.settings_store import SettingsStore
from terminal.users import UserStore, hash_password
from tests.terminal.test_core import Driver


def _supervisor(sale: bool = True) -> Driver:
    d = Driver()
    d.services.users.ensure("90", "Wang", "supervisor", hash_password("9999", n=2**10))
    if sale:  # a completed card payment of the open batch: something to void
        j = d.services.journal
        txn = j.begin(order_id="O1", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P1",
                      plan_name="plan", amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")
        for step in path_to("completed", through="auth_intended"):
            j.update(txn, step, **({"stan": 21, "auth_code": "654321", "masked_pan": "621234******1232",
                                    "auth_time": "2026-12-01T10:00:00"} if step == "auth_intended" else {}))
    boot = d.work(d.feed(Started()), "boot")
    d.feed(WorkDone(boot.ticket, (True, (), ())))
    d.keys("90 ENTER 9999 ENTER")
    assert d.core.state is State.HOME
    return d


def _started(d: Driver, kind: str) -> bool:
    return any(isinstance(c, StartWork) and c.kind == kind for c in d.commands)


@pytest.mark.parametrize(("keys", "screen"), [
    ("F2", State.VOID_SELECT), ("F2 1", State.VOID_CONFIRM), ("F3", State.SETTLEMENT), ("F4", State.OPEN_ITEMS),
])
def test_supervisor_screen_left_open_logs_out(keys: str, screen: State) -> None:
    d = _supervisor()
    d.keys(keys)
    assert d.core.state is screen
    d.now += d.services.settings.timeouts.idle_s - 1
    d.feed(Tick())
    assert d.core.state is screen  # not yet
    d.now += 2
    d.feed(Tick())
    assert d.core.state is State.LOGIN and Audit("90", "logout", "idle") in d.commands
    assert d.core.session.void_pick is None and d.core.session.user is None


def test_f1_on_a_void_screen_left_open_voids_nothing() -> None:
    d = _supervisor()
    d.keys("F2 1")
    d.now += d.services.settings.timeouts.idle_s + 1
    d.feed(Tick())
    d.keys("F1")  # a passer-by at the abandoned terminal
    assert not _started(d, "void") and d.core.state is State.LOGIN


@pytest.mark.parametrize(("keys", "commit", "kind", "action"), [
    ("F2 1", "F1", "void", "void"),
    ("F3", "ENTER", "settle", "settlement"),
    ("F4", "F2", "refund", "refund"),
])
def test_role_is_checked_again_at_the_commit(keys: str, commit: str, kind: str, action: str) -> None:
    d = _supervisor()
    d.keys(keys)
    UserStore(d.services.journal).set_role("90", "cashier")  # another supervisor demotes them meanwhile
    d.keys(commit)
    assert not _started(d, kind)
    assert Audit("90", "refused", action) in d.commands and d.core.session.error


def test_idle_logout_capped_and_lockout_floored() -> None:
    s = Settings.from_dict({"timeouts": {"idle_s": 3600.0}, "security": {"lock_s": 60.0}})
    assert (s.timeouts.idle_s, s.security.lock_s) == (900.0, 900.0)
    assert UserStore(Driver().services.journal, lock_s=60).lock_s == 900.0
    store = SettingsStore(Driver().services.journal)
    for key, value in (("timeouts.idle_s", 901), ("security.lock_s", 899)):
        with pytest.raises(ValueError, match="must be"):
            store.set(key, value)


def test_unknown_id_costs_the_same_scrypt_as_a_wrong_password(monkeypatch: pytest.MonkeyPatch) -> None:
    users = Driver().services.users
    users.ensure("02", "Chen", "cashier", hash_password("123456", n=2**11))
    users.login("99", "000000")  # the dummy hash is made once, at the first unknown id
    calls: list[int] = []
    real = hashlib.scrypt

    def counting(password: bytes, **kw: Any) -> bytes:
        calls.append(kw["n"])
        return real(password, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    unknown, wrong = users.login("77", "000000"), users.login("02", "000000")
    assert calls == [2**11, 2**11]  # one scrypt each, at the highest stored cost
    assert (unknown.message, unknown.args) == (wrong.message, wrong.args) == ("login.wrong", {})
    assert (unknown.known_id, wrong.known_id) == (None, "02")


def test_failed_login_audit_holds_neither_the_password_nor_the_id_as_typed() -> None:
    d = _supervisor(sale=False)
    d.keys("9 ENTER")  # log out (9 asks first)
    d.keys("853147 ENTER 246810 ENTER")  # a password typed into the id field, then another guess
    d.keys("CANCEL 90 ENTER 777777 ENTER")  # a real id, a wrong password
    failed = [c for c in d.commands if isinstance(c, Audit) and c.action == "login_failed"]
    assert failed == [Audit("?", "login_failed", "unknown id"), Audit("90", "login_failed", "wrong password (1 of 5)")]
    assert not any(secret in repr(c) for c in d.commands if isinstance(c, Audit)
                   for secret in ("853147", "246810", "777777"))


def test_short_existing_password_is_told_to_change_and_new_ones_need_six_digits() -> None:
    d = Driver()
    d.logged_in()  # 01 / 1111: an account from before
    assert any("too short" in line for line in d.core.session.notice)
    assert d.services.users.add("05", "cashier", "12345").message == "password.too_short"
    assert d.services.users.add("05", "cashier", "123456").ok
    assert d.services.users.login("05", "123456").weak_password is False


def test_duplicate_warning_left_open_logs_out() -> None:
    d = Driver()
    d.logged_in()
    d.core.fire("start_topup")
    for trigger in ("lookup", "sim_found", "choose_plan", "plan_chosen", "channel_chosen", "duplicate"):
        d.core.fire(trigger)
    assert d.core.state is State.DUPLICATE_WARNING
    d.now += d.services.settings.timeouts.idle_s + 1
    d.feed(Tick())
    assert d.core.state is State.LOGIN and Audit("01", "logout", "idle") in d.commands
