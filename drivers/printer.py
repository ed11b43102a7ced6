"""Serial ESC/POS receipt printer: the thin pyserial shell around ``drivers.escpos``, a ``PrinterPort``.

Before every job the printer is asked for its real-time status (DLE EOT 1, 2, 4); a printer that is out of
paper, open or offline gets nothing. Every error carries its ``DeviceFault`` code (``PAPER_OUT``, ``COVER_OPEN``,
``PRINTER_ERROR``, ``OFFLINE``, ``NO_ANSWER``, ``GARBLED``, ``PORT``): the terminal picks the cashier's message
by it. ``url`` is a device
path (``/dev/ttyS1``) or any pyserial URL (``spy://…``, ``loop://``).

>>> EscPosPrinter("loop://").url
'loop://'
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence

import serial

try:
    from termios import error as _TermiosError  # pyserial's POSIX flush/reset let termios errors through
except ImportError:  # pragma: no cover - not POSIX
    _TermiosError = OSError  # type: ignore[assignment,misc]

from drivers.escpos import (
    MESSAGES,
    STATUS_QUERIES,
    RealTimeStatus,
    decode_status,
    encode_receipt,
    status_request,
)
from drivers.link.trace import ByteCountTrace, split_spy_url, trace_line
from flows.ports import PrinterStatus, ReceiptLine
from pos_errors import DeviceError, DeviceFault, DeviceGone, DeviceTimeout, RemoteProtocolError

log = logging.getLogger(__name__)

__all__ = ["EscPosPrinter"]

_PORT_ERRORS = (serial.SerialException, OSError, _TermiosError)


class EscPosPrinter:
    """A receipt printer on a serial line. The port opens on first use or with ``open()``.

    Args:
        url: device path or pyserial URL.
        baud: line speed (8N1, no flow control).
        status_timeout_s: how long to wait for each DLE EOT answer.
    """

    def __init__(self, url: str, *, baud: int = 19200, status_timeout_s: float = 1.0) -> None:
        self.url = url
        self.baud = baud
        self.status_timeout_s = status_timeout_s
        self._port: serial.SerialBase | None = None
        # one query or job at a time: the background self-test and a cashier's diagnostics or receipt may overlap,
        # and two status queries interleaved on one line read each other's answers (a healthy printer "offline")
        self._busy = threading.RLock()

    def open(self) -> None:
        """Open the port. Raises DeviceGone when it does not exist or cannot be opened."""
        if self._port is not None:
            return
        try:
            port_url, trace_file = split_spy_url(self.url)  # spy://: lengths only, never the receipt's bytes
            port = serial.serial_for_url(port_url, baudrate=self.baud, timeout=self.status_timeout_s,
                                         write_timeout=self.status_timeout_s)
            self._port = port if trace_file is None else ByteCountTrace(
                port, functools.partial(trace_line, trace_file, self.url, log=log.info))
        except (*_PORT_ERRORS, ValueError) as exc:
            raise DeviceGone(f"{MESSAGES[DeviceFault.PORT]}: {self.url}", fault=DeviceFault.PORT) from exc

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except _PORT_ERRORS:
                pass  # closing a vanished port is not worth an error

    def __enter__(self) -> EscPosPrinter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> PrinterStatus:
        """Real-time status. A printer that does not answer counts as offline.

        Raises DeviceGone when the port cannot be opened or vanished (the port is then closed), DeviceError
        when the answers are not status bytes (wrong baud rate, not a printer).
        """
        with self._busy:
            status = self._query()
        return PrinterStatus(online=False) if status is None else status.to_port()

    def print_receipt(self, lines: Sequence[ReceiptLine]) -> None:
        """Check the status, then send the whole receipt and its cut.

        Raises:
            LocalProtocolError: a line cannot be encoded (nothing is sent).
            DeviceError: paper out, cover open, offline, garbled status (nothing is sent); message for the
                cashier.
            DeviceTimeout: no status answer (nothing sent) or the data could not be written in time.
            DeviceGone: the port cannot be opened or vanished.
        """
        data = encode_receipt(lines)
        with self._busy:
            self._print(data)

    def _print(self, data: bytes) -> None:
        status = self._query_twice()
        if status is None:
            raise DeviceTimeout(MESSAGES[DeviceFault.NO_ANSWER], fault=DeviceFault.NO_ANSWER)
        if status.fault is not None:
            raise DeviceError(status.message, fault=status.fault)
        port = self._require()
        # 10 bits a byte at the line rate, plus slack for the printer's flow control.
        port.write_timeout = self.status_timeout_s + len(data) * 10 / self.baud
        try:
            port.write(data)
            port.flush()
        except serial.SerialTimeoutException as exc:
            raise DeviceTimeout(MESSAGES[DeviceFault.NO_ANSWER], fault=DeviceFault.NO_ANSWER) from exc
        except _PORT_ERRORS as exc:  # the cable was pulled mid-job: to the cashier, the printer stopped answering
            self.close()
            raise DeviceGone(MESSAGES[DeviceFault.NO_ANSWER], fault=DeviceFault.NO_ANSWER) from exc

    # --- helpers --------------------------------------------------------------------------------------------

    def _require(self) -> serial.SerialBase:
        self.open()
        if self._port is None:  # open() either sets it or raises; this keeps the type checker honest
            raise DeviceGone(f"printer port {self.url} is closed", fault=DeviceFault.PORT)
        return self._port

    def _query_twice(self) -> RealTimeStatus | None:
        """A status byte damaged on the line, or lost, is asked for once more before the cashier hears of it."""
        try:
            status = self._query()
        except DeviceGone:
            raise
        except DeviceError:
            status = None
        return status if status is not None else self._query()

    def _query(self) -> RealTimeStatus | None:
        """Send DLE EOT 1, 2, 4 one at a time; None when an answer does not come in time."""
        port = self._require()
        replies = bytearray()
        try:
            port.reset_input_buffer()  # a late answer from an earlier query must not be read as this one
            for query in STATUS_QUERIES:
                port.write(status_request(query))
                answer = port.read(1)
                if not answer:
                    return None
                replies += answer
        except serial.SerialTimeoutException:
            return None
        except _PORT_ERRORS as exc:
            self.close()
            raise DeviceGone(MESSAGES[DeviceFault.NO_ANSWER], fault=DeviceFault.NO_ANSWER) from exc
        try:
            return decode_status(bytes(replies))
        except RemoteProtocolError as exc:
            raise DeviceError(MESSAGES[DeviceFault.GARBLED], fault=DeviceFault.GARBLED) from exc
