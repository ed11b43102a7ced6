"""The simulated printer's ESC/POS decoder (Chinese model): bytes in, receipt lines and status requests out.

Written from the Epson ESC/POS command reference, independently of ``drivers.escpos``, so the pair tests one
reading of the reference against another. The decoder is sans-I/O: ``EscPosDecoder.feed(data)`` takes bytes
in any split and returns facts (``PrintedLine``, ``Cut``, ``StatusAsked``, ``Unknown``).

What it understands: ESC @, ESC E, ESC !, ESC a, ESC d, GS !, GS V (functions A and B), GS ( k (QR, cn 49),
FS & / FS ., DLE EOT n (answered at once, even while offline), LF, CR (ignored), and the parameter lengths of
a few more ESC/GS/FS commands that it skips. Text in Chinese mode is decoded the way a GB2312/GBK font prints
it: a lead byte and its trail byte form one character, and a pair that is not a two-byte GB18030 code prints
as ``?`` — so a four-byte code such as ``¥`` (``81 30 84 36``) comes out as ``??``. Outside Chinese mode
bytes above 0x7F are code page PC437 characters. A QR symbol prints as the line ``[QR] <payload>``.

The printer on a pty around it is ``sim.devices.printer.PrinterSim``.

>>> d = EscPosDecoder()
>>> [e.text for e in d.feed(b"\\x1b\\x40\\x1c\\x26\\xd4\\xaaOK\\n") if isinstance(e, PrintedLine)]
['元OK']
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PrintedLine", "Cut", "StatusAsked", "Unknown", "Event", "EscPosDecoder"]

ESC, GS, FS, DLE, EOT, LF, CR = 0x1B, 0x1D, 0x1C, 0x10, 0x04, 0x0A, 0x0D
_ALIGN = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
# Parameter byte counts of fixed-length commands this printer accepts but does not model.
_ESC_SKIP = {0x20: 1, 0x2D: 1, 0x32: 0, 0x33: 1, 0x47: 1, 0x4A: 1, 0x4D: 1, 0x52: 1, 0x74: 1, 0x7B: 1,
             0x70: 3, 0x3D: 1, 0x56: 1}
_GS_SKIP = {0x42: 1, 0x48: 1, 0x66: 1, 0x68: 1, 0x77: 1, 0x4C: 2, 0x57: 2, 0x61: 1}
_FS_SKIP = {0x43: 1, 0x21: 1, 0x2D: 1, 0x57: 1}


@dataclass(frozen=True)
class PrintedLine:
    text: str
    align: str = "left"
    bold: bool = False
    double: bool = False
    qr: str | None = None


@dataclass(frozen=True)
class Cut:
    partial: bool


@dataclass(frozen=True)
class StatusAsked:
    n: int


@dataclass(frozen=True)
class Unknown:
    data: bytes


Event = PrintedLine | Cut | StatusAsked | Unknown


class EscPosDecoder:
    """Sans-I/O ESC/POS reader: keeps print modes and a partial line between ``feed`` calls."""

    def __init__(self, *, four_byte_font: bool = False) -> None:
        self.four_byte_font = four_byte_font
        self._buf = bytearray()
        self._reset()

    def _reset(self) -> None:
        self.chinese = False
        self.bold = False
        self.size = 0
        self.esc_mode = 0
        self.align = "left"
        self.qr_data = b""
        self._line = bytearray()
        self._line_chinese: list[bool] = []
        self._line_style: tuple[str, bool, bool] | None = None

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        while self._buf:
            used = self._step(events)
            if used == 0:
                break  # incomplete command: wait for more bytes
            del self._buf[:used]
        return events

    # --- one command or one text byte --------------------------------------------------------------------

    def _step(self, out: list[Event]) -> int:
        b = self._buf
        c = b[0]
        if c == LF:
            out.append(self._end_line())
            return 1
        if c == CR:
            return 1
        if c == DLE:
            return self._dle(out)
        if c in (ESC, GS, FS):
            if len(b) < 2:
                return 0
            return {ESC: self._esc, GS: self._gs, FS: self._fs}[c](out)
        if c < 0x20:
            out.append(Unknown(bytes(b[:1])))
            return 1
        if self._line_style is None:
            self._line_style = (self.align, self.bold, self._double)
        self._line.append(c)
        self._line_chinese.append(self.chinese)
        return 1

    def _dle(self, out: list[Event]) -> int:
        b = self._buf
        if len(b) < 3:
            return 0 if len(b) < 2 or b[1] in (EOT, 0x05) else self._unknown(out, 2)
        if b[1] == EOT:
            out.append(StatusAsked(b[2]))
            return 3
        if b[1] == 0x05:  # DLE ENQ n: real-time request to printer, nothing to answer
            return 3
        return self._unknown(out, 2)

    def _esc(self, out: list[Event]) -> int:
        b, cmd = self._buf, self._buf[1]
        if cmd == 0x40:  # ESC @: buffer cleared, modes back to power-on defaults
            self._reset()
            return 2
        if len(b) < 3:
            return 0 if cmd in (0x45, 0x21, 0x61, 0x64) or cmd in _ESC_SKIP else self._unknown(out, 2)
        n = b[2]
        if cmd == 0x45:
            self.bold = bool(n & 1)
        elif cmd == 0x21:  # ESC ! n: bit 3 emphasized, bit 4 double height, bit 5 double width
            self.esc_mode = n
            self.bold = bool(n & 0x08)
        elif cmd == 0x61:
            self.align = _ALIGN.get(n, self.align)
        elif cmd == 0x64:  # ESC d n: print the buffer and feed n lines
            out.extend(self._end_line() for _ in range(n))
        elif cmd in _ESC_SKIP:
            return self._skip(2 + _ESC_SKIP[cmd])
        else:
            return self._unknown(out, 2)
        return 3

    def _gs(self, out: list[Event]) -> int:
        b, cmd = self._buf, self._buf[1]
        if cmd == 0x28:
            return self._gs_paren(out)
        if len(b) < 3:
            return 0 if cmd in (0x21, 0x56) or cmd in _GS_SKIP else self._unknown(out, 2)
        if cmd == 0x21:
            self.size = b[2]
            return 3
        if cmd == 0x56:  # GS V m [n]: m 0/1/48/49 cut now, 65/66 (and 97..104) feed n then cut
            m = b[2]
            if m in (0, 1, 48, 49):
                out.extend(self._cut(partial=m in (1, 49)))
                return 3
            if len(b) < 4:
                return 0
            out.extend(self._cut(partial=m % 2 == 0))
            return 4
        if cmd in _GS_SKIP:
            return self._skip(2 + _GS_SKIP[cmd])
        return self._unknown(out, 2)

    def _gs_paren(self, out: list[Event]) -> int:
        b = self._buf
        if len(b) < 5:
            return 0
        size = 5 + b[3] + 256 * b[4]
        if len(b) < size:
            return 0
        body = bytes(b[5:size])
        if b[2] != 0x6B or len(body) < 2 or body[0] != 49:  # not GS ( k for QR: skip by its length
            out.append(Unknown(bytes(b[:size])))
            return size
        fn, params = body[1], body[2:]
        if fn == 0x50 and params[:1] == b"\x30":  # fn 180: store data
            self.qr_data = params[1:]
        elif fn == 0x51:  # fn 181: print the stored symbol, on a line of its own
            if self._line:
                out.append(self._end_line())
            payload = self.qr_data.decode("utf-8", "replace")
            out.append(PrintedLine(f"[QR] {payload}", self.align, self.bold, self._double, qr=payload))
        return size

    def _fs(self, out: list[Event]) -> int:
        cmd = self._buf[1]
        if cmd == 0x26:
            self.chinese = True
            return 2
        if cmd == 0x2E:
            self.chinese = False
            return 2
        if cmd in _FS_SKIP:
            return self._skip(2 + _FS_SKIP[cmd])
        return self._unknown(out, 2)

    # --- helpers -----------------------------------------------------------------------------------------

    @property
    def _double(self) -> bool:
        return bool(self.size) or bool(self.esc_mode & 0x30)

    def _skip(self, size: int) -> int:
        return size if len(self._buf) >= size else 0

    def _unknown(self, out: list[Event], size: int) -> int:
        out.append(Unknown(bytes(self._buf[:size])))
        return size

    def _cut(self, *, partial: bool) -> list[Event]:
        events: list[Event] = [self._end_line()] if self._line else []
        return [*events, Cut(partial)]

    def _end_line(self) -> PrintedLine:
        align, bold, double = self._line_style or (self.align, self.bold, self._double)
        line = PrintedLine(self._render(), align, bold, double)
        self._line.clear()
        self._line_chinese.clear()
        self._line_style = None
        return line

    def _render(self) -> str:
        raw, chinese, out, i = self._line, self._line_chinese, [], 0
        while i < len(raw):
            c = raw[i]
            if c < 0x80:
                out.append(chr(c))
                i += 1
            elif not chinese[i]:
                out.append(bytes((c,)).decode("cp437"))
                i += 1
            elif self.four_byte_font and i + 3 < len(raw) and 0x30 <= raw[i + 1] <= 0x39:
                out.append(bytes(raw[i:i + 4]).decode("gb18030", "replace"))
                i += 4
            else:
                try:
                    out.append(bytes(raw[i:i + 2]).decode("gb18030"))
                except UnicodeDecodeError:
                    out.append("?")
                i += 2
        return "".join(out)
