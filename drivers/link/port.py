"""The link shell's hold on its pyserial port: wait with a per-call timeout, read a burst, write, wake a waiter.

The shell waits at most until the link core's next timer, a deadline that changes nearly every exchange, and
two threads (the reader thread, a requesting thread) take turns on the port. pyserial takes a read timeout only
through ``port.timeout``, and on POSIX each change of it is a ``tcsetattr`` (``_reconfigure_port``); its
``read(1)`` then ``read(in_waiting)`` is two ``select``/``read`` pairs and an ``ioctl`` a burst; its
``cancel_read`` wakes only a thread inside its own ``read``. So for a POSIX device (``serial.Serial`` with a
file descriptor: a tty, a pty) ``SelectPort`` leaves the port's settings alone after pyserial opened and
configured it: ``wait`` is one ``select`` on the port and the waiter's own wake-up pipe (its "bell") with the
timeout of that call, ``read_now`` takes the whole burst in one ``os.read``, and a write goes out with one
``os.write`` when the line takes it all (pyserial's ``write``, with its write timeout, sends what is left).
Any other port (``loop://``, ``socket://``, Windows) is a ``PolledPort``, read by the reader thread only:
pyserial's own read, its timeout capped at ``IDLE_POLL_S`` (what bounds how late a wake-up is seen where
nothing can interrupt a read) and changed only when that matters.

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

__all__ = ["IDLE_POLL_S", "READER", "REQUESTER", "LinkPort", "SelectPort", "PolledPort", "open_port"]

IDLE_POLL_S = 0.05  # longest read on a port whose read nothing can interrupt
_TIMEOUT_SLACK_S = 0.005  # a polled read may end this much past a timer: cheaper than re-tuning the port each loop
_BURST = 4096  # more than any frame (MAX_DATA + 8): a burst is one read
_RETRY_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR})
READER, REQUESTER = 0, 1  # the bells of a SelectPort


class SelectPort:
    """A POSIX ``serial.Serial`` waited on with ``select``, beside two wake-up pipes ("bells": ``READER`` for
    the shell's reader thread, ``REQUESTER`` for a thread waiting for its response), so that either thread can
    wait on the port and be woken. Reads take what is waiting (up to a burst) without blocking."""

    selectable = True

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self._fd = port.fileno()
        reader, requester = os.pipe(), os.pipe()
        self._bells = (reader, requester)  # (read end, write end) each
        self._fds: tuple[int, ...] = (*reader, *requester)  # () once closed
        for fd in self._fds:
            os.set_blocking(fd, False)
        self._fd_lock = threading.Lock()  # a ring never writes to a descriptor closed (and reused) meanwhile

    def wait(self, bell: int, watch: bool, timeout_s: float | None) -> bool:
        """Block until the port has bytes (only if ``watch``), ``bell`` rings or ``timeout_s`` (None: none)
        passes; whether the port has bytes."""
        bell_r = self._bells[bell][0]
        ready = select.select([self._fd, bell_r] if watch else [bell_r], [], [], timeout_s)[0]
        if bell_r in ready:
            with contextlib.suppress(OSError):
                os.read(bell_r, 64)
        return self._fd in ready

    def read_now(self) -> bytes:
        """The bytes waiting, up to a burst; b"" if none (another thread took them: pyserial sets VMIN 0, so an
        empty tty reads as zero bytes). Raises ``serial.SerialException`` when the port vanished: EIO, or still
        readable with nothing to read (Linux's sign of an unplugged device, as pyserial reads it)."""
        for _ in range(2):
            try:
                data = os.read(self._fd, _BURST)
            except OSError as exc:
                if exc.errno in _RETRY_ERRNOS:
                    return b""
                raise serial.SerialException(f"read failed: {exc}") from exc
            if data or not select.select([self._fd], [], [], 0)[0]:
                return data
        raise serial.SerialException("device reports readiness to read but returned no data")

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

    def ring(self, bell: int) -> None:
        """End the ``wait`` on ``bell`` (or the next one, if none is waiting)."""
        with self._fd_lock, contextlib.suppress(OSError):  # full: a ring is pending anyway
            if self._fds:
                os.write(self._bells[bell][1], b"w")

    def close(self) -> None:
        """Close the port and the pipes, once (a second call must not close a descriptor reused since)."""
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.close()
        with self._fd_lock:
            fds, self._fds = self._fds, ()
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)


class PolledPort:
    """Any other pyserial port: its own ``read``, at most ``IDLE_POLL_S`` at a time, by the reader thread only;
    ``cancel_read`` wakes it where the port has one (``loop://``)."""

    selectable = False

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

    def ring(self, bell: int) -> None:
        if bell == READER and hasattr(self.port, "cancel_read"):
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
