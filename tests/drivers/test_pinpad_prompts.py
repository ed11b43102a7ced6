"""PIN pad prompt control (PCI PTS POI), through a real pty: the pad shows only its own prompt table, returns
digits in clear only under its numeric-entry prompts, and answers PIN entry only with an encrypted PIN block."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.pinpad import PinPad
from drivers.pinpad_codec import PinPadCmd, PinPadEventCode, PinPadStatus, encode_numeric_request
from emv.crypto.pin import decrypt_pin_block, derive_initial_key
from flows.ports import PadPrompt
from pos_errors import DeviceError, LocalProtocolError
from sim.devices.pinpad import PinPadSim

BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
KSN = bytes.fromhex("123456789012345600000000")
PAN = "6212345678901234"


@pytest.fixture
def pad() -> Iterator[tuple[PinPadSim, PinPad]]:
    sim = PinPadSim(initial_key=derive_initial_key("aes", BDK, KSN), initial_ksn=KSN)
    driver = PinPad(sim.start(), response_timeout_s=2.0)
    driver.open()
    yield sim, driver
    driver.close()
    sim.stop()


def _raw(driver: PinPad, cmd: int, data: bytes) -> int:
    """Send bytes the driver would never build (an attacker on the terminal side); the pad's status byte."""
    return driver._link.request(cmd, data, 2.0).data[0]


@pytest.mark.parametrize("payload", [
    bytes([9]) + b"ENTER PIN" + bytes([10]) + "请输入密码".encode(),  # the old two-line free-text DISPLAY
    bytes([0x20, 0, 0, 0, 0, 0, 0x9C]),  # an id that is not in the pad's table
    bytes([PadPrompt.ENTER_PHONE, 0, 0, 0, 0, 0, 0x9C]),  # a numeric-entry prompt is not shown idle
    bytes([PadPrompt.AMOUNT, 0, 0, 0, 1, 0x03, 0xE7]),  # currency 999: not one the pad knows
    bytes([PadPrompt.AMOUNT, 0, 0, 0, 1, 0, 0x9C, 0x00]),  # a byte too many
], ids=["free-text", "unknown-id", "numeric-prompt", "unknown-currency", "trailing-byte"])
def test_free_text_or_unknown_prompt_is_refused_and_changes_nothing(pad: tuple[PinPadSim, PinPad],
                                                                    payload: bytes) -> None:
    sim, driver = pad
    before = sim.display
    assert _raw(driver, PinPadCmd.DISPLAY, payload) == PinPadStatus.PROMPT_REFUSED
    assert sim.display == before


def test_prompt_by_id_with_amount_and_currency(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    driver.display(PadPrompt.AMOUNT, 1250, 156)
    assert sim.display == ("CNY 12.50", "AMOUNT / 金额")
    driver.display(PadPrompt.APPROVED, 3000, 840)
    assert sim.display == ("USD 30.00", "APPROVED / 成功")
    with pytest.raises(DeviceError, match="own prompt table"):
        driver.display(PadPrompt.AMOUNT, 100, 999)


def test_numeric_entry_returns_the_digits_in_clear_and_shows_them(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    sim.add_listener(lambda what: what == "awaiting_pin" and [sim.press(k) for k in "13800138000"]
                     and sim.press("ENTER"))
    assert driver.enter_number(PadPrompt.ENTER_PHONE, 11, 11, 5.0) == "13800138000"
    assert sim.results == ["entered"]


def test_numeric_entry_cancelled_or_too_short(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    sim.add_listener(lambda what: what == "awaiting_pin" and [sim.press(k) for k in ("1", "2", "ENTER",
                                                                                     "CANCEL")])
    assert driver.enter_number(PadPrompt.ENTER_ICCID, 19, 20, 5.0) is None  # ENTER at 2 of 19 digits ignored
    assert sim.results == ["cancelled"]


@pytest.mark.parametrize("prompt", [0x00, PadPrompt.WELCOME, PadPrompt.AMOUNT, 0x21, 0xFF])
def test_numeric_entry_under_any_other_prompt_is_refused_by_the_pad(pad: tuple[PinPadSim, PinPad],
                                                                    prompt: int) -> None:
    sim, driver = pad
    request = bytes([prompt, 4, 12, 0, 0, 0x75, 0x30])  # as if asking for 4..12 digits: a PIN
    assert _raw(driver, PinPadCmd.NUMERIC_ENTRY, request) == PinPadStatus.PROMPT_REFUSED
    assert not sim.awaiting_pin
    with pytest.raises(LocalProtocolError):
        encode_numeric_request(prompt, 4, 12, 30)  # type: ignore[arg-type]


def test_pin_entry_answers_only_an_encrypted_block(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    frames: list[tuple[int, bytes]] = []
    sim.add_listener(lambda what: what == "awaiting_pin" and [sim.press(k) for k in "4321"]
                     and sim.press("ENTER"))
    original = sim.send_event
    sim.send_event = lambda cmd, data=b"": (frames.append((cmd, data)), original(cmd, data))[1]  # type: ignore
    entry = driver.request_online_pin(PAN, 100, 5.0)
    assert [cmd for cmd, _ in frames] == [PinPadEventCode.PIN_RESULT]
    assert b"4321" not in frames[0][1] and bytes.fromhex("4321") not in frames[0][1]
    assert entry.ksn is not None and entry.pin_block is not None
    assert decrypt_pin_block("aes", BDK, entry.ksn, entry.pin_block, PAN) == "4321"
