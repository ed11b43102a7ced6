"""``spy://`` on every device traces without content (issue 19 item 7): the printer and the scanner, which have
no frames of ours, trace direction and length only; trace files are 0600. (Reader and PIN pad: the frame tracer,
tests/drivers/test_line_faults.py.)"""

from __future__ import annotations

import os
import stat
import threading

from drivers.printer import EscPosPrinter
from drivers.scanner import Scanner
from flows.ports import CancelToken, ReceiptLine
from sim.devices.printer import PrinterSim
from sim.devices.scanner import ScannerSim

PAN = "6212345678901232"


def _mode(path) -> int:  # type: ignore[no-untyped-def]
    return stat.S_IMODE(os.stat(path).st_mode)


def test_printer_spy_trace_holds_lengths_not_the_receipt(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim, trace = PrinterSim(), tmp_path / "printer.trace"
    sim.start()
    try:
        with EscPosPrinter(f"spy://{sim.path}?file={trace}", status_timeout_s=0.5) as printer:
            printer.print_receipt([ReceiptLine(f"card {PAN}"), ReceiptLine("MERCHANT COPY")])
        assert sim.wait_for_receipts(1) and PAN in sim.receipts[0][0]  # the receipt itself went through
    finally:
        sim.stop()
    text = trace.read_text()
    assert "T>D" in text and "bytes" in text and _mode(trace) == 0o600
    assert PAN not in text and "MERCHANT" not in text and PAN.encode().hex() not in text.replace(" ", "").lower()


def test_scanner_spy_trace_holds_lengths_not_the_code(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = "hQVDUFYwMVoI" + PAN  # what matters: a scanned line that carries a PAN
    sim, trace = ScannerSim(mode="continuous"), tmp_path / "scanner.trace"
    scanner = Scanner(f"spy://{sim.start()}?file={trace}", mode="continuous")
    try:
        scanner.open()
        threading.Timer(0.3, lambda: sim.show(code)).start()
        assert scanner.scan(5.0, CancelToken()) == code
    finally:
        scanner.close()
        sim.stop()
    text = trace.read_text()
    assert "D>T" in text and _mode(trace) == 0o600
    assert PAN not in text and "hQVDUFYw" not in text
