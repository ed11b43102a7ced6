"""A terminal stopped right after its login screen shows (the boot self-test still running) stops its works before
its services close: no "Cannot operate on a closed database" from a self-test outliving the journal."""

from __future__ import annotations

import logging

import pytest

from sim.runner.scenario import load_scenario, run_scenario


def test_a_terminal_stopped_at_login_leaves_no_work_on_closed_services(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    scenario = tmp_path / "login_stop.toml"
    scenario.write_text('name = "login, then stop"\n[[steps]]\nwait = "login"\n', encoding="utf-8")
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        result = run_scenario(load_scenario(scenario))
        assert result.passed, result.message
    assert "closed database" not in caplog.text
