"""Every shipped scenario, run headless through real ptys, loopback sockets and SQLite."""

from pathlib import Path

import pytest

from sim.runner.scenario import load_scenario, run_scenario

SCENARIOS = sorted(Path(__file__).resolve().parents[2].joinpath("scenarios").glob("*.toml"))


def test_the_required_scenarios_ship():
    names = {p.stem for p in SCENARIOS}
    assert {"happy_path", "wrong_pin_then_right", "host_decline", "host_unreachable", "cancel_everywhere",
            "unknown_sim", "inactive_sim"} <= names


@pytest.mark.scenario
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario(path):
    result = run_scenario(load_scenario(path))
    assert result.passed, result.message + "\n" + "\n".join(result.log)
