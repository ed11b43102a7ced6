"""A card sale through the whole simulated world: the top-up sent to the carrier names the acquirer's RRN."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.runner.scenario import load_scenario, run_scenario
from sim.runner.world import SimWorld

HAPPY = Path(__file__).resolve().parents[2] / "scenarios" / "happy_path.toml"


@pytest.mark.scenario
def test_the_card_sales_rrn_is_the_topups_funding_ref() -> None:
    seen: dict[str, object] = {}

    def inspect(world: SimWorld) -> None:
        seen["ledger"] = world.carrier.ledger
        seen["rrns"] = [row.rrn for row in world.services.journal.all_transactions() if row.rrn]
        seen["refused"] = list(world.carrier.refused)

    result = run_scenario(load_scenario(HAPPY), inspect=inspect)
    assert result.passed, result.message
    ledger = seen["ledger"]
    assert isinstance(ledger, list) and len(ledger) == 1
    assert ledger[0].funding_ref and ledger[0].funding_ref in seen["rrns"]  # type: ignore[operator]
    assert seen["refused"] == []  # every request of the sale was signed and fresh
