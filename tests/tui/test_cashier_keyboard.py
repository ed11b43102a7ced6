"""The real simulated world behind the Textual UI: a person reaches the cashier and supervisor functions with
the keyboard alone (log in, language, balance query, audit log, diagnostics with the PIN pad's cable pulled by
``U``)."""

from __future__ import annotations

import asyncio

import pytest

from sim.runner.world import SimWorld
from sim.tui.app import PosSimApp, ScreenView
from tests.tui.conftest import until


@pytest.mark.slow
def test_supervisor_and_technician_functions_by_keyboard():
    world = SimWorld().start()
    seen: dict[str, str] = {}

    async def main() -> None:
        app = PosSimApp(world)
        async with app.run_test(size=(150, 50)) as pilot:
            async def on(state: str, timeout: float = 10.0) -> None:
                await until(pilot, lambda: world.screen.state == state, timeout)

            async def keys(*names: str) -> None:
                await pilot.press(*names)

            await on("login")
            await keys(*"90", "enter", *"9999", "enter")
            await on("home")
            await keys("0")  # language: Chinese only
            await until(pilot, lambda: world.screen.title == "主页")
            await pilot.pause(0.2)
            seen["display"] = str(app.query_one(ScreenView).screen_model.text())
            await keys("0", "2", *"1064900000001", "enter")  # English, then the balance query
            await on("balance")
            seen["balance"] = world.screen.text()
            await keys("escape")
            await on("home")
            await keys("6")
            await on("audit")
            seen["audit"] = world.screen.text()
            await keys("escape", "9", "enter")
            await on("login")
            await keys("U")  # pull the PIN pad's cable
            await keys(*"80", "enter", *"8888", "enter")
            await on("home")
            await keys("7")
            await until(pilot, lambda: "PIN pad: not answering" in world.screen.text())
            seen["diagnostics"] = world.screen.text()
            await keys("U")
            await until(pilot, lambda: world.device("pinpad").connected)  # the second ``U`` plugged it back in

    try:
        asyncio.run(main())
    finally:
        world.stop()
    assert "主页" in seen["display"] and "Home" not in seen["display"]
    assert "Balance: ￥12.50" in seen["balance"] and "余额" not in seen["balance"]
    assert "90 login supervisor" in seen["audit"]
    assert "Printer: OK" in seen["diagnostics"]
