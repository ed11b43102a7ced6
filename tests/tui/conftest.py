"""A fake simulated world for the UI tests: pure Python, records every call, fires listeners on demand.

Listeners fire from a separate thread (``fire_from_thread``), as the real devices do, so the tests
exercise the UI's cross-thread path rather than a shortcut.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from textual.pilot import Pilot

from sim.tui.app import PosSimApp
from terminal.screens import Key, MenuItem, Screen, t

HOME = Screen(state="home", title=t("Home", "主页"), menu=(MenuItem("1", t("Top up", "充值")),))


@dataclass
class FakeCard:
    label: str


class _Listeners:
    def __init__(self) -> None:
        self.listeners: list[Callable[..., None]] = []

    def add_listener(self, cb: Callable[..., None]) -> None:
        self.listeners.append(cb)

    def fire(self, *args: Any) -> None:
        for cb in self.listeners:
            cb(*args)


class FakeTerminal(_Listeners):
    def __init__(self) -> None:
        super().__init__()
        self.screen = HOME
        self.pressed: list[Key] = []

    def press(self, key: Key) -> None:
        self.pressed.append(key)

    def add_listener(self, cb: Callable[..., None]) -> None:
        super().add_listener(cb)
        cb(self.screen)  # like terminal.app.TerminalApp: a new listener hears the current screen at once


class FakePinPad(_Listeners):
    def __init__(self) -> None:
        super().__init__()
        self.display = ("", "")
        self.awaiting_pin = False
        self.pressed: list[str] = []

    def press(self, key: str) -> None:
        self.pressed.append(key)


class FakeReader(_Listeners):
    def __init__(self) -> None:
        super().__init__()
        self.card_present = False
        self.taken_away = 0

    def take_away(self) -> None:
        self.taken_away += 1


class FakePrinter(_Listeners):
    def __init__(self) -> None:
        super().__init__()
        self.receipts: list[list[str]] = []


@dataclass
class FakeWorld:
    terminal: FakeTerminal = field(default_factory=FakeTerminal)
    pinpad: FakePinPad = field(default_factory=FakePinPad)
    reader: FakeReader = field(default_factory=FakeReader)
    printer: FakePrinter = field(default_factory=FakePrinter)
    cards: dict[str, FakeCard] = field(
        default_factory=lambda: {
            "visa_ok": FakeCard("Visa approved / 维萨 批准"),
            "up_pin": FakeCard("UnionPay PIN / 银联 密码"),
            "mc_decline": FakeCard("Mastercard decline / 万事达 拒绝"),
        }
    )
    calls: list[tuple[str, ...]] = field(default_factory=list)
    status: list[str] = field(default_factory=lambda: ["host ledger: 0", "carrier top-ups: 0"])
    refuse_insert: bool = False

    def insert_card(self, key: str) -> None:
        if self.refuse_insert:
            raise RuntimeError("slot jammed")
        self.calls.append(("insert", key))

    def remove_card(self) -> None:
        self.calls.append(("remove",))

    def swipe_card(self, key: str) -> None:
        self.calls.append(("swipe", key))

    def tap_card(self, key: str) -> None:
        self.calls.append(("tap", key))

    def save_receipt_png(self) -> str:
        self.calls.append(("png",))
        return "/tmp/receipt-1.png"

    def toggle_cable(self, device: str) -> bool:
        self.calls.append(("cable", device))
        return sum(c == ("cable", device) for c in self.calls) % 2 == 0  # first toggle pulls, second plugs

    def status_lines(self) -> list[str]:
        return list(self.status)

    def toggle_fault(self, name: str) -> bool:
        self.calls.append(("fault", name))
        return sum(c == ("fault", name) for c in self.calls) % 2 == 1


def fire_from_thread(fire: Callable[..., None], *args: Any) -> None:
    """Call a device's listeners from another thread, as the real world does, and wait for it."""
    thread = threading.Thread(target=fire, args=args)
    thread.start()
    thread.join(timeout=5)


async def until(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Let the app run until ``predicate`` holds; fail (rather than hang) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("UI never reached the expected state")
        await pilot.pause(0.01)


Script = Callable[[PosSimApp, Pilot[Any]], Awaitable[None]]


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
def drive(world: FakeWorld) -> Callable[[Script], None]:
    """Run a script against ``PosSimApp(world)`` headless; no pytest-asyncio here, so one loop per test."""

    def run(script: Script) -> None:
        async def main() -> None:
            app = PosSimApp(world)
            async with app.run_test(size=(150, 50), notifications=True) as pilot:
                await pilot.pause()
                await script(app, pilot)

        asyncio.run(main())

    return run
