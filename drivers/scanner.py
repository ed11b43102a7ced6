"""Serial QR / barcode scanner client: ``flows.ports.ScannerPort`` over pyserial, running ``ScannerCore``.

The protocol (line framing, trigger commands, rejected lines) is the sans-I/O core in ``drivers.scanner_codec``;
this shell owns the port and the reader thread. See docs/protocols/scanner.md.

>>> Scanner("loop://").url
'loop://'
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable

import serial

from drivers.link.trace import ByteCountTrace, split_spy_url, trace_line
from drivers.scanner_codec import CodeRead, Event, LineRejected, Mode, ScannerCore, ScanTimedOut
from flows.ports import CancelToken
from pos_errors import Cancelled, DeviceError, DeviceFault, DeviceGone

__all__ = ["Scanner"]

log = logging.getLogger(__name__)
_IDLE_POLL_S = 0.05  # longest read where the port cannot be woken (no ``cancel_read``): bounds a scan's late start
_CANCELLED = Cancelled("scan cancelled")  # the cancel token's note to a waiting ``scan`` (never raised itself)


class Scanner:
    """``ScannerPort`` over pyserial: ``url`` is a device path or a ``serial_for_url`` URL."""

    def __init__(self, url: str, *, baud: int = 9600, mode: Mode = "triggered",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.baud, self._clock = url, baud, clock
        self._core = ScannerCore(mode)
        self._lock = threading.Lock()
        self._events: queue.Queue[Event | DeviceError | Cancelled] = queue.Queue()
        self._serial: serial.SerialBase | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.rejected = 0

    def open(self) -> None:
        """Open the port exclusively. Raises DeviceGone."""
        if self._serial is not None:
            return
        try:
            port_url, trace_file = split_spy_url(self.url)  # spy://: lengths only, a code may hold a PAN
            port = serial.serial_for_url(port_url, baudrate=self.baud, timeout=0.05, write_timeout=1.0,
                                         exclusive=True)
            self._serial = port if trace_file is None else ByteCountTrace(
                port, functools.partial(trace_line, trace_file, self.url, log=log.info))
        except (serial.SerialException, OSError) as exc:
            raise DeviceGone(f"cannot open scanner {self.url}: {exc}", fault=DeviceFault.PORT) from exc
        self._closing.clear()
        self._thread = threading.Thread(target=self._run, args=(self._serial,), name="scanner", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self._events.put(DeviceGone(f"scanner {self.url} closed", fault=DeviceFault.PORT))  # a scan still waiting
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:  # never while _flush writes: pyserial's write on a port closed under it is a TypeError
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
        self._wake()  # the reader thread sleeps without a timer: it must learn the scan's deadline
        forget = cancel.on_cancel(lambda: self._events.put(_CANCELLED))  # wakes the wait below: no polling
        try:
            while True:
                event = self._events.get()  # a code, the core's time-out, a vanished port, or the cancel's note
                if event is _CANCELLED or cancel.cancelled:
                    raise Cancelled("scan cancelled")
                if isinstance(event, DeviceError):
                    raise event
                if isinstance(event, CodeRead):
                    return event.text
                if isinstance(event, ScanTimedOut):
                    return None
        finally:
            forget()
            with self._lock:
                self._core.stop_scan()
            self._flush()

    def _wake(self) -> None:
        """End the reader thread's current read at once (pyserial's ``cancel_read``) so it looks at its timer."""
        port = self._serial
        if port is not None and callable(cancel := getattr(port, "cancel_read", None)):
            with contextlib.suppress(serial.SerialException, OSError):
                cancel()

    def _flush(self) -> None:
        with self._lock:  # the write too: close() cannot shut the port between the check and the write
            out = self._core.data_to_send()
            if out and self._serial is not None:
                with contextlib.suppress(serial.SerialException, OSError):
                    self._serial.write(out)

    def _run(self, port: serial.SerialBase) -> None:
        wakeable = callable(getattr(port, "cancel_read", None))  # posix ports, loop://; socket:// keeps polling
        try:
            while not self._closing.is_set():
                with self._lock:
                    timer = self._core.get_timer()
                wait: float | None
                if timer is not None:
                    left = max(0.0, timer - self._clock())
                    wait = left if wakeable else min(_IDLE_POLL_S, left)
                else:  # idle: sleep in the read until a byte comes or ``_wake`` (a scan armed, close)
                    wait = None if wakeable else _IDLE_POLL_S
                if _differs(port.timeout, wait):
                    port.timeout = wait  # a termios call in pyserial: only when it matters
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
                self._events.put(DeviceGone(f"scanner {self.url} vanished: {exc}", fault=DeviceFault.PORT))
                self._serial = None


def _differs(current: float | None, wanted: float | None) -> bool:
    """Whether the port's read timeout must change (within 5 ms counts as the same: a termios call saved)."""
    if current is None or wanted is None:
        return current is not wanted
    return abs(current - wanted) > 0.005
