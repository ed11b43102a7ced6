"""Every contactless scenario (scenarios/contactless/) headless through the real reader pty, PIN pad pty, acquirer
socket and SQLite journal: each asserts the Entry Point's outcome, TVR, CVM results and what the acquirer
received. Every simulated tap card and phone (sim/devices/contactless_cards.py) is tapped in at least one."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sim.devices.contactless_cards import TAP_KEYS
from sim.runner.scenario import load_scenario, run_scenario

TAP_SCENARIOS = sorted(Path(__file__).resolve().parents[2].joinpath("scenarios", "contactless").glob("*.toml"))


def _tapped(path: Path) -> set[str]:
    steps = tomllib.loads(path.read_text(encoding="utf-8"))["steps"]
    taps = [s["tap"] for s in steps if "tap" in s]
    return {t if isinstance(t, str) else t["card"] for t in taps} | \
        {t["collide_with"] for t in taps if isinstance(t, dict) and "collide_with" in t}


def test_every_tap_card_is_tapped_in_a_scenario() -> None:
    tapped = set().union(*(_tapped(p) for p in TAP_SCENARIOS))
    assert set(TAP_KEYS) <= tapped, f"no scenario taps {sorted(set(TAP_KEYS) - tapped)}"
    assert len(TAP_SCENARIOS) >= 12


@pytest.mark.scenario
@pytest.mark.parametrize("path", TAP_SCENARIOS, ids=lambda p: p.stem)
def test_contactless_scenario(path: Path) -> None:
    result = run_scenario(load_scenario(path))
    assert result.passed, result.message + "\n" + "\n".join(result.log)


@pytest.mark.parametrize(("find", "replace", "complaint"), [
    ('"9F34" = "020002"', '"9F34" = "1F0002"', "0200 received with"),  # the acquirer checks are real
    ('pin = true', 'pin = false', "0200 received with"),
])
def test_expect_acquirer_fails_on_a_wrong_value(tmp_path: Path, find: str, replace: str, complaint: str) -> None:
    text = (TAP_SCENARIOS[0].parent / "over_cvm_limit_online_pin.toml").read_text(encoding="utf-8")
    assert find in text
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(text.replace(find, replace).replace("expect_acquirer = {", "timeout = 0.5\nexpect_acquirer = {"),
                     encoding="utf-8")
    result = run_scenario(load_scenario(wrong))
    assert not result.passed and complaint in result.message
