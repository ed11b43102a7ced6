"""Serial QR / barcode scanner: a sans-I/O line core and a pyserial shell implementing ``flows.ports.ScannerPort``.

The wire protocol is in ``docs/protocols/scanner.md``: the scanner sends each decoded code as printable ASCII
ended by CR, LF or CR LF (up to 1024 characters: EMV consumer-presented codes are long base64). In *triggered*
mode the terminal starts decoding with ``SYN T CR`` and stops it with ``SYN U CR``; in *continuous* mode the
scanner decodes all the time and the terminal only listens. Either way a code counts only while the terminal is
scanning (``start_scan``), so a code read on another screen can never pay for a later sale.

The core drops, and reports as ``LineRejected``, lines with non-printable bytes (line noise), lines over the
maximum (the rest up to the next terminator is skipped), codes outside a scan, and a partial line that stays
silent for ``stale_s`` (a code cut off by a pulled cable). A scan that reads nothing by its deadline ends in
``ScanTimedOut`` and, in triggered mode, the untrigger command.

>>> core = ScannerCore(mode="triggered")
>>> core.start_scan(now=0.0, timeout_s=30)
>>> core.data_to_send()
b'\\x16T\\r'
>>> core.receive_data(b"134567890123456789\\r\\n", now=1.0)
>>> core.next_event(), core.data_to_send()
(CodeRead(text='1345…6789'), b'\\x16U\\r')
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import serial

from flows.ports import CancelToken
from pos_errors import Cancelled, ConfigError, DeviceError, DeviceGone

__all__ = ["ScannerCore", "Scanner", "CodeRead", "LineRejected", "ScanTimedOut", "TRIGGER", "UNTRIGGER",
           "MAX_CODE"]

log = logging.getLogger(__name__)

TRIGGER = b"\x16T\r"
UNTRIGGER = b"\x16U\r"
MAX_CODE = 1024
_TERMINATORS = b"\r\n"
Mode = Literal["triggered", "continuous"]


@dataclass(frozen=True)
class CodeRead:
    """A complete code; ``repr`` shows only its ends (a payment code is a bearer token)."""

    text: str = field(repr=False)

    def __repr__(self) -> str:
        return f"CodeRead(text='{self.text[:4]}…{self.text[-4:]}')"


@dataclass(frozen=True)
class LineRejected:
    reason: str
    length: int


@dataclass(frozen=True)
class ScanTimedOut:
    pass


Event = CodeRead | LineRejected | ScanTimedOut


class ScannerCore:
    """Bytes and time in, events and command bytes out. No I/O, no clock of its own."""

    def __init__(self, mode: Mode = "triggered", *, max_len: int = MAX_CODE, stale_s: float = 0.5) -> None:
        if mode not in ("triggered", "continuous"):
            raise ConfigError(f"scanner mode must be 'triggered' or 'continuous', not {mode!r}")
        self.mode, self.max_len, self.stale_s = mode, max_len, stale_s
        self._line = bytearray()
        self._overflow = False  # skipping the rest of a line that grew too long
        self._last_byte_at: float | None = None
        self._deadline: float | None = None
        self._events: deque[Event] = deque()
        self._out = bytearray()

    @property
    def scanning(self) -> bool:
        return self._deadline is not None

    def start_scan(self, now: float, timeout_s: float) -> None:
        self._deadline = now + timeout_s
        if self.mode == "triggered":
            self._out += TRIGGER

    def stop_scan(self) -> None:
        if self._deadline is not None and self.mode == "triggered":
            self._out += UNTRIGGER
        self._deadline = None

    def receive_data(self, data: bytes, now: float) -> None:
        for byte in data:
            if byte in _TERMINATORS:
                self._end_line()
            elif self._overflow:
                continue
            elif len(self._line) >= self.max_len:
                self._events.append(LineRejected(f"longer than {self.max_len} characters", len(self._line) + 1))
                self._line.clear()
                self._overflow = True
            else:
                self._line.append(byte)
        self._last_byte_at = now if self._line else None

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def get_timer(self) -> float | None:
        stale = None if self._last_byte_at is None else self._last_byte_at + self.stale_s
        timers = [t for t in (stale, self._deadline) if t is not None]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        if self._last_byte_at is not None and now >= self._last_byte_at + self.stale_s:
            self._events.append(LineRejected("partial line, no terminator", len(self._line)))
            self._line.clear()
            self._last_byte_at = None
        if self._deadline is not None and now >= self._deadline:
            self.stop_scan()
            self._events.append(ScanTimedOut())

    def _end_line(self) -> None:
        line, self._line = bytes(self._line), bytearray()
        if self._overflow:
            self._overflow = False
            return
        if not line:
            return  # the LF of CR LF, or blank lines
        if any(b < 0x20 or b > 0x7E for b in line):
            self._events.append(LineRejected("non-printable bytes", len(line)))
        elif not self.scanning:
            self._events.append(LineRejected("code outside a scan", len(line)))
        else:
            self.stop_scan()
            self._events.append(CodeRead(line.decode("ascii")))


class Scanner:
    """``ScannerPort`` over pyserial: ``url`` is a device path or a ``serial_for_url`` URL."""

    def __init__(self, url: str, *, baud: int = 9600, mode: Mode = "triggered",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.baud, self._clock = url, baud, clock
        self._core = ScannerCore(mode)
        self._lock = threading.Lock()
        self._events: queue.Queue[Event | DeviceError] = queue.Queue()
        self._serial: serial.SerialBase | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.rejected = 0

    def open(self) -> None:
        """Open the port exclusively. Raises DeviceGone."""
        if self._serial is not None:
            return
        try:
            self._serial = serial.serial_for_url(self.url, baudrate=self.baud, timeout=0.05, write_timeout=1.0,
                                                 exclusive=True)
        except (serial.SerialException, OSError) as exc:
            raise DeviceGone(f"cannot open scanner {self.url}: {exc}") from exc
        self._closing.clear()
        self._thread = threading.Thread(target=self._run, args=(self._serial,), name="scanner", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        port, self._serial = self._serial, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def scan(self, timeout_s: float, cancel: CancelToken) -> str | None:
        """Arm the scanner; the code read (None when ``timeout_s`` passes). Raises Cancelled, DeviceGone."""
        if self._serial is None:
            self.open()
        while not self._events.empty():  # anything left from before this scan is stale
            self._events.get_nowait()
        with self._lock:
            self._core.start_scan(self._clock(), timeout_s)
        self._flush()
        try:
            while True:
                if cancel.cancelled:
                    raise Cancelled("scan cancelled")
                try:
                    event = self._events.get(timeout=0.05)
                except queue.Empty:
                    continue
                if isinstance(event, DeviceError):
                    raise event
                if isinstance(event, CodeRead):
                    return event.text
                if isinstance(event, ScanTimedOut):
                    return None
        finally:
            with self._lock:
                self._core.stop_scan()
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            out = self._core.data_to_send()
        if out and self._serial is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.write(out)

    def _run(self, port: serial.SerialBase) -> None:
        try:
            while not self._closing.is_set():
                with self._lock:
                    timer = self._core.get_timer()
                port.timeout = 0.05 if timer is None else max(0.0, min(0.05, timer - self._clock()))
                data = port.read(port.in_waiting or 1)
                with self._lock:
                    if data:
                        self._core.receive_data(data, self._clock())
                    self._core.handle_timer(self._clock())
                    events: list[Event] = []
                    while (event := self._core.next_event()) is not None:
                        events.append(event)
                self._flush()
                for item in events:
                    if isinstance(item, LineRejected):
                        self.rejected += 1
                        log.info("scanner dropped a line (%d bytes): %s", item.length, item.reason)
                    else:
                        self._events.put(item)
        except (serial.SerialException, OSError) as exc:
            if not self._closing.is_set():
                self._events.put(DeviceGone(f"scanner {self.url} vanished: {exc}"))
                self._serial = None
