"""The simulated printer draws what it printed: a PNG a person can look at, QR modules where segno puts them."""

from __future__ import annotations

import pytest
import segno

from drivers.printer import EscPosPrinter
from flows.ports import ReceiptLine
from sim.devices.printer import PrintedLine, PrinterSim
from sim.devices.receipt_image import _MARGIN, _QR_MODULE, WIDTH_DOTS, render

Image = pytest.importorskip("PIL.Image")


def test_qr_modules_land_where_segno_puts_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    payload = "00020101021226"
    path = render([PrintedLine(f"[QR] {payload}", "center", qr=payload)], tmp_path / "qr.png")
    image = Image.open(path)
    matrix = segno.make(payload, error="m").matrix
    size = len(matrix) * _QR_MODULE
    left, top = (WIDTH_DOTS - size) // 2, _MARGIN + 4 * _QR_MODULE
    seen = [[image.getpixel((left + c * _QR_MODULE + 1, top + r * _QR_MODULE + 1)) == 0 for c in range(len(matrix))]
            for r in range(len(matrix))]
    assert seen == [[bool(m) for m in row] for row in matrix]


def test_printed_receipt_saved_as_png(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = PrinterSim()
    try:
        with EscPosPrinter(sim.start(), status_timeout_s=0.5) as printer:
            printer.print_receipt([ReceiptLine("IoT SIM top-up / 物联网卡充值", align="center", bold=True),
                                   ReceiptLine("TOTAL ￥30.00", double=True), ReceiptLine(qr="ORDER-1")])
        assert sim.wait_for_receipts(1)
        image = Image.open(sim.save_png(tmp_path / "receipt.png"))
        assert image.width == WIDTH_DOTS and image.height > 150
        low, high = image.getextrema()
        assert (low, high) == (0, 255)  # ink on paper
    finally:
        sim.stop()


def test_nothing_printed_nothing_to_save(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = PrinterSim()
    try:
        with pytest.raises(ValueError, match="nothing was printed"):
            sim.save_png(tmp_path / "x.png")
    finally:
        sim.stop()
