"""The printer tests' pair: a ``PrinterSim`` on a real pty and the real ``EscPosPrinter`` opened on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.printer import EscPosPrinter
from sim.devices.printer import PrinterSim


@pytest.fixture
def sim() -> Iterator[PrinterSim]:
    printer_sim = PrinterSim()
    printer_sim.start()
    yield printer_sim
    printer_sim.stop()


@pytest.fixture
def printer(sim: PrinterSim) -> Iterator[EscPosPrinter]:
    with EscPosPrinter(sim.path, status_timeout_s=0.3) as driver:
        yield driver
