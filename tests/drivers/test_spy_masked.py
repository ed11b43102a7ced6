"""``spy://`` on every device traces without content (issue 19 item 7): the printer and the scanner, which have
no frames of ours, trace direction and length only; trace files are 0600. (Reader and PIN pad: the frame tracer,
tests/drivers/test_line_faults.py.)"""

from __future__ import annotations

import os
import stat
import threading

import pytest

from drivers.card_reader_batch import encode_batch_answer
from drivers.link.outbox import encode, message
from drivers.link.trace import FrameTracer
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


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_frame_trace_shows_no_bytes_of_a_message_in_pieces(version: int) -> None:
    """On a noisy line long messages go in 64-byte pieces; a piece can start or end inside a record, so its head
    and tail could be PAN digits: pieces are traced by kind, SEQ and length only (review finding)."""
    pan = bytes.fromhex("6210987654321098")
    rec1 = bytes.fromhex("703A5713") + pan + bytes.fromhex("D2712201123456789000 0F5F200A4A4F484E20534D495448"
                                                            .replace(" ", "")) + bytes(30) + b"\x90\x00"
    rec2 = bytes.fromhex("70405A08") + pan + bytes(60) + b"\x90\x00"
    data = bytes([5, 0]) + encode_batch_answer([rec1, rec2])
    lines: list[str] = []
    tracer = FrameTracer(lines.append)
    pieces = list(message(0, 0x92, data, 64, None))
    assert len(pieces) > 2
    for piece in pieces:
        tracer.feed("D>T", encode(piece, version, None))
    assert len(lines) == len(pieces) and all("bytes not shown" in line for line in lines)
    shown = " ".join(lines).replace(" ", "")
    assert not any(pan[i:i + 3].hex().upper() in shown for i in range(len(pan) - 2))
    tracer.feed("D>T", encode(next(iter(message(1, 0x92, b"\x00\x01\x02", 64, None))), version, None))
    assert lines[-1].endswith(": 00 01 02")  # a whole message after the pieces is shown as before
