"""The core fires a move of its table as the machine's ``set_state`` and ``on_state_change``
(``terminal.machine.plain_moves``: the table has no conditions or callbacks) and anything else through the
machine's events, on states that know their names once (``_NamedState``): a plain ``transitions.Machine`` built
from the same table is the oracle, and every state × trigger moves (or refuses, with transitions' own error)
exactly as it does, with one ``on_state_change`` per move, either way."""

from __future__ import annotations

import pytest
from transitions import Machine, MachineError

from terminal.machine import TRANSITIONS, State
from tests.terminal.test_core import Driver


class _Model:
    def __init__(self) -> None:
        self.changes = 0

    def on_state_change(self) -> None:
        self.changes += 1


@pytest.mark.parametrize("plain", [True, False], ids=["set_state", "transitions_events"])
def test_every_state_and_trigger_moves_as_a_plain_transitions_machine_does(plain: bool) -> None:
    oracle_model = _Model()
    oracle = Machine(model=oracle_model, states=State, transitions=[list(t) for t in TRANSITIONS],
                     initial=State.BOOT, auto_transitions=False, after_state_change="on_state_change")
    d = Driver()
    core = d.core
    changes: list[State] = []
    record = lambda: changes.append(core.state)  # noqa: E731 - the moves only, no screens
    core.on_state_change = record  # type: ignore[method-assign]
    core.machine.after_state_change = [record]
    assert core._moves is not None  # the table has no callbacks: fired as the machine's set_state (plain_moves)
    if not plain:
        core._moves = None  # as for a machine with callbacks: every fire through transitions' events
    moved = 0
    for state in State:
        for trigger in sorted({t for t, _, _ in TRANSITIONS}):
            oracle.set_state(state, oracle_model)
            core.machine.set_state(state)
            before = oracle_model.changes
            try:
                oracle_model.trigger(trigger)  # type: ignore[attr-defined]
            except MachineError:
                with pytest.raises(MachineError):
                    core.fire(trigger)
                assert core.state is state and changes == []
                continue
            core.fire(trigger)
            assert core.state is oracle_model.state, (state, trigger)  # type: ignore[attr-defined]
            assert changes == [core.state] and oracle_model.changes == before + 1
            changes.clear()
            moved += 1
    assert moved == sum(len(src) if isinstance(src, list) else 1 for _, src, _ in TRANSITIONS)
    with pytest.raises(AttributeError):
        core.fire("no_such_trigger")


def test_a_state_is_named_as_transitions_names_it() -> None:
    core = Driver().core
    for state in State:
        assert core.machine.get_state(state).name == state.name
        assert core.machine.get_state(state).value is state


@pytest.mark.parametrize("extra", ["state_enter", "condition", "before", "machine_hook", "other_after"])
def test_a_machine_that_does_more_than_change_state_is_fired_through_transitions(extra: str) -> None:
    from terminal.machine import build_machine, plain_moves

    model = _Model()
    machine = build_machine(model)
    after = machine.after_state_change[0]
    assert plain_moves(machine, after) is not None
    entered: list[str] = []
    if extra == "state_enter":
        machine.get_state(State.HOME).add_callback("enter", lambda: entered.append("home"))
    elif extra == "condition":
        machine.add_transition("booted", State.BOOT, State.LOGIN, conditions=[lambda: True])
        machine.events["booted"].transitions["BOOT"].reverse()  # the guarded move first
    elif extra == "before":
        machine.events["logged_in"].transitions["LOGIN"][0].add_callback("before", lambda: entered.append("x"))
    elif extra == "machine_hook":
        machine.prepare_event = [lambda: entered.append("prepare")]
    else:
        after = lambda: None  # noqa: E731 - not the callback the machine calls after a move
    assert plain_moves(machine, after) is None
