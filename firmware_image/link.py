"""Byte links for the flashing protocol: a serial port (pyserial) or a pty master fd, with optional line pacing.

Pacing emulates a UART: ``write`` returns when the bytes would have left the wire at ``pace_baud`` (10 bits per
byte), so a benchmark over a pty measures the protocol against the real line rate. ``LoopLink`` connects a host
to an ``AgentCore`` in memory (unit and power-cut tests).

>>> Pacer(None).delay(1000)
0.0
"""

from __future__ import annotations

import os
import select
import time
from typing import Protocol

import serial

from firmware_image.errors import FlashProtocolError

__all__ = ["Link", "Pacer", "SerialFlashLink", "FdLink", "LoopLink"]


class Link(Protocol):
    def write(self, data: bytes) -> None: ...
    def read(self, timeout: float) -> bytes: ...
    def set_baud(self, baud: int) -> None: ...
    def close(self) -> None: ...


class Pacer:
    """Tracks when the line is free again; ``delay(n)`` is how long to wait before ``n`` more bytes are out."""

    def __init__(self, baud: int | None) -> None:
        self.baud = baud
        self._free_at = 0.0

    def delay(self, nbytes: int) -> float:
        if not self.baud:
            return 0.0
        now = time.perf_counter()
        self._free_at = max(self._free_at, now) + nbytes * 10 / self.baud
        return self._free_at - now

    def pace(self, nbytes: int) -> None:
        wait = self.delay(nbytes)
        if wait > 0:
            time.sleep(wait)


class SerialFlashLink:
    """The flashing line (POSFW1 / SMP) on a real (or pty slave) serial port, opened with pyserial. Not the card
    reader and PIN pad link of ``drivers.link``: no frames, no ARQ, just bytes the flashing protocol frames."""

    def __init__(self, path: str, baud: int = 115200, *, pace: bool = False) -> None:
        try:
            self.port = serial.serial_for_url(path, baud, timeout=0)  # a path, socket://, rfc2217://, spy://
        except (serial.SerialException, ValueError) as exc:
            raise FlashProtocolError(f"cannot open {path}: {exc}; check the cable and --port") from exc
        self.pacer = Pacer(baud if pace else None)

    def write(self, data: bytes) -> None:
        self.pacer.pace(len(data))
        self.port.write(data)

    def read(self, timeout: float) -> bytes:
        try:
            self.port.timeout = timeout
            first = self.port.read(1)
            return first + self.port.read(self.port.in_waiting) if first else b""
        except serial.SerialException:  # the far end went away (a device resetting): a silent line
            time.sleep(timeout)
            return b""

    def set_baud(self, baud: int) -> None:
        self.port.baudrate = baud
        if self.pacer.baud:
            self.pacer.baud = baud

    def close(self) -> None:
        self.port.close()


class FdLink:
    """The master side of a pty (the device end in tests and the simulator)."""

    def __init__(self, fd: int, baud: int | None = None) -> None:
        self.fd = fd
        os.set_blocking(fd, True)
        self.pacer = Pacer(baud)

    def write(self, data: bytes) -> None:
        self.pacer.pace(len(data))
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.fd, 65536)
        except OSError:  # nobody has the slave open: behave like a quiet line
            time.sleep(timeout)
            return b""

    def set_baud(self, baud: int) -> None:
        if self.pacer.baud:
            self.pacer.baud = baud

    def close(self) -> None:
        os.close(self.fd)


class _Core(Protocol):
    def receive_data(self, data: bytes) -> None: ...
    def data_to_send(self) -> bytes: ...


class LoopLink:
    """Host side wired straight to an agent core: what the host writes is processed at once (errors propagate)."""

    def __init__(self, core: _Core) -> None:
        self.core = core
        self.sent = 0
        self.received = 0

    def write(self, data: bytes) -> None:
        self.sent += len(data)
        self.core.receive_data(data)

    def read(self, timeout: float) -> bytes:
        out = self.core.data_to_send()
        self.received += len(out)
        return out

    def set_baud(self, baud: int) -> None:
        pass

    def close(self) -> None:
        pass
