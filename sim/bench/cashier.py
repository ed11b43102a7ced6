"""Cashier-function measurements for ``make bench``: key presses of a regular top-up, the self-test's duration
against all-healthy simulated devices, and the plan-advice search on the simulator's catalogue.

Measured, never asserted. The key count comes from running ``scenarios/cashier_fast_topup.toml`` (which itself
fails when the count changes), so the number printed is one a scenario has just proven.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Any

from drivers.carrier import _plan
from flows.advice import Need, advise
from sim.backends.carrier import PLANS
from sim.runner.scenario import load_scenario, run_scenario
from sim.runner.world import SimWorld
from terminal.diagnostics import run_checks

__all__ = ["measure"]

ROOT = Path(__file__).resolve().parents[1]
FAST_TOPUP = ROOT / "scenarios" / "cashier_fast_topup.toml"
SELF_TEST_TARGET_S = 0.25  # the boot budget is 0.40 s in all; the self-test should leave room for the rest
ADVICE_TARGET_S = 0.010


def _key_count() -> int | None:
    result = run_scenario(load_scenario(FAST_TOPUP))
    if not result.passed:
        return None
    steps = tomllib.loads(FAST_TOPUP.read_text(encoding="utf-8"))["steps"]
    return next(int(s["expect_key_count"]) for s in steps if "expect_key_count" in s)


def _self_test_s(runs: int = 5) -> float:
    world = SimWorld().start()
    try:
        world.wait_for("login", 10)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            checks = run_checks(world.services)
            times.append(time.perf_counter() - started)
            if not all(c.ok for c in checks):
                raise RuntimeError(f"self-test not healthy: {[c.text('en') for c in checks if not c.ok]}")
        return sorted(times)[runs // 2]
    finally:
        world.stop()


def _advice_s(runs: int = 20) -> float:
    plans = [_plan(p.to_json()) for p in PLANS]
    need = Need(data_mb=3 * 1024, sms=120, voice_min=60, months=12)  # many months and add-ons: the widest search
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        advise(plans, need)
        times.append(time.perf_counter() - started)
    return sorted(times)[runs // 2]


def measure() -> dict[str, Any]:
    self_test, advice = _self_test_s(), _advice_s()
    return {
        "keys_per_regular_topup": _key_count(),
        "self_test_s": round(self_test, 4),
        "self_test_ratio_to_target": round(self_test / SELF_TEST_TARGET_S, 2),
        "advice_search_s": round(advice, 5),
        "advice_ratio_to_target": round(advice / ADVICE_TARGET_S, 2),
        "note": "keys from home back to home, by mobile number; self-test = every check (10 in the simulator), "
                "all OK, median of 5",
    }
