"""The sans-I/O terminal core driven by hand: events in, commands out; no threads, no clock, no devices.

Work the core asks for is run here, in the test, with a fake ``WorkContext`` — exactly what the shell does on a
worker thread — and its answer fed back as ``WorkDone``.
"""

import pathlib
import re
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from flows.ports import CancelToken, Plan, SimInfo
from terminal.config import Settings
from terminal.core import (
    ArmDeadline,
    Audit,
    KeyPressed,
    Progress,
    Render,
    Started,
    StartWork,
    TerminalCore,
    Tick,
    WorkDone,
)
from terminal.handlers import HANDLERS
from terminal.journal import Journal
from terminal.machine import State
from terminal.screens import Key
from terminal.users import UserStore, hash_password
from terminal.work import WorkContext

ICCID = "89860424000000000017"
PLAN = Plan("P1", "Monthly 1 GB", "包月 1 GB", 1, 3000, 1024)


class FakeCarrier:
    def __init__(self, sim: SimInfo | None) -> None:
        self.sim, self.asked = sim, []

    def lookup_sim(self, number: str) -> SimInfo | None:
        self.asked.append(number)
        return self.sim

    def list_plans(self, iccid: str) -> list[Plan]:
        return [PLAN]


def _services(sim: SimInfo | None = None) -> Any:
    journal = Journal(":memory:")
    users = UserStore(journal)
    users.ensure("01", "Li", "cashier", hash_password("1111", n=2**10))
    active = SimInfo(ICCID, "1064800000017", "active", "IoT", 500, 100, "2027-01-01")
    return SimpleNamespace(settings=Settings.from_dict({"terminal": {"id": "T0000001"}}), journal=journal,
                           users=users, carrier=FakeCarrier(sim or active), audit=None, settings_store=None,
                           wallet_topup=None)


def _run(services: Any, work: StartWork) -> Any:
    """What the shell does on a worker thread."""
    ctx = WorkContext(services, lambda item: None, CancelToken(), threading.Lock(), threading.Lock())
    return work.run(ctx)


class Driver:
    def __init__(self, sim: SimInfo | None = None) -> None:
        self.services = _services(sim)
        self.core = TerminalCore(self.services, HANDLERS)
        self.now = 100.0
        self.commands: list[Any] = []

    def feed(self, event: Any) -> list[Any]:
        out = self.core.handle(event, self.now)
        self.commands += out
        return out

    def keys(self, text: str) -> None:
        for word in text.split():
            for key in ([word] if word in Key.__members__ else list(word)):
                self.feed(KeyPressed(Key[key] if key in Key.__members__ else Key(key)))

    def work(self, out: list[Any], kind: str) -> StartWork:
        return next(c for c in out if isinstance(c, StartWork) and c.kind == kind)

    def logged_in(self) -> None:
        boot = self.work(self.feed(Started()), "boot")
        self.feed(WorkDone(boot.ticket, (True, (), ())))
        self.keys("01 ENTER 1111 ENTER")


def test_boot_asks_for_work_and_its_answer_moves_the_machine():
    d = Driver()
    out = d.feed(Started())
    assert [type(c) for c in out] == [StartWork] and out[0].kind == "boot"
    assert d.core.state is State.BOOT
    out = d.feed(WorkDone(out[0].ticket, (True, ("recovered 1",), ())))
    assert d.core.state is State.LOGIN
    assert any(isinstance(c, Render) and c.screen.state == "login" for c in out)


def test_login_is_audited_as_a_command_and_the_idle_deadline_is_armed():
    d = Driver()
    d.logged_in()
    assert d.core.state is State.HOME
    assert Audit("01", "login", "cashier (password too short: told to change)") in d.commands  # 4 digits: old
    armed = [c for c in d.commands if isinstance(c, ArmDeadline)][-1]
    assert armed.at == d.now + d.services.settings.timeouts.idle_s


def test_sim_lookup_runs_as_work_and_its_answer_opens_the_details():
    d = Driver()
    d.logged_in()
    d.keys(f"1 {ICCID} ENTER")
    assert d.core.state is State.SIM_LOOKUP
    lookup = d.work(d.commands, "lookup")
    assert d.services.carrier.asked == []  # the core asked; nothing ran yet
    d.feed(WorkDone(lookup.ticket, _run(d.services, lookup)))
    assert d.core.state is State.SIM_DETAILS and d.core.session.plans == [PLAN]


def test_an_answer_after_cancel_is_dropped():
    d = Driver()
    d.logged_in()
    d.keys(f"1 {ICCID} ENTER")
    lookup = d.work(d.commands, "lookup")
    d.keys("CANCEL")
    assert d.core.state is State.SIM_ENTRY
    out = d.feed(WorkDone(lookup.ticket, _run(d.services, lookup)))
    assert out == [] and d.core.state is State.SIM_ENTRY
    assert d.feed(Progress(lookup.ticket, "late")) == []


@pytest.mark.parametrize(("sim", "error"), [
    (None, "Unknown SIM number"),
    (SimInfo(ICCID, "1064800000017", "suspended", "IoT", 0, 0, ""), "SUSPENDED"),
])
def test_lookup_problems_come_back_to_entry_with_the_flow_rule_message(sim, error):
    d = Driver(sim)
    d.core.services.carrier.sim = sim
    d.logged_in()
    d.keys(f"1 {ICCID} ENTER")
    lookup = d.work(d.commands, "lookup")
    d.feed(WorkDone(lookup.ticket, _run(d.services, lookup)))
    assert d.core.state is State.SIM_ENTRY and error in (d.core.session.error or "")


def test_a_tick_before_the_deadline_does_nothing_after_it_the_lookup_times_out():
    d = Driver()
    d.logged_in()
    d.keys(f"1 {ICCID} ENTER")
    deadline = d.core.get_timer()
    assert deadline == d.now + d.services.settings.timeouts.lookup_s
    assert d.feed(Tick()) == [] and d.core.state is State.SIM_LOOKUP
    d.now = deadline
    d.feed(Tick())
    assert d.core.state is State.SIM_ENTRY and "did not answer" in (d.core.session.error or "")


def test_every_screen_that_takes_keys_has_one_handler():
    waiting = {State.BOOT, State.SETTLING, State.VOIDING}
    assert set(HANDLERS.screens) == set(State) - waiting


def test_no_handler_is_found_by_building_a_name_and_no_class_is_built_from_mixins():
    root = pathlib.Path(__file__).parents[2] / "terminal"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"getattr\(self, f[\"']", text), path
        assert not re.search(r"_key_\{|_done_\{|_open_\{", text), path
        assert len(text.splitlines()) < 400, path


def test_printer_errors_are_chosen_by_fault_code_never_by_the_driver_text():
    from flows.messages import t
    from pos_errors import DeviceError, DeviceFault
    from terminal.handlers.result import device_error_text

    core: Any = SimpleNamespace(say=lambda key, **args: t(key, "zh", **args))
    assert device_error_text(core, DeviceError("whatever the driver says", DeviceFault.PAPER_OUT)) == \
        t("printer.paper_out", "zh")
    assert device_error_text(core, DeviceError("Printer out of paper - load paper")) == \
        t("err.device", "zh")  # no code: its kind in the cashier's words, never the engineer's text
    assert device_error_text(core, RuntimeError("bug")) == t("err.other", "zh")  # never a repr


def test_a_view_that_did_not_change_is_not_sent_to_the_display_again_one_that_changed_is():
    """Issue 17 item 3: every event used to re-send the whole screen, also when nothing on it had changed."""
    d = Driver()
    d.logged_in()
    d.keys(f"1 {ICCID}")  # 20 digits: the entry is full
    assert d.core.screen.entry is not None and d.core.screen.entry.replace(" ", "").endswith(ICCID[-4:])
    assert not any(isinstance(c, Render) for c in d.feed(KeyPressed(Key.D5)))  # a 21st digit changes nothing
    assert not any(isinstance(c, Render) for c in d.feed(Tick()))  # nor does a tick before any deadline
    out = [c for c in d.feed(KeyPressed(Key.CLEAR)) if isinstance(c, Render)]
    assert len(out) == 1 and out[0].screen == d.core.screen and out[0].screen.state == "sim_entry"
    assert not out[0].screen.entry.replace(" ", "").endswith(ICCID[-4:])  # type: ignore[union-attr]


def test_a_work_step_that_changes_nothing_is_not_drawn_again():
    """Issue 17 item 3 (second pass): a progress step is drawn only when it changes the view, like any event."""
    from terminal.handlers.sim import _looked_up

    d = Driver()
    d.logged_in()
    seen: list[Any] = []
    d.core.start("probe", lambda ctx: None, _looked_up, lambda core, item: (seen.append(item), core.refresh()))
    probe = d.work(d.core._out, "probe")
    d.feed(Tick())
    out = [c for c in d.feed(Progress(probe.ticket, "waiting")) if isinstance(c, Render)]
    assert seen == ["waiting"] and out == []


def test_the_insert_screen_is_busy_until_the_reader_waits_for_the_card_then_drawn_without_its_spinner():
    """The real signal that the customer may insert, swipe or tap (the crash harness acts on it): the view changes
    when the payment reports ``Step.WAIT_CARD``; before, the sale is still being prepared (journal, card slot)."""
    from flows.card_payment import Step

    d = Driver()
    d.logged_in()
    d.keys(f"1 {ICCID} ENTER")
    d.feed(WorkDone(d.work(d.commands, "lookup").ticket, _run(d.services, d.work(d.commands, "lookup"))))
    d.keys("ENTER 1 1")
    assert d.core.state is State.CONFIRM, d.core.state
    d.keys(f"{ICCID[-4:]} ENTER")
    assert d.core.state is State.INSERT_CARD and d.core.screen.busy
    payment = d.work(d.commands, "payment")
    drawn = [c.screen for c in d.feed(Progress(payment.ticket, Step.WAIT_CARD)) if isinstance(c, Render)]
    assert [(screen.state, screen.busy) for screen in drawn] == [("insert_card", False)]
    assert [c for c in d.feed(Progress(payment.ticket, Step.WAIT_CARD)) if isinstance(c, Render)] == []


def test_may_trigger_answers_as_the_transitions_machine_does_for_every_state_and_trigger():
    """The core's ``may_trigger`` reads the table (``MOVES``); transitions itself, firing on a model of its own, is the
    oracle: a trigger is allowed exactly where firing it moves that machine."""
    from transitions import MachineError

    from terminal.machine import TRANSITIONS, build_machine

    d = Driver()
    triggers = sorted({trigger for trigger, _, _ in TRANSITIONS})
    allowed = 0

    class Model:
        def on_state_change(self) -> None:
            pass

    model = Model()
    oracle = build_machine(model)  # one machine, put back in the state before every trigger (building one each: 17 s)
    for state in State:
        d.core.machine.set_state(state)
        for trigger in triggers:
            oracle.set_state(state, model)
            try:
                fired = model.trigger(trigger)  # type: ignore[attr-defined]
            except MachineError:
                fired = False
            assert d.core.may_trigger(trigger) is bool(fired), (state, trigger)
            allowed += bool(fired)
    assert allowed > 80  # the sweep met the allowed moves, not only refusals
