"""Roles, the append-only audit log, user management, history search, shift summary and duplicate receipts."""

import datetime as dt

import pytest

from flows.ports import ReceiptLine
from flows.txn_state import path_to
from terminal.audit import AuditLog
from terminal.history import HistoryFilter, duplicate, search, shift_summary
from terminal.journal import Journal, JournalError
from terminal.roles import PERMISSIONS, Action, Role, allowed, home_menu, usable_menu
from terminal.users import LoginFailure, UserStore, hash_password

SUPERVISOR_ONLY = {Action.VOID, Action.REFUND, Action.SETTLEMENT, Action.SETTINGS, Action.USERS, Action.AUDIT}
TECHNICIAN_ONLY = {Action.FLASH, Action.KEY_LOAD, Action.DIAGNOSTICS}


def test_permission_table_follows_the_issue():
    for action in Action:
        who = {r for r in Role if allowed(r.value, action)}
        if action in SUPERVISOR_ONLY:
            assert who == {Role.SUPERVISOR}, action
        elif action in TECHNICIAN_ONLY:
            assert who == {Role.TECHNICIAN}, action
    assert allowed("cashier", Action.TOPUP) and not allowed("technician", Action.TOPUP)
    assert all(allowed(r.value, Action.OWN_PASSWORD) for r in Role)
    assert not any(allowed("intruder", a) for a in Action)  # an unknown role may do nothing
    assert set(PERMISSIONS) == set(Action)


def test_the_home_menu_a_role_sees_is_what_it_may_use():  # worked out once per role (issue 17 item 3)
    for role in [*(r.value for r in Role), "intruder", ""]:
        assert usable_menu(role) == tuple(e for e in home_menu(role) if allowed(role, e[1]))
        assert all(allowed(role, action) for _, action, _ in usable_menu(role))
    assert [key for key, _, _ in usable_menu("cashier")][:2] == ["1", "2"] and usable_menu("intruder") == ()


def test_audit_log_is_append_only_and_survives_a_restart(tmp_path):
    path = tmp_path / "j.db"
    log = AuditLog(Journal(path), clock=lambda: dt.datetime(2026, 12, 1, 9, 30))
    log.record("01", "login", "cashier")
    log.record("90", "void", "txn 7")
    for sql in ("UPDATE audit SET user_id = 'x'", "DELETE FROM audit", "UPDATE audit SET detail = '' WHERE 1"):
        with pytest.raises(JournalError, match="append-only"):
            with log.journal.transaction() as db:
                db.execute(sql)
    log.journal.close()
    again = AuditLog(Journal(path))  # the schema is created once; reopening keeps rows and triggers
    assert [(e.user_id, e.action, e.detail) for e in again.recent()] == [("90", "void", "txn 7"),
                                                                         ("01", "login", "cashier")]
    assert again.recent()[0].line() == "12-01 09:30 90 void txn 7"
    assert [e.action for e in again.recent(action="login")] == ["login"]
    with pytest.raises(JournalError, match="append-only"):
        with again.journal.transaction() as db:
            db.execute("DELETE FROM audit WHERE action = 'void'")


@pytest.fixture
def users(tmp_path):
    store = UserStore(Journal(tmp_path / "j.db"), lock_s=60, max_failed=3)
    store.ensure("01", "Li", "cashier", hash_password("1111", n=2**10))
    return store


def test_configurable_lockout_and_supervisor_reset(users):
    now = dt.datetime(2026, 12, 1, 9, 0)
    tries = [users.login("01", "0", now) for _ in range(3)]
    assert [(t.message, t.locked_now) for t in tries] == [("login.wrong", False)] * 2 + [("login.wrong", True)]
    # lock_s=60 asked for, at least 15 minutes given (issue 19)
    assert users.is_locked("01", now + dt.timedelta(seconds=61)) and users.is_locked("01", now + dt.timedelta(
        seconds=899)) and not users.is_locked("01", now + dt.timedelta(seconds=901))
    locked = users.login("01", "1111", now)
    assert (locked.user, locked.message, locked.failure) == (None, "login.wrong", LoginFailure.LOCKED)
    assert users.reset_password("01", "222222").ok  # also unlocks
    assert users.login("01", "222222", now).user is not None
    assert users.login("01", "1111", now).user is None


def test_user_management_refuses_bad_input(users):
    assert users.add("02", "supervisor", "555555").ok
    assert users.add("02", "cashier", "555555").message == "users.exists"
    assert users.add("abc", "cashier", "555555").message == "users.bad_id"
    assert users.add("03", "boss", "555555").message == "users.bad_role"
    assert users.add("03", "cashier", "12").message == "password.too_short"
    assert users.add("03", "cashier", "12345").message == "password.too_short"  # 6 digits since issue 19
    assert users.set_role("01", "technician").ok and users.get("01").role == "technician"
    assert users.set_role("01", "root").message == "users.bad_role"
    assert users.unlock("99").message == "users.unknown"
    assert users.reset_password("99", "123456").message == "users.unknown"
    assert users.reset_password("01", "1234").message == "password.too_short"


def test_own_password_change(users):
    assert users.change_own_password("01", "9999", "234567").message == "password.old_wrong"
    assert users.change_own_password("01", "1111", "1111").message == "password.same"
    assert users.change_own_password("01", "1111", "12").message == "password.too_short"
    assert users.change_own_password("01", "1111", "2345").message == "password.too_short"
    assert users.change_own_password("01", "1111", "234567").ok
    assert users.login("01", "234567").user is not None


def _sale(j, iccid, msisdn, amount, cashier, state, channel="card", fee=0):
    txn = j.begin(order_id=f"O{iccid[-4:]}{amount}{cashier}{state}", iccid=iccid, msisdn=msisdn, plan_id="P",
                  plan_name="plan", amount_minor=amount, fee_minor=fee, channel=channel, cashier_id=cashier)
    for step in path_to(state):  # the journal refuses jumps: walk a legal path
        j.update(txn, step)
    return txn


def test_history_search_and_shift_summary(tmp_path):
    j = Journal(tmp_path / "j.db")
    a = _sale(j, "89860424000000000017", "1064900000001", 3000, "01", "completed")
    b = _sale(j, "89860424000000000025", "1064900000002", 2000, "01", "reversed", fee=12)
    c = _sale(j, "89860424000000000033", "1064900000003", 3000, "02", "completed", channel="wallet")
    d = _sale(j, "89860424000000000041", "1064900000004", 1000, "02", "declined")
    today = dt.date.today().isoformat()

    def ids(**f):
        return [r.txn_id for r in search(j, HistoryFilter(**f))]
    assert ids() == [d, c, b, a]  # newest first
    assert ids(sim_tail="0017") == [a] and ids(sim_tail="0002") == [b]  # ICCID or MSISDN tail
    assert ids(amount_minor=3000) == [c, a] and ids(amount_minor=2012) == [b]  # amount or total paid
    assert ids(channel="wallet") == [c] and ids(cashier_id="01") == [b, a]
    assert ids(day=today) == [d, c, b, a] and ids(day="2020-01-01") == []
    summary = {row.cashier_id: row for row in shift_summary(j, today)}
    assert (summary["01"].sales, summary["01"].sales_minor, summary["01"].reversed, summary["01"].reversed_minor) \
        == (1, 3000, 1, 2012)
    assert (summary["02"].sales, summary["02"].other) == (1, 1)
    assert [r.cashier_id for r in shift_summary(j, today, "02")] == ["02"]


def test_duplicate_frames_the_receipt():
    lines = duplicate((ReceiptLine("TOTAL ￥30.00"),), "both")
    assert [ln.text for ln in lines] == ["*** DUPLICATE / 重印 ***", "TOTAL ￥30.00", "*** DUPLICATE / 重印 ***"]
    assert duplicate((), "zh")[0].text == "*** 重印 ***"


def test_settings_store_overrides_the_configuration(tmp_path):
    from terminal.config import Settings
    from terminal.settings_store import SettingsStore

    path = tmp_path / "j.db"
    store = SettingsStore(Journal(path))
    base = Settings.from_dict({"timeouts": {"idle_s": 300}, "security": {"max_failed": 5}})
    assert store.apply(base) == base
    store.set("timeouts.idle_s", 120)
    store.set("security.max_failed", 3)
    for key, value in (("timeouts.idle_s", 10), ("security.max_failed", 11), ("host.port", 1)):
        with pytest.raises(ValueError):
            store.set(key, value)
    store.journal.close()
    applied = SettingsStore(Journal(path)).apply(base)  # survives a restart
    assert (applied.timeouts.idle_s, applied.security.max_failed) == (120.0, 3)
    assert isinstance(applied.timeouts.idle_s, float) and applied.host == base.host
