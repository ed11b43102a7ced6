"""The simulator's end of a serial line: a pseudo-terminal pair whose slave path the terminal opens with pyserial.

A simulated device owns the master side. ``PtyPort`` gives it raw, non-blocking reads with a timeout and writes
that can be paced at a baud rate, so link efficiency is measurable, and fault hooks (drop or corrupt bytes,
unplug) so robustness is. Bytes written before the terminal opens the slave wait in the kernel's buffer.

>>> with PtyPort() as port:
...     port.path.startswith("/dev/pts/")
True
"""

from __future__ import annotations

import os
import select
import termios
import threading
import time
import tty
from collections.abc import Callable

__all__ = ["PtyPort", "DeviceThread"]


class PtyPort:
    """Master side of a pty pair.

    Args:
        baud: when set, ``write`` sleeps 10 bits per byte so output arrives at the line rate.
        corrupt: optional hook ``bytes -> bytes`` applied to everything written (fault injection).
    """

    def __init__(self, baud: int | None = None, corrupt: Callable[[bytes], bytes] | None = None) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        attrs = termios.tcgetattr(self._slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.baud = baud
        self.corrupt = corrupt
        self._closed = False
        self._write_lock = threading.Lock()

    def read(self, timeout_s: float) -> bytes:
        """Up to 4096 bytes, or ``b""`` when nothing arrived within ``timeout_s``."""
        if self._closed:
            return b""
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        if not ready:
            return b""
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        if self.corrupt is not None:
            data = self.corrupt(data)
        with self._write_lock:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self.master, view)
                except BlockingIOError:
                    select.select([], [self.master], [], 0.05)
                    continue
                except OSError:
                    return
                view = view[n:]
                if self.baud:
                    time.sleep(n * 10 / self.baud)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for fd in (self.master, self._slave):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __enter__(self) -> PtyPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DeviceThread:
    """Runs ``on_bytes(data)`` for every chunk read from a ``PtyPort`` and ``on_tick(now)`` at least every 50 ms.

    A simulated device subclasses nothing: it hands its two callbacks to this thread and writes replies through
    ``port.write``. ``stop()`` ends the thread and closes the port (the terminal then sees the device vanish).
    """

    def __init__(self, name: str, port: PtyPort, on_bytes: Callable[[bytes], None],
                 on_tick: Callable[[float], None] | None = None) -> None:
        self.port = port
        self._on_bytes = on_bytes
        self._on_tick = on_tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sim-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            data = self.port.read(0.05)
            if data:
                self._on_bytes(data)
            if self._on_tick is not None:
                self._on_tick(time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.port.close()
