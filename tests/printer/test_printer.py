"""The real ``EscPosPrinter`` against ``PrinterSim`` through a real pseudo-terminal."""

from __future__ import annotations

import threading

import pytest
import serial

from drivers.escpos import encode_receipt
from drivers.printer import EscPosPrinter
from flows.ports import PrinterPort, PrinterStatus, ReceiptLine
from pos_errors import DeviceError, DeviceGone, DeviceTimeout
from sim.devices.printer import PrinterSim

STATUS_QUERIES = bytes.fromhex("10 04 01 10 04 02 10 04 04")  # DLE EOT 1, 2, 4
LINES = [
    ReceiptLine("物联网卡充值 IoT TOP-UP", align="center", bold=True, double=True),
    ReceiptLine("MSISDN 1064 9123 4567 8"),
    ReceiptLine("3 GB 月包 ¥20.00", align="right"),
    ReceiptLine("查询 / check", align="center", qr="https://iot.example.cn/o/T1-7"),
    ReceiptLine("谢谢惠顾"),
]
TEXT = ["物联网卡充值 IoT TOP-UP", "MSISDN 1064 9123 4567 8", "3 GB 月包 ￥20.00", "查询 / check",
        "[QR] https://iot.example.cn/o/T1-7", "谢谢惠顾"]


def test_implements_the_port(printer: EscPosPrinter) -> None:
    port: PrinterPort = printer
    assert port.status() == PrinterStatus()


def test_receipt_round_trip_through_a_pty(sim: PrinterSim, printer: EscPosPrinter) -> None:
    heard: list[list[str]] = []
    sim.add_listener(heard.append)
    printer.print_receipt(LINES)
    assert sim.wait_for_receipts(1)
    assert sim.receipts == [TEXT]
    assert heard == [TEXT]
    assert sim.raw == STATUS_QUERIES + encode_receipt(LINES)
    assert sim.unknown == []
    first = sim.styled_receipts[0][0]
    assert (first.align, first.bold, first.double) == ("center", True, True)


def test_two_receipts_two_cuts(sim: PrinterSim, printer: EscPosPrinter) -> None:
    printer.print_receipt([ReceiptLine("one")])
    printer.print_receipt([ReceiptLine("two")])
    assert sim.wait_for_receipts(2)
    assert sim.receipts == [["one"], ["two"]]


def test_status_follows_the_device(sim: PrinterSim, printer: EscPosPrinter) -> None:
    sim.paper_near_end = True
    assert printer.status() == PrinterStatus()  # near end still prints
    sim.paper_out = True
    assert printer.status() == PrinterStatus(online=False, paper_out=True)
    sim.paper_out, sim.cover_open = False, True
    assert printer.status() == PrinterStatus(online=False, cover_open=True)
    sim.cover_open, sim.error = False, True
    assert printer.status() == PrinterStatus(online=False)
    sim.error = False
    assert printer.status().ready


@pytest.mark.parametrize(("fault", "words"), [
    ("paper_out", ("Printer", "out of paper")),  # technical English; the screen shows the catalogue's printer.*
    ("cover_open", ("Printer", "cover open")),
    ("error", ("Printer", "error")),
])
def test_not_ready_raises_and_prints_nothing(sim: PrinterSim, printer: EscPosPrinter, fault: str,
                                             words: tuple[str, str]) -> None:
    setattr(sim, fault, True)
    with pytest.raises(DeviceError) as caught:
        printer.print_receipt(LINES)
    assert all(word in str(caught.value) for word in words)
    assert sim.raw == STATUS_QUERIES  # asked, and sent nothing after the answer
    setattr(sim, fault, False)
    printer.print_receipt([ReceiptLine("after")])
    assert sim.wait_for_receipts(1)
    assert sim.receipts == [["after"]]


def test_printer_prints_nothing_while_paper_is_out(sim: PrinterSim) -> None:
    # Bytes that bypass the driver's check are still not printed by an offline printer.
    sim.paper_out = True
    with serial.serial_for_url(sim.path, baudrate=19200) as raw_port:
        raw_port.write(encode_receipt(LINES))
        assert sim.wait_for_bytes(len(encode_receipt(LINES)))
    assert sim.receipts == []
    sim.paper_out = False
    with serial.serial_for_url(sim.path, baudrate=19200) as raw_port:
        raw_port.write(encode_receipt(LINES))
        assert sim.wait_for_receipts(1)
    assert sim.receipts == [TEXT]


def test_silent_printer(sim: PrinterSim, printer: EscPosPrinter) -> None:
    sim.silent = True
    assert printer.status() == PrinterStatus(online=False)
    with pytest.raises(DeviceTimeout) as caught:
        printer.print_receipt(LINES)
    assert "not responding" in str(caught.value)
    assert sim.receipts == []
    sim.silent = False
    assert printer.status().ready  # the late nothing did not poison the next query


def test_missing_port_is_device_gone() -> None:
    with pytest.raises(DeviceGone):
        EscPosPrinter("/dev/pts/nonexistent-printer").status()


def test_serial_url_form(sim: PrinterSim) -> None:
    with EscPosPrinter(f"spy://{sim.path}?file=/dev/null", status_timeout_s=0.3) as driver:
        driver.print_receipt([ReceiptLine("url")])
    assert sim.wait_for_receipts(1)
    assert sim.receipts == [["url"]]


def test_unplugged_printer(sim: PrinterSim, printer: EscPosPrinter) -> None:
    assert printer.status().ready
    sim.stop()
    with pytest.raises(DeviceGone):
        printer.print_receipt(LINES)



def test_paced_line() -> None:
    paced = PrinterSim(baud=9600)
    path = paced.start()
    try:
        with EscPosPrinter(path, baud=9600, status_timeout_s=0.5) as driver:
            results: list[PrinterStatus] = []
            worker = threading.Thread(target=lambda: results.append(driver.status()))
            worker.start()
            worker.join(2)
        assert results == [PrinterStatus()]
    finally:
        paced.stop()


def test_status_queries_from_two_threads_do_not_read_each_others_answers(sim: PrinterSim,
                                                                         printer: EscPosPrinter) -> None:
    """The background self-test and a cashier's diagnostics or receipt may use the printer at once."""
    seen: list[PrinterStatus] = []
    start = threading.Barrier(4)

    def ask() -> None:
        start.wait()
        seen.extend(printer.status() for _ in range(10))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == [PrinterStatus()] * 40
