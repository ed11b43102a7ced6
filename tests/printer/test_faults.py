"""Every printer error carries the right ``DeviceFault`` code, through the real pty: callers choose the
cashier's message by code, never by the English text."""

from __future__ import annotations

import pytest

from drivers.printer import EscPosPrinter
from flows.ports import ReceiptLine
from pos_errors import DeviceError, DeviceFault, DeviceGone, DeviceTimeout
from sim.devices.printer import PrinterSim

LINES = [ReceiptLine("物联网卡充值 IoT TOP-UP")]


@pytest.mark.parametrize(("knobs", "error", "fault"), [
    ({"paper_out": True},                      DeviceError,   DeviceFault.PAPER_OUT),
    ({"paper_out": True, "cover_open": True},  DeviceError,   DeviceFault.PAPER_OUT),  # most specific first
    ({"cover_open": True},                     DeviceError,   DeviceFault.COVER_OPEN),
    ({"cover_open": True, "error": True},      DeviceError,   DeviceFault.COVER_OPEN),
    ({"error": True},                          DeviceError,   DeviceFault.PRINTER_ERROR),
    ({"offline": True},                        DeviceError,   DeviceFault.OFFLINE),
    ({"silent": True},                         DeviceTimeout, DeviceFault.NO_ANSWER),
    ({"garbled": True},                        DeviceError,   DeviceFault.GARBLED),
])
def test_each_status_raises_its_fault_and_prints_nothing(sim: PrinterSim, printer: EscPosPrinter,
                                                         knobs: dict[str, bool], error: type[DeviceError],
                                                         fault: DeviceFault) -> None:
    for knob, value in knobs.items():
        setattr(sim, knob, value)
    with pytest.raises(error) as caught:
        printer.print_receipt(LINES)
    assert caught.value.fault is fault
    assert sim.receipts == []
    for knob in knobs:
        setattr(sim, knob, False)
    printer.print_receipt(LINES)  # the fault cleared: the next job prints
    assert sim.wait_for_receipts(1)


def test_near_end_is_no_fault(sim: PrinterSim, printer: EscPosPrinter) -> None:
    sim.paper_near_end = True
    printer.print_receipt(LINES)
    assert sim.wait_for_receipts(1)


def test_a_port_that_cannot_be_opened_is_fault_port() -> None:
    with pytest.raises(DeviceGone) as caught:
        EscPosPrinter("/dev/pts/nonexistent-printer").print_receipt(LINES)
    assert caught.value.fault is DeviceFault.PORT


def test_a_cable_pulled_mid_session_is_no_answer(sim: PrinterSim, printer: EscPosPrinter) -> None:
    assert printer.status().ready
    sim.stop()
    with pytest.raises(DeviceGone) as caught:
        printer.print_receipt(LINES)
    assert caught.value.fault is DeviceFault.NO_ANSWER  # to the cashier: the printer stopped answering
