"""Shared test doubles: a tiny card applet, an in-memory wire between two link cores, line fault hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from drivers.link.core import Event, FrameReceived, LinkCore

T0_ATR = bytes.fromhex("3B 02 14 50")  # T=0 only, two historical bytes
T1_ATR = bytes.fromhex("3B 80 80 01 01")  # T=0 default, T=1 offered, TCK 01


class FakeApplet:
    """Just enough card: SELECT answers an FCI, anything else echoes its data with 9000. Counts APDUs."""

    def __init__(self, atr: bytes = T1_ATR) -> None:
        self.atr = atr
        self.apdus: list[bytes] = []

    def process(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        if apdu[1] == 0xA4:
            return bytes.fromhex("6F 04 84 02 A0 00") + b"\x90\x00"
        return apdu[5:] + bytes([len(self.apdus)]) + b"\x90\x00"


@dataclass
class Wire:
    """Two link cores joined in memory with a virtual clock; ``t2d``/``d2t`` may damage bytes in flight."""

    terminal: LinkCore = field(default_factory=lambda: LinkCore(role="terminal", version=1))  # v1 tests
    device: LinkCore = field(default_factory=lambda: LinkCore(role="device", version=1))
    t2d: Callable[[bytes], bytes] = lambda data: data
    d2t: Callable[[bytes], bytes] = lambda data: data
    chunk: int = 0  # > 0: deliver in pieces of this many bytes (0 = whole writes)
    now: float = 0.0
    terminal_events: list[Event] = field(default_factory=list)
    device_events: list[Event] = field(default_factory=list)
    on_device_frame: Callable[[FrameReceived], None] | None = None
    handled: int = 0

    def _move(self, source: LinkCore, sink: LinkCore, damage: Callable[[bytes], bytes],
              events: list[Event]) -> bool:
        data = source.data_to_send()
        if not data:
            return False
        data = damage(data)
        size = self.chunk or len(data) or 1
        for start in range(0, len(data), size):
            events.extend(sink.pump(data[start:start + size], self.now))
        return True

    def step(self) -> bool:
        moved = self._move(self.terminal, self.device, self.t2d, self.device_events)
        while self.on_device_frame is not None and self.handled < len(self.device_events):
            event = self.device_events[self.handled]
            self.handled += 1
            if isinstance(event, FrameReceived):
                self.on_device_frame(event)
        moved |= self._move(self.device, self.terminal, self.d2t, self.terminal_events)
        return moved

    def run(self, max_time: float = 60.0) -> None:
        """Move bytes until both sides are quiet, jumping the clock to the next timer when nothing moves."""
        while self.now <= max_time:
            if self.step():
                continue
            timers = [t for t in (self.terminal.get_timer(), self.device.get_timer()) if t is not None]
            if not timers:
                return
            self.now = max(self.now, min(timers))
            self.terminal_events.extend(self.terminal.pump(b"", self.now))
            self.device_events.extend(self.device.pump(b"", self.now))
        raise AssertionError("the wire never went quiet")

    def received(self, side: str) -> list[FrameReceived]:
        events = self.terminal_events if side == "terminal" else self.device_events
        return [e for e in events if isinstance(e, FrameReceived)]


class EveryNth:
    """A line fault: flip one byte in every ``n``-th chunk written (deterministic, so tests repeat)."""

    def __init__(self, n: int, offset: int = 3) -> None:
        self.n, self.offset, self.count, self.flipped = n, offset, 0, 0

    def __call__(self, data: bytes) -> bytes:
        self.count += 1
        if self.count % self.n or not data:
            return data
        self.flipped += 1
        damaged = bytearray(data)
        damaged[min(self.offset, len(data) - 1)] ^= 0x5A
        return bytes(damaged)


@pytest.fixture
def applet() -> FakeApplet:
    return FakeApplet()
