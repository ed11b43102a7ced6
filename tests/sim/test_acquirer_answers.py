"""The simulated acquirer's wrong answers (sim.backends.acquirer_answers): each changed field keeps its form (so
only the terminal's comparison with its request can catch it), and a bad scenario switch is refused by name."""

from __future__ import annotations

import pytest

from drivers.host import messages as m
from sim.backends.acquirer_answers import CHANGEABLE, changed, parse_change, partial_amount

ANSWER = {"t": "0210", "3": "000000", "4": "000000003000", "11": "000001", "39": "00", "41": "SIM00001",
          "42": "M00000000000001", "49": "156"}


@pytest.mark.parametrize("key", CHANGEABLE)
def test_a_changed_field_differs_and_still_packs(key: str) -> None:
    out = changed(ANSWER, key)
    assert out[key].rstrip() != ANSWER[key].rstrip() and len(out[key]) == len(ANSWER[key])
    assert m.unpack(m.pack(out))[key].rstrip() == out[key].rstrip()
    assert {k: v for k, v in out.items() if k != key} == {k: v for k, v in ANSWER.items() if k != key}


@pytest.mark.parametrize(("amount", "half"), [(3000, 1500), (3010, 1505), (3, 1), (1, 1)])
def test_a_partial_approval_approves_half_at_least_one_fen(amount: int, half: int) -> None:
    assert partial_amount(amount) == half


@pytest.mark.parametrize("value", ["0210", "0210:", "0200:4", "0210:11", "4", "0410:39", "x:y"])
def test_a_bad_switch_value_is_refused_by_name(value: str) -> None:
    with pytest.raises(ValueError, match="acquirer_answer_change"):
        parse_change(value)


def test_switch_values() -> None:
    assert parse_change("0230:49") == ("0230", "49") and parse_change("") is None
    with pytest.raises(ValueError, match="one of"):
        changed(ANSWER, "39")


@pytest.mark.parametrize(("switch", "value"), [("acquirer_answer_change", "0210:39"),
                                               ("acquirer_answer_change", "4"),
                                               ("acquirer_advice_code", "9"),
                                               ("acquirer_advice_code", 96)])
def test_a_scenario_switch_with_a_bad_value_fails_the_step_by_name_and_changes_nothing(switch: str,
                                                                                       value: object) -> None:
    from types import SimpleNamespace

    from sim.backends.acquirer import AcquirerSim
    from sim.runner.scenario import StepFailure, _Runner

    acquirer = AcquirerSim(bdk=bytes(16))  # never started: only its switches are looked at
    runner = _Runner(SimpleNamespace(acquirer=acquirer))  # type: ignore[arg-type]
    with pytest.raises(StepFailure, match=switch):
        runner.set({switch: value}, 1.0)
    assert (acquirer.answer_change, acquirer.advice_code) == (None, None)
    runner.set({"acquirer_answer_change": "0410:4", "acquirer_advice_code": "96"}, 1.0)
    assert (acquirer.answer_change, acquirer.advice_code) == (("0410", "4"), "96")
