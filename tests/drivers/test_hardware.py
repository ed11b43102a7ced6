"""Against a real card reader speaking our protocol: ``pytest --port /dev/ttyUSB0 -m hardware tests/drivers``.

Skipped without ``--port`` (and deselected by default by the ``not hardware`` marker expression)."""

from __future__ import annotations

import pytest

from drivers.card_reader import CardReader
from drivers.card_reader_codec import Led
from flows.ports import CancelToken

pytestmark = pytest.mark.hardware


def test_real_reader_identifies_itself(hardware_port: str) -> None:
    with CardReader(hardware_port) as reader:
        info = reader.info()
        assert info.model and info.firmware
        reader.status()


def test_real_reader_leds_and_buzzer(hardware_port: str) -> None:
    with CardReader(hardware_port) as reader:
        reader.led(Led.GREEN)
        reader.beep(100)
        reader.led(Led.GREEN, on=False)


def test_real_card_answers_select_pse(hardware_port: str) -> None:
    with CardReader(hardware_port) as reader:
        if not reader.wait_for_card(15.0, CancelToken()):
            pytest.skip("no card inserted within 15 s")
        reader.power_on()
        rapdu = reader.transmit(bytes.fromhex("00A404000E315041592E5359532E444446303100"))
        assert len(rapdu) >= 2
        reader.power_off()
