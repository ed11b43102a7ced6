"""Frame tracer behind ``spy://`` URLs: one line per frame on the wire, with the DATA masked.

pyserial's own ``spy://`` dumps every byte, which would put PANs and track data in a trace file. No device
hands ``spy://`` to pyserial: the link shell (reader, PIN pad) strips it and traces through ``FrameTracer``:
frame kind, SEQ, CMD and length, and of the DATA at most its first 5 bytes (an APDU header, a status) and, for
DATA longer than 12 bytes, its last 2 (SW1 SW2); bytes between frames are counted, not shown. The printer and
the scanner, which have no frames of ours (a scanned line may be an EMV QR code holding a PAN), trace through
``ByteCountTrace``: direction and length only. Trace files are created 0600.

>>> lines = []
>>> tracer = FrameTracer(lines.append)
>>> tracer.feed("T>D", bytes.fromhex("02 00 07 02 12 00 A4 04 00 00 D2 0A"))
>>> lines
['T>D DATA SEQ 2 CMD 12 len 5: 00 A4 04 00 00']
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from drivers.link.frames import FRAGMENT, ControlFrame, DataFrame, decode_frame, find_frame
from pos_errors import RemoteProtocolError

__all__ = ["FrameTracer", "ByteCountTrace", "split_spy_url", "trace_line"]

_SHOWN_HEAD, _SHOWN_TAIL, _TAIL_FROM = 5, 2, 12


def split_spy_url(url: str) -> tuple[str, str | None]:
    """``spy://PORT?file=PATH`` -> (PORT, PATH or "" for the log); any other URL -> (url, None)."""
    if not url.startswith("spy://"):
        return url, None
    port, _, query = url[len("spy://"):].partition("?")
    return port, parse_qs(query).get("file", [""])[0]


class FrameTracer:
    """Feed each direction's bytes as they pass; ``write`` gets one masked line per complete frame."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._buffers: dict[str, bytearray] = {}
        self._in_pieces: dict[str, bool] = {}  # per direction: the last frame said more pieces follow

    def feed(self, direction: str, data: bytes) -> None:
        buffer = self._buffers.setdefault(direction, bytearray())
        buffer += data
        while buffer:
            start, end = find_frame(buffer)
            if start:
                self._write(f"{direction} ({start} bytes between frames)")
                del buffer[:start]
            if end is None:
                return
            raw = bytes(buffer[:end - start])
            del buffer[:end - start]
            self._write(f"{direction} {self._describe(raw, direction)}")

    def _describe(self, raw: bytes, direction: str) -> str:
        try:
            frame = decode_frame(raw)
        except RemoteProtocolError:
            return f"(damaged frame, {len(raw)} bytes)"
        if isinstance(frame, ControlFrame):
            return f"{frame.kind.name}{'' if frame.version == 1 else ' v2'} SEQ {frame.seq}"
        data = frame.data
        kind = "DATA" if isinstance(frame, DataFrame) else "V2" + (" ACK " + str(frame.ack) if frame.ack is not None
                                                                   else "")
        cmd = "answer" if frame.cmd is None else f"CMD {frame.cmd:02X}"
        if getattr(frame, "sw_implied", False):
            cmd += " (OK and 90 00 implied, v4)"
        elif getattr(frame, "ok_implied", False):
            cmd += " (OK implied, v3)"
        cmd += " (implied, v4)" if getattr(frame, "cmd_implied", False) else ""
        continuing, more = self._in_pieces.get(direction, False), bool(getattr(frame, "more", False))
        self._in_pieces[direction] = more or frame.cmd == FRAGMENT  # v1: the last piece has the real CMD
        if continuing or more or frame.cmd == FRAGMENT:  # a piece may start or end inside a record (a PAN)
            return f"{kind} SEQ {frame.seq} {cmd} len {len(data)} (a piece of a long message: bytes not shown)"
        shown = data[:_SHOWN_HEAD].hex(" ").upper()
        if len(data) > _TAIL_FROM:
            shown += " … " + data[-_SHOWN_TAIL:].hex(" ").upper()
        elif len(data) > _SHOWN_HEAD:
            shown += " …"
        return f"{kind} SEQ {frame.seq} {cmd} len {len(data)}" + (f": {shown}" if data else "")


def trace_line(path: str, url: str, line: str, log: Callable[[str], None] | None = None) -> None:
    """Append one line to the trace file (0600, created on first use); ``path`` "": to ``log`` instead."""
    if not path:
        if log is not None:
            log(f"trace {url} {line}")
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # reopened per line: a trace is for debugging
    with os.fdopen(fd, "a", encoding="utf-8") as trace:
        trace.write(f"{time.strftime('%H:%M:%S')} {line}\n")


class ByteCountTrace:
    """A pyserial port as it is, tracing each read and write as direction and length, never the bytes.

    >>> class Port:
    ...     def write(self, data): return len(data)
    ...     def read(self, size=1): return b"hQ00020101021226..."
    >>> lines = []
    >>> traced = ByteCountTrace(Port(), lines.append)
    >>> traced.write(b"\x1b@"), len(traced.read(64)), lines
    (2, 19, ['T>D 2 bytes', 'D>T 19 bytes'])
    """

    def __init__(self, port: Any, write: Callable[[str], None]) -> None:
        object.__setattr__(self, "_port", port)
        object.__setattr__(self, "_line", write)

    def write(self, data: bytes) -> int | None:
        written = self._port.write(data)
        self._line(f"T>D {len(data)} bytes")
        return written  # type: ignore[no-any-return]

    def read(self, size: int = 1) -> bytes:
        data = self._port.read(size)
        if data:
            self._line(f"D>T {len(data)} bytes")
        return data  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._port, name)

    def __setattr__(self, name: str, value: Any) -> None:  # e.g. write_timeout: the port's own setting
        setattr(self._port, name, value)
