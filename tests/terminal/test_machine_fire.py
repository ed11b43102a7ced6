"""The core fires the machine's events directly, on a machine whose states know their names once
(``terminal.machine._NamedState``): a plain ``transitions.Machine`` built from the same table is the oracle, and
every state × trigger moves (or refuses) exactly as it does, with one ``on_state_change`` per move."""

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


def test_every_state_and_trigger_moves_as_a_plain_transitions_machine_does() -> None:
    oracle_model = _Model()
    oracle = Machine(model=oracle_model, states=State, transitions=[list(t) for t in TRANSITIONS],
                     initial=State.BOOT, auto_transitions=False, after_state_change="on_state_change")
    d = Driver()
    core = d.core
    changes: list[State] = []
    core.machine.after_state_change = [lambda: changes.append(core.state)]  # the moves only, no screens
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
