"""``python -m sim.docs_pictures [DIR]`` (``make docs``): the pictures the README shows, made from the real thing.

A cashier's whole chip sale is keyed into the Textual simulator (headless, through Textual's pilot, as a person
would press the keys): log in, SIM, plan, channel, confirm, insert the card, PIN on the PIN pad. Then the screen
is saved as SVG (``simulator.svg``) and the printed receipt as PNG (``receipt.png``, drawn by the simulated
printer from the ESC/POS bytes the terminal sent).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sim.runner.world import SimWorld

__all__ = ["make_pictures"]

ICCID = "89860424000000000017"


def make_pictures(out: Path) -> list[Path]:
    from sim.tui.app import PosSimApp

    out.mkdir(parents=True, exist_ok=True)
    world = SimWorld().start()
    made: list[Path] = []

    async def main() -> None:
        app = PosSimApp(world)
        async with app.run_test(size=(160, 48)) as pilot:
            async def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
                deadline = time.monotonic() + timeout
                while not check():
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"screen stayed at {world.screen.state}:\n{world.screen.text()}")
                    await pilot.pause(0.05)

            async def at(state: str) -> None:
                await until(lambda: world.screen.state == state)

            await at("login")
            await pilot.press(*"01", "enter", *"1111", "enter")
            await at("home")
            await pilot.press("1")
            await at("sim_entry")
            await pilot.press(*ICCID, "enter")
            await at("sim_details")
            await pilot.press("enter")
            await at("plan_select")
            await pilot.press("3")
            await at("channel_select")
            await pilot.press("1")
            await at("confirm")
            await pilot.press(*ICCID[-4:], "enter")
            await at("insert_card")
            await pilot.press("i")
            await until(lambda: world.pinpad.awaiting_pin)
            await pilot.press(*"1234", "enter")
            await at("result")
            await pilot.press("enter")  # print the receipt
            await until(lambda: bool(world.printer.receipts))
            await pilot.pause(0.5)
            svg = out / "simulator.svg"
            app.save_screenshot(filename=svg.name, path=str(out))
            made.append(svg)

    try:
        asyncio.run(main())
        receipt = Path(world.save_receipt_png())
        made.append(Path(shutil.copy(receipt, out / "receipt.png")))
    finally:
        world.stop()
    return made


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in make_pictures(Path(args[0] if args else "docs/pictures")):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
