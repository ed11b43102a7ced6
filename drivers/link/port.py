"""The link shell's hold on its pyserial port: read with a per-call timeout, write, wake a blocked read.

The shell's reader thread waits at most until the link core's next timer, a deadline that changes nearly
every exchange. pyserial takes a read timeout only through ``port.timeout``, and on POSIX each change of it is a
``tcsetattr`` (``_reconfigure_port``); its ``read(1)`` then ``read(in_waiting)`` is two ``select``/``read``
pairs and an ``ioctl`` a burst. So for a POSIX device (``serial.Serial`` with a file descriptor: a tty, a pty)
``SelectPort`` leaves the port's settings alone after pyserial opened and configured it, and waits in one
``select`` on the port and a wake-up pipe of its own with the timeout of that call, then takes the whole burst
in one ``os.read``; a write goes out with one ``os.write`` when the line takes it all (pyserial's ``write``,
with its write timeout, sends what is left). Any other port (``loop://``, ``socket://``, Windows) is a
``PolledPort``: pyserial's own read, its timeout capped at ``IDLE_POLL_S`` (what bounds how late a wake-up is
seen where nothing can interrupt a read) and changed only when that matters.

>>> import serial
>>> port = open_port(serial.serial_for_url("loop://", timeout=IDLE_POLL_S))
>>> port.write(b"abc"); port.read(0.5)
b'abc'
>>> port.close()
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading

import serial

__all__ = ["IDLE_POLL_S", "LinkPort", "SelectPort", "PolledPort", "open_port"]

IDLE_POLL_S = 0.05  # longest read on a port whose read nothing can interrupt
_TIMEOUT_SLACK_S = 0.005  # a polled read may end this much past a timer: cheaper than re-tuning the port each loop
_BURST = 4096  # more than any frame (MAX_DATA + 8): a burst is one read
_RETRY_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR})


class SelectPort:
    """A POSIX ``serial.Serial``: ``read(timeout_s)`` is one ``select`` (port + wake-up pipe) and one ``os.read``.
    Raises ``serial.SerialException`` when the port vanished (readable with nothing to read, or EIO)."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self._fd = port.fileno()
        self._wake_r, self._wake_w = os.pipe()
        self._pipe: tuple[int, ...] = (self._wake_r, self._wake_w)  # () once closed
        self._pipe_lock = threading.Lock()  # a wake-up never writes to a descriptor closed (and reused) meanwhile
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def read(self, timeout_s: float | None) -> bytes:
        """The bytes waiting (up to a burst), or b"" at the timeout (None: none) or on ``wake``."""
        ready = select.select([self._fd, self._wake_r], [], [], timeout_s)[0]
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 64)
        if self._fd not in ready:
            return b""
        try:
            data = os.read(self._fd, _BURST)
        except OSError as exc:
            if exc.errno in _RETRY_ERRNOS:
                return b""
            raise serial.SerialException(f"read failed: {exc}") from exc
        if not data:  # readable with nothing to read: Linux's sign of a vanished device
            raise serial.SerialException("device reports readiness to read but returned no data")
        return data

    def write(self, data: bytes) -> None:
        """Write all of ``data``; raises ``serial.SerialTimeoutException`` past the port's write timeout."""
        try:
            sent = os.write(self._fd, data)
        except OSError as exc:
            if exc.errno not in _RETRY_ERRNOS:
                raise serial.SerialException(f"write failed: {exc}") from exc
            sent = 0
        if sent < len(data):  # the line is backed up: pyserial waits, within its write timeout
            self.port.write(data[sent:])

    def wake(self) -> None:
        """End a ``read`` blocked in another thread (or the next one, if none is)."""
        with self._pipe_lock, contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            if self._pipe:
                os.write(self._wake_w, b"w")

    def close(self) -> None:
        """Close the port and the pipe, once (a second call must not close a descriptor reused since)."""
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.close()
        with self._pipe_lock:
            fds, self._pipe = self._pipe, ()
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)


class PolledPort:
    """Any other pyserial port: its own ``read``, at most ``IDLE_POLL_S`` at a time; ``cancel_read`` wakes it
    where the port has one (``loop://``)."""

    def __init__(self, port: serial.SerialBase) -> None:
        self.port = port

    def read(self, timeout_s: float | None) -> bytes:
        port = self.port
        wait = IDLE_POLL_S if timeout_s is None else min(IDLE_POLL_S, timeout_s)
        if port.timeout is None or abs(port.timeout - wait) > _TIMEOUT_SLACK_S:
            port.timeout = wait  # a change may be a termios call: only when it matters
        data = port.read(port.in_waiting or 1)
        if data and (rest := port.in_waiting):  # the rest of the burst that woke us: one pump, not two
            data += port.read(rest)
        return bytes(data)

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def wake(self) -> None:
        if hasattr(self.port, "cancel_read"):
            with contextlib.suppress(serial.SerialException, OSError):
                self.port.cancel_read()

    def close(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.close()


LinkPort = SelectPort | PolledPort


def open_port(port: serial.SerialBase) -> LinkPort:
    """The way to wait on ``port``: ``SelectPort`` for a POSIX device, else ``PolledPort``."""
    if isinstance(port, serial.Serial) and os.name == "posix":
        try:
            port.fileno()
        except (AttributeError, serial.SerialException, OSError):
            return PolledPort(port)
        return SelectPort(port)
    return PolledPort(port)
