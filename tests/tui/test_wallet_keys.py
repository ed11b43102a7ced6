"""The customer's phone in the simulator UI: pick a wallet and outcome, show the code, pay the terminal's QR."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.tui.conftest import FakeWorld


@dataclass
class PhoneWorld(FakeWorld):
    def show_code(self, wallet: str, outcome: str = "paid") -> str:
        self.calls.append(("show", wallet, outcome))
        return "134567890123456700"

    def phone_scan(self, pay: bool = True) -> str:
        self.calls.append(("phone", str(pay)))
        return "paid" if pay else "failed"


@pytest.fixture
def world() -> PhoneWorld:
    return PhoneWorld()


def test_show_a_chosen_code_and_answer_the_qr(drive, world):
    async def script(app, pilot):
        await pilot.press("s", "w", "o", "s", "w", "w", "s", "p", "x")
        await pilot.pause()
        mode = str(app.query_one("#mode").content)
        assert "phone / 手机: wechat, user_paying_then_paid" in mode

    drive(script)
    assert world.calls == [("show", "wechat", "paid"), ("show", "alipay", "user_paying_then_paid"),
                           ("show", "wechat", "user_paying_then_paid"), ("phone", "True"), ("phone", "False")]
    assert world.terminal.pressed == []  # these keys belong to the customer's phone, not the keypad
