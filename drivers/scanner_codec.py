"""Serial QR / barcode scanner protocol: the sans-I/O line core, its events and the trigger commands. No I/O.

The client is ``drivers.scanner.Scanner``; the simulated scanner ``sim.devices.scanner`` uses the commands here.

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

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pos_errors import ConfigError

__all__ = ["ScannerCore", "CodeRead", "LineRejected", "ScanTimedOut", "Event", "Mode", "TRIGGER", "UNTRIGGER",
           "MAX_CODE"]

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
