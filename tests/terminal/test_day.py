"""Issue 14 (a cashier's whole day), driven through the sans-I/O core: menus by role, logout with a question."""

import pytest

from terminal.core import Audit
from terminal.machine import State
from terminal.roles import Role, allowed, home_menu
from terminal.users import User
from terminal.views import Session, render_home
from tests.terminal.test_core import Driver


@pytest.mark.parametrize("role", list(Role))
def test_each_roles_home_menu_lists_only_what_it_may_use(role):
    screen = render_home(Session(user=User("07", "X", role.value)))
    keys = {m.key for m in screen.menu}
    may = {key for key, action, _ in home_menu(role.value) if allowed(role.value, action)}
    assert keys == may | {"9"}
    assert all(m.enabled for m in screen.menu)


def test_cashier_home_hides_supervisor_and_technician_items():
    text = render_home(Session(user=User("01", "Li", "cashier"), lang="en")).text()
    for item in ("Users", "Audit log", "Diagnostics", "Settings", "Void", "Settlement", "Open items", "Firmware"):
        assert item not in text


def test_cancel_on_home_stays_and_9_asks_before_logging_out():
    d = Driver()
    d.logged_in()
    d.keys("CANCEL")
    assert d.core.state is State.HOME
    d.keys("9")
    assert d.core.state is State.HOME and "Log out?" in d.core.screen.text()
    d.keys("CANCEL")
    assert d.core.state is State.HOME and "Log out?" not in d.core.screen.text()
    d.keys("9 9")  # a bounced 9 is not a yes
    assert d.core.state is State.HOME
    d.keys("9 ENTER")
    assert d.core.state is State.LOGIN
    assert Audit("01", "logout", "") in d.commands


def test_the_logout_question_does_not_survive_leaving_home():
    d = Driver()
    d.logged_in()
    d.keys("9")
    d.core.fire("start_topup")
    d.keys("CANCEL")
    assert d.core.state is State.HOME and not d.core.session.logout_asked


def test_a_hidden_items_key_is_still_refused_with_who_may():
    d = Driver()
    d.logged_in()
    d.keys("F2")
    assert d.core.state is State.HOME and "supervisor only" in (d.core.screen.error or "")


@pytest.mark.parametrize(("status", "offered"), [
    ("declined", True), ("cancelled", True), ("failed", True),
    ("completed", False), ("pending", False), ("reversed", False), ("reversal_pending", False),
])
def test_retry_is_offered_only_when_nothing_was_charged(status, offered):
    from flows.ports import Plan, SimInfo
    from flows.pricing import Quote
    from flows.topup import TopupOutcome
    from terminal.views import render_result, retriable

    plan = Plan("P1", "Monthly 1 GB", "包月 1 GB", 1, 3000, 1024)
    s = Session(lang="en", sim=SimInfo("89860424000000000017", "1064800000017", "active", "IoT", 0, 0, ""),
                quote=Quote(plan, "card", 3000, 0), outcome=TopupOutcome(status, "x", 1, "O1"))
    assert retriable(s) is offered
    assert ("F2 another channel" in render_result(s).text()) is offered


def test_a_card_fee_percentage_with_a_minimum_from_the_config():
    from flows.messages import say
    from terminal.config import ConfigError, Settings

    fees = Settings.from_dict({"terminal": {"id": "T0000001"},
                               "fees": {"card": {"rate_bps": 60, "min_fee_fen": 50}}}).fees
    assert (fees.fee("card", 3000), fees.fee("card", 20000)) == (50, 120)
    assert say(fees.describe("card"), "en") == "fee 0.60 %, min ￥0.50"
    assert fees.describe("wechat") is None
    with pytest.raises(ConfigError):
        Settings.from_dict({"terminal": {"id": "T0000001"}, "fees": {"card": {"min_fee_fen": -1}}})


def test_enter_on_home_rechecks_the_devices_and_a_passing_check_clears_the_warning():
    from terminal.core import StartWork, WorkDone
    from terminal.diagnostics import Check

    d = Driver()
    d.logged_in()
    d.core.session.health = (Check("dev.printer", False),)
    d.core.refresh()
    assert "ENTER checks the devices again" in d.core.screen.text()
    d.keys("ENTER")  # a cashier, who may not open Diagnostics
    work = [c for c in d.commands if isinstance(c, StartWork) and c.kind == "health"][-1]
    assert "Checking the devices" in d.core.screen.text() and d.core.state is State.HOME
    d.feed(WorkDone(work.ticket, []))  # every check passed
    assert d.core.session.health == () and "Device check found" not in d.core.screen.text()
