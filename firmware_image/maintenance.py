"""The maintenance serial port's protocol core: POSFW1 and SMP (mcumgr) on one line, told apart by their framing.

POSFW1 frames are SLIP (``C0 … C0``, ``firmware_image.protocol``); SMP packets are text lines starting
``06 09`` or ``04 14`` and ending ``\\n`` (``firmware_image.smp_serial``). Between frames the port looks at the
next byte: ``C0`` opens a POSFW1 frame, ``06 09`` / ``04 14`` an SMP line, anything else is line noise and is
skipped (counted in ``noise``). Inside a frame every byte belongs to that protocol, so a ``0A`` or ``06 09``
inside a POSFW1 block is data, never a line. An SMP line longer than the SMP buffer allows is dropped. A quiet
line (the shell's read timed out: ``line_idle``) ends any frame in progress, as a Modbus RTU framer uses the
inter-frame silence: a stray ``C0`` in line noise cannot make the port take the next SMP request for POSFW1.

The shell (``firmware_image.agent_shell``) pumps bytes exactly as it does for ``AgentCore`` alone.

>>> MaintenancePort.__name__
'MaintenancePort'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from firmware_image.agent import AgentCore, ChangeBaud, ResetRequested
from firmware_image.smp_serial import BUF_SIZE, CONTINUE, START, SmpLineDecoder, encode_frame

if TYPE_CHECKING:  # the smp package (pydantic, cbor2) is imported at the first SMP request, not with the port
    from firmware_image.smp_server import SmpServer

__all__ = ["MaintenancePort", "LazySmpServer", "SmpCore"]


class SmpCore(Protocol):
    """What the port needs of an SMP server (``SmpServer``, or ``LazySmpServer`` in front of one)."""

    buf_size: int

    def handle(self, message: bytes) -> bytes | None: ...
    def next_event(self) -> ResetRequested | None: ...


class LazySmpServer:
    """An ``SmpServer`` made by ``build`` at the first SMP request: a device whose maintenance port only ever
    sees POSFW1 (or nothing) never imports the smp package and its pydantic (the update agent starts light)."""

    def __init__(self, build: Callable[[], SmpServer], *, buf_size: int = BUF_SIZE) -> None:
        self.buf_size = buf_size
        self._build = build
        self.server: SmpServer | None = None

    @property
    def notes(self) -> deque[str]:
        return self.server.notes if self.server is not None else deque()

    def handle(self, message: bytes) -> bytes | None:
        if self.server is None:
            self.server = self._build()
        return self.server.handle(message)

    def next_event(self) -> ResetRequested | None:
        return self.server.next_event() if self.server is not None else None

_SLIP_END = 0xC0
_SMP_FIRST = {START[0], CONTINUE[0]}


class _In(Enum):
    IDLE = "idle"
    SLIP = "slip"
    SMP = "smp"


class MaintenancePort:
    """One maintenance-port session: POSFW1 requests go to ``posfw``, SMP requests to ``smp``."""

    def __init__(self, posfw: AgentCore, smp: SmpCore) -> None:
        self.posfw = posfw
        self.smp = smp
        self._lines = SmpLineDecoder(smp.buf_size)
        self._max_line = 4 * smp.buf_size // 3 + 16
        self._state = _In.IDLE
        self._slip_body = 0  # bytes of the current POSFW1 frame seen so far (0: just after its opening C0)
        self._line = bytearray()
        self._discarding = False
        self._held = b""  # a lone 06 / 04 at the end of a read: wait for the next byte
        self._out = bytearray()
        self._events: deque[ChangeBaud | ResetRequested] = deque()
        self.noise = 0

    @property
    def smp_dropped(self) -> int:
        return self._lines.dropped

    def receive_data(self, data: bytes) -> None:
        data, self._held = self._held + data, b""
        i = 0
        while i < len(data):
            if self._state is _In.SMP:
                i = self._take_line(data, i)
            elif self._state is _In.SLIP:  # a frame's first bytes may be 06 09 (FINALIZE of a length 0x…09)
                end = data.find(_SLIP_END, i)
                stop = len(data) if end < 0 else end + 1
                self.posfw.receive_data(data[i:stop])
                self._slip_body += stop - i - (end >= 0)
                if end >= 0 and self._slip_body:
                    self._state = _In.IDLE
                i = stop
            elif data[i] == _SLIP_END:
                self._state, self._slip_body = _In.SLIP, 0
                self.posfw.receive_data(b"\xc0")
                i += 1
            elif data[i] in _SMP_FIRST and i + 1 == len(data):
                self._held = data[i:]
                i += 1
            elif data[i:i + 2] in (START, CONTINUE):
                self._state = _In.SMP
            else:
                self.noise += 1
                i += 1
        self._collect()

    def line_idle(self) -> None:
        """The line has been quiet for a read timeout: no frame spans that, so look for a new one."""
        self._state, self._held = _In.IDLE, b""
        self._line.clear()
        self._discarding = False

    def _take_line(self, data: bytes, i: int) -> int:
        end = data.find(b"\n", i)
        stop = len(data) if end < 0 else end + 1
        if not self._discarding:
            self._line += data[i:stop]
            if len(self._line) > self._max_line:  # longer than any frame the buffer takes: skip to its end
                self._line.clear()
                self._discarding = True
                self._lines.dropped += 1
        if end >= 0:
            if not self._discarding:
                self._lines.feed_line(bytes(self._line))
            self._line.clear()
            self._discarding = False
            self._state = _In.IDLE
        return stop

    def _collect(self) -> None:
        while (message := self._lines.next_frame()) is not None:
            answer = self.smp.handle(message)
            if answer is not None:
                self._out += b"".join(encode_frame(answer))
        while (event := self.smp.next_event()) is not None:
            self._events.append(event)
        while (posfw_event := self.posfw.next_event()) is not None:
            self._events.append(posfw_event)

    def data_to_send(self) -> bytes:
        out = self.posfw.data_to_send() + bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> ChangeBaud | ResetRequested | None:
        return self._events.popleft() if self._events else None
