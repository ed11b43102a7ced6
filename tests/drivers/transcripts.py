"""Example sessions for docs/protocols/*.md, produced by the real cores and codecs (run as a module to print).

The tests assert that each transcript appears verbatim in its document, so the documented bytes cannot drift
from the code. ``python -m tests.drivers.transcripts``
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.card_reader_codec import ReaderCmd, ReaderEventCode
from drivers.link.core import FrameReceived, LinkCore
from drivers.link.frames import STX, ControlFrame, DataFrame, decode_frame, find_frame
from drivers.pinpad_codec import (
    EntryStatus,
    KeyStatus,
    PinPadCmd,
    PinPadEventCode,
    encode_display,
    encode_key_status,
    encode_pin_request,
    encode_pin_result,
)
from emv.crypto.pin import DukptPinEncryptor, derive_initial_key
from flows.ports import PadPrompt
from sim.devices.reader import ReaderSim
from tests.drivers.conftest import T1_ATR, FakeApplet

_NAMES = {int(c): c.name for c in (*ReaderCmd, *ReaderEventCode, *PinPadCmd, *PinPadEventCode)}


def _describe(frame: DataFrame | ControlFrame) -> str:
    if isinstance(frame, ControlFrame):
        return f"{frame.kind.name:<5}  SEQ {frame.seq}"
    if frame.cmd & 0x80:
        name, status = _NAMES[frame.cmd & 0x7F], "OK" if frame.data[1] == 0 else f"{frame.data[1]:02X}"
        return f"DATA   SEQ {frame.seq}  {name} answer to {frame.data[0]}: {status}"
    return f"DATA   SEQ {frame.seq}  {_NAMES[frame.cmd]}"


class _Recorder:
    """Moves bytes between two cores like a wire and writes one line per frame."""

    def __init__(self) -> None:
        # The documented sessions are version 1 (a reader that speaks only v1); v2 frames: test_link_v2.py.
        self.terminal, self.device = LinkCore(role="terminal", version=1), LinkCore(role="device", version=1)
        self.device.data_to_send()  # the device's own SYN went out before the terminal opened the port
        self.lines: list[str] = []
        self.damage_next_device_frame = False
        self.now = 0.0

    def _move(self, source: LinkCore, sink: LinkCore, arrow: str) -> tuple[bool, list[FrameReceived]]:
        data = source.data_to_send()
        moved, delivered = bool(data), []
        while data:
            _, end = find_frame(data)
            raw, data = data[:end], data[end:]
            note = _describe(decode_frame(raw))
            if arrow == "R→T" and raw[0] == STX and self.damage_next_device_frame:
                self.damage_next_device_frame = False
                raw = raw[:-1] + bytes([raw[-1] ^ 0x01])
                note = "(damaged on the line: bad CRC)"
            self.lines.append(f"{arrow}  {note:<46} {raw.hex(' ').upper()}")
            delivered += [e for e in sink.pump(raw, self.now) if isinstance(e, FrameReceived)]
        return moved, delivered

    def run(self, answer: Callable[[int, bytes], bytes | None] | None = None) -> None:
        while not (self.terminal.idle and self.device.idle):
            moved, frames = self._move(self.terminal, self.device, "T→R")
            for frame in frames:
                reply = None if answer is None else answer(frame.cmd, frame.data)
                if reply is not None:
                    self.device.send(frame.cmd | 0x80, bytes([frame.seq]) + reply, self.now)
            moved |= self._move(self.device, self.terminal, "R→T")[0]
            timers = [t for t in (self.terminal.get_timer(), self.device.get_timer()) if t is not None]
            if not moved and timers:  # nothing else can happen before the next timer
                self.now = max(self.now, min(timers))
                self.terminal.pump(b"", self.now)
                self.device.pump(b"", self.now)


def reader_session() -> str:
    rec, sim = _Recorder(), ReaderSim()
    try:
        rec.terminal.send(ReaderCmd.GET_INFO, b"", 0.0)
        rec.run(sim.handle)
        sim.insert(FakeApplet(T1_ATR))
        rec.device.send(ReaderEventCode.CARD_INSERTED, b"", 0.0)
        rec.run()
        rec.terminal.send(ReaderCmd.POWER_ON, b"", 0.0)
        rec.run(sim.handle)
        rec.damage_next_device_frame = True
        rec.terminal.send(ReaderCmd.TRANSMIT, bytes.fromhex("00 A4 04 00 00"), 0.0)
        rec.run(sim.handle)
        rec.device.send(ReaderEventCode.CARD_REMOVED, b"", 0.0)
        rec.run()
    finally:
        sim.stop()
    return "\n".join(rec.lines)


def pinpad_session() -> str:
    rec = _Recorder()
    ksn = bytes.fromhex("123456789012345600000000")
    bdk = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
    encryptor = DukptPinEncryptor("aes", derive_initial_key("aes", bdk, ksn), ksn, lambda n: bytes(range(n)))
    rec.terminal.send(PinPadCmd.KEY_STATUS, b"", 0.0)
    rec.run(lambda cmd, data: b"\x00" + encode_key_status(
        KeyStatus("aes", encryptor.ksn, encryptor.remaining)))
    rec.terminal.send(PinPadCmd.GET_ONLINE_PIN, encode_pin_request("6212345678901234", 1250, 30), 0.0)
    rec.run(lambda cmd, data: bytes([0x00, 0x01]))  # OK, entry session 1
    block, used = encryptor.encrypt_pin("1234", "6212345678901234")  # the customer typed 1234 ENTER
    rec.device.send(PinPadEventCode.PIN_RESULT, encode_pin_result(1, EntryStatus.ENTERED, 4, used, block), 0.0)
    rec.run()
    rec.terminal.send(PinPadCmd.DISPLAY, encode_display(PadPrompt.THANK_YOU), 0.0)
    rec.run(lambda cmd, data: b"\x00")
    return "\n".join(rec.lines)


if __name__ == "__main__":
    print(reader_session(), end="\n\n")
    print(pinpad_session())
