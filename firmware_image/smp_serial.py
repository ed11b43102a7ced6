"""The SMP serial transport, device side (sans-I/O): lines of base64 in, whole SMP frames out, and back.

mcumgr's serial ("SMP over console") framing: a frame ``len (u16 BE) | SMP message | CRC-16/XMODEM (u16 BE)``
is base64-encoded and cut into lines; the first line starts ``06 09``, every continuation ``04 14``, each ends
with ``\\n``; ``len`` counts the message and the CRC. Each line's base64 decodes on its own (the encoder cuts at
multiples of 4 characters), as Zephyr's console transport decodes them. Our answers are encoded by the ``smp``
package (``smp.packet.encode``), so what goes out is byte for byte what the reference client expects.

A damaged line (bad base64, bad CRC, a continuation without a start, a frame longer than the buffer) drops the
frame being assembled and is counted in ``dropped``; the next start line begins afresh.

>>> dec = SmpLineDecoder(buf_size=64)
>>> for line in encode_frame(b"hello"):
...     dec.feed_line(line)
>>> dec.next_frame()
b'hello'
"""

from __future__ import annotations

import binascii
from collections import deque

__all__ = ["START", "CONTINUE", "SmpLineDecoder", "encode_frame", "LINE_LENGTH", "BUF_SIZE", "BUF_COUNT"]

# the smp package's START_DELIMITER and CONTINUE_DELIMITER (tests/firmware/test_smp_lazy.py compares them): not
# imported here, so a device that never sees an SMP request never imports the smp package
START = b"\x06\x09"
CONTINUE = b"\x04\x14"
LINE_LENGTH = 128  # mcumgr's line length convention (delimiter + base64 + newline)
BUF_SIZE = 4096  # reassembly buffer for one decoded frame (CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE)
BUF_COUNT = 2


def encode_frame(message: bytes, line_length: int = LINE_LENGTH) -> list[bytes]:
    """The lines of one SMP message, as mcumgr puts them on the wire (the smp package's encoder, imported at
    the first answer)."""
    from smp import packet as smppacket

    return list(smppacket.encode(message, line_length=line_length))


class SmpLineDecoder:
    """Whole lines (delimiter … ``\\n``) in, checked SMP messages out."""

    def __init__(self, buf_size: int) -> None:
        self.buf_size = buf_size
        self._frame: bytearray | None = None
        self._expected = 0
        self._frames: deque[bytes] = deque()
        self.dropped = 0

    def _drop(self) -> None:
        self._frame = None
        self.dropped += 1

    def feed_line(self, line: bytes) -> None:
        head, body = line[:2], line[2:].rstrip(b"\r\n")
        try:
            chunk = binascii.a2b_base64(body, strict_mode=True)
        except binascii.Error:
            self._drop()
            return
        if head == START:
            if self._frame is not None:
                self.dropped += 1  # a new start abandons an unfinished frame
            if len(chunk) < 2:
                self._drop()
                return
            self._expected = int.from_bytes(chunk[:2], "big")
            if not 2 < self._expected <= self.buf_size:
                self._drop()
                return
            self._frame = bytearray(chunk[2:])
        elif head == CONTINUE and self._frame is not None:
            self._frame += chunk
        else:
            self.dropped += 1
            return
        if len(self._frame) > self._expected:
            self._drop()
        elif len(self._frame) == self._expected:
            message, crc = bytes(self._frame[:-2]), int.from_bytes(self._frame[-2:], "big")
            self._frame = None
            if binascii.crc_hqx(message, 0) != crc:  # CRC-16/XMODEM, mcumgr's frame check
                self.dropped += 1
                return
            self._frames.append(message)

    def next_frame(self) -> bytes | None:
        return self._frames.popleft() if self._frames else None
