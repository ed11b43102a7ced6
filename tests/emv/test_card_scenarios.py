"""Every catalogue card as a headless scenario through the real reader pty, PIN pad pty, acquirer socket and
SQLite journal; each ends in its documented outcome with the documented TVR, TSI and CVM results
(``expect_emv`` step). The catalogue is documented in sim/devices/cards.py and README ("Test cards")."""

from pathlib import Path

import pytest

from sim.devices.cards import CATALOGUE
from sim.runner.scenario import load_scenario, run_scenario

CARD_SCENARIOS = sorted(Path(__file__).resolve().parents[2].joinpath("scenarios", "cards").glob("*.toml"))


def test_every_catalogue_card_has_its_scenario():
    assert len(CATALOGUE) >= 15
    assert {p.stem for p in CARD_SCENARIOS} == {key.replace("-", "_") for key in CATALOGUE}


@pytest.mark.scenario
@pytest.mark.parametrize("path", CARD_SCENARIOS, ids=lambda p: p.stem)
def test_card_scenario(path):
    result = run_scenario(load_scenario(path))
    assert result.passed, result.message + "\n" + "\n".join(result.log)


def test_expect_emv_fails_on_a_wrong_tvr(tmp_path):
    text = CARD_SCENARIOS[0].read_text(encoding="utf-8")
    wrong = tmp_path / "wrong.toml"
    lines = [line.replace('tvr = "', 'tvr = "F') + ("\ntimeout = 0.5" if line.startswith("expect_emv") else "")
             for line in text.splitlines()]
    wrong.write_text("\n".join(lines), encoding="utf-8")
    result = run_scenario(load_scenario(wrong))
    assert not result.passed and "EMV data" in result.message
