"""Fixtures the flow tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.card_reader import CardReader
from sim.devices.reader import ReaderSim


@pytest.fixture
def reader() -> Iterator[tuple[ReaderSim, CardReader]]:
    """The simulated card reader on a real pty and the terminal's driver opened on it."""
    sim = ReaderSim()
    driver = CardReader(sim.start(), response_timeout_s=2.0)
    driver.open()
    yield sim, driver
    driver.close()
    sim.stop()
