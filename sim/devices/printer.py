"""Simulated ESC/POS receipt printer (Chinese model) on a pseudo-terminal: decodes the bytes into receipts.

The decoding is ``sim.devices.escpos_decoder``, written from the Epson ESC/POS command reference independently
of ``drivers.escpos``, so the pair tests one reading of the reference against another.

While ``paper_out``, ``cover_open``, ``error`` or ``offline`` is set the printer is offline: it still answers
DLE EOT but prints nothing, and the data received meanwhile is lost (a real printer would keep it in its
buffer; the driver never sends a job without asking first).

>>> PrinterSim().status_byte(1)  # DLE EOT 1 of a ready printer: only the fixed bits
18
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from sim.devices.escpos_decoder import Cut, EscPosDecoder, PrintedLine, StatusAsked, Unknown
from sim.devices.pty import DeviceThread, LineFaults, PtyPort

__all__ = ["PrintedLine", "Cut", "StatusAsked", "Unknown", "EscPosDecoder", "PrinterSim"]


class PrinterSim:
    """The printer on a pty. Open ``start()``'s path with pyserial (or ``EscPosPrinter``).

    Settable any time: ``paper_out``, ``paper_near_end``, ``cover_open``, ``error`` (printer offline with an
    unrecoverable error), ``offline`` (offline with no cause given, e.g. while a button is held), ``silent``
    (answers nothing, like a printer switched off), ``garbled`` (answers bytes that are not status bytes, like
    a printer at another baud rate).
    """

    def __init__(self, *, baud: int | None = None, four_byte_font: bool = False,
                 faults: LineFaults | None = None) -> None:
        self.baud = baud
        # ESC/POS has no integrity check: a damaged byte prints a wrong character on any real printer, so line
        # faults touch only the status replies (which the driver checks), never the receipt bytes.
        self._port = PtyPort(baud, faults=faults, fault_input=False, name="printer")
        self.paper_out = False
        self.paper_near_end = False
        self.cover_open = False
        self.error = False
        self.offline = False
        self.silent = False
        self.garbled = False
        self._decoder = EscPosDecoder(four_byte_font=four_byte_font)
        self._raw = bytearray()
        self._receipts: list[list[PrintedLine]] = []
        self._page: list[PrintedLine] = []
        self._listeners: list[Callable[[list[str]], None]] = []
        self._unknown: list[bytes] = []
        self._cond = threading.Condition()
        self._thread: DeviceThread | None = None
        self.path = ""

    def start(self) -> str:
        """Open the pty and start decoding; returns the slave path for the terminal (also ``.path``)."""
        if self._thread is None:
            self._thread = DeviceThread("printer", self._port, self._on_bytes)
            self._thread.start()
        self.path = self._port.path
        return self.path

    @property
    def port(self) -> PtyPort:
        return self._port

    def pull(self) -> None:
        """Pull the cable: the pty closes under the terminal."""
        self._port.unplug()

    def plug(self) -> None:
        """Plug it back at the same path."""
        self._port.replug()

    @property
    def connected(self) -> bool:
        return self._port.plugged

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        self._port.close()

    def add_listener(self, callback: Callable[[list[str]], None]) -> None:
        """``callback(lines)`` after every cut, from the device thread."""
        self._listeners.append(callback)

    @property
    def raw(self) -> bytes:
        with self._cond:
            return bytes(self._raw)

    @property
    def receipts(self) -> list[list[str]]:
        with self._cond:
            return [[line.text for line in page] for page in self._receipts]

    @property
    def styled_receipts(self) -> list[list[PrintedLine]]:
        with self._cond:
            return [list(page) for page in self._receipts]

    @property
    def unknown(self) -> list[bytes]:
        """Commands the decoder did not recognise (an encoder bug, or a command worth modelling)."""
        with self._cond:
            return list(self._unknown)

    def save_png(self, path: str | Path, index: int = -1) -> Path:
        """Draw receipt ``index`` (the last by default) as a PNG (needs Pillow: ``.[png]``)."""
        from sim.devices.receipt_image import render

        receipts = self.styled_receipts
        if not receipts:
            raise ValueError("nothing was printed yet")
        return render(receipts[index], path)

    def wait_for_receipts(self, count: int, timeout_s: float = 2.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._receipts) >= count, timeout_s)

    def wait_for_bytes(self, count: int, timeout_s: float = 2.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._raw) >= count, timeout_s)

    @property
    def _offline(self) -> bool:
        return self.paper_out or self.cover_open or self.error or self.offline

    def status_byte(self, n: int) -> int | None:
        """This printer's answer to DLE EOT n; None for an n it does not define."""
        value = 0x12  # bits 1 and 4 fixed on, 0 and 7 fixed off
        if n == 1:
            return value | (0x08 if self._offline else 0)
        if n == 2:
            return value | (0x04 if self.cover_open else 0) | (0x20 if self.paper_out else 0) | (
                0x40 if self.error else 0)
        if n == 3:
            return value | (0x20 if self.error else 0)
        if n == 4:
            near = self.paper_near_end or self.paper_out
            return value | (0x0C if near else 0) | (0x60 if self.paper_out else 0)
        return None

    def _on_bytes(self, data: bytes) -> None:
        done: list[list[str]] = []
        with self._cond:
            self._raw += data
            for event in self._decoder.feed(data):
                if isinstance(event, StatusAsked):
                    answer = self.status_byte(event.n)
                    if answer is not None and not self.silent and self._thread is not None:
                        self._thread.port.write(b"\xff" if self.garbled else bytes((answer,)))
                elif isinstance(event, Unknown):
                    self._unknown.append(event.data)
                elif self._offline:
                    continue  # offline: nothing is printed
                elif isinstance(event, PrintedLine):
                    self._page.append(event)
                else:
                    self._receipts.append(self._page)
                    done.append([line.text for line in self._page])
                    self._page = []
            self._cond.notify_all()
        for lines in done:
            for callback in list(self._listeners):
                callback(lines)
